//! Typed details: what each action records beyond who, what and when, as a struct a
//! reader can match on instead of picking through JSON.
//!
//! The fields keep the names earlier releases wrote, so events already in a ledger read
//! back as these types; an optional field that is absent stays absent in the canonical
//! encoding (never `null`). Writers set details with [`Event::set_details`]; readers get
//! them with [`Event::details_as`], which refuses a type that is not for the event's action.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Action, Error, Event};

/// The details of one or more actions.
pub trait Details: Serialize + DeserializeOwned {
    /// The actions whose events carry these details.
    const ACTIONS: &'static [Action];
}

/// `auth.failed`: a refused credential, or (`reason = "burst"`) how many were counted and
/// not recorded one by one in an earlier minute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailed {
    /// Where it was presented: `api`, `unseal`, `cli` (absent for a burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// `missing`, `malformed`, `unknown_key`, `revoked_key`, `wrong_secret`,
    /// `wrong_passphrase`, `wrong_shares`, or `burst`.
    pub reason: String,
    /// A keyed fingerprint of the API key presented (32 hex digits), if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// For a burst: refusals not recorded one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// For a burst: how many sources they came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<u64>,
}

impl Details for AuthFailed {
    const ACTIONS: &'static [Action] = &[Action::AuthFailed];
}

/// `fix.quarantine`, `fix.redact`, `fix.shred`, `fix.ignore`: one file acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixDone {
    /// The file: `path:` and the keyed pseudonym of its absolute path, the clear path in
    /// the path book ([`crate::Ledger::path_ref`], [`crate::Ledger::resolve_path`]); the
    /// clear path itself in events written before review item 18.
    pub path: String,
    /// Findings in it, by kind.
    #[serde(default)]
    pub findings_by_kind: BTreeMap<String, u64>,
    /// Distinct values acted on.
    #[serde(default)]
    pub values: u64,
    /// Where the original went, for quarantine and redaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<String>,
    /// A keyed pseudonym of the quarantined copy's SHA-256 (`quarantine-sha256:HEX`), so
    /// a restore can check that the sealed copy is the one this event made. Keyed, so the
    /// log is no oracle for guessing a small file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_content: Option<String>,
    /// Why it failed (a fixed message, never a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Details for FixDone {
    const ACTIONS: &'static [Action] =
        &[Action::FixQuarantine, Action::FixRedact, Action::FixShred, Action::FixIgnore];
}

/// `quarantine.restore`: a quarantined file put back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRestore {
    /// The quarantine entry.
    pub quarantine_id: String,
    /// Where it was written (a path reference, as in [`FixDone::path`]).
    pub path: String,
}

impl Details for QuarantineRestore {
    const ACTIONS: &'static [Action] = &[Action::QuarantineRestore];
}

/// `ledger.forget_path`: a path's clear copy deleted from the path book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathForgotten {
    /// The path's reference (`path:` and its pseudonym), never the path.
    pub path: String,
}

impl Details for PathForgotten {
    const ACTIONS: &'static [Action] = &[Action::LedgerForgetPath];
}

/// `scan.run` and `scan.decommission`: what a scan covered and found (counts only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRun {
    /// The computer, for a decommission check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What was scanned.
    #[serde(default)]
    pub roots: Vec<String>,
    /// Files read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_scanned: Option<u64>,
    /// Bytes read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_scanned: Option<u64>,
    /// How long it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Findings in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<u64>,
    /// Findings by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub findings_by_kind: BTreeMap<String, u64>,
    /// Files skipped, by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_skipped: BTreeMap<String, u64>,
    /// Archive members and document parts skipped, by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members_skipped: BTreeMap<String, u64>,
}

impl Details for ScanRun {
    const ACTIONS: &'static [Action] = &[Action::ScanRun, Action::ScanDecommission];
}

/// `retention.done`: what a retention run removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDone {
    /// Records erased whole.
    pub records_erased: u64,
    /// Values deleted from records that stay.
    pub values_deleted: u64,
}

impl Details for RetentionDone {
    const ACTIONS: &'static [Action] = &[Action::RetentionDone];
}

/// `apikey.create`, `apikey.list`, `apikey.revoke`: which key (a name or its public id,
/// `*` for a listing) and role; never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyChange {
    /// The key's name or id.
    pub key: String,
    /// Its role, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Details for ApiKeyChange {
    const ACTIONS: &'static [Action] =
        &[Action::ApiKeyCreate, Action::ApiKeyList, Action::ApiKeyRevoke];
}

