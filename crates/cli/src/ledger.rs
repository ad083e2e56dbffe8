//! `custody ledger …`: the tamper-evident access log.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use custody_ledger::merkle::{Hash, leaf_hash};
use custody_ledger::{Bundle, Event, ExportFilter, Ledger, LedgerOptions, Outcome, verify_bundle};
use serde_json::json;

use crate::{EXIT_FINDINGS, EXIT_OK};

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Create the data directory, the ledger and its keys.
    Init,
    /// Print the key auditors verify checkpoints and bundles with.
    PublicKey,
    /// Print the pseudonym of a value (a record id, an email), to look it up in the ledger.
    Hash {
        /// The value.
        value: String,
    },
    /// Sign a checkpoint of the log as it is now; --out writes it for a witness to keep.
    Checkpoint {
        /// Also write the checkpoint to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The signing key is sealed under the vault: the passphrase opens it.
        #[command(flatten)]
        unlock: crate::records::Unlock,
    },
    /// Print an inclusion proof (--index) or a consistency proof (--from/--to) as JSON.
    Prove(ProveArgs),
    /// Recompute the whole log and check every checkpoint; --against checks a witnessed one.
    Verify {
        /// A checkpoint written earlier by `checkpoint --out`.
        #[arg(long, value_name = "FILE")]
        against: Option<PathBuf>,
    },
    /// Write an evidence bundle: matching events, their proofs and a signed checkpoint.
    Export(ExportArgs),
    /// Forget a file's path: the log names files by pseudonym and keeps the clear paths
    /// apart (`ledger-paths.db`); this deletes PATH's clear path there, so a file name such
    /// as "Jane Doe SSN.pdf" is gone. Its events stay, by pseudonym, and the log still
    /// verifies. Recorded as `ledger.forget_path`.
    ForgetPath {
        /// The file's path, as custody recorded it (absolute; a relative one is made so).
        path: PathBuf,
    },
    /// Verify an evidence bundle offline, without the data directory.
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// The business's public key (from `custody ledger public-key`).
        #[arg(long)]
        key: String,
    },
}

#[derive(Args)]
pub struct ProveArgs {
    /// The event whose inclusion to prove.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    index: Option<u64>,
    /// The tree size to prove against (default: the whole log).
    #[arg(long, requires = "index")]
    size: Option<u64>,
    /// Older tree size, for a consistency proof.
    #[arg(long, requires = "to")]
    from: Option<u64>,
    /// Newer tree size, for a consistency proof.
    #[arg(long, requires = "from")]
    to: Option<u64>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// From this time: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or milliseconds since 1970 (UTC).
    #[arg(long)]
    from: String,
    /// To this time (a date includes its whole day).
    #[arg(long)]
    to: String,
    /// Only events by this actor.
    #[arg(long)]
    actor: Option<String>,
    /// Only events about this record (give the raw id; it is matched by pseudonym).
    #[arg(long)]
    record: Option<String>,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The bundle's checkpoint is signed now: when the signing key is sealed under the
    /// vault, the passphrase opens it.
    #[command(flatten)]
    unlock: crate::records::Unlock,
}

use custody_store::hex::encode as hex;

fn open(dir: &Path) -> Result<Ledger> {
    if !custody_vault::layout::has_ledger(dir) {
        bail!(
            "no ledger in '{}'; create one with `custody ledger init` (or point --data-dir / CUSTODY_DATA_DIR at it)",
            dir.display()
        );
    }
    Ok(custody_vault::layout::open_ledger(dir, LedgerOptions::default())?)
}

/// The ledger, able to sign checkpoints: when its signing key is sealed under the vault
/// (review item 12), the passphrase opens it — asked before the ledger is opened, so a
/// wrong one is recorded.
pub(crate) fn signing_ledger(dir: &Path, unlock: &crate::records::Unlock) -> Result<Ledger> {
    let data = custody_store::DataDir::new(dir);
    let sealed = data.ledger_signing_sealed().exists() && !data.ledger_signing_key().exists();
    let root = if sealed {
        Some(crate::records::unseal(dir, unlock).context(
            "the ledger's signing key is sealed under the vault, and a checkpoint is signed now: \
             the passphrase opens it",
        )?)
    } else {
        None
    };
    let ledger = open(dir)?;
    if let Some(root) = root {
        let key = custody_vault::layout::ledger_key(dir, &root)?;
        custody_vault::layout::ledger_signing(dir, &ledger, &key)?;
    }
    Ok(ledger)
}

