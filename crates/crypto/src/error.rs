//! Errors. None carries a key, a plaintext or a customer value.

/// Why a cryptographic operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ciphertext does not open here: wrong key, wrong record or field, or altered.
    #[error(
        "the ciphertext does not open with this key and context (wrong record, field or key, or altered)"
    )]
    Open,
    /// The envelope is not in a format this version understands.
    #[error("not a custody envelope (unknown version or too short)")]
    Format,
    /// The passphrase is wrong (or the sealed key was altered).
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The Argon2 parameters are out of range.
    #[error("invalid passphrase-hashing parameters: {0}")]
    Params(String),
    /// The operating system's random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// A recovery share is mistyped, or from another kit.
    #[error("this recovery share is mistyped or belongs to another kit")]
    Share,
    /// Fewer than two distinct shares of one kit.
    #[error("two different shares of the same recovery kit are needed")]
    NotEnoughShares,
    /// An SSN token needs the last four digits.
    #[error("an SSN token needs the last four digits")]
    SsnFormat,
    /// A card number to tokenize is not 12–19 digits.
    #[error("a card number must be 12 to 19 digits")]
    CardFormat,
}
