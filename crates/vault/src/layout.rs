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

use crate::{Config, Error, Location, StoreConfig, Vault};
use custody_ledger::{Ledger, LedgerOptions, PgStore};

use custody_store::DataDir;

/// Where the sealed root key lives in a data directory.
pub fn sealed_root_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).sealed_root()
}

/// The vault database of a data directory.
pub fn vault_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).vault_db()
}

/// Where the vault of a data directory lives: the PostgreSQL schema its configuration's
/// `[store]` names, or the embedded `vault.db`.
pub fn vault_location(data_dir: &Path, config: &Config) -> Location {
    match &config.store {
        Some(store) => Location::Postgres { url: store.url.clone(), schema: store.vault_schema() },
        None => Location::Sqlite(vault_path(data_dir)),
    }
}

/// The `[store]` of a data directory's configuration (none without a configuration: a
/// ledger used before `custody init`, by `custody fix`, is embedded).
fn store_of(data_dir: &Path) -> Result<Option<StoreConfig>, custody_ledger::Error> {
    if !DataDir::new(data_dir).config().exists() {
        return Ok(None);
    }
    load_config(data_dir)
        .map(|c| c.store)
        .map_err(|e| custody_ledger::Error::Backend(e.to_string()))
}

/// A reader and a writer handle on one ledger store.
type LogStores = (Box<dyn custody_ledger::LogStore>, Box<dyn custody_ledger::LogStore>);

/// Two handles (reader, writer) on the ledger's PostgreSQL schema.
fn pg_ledger(store: &StoreConfig) -> Result<LogStores, custody_ledger::Error> {
    let schema = store.ledger_schema();
    Ok((
        Box::new(PgStore::connect(&store.url, &schema)?),
        Box::new(PgStore::connect(&store.url, &schema)?),
    ))
}

/// Whether a data directory has a ledger: in the PostgreSQL store its configuration names,
/// or as the embedded file.
pub fn has_ledger(data_dir: &Path) -> bool {
    matches!(store_of(data_dir), Ok(Some(_))) || Ledger::exists(data_dir)
}

/// Opens the ledger of a data directory, in the store its configuration names.
pub fn open_ledger(
    data_dir: &Path,
    mut options: LedgerOptions,
) -> Result<Ledger, custody_ledger::Error> {
    if options.witness.is_none() && DataDir::new(data_dir).config().exists() {
        options.witness = load_config(data_dir)
            .map_err(|e| custody_ledger::Error::Backend(e.to_string()))?
            .ledger
            .witness
            .map(|w| refuse_inside(data_dir, w))
            .transpose()?;
    }
    match store_of(data_dir)? {
        Some(store) => {
            let (reader, writer) = pg_ledger(&store)?;
            Ledger::open_with_stores(data_dir, options, reader, writer)
        }
        None => Ledger::open(data_dir, options),
    }
}

/// A witness folder must be outside the data directory: a copy of the directory must not
/// carry its own witness.
fn refuse_inside(data_dir: &Path, witness: PathBuf) -> Result<PathBuf, custody_ledger::Error> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if real(&witness).starts_with(real(data_dir)) {
        return Err(custody_ledger::Error::Backend(format!(
            "[ledger] witness = '{}' is inside the data directory; a witness must be elsewhere (another disk, a share)",
            witness.display()
        )));
    }
    Ok(witness)
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
    read_seal_file(&sealed_root_path(data_dir))
}

