//! The ledger: durable appends with group commit, checkpoints, proofs, verification and
//! evidence bundles, over the SQLite store in a data directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::event::{Event, Outcome, Pseudonym, PseudonymKey};
use crate::merkle::{self, Frontier, Hash};
use crate::note::{Checkpoint, NoteSigner, NoteVerifier};
use crate::store::{LogStore, SqliteStore, StoreNodes, StoredEvent, StoredNode, StoredRow};

use custody_store::{DataDir, files};

/// How the ledger checkpoints and watches the disk.
#[derive(Clone, Debug)]
pub struct LedgerOptions {
    /// Sign a checkpoint after this many new events…
    pub checkpoint_every: u64,
    /// …or this long after the last one, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Below this much free space, a `ledger.low_disk` warning event is recorded.
    pub min_free_bytes: u64,
    /// A folder outside the data directory (another disk, a share the business does not
    /// write from this account, later the backup target) where each new checkpoint is also
    /// written, as `checkpoint.txt`: [`Ledger::witnessed`] reads it back, and `verify`
    /// checks the log against it, so dropping the newest events and checkpoints from the
    /// data directory is seen (security review item 12).
    pub witness: Option<PathBuf>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_mins(1),
            min_free_bytes: 512 << 20,
            witness: None,
        }
    }
}

/// The file a witness folder holds: the newest checkpoint written there.
pub const WITNESS_FILE: &str = "checkpoint.txt";

enum Request {
    Append {
        leaf: Vec<u8>,
        columns: Columns,
        reply: Sender<Result<u64, String>>,
    },
    /// Many events in order, committed together (imports, bulk loads).
    AppendMany {
        leaves: Vec<(Vec<u8>, Columns)>,
        reply: Sender<Result<u64, String>>,
    },
    Checkpoint {
        reply: Sender<Result<Checkpoint, String>>,
    },
    /// The signing key, unsealed: checkpoints are signed from now on.
    Signer {
        signer: NoteSigner,
    },
}

/// Event fields copied into columns for filtering exports.
struct Columns {
    time: i64,
    actor: String,
    action: String,
    record: Option<String>,
}

impl Columns {
    /// The columns as the ledger writes them for `event`; [`verify_store`] recomputes them
    /// from each stored leaf and compares.
    fn of(event: &Event) -> Self {
        Columns {
            time: event.time,
            actor: event.actor.clone(),
            action: event.action.clone(),
            record: event
                .target
                .as_ref()
                .and_then(|t| t.record.as_ref())
                .map(|r| r.as_str().to_string()),
        }
    }
}

/// An open ledger. Appends from any thread are batched into one transaction per disk sync.
pub struct Ledger {
    dir: PathBuf,
    reader: Mutex<Box<dyn LogStore>>,
    writer: Option<(Sender<Request>, JoinHandle<()>)>,
    verifier: NoteVerifier,
    pseudonyms: PseudonymKey,
    /// Where checkpoints are also written (see [`LedgerOptions::witness`]).
    witness: Option<PathBuf>,
    /// Whether the writer holds the signing key.
    signing: std::sync::atomic::AtomicBool,
    /// Held while open: one writing process per ledger (released on drop).
    _lock: std::fs::File,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.dir.display())
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { what, path: path.to_path_buf(), source }
}

