//! Findings the owner has looked at and accepted (`custody fix ignore`): a file path and a
//! keyed hash of the value, so the list itself holds no customer data. The key sits in the
//! data directory (readable by the owner only), so that a copy of the list alone cannot be
//! checked against guessed values.
//!
//! ```text
//! DATA_DIR/keys/ignore.key   32 random bytes (hex)
//! DATA_DIR/ignored.jsonl     {"path":…, "kind":…, "fingerprint":…, "masked":…, "added":…}
//! ```

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use custody_detect::{Kind, SensitiveValue};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use custody_store::DataDir;
use custody_store::hex::encode as hex;

/// Why the ignore list could not be read or written. Never carries a customer value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IgnoreError {
    /// Reading or writing failed.
    #[error("'{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The list or its key is damaged.
    #[error("'{path}' is damaged")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
}

impl IgnoreError {
    fn from_io(path: &Path) -> impl FnOnce(io::Error) -> IgnoreError + '_ {
        move |source| IgnoreError::Io { path: path.to_path_buf(), source }
    }
}

/// The list of ignored findings of a data directory.
pub struct IgnoreList {
    key: [u8; 32],
    file: PathBuf,
    /// Canonical path → fingerprints ignored in it.
    entries: HashMap<PathBuf, HashSet<String>>,
}

/// One line of the list.
#[derive(Serialize, Deserialize)]
struct Line {
    path: PathBuf,
    kind: String,
    fingerprint: String,
    masked: String,
    added: String,
}

impl std::fmt::Debug for IgnoreList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IgnoreList({} files)", self.entries.len())
    }
}

impl IgnoreList {
    /// Loads the list (creating its key when `create` and there is none). `Ok(None)`
    /// when nothing was ever ignored and `create` is false.
    pub fn load(data_dir: &Path, create: bool) -> Result<Option<Self>, IgnoreError> {
        let data = DataDir::new(data_dir);
        let (key_path, file) = (data.ignore_key(), data.ignore_list());
        let key = match fs::read_to_string(&key_path) {
            Ok(text) => custody_store::hex::decode_key(&text)
                .ok_or(IgnoreError::Damaged { path: key_path.clone() })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| IgnoreError::Io {
                    path: key_path.clone(),
                    source: io::Error::other(e.to_string()),
                })?;
                custody_store::files::private_dir(&data.keys())
                    .map_err(IgnoreError::from_io(&key_path))?;
                // Create-only: two runs at once keep the first key, never overwrite it.
                let text = format!("{}\n", hex(&key));
                match custody_store::files::write_private(&key_path, text.as_bytes()) {
                    Ok(()) => key,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let text = fs::read_to_string(&key_path)
                            .map_err(IgnoreError::from_io(&key_path))?;
                        custody_store::hex::decode_key(&text)
                            .ok_or(IgnoreError::Damaged { path: key_path.clone() })?
                    }
                    Err(e) => return Err(IgnoreError::Io { path: key_path, source: e }),
                }
            }
            Err(e) => return Err(IgnoreError::Io { path: key_path, source: e }),
        };
        let mut entries: HashMap<PathBuf, HashSet<String>> = HashMap::new();
        match fs::read_to_string(&file) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let line: Line = serde_json::from_str(line)
                        .map_err(|_| IgnoreError::Damaged { path: file.clone() })?;
                    entries.entry(line.path).or_default().insert(line.fingerprint);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(IgnoreError::Io { path: file, source: e }),
        }
        Ok(Some(Self { key, file, entries }))
    }

    /// How many values are ignored, in all files.
    pub fn len(&self) -> usize {
        self.entries.values().map(HashSet::len).sum()
    }

    /// A digest of everything ignored: a scan cache made under another list is not reused.
    pub fn digest(&self) -> String {
        let mut all: Vec<(&PathBuf, &String)> =
            self.entries.iter().flat_map(|(p, set)| set.iter().map(move |f| (p, f))).collect();
        all.sort();
        let mut hasher = twox_hash::XxHash3_128::new();
        for (path, fingerprint) in all {
            hasher.write(path.as_os_str().as_encoded_bytes());
            hasher.write(&[0]);
            hasher.write(fingerprint.as_bytes());
            hasher.write(&[0]);
        }
        format!("{:032x}", hasher.finish_128())
    }

    /// Nothing ignored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether anything is ignored in the file at canonical path `path`.
    pub fn covers(&self, path: &Path) -> bool {
        self.entries.contains_key(path)
    }

    /// The keyed hash of a value of `kind`.
    pub fn fingerprint(&self, kind: Kind, value: &SensitiveValue) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        mac.update(kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(value.expose().as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// Whether this value in this file (canonical path) is ignored.
    pub fn contains(&self, path: &Path, kind: Kind, value: &SensitiveValue) -> bool {
        self.entries.get(path).is_some_and(|set| set.contains(&self.fingerprint(kind, value)))
    }

    /// Adds a value in a file (canonical path); `false` when it was already there.
    pub fn add(
        &mut self,
        path: &Path,
        kind: Kind,
        value: &SensitiveValue,
        when: &str,
    ) -> Result<bool, IgnoreError> {
        let fingerprint = self.fingerprint(kind, value);
        if !self.entries.entry(path.to_path_buf()).or_default().insert(fingerprint.clone()) {
            return Ok(false);
        }
        let line = Line {
            path: path.to_path_buf(),
            kind: kind.as_str().to_string(),
            fingerprint,
            masked: value.masked(kind),
            added: when.to_string(),
        };
        let mut text = serde_json::to_string(&line).expect("a line serialises");
        text.push('\n');
        let mut file = custody_store::files::append_private(&self.file)
            .map_err(IgnoreError::from_io(&self.file))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(IgnoreError::from_io(&self.file))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_values_are_remembered_without_being_stored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(IgnoreList::load(dir.path(), false).unwrap().is_none());
        let mut list = IgnoreList::load(dir.path(), true).unwrap().unwrap();
        let value = SensitiveValue::new("ann@example.org");
        let file = Path::new("/data/customers.csv");
        assert!(list.add(file, Kind::Email, &value, "2026-11-30T00:00:00Z").unwrap());
        assert!(!list.add(file, Kind::Email, &value, "2026-11-30T00:00:00Z").unwrap());
        let again = IgnoreList::load(dir.path(), false).unwrap().unwrap();
        assert!(again.contains(file, Kind::Email, &value));
        assert!(!again.contains(Path::new("/data/other.csv"), Kind::Email, &value));
        assert!(!again.contains(file, Kind::Email, &SensitiveValue::new("bob@example.org")));
        let stored = fs::read_to_string(dir.path().join("ignored.jsonl")).unwrap();
        assert!(!stored.contains("ann@example.org"), "{stored}");
        assert!(stored.contains("a***@example.org"), "{stored}");
    }
}
