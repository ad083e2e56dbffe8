//! Whole files sealed to a public key: the quarantine's format.
//!
//! Quarantining must work without the passphrase (a scan finds a spreadsheet of card numbers
//! at night, the file is moved away at once), while reading it back must need the unsealed
//! vault. So files are sealed to an X25519 public key kept in the data directory; its secret
//! half is derived from the root key and exists only while the vault is unsealed.
//!
//! The construction follows age's (X25519 recipient, HKDF, chunked ChaCha20-Poly1305 STREAM);
//! the `age` crate itself is on the previous RustCrypto generation, so it is not used here.
//!
//! ```text
//! "custody-sealed-file v1\n"   magic (23 bytes)
//! ephemeral public key         32 bytes, fresh per file
//! chunk*                       64 KiB of plaintext each (the last may be shorter, or
//!                              empty), sealed with XChaCha20-Poly1305: ciphertext ‖ tag
//! ```
//!
//! The payload key is HKDF-SHA256(salt = ephemeral ‖ recipient, ikm = X25519 shared secret,
//! info = `custody/sealed-file/v1`). Chunk *i* uses the nonce `0¹⁵ ‖ i (8 bytes, big endian) ‖
//! last (1 byte: 1 on the final chunk)`: reordered, dropped, duplicated or truncated chunks
//! fail to open, and so does a file cut at a chunk boundary (no final flag).
//!
//! [`open`] writes each chunk as soon as it is authenticated, so a damaged file can leave a
//! partial plaintext behind before the error: write to a temporary file and keep it only
//! when `open` succeeds.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use crate::key::random;
use crate::{Error, Key};

/// The first bytes of every sealed file.
pub const MAGIC: &[u8] = b"custody-sealed-file v1\n";
/// Plaintext bytes per chunk.
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

/// The public key files are sealed to (safe to store and show).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealingKey([u8; 32]);

impl SealingKey {
    /// From its 32 bytes (as stored).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its 32 bytes.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

/// The secret half: derived from the root key, zeroed on drop, never printed.
pub struct OpeningKey(StaticSecret);

impl OpeningKey {
    /// The quarantine key of an installation: HKDF-SHA256 of the root key with its own
    /// label, so it needs no storage of its own and the recovery kit recovers it too.
    pub fn from_root(root: &Key) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"custody-sealed-file-salt-v1"), root.expose());
        let mut bytes = [0u8; 32];
        hk.expand(b"custody/quarantine/x25519/v1", &mut bytes)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let secret = StaticSecret::from(bytes);
        bytes.zeroize();
        Self(secret)
    }

    /// The public key files are sealed to.
    pub fn sealing_key(&self) -> SealingKey {
        SealingKey(PublicKey::from(&self.0).to_bytes())
    }
}

impl std::fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpeningKey(<redacted>)")
    }
}

fn payload_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> Key {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut bytes = [0u8; 32];
    hk.expand(b"custody/sealed-file/v1", &mut bytes)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Key::from_bytes(bytes)
}

fn nonce(counter: u64, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[15..23].copy_from_slice(&counter.to_be_bytes());
    n[23] = u8::from(last);
    n.into()
}

/// Why sealing or opening a file failed.
#[derive(Debug)]
pub enum FileError {
    /// Reading the input or writing the output failed.
    Io(io::Error),
    /// The cryptography refused: not a sealed file, the wrong key, or damaged.
    Crypto(Error),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "{e}"),
            FileError::Crypto(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io(e) => Some(e),
            FileError::Crypto(e) => Some(e),
        }
    }
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        FileError::Io(e)
    }
}

impl From<Error> for FileError {
    fn from(e: Error) -> Self {
        FileError::Crypto(e)
    }
}

/// Reads `input` to its end and writes it sealed to `to` into `output`. Returns the
/// plaintext length. Memory use is one chunk.
pub fn seal(
    to: SealingKey,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<u64, FileError> {
    let ephemeral = StaticSecret::from(random::<32>()?);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(to.0));
    if !shared.was_contributory() {
        return Err(Error::Format.into());
    }
    let key = payload_key(shared.as_bytes(), &ephemeral_public, &to.0);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    output.write_all(MAGIC)?;
    output.write_all(&ephemeral_public)?;

    let mut buf = Vec::with_capacity(CHUNK + TAG);
    let mut next = Vec::with_capacity(CHUNK);
    fill(input, &mut buf, CHUNK)?;
    let mut counter = 0u64;
    let mut total = 0u64;
    loop {
        // Look one chunk ahead: a chunk is the last when nothing follows it.
        next.clear();
        if buf.len() == CHUNK {
            fill(input, &mut next, CHUNK)?;
        }
        let last = next.is_empty();
        total += buf.len() as u64;
        cipher.encrypt_in_place(&nonce(counter, last), b"", &mut buf).map_err(|_| Error::Format)?;
        output.write_all(&buf)?;
        buf.zeroize();
        buf.clear();
        if last {
            break;
        }
        std::mem::swap(&mut buf, &mut next);
        counter = counter.checked_add(1).ok_or(Error::Format)?;
    }
    output.flush()?;
    Ok(total)
}

