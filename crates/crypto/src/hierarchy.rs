//! The key hierarchy: root key → versioned key-encryption keys (KEKs) → one data key per
//! customer. Each level is wrapped by the one above with the same envelope as fields, its
//! associated data naming what the key is for, so a wrapped key moved to another customer
//! or version does not unwrap. Rotation re-wraps data keys under a new KEK version without
//! touching the data they protect; erasing a customer is destroying its wrapped data key.
//!
//! A KEK version's row wraps a [`Keyring`]: the KEK and the **purpose keys** — one random
//! key each for blind indexes, tokens, API keys, the quarantine and the ledger's signing-key
//! seal — so nothing but
//! wrapping uses the root key, and replacing the root (re-wrapping every row under a new
//! one) leaves an old root, and every seal and recovery kit of it, opening nothing in the
//! vault as it now is. A row of a vault made before purpose keys wraps the KEK alone; its
//! purpose keys are the root itself ([`Purposes::from_legacy_root`]), as they were.

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

/// Wraps KEK `version` alone under the root key (the legacy row; see [`wrap_keyring`]).
pub fn wrap_kek(root: &Key, version: u32, kek: &Key) -> Result<Vec<u8>, Error> {
    seal_with_nonce(root, &random::<24>()?, &kek_aad(version), kek.expose())
}

/// Unwraps the KEK of version `version` (of a keyring row or a legacy row).
pub fn unwrap_kek(root: &Key, version: u32, wrapped: &[u8]) -> Result<Key, Error> {
    unwrap_keyring(root, version, wrapped).map(|ring| ring.kek)
}

/// The purpose keys of a vault. Each primitive derives its own keys from one of them with
/// its own HKDF label (blind indexes per field, the API-key hash and row seal, the
/// quarantine's X25519 pair), so no key serves two purposes. Zeroed when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Purposes {
    index: Key,
    tokens: Key,
    api_keys: Key,
    quarantine: Key,
    ledger: Key,
    legacy: bool,
}

impl std::fmt::Debug for Purposes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.legacy { "Purposes(<legacy>)" } else { "Purposes(<redacted>)" })
    }
}

impl Purposes {
    /// New random purpose keys (a new vault).
    pub fn random() -> Result<Self, Error> {
        Ok(Self {
            index: Key::random()?,
            tokens: Key::random()?,
            api_keys: Key::random()?,
            quarantine: Key::random()?,
            ledger: Key::random()?,
            legacy: false,
        })
    }

    /// The purpose keys of a vault made before they existed: each is the root key, so what
    /// that vault derived (indexes, tokens, API-key hashes, the quarantine) stays the same.
    pub fn from_legacy_root(root: &Key) -> Self {
        Self {
            index: root.clone(),
            tokens: root.clone(),
            api_keys: root.clone(),
            quarantine: root.clone(),
            ledger: root.clone(),
            legacy: true,
        }
    }

    /// Whether these came from a root key ([`Purposes::from_legacy_root`]): whoever holds
    /// that root also holds the token, API-key and quarantine keys.
    pub fn legacy(&self) -> bool {
        self.legacy
    }

    /// The key blind indexes are derived from ([`crate::BlindIndexKey::derive`]).
    pub fn index(&self) -> &Key {
        &self.index
    }

    /// The card-token (FF1) and deterministic-token key.
    pub fn tokens(&self) -> &Key {
        &self.tokens
    }

    /// The key API-key hashes and row seals are derived from.
    pub fn api_keys(&self) -> &Key {
        &self.api_keys
    }

    /// The key the quarantine's opening key is derived from.
    pub fn quarantine(&self) -> &Key {
        &self.quarantine
    }

    /// The key the ledger's checkpoint-signing key is sealed under (see [`seal_key`]).
    pub fn ledger(&self) -> &Key {
        &self.ledger
    }

    /// The same keys with a new blind-index key (a root rotation: indexes are rebuilt,
    /// so no copy of the old index key finds anything in the new ones). The others are
    /// kept: tokens in apps, API keys and quarantined files keep working.
    pub fn with_new_index(&self) -> Result<Self, Error> {
        Ok(Self { index: Key::random()?, ..self.clone() })
    }
}

/// What one KEK version's row holds: the KEK and the vault's purpose keys.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// The key-encryption key of this version.
    pub kek: Key,
    /// The purpose keys.
    pub purposes: Purposes,
}

/// The format byte of a wrapped keyring (a legacy row is the 32-byte KEK alone).
const KEYRING_V2: u8 = 2;
/// Flag: the token, API-key and quarantine keys are a root key of an earlier custody.
const FROM_LEGACY_ROOT: u8 = 1;
/// Format byte, flags, six keys.
const KEYRING_LEN: usize = 2 + 6 * 32;

