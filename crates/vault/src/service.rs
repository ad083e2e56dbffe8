//! The one audited service: the only way the HTTP API, the command line's server commands
//! and the coming dashboard reach customer data. It is sealed or unsealed (the unsealed vault
//! is a [`Pool`]: readers and the one writer), every access goes through its [`Gate`]
//! (ledger event first, then a permit), and it owns unseal attempts, the per-key reveal limit
//! and retention scheduling.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use custody_ledger::{Action, LedgerOptions, Outcome};

use crate::pool::lock;
use crate::{
    Access, AuthFailure, Budget, Config, Done, Error, Expired, Gate, Op, Pool, Refused, layout,
};

/// The pause after a failed unseal attempt, during which its source cannot try again
/// (taken after the attempt has let the next one in).
const FAILED_UNSEAL_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);
/// Wrong attempts a source may make before it must wait between attempts (typos).
const FREE_FAILURES: u32 = 3;
/// The longest a source waits between attempts after many wrong ones.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_mins(5);
/// Unseal attempts that may wait for their turn at once (one per source).
const MAX_WAITING_UNSEALS: usize = 32;

/// Unseal attempts: which sources have one running or waiting, and each source's wrong
/// attempts. Review item 14: attempts queue (one per source) instead of turning each
/// other away, and the wait after wrong attempts grows per source, so a stream of guesses
/// from one address slows that address down and never answers the owner "busy".
#[derive(Default)]
struct UnsealQueue {
    in_line: std::collections::HashSet<Option<IpAddr>>,
    failures: HashMap<Option<IpAddr>, (u32, std::time::Instant)>,
}

/// How long a source waits after its `n`th wrong attempt in a row.
fn backoff(n: u32) -> std::time::Duration {
    if n <= FREE_FAILURES {
        return std::time::Duration::ZERO;
    }
    let doublings = (n - FREE_FAILURES - 1).min(16);
    std::time::Duration::from_secs(1 << doublings).min(MAX_BACKOFF)
}

/// A source's place in line; given up when dropped, also by a panic.
struct InLine<'a> {
    queue: &'a Mutex<UnsealQueue>,
    source: Option<IpAddr>,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        lock(self.queue).in_line.remove(&self.source);
    }
}

/// How the service unseals.
pub enum Secret<'a> {
    /// The passphrase.
    Passphrase(&'a str),
    /// Two (or more) recovery shares.
    Shares(&'a [&'a str]),
}

/// What each key has used of each budget in the current minute.
#[derive(Default)]
struct Limiter {
    windows: HashMap<(Budget, String), (u64, u32)>,
}

/// The audited service over one data directory.
pub struct Service {
    data_dir: PathBuf,
    config: Config,
    gate: Gate,
    unsealed: RwLock<Option<Arc<Pool>>>,
    unseal_turn: Mutex<()>,
    unseal_queue: Mutex<UnsealQueue>,
    limiter: Mutex<Limiter>,
}

