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

/// What [`init`] made: the owner's first API key (to show once), the recovery kit's path
/// (to print, then delete) and the root key (for what the caller derives from it, such as
/// the quarantine's public key).
pub struct Initialised {
    /// The owner's API key, `ck_…`: shown once, never stored.
    pub owner_key: String,
    /// `recovery-kit.txt`.
    pub kit: PathBuf,
    /// The new root key (zeroed when dropped).
    pub root: Key,
}

impl std::fmt::Debug for Initialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initialised").field("kit", &self.kit).finish_non_exhaustive()
    }
}

/// Sets up a data directory: owner-only folders (the directory itself only when this
/// creates it: an existing folder the user pointed at keeps its permissions), a random root
/// key sealed under `passphrase` and split 2-of-3 into the recovery kit, the default
/// configuration, the ledger, the vault and the owner's first API key (recorded as
/// `apikey.create`). Refuses a directory that already has a configuration; never
/// overwrites a file. Argon2id at `params` (the default outside tests).
pub fn init(data_dir: &Path, passphrase: &str, params: Argon2Params) -> Result<Initialised, Error> {
    let data = DataDir::new(data_dir);
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::Config(format!("cannot {what} '{}': {e}", path.display()))
    };
    if data.config().exists() {
        return Err(Error::Config(format!(
            "'{}' is already set up (it has a config.toml); nothing was changed",
            data_dir.display()
        )));
    }
    if !data_dir.exists() {
        custody_store::files::private_dir(data_dir).map_err(|e| io("create", data_dir, e))?;
    }
    custody_store::files::private_dir(&data.keys()).map_err(|e| io("create", &data.keys(), e))?;
    let root = Key::random().map_err(|e| Error::Crypto(e.to_string()))?;
    let seal = PassphraseSeal::seal(&root, passphrase.as_bytes(), params)
        .map_err(|e| Error::Crypto(e.to_string()))?;
    let write = |path: PathBuf, bytes: &[u8]| {
        custody_store::files::write_private(&path, bytes).map_err(|e| io("create", &path, e))
    };
    write(data.sealed_root(), sealed_root_text(&seal).as_bytes())?;
    write(data.recovery_kit(), recovery_kit(&recovery::split(&root)).as_bytes())?;
    write(data.config(), crate::DEFAULT_CONFIG.as_bytes())?;
    let options = custody_ledger::LedgerOptions::default();
    let ledger = if custody_ledger::Ledger::exists(data_dir) {
        custody_ledger::Ledger::open(data_dir, options)
    } else {
        custody_ledger::Ledger::init(data_dir, options)
    }
    .map_err(|e| Error::Audit(e.to_string()))?;
    let vault = Vault::open(&data.vault_db(), Config::parse(crate::DEFAULT_CONFIG)?, root.clone())?;
    let vault = crate::AuditedVault::new(vault, ledger);
    let owner =
        crate::Access { actor: "cli:owner", role: "owner", purpose: None, request_id: None };
    let (_, owner_key) = vault.create_api_key(&owner, "owner", "owner")?;
    Ok(Initialised { owner_key, kit: data.recovery_kit(), root })
}

/// The recovery kit as printed: instructions, then the three shares.
fn recovery_kit(shares: &[String]) -> String {
    use std::fmt::Write as _;
    let mut kit = String::from(
        "CUSTODY RECOVERY KIT\n\
         ====================\n\n\
         These three shares can unlock your customer vault if the passphrase is lost.\n\
         Any TWO of them are enough; one alone reveals nothing.\n\n\
         What to do now:\n\
         1. Print this page.\n\
         2. Cut it into three strips, one share each.\n\
         3. Keep the strips in three different places (a safe, your accountant, a family member).\n\
         4. Delete this file from the computer: `custody` does not need it.\n\n",
    );
    for (i, share) in shares.iter().enumerate() {
        let _ = write!(
            kit,
            "--- Share {} of 3 ------------------------------------------\n{share}\n\n",
            i + 1
        );
    }
    kit
}
