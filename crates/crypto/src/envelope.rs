//! Field envelopes: XChaCha20-Poly1305 with context-binding associated data.
//!
//! An envelope is `0x01 ‖ nonce (24 bytes, random) ‖ ciphertext ‖ tag (16 bytes)`. Its
//! associated data is `"custody/field/v1" ‖ len‖collection ‖ len‖record ‖ len‖field ‖
//! key version (4 bytes, big endian)`, lengths as 4-byte big-endian integers: a ciphertext
//! copied to another record or field, or opened under another key version, fails.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::key::random;
use crate::{Error, Key};

const VERSION: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;

/// Where a value belongs: the associated data of its envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldContext<'a> {
    /// The collection (`customers`).
    pub collection: &'a str,
    /// The record id.
    pub record: &'a str,
    /// The field name (`email`).
    pub field: &'a str,
    /// The version of the key that seals it.
    pub key_version: u32,
}

impl FieldContext<'_> {
    /// The associated-data bytes (documented in the module).
    pub fn aad(&self) -> Vec<u8> {
        let mut aad = b"custody/field/v1".to_vec();
        for part in [self.collection, self.record, self.field] {
            aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad.extend_from_slice(&self.key_version.to_be_bytes());
        aad
    }
}

/// Seals `plaintext` under `key` for `context`.
pub fn seal(key: &Key, context: &FieldContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    seal_with_nonce(key, &random::<NONCE>()?, &context.aad(), plaintext)
}

/// Opens an envelope sealed for `context`.
pub fn open(key: &Key, context: &FieldContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, Error> {
    open_raw(key, &context.aad(), envelope)
}

pub(crate) fn seal_with_nonce(
    key: &Key,
    nonce: &[u8; NONCE],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let sealed = cipher
        .encrypt(&XNonce::from(*nonce), Payload { msg: plaintext, aad })
        .map_err(|_| Error::Format)?;
    let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

pub(crate) fn open_raw(key: &Key, aad: &[u8], envelope: &[u8]) -> Result<Vec<u8>, Error> {
    if envelope.len() < 1 + NONCE + TAG || envelope[0] != VERSION {
        return Err(Error::Format);
    }
    let nonce: [u8; NONCE] = envelope[1..=NONCE].try_into().map_err(|_| Error::Format)?;
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: &envelope[1 + NONCE..], aad })
        .map_err(|_| Error::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn xchacha20_poly1305_known_answer() {
        let key = Key::from_bytes(
            hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .try_into()
                .unwrap(),
        );
        let nonce: [u8; 24] =
            hex("404142434445464748494a4b4c4d4e4f5051525354555657").try_into().unwrap();
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let sealed = seal_with_nonce(&key, &nonce, &aad, plaintext).unwrap();
        let expected = hex(concat!(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
            "21f9664c97637da9768812f615c68b13b52e",
            "c0875924c1c7987947deafd8780acf49"
        ));
        assert_eq!(&sealed[1 + 24..], expected.as_slice());
        assert_eq!(open_raw(&key, &aad, &sealed).unwrap(), plaintext);
    }

    #[test]
    fn moved_or_altered_ciphertexts_fail() {
        let key = Key::random().unwrap();
        let here =
            FieldContext { collection: "customers", record: "c-1", field: "email", key_version: 1 };
        let sealed = seal(&key, &here, b"jane@example.com").unwrap();
        assert_eq!(open(&key, &here, &sealed).unwrap(), b"jane@example.com");
        for other in [
            FieldContext { record: "c-2", ..here },
            FieldContext { field: "phone", ..here },
            FieldContext { collection: "orders", ..here },
            FieldContext { key_version: 2, ..here },
        ] {
            assert_eq!(open(&key, &other, &sealed), Err(Error::Open), "{other:?}");
        }
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&key, &here, &bad).is_err(), "bit flip at {i} went unnoticed");
        }
        assert_eq!(open(&Key::random().unwrap(), &here, &sealed), Err(Error::Open));
        // The error says nothing of the value.
        assert!(!Error::Open.to_string().contains("jane"));
    }

    #[test]
    fn field_boundaries_cannot_shift() {
        // "ab" + "c" and "a" + "bc" must not give the same associated data.
        let a = FieldContext { collection: "ab", record: "c", field: "f", key_version: 1 };
        let b = FieldContext { collection: "a", record: "bc", field: "f", key_version: 1 };
        assert_ne!(a.aad(), b.aad());
    }
}
