//! API keys: random bearer credentials, kept only as keyed hashes.
//!
//! A key reads `ck_<id>_<secret>`: `id` (16 hex digits) names the stored row and is not
//! secret; `secret` is 256 random bits in hex. The store keeps
//! HMAC-SHA256(K, id ‖ 0x00 ‖ secret), where K = HKDF-SHA256(root, info =
//! `"custody/api-key/v1"`). A presented key is checked by recomputing the tag and comparing
//! in constant time. Without the root key, a copy of the database neither reveals a key nor
//! lets anyone add one that verifies.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::key::random;
use crate::{Error, Key};

/// A new API key: the full credential (shown once) and what the store keeps.
pub struct NewApiKey {
    /// The row id (public).
    pub id: String,
    /// The whole credential, `ck_<id>_<secret>`. Shown once, never stored.
    pub credential: String,
    /// The tag the store keeps.
    pub tag: [u8; 32],
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewApiKey({}, <redacted>)", self.id)
    }
}

/// The keyed hash of API keys, derived from the root key. Zeroed when dropped.
pub struct ApiKeyMac([u8; 32]);

impl ApiKeyMac {
    /// Derives the API-key hashing key from the root key.
    pub fn derive(root: &Key) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"custody-api-key-salt-v1"), root.expose());
        let mut okm = [0u8; 32];
        hk.expand(b"custody/api-key/v1", &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(okm)
    }

    fn mac(&self, id: &str, secret: &str) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b"\0");
        mac.update(secret.as_bytes());
        mac
    }

    /// Makes a new random key.
    pub fn generate(&self) -> Result<NewApiKey, Error> {
        let id = crate::hex(&random::<8>()?);
        let secret = crate::hex(&random::<32>()?);
        let tag: [u8; 32] = self.mac(&id, &secret).finalize().into_bytes().into();
        Ok(NewApiKey { credential: format!("ck_{id}_{secret}"), id, tag })
    }

    /// The id a presented credential claims, if it has the right shape.
    pub fn id_of(credential: &str) -> Option<&str> {
        let rest = credential.strip_prefix("ck_")?;
        let (id, secret) = rest.split_once('_')?;
        let hex16 = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex16(id, 16) && hex16(secret, 64)).then_some(id)
    }

    /// Whether `credential` matches the stored `tag` (constant-time comparison).
    pub fn verify(&self, credential: &str, tag: &[u8]) -> bool {
        let Some(id) = Self::id_of(credential) else { return false };
        let secret = &credential[3 + id.len() + 1..];
        self.mac(id, secret).verify_slice(tag).is_ok()
    }
}

/// The seal over an API key's stored row — its id, name, role, dates and credential tag —
/// so that someone who can write the database cannot promote a key (`role = 'owner'`) or
/// bring a revoked one back (`revoked_at = NULL`) without the root key. HMAC-SHA256 under
/// K = HKDF-SHA256(root, info = `"custody/api-key-row/v1"`), over length-prefixed parts.
pub struct ApiKeyRowSeal([u8; 32]);

impl ApiKeyRowSeal {
    /// Derives the row-sealing key from the root key (its own key: not the credential's).
    pub fn derive(root: &Key) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"custody-api-key-salt-v1"), root.expose());
        let mut okm = [0u8; 32];
        hk.expand(b"custody/api-key-row/v1", &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(okm)
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The seal over `parts`.
    pub fn seal(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.mac(parts).finalize().into_bytes().into()
    }

    /// Whether `seal` is the seal over `parts` (constant-time comparison).
    pub fn verify(&self, parts: &[&[u8]], seal: &[u8]) -> bool {
        self.mac(parts).verify_slice(seal).is_ok()
    }
}

impl Drop for ApiKeyRowSeal {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for ApiKeyRowSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyRowSeal(<redacted>)")
    }
}

impl Drop for ApiKeyMac {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for ApiKeyMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyMac(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_only_under_their_root_and_tag() {
        let mac = ApiKeyMac::derive(&Key::from_bytes([3; 32]));
        let key = mac.generate().unwrap();
        assert_eq!(ApiKeyMac::id_of(&key.credential), Some(key.id.as_str()));
        assert!(mac.verify(&key.credential, &key.tag));
        // One changed secret digit, another root, another key's tag: all refused.
        let mut altered = key.credential.clone();
        let last = if altered.ends_with('0') { "1" } else { "0" };
        altered.replace_range(altered.len() - 1.., last);
        assert!(!mac.verify(&altered, &key.tag));
        assert!(!ApiKeyMac::derive(&Key::from_bytes([4; 32])).verify(&key.credential, &key.tag));
        let other = mac.generate().unwrap();
        assert!(!mac.verify(&key.credential, &other.tag));
        for bad in ["", "ck_", "ck_zz_yy", "Bearer x", &key.credential[..20]] {
            assert!(!mac.verify(bad, &key.tag), "{bad}");
        }
        assert!(!format!("{key:?}").contains(&key.credential[20..]));
    }

    #[test]
    fn a_row_seal_covers_every_part_and_its_boundaries() {
        let seal = ApiKeyRowSeal::derive(&Key::from_bytes([3; 32]));
        let parts: [&[u8]; 3] = [b"id", b"staff", b""];
        let tag = seal.seal(&parts);
        assert!(seal.verify(&parts, &tag));
        assert!(!seal.verify(&[b"id", b"owner", b""], &tag));
        // Moving a boundary changes the seal: "ids" + "taff" is not "id" + "staff".
        assert!(!seal.verify(&[b"ids", b"taff", b""], &tag));
        assert!(!ApiKeyRowSeal::derive(&Key::from_bytes([4; 32])).verify(&parts, &tag));
        // Its own key: the credential MAC's key does not make the same tags.
        assert_ne!(seal.0, ApiKeyMac::derive(&Key::from_bytes([3; 32])).0);
    }
}