impl Service {
    /// Opens a data directory, sealed: the configuration and the ledger, no keys.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        let config = layout::load_config(data_dir)?;
        if !layout::sealed_root_path(data_dir).exists() {
            return Err(Error::Config(format!(
                "'{}' has no root key: run `custody init` first",
                data_dir.display()
            )));
        }
        let ledger = layout::open_ledger(data_dir, LedgerOptions::default())
            .map_err(|e| Error::Audit(e.to_string()))?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            config,
            gate: Gate::new(Arc::new(ledger)),
            unsealed: RwLock::new(None),
            unseal_turn: Mutex::new(()),
            unseal_queue: Mutex::new(UnsealQueue::default()),
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
    pub fn unsealed(&self) -> Option<Arc<Pool>> {
        self.unsealed.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Unseals with a passphrase or shares. Attempts wait their turn and run one at a time,
    /// at most one per source (`source`, the client address) in line; a source that has
    /// made more than a few wrong attempts in a row waits longer before each next one
    /// ([`Error::Busy`], with the wait, meanwhile). Each attempt is recorded in the ledger:
    /// `sys.unseal` when it opens, `auth.failed` (with the source's pseudonym) when the
    /// passphrase or shares are wrong.
    pub fn unseal(&self, secret: &Secret<'_>, source: Option<IpAddr>) -> Result<(), Error> {
        let _in_line = self.get_in_line(source)?;
        // A panic in an earlier attempt leaves the turn poisoned, not locked for ever. The
        // turn is held through opening the vault, so two right attempts open it once.
        let turn = self.unseal_turn.lock().unwrap_or_else(PoisonError::into_inner);
        if self.unsealed().is_some() {
            return Ok(());
        }
        let root = match secret {
            Secret::Passphrase(p) => layout::unseal_with_passphrase(&self.data_dir, p),
            Secret::Shares(s) => layout::unseal_with_shares(&self.data_dir, s),
        };
        match &root {
            Ok(_) => {
                lock(&self.unseal_queue).failures.remove(&source);
                let access = Access { actor: "sys", role: "-", purpose: None, request_id: None };
                self.gate.note(&access, Action::SysUnseal, "vault", Outcome::Ok)?;
            }
            Err(Error::Locked(_)) => {
                let reason = match secret {
                    Secret::Passphrase(_) => Refused::WrongPassphrase,
                    Secret::Shares(_) => Refused::WrongShares,
                };
                {
                    let mut queue = lock(&self.unseal_queue);
                    if queue.failures.len() > 10_000 {
                        let now = std::time::Instant::now();
                        queue.failures.retain(|_, (_, until)| *until > now);
                    }
                    let entry =
                        queue.failures.entry(source).or_insert((0, std::time::Instant::now()));
                    entry.0 = entry.0.saturating_add(1);
                    entry.1 = std::time::Instant::now() + backoff(entry.0);
                }
                // Guessing stays slow: the source keeps its place in line (so cannot try
                // again) through a pause, taken after the next source's turn has begun and
                // before recording, so a ledger that cannot write does not make it fast.
                drop(turn);
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
                drop(turn);
                std::thread::sleep(FAILED_UNSEAL_PAUSE);
                let access = Access { actor: "sys", role: "-", purpose: None, request_id: None };
                self.gate.note(&access, Action::SysUnseal, "vault", Outcome::Error)?;
            }
        }
        let location = layout::vault_location(&self.data_dir, &self.config);
        let unsealed = Pool::open(&location, &self.config, &root?)?;
        // The ledger's signing key opens with the vault: checkpoints are signed from now
        // on. A failure does not keep the shop's server sealed; checkpoints wait.
        let ledger_key = unsealed.read(|v| v.ledger_key().clone());
        if let Err(e) = layout::ledger_signing(&self.data_dir, self.gate.ledger(), &ledger_key) {
            eprintln!("custody: the ledger's checkpoints cannot be signed: {e}");
        }
        *self.unsealed.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(unsealed));
        Ok(())
    }