/// `ledger.low_disk`: free space fell below the threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowDisk {
    /// Bytes free.
    pub free_bytes: u64,
    /// The threshold.
    pub threshold_bytes: u64,
}

impl Details for LowDisk {
    const ACTIONS: &'static [Action] = &[Action::LedgerLowDisk];
}

/// `vault.migrate`: stored values moved to a newer layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultMigrate {
    /// The layout moved to (`address`).
    pub to: String,
    /// Records with a value to move.
    pub records: u64,
}

impl Details for VaultMigrate {
    const ACTIONS: &'static [Action] = &[Action::VaultMigrate];
}

impl Event {
    /// Sets the details from their type (replacing any).
    pub fn set_details<T: Details>(&mut self, details: &T) -> Result<(), Error> {
        let value = serde_json::to_value(details)
            .map_err(|e| Error::Event(format!("details do not serialise: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(Error::Event("details must be an object".into()));
        };
        self.details = map.into_iter().collect();
        Ok(())
    }

    /// The details as `T`, if the event's action is one `T` is for.
    pub fn details_as<T: Details>(&self) -> Result<T, Error> {
        let action = self.kind();
        if !action.is_some_and(|a| T::ACTIONS.contains(&a)) {
            return Err(Error::Event(format!(
                "an event of '{}' does not carry these details",
                self.action
            )));
        }
        let map: serde_json::Map<String, serde_json::Value> =
            self.details.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| Error::Event(format!("event details of '{}': {e}", self.action)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    /// Events written by earlier releases (their exact canonical text) read as the types,
    /// and writing the type gives the same bytes back.
    #[test]
    fn recorded_details_read_back_typed_and_encode_the_same() {
        let cases: &[&str] = &[
            r#"{"v":1,"time":1,"actor":"cli:root","action":"fix.quarantine","outcome":"ok","details":{"findings_by_kind":{"credit_card":2},"path":"/srv/a.csv","quarantine_id":"q-0a1b2c3d4e5f","values":2}}"#,
            r#"{"v":1,"time":1,"actor":"anonymous","action":"auth.failed","target":{"collection":"auth"},"outcome":"denied","source":"ab","details":{"fingerprint":"00ff","reason":"unknown_key","via":"api"}}"#,
            r#"{"v":1,"time":1,"actor":"sys:retention","action":"retention.done","target":{"collection":"vault"},"outcome":"ok","details":{"records_erased":3,"values_deleted":7}}"#,
            r#"{"v":1,"time":1,"actor":"cli:root","action":"scan.run","outcome":"ok","details":{"bytes_scanned":10,"duration_ms":5,"files_scanned":2,"files_skipped":{"binary":1},"findings":4,"findings_by_kind":{"email":4},"members_skipped":{},"roots":["/srv"]}}"#,
        ];
        for text in cases {
            let event = Event::from_canonical(text.as_bytes()).unwrap();
            let mut again = event.clone();
            match event.kind().unwrap() {
                Action::FixQuarantine => {
                    let d: FixDone = event.details_as().unwrap();
                    assert_eq!(d.findings_by_kind["credit_card"], 2);
                    again.set_details(&d).unwrap();
                }
                Action::AuthFailed => {
                    let d: AuthFailed = event.details_as().unwrap();
                    assert_eq!(d.reason, "unknown_key");
                    again.set_details(&d).unwrap();
                }
                Action::RetentionDone => {
                    let d: RetentionDone = event.details_as().unwrap();
                    assert_eq!((d.records_erased, d.values_deleted), (3, 7));
                    again.set_details(&d).unwrap();
                }
                Action::ScanRun => {
                    let d: ScanRun = event.details_as().unwrap();
                    assert_eq!(d.files_skipped["binary"], 1);
                    again.set_details(&d).unwrap();
                    // An empty map was written by earlier releases and is not re-written.
                    again.details.insert("members_skipped".into(), serde_json::json!({}));
                }
                other => panic!("{other}"),
            }
            assert_eq!(again.canonical(), text.as_bytes(), "{text}");
        }
    }

    #[test]
    fn details_of_another_action_are_refused() {
        let mut e = Event::new("a", Action::RecordRead, Outcome::Ok);
        assert!(e.details_as::<FixDone>().is_err());
        e.set_details(&RetentionDone { records_erased: 1, values_deleted: 0 }).unwrap();
        assert!(e.details_as::<RetentionDone>().is_err(), "record.read carries no such details");
    }
}
