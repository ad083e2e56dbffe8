//! # The vault's cryptography: construction and reasons
//!
//! - **Keys.** A random 256-bit root key, sealed under the owner's passphrase with Argon2id
//!   (64 MiB, 3 passes, 4 lanes by default; parameters bound into the seal) and, in the vault,
//!   split into a recovery kit. Key-encryption keys and per-customer data keys are random
//!   256-bit keys wrapped by the key above them with the same envelope as fields.
//! - **Recovery kit.** The root key split 2-of-3 with Shamir's scheme over GF(256) (the
//!   `blahaj` crate); each share carries a typo check and an HMAC fingerprint of the key.
//! - **Envelopes.** XChaCha20-Poly1305 with a random 192-bit nonce (no counters to keep), and
//!   associated data binding collection, record, field and key version (see [`crate::envelope`]).
//! - **Blind indexes.** HMAC-SHA256 under a per-field key from HKDF-SHA256, truncated to 128
//!   bits: equality search only, and a leaked index table reveals which rows share a value,
//!   not the value.
//! - **Card tokens.** FF1 with AES-256 (see [`crate::CardTokenizer`]): same length, last four
//!   kept, failing Luhn by default. SSNs are *not* FF1-tokenised: with the last four kept,
//!   five digits (100,000 values) remain, below FF1's minimum domain of one million and small
//!   enough to enumerate whatever the cipher; the vault gives SSNs random tokens instead.
//!
//! ## Test vectors
//!
//! XChaCha20-Poly1305: draft-irtf-cfrg-xchacha-03 A.3.1. FF1: NIST SP 800-38G samples 1, 2,
//! 7, 8 (radix 10). HKDF-SHA256: RFC 5869 test case 1. Argon2id: RFC 9106 §5.3.
