//! The server's state: sealed or unsealed, the reader pool, the single writer that batches
//! vault writes into group commits, and the per-key reveal limit.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use custody_crypto::Key;
use custody_ledger::{Action, Ledger, LedgerOptions, Outcome};
use custody_vault::{
    Access, ApiKeyInfo, AuthFailure, Config, Error, Expired, Gate, Permit, Refused, Vault, layout,
};

/// Vault connections for reads (SQLite in WAL mode reads concurrently).
const READERS: usize = 4;
/// The pause after a failed unseal attempt (attempts are also serialised).
const FAILED_UNSEAL_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);
/// Most writes committed together.
const BATCH: usize = 128;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A write for the writer thread, with the permit the gate gave for it.
pub enum Op {
    /// Create a record.
    Insert { permit: Permit, collection: String, values: BTreeMap<String, String> },
    /// Change fields of a record.
    Update { permit: Permit, collection: String, record: String, values: BTreeMap<String, String> },
    /// Erase a record (and its linked records).
    Erase { permit: Permit, collection: String, record: String },
    /// Apply retention as of a time.
    Expire { permit: Permit, now: i64 },
    /// Rotate the key-encryption key.
    Rotate { permit: Permit },
    /// Make an API key.
    CreateKey { permit: Permit, name: String, role: String },
    /// Revoke an API key by id.
    RevokeKey { permit: Permit, id: String },
}

/// What a write did.
pub enum Done {
    /// The new record's id, and the permit (which reads it back).
    Created(String, Permit),
    /// Fields changed; the permit reads the record back.
    Updated(Permit),
    /// Erased, with this many linked records.
    Erased(usize),
    /// Retention applied.
    Expired(Expired),
    /// Keys rotated: data keys re-wrapped, and the new version.
    Rotated(usize, u32),
    /// An API key made, with its credential (shown once).
    KeyCreated(ApiKeyInfo, String),
    /// An API key revoked.
    KeyRevoked(ApiKeyInfo),
}

struct Job {
    op: Op,
    reply: Sender<Result<Done, Error>>,
}

fn run_op(vault: &mut Vault, op: Op) -> Result<Done, Error> {
    match op {
        Op::Insert { mut permit, collection, values } => {
            vault.insert(&mut permit, &collection, &values).map(|id| Done::Created(id, permit))
        }
        Op::Update { permit, collection, record, values } => {
            vault.update(&permit, &collection, &record, &values).map(|()| Done::Updated(permit))
        }
        Op::Erase { permit, collection, record } => {
            vault.erase(&permit, &collection, &record).map(Done::Erased)
        }
        Op::Expire { permit, now } => vault.expire(&permit, now).map(Done::Expired),
        Op::Rotate { permit } => {
            vault.rotate_keys(&permit).map(|n| Done::Rotated(n, vault.kek_version()))
        }
        Op::CreateKey { permit, name, role } => vault
            .create_api_key(&permit, &name, &role)
            .map(|(info, key)| Done::KeyCreated(info, key)),
        Op::RevokeKey { permit, id } => {
            vault.revoke_api_key_by_id(&permit, &id, true).map(Done::KeyRevoked)
        }
    }
}

