//! The root key sealed under a passphrase: Argon2id (RFC 9106) derives a key-encryption
//! key from the passphrase and a random salt; XChaCha20-Poly1305 seals the root key with
//! the parameters as associated data, so they cannot be weakened without detection.

use argon2::{Algorithm, Argon2, Params, Version};

use crate::envelope::{open_raw, seal_with_nonce};
use crate::key::random;
use crate::{Error, Key};

/// Argon2id cost parameters, stored beside the sealed key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
    fn default() -> Self {
        Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 4 }
    }
}

/// A root key sealed under a passphrase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassphraseSeal {
    /// The cost parameters.
    pub params: Argon2Params,
    /// The random salt.
    pub salt: [u8; 16],
    /// The sealed root key (an envelope).
    pub sealed: Vec<u8>,
}

fn kek(passphrase: &[u8], salt: &[u8; 16], p: Argon2Params) -> Result<Key, Error> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| Error::Params(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut out)
        .map_err(|e| Error::Params(e.to_string()))?;
    Ok(Key::from_bytes(out))
}

fn aad(p: Argon2Params, salt: &[u8; 16]) -> Vec<u8> {
    let mut aad = b"custody/root-seal/v1".to_vec();
    for v in [p.memory_kib, p.iterations, p.parallelism] {
        aad.extend_from_slice(&v.to_be_bytes());
    }
    aad.extend_from_slice(salt);
    aad
}

impl PassphraseSeal {
    /// Seals `root` under `passphrase`.
    pub fn seal(root: &Key, passphrase: &[u8], params: Argon2Params) -> Result<Self, Error> {
        let salt = random::<16>()?;
        let kek = kek(passphrase, &salt, params)?;
        let sealed = seal_with_nonce(&kek, &random::<24>()?, &aad(params, &salt), root.expose())?;
        Ok(Self { params, salt, sealed })
    }

    /// Opens the seal; a wrong passphrase (or altered parameters) is [`Error::WrongPassphrase`].
    pub fn open(&self, passphrase: &[u8]) -> Result<Key, Error> {
        let kek = kek(passphrase, &self.salt, self.params)?;
        // The opened root is zeroed in the buffer it was opened into (review item 20).
        let bytes = zeroize::Zeroizing::new(
            open_raw(&kek, &aad(self.params, &self.salt), &self.sealed)
                .map_err(|_| Error::WrongPassphrase)?,
        );
        let root: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::Format)?;
        Ok(Key::from_bytes(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters: the tests check the construction, not the cost.
    const FAST: Argon2Params = Argon2Params { memory_kib: 256, iterations: 1, parallelism: 1 };

    #[test]
    fn right_passphrase_opens_wrong_one_does_not() {
        let root = Key::random().unwrap();
        let seal = PassphraseSeal::seal(&root, b"correct horse battery staple", FAST).unwrap();
        assert_eq!(seal.open(b"correct horse battery staple").unwrap(), root);
        assert_eq!(seal.open(b"correct horse battery stapler"), Err(Error::WrongPassphrase));
        let mut weakened = seal.clone();
        weakened.params.iterations = 2;
        assert_eq!(weakened.open(b"correct horse battery staple"), Err(Error::WrongPassphrase));
    }

    /// RFC 9106 §5.3 Argon2id test vector (version 0x13, 32 KiB, 3 passes, 4 lanes, with
    /// secret and associated data) through the argon2 crate's full API.
    #[test]
    fn argon2id_rfc9106_known_answer() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4; 12]).unwrap())
            .build()
            .unwrap();
        let ctx =
            Argon2::new_with_secret(&[3; 8], Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = [0u8; 32];
        ctx.hash_password_into(&[1; 32], &[2; 16], &mut out).unwrap();
        assert_eq!(
            crate::hex(&out),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }
}
