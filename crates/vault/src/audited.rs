//! Every access through the vault is written to the ledger first. If the event cannot be
//! recorded durably, the access does not happen (fail closed): no evidence, no access.
//!
//! [`Gate`] decides and records: it checks a role against the configuration, appends the
//! event (allowed or denied) and answers. [`AuditedVault`] is a vault behind a gate. The
//! server uses the gate on its own, so that the events of concurrent requests share the
//! ledger's group commits while a single writer batches the vault's.

use std::collections::BTreeMap;
use std::sync::Arc;

use custody_ledger::{Action, Event, Ledger, Outcome, Target, details};

use crate::{Config, EXPORT_PURPOSE, Error, Permit, ReadField, ReadMode, Vault};

/// Who asks, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access<'a> {
    /// The principal (an API key id, `cli:owner`).
    pub actor: &'a str,
    /// The principal's role.
    pub role: &'a str,
    /// The stated purpose.
    pub purpose: Option<&'a str>,
    /// The request id, for correlation.
    pub request_id: Option<&'a str>,
}

/// What an access touches, as the ledger records it.
struct Touch<'a> {
    action: Action,
    collection: &'a str,
    record: Option<&'a str>,
    fields: Vec<String>,
}

/// A refused credential, as `auth.failed` records it.
#[derive(Clone, Copy)]
pub struct AuthFailure<'a> {
    /// Where the credential was presented: `api`, `unseal`, `cli`.
    pub via: &'static str,
    /// Why it was refused.
    pub reason: crate::Refused,
    /// The client address, if known (recorded as a pseudonym).
    pub source: Option<std::net::IpAddr>,
    /// The API key presented, if any: recorded only as a keyed fingerprint. Never a
    /// passphrase: a fast keyed hash of a near-miss passphrase would let whoever copies the
    /// data directory test guesses without Argon2's cost.
    pub presented_key: Option<&'a str>,
    /// The request id, for correlation.
    pub request_id: Option<&'a str>,
}