/// The writer: takes what is queued (up to [`BATCH`]), runs each in its own savepoint inside
/// one transaction, commits once, then answers each. A write is acknowledged only after
/// the commit that made it durable.
fn writer(mut vault: Vault, jobs: &Receiver<Job>) {
    for batch in custody_store::group::batches(jobs, BATCH) {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|j| (j.op, j.reply)).unzip();
        let results = vault.batch(|v| ops.into_iter().map(|op| run_op(v, op)).collect::<Vec<_>>());
        match results {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                // Nothing of the batch happened: forget a rotation it may have made.
                if let Err(reload) = vault.reload_kek() {
                    eprintln!("vault writer: cannot reload the key-encryption key: {reload}");
                }
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// An unsealed vault: readers, the writer, and the configuration.
pub struct Unsealed {
    readers: Vec<Mutex<Vault>>,
    next: AtomicUsize,
    writer: Mutex<Option<(Sender<Job>, JoinHandle<()>)>>,
    config: Config,
}

impl Unsealed {
    fn open(data_dir: &Path, config: &Config, root: &Key) -> Result<Self, Error> {
        let path = layout::vault_path(data_dir);
        let mut write_vault = Vault::open(&path, config.clone(), root.clone())?;
        write_vault.checkpoint_in_background(&path)?;
        let readers = (0..READERS)
            .map(|_| Vault::open(&path, config.clone(), root.clone()).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        let (tx, rx) = bounded::<Job>(4096);
        let handle = std::thread::Builder::new()
            .name("custody-vault-writer".into())
            .spawn(move || writer(write_vault, &rx))
            .map_err(|e| Error::Store(format!("cannot start the vault writer: {e}")))?;
        Ok(Self {
            readers,
            next: AtomicUsize::new(0),
            writer: Mutex::new(Some((tx, handle))),
            config: config.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs `f` on a free reader (or waits for one).
    pub fn read<T>(&self, f: impl FnOnce(&Vault) -> T) -> T {
        let start = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        for i in 0..self.readers.len() {
            if let Ok(guard) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return f(&guard);
            }
        }
        f(&lock(&self.readers[start]))
    }

    /// Queues a write and waits until it is durable.
    pub fn write(&self, op: Op) -> Result<Done, Error> {
        let (reply, answer) = bounded(1);
        let sender = lock(&self.writer).as_ref().map(|(tx, _)| tx.clone());
        let sender = sender.ok_or_else(|| Error::Store("the vault is closing".into()))?;
        sender
            .send(Job { op, reply })
            .map_err(|_| Error::Store("the vault writer has stopped".into()))?;
        answer.recv().map_err(|_| Error::Store("the vault writer has stopped".into()))?
    }

    /// Stops the writer after what is queued.
    fn close(&self) {
        if let Some((tx, handle)) = lock(&self.writer).take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// How the server unseals.
pub enum Secret<'a> {
    /// The passphrase.
    Passphrase(&'a str),
    /// Two (or more) recovery shares.
    Shares(&'a [&'a str]),
}

/// Reveals per key in the current minute.
#[derive(Default)]
struct Limiter {
    windows: HashMap<String, (u64, u32)>,
}

/// The whole server state.
pub struct App {
    data_dir: PathBuf,
    config: Config,
    gate: Gate,
    unsealed: RwLock<Option<Arc<Unsealed>>>,
    unseal_attempt: Mutex<()>,
    limiter: Mutex<Limiter>,
}

impl App {
    /// Opens a data directory, sealed: the configuration and the ledger, no keys.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        let config = layout::load_config(data_dir)?;
        if !layout::sealed_root_path(data_dir).exists() {
            return Err(Error::Config(format!(
                "'{}' has no root key: run `custody init` first",
                data_dir.display()
            )));
        }
        let ledger = Ledger::open(data_dir, LedgerOptions::default())
            .map_err(|e| Error::Audit(e.to_string()))?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            config,
            gate: Gate::new(Arc::new(ledger)),
            unsealed: RwLock::new(None),
            unseal_attempt: Mutex::new(()),
            limiter: Mutex::new(Limiter::default()),
        })
    }

    /// The gate every access goes through.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The unsealed vault, or `None` while sealed.
    pub fn unsealed(&self) -> Option<Arc<Unsealed>> {
        self.unsealed.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Unseals with a passphrase or shares. Attempts run one at a time, and each is
    /// recorded in the ledger: `sys.unseal` when it opens, `auth.failed` (with the source's
    /// pseudonym) when the passphrase or shares are wrong.
    pub fn unseal(&self, secret: &Secret<'_>, source: Option<IpAddr>) -> Result<(), Error> {
        // One attempt at a time; others are turned away at once instead of queueing, so a
        // flood of guesses cannot hold the owner's real attempt back.
        let Ok(_one_at_a_time) = self.unseal_attempt.try_lock() else {
            return Err(Error::Busy(
                "an unseal attempt is already running; try again in a moment".into(),
            ));
        };
        if self.unsealed().is_some() {
            return Ok(());
        }
        let root = match secret {
            Secret::Passphrase(p) => layout::unseal_with_passphrase(&self.data_dir, p),
            Secret::Shares(s) => layout::unseal_with_shares(&self.data_dir, s),
        };
        match &root {
            Ok(_) => {
                let access = Access { actor: "sys", role: "-", purpose: None, request_id: None };
                self.gate.note(&access, Action::SysUnseal, "vault", Outcome::Ok)?;
            }
            Err(Error::Locked(_)) => {
                let reason = match secret {
                    Secret::Passphrase(_) => Refused::WrongPassphrase,
                    Secret::Shares(_) => Refused::WrongShares,
                };
                // Guessing stays slow: one attempt at a time, and a pause after each failure
                // (before recording, so a ledger that cannot write does not make it fast).
                std::thread::sleep(FAILED_UNSEAL_PAUSE);
                self.gate.auth_failed(&AuthFailure {
                    via: "unseal",
                    reason,
                    source,
                    presented_key: None,
                    request_id: None,
                })?;
            }
            Err(_) => {
                // Not a wrong secret (a damaged seal, an unreadable configuration): recorded
                // as a failed unseal, not as a refused credential.
                std::thread::sleep(FAILED_UNSEAL_PAUSE);
                let access = Access { actor: "sys", role: "-", purpose: None, request_id: None };
                self.gate.note(&access, Action::SysUnseal, "vault", Outcome::Error)?;
            }
        }
        let unsealed = Unsealed::open(&self.data_dir, &self.config, &root?)?;
        *self.unsealed.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(unsealed));
        Ok(())
    }

    /// Applies retention now, through the writer (recorded as `retention.run`, then
    /// `retention.done` with what was removed). `None` while sealed.
    pub fn run_retention(&self) -> Result<Option<Expired>, Error> {
        let Some(vault) = self.unsealed() else { return Ok(None) };
        let access = Access { actor: "sys:retention", role: "-", purpose: None, request_id: None };
        let permit = self.gate.retention(&access)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let Done::Expired(expired) = vault.write(Op::Expire { permit, now })? else {
            unreachable!("an expiry answers Expired")
        };
        self.gate.retention_done(&access, expired)?;
        Ok(Some(expired))
    }

    /// Counts `n` plain values (records) read or revealed by `key`; false past the
    /// configured limit.
    pub fn allow_reveal(&self, key: &str, n: u32) -> bool {
        let minute = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60);
        let limit = self.config.limits.reveals_per_minute;
        let mut limiter = lock(&self.limiter);
        if limiter.windows.len() > 10_000 {
            limiter.windows.retain(|_, (m, _)| *m == minute);
        }
        let window = limiter.windows.entry(key.to_string()).or_insert((minute, 0));
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1.saturating_add(n) > limit {
            return false;
        }
        window.1 += n;
        true
    }

    /// Finishes queued writes and closes the vault (on shutdown).
    pub fn close(&self) {
        if let Some(u) = self.unsealed.write().unwrap_or_else(PoisonError::into_inner).take() {
            u.close();
        }
    }
}
