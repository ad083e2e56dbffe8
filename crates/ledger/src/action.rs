//! The audit vocabulary: every action custody records, by its stable name.
//!
//! The name is what the canonical event stores (`"action":"record.read"`), so it never
//! changes once released: a new action gets a new variant and a new name. Readers (the
//! decommission certificate, the coming watch and breach engines) match on [`Action`], not
//! on strings; an event from a newer custody, or an action this build does not know, reads
//! as `None` from [`crate::Event::kind`] and is kept as it is.

/// What happened, by its stable dotted name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// An API key was created (`apikey.create`).
    ApiKeyCreate,
    /// The API keys were listed (`apikey.list`).
    ApiKeyList,
    /// An API key was revoked (`apikey.revoke`).
    ApiKeyRevoke,
    /// A credential was refused: a missing, unknown or revoked API key, a wrong unseal
    /// passphrase or share (`auth.failed`). Carries where it came from and a keyed
    /// fingerprint of an API key presented, never the key.
    AuthFailed,
    /// A file was quarantined by `custody fix` (`fix.quarantine`).
    FixQuarantine,
    /// A file was redacted (`fix.redact`).
    FixRedact,
    /// A file was shredded (`fix.shred`).
    FixShred,
    /// Findings were added to the ignore list (`fix.ignore`).
    FixIgnore,
    /// The passphrase sealing the root key was changed (`keys.passphrase`).
    KeysPassphrase,
    /// The root key was rebuilt from recovery shares and sealed anew (`keys.recover`).
    KeysRecover,
    /// The key-encryption key was rotated (`keys.rotate`).
    KeysRotate,
    /// The root key was replaced (`keys.rotate_root`): every key row re-wrapped under a
    /// new root, blind indexes rebuilt under a new key, a new recovery kit.
    KeysRotateRoot,
    /// A file path's clear copy was deleted from the path book (`ledger.forget_path`).
    LedgerForgetPath,
    /// Free disk space fell below the ledger's threshold (`ledger.low_disk`).
    LedgerLowDisk,
    /// A key went past its plain-read or reveal limit (`limit.reveal`).
    LimitReveal,
    /// A key went past its search limit (`limit.search`): searches are an equality oracle
    /// (does this email belong to a customer?), so they are budgeted with or without a
    /// purpose.
    LimitSearch,
    /// A key went past its write limit (`limit.write`).
    LimitWrite,
    /// A quarantined file was restored (`quarantine.restore`).
    QuarantineRestore,
    /// A record was created (`record.create`).
    RecordCreate,
    /// A record was erased (`record.erase`).
    RecordErase,
    /// A record was exported for a data-subject request (`record.export`).
    RecordExport,
    /// A record was read (`record.read`).
    RecordRead,
    /// Records were searched (`record.search`).
    RecordSearch,
    /// A record was changed (`record.update`).
    RecordUpdate,
    /// A retention run finished, with what it removed (`retention.done`).
    RetentionDone,
    /// A retention run started (`retention.run`).
    RetentionRun,
    /// A decommission certificate was issued (`scan.decommission`).
    ScanDecommission,
    /// A scan ran (`scan.run`).
    ScanRun,
    /// The vault was unsealed (`sys.unseal`).
    SysUnseal,
    /// A standalone token was made (`token.create`).
    TokenCreate,
    /// A token's value was revealed (`token.reveal`).
    TokenReveal,
    /// Stored values were moved to a newer layout (`vault.migrate`), such as free-text
    /// addresses into their parts.
    VaultMigrate,
}

impl Action {
    /// Every action, in name order.
    pub const ALL: [Action; 32] = [
        Action::ApiKeyCreate,
        Action::ApiKeyList,
        Action::ApiKeyRevoke,
        Action::AuthFailed,
        Action::FixIgnore,
        Action::FixQuarantine,
        Action::FixRedact,
        Action::FixShred,
        Action::KeysPassphrase,
        Action::KeysRecover,
        Action::KeysRotate,
        Action::KeysRotateRoot,
        Action::LedgerForgetPath,
        Action::LedgerLowDisk,
        Action::LimitReveal,
        Action::LimitSearch,
        Action::LimitWrite,
        Action::QuarantineRestore,
        Action::RecordCreate,
        Action::RecordErase,
        Action::RecordExport,
        Action::RecordRead,
        Action::RecordSearch,
        Action::RecordUpdate,
        Action::RetentionDone,
        Action::RetentionRun,
        Action::ScanDecommission,
        Action::ScanRun,
        Action::SysUnseal,
        Action::TokenCreate,
        Action::TokenReveal,
        Action::VaultMigrate,
    ];

    /// The stable name, as stored in the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ApiKeyCreate => "apikey.create",
            Action::ApiKeyList => "apikey.list",
            Action::ApiKeyRevoke => "apikey.revoke",
            Action::AuthFailed => "auth.failed",
            Action::FixIgnore => "fix.ignore",
            Action::FixQuarantine => "fix.quarantine",
            Action::FixRedact => "fix.redact",
            Action::FixShred => "fix.shred",
            Action::KeysPassphrase => "keys.passphrase",
            Action::KeysRecover => "keys.recover",
            Action::KeysRotate => "keys.rotate",
            Action::KeysRotateRoot => "keys.rotate_root",
            Action::LedgerForgetPath => "ledger.forget_path",
            Action::LedgerLowDisk => "ledger.low_disk",
            Action::LimitReveal => "limit.reveal",
            Action::LimitSearch => "limit.search",
            Action::LimitWrite => "limit.write",
            Action::QuarantineRestore => "quarantine.restore",
            Action::RecordCreate => "record.create",
            Action::RecordErase => "record.erase",
            Action::RecordExport => "record.export",
            Action::RecordRead => "record.read",
            Action::RecordSearch => "record.search",
            Action::RecordUpdate => "record.update",
            Action::RetentionDone => "retention.done",
            Action::RetentionRun => "retention.run",
            Action::ScanDecommission => "scan.decommission",
            Action::ScanRun => "scan.run",
            Action::SysUnseal => "sys.unseal",
            Action::TokenCreate => "token.create",
            Action::TokenReveal => "token.reveal",
            Action::VaultMigrate => "vault.migrate",
        }
    }

    /// The action named `name`, if this build knows it.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether this is one of `custody fix`'s actions on a file.
    pub fn is_fix(self) -> bool {
        matches!(
            self,
            Action::FixIgnore | Action::FixQuarantine | Action::FixRedact | Action::FixShred
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sorted_dotted_and_round_trip() {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "ALL is in name order, without repeats");
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.as_str()), Some(a));
            let (area, verb) = a.as_str().split_once('.').expect("dotted");
            assert!(!area.is_empty() && !verb.is_empty());
        }
        assert_eq!(Action::from_name("record.reed"), None);
    }

    /// The names written by earlier releases still parse to the same action: a rename
    /// would make old ledgers unreadable to the rules that follow them.
    #[test]
    fn released_names_are_stable() {
        for (name, action) in [
            ("record.read", Action::RecordRead),
            ("scan.run", Action::ScanRun),
            ("fix.quarantine", Action::FixQuarantine),
            ("sys.unseal", Action::SysUnseal),
            ("apikey.create", Action::ApiKeyCreate),
            ("retention.done", Action::RetentionDone),
        ] {
            assert_eq!(Action::from_name(name), Some(action));
        }
    }
}