fn random_key() -> Result<[u8; 32], Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Io {
        what: "drawing random bytes for",
        path: PathBuf::from("a new key"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(key)
}

/// Creates the key directory (owner-only) and the two keys, unless they exist.
fn create_keys(dir: &Path) -> Result<(), Error> {
    let data = DataDir::new(dir);
    let keys = data.keys();
    files::private_dir(&keys).map_err(io("creating", &keys))?;
    for path in [data.ledger_signing_key(), data.ledger_pseudonym_key()] {
        if !path.exists() {
            files::write_private(&path, hex(&random_key()?).as_bytes())
                .map_err(io("creating key file", &path))?;
        }
    }
    Ok(())
}

/// Why a checkpoint cannot be signed while the signing key is sealed.
pub const SEALED_SIGNER: &str = "the ledger's signing key is sealed under the vault: checkpoints are signed once it is unlocked (give the passphrase: --passphrase-file or CUSTODY_PASSPHRASE, or unseal the server)";

/// Names a new log.
fn set_origin(store: &mut dyn LogStore) -> Result<(), Error> {
    let origin = format!("custody.local/ledger/{}", &hex(&random_key()?)[..12]);
    store.set_meta("origin", &origin)?;
    store.set_meta("format", "1")
}

fn read_key(path: &Path) -> Result<[u8; 32], Error> {
    let text = fs::read_to_string(path).map_err(io("reading key file", path))?;
    custody_store::hex::decode_key(&text).ok_or_else(|| Error::BadKey(path.to_path_buf()))
}

use crate::hex;

impl Ledger {
    /// Whether `dir` holds a ledger.
    pub fn exists(dir: &Path) -> bool {
        DataDir::new(dir).ledger_db().is_file()
    }

    /// Creates a ledger in `dir` (creating the directory), with new keys.
    pub fn init(dir: &Path, options: LedgerOptions) -> Result<Ledger, Error> {
        if Self::exists(dir) {
            return Err(Error::AlreadyInitialised(dir.to_path_buf()));
        }
        create_keys(dir)?;
        let mut store = SqliteStore::open(&DataDir::new(dir).ledger_db(), true)?;
        set_origin(&mut store)?;
        drop(store);
        Self::open(dir, options)
    }

    /// Creates a ledger in `store` (for example a [`crate::PgStore`]) with its keys in
    /// `dir/keys`, and opens it with `writer`, a second handle on the same store.
    pub fn init_with_stores(
        dir: &Path,
        options: LedgerOptions,
        mut reader: Box<dyn LogStore>,
        writer: Box<dyn LogStore>,
    ) -> Result<Ledger, Error> {
        if reader.meta("origin")?.is_some() {
            return Err(Error::AlreadyInitialised(dir.to_path_buf()));
        }
        create_keys(dir)?;
        set_origin(reader.as_mut())?;
        Self::open_with_stores(dir, options, reader, writer)
    }

    /// Opens the ledger in `dir`.
    pub fn open(dir: &Path, options: LedgerOptions) -> Result<Ledger, Error> {
        if !Self::exists(dir) {
            return Err(Error::NotInitialised(dir.to_path_buf()));
        }
        let db = DataDir::new(dir).ledger_db();
        let reader = Box::new(SqliteStore::open(&db, false)?);
        let writer = Box::new(SqliteStore::open(&db, false)?);
        Self::open_with_stores(dir, options, reader, writer)
    }

    /// Opens a ledger whose events live in `reader`/`writer` (two handles on one store: the
    /// writer thread owns the second) and whose keys live in `dir/keys`. This is how a
    /// PostgreSQL store plugs in.
    pub fn open_with_stores(
        dir: &Path,
        options: LedgerOptions,
        reader: Box<dyn LogStore>,
        writer_store: Box<dyn LogStore>,
    ) -> Result<Ledger, Error> {
        let data = DataDir::new(dir);
        let lock_path = data.ledger_lock();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening the lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::InUse(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io("locking", &lock_path)(e));
            }
        }
        let origin =
            reader.meta("origin")?.ok_or_else(|| Error::NotInitialised(dir.to_path_buf()))?;
        // The signing key in clear (a ledger without a vault, or one not yet sealed), or
        // sealed under the vault (review item 12): then only its public half is read, and
        // checkpoints wait until [`Ledger::unseal_signer`].
        let (signer, verifier) = if data.ledger_signing_key().exists() {
            let signer = NoteSigner::new(origin, read_key(&data.ledger_signing_key())?);
            let verifier = signer.verifier();
            (Some(signer), verifier)
        } else {
            let public = data.ledger_signing_public();
            let text = fs::read_to_string(&public).map_err(io("reading key file", &public))?;
            let verifier = NoteVerifier::from_key_string(text.trim())?;
            if verifier.origin() != origin {
                return Err(Error::BadKey(public));
            }
            (None, verifier)
        };
        let pseudonyms = PseudonymKey::from_bytes(read_key(&data.ledger_pseudonym_key())?);
        let size = writer_store.size()?;
        let frontier = Frontier::load(&StoreNodes(writer_store.as_ref()), size)?;
        let last_checkpoint = writer_store.checkpoints()?.last().map_or(0, |(size, _)| *size);
        let signing = signer.is_some();
        let (tx, rx) = bounded::<Request>(65_536);
        let witness = options.witness.clone();
        let mut writer = Writer {
            store: writer_store,
            frontier,
            signer,
            verifier: verifier.clone(),
            options,
            dir: dir.to_path_buf(),
            last_checkpoint_size: last_checkpoint,
            last_checkpoint_at: Instant::now(),
            last_disk_check: None,
            low_disk_warned: false,
            shared: false,
        };
        let handle = std::thread::Builder::new()
            .name("custody-ledger-writer".into())
            .spawn(move || writer.run(&rx))
            .map_err(io("starting the ledger writer for", dir))?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
            reader: Mutex::new(reader),
            writer: Some((tx, handle)),
            signing: std::sync::atomic::AtomicBool::new(signing),
            verifier,
            pseudonyms,
            witness,
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint verifier (public key).
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The keyed pseudonym of an identifier.
    pub fn pseudonym(&self, value: &str) -> Pseudonym {
        self.pseudonyms.pseudonym(value)
    }

    /// How an event names the file at `path` (review item 18): `path:` and the keyed
    /// pseudonym of the path, with the clear path kept in the path book
    /// (`ledger-paths.db`), from where [`Ledger::forget_path`] removes it. An error means
    /// the path could not be kept: record nothing.
    pub fn path_ref(&self, path: &str) -> Result<String, Error> {
        let pseudonym = self.pseudonym(path);
        crate::paths::put(&DataDir::new(&self.dir).ledger_paths(), pseudonym.as_str(), path)?;
        Ok(format!("{}{}", crate::paths::PATH_REF_PREFIX, pseudonym.as_str()))
    }

    /// The clear path an event's `recorded` path names: from the path book for a
    /// reference (`None` once forgotten), as it is for an event written before paths were
    /// pseudonymised.
    pub fn resolve_path(&self, recorded: &str) -> Result<Option<String>, Error> {
        match recorded.strip_prefix(crate::paths::PATH_REF_PREFIX) {
            Some(pseudonym) => {
                crate::paths::get(&DataDir::new(&self.dir).ledger_paths(), pseudonym)
            }
            None => Ok(Some(recorded.to_string())),
        }
    }

    /// Whether an event's `recorded` path names `path` (needs no path book: the
    /// pseudonym is computed).
    pub fn names_path(&self, recorded: &str, path: &str) -> bool {
        match recorded.strip_prefix(crate::paths::PATH_REF_PREFIX) {
            Some(pseudonym) => self.pseudonym(path).as_str() == pseudonym,
            None => recorded == path,
        }
    }

    /// Forgets the clear path of `path` in the path book (the events keep its pseudonym).
    /// True if it was there.
    pub fn forget_path(&self, path: &str) -> Result<bool, Error> {
        crate::paths::forget(&DataDir::new(&self.dir).ledger_paths(), self.pseudonym(path).as_str())
    }

    /// Records `event` durably and returns its position. An error means the event is not
    /// in the ledger: callers must treat it as "no access" (fail closed).
    pub fn append(&self, event: &Event) -> Result<u64, Error> {
        event.validate()?;
        let columns = Columns::of(event);
        let (reply, answer) = bounded(1);
        let (tx, _) = self.writer.as_ref().ok_or(Error::Closed)?;
        tx.send(Request::Append { leaf: event.canonical(), columns, reply })
            .map_err(|_| Error::Closed)?;
        answer.recv().map_err(|_| Error::Closed)?.map_err(Error::NotRecorded)
    }

    /// Records many events, in order, in as few transactions as possible; returns the
    /// position of the first. All or nothing per call.
    pub fn append_all(&self, events: &[Event]) -> Result<u64, Error> {
        let mut leaves = Vec::with_capacity(events.len());
        for event in events {
            event.validate()?;
            leaves.push((event.canonical(), Columns::of(event)));
        }
        let (reply, answer) = bounded(1);
        let (tx, _) = self.writer.as_ref().ok_or(Error::Closed)?;
        tx.send(Request::AppendMany { leaves, reply }).map_err(|_| Error::Closed)?;
        answer.recv().map_err(|_| Error::Closed)?.map_err(Error::NotRecorded)
    }

    /// The public key checkpoints verify with, as `ledger public-key` prints it.
    pub fn public_key(&self) -> String {
        self.verifier.to_key_string()
    }

    /// Whether checkpoints can be signed now (false while the signing key is sealed).
    pub fn can_sign(&self) -> bool {
        self.signing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Unseals the signing key (`seed`, opened from `keys/ledger-signing.sealed` by the
    /// vault): checkpoints are signed from now on, covering every event appended while it
    /// was sealed. A key whose public half is not this ledger's is refused.
    pub fn unseal_signer(&self, seed: [u8; 32]) -> Result<(), Error> {
        let signer = NoteSigner::new(self.verifier.origin(), seed);
        if signer.verifier().to_key_string() != self.verifier.to_key_string() {
            return Err(Error::BadKey(DataDir::new(&self.dir).ledger_signing_sealed()));
        }
        let (tx, _) = self.writer.as_ref().ok_or(Error::Closed)?;
        tx.send(Request::Signer { signer }).map_err(|_| Error::Closed)?;
        self.signing.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Signs and stores a checkpoint of the log as it is now.
    pub fn checkpoint(&self) -> Result<Checkpoint, Error> {
        let (reply, answer) = bounded(1);
        let (tx, _) = self.writer.as_ref().ok_or(Error::Closed)?;
        tx.send(Request::Checkpoint { reply }).map_err(|_| Error::Closed)?;
        answer.recv().map_err(|_| Error::Closed)?.map_err(Error::NotRecorded)
    }

    fn read<T>(&self, f: impl FnOnce(&dyn LogStore) -> Result<T, Error>) -> Result<T, Error> {
        let store = self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(store.as_ref())
    }

    /// Events recorded.
    pub fn size(&self) -> Result<u64, Error> {
        self.read(|c| c.size())
    }

    /// The root hash of the first `size` events.
    pub fn root(&self, size: u64) -> Result<Hash, Error> {
        self.read(|c| {
            let total = c.size()?;
            if size > total {
                return Err(Error::OutOfRange { index: size, size: total });
            }
            merkle::subtree_root(&StoreNodes(c), 0, size)
        })
    }

    /// The latest stored checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let note = self.read(|c| Ok(c.checkpoints()?.pop().map(|(_, note)| note)))?;
        note.map(|n| self.verifier.verify(&n)).transpose()
    }

    /// The stored event at `index`, as its canonical bytes.
    pub fn leaf(&self, index: u64) -> Result<Vec<u8>, Error> {
        self.read(|c| {
            let total = c.size()?;
            if index >= total {
                return Err(Error::OutOfRange { index, size: total });
            }
            c.leaf(index)
        })
    }

    /// Inclusion proof of event `index` in the tree of `size` events.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        self.read(|c| {
            let total = c.size()?;
            if size > total || index >= size {
                return Err(Error::OutOfRange { index: index.max(size), size: total });
            }
            merkle::inclusion_proof(&StoreNodes(c), index, size)
        })
    }

    /// Consistency proof from the tree of `old` events to the tree of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, Error> {
        self.read(|c| {
            let total = c.size()?;
            if new > total || old > new {
                return Err(Error::OutOfRange { index: new.max(old), size: total });
            }
            merkle::consistency_proof(&StoreNodes(c), old, new)
        })
    }

    /// Recomputes the whole tree from the stored events and checks every stored hash and
    /// every checkpoint against it. Stops at the first disagreement and names its position.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.read(|c| verify_store(c, &self.verifier))
    }

    /// The newest checkpoint in the witness folder, if one is set and holds one.
    pub fn witnessed(&self) -> Option<std::io::Result<String>> {
        let dir = self.witness.as_ref()?;
        match std::fs::read_to_string(dir.join(WITNESS_FILE)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            other => Some(other),
        }
    }

    /// Proves that the log now is an append-only extension of a checkpoint witnessed
    /// earlier (`note`, as written by `checkpoint --out`).
    pub fn verify_against(&self, note: &str) -> Result<Witnessed, Error> {
        let old = self.verifier.verify(note)?;
        self.read(|c| {
            let total = c.size()?;
            if old.size > total {
                return Err(Error::Checkpoint(format!(
                    "the witnessed checkpoint covers {} events but the log now has only {total}: events were removed",
                    old.size
                )));
            }
            let nodes = StoreNodes(c);
            let root_then = merkle::subtree_root(&nodes, 0, old.size)?;
            let root_now = merkle::subtree_root(&nodes, 0, total)?;
            let proof = merkle::consistency_proof(&nodes, old.size, total)?;
            let consistent = root_then == old.root && merkle::verify_consistency(old.size, total, &old.root, &root_now, &proof);
            if !consistent {
                return Err(Error::Checkpoint(format!(
                    "the log is not an extension of the witnessed checkpoint at {} events: history before that point was rewritten",
                    old.size
                )));
            }
            Ok(Witnessed { witnessed_size: old.size, current_size: total, proof_len: proof.len() })
        })
    }

    /// The recorded events from position `from` on, in order, parsed: the typed stream a
    /// reader (the watch engine, the decommission certificate) follows. Reads in pages, so
    /// the log is never held in memory; an event that does not parse ends the stream with
    /// its error (run [`Ledger::verify`] to see why).
    pub fn events(&self, from: u64) -> Events<'_> {
        Events { ledger: self, next: from, page: Vec::new().into_iter(), done: false }
    }

    /// Writes an evidence bundle: the events matching `filter`, each with its inclusion
    /// proof, and a checkpoint signed now that covers them all. Events are selected on
    /// their canonical (hashed) form, never on the index columns, so an edited column
    /// cannot leave an event out of a bundle that still verifies.
    pub fn export(&self, filter: &ExportFilter) -> Result<Bundle, Error> {
        let checkpoint = self.checkpoint()?;
        let record = filter.record.as_deref().map(|r| self.pseudonym(r));
        let wanted = |e: &Event| {
            e.time >= filter.from_ms
                && e.time <= filter.to_ms
                && filter.actor.as_deref().is_none_or(|a| e.actor == a)
                && record
                    .as_ref()
                    .is_none_or(|r| e.target.as_ref().and_then(|t| t.record.as_ref()) == Some(r))
        };
        let mut events = Vec::new();
        let mut from = 0;
        while from < checkpoint.size {
            let page =
                self.read(|c| c.events_from(from, VERIFY_PAGE.min(checkpoint.size - from)))?;
            let Some(last) = page.last().map(|r| r.index) else { break };
            for row in page {
                if row.index != from {
                    return Err(Error::Bundle(format!(
                        "event {from} is missing from the log: run `custody ledger verify`"
                    )));
                }
                from += 1;
                let event = Event::from_canonical(&row.leaf).map_err(|e| {
                    Error::Bundle(format!(
                        "event {} cannot be read ({e}): run `custody ledger verify`",
                        row.index
                    ))
                })?;
                if row.index < checkpoint.size && wanted(&event) {
                    let proof = self.read(|c| {
                        merkle::inclusion_proof(&StoreNodes(c), row.index, checkpoint.size)
                    })?;
                    let leaf = String::from_utf8(row.leaf)
                        .map_err(|_| Error::Bundle(format!("event {} is not UTF-8", row.index)))?;
                    events.push(BundleEvent {
                        index: row.index,
                        leaf,
                        proof: proof.iter().map(|h| hex(h)).collect(),
                    });
                }
            }
            debug_assert_eq!(from, last + 1);
        }
        Ok(Bundle {
            format: BUNDLE_FORMAT.into(),
            verifier_key: self.verifier.to_key_string(),
            checkpoint: checkpoint.note.clone(),
            events,
        })
    }

    /// Stops the writer after the appends already queued.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some((tx, handle)) = self.writer.take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The typed event stream of [`Ledger::events`].
