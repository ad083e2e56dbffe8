//! The data directory: where the configuration, the sealed root key and the vault live,
//! and how the root key is unsealed (by passphrase or by two recovery shares). Shared by
//! the command line and the server, so both read the same files the same way.
//!
//! ```text
//! DATA_DIR/config.toml         collections, roles, purposes, limits
//! DATA_DIR/keys/root.sealed    the root key under the passphrase (Argon2id parameters kept)
//! DATA_DIR/vault.db            the vault (SQLite)
//! DATA_DIR/ledger…             the ledger (custody-ledger)
//! ```

use std::path::{Path, PathBuf};

use custody_crypto::{Argon2Params, Key, PassphraseSeal, recovery};

use crate::{Config, Error, Vault};

use custody_store::DataDir;

/// Where the sealed root key lives in a data directory.
pub fn sealed_root_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).sealed_root()
}

/// The vault database of a data directory.
pub fn vault_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).vault_db()
}

/// The data directory's configuration; an error with the next step if it is not set up.
pub fn load_config(data_dir: &Path) -> Result<Config, Error> {
    let path = DataDir::new(data_dir).config();
    if !path.exists() {
        return Err(Error::Config(format!(
            "'{}' is not set up yet: run `custody init` first",
            data_dir.display()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("cannot read '{}': {e}", path.display())))?;
    Config::parse(&text)
}

/// The sealed root key as a small text file: parameters, salt and envelope.
pub fn sealed_root_text(seal: &PassphraseSeal) -> String {
    format!(
        "custody-root-seal v1\nargon2id m={} t={} p={}\nsalt {}\nsealed {}\n",
        seal.params.memory_kib,
        seal.params.iterations,
        seal.params.parallelism,
        custody_store::hex::encode(&seal.salt),
        custody_store::hex::encode(&seal.sealed)
    )
}

/// Reads the sealed root key of a data directory.
pub fn read_sealed_root(data_dir: &Path) -> Result<PassphraseSeal, Error> {
    let path = sealed_root_path(data_dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Locked(format!("cannot read '{}': {e}", path.display())))?;
    let broken = || {
        Error::Locked(format!(
            "'{}' is damaged: restore it from a backup or use the recovery kit",
            path.display()
        ))
    };
    let mut lines = text.lines();
    if lines.next() != Some("custody-root-seal v1") {
        return Err(broken());
    }
    let mut params = Argon2Params::default();
    let argon = lines.next().and_then(|l| l.strip_prefix("argon2id ")).ok_or_else(broken)?;
    for part in argon.split(' ') {
        let (name, value) = part.split_once('=').ok_or_else(broken)?;
        let value: u32 = value.parse().map_err(|_| broken())?;
        match name {
            "m" => params.memory_kib = value,
            "t" => params.iterations = value,
            "p" => params.parallelism = value,
            _ => return Err(broken()),
        }
    }
    let mut field = |name: &str| -> Result<Vec<u8>, Error> {
        let h = lines.next().and_then(|l| l.strip_prefix(name)).ok_or_else(broken)?;
        custody_store::hex::decode(h.trim()).ok_or_else(broken)
    };
    let salt = field("salt ")?.try_into().map_err(|_| broken())?;
    let sealed = field("sealed ")?;
    Ok(PassphraseSeal { params, salt, sealed })
}

/// The root key, unsealed with the passphrase.
pub fn unseal_with_passphrase(data_dir: &Path, passphrase: &str) -> Result<Key, Error> {
    read_sealed_root(data_dir)?.open(passphrase.as_bytes()).map_err(|_| {
        Error::Locked(
            "wrong passphrase: the vault stays locked and nothing was changed (if it is lost, use `custody keys recover` with the recovery kit)"
                .into(),
        )
    })
}

/// The root key, rebuilt from two shares of the recovery kit and checked against the vault:
/// shares of another installation's kit rebuild *a* key, not this one.
pub fn unseal_with_shares(data_dir: &Path, shares: &[&str]) -> Result<Key, Error> {
    let root = recovery::combine(shares).map_err(|e| {
        Error::Locked(format!(
            "the shares do not rebuild a key ({e}); check each line against the printed kit"
        ))
    })?;
    let path = vault_path(data_dir);
    if path.exists() {
        let config = load_config(data_dir)?;
        Vault::open(&path, config, root.clone()).map_err(|_| {
            Error::Locked(
                "these shares belong to a different custody installation; nothing was changed"
                    .into(),
            )
        })?;
    }
    Ok(root)
}
