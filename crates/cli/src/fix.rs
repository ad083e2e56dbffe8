//! `custody fix ACTION` and `custody quarantine …`: acting on what a scan found.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use custody_detect::{DEFAULT_MIN_CONFIDENCE, DetectorConfig, Kind};
use custody_ledger::{Event, Ledger, LedgerOptions, Outcome as LedgerOutcome};
use custody_remedy::{self as fix, Action, Fixer, Outcome, quarantine};
use serde_json::json;

use crate::records::Unlock;
use crate::{EXIT_FINDINGS, EXIT_OK};

#[derive(Args)]
pub struct FixArgs {
    /// What to do with each file that holds customer data: quarantine (encrypt it away),
    /// redact (mask the values in place; text, CSV, JSON, HTML, docx, xlsx), shred
    /// (overwrite and delete; best effort) or ignore (stop reporting these values).
    #[arg(value_parser = parse_action)]
    action: Action,

    /// Files and folders to scan and fix (default: the current folder). Not with --from.
    paths: Vec<PathBuf>,

    /// Act on the files listed in a saved scan result (`custody scan --format json -o FILE`
    /// or jsonl). Each file is scanned again before anything is done to it.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    from: Option<PathBuf>,

    /// With --from: the folder that was scanned (paths in the result are relative to it).
    #[arg(long, value_name = "DIR", requires = "from", default_value = ".")]
    root: PathBuf,

    /// Do it. Without --apply nothing is changed: you see what would be done.
    #[arg(long)]
    apply: bool,

    /// Only files holding these kinds, and only these kinds are masked or ignored.
    #[arg(long, value_delimiter = ',', value_parser = crate::scan::parse_kind)]
    kinds: Vec<Kind>,

    /// Ignore findings less certain than this (0–1).
    #[arg(long, default_value_t = DEFAULT_MIN_CONFIDENCE, value_parser = crate::scan::parse_confidence)]
    min_confidence: f32,

    /// One JSON object per file on standard output (for scripts).
    #[arg(long)]
    json: bool,
}

fn parse_action(s: &str) -> Result<Action, String> {
    s.parse()
}

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// What is in the quarantine (no passphrase needed).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put a quarantined file back where it was (or --to elsewhere). Needs the passphrase.
    Restore {
        /// The id shown by `custody quarantine list`.
        id: String,
        /// Restore to this path instead of where the file was.
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Write the quarantine key of a data directory made before quarantining existed
    /// (`custody init` does it for new ones). Needs the passphrase once.
    Setup {
        #[command(flatten)]
        unlock: Unlock,
    },
}

