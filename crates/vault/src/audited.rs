//! Every access through the vault is written to the ledger first. If the event cannot be
//! recorded durably, the access does not happen (fail closed): no evidence, no access.

use std::collections::BTreeMap;

use custody_ledger::{Event, Ledger, Outcome, Target};

use crate::{Error, ReadField, ReadMode, Vault};

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

/// A vault whose every access is recorded in a ledger before it happens.
#[derive(Debug)]
pub struct AuditedVault {
    vault: Vault,
    ledger: Ledger,
}

impl AuditedVault {
    /// Joins a vault and its ledger.
    pub fn new(vault: Vault, ledger: Ledger) -> Self {
        Self { vault, ledger }
    }

    /// The ledger (for checkpoints and verification).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The vault, for what needs no audit (configuration, masking).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    fn record(
        &self,
        access: &Access<'_>,
        action: &str,
        collection: &str,
        record: Option<&str>,
        fields: Vec<String>,
        outcome: Outcome,
    ) -> Result<(), Error> {
        let mut event = Event::new(access.actor, action, outcome);
        event.target = Some(Target {
            collection: collection.to_string(),
            record: record.map(|r| self.ledger.pseudonym(r)),
        });
        event.fields = fields;
        event.purpose = access.purpose.map(str::to_string);
        event.request_id = access.request_id.map(str::to_string);
        self.ledger.append(&event).map(|_| ()).map_err(|e| Error::Audit(e.to_string()))
    }

    /// Creates a record (recorded as `record.create`).
    pub fn insert(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let fields: Vec<String> = values.keys().cloned().collect();
        if !self.vault.config().roles.get(access.role).is_some_and(|r| r.write) {
            self.record(access, "record.create", collection, None, fields, Outcome::Denied)?;
            return Err(Error::Forbidden(format!("role '{}' may not create records", access.role)));
        }
        self.record(access, "record.create", collection, None, fields, Outcome::Ok)?;
        self.vault.insert(collection, values)
    }

    /// Reads a record (recorded as `record.read`, with the fields read plain).
    pub fn read(
        &self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<BTreeMap<String, ReadField>, Error> {
        let fields: Vec<String> = self
            .vault
            .config()
            .collections
            .get(collection)
            .map(|c| {
                c.fields
                    .iter()
                    .map(|f| f.name.clone())
                    .filter(|f| {
                        self.vault.config().decide(access.role, f, access.purpose) != ReadMode::None
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.record(access, "record.read", collection, Some(record), fields, Outcome::Ok)?;
        self.vault.read(collection, record, access.role, access.purpose)
    }

    /// Replaces some fields of a record (recorded as `record.update` with the field names).
    pub fn update(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let fields: Vec<String> = values.keys().cloned().collect();
        if !self.vault.config().roles.get(access.role).is_some_and(|r| r.write) {
            self.record(
                access,
                "record.update",
                collection,
                Some(record),
                fields,
                Outcome::Denied,
            )?;
            return Err(Error::Forbidden(format!("role '{}' may not change records", access.role)));
        }
        self.record(access, "record.update", collection, Some(record), fields, Outcome::Ok)?;
        self.vault.update(collection, record, values)
    }

    /// Rotates the key-encryption key (recorded as `keys.rotate` before it happens). The
    /// caller decides who may; the command line allows only the owner.
    pub fn rotate_keys(&mut self, access: &Access<'_>) -> Result<usize, Error> {
        self.record(access, "keys.rotate", "keys", None, Vec::new(), Outcome::Ok)?;
        self.vault.rotate_keys()
    }

    /// Applies retention as of `now` (recorded as `retention.run` before it happens).
    pub fn expire(&mut self, access: &Access<'_>, now: i64) -> Result<crate::Expired, Error> {
        self.record(access, "retention.run", "vault", None, Vec::new(), Outcome::Ok)?;
        self.vault.expire(now)
    }

    /// Finds records by a searchable field (recorded as `record.search` with the field and
    /// outcome, never the value). Allowed only to a role with `search` that may see the field
    /// for the purpose, since a match tells that a customer exists.
    pub fn search(
        &self,
        access: &Access<'_>,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<String>, Error> {
        let fields = vec![field.to_string()];
        let config = self.vault.config();
        let may_search = config.roles.get(access.role).is_some_and(|r| r.search)
            && config.decide(access.role, field, access.purpose) != ReadMode::None;
        if !may_search {
            self.record(access, "record.search", collection, None, fields, Outcome::Denied)?;
            return Err(Error::Forbidden(format!(
                "role '{}' may not search '{field}' for this purpose",
                access.role
            )));
        }
        let found = self.vault.search(collection, field, value);
        let outcome = if found.is_ok() { Outcome::Ok } else { Outcome::Error };
        self.record(access, "record.search", collection, None, fields, outcome)?;
        found
    }

    /// Reveals a token (recorded as `token.reveal`, denied attempts too).
    pub fn reveal(&self, access: &Access<'_>, token: &str) -> Result<String, Error> {
        let result = self.vault.reveal(token, access.role, access.purpose);
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(Error::Forbidden(_)) => Outcome::Denied,
            Err(_) => Outcome::Error,
        };
        // The value is released only once the event is durable.
        self.record(access, "token.reveal", "tokens", None, Vec::new(), outcome)?;
        result
    }

    /// Erases a record (recorded as `record.erase`).
    pub fn erase(
        &mut self,
        access: &Access<'_>,
        collection: &str,
        record: &str,
    ) -> Result<(), Error> {
        if !self.vault.config().roles.get(access.role).is_some_and(|r| r.erase) {
            self.record(
                access,
                "record.erase",
                collection,
                Some(record),
                Vec::new(),
                Outcome::Denied,
            )?;
            return Err(Error::Forbidden(format!("role '{}' may not erase records", access.role)));
        }
        self.record(access, "record.erase", collection, Some(record), Vec::new(), Outcome::Ok)?;
        self.vault.erase(collection, record)
    }
}