pub struct Events<'l> {
    ledger: &'l Ledger,
    next: u64,
    page: std::vec::IntoIter<StoredRow>,
    done: bool,
}

impl Iterator for Events<'_> {
    type Item = Result<(u64, Event), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = if let Some(row) = self.page.next() {
            row
        } else {
            match self.ledger.read(|c| c.events_from(self.next, EVENTS_PAGE)) {
                Ok(page) => self.page = page.into_iter(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            self.page.next()?
        };
        if row.index != self.next {
            self.done = true;
            return Some(Err(Error::Event(format!(
                "event {} is missing (the next stored event is {})",
                self.next, row.index
            ))));
        }
        self.next = row.index + 1;
        match Event::from_canonical(&row.leaf) {
            Ok(event) => Some(Ok((row.index, event))),
            Err(e) => {
                self.done = true;
                Some(Err(Error::Event(format!("event {}: {e}", row.index))))
            }
        }
    }
}

/// Events read per page by [`Events`].
const EVENTS_PAGE: u64 = 1024;

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The first disagreement, if any.
    pub problem: Option<Problem>,
}

/// The first place the log disagrees with itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The event position (or tree size, for checkpoints) where it shows.
    pub position: u64,
    /// What is wrong, in plain words.
    pub what: String,
}

/// The outcome of checking the log against a witnessed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Witnessed {
    /// Events covered by the witnessed checkpoint.
    pub witnessed_size: u64,
    /// Events in the log now.
    pub current_size: u64,
    /// Hashes in the consistency proof.
    pub proof_len: usize,
}

