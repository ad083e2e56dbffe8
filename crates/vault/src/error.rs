//! Errors. A field error names the field and the rule, never the value.

/// Why a vault operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file is not valid.
    #[error("configuration: {0}")]
    Config(String),
    /// No such collection, record or token.
    #[error("not found: {0}")]
    NotFound(String),
    /// It exists already (a key name, a record).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The role or purpose does not allow it.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The access could not be recorded in the ledger, so it was refused (fail closed).
    #[error("the access could not be recorded, so it was refused: {0}")]
    Audit(String),
    /// The root key could not be unsealed (wrong passphrase or shares, damaged seal).
    #[error("{0}")]
    Locked(String),
    /// An import's columns do not map onto the collection's fields.
    #[error("{0}")]
    Mapping(String),
    /// Another attempt is running (unsealing); try again shortly.
    #[error("{0}")]
    Busy(String),
    /// The database failed.
    #[error("vault database: {0}")]
    Store(String),
    /// A key or envelope did not open (wrong key, moved or altered data).
    #[error("vault cryptography: {0}")]
    Crypto(String),
    /// A value does not fit its field.
    #[error("field '{field}': {rule}")]
    Invalid {
        /// The field.
        field: String,
        /// What the value must be (never the value itself).
        rule: &'static str,
    },
}
