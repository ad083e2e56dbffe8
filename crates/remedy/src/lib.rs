//! custody-remedy: what to do about a file that holds customer data. Remediation built on
//! the scanner (which it runs again before acting) and the quarantine's sealing; the
//! scanner itself knows nothing of it.
//!
//! - [`Action::Quarantine`]: seal the file into the quarantine (no passphrase needed), then
//!   overwrite and remove the original; `custody quarantine restore` brings it back with the unsealed vault.
//! - [`Action::Redact`]: rewrite it with every value masked, in the same format; the
//!   original goes to the quarantine first.
//! - [`Action::Shred`]: overwrite and remove it (best effort: see [`shred::CAVEAT`]).
//! - [`Action::Ignore`]: remember its values as accepted so later scans stop reporting them.
//!
//! Every action works on what the file holds *now*: the file is scanned again just before
//! acting, so a saved scan result only chooses which files. Nothing is lost when the
//! process dies mid-way: the original stays in place until a complete copy or a complete
//! replacement exists (see [`quarantine`] and [`Fixer::fix`]).

mod confine;
pub mod decommission;
pub mod quarantine;
pub mod redact;
pub mod shred;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use custody_crypto::sealed_file::SealingKey;
use custody_detect::{Detector, DetectorConfig, Kind, SensitiveValue};

pub use custody_scan::ignore;
use custody_scan::{Finding, NoProgress, ScanOptions, Scanner, Sink, Skip, resolve};

/// What to do with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Seal it into the quarantine and remove it.
    Quarantine,
    /// Mask its values in place (original kept in the quarantine).
    Redact,
    /// Overwrite and remove it.
    Shred,
    /// Stop reporting its values.
    Ignore,
}

impl Action {
    /// The stable name (`quarantine`, …), also the ledger event's suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Quarantine => "quarantine",
            Action::Redact => "redact",
            Action::Shred => "shred",
            Action::Ignore => "ignore",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "quarantine" => Action::Quarantine,
            "redact" => Action::Redact,
            "shred" => Action::Shred,
            "ignore" => Action::Ignore,
            _ => {
                return Err(format!(
                    "'{s}' is not an action: use quarantine, redact, shred or ignore"
                ));
            }
        })
    }
}

/// Why a remediation step failed. Never carries a customer value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixError {
    /// Reading or writing failed.
    #[error("'{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A custody file is damaged.
    #[error("'{path}' is damaged")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
    /// The quarantine's public key was never written.
    #[error("this data directory has no quarantine key yet")]
    NoQuarantineKey,
    /// The file changed while it was being read.
    #[error("'{path}' changed while it was being read; nothing was done to it")]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// No such quarantine entry.
    #[error("nothing in the quarantine has the id '{id}'")]
    NotInQuarantine {
        /// The id asked for.
        id: String,
    },
    /// Restoring would overwrite a file.
    #[error("'{path}' already exists; nothing was overwritten")]
    Exists {
        /// The file in the way.
        path: PathBuf,
    },
    /// The redacted copy could not be read back to check it.
    #[error(
        "the redacted copy of '{path}' could not be read back to check it; the file was not changed"
    )]
    Unverified {
        /// The original file.
        path: PathBuf,
    },
    /// The ignore list failed in a way not named above (its own error, as it is).
    #[error(transparent)]
    Ignore(ignore::IgnoreError),
    /// The quarantined file does not open with this installation's key.
    #[error("the quarantined file does not open with this vault's key")]
    WrongKey,
}

impl From<ignore::IgnoreError> for FixError {
    fn from(e: ignore::IgnoreError) -> Self {
        match e {
            ignore::IgnoreError::Io { path, source } => FixError::Io { path, source },
            ignore::IgnoreError::Damaged { path } => FixError::Damaged { path },
            other => FixError::Ignore(other),
        }
    }
}

impl FixError {
    pub(crate) fn from_io(path: &Path) -> impl FnOnce(io::Error) -> FixError + '_ {
        move |source| FixError::Io { path: path.to_path_buf(), source }
    }
}

