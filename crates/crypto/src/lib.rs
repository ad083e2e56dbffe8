//! custody-crypto: the vault's cryptography, and nothing home-made at the primitive level.
//!
//! - [`Key`]: 256-bit secret keys that zero themselves and never print.
//! - [`hierarchy`]: root key → versioned KEKs → one data key per customer, with rotation.
//! - [`envelope`]: XChaCha20-Poly1305 sealing whose associated data binds collection, record,
//!   field and key version, so a ciphertext moved anywhere else fails to open.
//! - [`BlindIndexKey`]: per-field HMAC-SHA256 keys derived by HKDF, for exact-match search
//!   without decrypting.
//! - [`CardTokenizer`]: FF1 (NIST SP 800-38G) card tokens of the same length that keep the
//!   last four digits and, by default, fail the Luhn check.
//! - [`random_token`], [`deterministic_token`], [`ssn_token`]: opaque and SSN-shaped tokens.
//! - [`PassphraseSeal`]: the root key sealed under an Argon2id passphrase key.
//! - [`recovery`]: the root key split into a 2-of-3 recovery kit (Shamir).
//! - [`sealed_file`]: whole files sealed to an X25519 public key (the quarantine), opened
//!   only with the key derived from the root key.
//! - [`ApiKeyMac`]: API keys stored only as keyed hashes, checked in constant time;
//!   [`ApiKeyRowSeal`] binds each key's row (role, revocation) under the root.
//!
//! The construction, its reasons and its test vectors are in [`manual`].

mod apikey;
pub mod envelope;
mod error;
pub mod hierarchy;
mod index;
mod key;
pub mod manual;
pub mod recovery;
mod seal;
pub mod sealed_file;
mod token;

pub use apikey::{ApiKeyMac, ApiKeyRowSeal, NewApiKey};
pub use envelope::{FieldContext, open, seal};
pub use error::Error;
pub use index::BlindIndexKey;
pub use key::Key;
pub use seal::{Argon2Params, PassphraseSeal};
pub use token::{CardTokenizer, deterministic_token, random_token, record_id, ssn_token};

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
