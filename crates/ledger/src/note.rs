//! Checkpoints as C2SP signed notes, signed with Ed25519.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//!
//! — <origin> <base64(key id ‖ signature)>
//! ```
//!
//! The key id is the first four bytes of SHA-256(origin ‖ "\n" ‖ 0x01 ‖ public key); the
//! signature is Ed25519 over the note's text (the first three lines and their newlines).
//! The verifier key is written `<origin>+<key id, hex>+<base64(0x01 ‖ public key)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::merkle::Hash;

/// Ed25519's algorithm byte in C2SP note keys.
const ALG_ED25519: u8 = 0x01;

/// A signed tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name.
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// Root hash of the tree.
    pub root: Hash,
    /// The full signed note text.
    pub note: String,
}

/// The signing half of the ledger's key. Never printed.
pub struct NoteSigner {
    origin: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({}, <redacted>)", self.origin)
    }
}

/// The public half: verifies checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    origin: String,
    key: VerifyingKey,
}

fn key_id(origin: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let digest: [u8; 32] = h.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

impl NoteSigner {
    /// A signer for `origin` from a 32-byte Ed25519 seed.
    pub fn new(origin: impl Into<String>, seed: [u8; 32]) -> Self {
        Self { origin: origin.into(), key: SigningKey::from_bytes(&seed) }
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { origin: self.origin.clone(), key: self.key.verifying_key() }
    }

    /// Signs a checkpoint of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: &Hash) -> Checkpoint {
        let text = body(&self.origin, size, root);
        let signature = self.key.sign(text.as_bytes()).to_bytes();
        let public = self.key.verifying_key().to_bytes();
        let mut sig = key_id(&self.origin, &public).to_vec();
        sig.extend_from_slice(&signature);
        let note = format!("{text}\n\u{2014} {} {}\n", self.origin, B64.encode(sig));
        Checkpoint { origin: self.origin.clone(), size, root: *root, note }
    }
}

impl NoteVerifier {
    /// The C2SP verifier key string.
    pub fn to_key_string(&self) -> String {
        let public = self.key.to_bytes();
        let id = crate::hex(&key_id(&self.origin, &public));
        let mut data = vec![ALG_ED25519];
        data.extend_from_slice(&public);
        format!("{}+{id}+{}", self.origin, B64.encode(data))
    }

    /// Parses a verifier key string.
    pub fn from_key_string(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Checkpoint(format!("bad verifier key: {why}"));
        // `name+id+data`: the name has no `+`, the base64 data may.
        let mut parts = s.trim().splitn(3, '+');
        let origin = parts.next().ok_or_else(|| bad("no name"))?;
        let id = parts.next().ok_or_else(|| bad("no key id"))?;
        let data = parts.next().ok_or_else(|| bad("no key data"))?;
        let data = B64.decode(data).map_err(|_| bad("key data is not base64"))?;
        if data.len() != 33 || data[0] != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let public: [u8; 32] = data[1..].try_into().map_err(|_| bad("wrong length"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid point"))?;
        let expected = crate::hex(&key_id(origin, &public));
        if expected != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(Self { origin: origin.to_string(), key })
    }

    /// The log name this key signs for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Parses a note and checks its signature.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, Error> {
        let bad = |why: &str| Error::Checkpoint(why.to_string());
        let (text, sigs) =
            note.split_once("\n\n").ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = format!("{text}\n");
        let mut lines = text.lines();
        let origin = lines.next().ok_or_else(|| bad("no origin line"))?;
        let size: u64 =
            lines.next().and_then(|l| l.parse().ok()).ok_or_else(|| bad("no tree size line"))?;
        let root: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("no root hash line"))?;
        if origin != self.origin {
            return Err(bad("the checkpoint is for another log"));
        }
        let public = self.key.to_bytes();
        let id = key_id(&self.origin, &public);
        let prefix = format!("\u{2014} {} ", self.origin);
        for line in sigs.lines() {
            let Some(encoded) = line.strip_prefix(&prefix) else { continue };
            let Ok(sig) = B64.decode(encoded) else { continue };
            if sig.len() != 68 || sig[..4] != id {
                continue;
            }
            let signature =
                ed25519_dalek::Signature::from_bytes(sig[4..].try_into().expect("64 bytes"));
            return match self.key.verify(text.as_bytes(), &signature) {
                Ok(()) => Ok(Checkpoint {
                    origin: origin.to_string(),
                    size,
                    root,
                    note: note.to_string(),
                }),
                Err(_) => Err(bad(
                    "the signature does not verify: the note was altered or signed by another key",
                )),
            };
        }
        Err(bad("no signature by this log's key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let signer = NoteSigner::new("custody.example/ledger", [42; 32]);
        let cp = signer.sign(1234, &[9; 32]);
        assert!(cp.note.starts_with("custody.example/ledger\n1234\n"));
        assert!(cp.note.contains("\n\n\u{2014} custody.example/ledger "));
        let verifier = NoteVerifier::from_key_string(&signer.verifier().to_key_string()).unwrap();
        assert_eq!(verifier.verify(&cp.note).unwrap(), cp);
        // Any change to the text breaks the signature.
        let forged = cp.note.replacen("1234", "1235", 1);
        assert!(verifier.verify(&forged).is_err());
        // Another key does not verify it.
        let other = NoteSigner::new("custody.example/ledger", [43; 32]).verifier();
        assert!(other.verify(&cp.note).is_err());
        assert!(!format!("{signer:?}").contains("42"));
    }

    #[test]
    fn ed25519_rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1: empty message.
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(
            key.verifying_key().to_bytes(),
            hex::<32>("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = key.sign(b"").to_bytes();
        assert_eq!(
            sig,
            hex::<64>(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            )
        );
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }
}