/// Wraps KEK `version` and the purpose keys under the root key.
pub fn wrap_keyring(root: &Key, version: u32, ring: &Keyring) -> Result<Vec<u8>, Error> {
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(KEYRING_LEN));
    plain.push(KEYRING_V2);
    plain.push(if ring.purposes.legacy { FROM_LEGACY_ROOT } else { 0 });
    for key in [
        &ring.kek,
        &ring.purposes.index,
        &ring.purposes.tokens,
        &ring.purposes.api_keys,
        &ring.purposes.quarantine,
        &ring.purposes.ledger,
    ] {
        plain.extend_from_slice(key.expose());
    }
    seal_with_nonce(root, &random::<24>()?, &kek_aad(version), &plain)
}

/// Unwraps KEK `version` and the purpose keys (the root itself for a legacy row).
pub fn unwrap_keyring(root: &Key, version: u32, wrapped: &[u8]) -> Result<Keyring, Error> {
    let plain = zeroize::Zeroizing::new(open_raw(root, &kek_aad(version), wrapped)?);
    if plain.len() == 32 {
        let kek = to_key(plain.to_vec())?;
        return Ok(Keyring { kek, purposes: Purposes::from_legacy_root(root) });
    }
    if plain.len() != KEYRING_LEN || plain[0] != KEYRING_V2 {
        return Err(Error::Format);
    }
    let key = |i: usize| to_key(plain[2 + 32 * i..2 + 32 * (i + 1)].to_vec());
    Ok(Keyring {
        kek: key(0)?,
        purposes: Purposes {
            index: key(1)?,
            tokens: key(2)?,
            api_keys: key(3)?,
            quarantine: key(4)?,
            ledger: key(5)?,
            legacy: plain[1] & FROM_LEGACY_ROOT != 0,
        },
    })
}

/// Seals a 32-byte secret key under `key`, for the purpose `label` (the ledger's signing
/// key under the ledger purpose key, say): it opens only with the same key and label.
pub fn seal_key(key: &Key, label: &str, secret: &Key) -> Result<Vec<u8>, Error> {
    seal_with_nonce(key, &random::<24>()?, &secret_aad(label), secret.expose())
}

/// Opens what [`seal_key`] sealed.
pub fn open_key(key: &Key, label: &str, sealed: &[u8]) -> Result<Key, Error> {
    to_key(open_raw(key, &secret_aad(label), sealed)?)
}

fn secret_aad(label: &str) -> Vec<u8> {
    let mut aad = b"custody/sealed-key/v1/".to_vec();
    aad.extend_from_slice(label.as_bytes());
    aad
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

    #[test]
    fn a_keyring_opens_only_under_its_root_and_legacy_rows_keep_the_root() {
        let (root, other) = (Key::random().unwrap(), Key::random().unwrap());
        let ring = Keyring { kek: Key::random().unwrap(), purposes: Purposes::random().unwrap() };
        let wrapped = wrap_keyring(&root, 3, &ring).unwrap();
        let opened = unwrap_keyring(&root, 3, &wrapped).unwrap();
        assert_eq!(opened.kek, ring.kek);
        assert_eq!(opened.purposes, ring.purposes);
        assert!(!opened.purposes.legacy());
        assert_eq!(unwrap_keyring(&other, 3, &wrapped).unwrap_err(), Error::Open);
        assert_eq!(unwrap_keyring(&root, 4, &wrapped).unwrap_err(), Error::Open);
        // Every purpose key differs from the root and from each other.
        let p = &opened.purposes;
        let keys =
            [&root, &opened.kek, p.index(), p.tokens(), p.api_keys(), p.quarantine(), p.ledger()];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // A new index key, the rest kept.
        let next = p.with_new_index().unwrap();
        assert_ne!(next.index(), p.index());
        assert_eq!(next.tokens(), p.tokens());

        // A legacy row (the KEK alone): the purpose keys are the root's, and stay marked
        // legacy when wrapped again under another root with a new index key.
        let legacy = wrap_kek(&root, 1, &ring.kek).unwrap();
        let opened = unwrap_keyring(&root, 1, &legacy).unwrap();
        assert!(opened.purposes.legacy());
        assert_eq!(opened.purposes.tokens(), &root);
        let moved = Keyring {
            kek: opened.kek.clone(),
            purposes: opened.purposes.with_new_index().unwrap(),
        };
        let again = unwrap_keyring(&other, 2, &wrap_keyring(&other, 2, &moved).unwrap()).unwrap();
        assert!(again.purposes.legacy());
        assert_eq!(again.purposes.tokens(), &root, "the old root is still the token key");
        assert_eq!(again.purposes.index(), moved.purposes.index());
        assert_eq!(format!("{:?}", opened.purposes), "Purposes(<legacy>)");
        assert_eq!(format!("{:?}", ring.purposes), "Purposes(<redacted>)");
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_key_and_label() {
        let (key, secret) = (Key::random().unwrap(), Key::random().unwrap());
        let sealed = seal_key(&key, "ledger-signing", &secret).unwrap();
        assert_eq!(open_key(&key, "ledger-signing", &sealed).unwrap(), secret);
        assert_eq!(open_key(&key, "other", &sealed).unwrap_err(), Error::Open);
        assert_eq!(
            open_key(&Key::random().unwrap(), "ledger-signing", &sealed).unwrap_err(),
            Error::Open
        );
    }
}
