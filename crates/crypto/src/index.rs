//! Blind indexes: exact-match search over encrypted fields.
//!
//! Each searchable field has its own key, HKDF-SHA256(root, info =
//! `"custody/blind-index/v1" ‖ 0x00 ‖ collection ‖ 0x00 ‖ field`); the index of a value is
//! HMAC-SHA256(field key, normalised value), truncated to 16 bytes and written in hex. The
//! same value in two fields, or under two roots, gives unrelated indexes.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::Key;

/// A per-field blind-index key. Zeroed when dropped; never printed.
pub struct BlindIndexKey([u8; 32]);

impl BlindIndexKey {
    /// Derives the key of `collection.field` from the root key.
    pub fn derive(root: &Key, collection: &str, field: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"custody-blind-index-salt-v1"), root.expose());
        let mut info = b"custody/blind-index/v1\0".to_vec();
        info.extend_from_slice(collection.as_bytes());
        info.push(0);
        info.extend_from_slice(field.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(&info, &mut okm).expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(okm)
    }

    /// The index of an already-normalised value.
    pub fn index(&self, normalised: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(normalised.as_bytes());
        let tag = mac.finalize().into_bytes();
        crate::hex(&tag[..16])
    }
}

impl Drop for BlindIndexKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_stable_and_separated() {
        let root = Key::from_bytes([1; 32]);
        let email = BlindIndexKey::derive(&root, "customers", "email");
        assert_eq!(email.index("jane@example.com"), email.index("jane@example.com"));
        assert_eq!(email.index("jane@example.com").len(), 32);
        assert_ne!(email.index("jane@example.com"), email.index("john@example.com"));
        let phone = BlindIndexKey::derive(&root, "customers", "phone");
        assert_ne!(email.index("x"), phone.index("x"), "fields are separated");
        let other_root = BlindIndexKey::derive(&Key::from_bytes([2; 32]), "customers", "email");
        assert_ne!(email.index("x"), other_root.index("x"), "roots are separated");
        assert!(!format!("{email:?}").contains('1'));
    }

    /// RFC 5869 test case 1 through the same HKDF the index keys use.
    #[test]
    fn hkdf_sha256_known_answer() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            crate::hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