/// Reads a sealed root key file.
fn read_seal_file(path: &Path) -> Result<PassphraseSeal, Error> {
    let text = std::fs::read_to_string(path)
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

/// The root key, unsealed with the passphrase. A root rotation that a crash cut short
/// (`keys/root.sealed.next` still there) is finished or undone first, by whichever root
/// opens the vault.
pub fn unseal_with_passphrase(data_dir: &Path, passphrase: &str) -> Result<Key, Error> {
    let wrong = || {
        Error::Locked(
            "wrong passphrase: the vault stays locked and nothing was changed (if it is lost, use `custody keys recover` with the recovery kit)"
                .into(),
        )
    };
    let next = DataDir::new(data_dir).sealed_root_next();
    if next.exists()
        && let Ok(seal) = read_seal_file(&next)
        && let Ok(root) = seal.open(passphrase.as_bytes())
        && opens_vault(data_dir, &root)?
    {
        // The rotation committed: its new root is the vault's now.
        std::fs::rename(&next, sealed_root_path(data_dir))
            .and_then(|()| custody_store::files::sync_dir(&DataDir::new(data_dir).keys()))
            .map_err(|e| Error::Config(format!("cannot finish the root rotation: {e}")))?;
        return Ok(root);
    }
    let root = read_sealed_root(data_dir)?.open(passphrase.as_bytes()).map_err(|_| wrong())?;
    if next.exists() && opens_vault(data_dir, &root)? {
        // The rotation did not commit: the old root is still the vault's.
        let _ = std::fs::remove_file(&next);
    }
    Ok(root)
}

/// The shortest passphrase a new seal takes (`init`, `keys passphrase`, a root rotation,
/// from the command line or the API).
pub const MIN_PASSPHRASE: usize = 12;

/// The label the ledger's signing key is sealed with.
const LEDGER_SIGNING_LABEL: &str = "ledger-signing";

/// The ledger's checkpoint-signing key and the vault (review item 12), once the vault is
/// open: a signing key still in clear (`keys/ledger-signing.key`, from `init` or an
/// earlier release) is sealed under the vault's ledger key into
/// `keys/ledger-signing.sealed`, its public half written to `keys/ledger-signing.pub`,
/// and the clear file deleted; a sealed one is opened and handed to `ledger`, which signs
/// checkpoints from then on (covering what was appended while it was sealed).
pub fn ledger_signing(data_dir: &Path, ledger: &Ledger, ledger_key: &Key) -> Result<(), Error> {
    let data = DataDir::new(data_dir);
    let clear = data.ledger_signing_key();
    let sealed = data.ledger_signing_sealed();
    let fail = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        Error::Audit(format!("cannot {what} '{}': {e}", path.display()))
    };
    if clear.exists() {
        let text = std::fs::read_to_string(&clear).map_err(|e| fail("read", &clear, &e))?;
        let seed = zeroize::Zeroizing::new(
            custody_store::hex::decode_key(&text)
                .ok_or_else(|| fail("read", &clear, &"not a key"))?,
        );
        let key = Key::from_bytes(*seed);
        let bytes = custody_crypto::hierarchy::seal_key(ledger_key, LEDGER_SIGNING_LABEL, &key)
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let public = data.ledger_signing_public();
        custody_store::files::replace(
            &public,
            format!("{}\n", ledger.public_key()).as_bytes(),
            0o644,
        )
        .map_err(|e| fail("write", &public, &e))?;
        custody_store::files::replace(
            &sealed,
            custody_store::hex::encode(&bytes).as_bytes(),
            0o600,
        )
        .map_err(|e| fail("write", &sealed, &e))?;
        // Overwritten before it goes, so its blocks do not keep the key.
        let _ = std::fs::write(&clear, vec![b'0'; text.len()]);
        std::fs::remove_file(&clear)
            .and_then(|()| custody_store::files::sync_dir(&data.keys()))
            .map_err(|e| fail("remove", &clear, &e))?;
        return Ok(());
    }
    if ledger.can_sign() || !sealed.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&sealed).map_err(|e| fail("read", &sealed, &e))?;
    let bytes =
        custody_store::hex::decode(text.trim()).ok_or_else(|| fail("read", &sealed, &"damaged"))?;
    let key = custody_crypto::hierarchy::open_key(ledger_key, LEDGER_SIGNING_LABEL, &bytes)
        .map_err(|_| fail("open", &sealed, &"it does not open with this vault's key"))?;
    ledger.unseal_signer(*key.expose()).map_err(|e| Error::Audit(e.to_string()))
}