/// Events read per page while verifying.
const VERIFY_PAGE: u64 = 8192;

fn verify_store(store: &dyn LogStore, verifier: &NoteVerifier) -> Result<VerifyReport, Error> {
    let mut checkpoints = store.checkpoints()?;
    checkpoints.reverse(); // smallest last, popped as the tree grows past each
    let mut report = VerifyReport { events: 0, checkpoints: 0, problem: None };
    let mut frontier = Frontier::default();
    // Checks the checkpoints of every size up to the tree's current size.
    let check = |checkpoints: &mut Vec<(u64, String)>,
                 frontier: &Frontier,
                 report: &mut VerifyReport| {
        while let Some((cp_size, note)) = checkpoints.last() {
            let cp_size = *cp_size;
            if cp_size > frontier.size() {
                break;
            }
            let problem = match verifier.verify(note) {
                Err(e) => Some(format!("checkpoint at {cp_size} events: {e}")),
                Ok(cp) if cp.size != cp_size => {
                    Some("checkpoint stored under the wrong size".to_string())
                }
                Ok(cp) if cp.root != frontier.root() => Some(format!(
                    "checkpoint at {cp_size} events does not match the events before it: an event before position {cp_size} was changed, added or removed"
                )),
                Ok(_) => None,
            };
            checkpoints.pop();
            if let Some(what) = problem {
                return Some(Problem { position: cp_size, what });
            }
            report.checkpoints += 1;
        }
        None
    };
    if let Some(p) = check(&mut checkpoints, &frontier, &mut report) {
        report.problem = Some(p);
        return Ok(report);
    }
    loop {
        let page = store.events_from(frontier.size(), VERIFY_PAGE)?;
        let Some(last) = page.last().map(|r| r.index) else { break };
        let nodes = store.nodes_between(frontier.size() + 1, last + 1)?;
        let mut nodes = nodes.iter();
        for row in &page {
            let (index, leaf, expected) = (row.index, &row.leaf, frontier.size());
            if index != expected {
                report.problem = Some(Problem {
                    position: expected,
                    what: format!("event {expected} is missing (the next stored event is {index})"),
                });
                return Ok(report);
            }
            // Integrity comes from the hashes below; this light parse (the four indexed
            // fields, borrowed) catches a leaf that was never an event of ours and gives the
            // columns to compare once the hashes agree.
            let Some(indexed) = IndexedFields::of(leaf) else {
                report.problem = Some(Problem {
                    position: index,
                    what: format!("event {index} is not a recorded event: it was altered"),
                });
                return Ok(report);
            };
            let mut mismatch: Option<String> = None;
            frontier.push(merkle::leaf_hash(leaf), |level, node_index, hash| {
                if mismatch.is_some() {
                    return;
                }
                let expected = StoredNode::new(level, node_index, *hash);
                mismatch = match nodes.next() {
                    Some(n) if n.done != expected.done || n.level != level => {
                        Some("a stored tree hash is missing or out of place".into())
                    }
                    Some(n) if n.hash != *hash && level == 0 => Some(
                        "the event differs from what was recorded (its stored hash does not match)"
                            .into(),
                    ),
                    Some(n) if n.hash != *hash => Some(format!(
                        "a stored tree hash at level {level} does not match the events"
                    )),
                    Some(_) => None,
                    None => Some("stored tree hashes end early".into()),
                };
            });
            if let Some(what) = mismatch {
                report.problem =
                    Some(Problem { position: index, what: format!("event {index}: {what}") });
                return Ok(report);
            }
            if let Some(column) = indexed.differs_from(row) {
                report.problem = Some(Problem {
                    position: index,
                    what: format!(
                        "event {index}: its stored `{column}` column does not match the recorded event (it was edited; a search or export on that column would miss or misplace the event)"
                    ),
                });
                return Ok(report);
            }
            report.events += 1;
            if let Some(p) = check(&mut checkpoints, &frontier, &mut report) {
                report.problem = Some(p);
                return Ok(report);
            }
        }
    }
    if let Some((cp_size, _)) = checkpoints.first() {
        let total = frontier.size();
        report.problem = Some(Problem {
            position: total,
            what: format!(
                "a checkpoint covers {cp_size} events but only {total} are stored: the log was truncated"
            ),
        });
    }
    Ok(report)
}

