//! The data directory: the one place that knows where custody keeps each file, and what
//! kind of data each holds.
//!
//! ```text
//! DATA_DIR/config.toml              collections, roles, purposes, limits        config
//! DATA_DIR/keys/root.sealed         the root key under the passphrase          secret
//! DATA_DIR/keys/ledger-signing.key  signs the ledger's checkpoints              secret
//! DATA_DIR/keys/ledger-pseudonym.key  keys the ledger's pseudonyms              secret
//! DATA_DIR/keys/ignore.key          keys the ignore list's fingerprints         secret
//! DATA_DIR/keys/quarantine.pub      the quarantine's public sealing key         config
//! DATA_DIR/recovery-kit.txt         shares left by releases before the kit was  secret
//!                                    kept out (`custody status` warns)
//! DATA_DIR/vault.db                 the vault (SQLite; -wal, -shm beside it)    customer data
//! DATA_DIR/quarantine/              quarantined files, sealed                   customer data
//! DATA_DIR/ignored.jsonl            findings marked not sensitive (masked)      customer data
//! DATA_DIR/ledger.db                the access log (-wal, -shm beside it)       evidence
//! DATA_DIR/ledger.lock              held by the one process writing the ledger  cache
//! DATA_DIR/scan-cache.db            masked results of unchanged files           cache
//! ```

use std::path::{Path, PathBuf};

/// What a file in the data directory holds, which decides how it is protected and backed
/// up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Class {
    /// Key material: whoever copies it can decrypt, sign or link pseudonyms (a backup
    /// keeps it encrypted, or apart).
    Secret,
    /// Settings, and public keys: nothing secret, but needed to open the rest.
    Config,
    /// Customer data, encrypted or masked: what a breach is about.
    CustomerData,
    /// What proves who did what (the ledger): kept, never rewritten.
    Evidence,
    /// Rebuilt on demand; safe to lose.
    Cache,
}

impl Class {
    /// The stable name (`secret`, `config`, `customer_data`, `evidence`, `cache`).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Secret => "secret",
            Class::Config => "config",
            Class::CustomerData => "customer_data",
            Class::Evidence => "evidence",
            Class::Cache => "cache",
        }
    }
}

/// One path of the data directory, as [`DataDir::manifest`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub class: Class,
    /// A folder (everything in it) rather than one file.
    pub dir: bool,
    /// SQLite keeps `-wal` and `-shm` files beside it, which belong to it.
    pub sqlite: bool,
    /// In plain words.
    pub what: &'static str,
}