/// One file to act on, with what was found in it (inside it, for a container).
pub struct Target {
    /// The file on disk.
    pub path: PathBuf,
    /// As shown to the user.
    pub display: String,
    /// Findings by kind.
    pub counts: BTreeMap<Kind, u64>,
    /// The distinct values found (kept only for the actions that need them: redact and
    /// ignore).
    pub values: Vec<(Kind, SensitiveValue)>,
    /// Some findings are inside it (a member of an archive, a cell of a sheet).
    pub inside: bool,
    /// What the file looked like when the scan reported it (inode, size, modification
    /// time): a fix acts only on that same file.
    pub seen: Option<quarantine::Seen>,
}

impl Target {
    /// All findings.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Findings by kind name.
    pub fn kinds(&self) -> BTreeMap<String, u64> {
        self.counts.iter().map(|(k, n)| (k.as_str().to_string(), *n)).collect()
    }

    /// "3 × payment card number, 1 × email address" (plain words).
    pub fn summary(&self) -> String {
        self.counts
            .iter()
            .map(|(k, n)| format!("{n} × {}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Gathers a scan's findings into one [`Target`] per file on disk, as they arrive: counts
/// by kind, and the distinct values only when the action needs them, so a file with a
/// million findings costs its distinct values, not a million findings.
pub struct Gather {
    roots: Vec<PathBuf>,
    keep: Keep,
    files: BTreeMap<String, (Target, HashSet<(Kind, String)>)>,
    /// Everything skipped.
    pub skipped: Vec<Skip>,
}

impl Gather {
    /// For a scan of `roots`, keeping the values `action` needs.
    pub fn new(roots: &[PathBuf], action: Option<Action>) -> Self {
        let keep = match action {
            Some(Action::Ignore) => Keep::All,
            // Redaction finds values in text, CSV, JSON and HTML by itself (the whole file
            // at once, with its header); Office files are read cell by cell and paragraph
            // by paragraph, where the values found with context must be handed over.
            Some(Action::Redact) => Keep::Office,
            _ => Keep::None,
        };
        Self { roots: roots.to_vec(), keep, files: BTreeMap::new(), skipped: Vec::new() }
    }

    /// The files with findings, in path order.
    pub fn into_targets(self) -> Vec<Target> {
        self.files
            .into_values()
            .map(|(mut target, values)| {
                target.values =
                    values.into_iter().map(|(k, v)| (k, SensitiveValue::new(v))).collect();
                target
            })
            .collect()
    }
}

impl Sink for Gather {
    fn finding(&mut self, finding: &Finding) -> io::Result<()> {
        // The file the scan read, carried with the finding: a `!` in a file's name is part
        // of the name, never a container level (review item 9).
        let outer = finding.file().to_string();
        let roots = &self.roots;
        let (target, values) = self.files.entry(outer.clone()).or_insert_with(|| {
            let path = resolve(roots, &outer);
            let seen = quarantine::Seen::of(&path).ok();
            let target = Target {
                path,
                display: outer,
                counts: BTreeMap::new(),
                values: Vec::new(),
                inside: false,
                seen,
            };
            (target, HashSet::new())
        });
        *target.counts.entry(finding.kind).or_insert(0) += 1;
        target.inside |= finding.member().is_some();
        let keep = match self.keep {
            Keep::All => true,
            Keep::Office => Path::new(&target.display).extension().is_some_and(|e| {
                ["docx", "xlsx", "xlsm"].iter().any(|x| e.eq_ignore_ascii_case(x))
            }),
            Keep::None => false,
        };
        if keep {
            values.insert((finding.kind, finding.value.expose().to_string()));
        }
        Ok(())
    }

    fn skipped(&mut self, skip: &Skip) -> io::Result<()> {
        self.skipped.push(skip.clone());
        Ok(())
    }
}

/// Which values a [`Gather`] keeps.
#[derive(Clone, Copy)]
enum Keep {
    None,
    Office,
    All,
}

/// Where `shown` (a path as a scan of `roots` reports it) is on disk.
pub fn on_disk(roots: &[PathBuf], shown: &str) -> PathBuf {
    resolve(roots, shown)
}

/// Flushes a file's folder entry (a rename or an unlink) to disk, best effort.
pub(crate) fn sync_dir_of(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = File::open(parent).and_then(|d| d.sync_all());
    }
}

/// What happened to one file.
#[derive(Debug)]
pub struct Done {
    /// The action.
    pub action: Action,
    /// The file, as shown.
    pub path: String,
    /// The result.
    pub outcome: Outcome,
    /// Where the original (or the backup) went in the quarantine.
    pub quarantine_id: Option<String>,
    /// The SHA-256 of what went into the quarantine (hex): recorded, keyed, in the ledger,
    /// so a restore can tell the sealed copy from one put in its place.
    pub quarantine_sha256: Option<String>,
    /// Values masked (redact) or remembered (ignore).
    pub values: u64,
    /// Findings by kind.
    pub kinds: BTreeMap<String, u64>,
}

/// The result of one action.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Dry run: what would be done.
    Planned,
    /// Done.
    Done,
    /// Not done, on purpose (the format cannot be redacted, …): the reason in plain words.
    Skipped(String),
    /// It failed; the file is as it was. The reason in plain words.
    Failed(String),
}

impl Outcome {
    /// The stable code in JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Done => "done",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// Carries out actions for one data directory.
pub struct Fixer {
    data_dir: PathBuf,
    detector: DetectorConfig,
    limits: custody_extract::Limits,
    /// Act (false: dry run).
    apply: bool,
    /// The time recorded with quarantine entries and ignores (UTC, RFC 3339).
    when: String,
    sealing_key: Option<SealingKey>,
    ignore: Option<ignore::IgnoreList>,
    /// The folders (or files) that were scanned: a fix acts only beneath them.
    bases: Vec<PathBuf>,
}

impl Fixer {
    /// A fixer; with `apply`, the keys the action needs are read now (fail early).
    pub fn new(
        data_dir: &Path,
        action: Action,
        detector: DetectorConfig,
        limits: custody_extract::Limits,
        apply: bool,
        when: String,
    ) -> Result<Self, FixError> {
        let needs_quarantine = apply && matches!(action, Action::Quarantine | Action::Redact);
        let sealing_key =
            if needs_quarantine { Some(quarantine::read_sealing_key(data_dir)?) } else { None };
        let ignore = if apply && action == Action::Ignore {
            ignore::IgnoreList::load(data_dir, true)?
        } else {
            None
        };
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            detector,
            limits,
            apply,
            when,
            sealing_key,
            ignore,
            bases: Vec::new(),
        })
    }

    /// Acts only on files beneath `bases` (the folders or files that were scanned, or the
    /// `--root` of a saved scan), reached without following a symbolic link below them.
    /// Without bases, nothing is changed.
    pub fn confine_to(&mut self, bases: Vec<PathBuf>) {
        self.bases = bases;
    }

    /// Carries out `action` on `target`.
    pub fn fix(&mut self, action: Action, target: &Target) -> Done {
        let mut done = Done {
            action,
            path: target.display.clone(),
            outcome: Outcome::Planned,
            quarantine_id: None,
            quarantine_sha256: None,
            values: target.total(),
            kinds: target.kinds(),
        };
        let format = if action == Action::Redact {
            match Self::redact_format(target) {
                Ok(format) => Some(format),
                Err(why) => {
                    done.outcome = Outcome::Skipped(why);
                    return done;
                }
            }
        } else {
            None
        };
        if !self.apply {
            return done;
        }
        if action == Action::Ignore {
            // Changes no file: only the list of ignored findings in the data directory.
            done.outcome = match self.ignore(target, &mut done) {
                Ok(()) => Outcome::Done,
                Err(Stop::Skip(why)) => Outcome::Skipped(why),
                Err(Stop::Fix(e)) => Outcome::Failed(e.to_string()),
            };
            return done;
        }
        // From here on the file is reached through its folder's handle, never by name.
        let held = match confine::hold(&self.bases, &target.path, target.seen) {
            Ok(held) => held,
            Err(why) => {
                done.outcome = Outcome::Skipped(format!("nothing was done: {why}"));
                return done;
            }
        };
        let original = target.path.as_path();
        let target = &Target {
            path: held.path().to_path_buf(),
            display: target.display.clone(),
            counts: target.counts.clone(),
            values: target.values.clone(),
            inside: target.inside,
            seen: target.seen,
        };
        quarantine::clear_leftovers(&target.path);
        let result = match action {
            Action::Quarantine => self.quarantine(target, original, &mut done),
            Action::Redact => {
                self.redact(target, original, format.expect("sniffed above for redact"), &mut done)
            }
            Action::Shred if !single_link(&target.path) => Err(Stop::Skip(
                "other names (hard links) share this file's content: shredding would destroy \
                 them too; delete the other names or quarantine it instead"
                    .into(),
            )),
            Action::Shred => shred::shred(&target.path)
                .map(|_| ())
                .map_err(|e| FixError::Io { path: original.to_path_buf(), source: e }.into()),
            Action::Ignore => unreachable!("handled above"),
        };
        done.outcome = match result {
            Ok(()) => Outcome::Done,
            Err(Stop::Skip(why)) => Outcome::Skipped(why),
            Err(Stop::Fix(e)) => Outcome::Failed(e.to_string()),
        };
        done
    }

    /// The file's format if redaction can rewrite it, or why not in plain words.
    fn redact_format(target: &Target) -> Result<custody_extract::Format, String> {
        let format = Self::format(&target.path).map_err(|e| e.to_string())?;
        // Inside a docx or xlsx is a cell or a paragraph: redaction rewrites those.
        if target.inside
            && !matches!(format, custody_extract::Format::Docx | custody_extract::Format::Xlsx)
        {
            return Err("values are inside an archive or mail: quarantine it instead".into());
        }
        if !redact::redactable(format) {
            return Err(redact::RedactError::Unsupported.to_string() + ": quarantine it instead");
        }
        Ok(format)
    }

    fn format(path: &Path) -> Result<custody_extract::Format, io::Error> {
        let mut file = File::open(path)?;
        let head = custody_extract::head(&mut file)?;
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        Ok(custody_extract::sniff(&name, &head))
    }

    fn quarantine(
        &mut self,
        target: &Target,
        original: &Path,
        done: &mut Done,
    ) -> Result<(), Stop> {
        let key = self.sealing_key.ok_or(FixError::NoQuarantineKey)?;
        let store = quarantine::Quarantine::open(&self.data_dir)?;
        let entry = store.put_from(
            key,
            &target.path,
            original,
            "quarantine",
            &self.when,
            target.kinds(),
            target.seen,
        )?;
        done.quarantine_id = Some(entry.id.clone());
        done.quarantine_sha256 = Some(entry.sha256.clone());
        // Saved again since it was sealed: the copy is not what is there now.
        if quarantine::Seen::of(&target.path).ok() != Some(entry.seen) {
            return Err(FixError::Changed { path: target.path.clone() }.into());
        }
        // The sealed copy is complete and on disk: only now does the original go, its
        // bytes overwritten first (best effort, as `shred`) — unless other names link to
        // the same content, which must not be zeroed behind their back.
        if single_link(&target.path) {
            shred::shred(&target.path).map_err(FixError::from_io(&target.path))?;
        } else {
            fs::remove_file(&target.path).map_err(FixError::from_io(&target.path))?;
        }
        sync_dir_of(&target.path);
        Ok(())
    }

    fn redact(
        &mut self,
        target: &Target,
        original: &Path,
        format: custody_extract::Format,
        done: &mut Done,
    ) -> Result<(), Stop> {
        let key = self.sealing_key.ok_or(FixError::NoQuarantineKey)?;
        let path = &target.path;
        let meta = fs::symlink_metadata(path).map_err(FixError::from_io(original))?;
        let seen = quarantine::Seen::from_meta(&meta);
        if meta.len() > redact::MAX_REDACT {
            return Err(Stop::Skip(format!(
                "larger than {} MB: too large to rewrite in place; quarantine it instead",
                redact::MAX_REDACT >> 20
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        confine::open_no_follow(path, false)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(FixError::from_io(path))?;
        if quarantine::Seen::of(path).ok() != Some(seen) {
            return Err(FixError::Changed { path: path.clone() }.into());
        }
        let detector = Detector::new(self.detector.clone());
        let finder = redact::Finder::new(&detector, &target.values);
        let redacted = redact::redact(format, &bytes, &finder)
            .map_err(|e| Stop::Skip(format!("{e}; quarantine it instead")))?;
        drop(bytes);
        // The new content, complete and flushed, beside the original.
        let tmp = custody_store::files::temp_beside(path).map_err(FixError::from_io(path))?;
        let written = (|| {
            let mut file = custody_store::files::create_private(&tmp)?;
            file.write_all(&redacted.bytes)?;
            if let Some(mode) = quarantine::mode_of(&meta) {
                custody_store::files::set_mode(&file, mode)?;
            }
            file.sync_all()
        })();
        drop(redacted.bytes);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(FixError::Io { path: path.clone(), source: e }.into());
        }
        // Checked the way a scan reads it: anything still found means the rewrite missed
        // something, and the original stays as it is.
        let remaining = match self.rescan(&tmp) {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        if remaining > 0 {
            let _ = fs::remove_file(&tmp);
            return Err(Stop::Skip(format!(
                "{remaining} value{} would remain after redacting (found only with the \
                 surrounding document as context); the file was not changed: quarantine it instead",
                if remaining == 1 { "" } else { "s" }
            )));
        }
        // The original into the quarantine, then the redacted file over it (one rename).
        let entry = match quarantine::Quarantine::open(&self.data_dir).and_then(|q| {
            q.put_from(key, path, original, "redact", &self.when, target.kinds(), Some(seen))
        }) {
            Ok(entry) => entry,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        done.quarantine_sha256 = Some(entry.sha256.clone());
        done.quarantine_id = Some(entry.id);
        // The last look before the swap: a save since the read would be lost.
        if quarantine::Seen::of(path).ok() != Some(seen) {
            let _ = fs::remove_file(&tmp);
            return Err(FixError::Changed { path: path.clone() }.into());
        }
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(FixError::Io { path: path.clone(), source: e }.into());
        }
        sync_dir_of(path);
        done.values = redacted.values;
        Ok(())
    }

    /// Findings a scan reports in one file.
    fn rescan(&self, path: &Path) -> Result<u64, FixError> {
        let options = ScanOptions {
            roots: vec![path.to_path_buf()],
            detector: self.detector.clone(),
            limits: self.limits.clone(),
            threads: 1,
            ..ScanOptions::default()
        };
        let mut collect = Gather::new(&options.roots, None);
        let scanner = Scanner::new(options).map_err(|e| FixError::Io {
            path: path.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        let summary = scanner.run(&mut collect, &NoProgress).map_err(|e| FixError::Io {
            path: path.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        // A result that cannot be read through is not a checked result.
        if summary.files_scanned != 1 || !collect.skipped.is_empty() {
            return Err(FixError::Unverified { path: path.to_path_buf() });
        }
        Ok(summary.total_findings())
    }

    fn ignore(&mut self, target: &Target, done: &mut Done) -> Result<(), Stop> {
        let list = self.ignore.as_mut().expect("loaded in Fixer::new for ignore");
        let path = target.path.canonicalize().map_err(FixError::from_io(&target.path))?;
        let mut added = 0;
        for (kind, value) in &target.values {
            if list.add(&path, *kind, value, &self.when)? {
                added += 1;
            }
        }
        done.values = added;
        Ok(())
    }
}

/// Whether no other name links to this file's content.
fn single_link(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::symlink_metadata(path).is_ok_and(|m| m.nlink() == 1)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

/// Why an action stopped: a reason not to act (nothing changed), or a failure.
enum Stop {
    Skip(String),
    Fix(FixError),
}

impl From<FixError> for Stop {
    fn from(e: FixError) -> Self {
        Stop::Fix(e)
    }
}

impl From<ignore::IgnoreError> for Stop {
    fn from(e: ignore::IgnoreError) -> Self {
        Stop::Fix(e.into())
    }
}
