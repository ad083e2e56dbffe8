//! Events: what happened to customer data, by whom, for what purpose.
//!
//! # Canonical encoding
//!
//! An event's leaf in the Merkle log is its JSON text as written by [`Event::canonical`]:
//! UTF-8, no insignificant white space, fields in the order declared below, absent
//! optional fields omitted (never `null`), `details` keys in byte order, integers only (no
//! floats). The bytes are stored as written and hashed as stored; a verifier checks that
//! parsing and re-encoding them gives the same bytes, so a leaf has exactly one encoding.
//! Version 1 of this format is `"v":1`.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{Action, Error};

/// The encoding version written in every event.
pub const EVENT_VERSION: u8 = 1;

/// A keyed pseudonym of an identifier that could re-identify a customer (a record id, an
/// email searched for, a source address): HMAC-SHA256 under the ledger's own key, hex.
/// The ledger can be handed to an auditor without re-leaking the data; whoever holds the
/// key can compute the pseudonym of a value to look it up (`custody ledger hash`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pseudonym(String);

impl Pseudonym {
    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key pseudonyms are computed with. Zeroed when dropped; never printed.
pub struct PseudonymKey([u8; 32]);

impl PseudonymKey {
    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The pseudonym of `value` (trimmed; case kept: callers normalise per kind).
    pub fn pseudonym(&self, value: &str) -> Pseudonym {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"custody-ledger-pseudonym-v1\0");
        mac.update(value.trim().as_bytes());
        let out = mac.finalize().into_bytes();
        Pseudonym(crate::hex(&out))
    }
}

impl Drop for PseudonymKey {
    fn drop(&mut self) {
        // Plain zeroing; `black_box` keeps the write from being optimised away.
        self.0 = [0; 32];
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(<redacted>)")
    }
}

/// How an access ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by policy.
    Denied,
    /// Failed.
    Error,
}

/// What was touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The collection (`customers`, `orders`) or resource kind (`file`).
    pub collection: String,
    /// The record, pseudonymised.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub record: Option<Pseudonym>,
}

/// One entry of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Encoding version ([`EVENT_VERSION`]).
    pub v: u8,
    /// When, in milliseconds since the Unix epoch (as claimed by the writer; the ledger
    /// proves order, not time: see the security notes).
    pub time: i64,
    /// Who: a principal id (`key:abc123`, `cli:root`, `system`).
    pub actor: String,
    /// What: a dotted action (`record.read`, `scan.run`, `token.reveal`).
    pub action: String,
    /// On what.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<Target>,
    /// Which fields.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub fields: Vec<String>,
    /// For what purpose (`order_fulfillment`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub purpose: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request it belongs to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    /// Where it came from, pseudonymised.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<Pseudonym>,
    /// Counts and other non-identifying facts (integers, strings, booleans).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Event {
    /// A new event now, with the required fields.
    pub fn new(actor: impl Into<String>, action: Action, outcome: Outcome) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            v: EVENT_VERSION,
            time,
            actor: actor.into(),
            action: action.as_str().to_string(),
            target: None,
            fields: Vec::new(),
            purpose: None,
            outcome,
            request_id: None,
            source: None,
            details: BTreeMap::new(),
        }
    }

    /// The action, typed; `None` for a name this build does not know (an event from a
    /// newer release).
    pub fn kind(&self) -> Option<Action> {
        Action::from_name(&self.action)
    }

    /// Checks the parts every event needs.
    pub fn validate(&self) -> Result<(), Error> {
        let dotted = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_')
        };
        if self.v != EVENT_VERSION {
            return Err(Error::Event(format!("unsupported version {}", self.v)));
        }
        if !dotted(&self.action) {
            return Err(Error::Event("action must be lower-case words joined by dots".into()));
        }
        if self.actor.is_empty() || self.actor.len() > 256 {
            return Err(Error::Event("actor must be 1 to 256 bytes".into()));
        }
        if self.details.values().any(serde_json::Value::is_f64) {
            return Err(Error::Event("details must not hold floating-point numbers".into()));
        }
        Ok(())
    }

    /// The canonical encoding (see the module documentation).
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serialises")
    }

    /// Parses a stored leaf, requiring it to be in canonical form.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, Error> {
        let event: Event = serde_json::from_slice(bytes)
            .map_err(|e| Error::Event(format!("not an event: {e}")))?;
        if event.canonical() != bytes {
            return Err(Error::Event("not in canonical form".into()));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_stable_and_compact() {
        let mut e = Event::new("cli:root", Action::ScanRun, Outcome::Ok);
        e.time = 1_700_000_000_000;
        e.details.insert("files".into(), 12.into());
        e.details.insert("bytes".into(), 3400.into());
        let bytes = e.canonical();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"time":1700000000000,"actor":"cli:root","action":"scan.run","outcome":"ok","details":{"bytes":3400,"files":12}}"#
        );
        assert_eq!(Event::from_canonical(&bytes).unwrap(), e);
        // Same content, other spelling: refused.
        let spaced = br#"{"v":1, "time":1700000000000,"actor":"cli:root","action":"scan.run","outcome":"ok","details":{"bytes":3400,"files":12}}"#;
        assert!(Event::from_canonical(spaced).is_err());
    }

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let k1 = PseudonymKey::from_bytes([7; 32]);
        let k2 = PseudonymKey::from_bytes([8; 32]);
        assert_eq!(k1.pseudonym("jane@example.com"), k1.pseudonym(" jane@example.com "));
        assert_ne!(k1.pseudonym("jane@example.com"), k2.pseudonym("jane@example.com"));
        assert_eq!(k1.pseudonym("x").as_str().len(), 64);
        assert!(!format!("{k1:?}").contains('7'));
    }

    #[test]
    fn validation() {
        assert!(Event::new("a", Action::RecordRead, Outcome::Ok).validate().is_ok());
        let mut spaced = Event::new("a", Action::RecordRead, Outcome::Ok);
        spaced.action = "Record Read".into();
        assert!(spaced.validate().is_err());
        assert!(Event::new("", Action::RecordRead, Outcome::Ok).validate().is_err());
    }
}