/// A custody data directory. Cheap to make and clone; it only names paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`: collections, roles, purposes, limits.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `keys/`: the key files (owner-only).
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// `keys/root.sealed`: the root key under the passphrase.
    pub fn sealed_root(&self) -> PathBuf {
        self.keys().join("root.sealed")
    }

    /// `keys/root.sealed.next`: the new root key of a root rotation, sealed, while the
    /// vault's key rows are re-wrapped under it; renamed over `root.sealed` once they are.
    /// Found at unseal, it is a rotation a crash cut short: whichever root opens the vault
    /// is kept.
    pub fn sealed_root_next(&self) -> PathBuf {
        self.keys().join("root.sealed.next")
    }

    /// `keys/ledger-signing.key`: the ledger's checkpoint signing key.
    pub fn ledger_signing_key(&self) -> PathBuf {
        self.keys().join("ledger-signing.key")
    }

    /// `keys/ledger-signing.sealed`: the checkpoint signing key sealed under the vault's
    /// ledger key (review item 12); `ledger-signing.key` is then gone.
    pub fn ledger_signing_sealed(&self) -> PathBuf {
        self.keys().join("ledger-signing.sealed")
    }

    /// `keys/ledger-signing.pub`: the signing key's public half (what verifies
    /// checkpoints while the private half is sealed).
    pub fn ledger_signing_public(&self) -> PathBuf {
        self.keys().join("ledger-signing.pub")
    }

    /// `keys/ledger-pseudonym.key`: the key of the ledger's pseudonyms.
    pub fn ledger_pseudonym_key(&self) -> PathBuf {
        self.keys().join("ledger-pseudonym.key")
    }

    /// `keys/ignore.key`: the key of the ignore list's fingerprints.
    pub fn ignore_key(&self) -> PathBuf {
        self.keys().join("ignore.key")
    }

    /// `keys/quarantine.pub`: the public key files are quarantined to.
    pub fn quarantine_public_key(&self) -> PathBuf {
        self.keys().join("quarantine.pub")
    }

    /// `recovery-kit.txt`: where releases before review item 11 wrote the recovery shares
    /// (`init` now prints them or writes them outside the data directory); `custody status`
    /// warns while it exists.
    pub fn recovery_kit(&self) -> PathBuf {
        self.root.join("recovery-kit.txt")
    }

    /// `ledger-paths.db`: the clear file paths the ledger's events name by pseudonym
    /// (review item 18), where they can be forgotten.
    pub fn ledger_paths(&self) -> PathBuf {
        self.root.join("ledger-paths.db")
    }

    /// `vault.db`: the vault.
    pub fn vault_db(&self) -> PathBuf {
        self.root.join("vault.db")
    }

    /// `quarantine/`: quarantined files, sealed, with a record beside each.
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// `ignored.jsonl`: findings marked as not sensitive (fingerprints and masks).
    pub fn ignore_list(&self) -> PathBuf {
        self.root.join("ignored.jsonl")
    }

    /// `ledger.db`: the access log.
    pub fn ledger_db(&self) -> PathBuf {
        self.root.join("ledger.db")
    }

    /// `ledger.lock`: held by the one process writing the ledger.
    pub fn ledger_lock(&self) -> PathBuf {
        self.root.join("ledger.lock")
    }

    /// `scan-cache.db`: masked results of files that have not changed.
    pub fn scan_cache(&self) -> PathBuf {
        self.root.join("scan-cache.db")
    }

    /// Every path custody keeps here, with its class: what a backup must take and how.
    pub fn manifest(&self) -> Vec<Entry> {
        let file = |path, class, what| Entry { path, class, dir: false, sqlite: false, what };
        let db = |path, class, what| Entry { path, class, dir: false, sqlite: true, what };
        let dir = |path, class, what| Entry { path, class, dir: true, sqlite: false, what };
        vec![
            file(self.config(), Class::Config, "what the vault keeps and who may read it"),
            file(self.sealed_root(), Class::Secret, "the root key, sealed under the passphrase"),
            file(
                self.sealed_root_next(),
                Class::Secret,
                "the new root key while a root rotation is under way",
            ),
            file(self.ledger_signing_key(), Class::Secret, "signs the ledger's checkpoints"),
            file(
                self.ledger_signing_sealed(),
                Class::Secret,
                "the signing key, sealed under the vault",
            ),
            file(self.ledger_signing_public(), Class::Config, "verifies the ledger's checkpoints"),
            file(self.ledger_pseudonym_key(), Class::Secret, "keys the ledger's pseudonyms"),
            file(self.ignore_key(), Class::Secret, "keys the ignore list's fingerprints"),
            file(self.quarantine_public_key(), Class::Config, "the quarantine's public key"),
            file(
                self.recovery_kit(),
                Class::Secret,
                "recovery shares left by an old release: print, then delete",
            ),
            db(self.vault_db(), Class::CustomerData, "the vault's records, encrypted"),
            dir(self.quarantine(), Class::CustomerData, "quarantined files, sealed"),
            file(self.ignore_list(), Class::CustomerData, "findings marked not sensitive"),
            db(self.ledger_db(), Class::Evidence, "the access log"),
            db(
                self.ledger_paths(),
                Class::CustomerData,
                "the file paths the access log names by pseudonym (erasable)",
            ),
            file(self.ledger_lock(), Class::Cache, "held by the process writing the ledger"),
            db(self.scan_cache(), Class::Cache, "masked results of unchanged files"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_inside_listed_once_and_classed() {
        let data = DataDir::new("/srv/custody");
        let manifest = data.manifest();
        let mut paths: Vec<&Path> = manifest.iter().map(|e| e.path.as_path()).collect();
        assert!(paths.iter().all(|p| p.starts_with("/srv/custody")));
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), manifest.len(), "a path is listed twice");
        let class_of = |p: PathBuf| manifest.iter().find(|e| e.path == p).unwrap().class;
        assert_eq!(class_of(data.sealed_root()), Class::Secret);
        assert_eq!(class_of(data.vault_db()), Class::CustomerData);
        assert_eq!(class_of(data.ledger_db()), Class::Evidence);
        assert_eq!(class_of(data.scan_cache()), Class::Cache);
        // Every key file lives under keys/ and is secret, except the public one.
        for e in manifest.iter().filter(|e| e.path.starts_with(data.keys())) {
            let public =
                e.path == data.quarantine_public_key() || e.path == data.ledger_signing_public();
            assert_eq!(e.class == Class::Secret, !public, "{}", e.path.display());
        }
    }
}