/// The indexed fields of a stored leaf, parsed without copying.
#[derive(Deserialize)]
struct IndexedFields<'a> {
    time: i64,
    #[serde(borrow)]
    actor: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    target: Option<IndexedTarget<'a>>,
}

#[derive(Deserialize)]
struct IndexedTarget<'a> {
    #[serde(borrow, default)]
    record: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> IndexedFields<'a> {
    fn of(leaf: &'a [u8]) -> Option<Self> {
        if !leaf.starts_with(b"{\"v\":") {
            return None;
        }
        serde_json::from_slice(leaf).ok()
    }

    /// The first index column of `row` that disagrees with the event, if any.
    fn differs_from(&self, row: &StoredRow) -> Option<&'static str> {
        let record = self.target.as_ref().and_then(|t| t.record.as_deref());
        if row.time != self.time {
            Some("time")
        } else if row.actor != self.actor {
            Some("actor")
        } else if row.action != self.action {
            Some("action")
        } else if row.record.as_deref() != record {
            Some("record")
        } else {
            None
        }
    }
}

struct Writer {
    store: Box<dyn LogStore>,
    frontier: Frontier,
    /// `None` while the signing key is sealed: appends go on, checkpoints wait.
    signer: Option<NoteSigner>,
    verifier: NoteVerifier,
    options: LedgerOptions,
    dir: PathBuf,
    last_checkpoint_size: u64,
    last_checkpoint_at: Instant,
    last_disk_check: Option<Instant>,
    low_disk_warned: bool,
    /// The store has other writers (it answered `begin_append` with its size).
    shared: bool,
}

