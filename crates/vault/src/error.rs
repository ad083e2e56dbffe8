//! Errors. A field error names the field and the rule, never the value.

/// Why a vault operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file is not valid.
    #[error("configuration: {0}")]
    Config(String),
    /// A value does not fit its field.
    #[error("field '{field}': {rule}")]
    Invalid {
        /// The field.
        field: String,
        /// What the value must be (never the value itself).
        rule: &'static str,
    },
}
