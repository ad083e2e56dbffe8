//! Permits: the proof, by type, that an access was decided and recorded. Only the
//! [`crate::Gate`] makes them, and only after the ledger holds the event; every data method
//! of [`crate::Vault`] takes one and checks that it is for this action, collection, record
//! and field. So customer data cannot be read or changed without an event in the ledger,
//! whatever the caller forgets: fail closed by type, not by convention.

use custody_ledger::Action;

use crate::{Access, Error};

/// One allowed, recorded access. Not `Clone`: one decision, one use (a search permit
/// finds records; reading each of them takes a read permit of its own).
#[derive(Debug)]
#[must_use = "a permit is the only way to the data it was granted for"]
pub struct Permit {
    pub(crate) action: Action,
    pub(crate) collection: String,
    pub(crate) record: Option<String>,
    pub(crate) field: Option<String>,
    pub(crate) role: String,
    pub(crate) purpose: Option<String>,
}

impl Permit {
    /// A permit for `action` on `collection`, as `access`: made by the gate only.
    pub(crate) fn new(action: Action, collection: &str, access: &Access<'_>) -> Self {
        Self {
            action,
            collection: collection.to_string(),
            record: None,
            field: None,
            role: access.role.to_string(),
            purpose: access.purpose.map(str::to_string),
        }
    }

    pub(crate) fn on_record(mut self, record: &str) -> Self {
        self.record = Some(record.to_string());
        self
    }

    pub(crate) fn on_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    /// What it allows.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The record it is for, once known (a created record's id is set when it is made).
    pub fn record(&self) -> Option<&str> {
        self.record.as_deref()
    }

    /// Refuses a use the permit was not granted for (a programming error, reported as a
    /// refusal rather than a panic: nothing is read or changed).
    pub(crate) fn check(
        &self,
        actions: &[Action],
        collection: &str,
        record: Option<&str>,
    ) -> Result<(), Error> {
        let record_ok = match (record, self.record.as_deref()) {
            (Some(wanted), Some(granted)) => wanted == granted,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if actions.contains(&self.action) && self.collection == collection && record_ok {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "a permit for {} on '{}' does not allow this access",
                self.action, self.collection
            )))
        }
    }

    pub(crate) fn check_field(&self, field: &str) -> Result<(), Error> {
        match &self.field {
            Some(granted) if granted == field => Ok(()),
            _ => Err(Error::Forbidden(format!(
                "a permit for {} does not cover field '{field}'",
                self.action
            ))),
        }
    }
}
