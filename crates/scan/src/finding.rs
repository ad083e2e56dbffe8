//! What a scan reports: findings, skipped files and the summary.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use custody_detect::{Kind, Reason, SensitiveValue};

/// One value found in one file, located exactly.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The file, as the user would type it relative to the scan root (shared by all the
    /// findings of one file).
    pub path: Arc<str>,
    /// How many bytes of `path` name the file itself; the rest (from a `!`) is the location
    /// inside it (`a.zip!b.xlsx!C7`). Carried, never guessed from `!`: a file may be called
    /// `budget.xlsx!x.csv` (review item 9).
    pub file_len: usize,
    /// What it is.
    pub kind: Kind,
    /// A finer label where one exists.
    pub subkind: Option<&'static str>,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in bytes (UTF-16 files: code units) from the start of the line.
    pub column: u64,
    /// Byte offset of the first byte in the file.
    pub offset: u64,
    /// Length in bytes in the file.
    pub length: u64,
    /// How sure we are, 0–1.
    pub confidence: f32,
    /// Why; printed as stable strings (`luhn`, `iin:visa`, `context:card`, `column:ssn`).
    pub reasons: Vec<Reason>,
    /// A published test card number.
    pub test_card: bool,
    /// The value; masked whenever printed unless the user asked to reveal.
    pub value: SensitiveValue,
    /// In JSON: the value's key path (`$.customers[3].email`).
    pub key: Option<Arc<str>>,
    /// `value` is already masked (results reused from the scan cache).
    pub premasked: bool,
}

impl Finding {
    /// The file on disk (or the database table) the finding is in, as shown.
    pub fn file(&self) -> &str {
        self.path.get(..self.file_len).unwrap_or(&self.path)
    }

    /// Where inside the file, for a container or document member (`b.xlsx!C7`): `path`
    /// after the file and its `!`.
    pub fn member(&self) -> Option<&str> {
        self.path.get(self.file_len..).and_then(|m| m.strip_prefix('!')).filter(|m| !m.is_empty())
    }

    /// The value as shown by default: masked.
    pub fn masked(&self) -> String {
        if self.premasked {
            return self.value.expose().to_string();
        }
        self.value.masked(self.kind)
    }
}

/// A file that was not scanned, or not completely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The file or directory, as the user would type it.
    pub path: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why a file was skipped. The `Display` form is the plain-words reason in every output.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SkipReason {
    /// Binary content (a NUL byte near the start, no UTF-16 byte-order mark).
    Binary,
    /// Opening or reading failed.
    Unreadable(String),
    /// A symbolic link, not followed by default.
    Symlink,
    /// Following links led back to a directory already on the path.
    SymlinkLoop,
    /// A device, socket or pipe.
    NotAFile,
    /// custody failed on this file (a bug): the rest of the scan went on.
    Internal,
    /// Inside a container or document: a limit, encryption, damage (custody-extract).
    Extract(custody_extract::Skipped),
}

impl SkipReason {
    /// A short stable code for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Binary => "binary",
            SkipReason::Unreadable(_) => "unreadable",
            SkipReason::Symlink => "symlink",
            SkipReason::SymlinkLoop => "symlink_loop",
            SkipReason::NotAFile => "not_a_file",
            SkipReason::Internal => "internal_error",
            SkipReason::Extract(why) => why.code(),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Binary => f.write_str("binary file (not scanned yet)"),
            SkipReason::Unreadable(why) => write!(f, "unreadable: {why}"),
            SkipReason::Symlink => f.write_str("symbolic link, not followed (use --follow-links)"),
            SkipReason::SymlinkLoop => f.write_str("symbolic link loop"),
            SkipReason::NotAFile => f.write_str("not a regular file (device, socket or pipe)"),
            SkipReason::Internal => f.write_str(
                "custody failed on this file (a bug; please report it, without the file)",
            ),
            SkipReason::Extract(why) => why.fmt(f),
        }
    }
}