pub fn run(dir: &Path, command: &LedgerCommand) -> Result<u8> {
    match command {
        LedgerCommand::Init => {
            let ledger = Ledger::init(dir, LedgerOptions::default())
                .with_context(|| format!("cannot create the ledger in '{}'", dir.display()))?;
            println!("Created the ledger in {}.", dir.display());
            println!(
                "Public key (give it to your accountant, lawyer or insurer; it is safe to share):"
            );
            println!("  {}", ledger.verifier().to_key_string());
            println!(
                "Keys are in {}: keep a copy offline; never share that folder.",
                dir.join("keys").display()
            );
            println!(
                "Next step: run `custody ledger checkpoint --out checkpoint.txt` now and then, and hand the file to someone outside the business."
            );
        }
        LedgerCommand::PublicKey => println!("{}", open(dir)?.verifier().to_key_string()),
        LedgerCommand::Hash { value } => println!("{}", open(dir)?.pseudonym(value).as_str()),
        LedgerCommand::ForgetPath { path } => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let shown = path.display().to_string();
            let ledger = open(dir)?;
            // The event names the path by its pseudonym only: recorded first, as every
            // other change.
            let mut event =
                Event::new(actor(), custody_ledger::Action::LedgerForgetPath, Outcome::Ok);
            event.set_details(&custody_ledger::details::PathForgotten {
                path: format!(
                    "{}{}",
                    custody_ledger::paths::PATH_REF_PREFIX,
                    ledger.pseudonym(&shown).as_str()
                ),
            })?;
            ledger.append(&event)?;
            let forgotten = ledger.forget_path(&shown)?;
            // The scan cache names every file scanned: it goes too (it is only a cache).
            custody_scan::cache::ScanCache::clear(dir);
            if forgotten {
                println!(
                    "Forgotten: the ledger no longer holds that path in clear (its events keep a \
                     pseudonym of it), and the scan cache was cleared."
                );
            } else {
                println!(
                    "The ledger holds no clear copy of that path (never recorded, or already forgotten)."
                );
            }
            ledger.close();
        }
        LedgerCommand::Checkpoint { out, unlock } => {
            let cp = signing_ledger(dir, unlock)?.checkpoint()?;
            print!("{}", cp.note);
            if let Some(path) = out {
                fs::write(path, &cp.note)
                    .with_context(|| format!("cannot write '{}'", path.display()))?;
                eprintln!("Wrote the checkpoint ({} events) to {}.", cp.size, path.display());
            }
        }
        LedgerCommand::Prove(args) => {
            let ledger = open(dir)?;
            let total = ledger.size()?;
            let out = if let Some(index) = args.index {
                let size = args.size.unwrap_or(total);
                let proof = ledger.inclusion_proof(index, size)?;
                let leaf = ledger.leaf(index)?;
                json!({"index": index, "size": size, "leaf_hash": hex(&leaf_hash(&leaf)),
                       "root": hex(&ledger.root(size)?), "proof": proof.iter().map(|h| hex(h)).collect::<Vec<_>>()})
            } else if let (Some(from), Some(to)) = (args.from, args.to) {
                let proof = ledger.consistency_proof(from, to)?;
                json!({"from": from, "to": to, "old_root": hex(&ledger.root(from)?), "new_root": hex(&ledger.root(to)?),
                       "proof": proof.iter().map(|h: &Hash| hex(h)).collect::<Vec<_>>()})
            } else {
                bail!("give --index I (inclusion) or --from M --to N (consistency)");
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        LedgerCommand::Verify { against } => {
            let ledger = open(dir)?;
            if let Some(path) = against {
                let note = fs::read_to_string(path)
                    .with_context(|| format!("cannot read '{}'", path.display()))?;
                match ledger.verify_against(&note) {
                    Ok(w) => println!(
                        "OK: the log ({} events) is an append-only extension of the witnessed checkpoint ({} events).",
                        w.current_size, w.witnessed_size
                    ),
                    Err(e) => {
                        println!("PROBLEM: {e}");
                        return Ok(EXIT_FINDINGS);
                    }
                }
            }
            // Review item 12: the newest checkpoint in the witness folder (`[ledger]
            // witness`) is checked by default, so dropping the newest events and
            // checkpoints from the data directory does not pass unseen.
            if against.is_none() {
                match ledger.witnessed() {
                    Some(Ok(note)) => match ledger.verify_against(&note) {
                        Ok(w) => println!(
                            "OK: the log ({} events) extends the checkpoint in the witness folder ({} events).",
                            w.current_size, w.witnessed_size
                        ),
                        Err(e) => {
                            println!("PROBLEM: against the witness folder's checkpoint: {e}");
                            println!(
                                "What to do: keep a copy of the data directory and of the witness folder as they are now, and get help before changing anything."
                            );
                            return Ok(EXIT_FINDINGS);
                        }
                    },
                    Some(Err(e)) => {
                        println!("PROBLEM: the witness folder's checkpoint cannot be read: {e}");
                        return Ok(EXIT_FINDINGS);
                    }
                    None => {}
                }
            }
            let report = ledger.verify()?;
            match report.problem {
                None => println!(
                    "OK: {} events and {} checkpoints verified.",
                    report.events, report.checkpoints
                ),
                Some(p) => {
                    println!("PROBLEM at position {}: {}", p.position, p.what);
                    println!(
                        "What to do: keep a copy of the data directory as it is now, and get help before changing anything."
                    );
                    return Ok(EXIT_FINDINGS);
                }
            }
        }
        LedgerCommand::Export(args) => {
            let ledger = signing_ledger(dir, &args.unlock)?;
            let filter = ExportFilter {
                from_ms: parse_time(&args.from, false)?,
                to_ms: parse_time(&args.to, true)?,
                actor: args.actor.clone(),
                record: args.record.clone(),
            };
            let bundle = ledger.export(&filter)?;
            fs::write(&args.out, serde_json::to_vec_pretty(&bundle)?)
                .with_context(|| format!("cannot write '{}'", args.out.display()))?;
            println!("Wrote {} events with proofs to {}.", bundle.events.len(), args.out.display());
            println!(
                "Anyone can check it with: custody ledger verify-bundle {} --key '{}'",
                args.out.display(),
                ledger.verifier().to_key_string()
            );
        }
        LedgerCommand::VerifyBundle { file, key } => {
            let text =
                fs::read(file).with_context(|| format!("cannot read '{}'", file.display()))?;
            let bundle: Bundle = serde_json::from_slice(&text).context("not an evidence bundle")?;
            match verify_bundle(&bundle, key) {
                Ok(r) => println!(
                    "OK: {} events verified against a checkpoint of {} events signed by {}.",
                    r.events, r.checkpoint_size, r.origin
                ),
                Err(e) => {
                    println!("PROBLEM: {e}");
                    return Ok(EXIT_FINDINGS);
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// Records a `scan.run` event when the data directory holds a ledger.
pub fn record_scan(dir: &Path, roots: &[PathBuf], summary: &serde_json::Value) -> Result<()> {
    if !custody_vault::layout::has_ledger(dir) {
        return Ok(());
    }
    let ledger = custody_vault::layout::open_ledger(dir, LedgerOptions::default())?;
    let mut event = Event::new(actor(), custody_ledger::Action::ScanRun, Outcome::Ok);
    // The summary's counts (the fields `ScanRun` names; the riskiest files are left out).
    let mut details: custody_ledger::details::ScanRun = serde_json::from_value(summary.clone())
        .context("the scan summary does not have the shape the ledger records")?;
    // By pseudonym, as every path the ledger names (review item 18).
    details.roots = roots
        .iter()
        .map(|r| ledger.path_ref(&r.display().to_string()))
        .collect::<Result<_, _>>()?;
    event.set_details(&details)?;
    ledger.append(&event).context("the scan could not be recorded in the ledger")?;
    ledger.close();
    Ok(())
}

/// The current time, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn now_utc() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    format_ms(ms)
}

/// A time in milliseconds since the epoch (as events hold it), UTC, as
/// `YYYY-MM-DDTHH:MM:SSZ` (`?` for a time outside jiff's range, which no event holds).
pub(crate) fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| "?".into(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The local user, as the ledger's actor for CLI actions: the account the process runs as
/// (its real uid, looked up in the system's user database), never `$USER`, which anyone
/// can set. An account without a name is recorded by its number (`cli:uid:1001`).
pub(crate) fn actor() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("cli:{}", user.name),
        _ => format!("cli:uid:{uid}"),
    }
}

/// Parses milliseconds since the epoch, a date `YYYY-MM-DD` (UTC; its first or, with
/// `end_of_day`, its last millisecond), or an RFC 3339 time (`2026-12-03T14:00:00Z`,
/// `2026-12-03T09:00:00-05:00`).
fn parse_time(s: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow::anyhow!(
            "'{s}' is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (or an offset such as -05:00)"
        )
    };
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let date: jiff::civil::Date = s.parse().map_err(|_| bad())?;
    let start = date.to_zoned_datetime(jiff::tz::TimeZone::UTC).map_err(|_| bad())?.timestamp();
    let ms = start.as_millisecond();
    Ok(if end_of_day { ms + 86_400_000 - 1 } else { ms })
}

#[cfg(test)]
mod tests {
    use super::{now_utc, parse_time};

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01", false).unwrap(), 0);
        let now = now_utc();
        let ms = parse_time(&now, false).unwrap();
        let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!((real.as_millis() as i64 - ms).abs() < 5_000, "{now}");
        assert_eq!(parse_time("1970-01-01", true).unwrap(), 86_399_999);
        assert_eq!(parse_time("2023-11-14T22:13:20Z", false).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000000", false).unwrap(), 1_700_000_000_000);
        assert!(parse_time("yesterday", false).is_err());
        assert!(parse_time("2023-13-01", false).is_err());
        assert!(parse_time("2023-02-30", false).is_err(), "no such day");
        assert_eq!(parse_time("2023-11-14T17:13:20-05:00", false).unwrap(), 1_700_000_000_000);
        assert_eq!(super::format_ms(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::format_ms(-1), "1969-12-31T23:59:59Z");
    }
}