/// Appends per transaction at most: bounds the time one sync holds callers.
const MAX_BATCH: usize = 4096;

impl Writer {
    fn run(&mut self, rx: &Receiver<Request>) {
        for batch in custody_store::group::batches(rx, MAX_BATCH) {
            let mut appends = Vec::new();
            for request in batch {
                match request {
                    Request::Append { leaf, columns, reply } => {
                        appends.push(Pending { leaf, columns, reply });
                    }
                    Request::AppendMany { leaves, reply } => {
                        // Committed on its own, all or nothing, in chunks of one sync each.
                        self.commit_and_reply(&mut appends);
                        let _ = reply.send(self.commit_many(leaves));
                    }
                    Request::Checkpoint { reply } => {
                        self.commit_and_reply(&mut appends);
                        let _ = reply.send(self.sign_checkpoint().map_err(|e| e.to_string()));
                    }
                    Request::Signer { signer } => self.signer = Some(signer),
                }
            }
            self.commit_and_reply(&mut appends);
            let grown = self.frontier.size() - self.last_checkpoint_size.min(self.frontier.size());
            let late = self.last_checkpoint_at.elapsed() >= self.options.checkpoint_interval;
            // On a shared store the others' appends count too: at each interval the
            // sequencer catches up and signs if anything was added.
            let due = (grown > 0 && (grown >= self.options.checkpoint_every || late))
                || (self.shared && late);
            if due && self.signer.is_some() && self.store.sequencer().unwrap_or(false) {
                let _ = self.sign_checkpoint();
            }
        }
        // Closing: leave a checkpoint over everything recorded (when it can be signed).
        if (self.frontier.size() > self.last_checkpoint_size || self.shared)
            && self.signer.is_some()
            && self.store.sequencer().unwrap_or(false)
        {
            let _ = self.sign_checkpoint();
        }
    }

