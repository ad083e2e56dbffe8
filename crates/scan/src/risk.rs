//! Risk in plain words: what was found in a file, how sure custody is, and how exposed the
//! file is — readable by every account on the computer, inside a folder that syncs to a
//! cloud service or is shared, old — folded into one score, a level and one next step.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use custody_detect::Kind;

/// Folders whose files leave the computer or are shared: matched against each component of
/// the path, case-insensitively.
const SHARED_FOLDERS: [(&str, &str); 10] = [
    ("dropbox", "Dropbox"),
    ("onedrive", "OneDrive"),
    ("google drive", "Google Drive"),
    ("my drive", "Google Drive"),
    ("googledrive", "Google Drive"),
    ("icloud drive", "iCloud Drive"),
    ("icloud", "iCloud Drive"),
    ("public", "a public folder"),
    ("shared", "a shared folder"),
    ("public_html", "a web server's folder"),
];

/// A file older than this is "old": kept past its use.
const OLD_DAYS: u64 = 365;

/// How exposed a file is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Every account on the computer can read it (Unix permission bits).
    pub world_readable: bool,
    /// It sits in a folder that syncs or is shared (the folder's kind, in words).
    pub shared_folder: Option<&'static str>,
    /// Days since it last changed.
    pub age_days: Option<u64>,
}

impl Exposure {
    /// Reads a file's exposure from its path and metadata (databases and unreadable
    /// metadata: none known).
    pub fn of(path: &Path) -> Self {
        let shared_folder = path.components().find_map(|c| {
            let name = c.as_os_str().to_string_lossy().to_ascii_lowercase();
            SHARED_FOLDERS
                .iter()
                .find(|(folder, _)| name == *folder || name.starts_with(&format!("{folder} ")))
                .map(|(_, words)| *words)
        });
        let meta = std::fs::metadata(path).ok();
        #[cfg(unix)]
        let world_readable = {
            use std::os::unix::fs::PermissionsExt;
            meta.as_ref().is_some_and(|m| m.permissions().mode() & 0o004 != 0)
        };
        #[cfg(not(unix))]
        let world_readable = false;
        let age_days = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs() / 86_400);
        Self { world_readable, shared_folder, age_days }
    }

    /// What exposure multiplies the content's risk by.
    pub fn factor(&self) -> f64 {
        let mut f = 1.0;
        if self.shared_folder.is_some() {
            f *= 2.0;
        }
        if self.world_readable {
            f *= 1.5;
        }
        if self.age_days.is_some_and(|d| d > OLD_DAYS) {
            f *= 1.25;
        }
        f
    }

    /// The exposure in plain words, most serious first.
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(folder) = self.shared_folder {
            out.push(format!("it is in {folder}, so copies leave this computer or are shared"));
        }
        if self.world_readable {
            out.push("every account on this computer can open it".into());
        }
        if let Some(days) = self.age_days.filter(|d| *d > OLD_DAYS) {
            out.push(format!("it has not changed in {} years", days / 365));
        }
        out.push("it is not encrypted".into());
        out
    }
}

/// How bad, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Little, or values custody is unsure of.
    Low,
    /// Worth an afternoon.
    Medium,
    /// Act now.
    High,
}

impl Level {
    /// From a score.
    pub fn of(score: f64) -> Self {
        if score >= 40.0 {
            Level::High
        } else if score >= 8.0 {
            Level::Medium
        } else {
            Level::Low
        }
    }

    /// As a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// What was found in a file, in words: `12 payment card numbers, 3 social security numbers`.
pub fn contents(kinds: &BTreeMap<Kind, u64>) -> String {
    let mut by_count: Vec<(&Kind, &u64)> = kinds.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by_count.iter().map(|(k, n)| format!("{n} {}", label(**k, **n))).collect::<Vec<_>>().join(", ")
}

/// A kind's label, plural past one.
fn label(kind: Kind, n: u64) -> String {
    let one = kind.label();
    if n == 1 {
        return one.to_string();
    }
    match kind {
        Kind::DateOfBirth => "dates of birth".into(),
        Kind::PersonName => "people's names".into(),
        Kind::Secret => "passwords or access keys".into(),
        Kind::Email | Kind::IpAddress | Kind::StreetAddress => format!("{one}es"),
        _ => match one.split_once(" (") {
            Some((head, tail)) => format!("{head}s ({tail}"),
            None => format!("{one}s"),
        },
    }
}

/// The one next step for a file: the most serious problem first.
pub fn action(kinds: &BTreeMap<Kind, u64>, exposure: &Exposure) -> String {
    let has = |k: Kind| kinds.get(&k).is_some_and(|n| *n > 0);
    if let Some(folder) = exposure.shared_folder {
        return format!("Move it out of {folder} today; then keep it only if you must, encrypted.");
    }
    if has(Kind::CreditCard) {
        return "Delete it: card numbers must not be kept after the payment (PCI DSS). If you \
                need the customer, keep the record in the vault (custody import) without the card."
            .into();
    }
    if has(Kind::UsSsn) || has(Kind::UsItin) || has(Kind::Iban) || has(Kind::UsBankRouting) {
        return "Move these records into the vault (custody import), then shred this file.".into();
    }
    if has(Kind::Secret) {
        return "Change the password or key it holds, then remove it from the file.".into();
    }
    if exposure.world_readable {
        return "Make it readable only by you (chmod 600), or move it somewhere private.".into();
    }
    if exposure.age_days.is_some_and(|d| d > OLD_DAYS) {
        return "Delete it if you no longer need it: old copies are what leaks.".into();
    }
    "Keep it only if you need it, somewhere only you can open.".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_folders_and_permissions_raise_the_factor() {
        let plain = Exposure::default();
        assert!((plain.factor() - 1.0).abs() < f64::EPSILON);
        let synced = Exposure::of(Path::new("/home/ann/Dropbox/clients.csv"));
        assert_eq!(synced.shared_folder, Some("Dropbox"));
        assert!(synced.factor() >= 2.0);
        let onedrive = Exposure::of(Path::new("C/Users/ann/OneDrive - Shop/list.xlsx"));
        assert_eq!(onedrive.shared_folder, Some("OneDrive"));
        assert_eq!(Exposure::of(Path::new("/srv/publications/a.txt")).shared_folder, None);
    }

    #[test]
    fn one_action_per_file_most_serious_first() {
        let cards = BTreeMap::from([(Kind::CreditCard, 3), (Kind::Email, 10)]);
        let shared = Exposure { shared_folder: Some("Dropbox"), ..Exposure::default() };
        assert!(action(&cards, &shared).contains("Dropbox"));
        assert!(action(&cards, &Exposure::default()).starts_with("Delete it: card numbers"));
        assert_eq!(contents(&cards), "10 email addresses, 3 payment card numbers");
        assert_eq!(Level::of(50.0), Level::High);
        assert_eq!(Level::of(1.0), Level::Low);
    }
}