impl std::fmt::Debug for AuthFailure<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailure")
            .field("via", &self.via)
            .field("reason", &self.reason)
            .field("source", &self.source)
            .field("presented_key", &self.presented_key.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Refused credentials recorded per source and minute; past it they are counted, and the
/// count is recorded once the minute is over. Bounds what an unauthenticated flood can
/// write into a log that is never pruned.
const AUTH_FAILED_PER_SOURCE: u32 = 20;
/// Refused credentials recorded per minute from all sources together.
const AUTH_FAILED_PER_MINUTE: u32 = 300;

/// This minute's count of recorded refusals, and what was left unrecorded.
#[derive(Debug, Default)]
struct AuthBudget {
    minute: u64,
    total: u32,
    per_source: std::collections::HashMap<Option<std::net::IpAddr>, u32>,
    suppressed: u64,
    suppressed_sources: std::collections::HashSet<Option<std::net::IpAddr>>,
}

/// The access decisions, each recorded in the ledger before it takes effect.
#[derive(Clone, Debug)]
pub struct Gate {
    ledger: Arc<Ledger>,
    auth_budget: Arc<std::sync::Mutex<AuthBudget>>,
}

impl Gate {
    /// A gate writing to `ledger`.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger, auth_budget: Arc::default() }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn record(&self, access: &Access<'_>, touch: Touch<'_>, outcome: Outcome) -> Result<(), Error> {
        let mut event = Event::new(access.actor, touch.action, outcome);
        event.target = Some(Target {
            collection: touch.collection.to_string(),
            record: touch.record.map(|r| self.ledger.pseudonym(r)),
        });
        event.fields = touch.fields;
        event.purpose = access.purpose.map(str::to_string);
        event.request_id = access.request_id.map(str::to_string);
        self.ledger.append(&event).map(|_| ()).map_err(|e| Error::Audit(e.to_string()))
    }

    /// Records the attempt, allowed or denied; an allowed one gets its [`Permit`] once the
    /// event is durable, a denial is answered with `Forbidden(why)`.
    fn decide(
        &self,
        access: &Access<'_>,
        touch: Touch<'_>,
        allowed: bool,
        why: impl FnOnce() -> String,
    ) -> Result<Permit, Error> {
        if allowed {
            let permit = Permit::new(touch.action, touch.collection, access);
            let permit = match touch.record {
                Some(record) => permit.on_record(record),
                None => permit,
            };
            self.record(access, touch, Outcome::Ok)?;
            Ok(permit)
        } else {
            self.record(access, touch, Outcome::Denied)?;
            Err(Error::Forbidden(why()))
        }
    }

    /// Records a refused credential: one `auth.failed` event with the reason, the source's
    /// pseudonym, and a keyed fingerprint of the API key presented (never the key). A
    /// repeated fingerprint from many sources, or many fingerprints from one, is what a
    /// guessing attack looks like.
    ///
    /// At most [`AUTH_FAILED_PER_SOURCE`] a minute per source address and
    /// [`AUTH_FAILED_PER_MINUTE`] in all are recorded one by one; the rest are counted, and
    /// the first refusal of a later minute records the count (`suppressed`, `sources`) in
    /// an `auth.failed` event of reason `burst`. The caller is refused either way.
    pub fn auth_failed(&self, failure: &AuthFailure<'_>) -> Result<(), Error> {
        self.auth_failed_at(failure, crate::store::unix_now().cast_unsigned() / 60)
    }

    fn auth_failed_at(&self, failure: &AuthFailure<'_>, minute: u64) -> Result<(), Error> {
        let burst = {
            let mut budget =
                self.auth_budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut burst = None;
            if budget.minute != minute {
                if budget.suppressed > 0 {
                    burst = Some((budget.suppressed, budget.suppressed_sources.len()));
                }
                *budget = AuthBudget { minute, ..AuthBudget::default() };
            }
            let seen = budget.per_source.get(&failure.source).copied().unwrap_or(0);
            if seen >= AUTH_FAILED_PER_SOURCE || budget.total >= AUTH_FAILED_PER_MINUTE {
                budget.suppressed += 1;
                budget.suppressed_sources.insert(failure.source);
                drop(budget);
                if let Some((events, sources)) = burst {
                    self.record_burst(events, sources)?;
                }
                return Ok(());
            }
            *budget.per_source.entry(failure.source).or_default() += 1;
            budget.total += 1;
            burst
        };
        if let Some((events, sources)) = burst {
            self.record_burst(events, sources)?;
        }
        let mut event = Event::new("anonymous", Action::AuthFailed, Outcome::Denied);
        event.target = Some(Target { collection: "auth".into(), record: None });
        event.request_id = failure.request_id.map(str::to_string);
        event.source = failure.source.map(|ip| self.ledger.pseudonym(&ip.to_string()));
        let fingerprint = failure.presented_key.map(|key| {
            self.ledger.pseudonym(&format!("presented-credential\0{key}")).as_str()[..32]
                .to_string()
        });
        set_details(
            &mut event,
            &details::AuthFailed {
                via: Some(failure.via.to_string()),
                reason: failure.reason.as_str().to_string(),
                fingerprint,
                suppressed: None,
                sources: None,
            },
        )?;
        self.ledger.append(&event).map(|_| ()).map_err(|e| Error::Audit(e.to_string()))
    }

    /// The refusals of an earlier minute that were counted, not recorded one by one.
    fn record_burst(&self, events: u64, sources: usize) -> Result<(), Error> {
        let mut event = Event::new("anonymous", Action::AuthFailed, Outcome::Denied);
        event.target = Some(Target { collection: "auth".into(), record: None });
        set_details(
            &mut event,
            &details::AuthFailed {
                via: None,
                reason: "burst".into(),
                fingerprint: None,
                suppressed: Some(events),
                sources: Some(sources as u64),
            },
        )?;
        self.ledger.append(&event).map(|_| ()).map_err(|e| Error::Audit(e.to_string()))
    }

    /// Records an event whose outcome is already known (a reveal, a search result, a
    /// rotation the caller has allowed).
    pub fn note(
        &self,
        access: &Access<'_>,
        action: Action,
        collection: &str,
        outcome: Outcome,
    ) -> Result<(), Error> {
        self.record(access, Touch { action, collection, record: None, fields: Vec::new() }, outcome)
    }

    /// A retention run's permit (`retention.run`), for the scheduler: retention is policy,
    /// not a caller's request, so no role is checked.
    pub fn retention(&self, access: &Access<'_>) -> Result<Permit, Error> {
        self.allow(access, Action::RetentionRun, "vault")
    }

    /// Records `action` as allowed and gives its permit, for what this crate has already
    /// decided may happen.
    fn allow(
        &self,
        access: &Access<'_>,
        action: Action,
        collection: &str,
    ) -> Result<Permit, Error> {
        self.note(access, action, collection, Outcome::Ok)?;
        Ok(Permit::new(action, collection, access))
    }

    /// Records what a retention run removed (`retention.done`, with the counts), after
    /// `retention.run` recorded that it started.
    pub fn retention_done(
        &self,
        access: &Access<'_>,
        expired: crate::Expired,
    ) -> Result<(), Error> {
        let mut event = Event::new(access.actor, Action::RetentionDone, Outcome::Ok);
        event.target = Some(Target { collection: "vault".into(), record: None });
        set_details(
            &mut event,
            &details::RetentionDone {
                records_erased: expired.records as u64,
                values_deleted: expired.fields as u64,
            },
        )?;
        self.ledger.append(&event).map(|_| ()).map_err(|e| Error::Audit(e.to_string()))
    }

    /// May `access` reveal the value behind a token that leads to `target` (collection,
    /// record, field), as [`Vault::token_target`] found it? Recorded as `token.reveal` with
    /// the record's pseudonym and the field, allowed or denied. A role that may reveal
    /// nothing for this purpose is refused before it learns whether the token exists.
    pub fn reveal(
        &self,
        config: &Config,
        access: &Access<'_>,
        target: Option<&(String, String, String)>,
    ) -> Result<Permit, Error> {
        let Some((collection, record, field)) = target else {
            let may_reveal_some = config.collections.iter().any(|(name, c)| {
                c.fields.iter().any(|f| {
                    f.token != crate::TokenKind::None
                        && config.decide(access.role, name, &f.name, access.purpose)
                            == ReadMode::Plain
                })
            });
            let touch = Touch {
                action: Action::TokenReveal,
                collection: "tokens",
                record: None,
                fields: Vec::new(),
            };
            if !may_reveal_some {
                self.record(access, touch, Outcome::Denied)?;
                return Err(Error::Forbidden(
                    "revealing a token needs a role and purpose allowed to read its field plain"
                        .into(),
                ));
            }
            self.record(access, touch, Outcome::Error)?;
            return Err(Error::NotFound("token".into()));
        };
        let allowed =
            config.decide(access.role, collection, field, access.purpose) == ReadMode::Plain;
        let touch = Touch {
            action: Action::TokenReveal,
            collection,
            record: Some(record),
            fields: vec![field.clone()],
        };
        self.decide(access, touch, allowed, || {
            format!("revealing '{field}' needs a role and purpose allowed to read it plain")
        })
        .map(|permit| permit.on_field(field))
    }

    /// May `access` rotate the key-encryption key? Only an `admin` role. (`keys.rotate`)
    pub fn rotate(&self, config: &Config, access: &Access<'_>) -> Result<Permit, Error> {
        self.rotation(config, access, Action::KeysRotate)
    }

    /// May `access` replace the root key? Only an `admin` role. (`keys.rotate_root`)
    pub fn rotate_root(&self, config: &Config, access: &Access<'_>) -> Result<Permit, Error> {
        self.rotation(config, access, Action::KeysRotateRoot)
    }

    fn rotation(
        &self,
        config: &Config,
        access: &Access<'_>,
        action: Action,
    ) -> Result<Permit, Error> {
        let allowed = config.roles.get(access.role).is_some_and(|r| r.admin);
        let touch = Touch { action, collection: "keys", record: None, fields: Vec::new() };
        self.decide(access, touch, allowed, || {
            format!("role '{}' may not rotate keys", access.role)
        })
    }

    /// May `access` create or revoke an API key (`apikey.create`, `apikey.revoke`)? Only
    /// an `admin` role. Recorded with the key's name or id and role, never its secret.
    pub fn manage_keys(
        &self,
        config: &Config,
        access: &Access<'_>,
        action: Action,
        key: &str,
        role: Option<&str>,
    ) -> Result<Permit, Error> {
        let allowed = config.roles.get(access.role).is_some_and(|r| r.admin);
        let outcome = if allowed { Outcome::Ok } else { Outcome::Denied };
        let mut event = Event::new(access.actor, action, outcome);
        event.target = Some(Target { collection: crate::apikeys::API_KEYS.into(), record: None });
        event.purpose = access.purpose.map(str::to_string);
        event.request_id = access.request_id.map(str::to_string);
        // A pasted credential is recorded by its public id only.
        let key = crate::key_ref(key);
        set_details(
            &mut event,
            &details::ApiKeyChange {
                key: key.chars().take(100).collect(),
                role: role.map(str::to_string),
            },
        )?;
        self.ledger.append(&event).map_err(|e| Error::Audit(e.to_string()))?;
        if allowed {
            Ok(Permit::new(action, crate::apikeys::API_KEYS, access))
        } else {
            Err(Error::Forbidden(format!("role '{}' may not manage API keys", access.role)))
        }
    }

    /// May `access` make a standalone token for a value of `field`? Only a role that may
    /// write and reads that field plain for the purpose: otherwise tokenising would let it
    /// test guesses against tokens it holds. (`token.create`)
    pub fn tokenize(
        &self,
        config: &Config,
        access: &Access<'_>,
        field: &str,
    ) -> Result<Permit, Error> {
        let allowed =
            config.may_tokenize(access.role, crate::TOKENS_COLLECTION, field, access.purpose);
        let touch = Touch {
            action: Action::TokenCreate,
            collection: crate::TOKENS_COLLECTION,
            record: None,
            fields: vec![field.to_string()],
        };
        self.decide(access, touch, allowed, || {
            format!("tokenising '{field}' needs a role that writes and reads it plain for the stated purpose")
        })
    }

    /// May `access` create a record with these fields? (`record.create`)
    pub fn create(
        &self,
        config: &Config,
        access: &Access<'_>,
        collection: &str,
        fields: Vec<String>,
    ) -> Result<Permit, Error> {
        let allowed = config.roles.get(access.role).is_some_and(|r| r.write);
        let touch = Touch { action: Action::RecordCreate, collection, record: None, fields };
        self.decide(access, touch, allowed, || {
            format!("role '{}' may not create records", access.role)
        })
    }

    /// Records a read (`record.read`, with the fields the role sees at all).
    pub fn read(
        &self,
        config: &Config,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<Permit, Error> {
        let fields: Vec<String> = config
            .collections
            .get(collection)
            .map(|c| {
                c.fields
                    .iter()
                    .map(|f| f.name.clone())
                    .filter(|f| {
                        config.decide(access.role, collection, f, access.purpose) != ReadMode::None
                    })
                    .collect()
            })
            .unwrap_or_default();
        let readable = !fields.is_empty();
        let touch = Touch { action: Action::RecordRead, collection, record: Some(record), fields };
        self.decide(access, touch, readable, || {
            format!("role '{}' may read no field of '{collection}'", access.role)
        })
    }

    /// May `access` change these fields of a record? (`record.update`)
    pub fn update(
        &self,
        config: &Config,
        access: &Access<'_>,
        collection: &str,
        record: &str,
        fields: Vec<String>,
    ) -> Result<Permit, Error> {
        let allowed = config.roles.get(access.role).is_some_and(|r| r.write);
        let touch =
            Touch { action: Action::RecordUpdate, collection, record: Some(record), fields };
        self.decide(access, touch, allowed, || {
            format!("role '{}' may not change records", access.role)
        })
    }

    /// May `access` erase a record? (`record.erase`)
    pub fn erase(
        &self,
        config: &Config,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<Permit, Error> {
        let allowed = config.roles.get(access.role).is_some_and(|r| r.erase);
        let touch = Touch {
            action: Action::RecordErase,
            collection,
            record: Some(record),
            fields: Vec::new(),
        };
        self.decide(access, touch, allowed, || {
            format!("role '{}' may not erase records", access.role)
        })
    }

    /// May `access` search `field`? Only a role with `search` that may see the field for
    /// the purpose: a match tells that a customer exists. (`record.search`; the value is
    /// never recorded.)
    pub fn search(
        &self,
        config: &Config,
        access: &Access<'_>,
        collection: &str,
        field: &str,
    ) -> Result<Permit, Error> {
        let allowed = config.roles.get(access.role).is_some_and(|r| r.search)
            && config.decide(access.role, collection, field, access.purpose) != ReadMode::None;
        let touch = Touch {
            action: Action::RecordSearch,
            collection,
            record: None,
            fields: vec![field.into()],
        };
        self.decide(access, touch, allowed, || {
            format!("role '{}' may not search '{field}' for this purpose", access.role)
        })
        .map(|permit| permit.on_field(field))
    }

    /// May `access` export a record and the records that refer to it, all in plain?
    /// Only for the purpose `data_subject_request`, and only a role that reads every field
    /// of them plain for it. (`record.export`)
    pub fn export(
        &self,
        config: &Config,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<Permit, Error> {
        let collections = std::iter::once(collection.to_string())
            .chain(config.referrers(collection).into_iter().map(|(c, _)| c));
        let mut fields = Vec::new();
        let mut all_plain = access.purpose == Some(EXPORT_PURPOSE);
        for c in collections {
            for f in config.collections.get(&c).map(|c| c.fields.as_slice()).unwrap_or_default() {
                all_plain &=
                    config.decide(access.role, &c, &f.name, access.purpose) == ReadMode::Plain;
                fields.push(format!("{c}.{}", f.name));
            }
        }
        let touch =
            Touch { action: Action::RecordExport, collection, record: Some(record), fields };
        self.decide(access, touch, all_plain, || {
            format!(
                "an export needs the purpose '{EXPORT_PURPOSE}' and a role that reads every field plain for it (role '{}')",
                access.role
            )
        })
    }
}

fn set_details<T: details::Details>(event: &mut Event, d: &T) -> Result<(), Error> {
    event.set_details(d).map_err(|e| Error::Audit(e.to_string()))
}

/// A record with the records that refer to it, as exported.
pub type Export = (BTreeMap<String, ReadField>, Vec<(String, String, BTreeMap<String, ReadField>)>);

/// A vault whose every access is recorded in a ledger before it happens.
#[derive(Debug)]
pub struct AuditedVault {
    vault: Vault,
    gate: Gate,
}

impl AuditedVault {
    /// Joins a vault and its ledger.
    pub fn new(vault: Vault, ledger: Ledger) -> Self {
        Self { vault, gate: Gate::new(Arc::new(ledger)) }
    }

    /// A vault behind an existing gate (several vault connections, one ledger).
    pub fn with_gate(vault: Vault, gate: Gate) -> Self {
        Self { vault, gate }
    }

    /// The ledger (for checkpoints and verification).
    pub fn ledger(&self) -> &Ledger {
        self.gate.ledger()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.vault.config()
    }

    /// The masked form of a value of `field` (no data is read).
    pub fn mask(&self, collection: &str, field: &str, value: &str) -> Result<String, Error> {
        self.vault.mask(collection, field, value)
    }

    /// The version of the key-encryption key in use.
    pub fn kek_version(&self) -> u32 {
        self.vault.kek_version()
    }

    /// Creates a record (recorded as `record.create`).
    pub fn insert(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let config = self.vault.config();
        let values = crate::address::drop_cleared(
            config,
            collection,
            crate::address::expand_values(config, collection, values)?,
        );
        let fields = values.keys().cloned().collect();
        let mut permit = self.gate.create(self.vault.config(), access, collection, fields)?;
        self.vault.insert(&mut permit, collection, &values)
    }

    /// Creates many records in one commit (an import): one `record.create` event per
    /// record first, then every insert in its own savepoint inside one transaction. Each
    /// record is all or nothing; the outer error is for the commit (then none was made).
    pub fn insert_many(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        rows: &[BTreeMap<String, String>],
    ) -> Result<Vec<Result<String, Error>>, Error> {
        let mut permits = Vec::with_capacity(rows.len());
        for values in rows {
            let config = self.vault.config();
            let values = crate::address::drop_cleared(
                config,
                collection,
                crate::address::expand_values(config, collection, values)?,
            );
            permits.push(self.gate.create(
                self.vault.config(),
                access,
                collection,
                values.keys().cloned().collect(),
            )?);
        }
        self.vault.batch(|v| {
            rows.iter()
                .zip(&mut permits)
                .map(|(values, permit)| v.insert(permit, collection, values))
                .collect()
        })
    }

    /// Reads a record (recorded as `record.read`, with the fields read).
    pub fn read(
        &self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<BTreeMap<String, ReadField>, Error> {
        let permit = self.gate.read(self.vault.config(), access, collection, record)?;
        self.vault.read(&permit, collection, record)
    }

    /// Replaces some fields of a record (recorded as `record.update` with the field names).
    pub fn update(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let values = crate::address::expand_values(self.vault.config(), collection, values)?;
        let fields = values.keys().cloned().collect();
        let permit = self.gate.update(self.vault.config(), access, collection, record, fields)?;
        self.vault.update(&permit, collection, record, &values)
    }

    /// Makes an API key (recorded as `apikey.create` with its name and role; an admin role
    /// only). Returns the key and its credential, to show once.
    pub fn create_api_key(
        &mut self,
        access: &Access<'_>,
        name: &str,
        role: &str,
    ) -> Result<(crate::ApiKeyInfo, String), Error> {
        let permit = self.gate.manage_keys(
            self.vault.config(),
            access,
            Action::ApiKeyCreate,
            name,
            Some(role),
        )?;
        self.vault.create_api_key(&permit, name, role)
    }

    /// Lists the API keys (recorded as `apikey.list`; an admin role only).
    pub fn list_api_keys(&self, access: &Access<'_>) -> Result<Vec<crate::ApiKeyInfo>, Error> {
        let permit =
            self.gate.manage_keys(self.vault.config(), access, Action::ApiKeyList, "*", None)?;
        self.vault.list_api_keys(&permit)
    }

    /// Revokes an API key by name or id (recorded as `apikey.revoke`; an admin role only).
    pub fn revoke_api_key(
        &mut self,
        access: &Access<'_>,
        name: &str,
    ) -> Result<crate::ApiKeyInfo, Error> {
        let permit =
            self.gate.manage_keys(self.vault.config(), access, Action::ApiKeyRevoke, name, None)?;
        self.vault.revoke_api_key(&permit, name)
    }

    /// Moves free-text addresses into the parts of an address field (recorded as
    /// `vault.migrate` with the counts before it happens; the owner only).
    pub fn migrate_to_address(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        old: &str,
        address: &str,
    ) -> Result<crate::AddressMigration, Error> {
        if !self.vault.config().roles.get(access.role).is_some_and(|r| r.admin) {
            return Err(Error::Forbidden(format!(
                "role '{}' may not migrate the vault",
                access.role
            )));
        }
        let mut event = Event::new(access.actor, Action::VaultMigrate, Outcome::Ok);
        event.target = Some(Target { collection: collection.to_string(), record: None });
        event.fields = vec![old.to_string()];
        let records = self.vault.count_values(collection, old)?;
        set_details(&mut event, &details::VaultMigrate { to: "address".into(), records })?;
        self.gate.ledger.append(&event).map_err(|e| Error::Audit(e.to_string()))?;
        let permit = Permit::new(Action::VaultMigrate, collection, access);
        self.vault.migrate_to_address(&permit, collection, old, address)
    }

    /// Rotates the key-encryption key (recorded as `keys.rotate` before it happens). The
    /// caller decides who may; the command line allows only the owner.
    pub fn rotate_keys(&mut self, access: &Access<'_>) -> Result<usize, Error> {
        let permit = self.gate.rotate(self.vault.config(), access)?;
        self.vault.rotate_keys(&permit)
    }

    /// Replaces the root key with `new_root` (recorded as `keys.rotate_root` before it
    /// happens): see [`Vault::rotate_root`], and [`crate::layout::rotate_root`] for the
    /// sealing around it.
    pub fn rotate_root(
        &mut self,
        access: &Access<'_>,
        new_root: custody_crypto::Key,
    ) -> Result<crate::RootRotated, Error> {
        let permit = self.gate.rotate_root(self.vault.config(), access)?;
        self.vault.rotate_root(&permit, new_root)
    }

    /// The key the quarantine's opening key derives from.
    pub fn quarantine_key(&self) -> &custody_crypto::Key {
        self.vault.quarantine_key()
    }

    /// The key the ledger's signing key is sealed under.
    pub fn ledger_key(&self) -> &custody_crypto::Key {
        self.vault.ledger_key()
    }

    /// Applies retention as of `now` (recorded as `retention.run` before it happens).
    pub fn expire(&mut self, access: &Access<'_>, now: i64) -> Result<crate::Expired, Error> {
        let permit = self.gate.allow(access, Action::RetentionRun, "vault")?;
        let expired = self.vault.expire(&permit, now)?;
        self.gate.retention_done(access, expired)?;
        Ok(expired)
    }

    /// Finds records by a searchable field (recorded as `record.search` with the field and
    /// whether it was allowed, never the value).
    pub fn search(
        &self,
        access: &Access<'_>,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<String>, Error> {
        let permit = self.gate.search(self.vault.config(), access, collection, field)?;
        self.vault.search(&permit, collection, field, value)
    }

    /// Reveals a token (recorded as `token.reveal` with the record and field, denied
    /// attempts too); the value is decrypted only after the event is durable.
    pub fn reveal(&self, access: &Access<'_>, token: &str) -> Result<String, Error> {
        let target = self.vault.token_target(token)?;
        let permit = self.gate.reveal(self.vault.config(), access, target.as_ref())?;
        let (collection, record, field) = target.expect("the gate refuses a missing token");
        self.vault.reveal_field(&permit, &collection, &record, &field)
    }

    /// Erases a record and the records that refer to it (recorded as `record.erase`).
    /// Returns how many linked records were erased with it.
    pub fn erase(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<usize, Error> {
        let permit = self.gate.erase(self.vault.config(), access, collection, record)?;
        self.vault.erase(&permit, collection, record)
    }

    /// A data-subject export: the record and every record that refers to it, plain
    /// (recorded as `record.export`; see [`Gate::export`] for who may).
    pub fn export(
        &self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<Export, Error> {
        let permit = self.gate.export(self.vault.config(), access, collection, record)?;
        self.vault.export(&permit, collection, record)
    }
}

#[cfg(test)]
mod tests {
    use custody_ledger::LedgerOptions;

    use super::*;
    use crate::Refused;

    /// An unauthenticated flood writes a bounded number of events: per source, then in all,
    /// and what was left out is counted in one `burst` event the next minute.
    #[test]
    fn refused_credentials_are_recorded_within_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(Arc::new(Ledger::init(dir.path(), LedgerOptions::default()).unwrap()));
        let from = |last: u8| AuthFailure {
            via: "api",
            reason: Refused::Unknown,
            source: Some(std::net::IpAddr::from([203, 0, 113, last])),
            presented_key: None,
            request_id: None,
        };
        for _ in 0..25 {
            gate.auth_failed_at(&from(1), 100).unwrap();
        }
        assert_eq!(gate.ledger().size().unwrap(), 20, "per source");
        for last in 2..=40 {
            for _ in 0..10 {
                gate.auth_failed_at(&from(last), 100).unwrap();
            }
        }
        assert_eq!(gate.ledger().size().unwrap(), u64::from(AUTH_FAILED_PER_MINUTE), "in all");
        // The next minute: the count of what was left out, then the refusal itself.
        gate.auth_failed_at(&from(1), 101).unwrap();
        let events: Vec<Event> = gate.ledger().events(0).map(|e| e.unwrap().1).collect();
        let burst = &events[events.len() - 2];
        assert_eq!(burst.details["reason"], "burst");
        assert_eq!(burst.details["suppressed"], 25 + 39 * 10 - 300);
        // Source 1 past its 20, and sources 30 to 40 past the 300.
        assert_eq!(burst.details["sources"], 1 + 11, "{burst:?}");
        assert_eq!(events.last().unwrap().details["reason"], "unknown_key");
    }
}
