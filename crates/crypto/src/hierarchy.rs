//! The key hierarchy: root key → versioned key-encryption keys (KEKs) → one data key per
//! customer. Each level is wrapped by the one above with the same envelope as fields, its
//! associated data naming what the key is for, so a wrapped key moved to another customer
//! or version does not unwrap. Rotation re-wraps data keys under a new KEK version without
//! touching the data they protect; erasing a customer is destroying its wrapped data key.

use crate::envelope::{open_raw, seal_with_nonce};
use crate::key::random;
use crate::{Error, Key};

/// A data key wrapped by a KEK version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// The KEK version that wraps it.
    pub kek_version: u32,
    /// The envelope.
    pub envelope: Vec<u8>,
}

fn kek_aad(version: u32) -> Vec<u8> {
    let mut aad = b"custody/kek/v1".to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn dek_aad(kek_version: u32, collection: &str, record: &str) -> Vec<u8> {
    let mut aad = b"custody/dek/v1".to_vec();
    for part in [collection, record] {
        aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad.extend_from_slice(&kek_version.to_be_bytes());
    aad
}

/// Wraps KEK `version` under the root key.
pub fn wrap_kek(root: &Key, version: u32, kek: &Key) -> Result<Vec<u8>, Error> {
    seal_with_nonce(root, &random::<24>()?, &kek_aad(version), kek.expose())
}

/// Unwraps KEK `version`.
pub fn unwrap_kek(root: &Key, version: u32, wrapped: &[u8]) -> Result<Key, Error> {
    to_key(open_raw(root, &kek_aad(version), wrapped)?)
}

/// Wraps the data key of `collection/record` under KEK `kek_version`.
pub fn wrap_dek(
    kek: &Key,
    kek_version: u32,
    collection: &str,
    record: &str,
    dek: &Key,
) -> Result<WrappedKey, Error> {
    let envelope = seal_with_nonce(
        kek,
        &random::<24>()?,
        &dek_aad(kek_version, collection, record),
        dek.expose(),
    )?;
    Ok(WrappedKey { kek_version, envelope })
}

/// Unwraps the data key of `collection/record`.
pub fn unwrap_dek(
    kek: &Key,
    wrapped: &WrappedKey,
    collection: &str,
    record: &str,
) -> Result<Key, Error> {
    to_key(open_raw(kek, &dek_aad(wrapped.kek_version, collection, record), &wrapped.envelope)?)
}

/// Re-wraps a data key from its KEK to KEK `new_version` (key rotation).
pub fn rewrap_dek(
    old_kek: &Key,
    new_kek: &Key,
    new_version: u32,
    wrapped: &WrappedKey,
    collection: &str,
    record: &str,
) -> Result<WrappedKey, Error> {
    let dek = unwrap_dek(old_kek, wrapped, collection, record)?;
    wrap_dek(new_kek, new_version, collection, record, &dek)
}

/// The key in an opened envelope; the buffer it was opened into is zeroed when dropped
/// (review item 20: an unwrapped key is not left in freed memory).
fn to_key(bytes: Vec<u8>) -> Result<Key, Error> {
    let bytes = zeroize::Zeroizing::new(bytes);
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::Format)?;
    Ok(Key::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_unwrap_only_where_they_belong() {
        let root = Key::random().unwrap();
        let kek1 = Key::random().unwrap();
        let wrapped_kek = wrap_kek(&root, 1, &kek1).unwrap();
        assert_eq!(unwrap_kek(&root, 1, &wrapped_kek).unwrap(), kek1);
        assert_eq!(unwrap_kek(&root, 2, &wrapped_kek), Err(Error::Open), "another version");

        let dek = Key::random().unwrap();
        let wrapped = wrap_dek(&kek1, 1, "customers", "c-1", &dek).unwrap();
        assert_eq!(unwrap_dek(&kek1, &wrapped, "customers", "c-1").unwrap(), dek);
        assert_eq!(
            unwrap_dek(&kek1, &wrapped, "customers", "c-2"),
            Err(Error::Open),
            "another customer"
        );
        assert_eq!(
            unwrap_dek(&kek1, &wrapped, "orders", "c-1"),
            Err(Error::Open),
            "another collection"
        );
        let mut relabelled = wrapped.clone();
        relabelled.kek_version = 2;
        assert_eq!(unwrap_dek(&kek1, &relabelled, "customers", "c-1"), Err(Error::Open));

        // Rotation: the data key survives, the old KEK no longer opens the new wrapping.
        let kek2 = Key::random().unwrap();
        let rotated = rewrap_dek(&kek1, &kek2, 2, &wrapped, "customers", "c-1").unwrap();
        assert_eq!(rotated.kek_version, 2);
        assert_eq!(unwrap_dek(&kek2, &rotated, "customers", "c-1").unwrap(), dek);
        assert_eq!(unwrap_dek(&kek1, &rotated, "customers", "c-1"), Err(Error::Open));
    }
}