/// Reads a sealed file from `input`, checks every chunk and writes the plaintext to
/// `output`. Returns the plaintext length. See the module note on partial output.
pub fn open(
    key: &OpeningKey,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<u64, FileError> {
    let mut header = [0u8; 23 + 32];
    input.read_exact(&mut header).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FileError::Crypto(Error::Format),
        _ => FileError::Io(e),
    })?;
    if &header[..MAGIC.len()] != MAGIC {
        return Err(Error::Format.into());
    }
    let ephemeral: [u8; 32] = header[MAGIC.len()..].try_into().expect("32 bytes");
    let shared = key.0.diffie_hellman(&PublicKey::from(ephemeral));
    if !shared.was_contributory() {
        return Err(Error::Open.into());
    }
    let recipient = key.sealing_key().0;
    let payload = payload_key(shared.as_bytes(), &ephemeral, &recipient);
    let cipher = XChaCha20Poly1305::new(payload.expose().into());

    let mut buf = Vec::with_capacity(CHUNK + TAG);
    let mut next = Vec::with_capacity(CHUNK + TAG);
    fill(input, &mut buf, CHUNK + TAG)?;
    let mut counter = 0u64;
    let mut total = 0u64;
    loop {
        next.clear();
        if buf.len() == CHUNK + TAG {
            fill(input, &mut next, CHUNK + TAG)?;
        }
        let last = next.is_empty();
        if buf.len() < TAG {
            return Err(Error::Open.into());
        }
        cipher.decrypt_in_place(&nonce(counter, last), b"", &mut buf).map_err(|_| Error::Open)?;
        output.write_all(&buf)?;
        total += buf.len() as u64;
        buf.zeroize();
        buf.clear();
        if last {
            break;
        }
        std::mem::swap(&mut buf, &mut next);
        counter = counter.checked_add(1).ok_or(Error::Open)?;
    }
    output.flush()?;
    Ok(total)
}

/// Reads until `buf` holds `want` bytes or the input ends.
fn fill(input: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let start = buf.len();
    input.take((want - start) as u64).read_to_end(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(to: SealingKey, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(seal(to, &mut &plain[..], &mut out).unwrap(), plain.len() as u64);
        out
    }

    fn opened(key: &OpeningKey, sealed: &[u8]) -> Result<Vec<u8>, FileError> {
        let mut out = Vec::new();
        open(key, &mut &sealed[..], &mut out).map(|_| out)
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let key = OpeningKey::from_root(&Key::random().unwrap());
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let s = sealed(key.sealing_key(), &plain);
            assert_eq!(s.len(), MAGIC.len() + 32 + len + TAG * len.div_ceil(CHUNK).max(1));
            assert_eq!(opened(&key, &s).unwrap(), plain, "length {len}");
        }
    }

    #[test]
    fn the_key_is_stable_for_a_root_and_differs_between_roots() {
        let root = Key::from_bytes([7; 32]);
        assert_eq!(
            OpeningKey::from_root(&root).sealing_key(),
            OpeningKey::from_root(&root).sealing_key()
        );
        assert_ne!(
            OpeningKey::from_root(&root).sealing_key(),
            OpeningKey::from_root(&Key::from_bytes([8; 32])).sealing_key()
        );
        assert_eq!(format!("{:?}", OpeningKey::from_root(&root)), "OpeningKey(<redacted>)");
    }

    #[test]
    fn damage_of_any_kind_is_refused() {
        let key = OpeningKey::from_root(&Key::random().unwrap());
        let plain = vec![b'x'; 2 * CHUNK + 10];
        let s = sealed(key.sealing_key(), &plain);
        let header = MAGIC.len() + 32;
        let chunk = CHUNK + TAG;

        let other = OpeningKey::from_root(&Key::random().unwrap());
        assert!(matches!(opened(&other, &s), Err(FileError::Crypto(Error::Open))));

        let mut flipped = s.clone();
        flipped[header + 5] ^= 1;
        assert!(matches!(opened(&key, &flipped), Err(FileError::Crypto(Error::Open))));

        // Cut at a chunk boundary: the remaining chunk was not sealed as the last.
        let cut = &s[..header + chunk];
        assert!(matches!(opened(&key, cut), Err(FileError::Crypto(Error::Open))));
        // Cut inside a chunk, or inside the header.
        assert!(opened(&key, &s[..s.len() - 3]).is_err());
        assert!(matches!(opened(&key, &s[..20]), Err(FileError::Crypto(Error::Format))));

        // Chunks swapped.
        let mut swapped = s[..header].to_vec();
        swapped.extend_from_slice(&s[header + chunk..header + 2 * chunk]);
        swapped.extend_from_slice(&s[header..header + chunk]);
        swapped.extend_from_slice(&s[header + 2 * chunk..]);
        assert!(matches!(opened(&key, &swapped), Err(FileError::Crypto(Error::Open))));

        // Not a sealed file at all.
        assert!(matches!(
            opened(&key, b"plain text that is long enough to fill a header........"),
            Err(FileError::Crypto(Error::Format))
        ));
    }

    #[test]
    fn two_seals_of_one_file_differ() {
        let key = OpeningKey::from_root(&Key::random().unwrap());
        assert_ne!(sealed(key.sealing_key(), b"same"), sealed(key.sealing_key(), b"same"));
    }
}
