//! The recovery kit: the root key split into three shares, any two of which rebuild it
//! (Shamir's secret sharing over GF(256), from the `blahaj` crate).
//!
//! A share is written `custody-share-1-<n>-<hex>-<check>`: `n` is its number, `hex` its
//! bytes, and `check` four hex digits of SHA-256 over both, so a mistyped share is refused
//! on its own. Rebuilt keys are checked against a key fingerprint (an HMAC of the key, so
//! it reveals nothing of it) that travels with every share: shares from different kits, or
//! one share twice, never yield a wrong key silently.

use blahaj::{Share, Sharks};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::{Error, Key};

/// Shares needed to rebuild the key.
pub const THRESHOLD: u8 = 2;
/// Shares made.
pub const SHARES: u8 = 3;

fn fingerprint(root: &Key) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(root.expose())
        .expect("HMAC takes any key length");
    mac.update(b"custody/recovery-fingerprint/v1");
    crate::hex(&mac.finalize().into_bytes()[..8])
}

fn check(body: &str) -> String {
    crate::hex(&Sha256::digest(body.as_bytes())[..2])
}

/// Splits `root` into [`SHARES`] share strings, any [`THRESHOLD`] of which rebuild it.
pub fn split(root: &Key) -> Vec<String> {
    let fp = fingerprint(root);
    Sharks(THRESHOLD)
        .dealer(root.expose())
        .take(usize::from(SHARES))
        .map(|share| {
            let bytes = Vec::from(&share);
            let body = format!("custody-share-1-{}-{fp}", crate::hex(&bytes));
            format!("{body}-{}", check(&body))
        })
        .collect()
}

fn parse(text: &str) -> Result<(Share, String), Error> {
    let text = text.trim();
    let (body, given) = text.rsplit_once('-').ok_or(Error::Share)?;
    if check(body) != given.to_ascii_lowercase() {
        return Err(Error::Share);
    }
    let mut parts = body.strip_prefix("custody-share-1-").ok_or(Error::Share)?.split('-');
    let (Some(hex), Some(fp), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::Share);
    };
    if hex.len() % 2 != 0 {
        return Err(Error::Share);
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::Share)?;
    let share = Share::try_from(bytes.as_slice()).map_err(|_| Error::Share)?;
    Ok((share, fp.to_string()))
}

/// Rebuilds the root key from at least [`THRESHOLD`] distinct shares of one kit.
pub fn combine(shares: &[&str]) -> Result<Key, Error> {
    let parsed: Vec<(Share, String)> = shares.iter().map(|s| parse(s)).collect::<Result<_, _>>()?;
    let Some(fp) = parsed.first().map(|(_, fp)| fp.clone()) else {
        return Err(Error::NotEnoughShares);
    };
    if parsed.iter().any(|(_, f)| *f != fp) {
        return Err(Error::Share);
    }
    let shares: Vec<Share> = parsed.into_iter().map(|(s, _)| s).collect();
    let secret = Sharks(THRESHOLD).recover(&shares).map_err(|_| Error::NotEnoughShares)?;
    let bytes: [u8; 32] = secret.try_into().map_err(|_| Error::Share)?;
    let key = Key::from_bytes(bytes);
    if fingerprint(&key) != fp {
        return Err(Error::NotEnoughShares);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_two_of_three_rebuild_the_key_and_one_does_not() {
        let root = Key::random().unwrap();
        let shares = split(&root);
        assert_eq!(shares.len(), 3);
        for (a, b) in [(0, 1), (0, 2), (1, 2), (2, 0)] {
            assert_eq!(combine(&[&shares[a], &shares[b]]).unwrap(), root, "shares {a} and {b}");
        }
        assert_eq!(combine(&[&shares[0], &shares[1], &shares[2]]).unwrap(), root);
        assert_eq!(combine(&[&shares[1]]), Err(Error::NotEnoughShares));
        assert_eq!(
            combine(&[&shares[1], &shares[1]]),
            Err(Error::NotEnoughShares),
            "the same share twice"
        );
        assert_eq!(combine(&[]), Err(Error::NotEnoughShares));
    }

    #[test]
    fn typos_and_mixed_kits_are_refused() {
        let shares = split(&Key::random().unwrap());
        let other = split(&Key::random().unwrap());
        assert_eq!(combine(&[&shares[0], &other[1]]), Err(Error::Share));
        let mut typo = shares[0].clone().into_bytes();
        let at = typo.len() / 2;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(combine(&[&typo, &shares[1]]), Err(Error::Share));
        assert_eq!(combine(&["hello", &shares[1]]), Err(Error::Share));
    }
}