/// A file (or database table) ranked by risk in the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct RiskyFile {
    /// The file.
    pub path: String,
    /// Sum over its findings of kind weight × confidence, times its exposure factor.
    pub score: f64,
    /// How many findings.
    pub findings: u64,
    /// How many of each kind.
    pub kinds: BTreeMap<Kind, u64>,
    /// Who else can read it, where it sits, how old it is.
    pub exposure: crate::risk::Exposure,
}

impl RiskyFile {
    /// High, medium or low.
    pub fn level(&self) -> crate::risk::Level {
        crate::risk::Level::of(self.score)
    }

    /// What it holds, in words.
    pub fn contents(&self) -> String {
        crate::risk::contents(&self.kinds)
    }

    /// The one next step.
    pub fn action(&self) -> String {
        crate::risk::action(&self.kinds, &self.exposure)
    }
}

/// A folder ranked by the risk of the files directly in it.
#[derive(Clone, Debug, PartialEq)]
pub struct RiskyFolder {
    /// The folder (`.` for the scanned folder itself).
    pub path: String,
    /// Sum of its files' scores.
    pub score: f64,
    /// Files in it with findings.
    pub files: u64,
    /// Findings in them.
    pub findings: u64,
}

/// Totals of a scan.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Files read to the end.
    pub files_scanned: u64,
    /// Files skipped, by reason code.
    pub files_skipped: BTreeMap<&'static str, u64>,
    /// Things inside files that were not read (archive members, document parts), by
    /// reason code.
    pub members_skipped: BTreeMap<&'static str, u64>,
    /// Bytes read.
    pub bytes_scanned: u64,
    /// Wall-clock time.
    pub duration: Duration,
    /// Findings by kind.
    pub findings_by_kind: BTreeMap<Kind, u64>,
    /// The riskiest files, riskiest first (at most ten).
    pub riskiest: Vec<RiskyFile>,
    /// The riskiest folders, riskiest first (at most ten).
    pub riskiest_folders: Vec<RiskyFolder>,
    /// Database scans: what each column holds (columns without findings are left out).
    pub columns: Vec<crate::ColumnReport>,
    /// Findings not reported because the owner ignored them (`custody fix ignore`).
    pub findings_ignored: u64,
    /// Files whose results came from the scan cache (unchanged since an earlier scan).
    pub files_cached: u64,
}

impl Summary {
    /// All findings.
    pub fn total_findings(&self) -> u64 {
        self.findings_by_kind.values().sum()
    }

    /// All skipped files.
    pub fn total_skipped(&self) -> u64 {
        self.files_skipped.values().sum::<u64>() + self.members_skipped.values().sum::<u64>()
    }

    /// Adds another scan's totals to these (files and databases scanned in one run).
    pub fn merge(&mut self, other: Summary) {
        self.files_scanned += other.files_scanned;
        for (code, n) in other.files_skipped {
            *self.files_skipped.entry(code).or_insert(0) += n;
        }
        for (code, n) in other.members_skipped {
            *self.members_skipped.entry(code).or_insert(0) += n;
        }
        self.bytes_scanned += other.bytes_scanned;
        self.findings_ignored += other.findings_ignored;
        self.files_cached += other.files_cached;
        self.duration += other.duration;
        for (kind, n) in other.findings_by_kind {
            *self.findings_by_kind.entry(kind).or_insert(0) += n;
        }
        for r in other.riskiest {
            self.offer_risky(r);
        }
        self.riskiest_folders.extend(other.riskiest_folders);
        self.riskiest_folders.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.riskiest_folders.truncate(10);
        self.columns.extend(other.columns);
    }

    pub(crate) fn offer_risky(&mut self, file: RiskyFile) {
        const KEEP: usize = 10;
        if file.findings == 0 {
            return;
        }
        let pos =
            self.riskiest.iter().position(|r| r.score < file.score).unwrap_or(self.riskiest.len());
        if pos < KEEP {
            self.riskiest.insert(pos, file);
            self.riskiest.truncate(KEEP);
        }
    }
}