/// The vault's quarantine key under `root` (to open or set up the quarantine without
/// opening the whole vault).
pub fn quarantine_key(data_dir: &Path, root: &Key) -> Result<Key, Error> {
    purposes_of(data_dir, root).map(|p| p.quarantine().clone())
}

/// The vault's ledger key under `root` (to unseal the ledger's signing key without
/// opening the whole vault: [`ledger_signing`]).
pub fn ledger_key(data_dir: &Path, root: &Key) -> Result<Key, Error> {
    purposes_of(data_dir, root).map(|p| p.ledger().clone())
}

/// The vault's purpose keys under `root`, from its newest key row.
fn purposes_of(data_dir: &Path, root: &Key) -> Result<custody_crypto::hierarchy::Purposes, Error> {
    let (version, wrapped) = newest_key_row(data_dir)?.ok_or_else(|| {
        Error::NotFound("the vault's key-encryption key (run `custody init`)".into())
    })?;
    custody_crypto::hierarchy::unwrap_keyring(root, version, &wrapped)
        .map(|ring| ring.purposes)
        .map_err(|e| Error::Crypto(e.to_string()))
}

/// The vault's newest key row, wrapped; `None` while there is no vault yet.
fn newest_key_row(data_dir: &Path) -> Result<Option<(u32, Vec<u8>)>, Error> {
    let config = load_config(data_dir)?;
    let location = vault_location(data_dir, &config);
    if let Location::Sqlite(path) = &location
        && !path.exists()
    {
        return Ok(None);
    }
    crate::backend::open(&location)?.latest_kek()
}

/// Whether `root` opens the vault's newest key row (true while there is no vault yet).
fn opens_vault(data_dir: &Path, root: &Key) -> Result<bool, Error> {
    Ok(newest_key_row(data_dir)?.is_none_or(|(version, wrapped)| {
        custody_crypto::hierarchy::unwrap_kek(root, version, &wrapped).is_ok()
    }))
}

/// What [`rotate_root`] did: the vault's part, and the new recovery kit (to print or write
/// outside the data directory, as at `init`).
pub struct RootRotation {
    /// What the vault re-wrapped and rebuilt.
    pub vault: crate::RootRotated,
    /// The new recovery kit: the old one no longer opens anything.
    pub kit: String,
    /// The new root key (zeroed when dropped), for what is derived from it outside the
    /// vault.
    pub root: Key,
}

impl Drop for RootRotation {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.kit.zeroize();
    }
}

impl std::fmt::Debug for RootRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootRotation({:?})", self.vault)
    }
}

/// Replaces the root key (review item 2), recorded as `keys.rotate_root` before anything
/// changes: a new random root sealed under `passphrase` (Argon2id at `params`) into
/// `keys/root.sealed.next`; the vault's key rows re-wrapped under it and its blind indexes
/// rebuilt, in one transaction ([`crate::Vault::rotate_root`]); then the new seal renamed
/// over `keys/root.sealed`. A crash before the commit leaves the old root in force, one
/// after it the new (see [`unseal_with_passphrase`]). Afterwards an old `root.sealed` with
/// the old passphrase, or two shares of an old kit, opens nothing in the vault.
pub fn rotate_root(
    data_dir: &Path,
    vault: &mut crate::AuditedVault,
    access: &crate::Access<'_>,
    passphrase: &str,
    params: Argon2Params,
) -> Result<RootRotation, Error> {
    let (rotated, new_root) = with_new_root(data_dir, passphrase, params, |new_root| {
        vault.rotate_root(access, new_root)
    })?;
    Ok(RootRotation {
        vault: rotated,
        kit: recovery_kit(&recovery::split(&new_root)),
        root: new_root,
    })
}