    fn commit_and_reply(&mut self, appends: &mut Vec<Pending>) {
        if appends.is_empty() {
            return;
        }
        if let Some(warning) = self.disk_warning() {
            let (reply, _) = bounded(1);
            appends.insert(0, Pending::of(&warning, reply));
        }
        match self.commit(appends) {
            Ok(start) => {
                for (i, p) in appends.drain(..).enumerate() {
                    let _ = p.reply.send(Ok(start + i as u64));
                }
            }
            Err(e) => {
                // Nothing of the batch is stored: rebuild the edge from the database.
                self.reload_frontier();
                let message = e.to_string();
                for p in appends.drain(..) {
                    let _ = p.reply.send(Err(message.clone()));
                }
            }
        }
    }

    /// After a failed commit nothing of the batch is stored: rebuild the edge from the store.
    fn reload_frontier(&mut self) {
        if let Ok(size) = self.store.size()
            && let Ok(f) = Frontier::load(&StoreNodes(self.store.as_ref()), size)
        {
            self.frontier = f;
        }
    }

    /// Stores `appends` after what is stored; returns the position of the first. On a
    /// store several writers share, under its append lock, after catching up with what the
    /// others appended.
    fn commit(&mut self, appends: &[Pending]) -> Result<u64, Error> {
        self.catch_up()?;
        let stored = self.append_locked(appends);
        let ended = self.store.end_append(stored.is_ok());
        stored.and_then(|first| ended.map(|()| first))
    }