pub fn run(data_dir: &Path, args: &FixArgs) -> Result<u8> {
    if args.apply && !custody_vault::layout::has_ledger(data_dir) {
        bail!(
            "no ledger in {}: every fix is recorded, so the data directory must exist first.\n\
             Next step: run `custody init` (or pass --data-dir), then run this again.",
            data_dir.display()
        );
    }
    let mut detector = DetectorConfig::default().with_kinds(&args.kinds);
    detector.min_confidence = args.min_confidence;
    let limits = custody_scan::ExtractLimits {
        isolation: crate::scan::isolation(),
        ..custody_scan::ExtractLimits::default()
    };
    let mut fixer = match Fixer::new(
        data_dir,
        args.action,
        detector.clone(),
        limits.clone(),
        args.apply,
        crate::ledger::now_utc(),
    ) {
        Ok(f) => f,
        Err(fix::FixError::NoQuarantineKey) => bail!(
            "this data directory has no quarantine key yet (it was made by an older custody).\n\
                 Next step: run `custody quarantine setup` once (it asks for the passphrase)."
        ),
        Err(e) => return Err(e.into()),
    };
    let roots = match &args.from {
        Some(file) => saved_paths(file, &args.root)?,
        None if args.paths.is_empty() => vec![PathBuf::from(".")],
        None => args.paths.clone(),
    };
    if roots.is_empty() {
        println!("The saved scan lists no files with findings: nothing to do.");
        return Ok(EXIT_OK);
    }
    // Act only beneath what was scanned: the saved scan's --root, or the paths given.
    fixer.confine_to(if args.from.is_some() { vec![args.root.clone()] } else { roots.clone() });
    if let Some(url) = roots.iter().find(|p| custody_scan::is_database_url(&p.to_string_lossy())) {
        bail!(
            "custody fix acts on files, not on databases ('{}'): find what a database holds \
             with `custody scan`, and change it in the application that owns it",
            custody_scan::display_url(&url.to_string_lossy())
        );
    }
    // The same scan `custody scan` runs (issue 12: one `Job`), never from the cache: the
    // fix needs each file as it is now, and the values found in Office files.
    let job = custody_scan::Job {
        targets: roots.clone(),
        detector,
        limits,
        data_dir: Some(data_dir.to_path_buf()),
        cache: false,
        ..custody_scan::Job::default()
    };
    let mut found = fix::Gather::new(&roots, Some(args.action));
    // The scan before acting can take a while on a big folder: show it on a terminal.
    let bar = crate::progress::Bar::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let scanned = job.run(&mut found, &bar);
    bar.finish();
    scanned?;
    let skipped = std::mem::take(&mut found.skipped);
    let targets = found.into_targets();

    let ledger = if args.apply {
        Some(custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())?)
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    if !args.json {
        if !args.apply {
            writeln!(out, "Dry run: nothing is changed. Add --apply to do this.")?;
        }
        if targets.is_empty() {
            writeln!(out, "No customer data found: nothing to {}.", args.action.as_str())?;
        }
    }
    let (mut done, mut attention) = (0, 0);
    for target in &targets {
        let result = fixer.fix(args.action, target);
        match &result.outcome {
            Outcome::Done => done += 1,
            Outcome::Skipped(_) | Outcome::Failed(_) => attention += 1,
            Outcome::Planned => {}
        }
        if args.json {
            let mut line = json!({
                "action": result.action.as_str(),
                "path": result.path,
                "outcome": result.outcome.code(),
                "values": result.values,
                "findings_by_kind": result.kinds,
            });
            if let Outcome::Skipped(why) | Outcome::Failed(why) = &result.outcome {
                line["reason"] = json!(why);
            }
            if let Some(id) = &result.quarantine_id {
                line["quarantine_id"] = json!(id);
            }
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", describe(&result, target))?;
        }
        // Recorded after it is shown: a ledger failure must not hide what was done.
        if let Some(ledger) = &ledger
            && !matches!(result.outcome, Outcome::Planned | Outcome::Skipped(_))
        {
            record(ledger, &result, &target.path)?;
        }
    }
    if !args.json && !skipped.is_empty() {
        writeln!(
            out,
            "{} file{} could not be read, so nothing was done to {}:",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            if skipped.len() == 1 { "it" } else { "them" }
        )?;
        for skip in skipped.iter().take(20) {
            writeln!(out, "  {}: {}", skip.path, skip.reason)?;
        }
    }
    if let Some(ledger) = ledger {
        ledger.close();
    }
    if !args.json {
        if args.action == Action::Shred && !targets.is_empty() {
            writeln!(out, "Note: {}", fix::shred::CAVEAT)?;
        }
        if args.apply {
            writeln!(
                out,
                "{done} file{} done, {attention} need{} attention. Every action is in the ledger.",
                if done == 1 { "" } else { "s" },
                if attention == 1 { "s" } else { "" }
            )?;
        }
    }
    Ok(if attention > 0 { EXIT_FINDINGS } else { EXIT_OK })
}