/// A root rotation around `rekey` (which moves the vault to the root it is given): the new
/// root sealed under `passphrase` into `keys/root.sealed.next` first; that seal removed
/// if `rekey` fails, renamed over `keys/root.sealed` once it succeeds. Returns what
/// `rekey` returned and the new root.
pub fn with_new_root<T>(
    data_dir: &Path,
    passphrase: &str,
    params: Argon2Params,
    rekey: impl FnOnce(Key) -> Result<T, Error>,
) -> Result<(T, Key), Error> {
    let new_root = stage_root(data_dir, passphrase, params)?;
    let done = match rekey(new_root.clone()) {
        Ok(done) => done,
        Err(e) => {
            abandon_root(data_dir);
            return Err(e);
        }
    };
    commit_root(data_dir)?;
    Ok((done, new_root))
}

/// The first step of a root rotation: a new random root, sealed under `passphrase` into
/// `keys/root.sealed.next` (written beside, synced, renamed). The vault is not touched.
fn stage_root(data_dir: &Path, passphrase: &str, params: Argon2Params) -> Result<Key, Error> {
    let new_root = Key::random().map_err(|e| Error::Crypto(e.to_string()))?;
    let seal = PassphraseSeal::seal(&new_root, passphrase.as_bytes(), params)
        .map_err(|e| Error::Crypto(e.to_string()))?;
    let next = DataDir::new(data_dir).sealed_root_next();
    custody_store::files::replace(&next, sealed_root_text(&seal).as_bytes(), 0o600)
        .map_err(|e| Error::Config(format!("cannot write '{}': {e}", next.display())))?;
    Ok(new_root)
}

/// The vault's rotation failed: the staged root goes.
fn abandon_root(data_dir: &Path) {
    let _ = std::fs::remove_file(DataDir::new(data_dir).sealed_root_next());
}

/// The vault is under the staged root: its seal replaces `keys/root.sealed`.
fn commit_root(data_dir: &Path) -> Result<(), Error> {
    let data = DataDir::new(data_dir);
    let next = data.sealed_root_next();
    std::fs::rename(&next, data.sealed_root())
        .and_then(|()| custody_store::files::sync_dir(&data.keys()))
        .map_err(|e| {
            Error::Config(format!(
                "the vault is under the new root key, but '{}' could not be renamed over '{}' \
                 ({e}): unlock with the new passphrase to finish",
                next.display(),
                data.sealed_root().display()
            ))
        })
}

/// The recovery kit of `root`, as `init` prints it.
pub fn kit_of(root: &Key) -> String {
    recovery_kit(&recovery::split(root))
}

/// The root key, rebuilt from two shares of the recovery kit and checked against the vault:
/// shares of another installation's kit rebuild *a* key, not this one.
pub fn unseal_with_shares(data_dir: &Path, shares: &[&str]) -> Result<Key, Error> {
    let root = recovery::combine(shares).map_err(|e| {
        Error::Locked(format!(
            "the shares do not rebuild a key ({e}); check each line against the printed kit"
        ))
    })?;
    let config = load_config(data_dir)?;
    let location = vault_location(data_dir, &config);
    let made = match &location {
        Location::Sqlite(path) => path.exists(),
        Location::Postgres { .. } => true,
    };
    if made {
        Vault::open_at(&location, config, root.clone()).map_err(|_| {
            Error::Locked(
                "these shares belong to a different custody installation; nothing was changed"
                    .into(),
            )
        })?;
    }
    Ok(root)
}

/// Seals `root` under a new passphrase (Argon2id at the default parameters), replacing the
/// sealed root key: written beside, synced, renamed over, the directory synced, so after a
/// power cut the old passphrase (of someone who left, say) cannot come back.
pub fn reseal(data_dir: &Path, root: &Key, passphrase: &str) -> Result<(), Error> {
    let seal = PassphraseSeal::seal(root, passphrase.as_bytes(), Argon2Params::default())
        .map_err(|e| Error::Crypto(e.to_string()))?;
    let path = sealed_root_path(data_dir);
    custody_store::files::replace(&path, sealed_root_text(&seal).as_bytes(), 0o600)
        .map_err(|e| Error::Config(format!("cannot replace '{}': {e}", path.display())))?;
    // The root just sealed is the one that opened the vault: a rotation cut short before
    // its commit is undone (after its commit, only its new root would have opened it).
    let _ = std::fs::remove_file(DataDir::new(data_dir).sealed_root_next());
    Ok(())
}