    /// A place in line for an unseal attempt from `source`, or why there is none.
    fn get_in_line(&self, source: Option<IpAddr>) -> Result<InLine<'_>, Error> {
        let mut queue = lock(&self.unseal_queue);
        if let Some((_, until)) = queue.failures.get(&source) {
            let wait = until.saturating_duration_since(std::time::Instant::now());
            if !wait.is_zero() {
                return Err(Error::Busy(format!(
                    "too many wrong unseal attempts from this address: try again in {} s",
                    wait.as_secs().max(1)
                )));
            }
        }
        if queue.in_line.contains(&source) {
            return Err(Error::Busy(
                "an unseal attempt from this address is already running; wait for its answer"
                    .into(),
            ));
        }
        if queue.in_line.len() >= MAX_WAITING_UNSEALS {
            return Err(Error::Busy(
                "too many unseal attempts at once; try again in a moment".into(),
            ));
        }
        queue.in_line.insert(source);
        Ok(InLine { queue: &self.unseal_queue, source })
    }

    /// Replaces the root key of the running vault (review item 2), for an admin role:
    /// recorded as `keys.rotate_root` first; the new root sealed under `new_passphrase`
    /// beside the old seal, the vault re-keyed through the writer, then the seal renamed
    /// over. Returns what the vault did and the new recovery kit (shown once).
    pub fn rotate_root(
        &self,
        access: &Access<'_>,
        new_passphrase: &str,
    ) -> Result<(crate::RootRotated, String), Error> {
        let vault = self
            .unsealed()
            .ok_or_else(|| Error::Locked("the vault is sealed: unseal it first".into()))?;
        let permit = self.gate.rotate_root(&self.config, access)?;
        let (done, new_root) = layout::with_new_root(
            &self.data_dir,
            new_passphrase,
            crate::Argon2Params::default(),
            |new_root| vault.rotate_root(permit, &new_root),
        )?;
        Ok((done, layout::kit_of(&new_root)))
    }

    /// Applies retention now, through the writer (recorded as `retention.run`, then
    /// `retention.done` with what was removed). `None` while sealed.
    pub fn run_retention(&self) -> Result<Option<Expired>, Error> {
        let Some(vault) = self.unsealed() else { return Ok(None) };
        let access = Access { actor: "sys:retention", role: "-", purpose: None, request_id: None };
        let permit = self.gate.retention(&access)?;
        let now = crate::store::unix_now();
        let Done::Expired(expired) = vault.write(Op::Expire { permit, now })? else {
            unreachable!("an expiry answers Expired")
        };
        self.gate.retention_done(&access, expired)?;
        Ok(Some(expired))
    }

    /// Counts `n` against `key`'s `budget` for this minute; false (and nothing counted)
    /// past the configured limit.
    pub fn allow(&self, budget: Budget, key: &str, n: u32) -> bool {
        let minute = crate::store::unix_now().cast_unsigned() / 60;
        let limit = budget.per_minute(&self.config.limits);
        let mut limiter = lock(&self.limiter);
        if limiter.windows.len() > 10_000 {
            limiter.windows.retain(|_, (m, _)| *m == minute);
        }
        let window = limiter.windows.entry((budget, key.to_string())).or_insert((minute, 0));
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

/// How often retention runs while unsealed.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_hours(1);
/// How often the retention thread looks (the first run comes this long after unsealing).
const RETENTION_POLL: std::time::Duration = std::time::Duration::from_secs(30);

impl Service {
    /// Starts the retention schedule: once an hour while unsealed (and soon after
    /// unsealing), on a thread of its own; what it removed, or why it failed, goes to
    /// standard error (counts only).
    pub fn schedule_retention(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let service = Arc::clone(self);
        std::thread::Builder::new().name("custody-retention".into()).spawn(move || {
            let mut last: Option<std::time::Instant> = None;
            loop {
                std::thread::sleep(RETENTION_POLL);
                if last.is_some_and(|t| t.elapsed() < RETENTION_EVERY) {
                    continue;
                }
                match service.run_retention() {
                    Ok(Some(done)) => {
                        last = Some(std::time::Instant::now());
                        if done.records + done.fields > 0 {
                            eprintln!(
                                "retention: {} record(s) erased, {} value(s) deleted",
                                done.records, done.fields
                            );
                        }
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("retention failed (will retry): {e}"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_crypto::Argon2Params;

    const PASS: &str = "correct horse battery staple";

    fn service(dir: &Path) -> Arc<Service> {
        let fast = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
        layout::init(dir, PASS, fast, None).unwrap();
        Arc::new(Service::open(dir).unwrap())
    }

    fn busy(result: Result<(), Error>) -> String {
        match result {
            Err(Error::Busy(why)) => why,
            other => panic!("expected busy, got {other:?}"),
        }
    }

    /// Review item 14: a stream of wrong guesses from one address never makes the owner's
    /// attempt from another answer "busy"; the guesser waits longer and longer; a second
    /// attempt from the same address while one runs is turned away.
    #[test]
    fn review_14_guesses_from_one_source_do_not_hold_back_another() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path());
        let attacker: Option<IpAddr> = Some("203.0.113.9".parse().unwrap());
        let owner: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Four threads guess from the attacker's address, as fast as they are let.
        let guessers: Vec<_> = (0..4)
            .map(|_| {
                let (service, stop) = (service.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        answers.push(
                            service.unseal(&Secret::Passphrase("guess guess guess"), attacker),
                        );
                    }
                    answers
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_secs(3));
        // The owner is never told "busy".
        let started = std::time::Instant::now();
        service.unseal(&Secret::Passphrase(PASS), owner).expect("the owner's attempt");
        assert!(service.unsealed().is_some());
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let answers: Vec<Result<(), Error>> =
            guessers.into_iter().flat_map(|g| g.join().unwrap()).collect();
        let reasons: Vec<String> = answers
            .into_iter()
            .filter_map(|a| match a {
                Err(Error::Busy(why)) => Some(why),
                _ => None,
            })
            .collect();
        assert!(reasons.iter().any(|r| r.contains("already running")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("too many wrong")), "{reasons:?}");
        // The attacker's wrong attempts past the free ones were few: the backoff held it.
        let failures = lock(&service.unseal_queue).failures.get(&attacker).map(|f| f.0);
        assert!(
            failures.is_some_and(|n| (FREE_FAILURES..=FREE_FAILURES + 3).contains(&n)),
            "{failures:?}"
        );
    }

    #[test]
    fn review_14_the_backoff_grows_per_source_and_a_panic_does_not_lock_unseal_for_ever() {
        assert_eq!(backoff(1), std::time::Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES), std::time::Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES + 1), std::time::Duration::from_secs(1));
        assert_eq!(backoff(FREE_FAILURES + 3), std::time::Duration::from_secs(4));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);

        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path());
        let one: Option<IpAddr> = Some("203.0.113.9".parse().unwrap());
        for _ in 0..=FREE_FAILURES {
            assert!(matches!(
                service.unseal(&Secret::Passphrase("wrong wrong wrong"), one),
                Err(Error::Locked(_))
            ));
        }
        assert!(busy(service.unseal(&Secret::Passphrase(PASS), one)).contains("try again in"));
        // A panic while holding the turn poisons it; the next attempt still runs.
        let held = service.clone();
        let _ = std::thread::spawn(move || {
            let _turn = held.unseal_turn.lock().unwrap();
            panic!("an attempt that panics");
        })
        .join();
        assert!(service.unseal_turn.is_poisoned());
        service.unseal(&Secret::Passphrase(PASS), None).expect("unseals after a panic");
        assert!(service.unsealed().is_some());
    }
}