/// One line for a person.
fn describe(result: &fix::Done, target: &fix::Target) -> String {
    let what = target.summary();
    let path = &result.path;
    match (&result.outcome, result.action) {
        (Outcome::Planned, Action::Quarantine) => {
            format!(
                "would quarantine {path} ({what}): encrypted into the data directory, then removed"
            )
        }
        (Outcome::Planned, Action::Redact) => {
            format!(
                "would redact {path} ({what}): values masked in place, the original kept in the quarantine"
            )
        }
        (Outcome::Planned, Action::Shred) => {
            format!("would shred {path} ({what}): overwritten, then deleted")
        }
        (Outcome::Planned, Action::Ignore) => {
            format!("would ignore {path} ({what}): these values are no longer reported")
        }
        (Outcome::Done, Action::Quarantine) => format!(
            "quarantined {path} ({what}) as {}",
            result.quarantine_id.as_deref().unwrap_or("?")
        ),
        (Outcome::Done, Action::Redact) => format!(
            "redacted {path}: {} value{} masked; the original is in the quarantine as {}",
            result.values,
            if result.values == 1 { "" } else { "s" },
            result.quarantine_id.as_deref().unwrap_or("?")
        ),
        (Outcome::Done, Action::Shred) => format!("shredded {path} ({what})"),
        (Outcome::Done, Action::Ignore) => {
            format!(
                "ignoring {} value{} in {path}",
                result.values,
                if result.values == 1 { "" } else { "s" }
            )
        }
        (Outcome::Skipped(why), _) => format!("not done: {path}: {why}"),
        (Outcome::Failed(why), _) => match &result.quarantine_id {
            // The copy is safe; the step after it failed.
            Some(id) => format!(
                "FAILED: {path}: {why}. A complete copy is in the quarantine as {id}: check the file, and `custody quarantine restore {id} --to PATH` if it is damaged"
            ),
            None if result.action == Action::Shred => format!(
                "FAILED: {path}: {why} (it may be partly overwritten, or renamed to a hidden .custody-tmp-… name beside it)"
            ),
            None => format!("FAILED: {path}: {why} (the file is as it was)"),
        },
    }
}

/// What the ledger keys (as a pseudonym) to bind a quarantined copy to its event.
fn quarantine_content(sha256: &str) -> String {
    format!("quarantine-sha256:{sha256}")
}

/// Review item 19: the quarantine's record (`ID.json`) is in clear beside the sealed copy,
/// and anyone who can write the data directory could change where a restore writes, or
/// put another sealed file in place (the sealing key is public). The ledger holds the
/// truth: the `fix.quarantine` / `fix.redact` event that made the entry, with the file's
/// path and a keyed pseudonym of the copy's SHA-256. A restore goes ahead only when the
/// record matches it; the reason is returned otherwise.
fn check_against_ledger(ledger: &Ledger, entry: &quarantine::Entry) -> Result<(), String> {
    use custody_ledger::Action as A;
    let mut made = None;
    for item in ledger.events(0) {
        let (_, event) = item.map_err(|e| format!("the ledger cannot be read: {e}"))?;
        if !matches!(event.kind(), Some(A::FixQuarantine | A::FixRedact)) {
            continue;
        }
        let Ok(done) = event.details_as::<custody_ledger::details::FixDone>() else { continue };
        if done.quarantine_id.as_deref() == Some(entry.id.as_str()) {
            made = Some(done);
        }
    }
    let Some(made) = made else {
        return Err("no fix in the ledger made this quarantine entry".into());
    };
    if !ledger.names_path(&made.path, &entry.original.display().to_string()) {
        return Err("its record names another original path than the ledger does".into());
    }
    if let Some(content) = &made.quarantine_content
        && ledger.pseudonym(&quarantine_content(&entry.sha256)).as_str() != content
    {
        return Err("its record names other content than the ledger does".into());
    }
    Ok(())
}

/// The ledger's name for a fix action.
fn ledger_action(action: Action) -> custody_ledger::Action {
    match action {
        Action::Quarantine => custody_ledger::Action::FixQuarantine,
        Action::Redact => custody_ledger::Action::FixRedact,
        Action::Shred => custody_ledger::Action::FixShred,
        Action::Ignore => custody_ledger::Action::FixIgnore,
    }
}

