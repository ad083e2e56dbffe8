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

/// The pause after a failed unseal attempt (attempts are also serialised).
const FAILED_UNSEAL_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

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
    unseal_attempt: Mutex<()>,
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
    pub fn unsealed(&self) -> Option<Arc<Pool>> {
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
        let location = layout::vault_location(&self.data_dir, &self.config);
        let unsealed = Pool::open(&location, &self.config, &root?)?;
        *self.unsealed.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(unsealed));
        Ok(())
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