/// What [`init`] made: the owner's first API key (to show once), the recovery kit (to
/// print or write outside the data directory: [`init`] never writes it inside, where any
/// copy of the directory would carry it) and the root key (for what the caller derives
/// from it, such as the quarantine's public key).
pub struct Initialised {
    /// The owner's API key, `ck_…`: shown once, never stored.
    pub owner_key: String,
    /// The recovery kit's text: instructions and three shares, any two of which rebuild the
    /// root key.
    pub kit: String,
    /// The new root key (zeroed when dropped).
    pub root: Key,
    /// The vault's quarantine key, to set up the quarantine (zeroed when dropped).
    pub quarantine: Key,
}

impl Drop for Initialised {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.kit.zeroize();
        self.owner_key.zeroize();
    }
}

impl std::fmt::Debug for Initialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Initialised(<redacted>)")
    }
}

/// Sets up a data directory: owner-only folders (the directory itself only when this
/// creates it: an existing folder the user pointed at keeps its permissions), a random root
/// key sealed under `passphrase` and split 2-of-3 into the recovery kit, the default
/// configuration, the ledger, the vault and the owner's first API key (recorded as
/// `apikey.create`). Refuses a directory that already has a configuration; never
/// overwrites a file. Argon2id at `params` (the default outside tests). With `store`, the
/// vault and the ledger live in that PostgreSQL database (its schemas must be new) and the
/// configuration names it.
pub fn init(
    data_dir: &Path,
    passphrase: &str,
    params: Argon2Params,
    store: Option<&StoreConfig>,
) -> Result<Initialised, Error> {
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
    let text = match store {
        Some(store) => format!("{}\n{}", crate::DEFAULT_CONFIG, store.to_toml()),
        None => crate::DEFAULT_CONFIG.to_string(),
    };
    let config = Config::parse(&text)?;
    let location = vault_location(data_dir, &config);
    if let Location::Postgres { .. } = location
        && crate::backend::open(&location)?.latest_kek()?.is_some()
    {
        return Err(Error::Config(
            "that PostgreSQL database already holds a custody vault under this schema name; nothing was changed (choose another `schema`)".into(),
        ));
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
    write(data.config(), text.as_bytes())?;
    let options = LedgerOptions::default();
    let ledger = match store {
        Some(store) => {
            let (reader, writer) = pg_ledger(store).map_err(|e| Error::Audit(e.to_string()))?;
            Ledger::init_with_stores(data_dir, options, reader, writer)
        }
        None if Ledger::exists(data_dir) => Ledger::open(data_dir, options),
        None => Ledger::init(data_dir, options),
    }
    .map_err(|e| Error::Audit(e.to_string()))?;
    let vault = Vault::open_at(&location, config, root.clone())?;
    let mut vault = crate::AuditedVault::new(vault, ledger);
    let owner =
        crate::Access { actor: "cli:owner", role: "owner", purpose: None, request_id: None };
    let (_, owner_key) = vault.create_api_key(&owner, "owner", "owner")?;
    let quarantine = vault.quarantine_key().clone();
    // The ledger was made with its signing key in clear: sealed under the vault now.
    ledger_signing(data_dir, vault.ledger(), vault.ledger_key())?;
    Ok(Initialised { owner_key, kit: recovery_kit(&recovery::split(&root)), root, quarantine })
}

/// The recovery kit as printed from its shares (a server's answer to a root rotation).
pub fn kit_text(shares: &[&str]) -> String {
    recovery_kit(&shares.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
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
         4. Delete any copy on the computer (this file, if it is one): `custody` does not\n\
         \x20  need it, and a copy beside the vault would open it.\n\n",
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