fn record(ledger: &Ledger, result: &fix::Done, file: &Path) -> Result<()> {
    let outcome =
        if result.outcome == Outcome::Done { LedgerOutcome::Ok } else { LedgerOutcome::Error };
    let mut event = Event::new(crate::ledger::actor(), ledger_action(result.action), outcome);
    // The absolute path: the record must say which file, wherever the command ran. By
    // pseudonym, the clear path in the path book (review item 18: a file name can be
    // customer data, and the log cannot forget).
    let path = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    event.set_details(&custody_ledger::details::FixDone {
        path: ledger.path_ref(&path.display().to_string())?,
        findings_by_kind: result.kinds.clone(),
        values: result.values,
        quarantine_id: result.quarantine_id.clone(),
        quarantine_content: result
            .quarantine_sha256
            .as_deref()
            .map(|sha| ledger.pseudonym(&quarantine_content(sha)).as_str().to_string()),
        reason: match &result.outcome {
            Outcome::Failed(why) => Some(why.clone()),
            _ => None,
        },
    })?;
    ledger.append(&event).context("the action could not be recorded in the ledger")?;
    Ok(())
}

/// The files a saved scan result names (JSON or JSON lines), outer files only, resolved
/// against `root`.
fn saved_paths(file: &Path, root: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the saved scan '{}'", file.display()))?;
    let mut values: Vec<serde_json::Value> = Vec::new();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => values.push(v),
        Err(_) => {
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                values.push(serde_json::from_str(line).with_context(|| {
                    format!(
                        "'{}' line {} is not JSON: save the scan with --format json or jsonl",
                        file.display(),
                        n + 1
                    )
                })?);
            }
        }
    }
    if !root.exists() {
        bail!("--root '{}' does not exist: give the folder that was scanned.", root.display());
    }
    // Paths in the result are as that scan showed them: relative to its root.
    let roots = [root.to_path_buf()];
    let mut paths = std::collections::BTreeSet::new();
    let mut outside = Vec::new();
    let mut ambiguous = Vec::new();
    let mut collect = |v: &serde_json::Value| {
        if let (Some(shown), Some(_)) = (v.get("path").and_then(|p| p.as_str()), v.get("kind")) {
            // The file alone is `file`; a scan saved before it existed has only `path`, where
            // a `!` may be a container level or part of a name: that one is refused below.
            let path = match v.get("file").and_then(|f| f.as_str()) {
                Some(file) => file,
                None if shown.contains('!') => {
                    ambiguous.push(shown.to_string());
                    return;
                }
                None => shown,
            };
            // A saved scan is a file anyone could have edited: only paths below --root.
            let below = std::path::Path::new(path).components().all(|c| {
                matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)
            });
            if below {
                paths.insert(path.to_string());
            } else {
                outside.push(path.to_string());
            }
        }
    };
    for v in &values {
        collect(v);
        for key in ["findings", "results"] {
            if let Some(list) = v.get(key).and_then(|l| l.as_array()) {
                list.iter().for_each(&mut collect);
            }
        }
    }
    if let Some(first) = ambiguous.first() {
        bail!(
            "the saved scan '{}' was written by an older custody: '{first}' could be a file \
             inside a container or a file with '!' in its name, and guessing could act on the \
             wrong file.\nNext step: scan the folder again with this version and fix from \
             that result.",
            file.display()
        );
    }
    if let Some(first) = outside.first() {
        bail!(
            "the saved scan '{}' lists {} path{} outside --root (the first: '{first}'): \
             absolute paths and paths with '..' are refused, so that a saved scan cannot \
             point a fix at files that were not scanned.\n\
             Next step: scan the folder again and fix from that result, or give the folder \
             that was scanned with --root.",
            file.display(),
            outside.len(),
            if outside.len() == 1 { "" } else { "s" }
        );
    }
    Ok(paths
        .into_iter()
        .map(|p| fix::on_disk(&roots, &p))
        .filter(|p| {
            let exists = p.exists();
            if !exists {
                eprintln!("note: {} is no longer there; left out.", p.display());
            }
            exists
        })
        .collect())
}

