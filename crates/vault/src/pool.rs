//! The vault as a server holds it: readers that read concurrently, and the one writer
//! that batches every write into group commits (one durable commit per batch, each write
//! its own all-or-nothing step inside it). A write is acknowledged only after the commit
//! that made it durable. Every read and write carries the gate's permit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};
use custody_crypto::Key;

use crate::{ApiKeyInfo, Config, Error, Expired, Location, Permit, Vault};

/// Vault connections for reads (SQLite in WAL mode, and PostgreSQL, read concurrently).
const READERS: usize = 4;
/// Most writes committed together.
const BATCH: usize = 128;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A write for the writer thread, with the permit the gate gave for it (the fields are the
/// permit and the arguments of the matching [`Vault`] method).
#[allow(missing_docs)]
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
    /// Replace the root key (see [`Pool::rotate_root`], which sends it).
    RotateRoot { permit: Permit, new_root: Key },
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
    /// The root key replaced.
    RootRotated(crate::RootRotated),
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
        Op::RotateRoot { permit, new_root } => {
            vault.rotate_root(&permit, new_root).map(Done::RootRotated)
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

/// An unsealed vault for a long-running server: a few readers, and one writer thread that
/// batches writes into group commits.
pub struct Pool {
    readers: Vec<Mutex<Vault>>,
    next: AtomicUsize,
    writer: Mutex<Option<(Sender<Job>, JoinHandle<()>)>>,
    config: Config,
    location: Location,
}

impl Pool {
    /// Opens the writer and the readers on the vault at `location`.
    pub fn open(location: &Location, config: &Config, root: &Key) -> Result<Self, Error> {
        let mut write_vault = Vault::open_at(location, config.clone(), root.clone())?;
        write_vault.checkpoint_in_background()?;
        let readers = (0..READERS)
            .map(|_| Vault::open_at(location, config.clone(), root.clone()).map(Mutex::new))
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
            location: location.clone(),
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

    /// Replaces the root key through the writer, with every reader held meanwhile and
    /// reopened under `new_root` afterwards (their key rows and index key are the new
    /// ones), so no read runs half under the old root and half under the new. Other nodes
    /// on the same PostgreSQL vault keep the old root in memory: restart and unseal them.
    pub fn rotate_root(&self, permit: Permit, new_root: &Key) -> Result<crate::RootRotated, Error> {
        let mut held: Vec<MutexGuard<'_, Vault>> = self.readers.iter().map(lock).collect();
        let Done::RootRotated(done) =
            self.write(Op::RotateRoot { permit, new_root: new_root.clone() })?
        else {
            unreachable!("a root rotation answers RootRotated")
        };
        for reader in &mut held {
            **reader = Vault::open_at(&self.location, self.config.clone(), new_root.clone())?;
        }
        Ok(done)
    }

    /// Stops the writer after what is queued.
    pub fn close(&self) {
        if let Some((tx, handle)) = lock(&self.writer).take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}