    /// Takes the store's append lock (if it has one) and reloads the edge of the tree when
    /// another writer appended since this one last did.
    fn catch_up(&mut self) -> Result<(), Error> {
        let stored = self.store.begin_append()?;
        self.shared |= stored.is_some();
        if let Some(size) = stored
            && size != self.frontier.size()
        {
            match Frontier::load(&StoreNodes(self.store.as_ref()), size) {
                Ok(f) => self.frontier = f,
                Err(e) => {
                    let _ = self.store.end_append(false);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn append_locked(&mut self, appends: &[Pending]) -> Result<u64, Error> {
        let mut frontier = self.frontier.clone();
        let first = frontier.size();
        let mut nodes = Vec::with_capacity(2 * appends.len() + 64);
        let events: Vec<StoredEvent<'_>> = appends
            .iter()
            .map(|p| {
                frontier.push(merkle::leaf_hash(&p.leaf), |level, index, hash| {
                    nodes.push(StoredNode::new(level, index, *hash));
                });
                StoredEvent {
                    leaf: &p.leaf,
                    time: p.columns.time,
                    actor: &p.columns.actor,
                    action: &p.columns.action,
                    record: p.columns.record.as_deref(),
                }
            })
            .collect();
        self.store.append(first, &events, &nodes)?;
        self.frontier = frontier;
        Ok(first)
    }

    fn commit_many(&mut self, leaves: Vec<(Vec<u8>, Columns)>) -> Result<u64, String> {
        let (dummy, _) = bounded(1);
        let pending: Vec<Pending> = leaves
            .into_iter()
            .map(|(leaf, columns)| Pending { leaf, columns, reply: dummy.clone() })
            .collect();
        match self.commit(&pending) {
            Ok(first) => Ok(first),
            Err(e) => {
                self.reload_frontier();
                Err(e.to_string())
            }
        }
    }

    /// Signs a checkpoint over everything stored (on a shared store, what every writer
    /// appended: under the append lock, after catching up).
    fn sign_checkpoint(&mut self) -> Result<Checkpoint, Error> {
        if self.signer.is_none() {
            return Err(Error::Checkpoint(SEALED_SIGNER.into()));
        }
        self.catch_up()?;
        let signer = self.signer.as_ref().expect("checked above");
        let cp = signer.sign(self.frontier.size(), &self.frontier.root());
        let stored = if cp.size == self.last_checkpoint_size && self.shared {
            Ok(()) // nothing new anywhere: the last checkpoint stands
        } else {
            self.store.put_checkpoint(cp.size, &cp.note)
        };
        let ended = self.store.end_append(stored.is_ok());
        stored.and(ended)?;
        self.last_checkpoint_size = cp.size;
        self.last_checkpoint_at = Instant::now();
        self.witness(&cp);
        Ok(cp)
    }

    /// Writes `cp` to the witness folder, if one is set, unless it already holds a
    /// checkpoint at least as large (another node's). A failure is said on standard error
    /// and does not stop the ledger: the checkpoint is stored, only its outside copy is
    /// missing, and `verify` says so.
    fn witness(&self, cp: &Checkpoint) {
        let Some(dir) = &self.options.witness else { return };
        let path = dir.join(WITNESS_FILE);
        if let Ok(old) = std::fs::read_to_string(&path)
            && let Ok(old) = self.verifier.verify(&old)
            && old.size >= cp.size
        {
            return;
        }
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| custody_store::files::replace(&path, cp.note.as_bytes(), 0o644));
        if let Err(e) = written {
            eprintln!(
                "custody: the ledger's checkpoint could not be written to the witness folder {}: {e}",
                dir.display()
            );
        }
    }

    /// A `ledger.low_disk` event when free space first drops below the threshold (checked
    /// at most every two seconds).
    fn disk_warning(&mut self) -> Option<Event> {
        if self.last_disk_check.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
            return None;
        }
        self.last_disk_check = Some(Instant::now());
        let stat = nix::sys::statvfs::statvfs(&self.dir).ok()?;
        let free = stat.blocks_available().saturating_mul(stat.fragment_size());
        let low = free < self.options.min_free_bytes;
        let warn = low && !self.low_disk_warned;
        self.low_disk_warned = low;
        warn.then(|| {
            let mut e = Event::new("system", crate::Action::LedgerLowDisk, Outcome::Ok);
            let details = crate::details::LowDisk {
                free_bytes: free,
                threshold_bytes: self.options.min_free_bytes,
            };
            // Two integers always serialise.
            let _ = e.set_details(&details);
            e
        })
    }
}

/// An append waiting for the next commit.
struct Pending {
    leaf: Vec<u8>,
    columns: Columns,
    reply: Sender<Result<u64, String>>,
}

impl Pending {
    fn of(event: &Event, reply: Sender<Result<u64, String>>) -> Self {
        Pending { leaf: event.canonical(), columns: Columns::of(event), reply }
    }
}

/// The identifying version of the bundle format.
pub const BUNDLE_FORMAT: &str = "custody-evidence-bundle/1";

/// Which events an evidence bundle holds.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    /// From this time (ms since the epoch), inclusive.
    pub from_ms: i64,
    /// To this time, inclusive.
    pub to_ms: i64,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this record (the raw identifier; matched by its pseudonym).
    pub record: Option<String>,
}

/// A self-contained, offline-verifiable set of events.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The key the checkpoint is signed with (informational: verify with a key you got
    /// from the business, not this one).
    pub verifier_key: String,
    /// A signed checkpoint covering every event below.
    pub checkpoint: String,
    /// The events with their inclusion proofs.
    pub events: Vec<BundleEvent>,
}

/// One event of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleEvent {
    /// Position in the log.
    pub index: u64,
    /// The canonical event text (the leaf).
    pub leaf: String,
    /// Inclusion proof, hex hashes.
    pub proof: Vec<String>,
}

/// What a verified bundle holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    /// The log's name.
    pub origin: String,
    /// Events in the log when the checkpoint was signed.
    pub checkpoint_size: u64,
    /// Events verified.
    pub events: usize,
}

/// Verifies a bundle offline with the verifier key the business published.
pub fn verify_bundle(bundle: &Bundle, key: &str) -> Result<BundleReport, Error> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(Error::Bundle(format!("unknown format '{}'", bundle.format)));
    }
    let verifier = NoteVerifier::from_key_string(key)?;
    let cp = verifier.verify(&bundle.checkpoint)?;
    for e in &bundle.events {
        Event::from_canonical(e.leaf.as_bytes())
            .map_err(|err| Error::Bundle(format!("event {}: {err}", e.index)))?;
        let proof: Vec<Hash> = e
            .proof
            .iter()
            .map(|h| parse_hash(h))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::Bundle(format!("event {}: malformed proof", e.index)))?;
        if !merkle::verify_inclusion(
            &merkle::leaf_hash(e.leaf.as_bytes()),
            e.index,
            cp.size,
            &proof,
            &cp.root,
        ) {
            return Err(Error::Bundle(format!(
                "event {} is not in the signed log: it was altered or does not belong to it",
                e.index
            )));
        }
    }
    Ok(BundleReport { origin: cp.origin, checkpoint_size: cp.size, events: bundle.events.len() })
}

fn parse_hash(s: &str) -> Option<Hash> {
    crate::unhex(s)?.try_into().ok()
}