pub fn quarantine(data_dir: &Path, command: &QuarantineCommand) -> Result<u8> {
    match command {
        QuarantineCommand::List { json } => {
            if !quarantine::dir(data_dir).exists() {
                if !json {
                    println!("The quarantine is empty.");
                }
                return Ok(EXIT_OK);
            }
            let entries = quarantine::Quarantine::open(data_dir)?.list()?;
            let mut out = std::io::stdout().lock();
            if !json && entries.is_empty() {
                writeln!(out, "The quarantine is empty.")?;
            }
            for e in &entries {
                if *json {
                    writeln!(out, "{}", serde_json::to_string(e)?)?;
                } else {
                    let why = if e.reason == "redact" {
                        "original of a redacted file"
                    } else {
                        "moved here"
                    };
                    writeln!(
                        out,
                        "{}  {}  {}  {} bytes  ({why})",
                        e.id,
                        e.quarantined_at,
                        e.original.display(),
                        e.size
                    )?;
                }
            }
            Ok(EXIT_OK)
        }
        QuarantineCommand::Restore { id, to, unlock } => {
            // Record first, fail closed (review item 10): the event is in the ledger before
            // anything is decrypted, and no ledger (or a busy one) means no restore.
            if !custody_vault::layout::has_ledger(data_dir) {
                bail!(
                    "no ledger in {}: every restore is recorded first, so it cannot be done \
                     without one.\nNext step: run `custody init` (or pass --data-dir).",
                    data_dir.display()
                );
            }
            let store = quarantine::Quarantine::open(data_dir)?;
            let entry = store.entry(id)?;
            let target = to.clone().unwrap_or_else(|| entry.original.clone());
            if std::fs::symlink_metadata(&target).is_ok() {
                return Err(fix::FixError::Exists { path: target }.into());
            }
            let root = crate::records::unseal(data_dir, unlock)?;
            let ledger = custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())
                .context(
                    "the restore could not be recorded in the ledger, so nothing was decrypted",
                )?;
            let checked = check_against_ledger(&ledger, &entry);
            let outcome = if checked.is_ok() { LedgerOutcome::Ok } else { LedgerOutcome::Denied };
            let mut event = Event::new(
                crate::ledger::actor(),
                custody_ledger::Action::QuarantineRestore,
                outcome,
            );
            event.set_details(&custody_ledger::details::QuarantineRestore {
                quarantine_id: entry.id.clone(),
                path: ledger
                    .path_ref(&target.display().to_string())
                    .context("the restore could not be recorded, so nothing was decrypted")?,
            })?;
            ledger.append(&event).context(
                "the restore could not be recorded in the ledger, so nothing was decrypted",
            )?;
            ledger.close();
            if let Err(why) = checked {
                bail!(
                    "refusing to restore {}: {why}. The quarantine folder may have been \
                     changed by someone else; nothing was decrypted. Check `custody ledger \
                     export` for the fix that made it.",
                    entry.id
                );
            }
            let restored = custody_vault::layout::quarantine_key(data_dir, &root)
                .map_err(anyhow::Error::from)
                .and_then(|key| Ok(store.restore_with_key(&key, id, to.as_deref())?));
            drop(root);
            let entry = match restored {
                Ok(entry) => entry,
                Err(e) => {
                    // The attempt is in the ledger already; its failure goes there too.
                    let recorded =
                        custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())
                            .map_err(anyhow::Error::from)
                            .and_then(|ledger| {
                                let mut failed = Event::new(
                                    crate::ledger::actor(),
                                    custody_ledger::Action::QuarantineRestore,
                                    LedgerOutcome::Error,
                                );
                                failed.set_details(
                                    &custody_ledger::details::QuarantineRestore {
                                        quarantine_id: entry.id.clone(),
                                        path: ledger.path_ref(&target.display().to_string())?,
                                    },
                                )?;
                                ledger.append(&failed)?;
                                ledger.close();
                                Ok(())
                            });
                    if let Err(why) = recorded {
                        eprintln!("(the failure could not be recorded in the ledger: {why:#})");
                    }
                    return Err(e);
                }
            };
            println!("Restored {} to {}.", entry.id, target.display());
            Ok(EXIT_OK)
        }
        QuarantineCommand::Setup { unlock } => {
            let root = crate::records::unseal(data_dir, unlock)?;
            quarantine::set_up(data_dir, &custody_vault::layout::quarantine_key(data_dir, &root)?)?;
            println!(
                "The quarantine key is ready: `custody fix quarantine` works without the passphrase now."
            );
            Ok(EXIT_OK)
        }
    }
}
