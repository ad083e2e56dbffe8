//! Format-preserving card tokens with FF1 (NIST SP 800-38G) over AES-256.
//!
//! A card number of `n` digits (12–19) keeps its last four digits. Of the `n - 4` digits
//! before them, all but the last are encrypted with FF1 (radix 10, tweak = the last four
//! digits and the field name); the last is then *chosen*, not encrypted: by default so the
//! whole token fails the Luhn check by exactly one, so neither a scanner nor a person can
//! take it for a real card (PCI tokenisation guidance); on request so it passes. Reversing
//! is the same steps backwards, the chosen digit recomputed to make the real card
//! Luhn-valid again. The encrypted part has at least 7 digits, above FF1's minimum domain
//! of one million.

use aes::Aes256;
use fpe::ff1::{FF1, FlexibleNumeralString};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::key::random;
use crate::{Error, Key};

/// Letters of opaque tokens: Crockford's base32 (no I, L, O, U to misread).
const BASE32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A record id (`rec_` + 26 characters): 48 bits of milliseconds since 1970, then 80
/// random bits, as ULIDs are. Ids made later sort later, so new rows land at the end of
/// the vault's indexes instead of on random pages (fewer pages written per commit). The
/// id tells when a record was made, to the millisecond, and nothing else.
pub fn record_id() -> Result<String, Error> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random::<10>()?);
    Ok(format!("rec_{}", base32(&bytes)))
}

/// A random opaque token (`tok_` + 26 characters, 128 bits): it reveals nothing, and only
/// the vault's mapping leads back to the value.
pub fn random_token() -> Result<String, Error> {
    Ok(format!("tok_{}", base32(&random::<16>()?)))
}

/// A deterministic opaque token: the same value in the same field always gives the same
/// token (for joins), HMAC-SHA256 under a token key, 128 bits.
pub fn deterministic_token(key: &Key, field: &str, normalised: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("HMAC takes any key length");
    mac.update(b"custody/token/v1\0");
    mac.update(field.as_bytes());
    mac.update(b"\0");
    mac.update(normalised.as_bytes());
    format!("tok_{}", base32(&mac.finalize().into_bytes()[..16]))
}

/// A random SSN-shaped token that keeps the last four digits (`9dd-gg-1234`). Not FF1: five
/// free digits are below FF1's minimum domain (see the manual); the vault maps it back. The
/// area is 9xx, which no SSN has, and the group is 01–49, which no ITIN has (ITIN groups are
/// 50–65, 70–88, 90–92 and 94–99), so a token is never mistaken for either. That leaves
/// 4,900 tokens per last four digits: the vault draws again until the token is unused.
pub fn ssn_token(last4: &str) -> Result<String, Error> {
    if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::SsnFormat);
    }
    let n = u32::from_le_bytes(random::<4>()?) % 4_900;
    Ok(format!("9{:02}-{:02}-{last4}", n % 100, n / 100 + 1))
}

/// Tokenises card numbers under one key.
pub struct CardTokenizer {
    ff1: FF1<Aes256>,
    luhn_valid: bool,
}

impl std::fmt::Debug for CardTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardTokenizer(<key redacted>, luhn_valid: {})", self.luhn_valid)
    }
}

/// Luhn sum of ASCII digits, mod 10.
fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 { if v * 2 > 9 { v * 2 - 9 } else { v * 2 } } else { v }
        })
        .sum::<u32>()
        % 10
}

/// Sets `digits[at]` so that the Luhn sum of `digits` is `target` (mod 10).
fn choose_digit(digits: &mut [u8], at: usize, target: u32) {
    for d in b'0'..=b'9' {
        digits[at] = d;
        if luhn_sum(digits) == target {
            return;
        }
    }
    unreachable!("every Luhn position takes each residue for exactly one digit");
}

impl CardTokenizer {
    /// A tokenizer; `luhn_valid` makes tokens that pass Luhn (for legacy systems).
    pub fn new(key: &Key, luhn_valid: bool) -> Self {
        let ff1 = FF1::<Aes256>::new(key.expose(), 10).expect("radix 10 is valid for FF1");
        Self { ff1, luhn_valid }
    }

    fn tweak(field: &str, last4: &[u8]) -> Vec<u8> {
        let mut t = last4.to_vec();
        t.push(0);
        t.extend_from_slice(field.as_bytes());
        t
    }

    fn numerals(digits: &[u8]) -> FlexibleNumeralString {
        FlexibleNumeralString::from(
            digits.iter().map(|d| u16::from(d - b'0')).collect::<Vec<u16>>(),
        )
    }

    fn digits(ns: FlexibleNumeralString) -> Vec<u8> {
        Vec::<u16>::from(ns).into_iter().map(|d| b'0' + d as u8).collect()
    }

    /// The token of a card number (digits only) for `field`.
    pub fn tokenize(&self, field: &str, card: &str) -> Result<String, Error> {
        let digits = card.as_bytes();
        if !(12..=19).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Error::CardFormat);
        }
        let (head, last4) = digits.split_at(digits.len() - 4);
        let free = &head[..head.len() - 1];
        let encrypted = self
            .ff1
            .encrypt(&Self::tweak(field, last4), &Self::numerals(free))
            .map_err(|_| Error::CardFormat)?;
        let mut token = Self::digits(encrypted);
        token.push(b'0');
        token.extend_from_slice(last4);
        let at = head.len() - 1;
        choose_digit(&mut token, at, u32::from(!self.luhn_valid));
        Ok(String::from_utf8(token).expect("ASCII digits"))
    }

    /// The card number behind a token made by [`tokenize`](Self::tokenize).
    pub fn detokenize(&self, field: &str, token: &str) -> Result<String, Error> {
        let digits = token.as_bytes();
        if !(12..=19).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Error::CardFormat);
        }
        let (head, last4) = digits.split_at(digits.len() - 4);
        let free = &head[..head.len() - 1];
        let decrypted = self
            .ff1
            .decrypt(&Self::tweak(field, last4), &Self::numerals(free))
            .map_err(|_| Error::CardFormat)?;
        let mut card = Self::digits(decrypted);
        card.push(b'0');
        card.extend_from_slice(last4);
        let at = head.len() - 1;
        choose_digit(&mut card, at, 0);
        Ok(String::from_utf8(card).expect("ASCII digits"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn record_ids_sort_by_time_and_differ() {
        let a = record_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = record_id().unwrap();
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), 30);
        assert!(a.starts_with("rec_"));
        assert_ne!(record_id().unwrap(), record_id().unwrap());
    }

    /// NIST SP 800-38G FF1 samples 1–3 (AES-128) and 7 (AES-256), radix 10.
    #[test]
    fn ff1_nist_samples() {
        fn hex(s: &str) -> Vec<u8> {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
        }
        let k128 = hex("2B7E151628AED2A6ABF7158809CF4F3C");
        let ff = FF1::<aes::Aes128>::new(&k128, 10).unwrap();
        let pt = CardTokenizer::numerals(b"0123456789");
        assert_eq!(CardTokenizer::digits(ff.encrypt(&[], &pt).unwrap()), b"2433477484");
        let tweak = hex("39383736353433323130");
        assert_eq!(CardTokenizer::digits(ff.encrypt(&tweak, &pt).unwrap()), b"6124200773");
        let k256 = hex("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94");
        let ff = FF1::<Aes256>::new(&k256, 10).unwrap();
        assert_eq!(CardTokenizer::digits(ff.encrypt(&[], &pt).unwrap()), b"6657667009");
        assert_eq!(CardTokenizer::digits(ff.encrypt(&tweak, &pt).unwrap()), b"1001623463");
    }

    fn luhn_complete(mut body: Vec<u8>) -> String {
        body.push(b'0');
        let at = body.len() - 1;
        choose_digit(&mut body, at, 0);
        String::from_utf8(body).unwrap()
    }

    proptest! {
        #[test]
        fn tokens_keep_shape_fail_luhn_and_reverse(body in proptest::collection::vec(b'0'..=b'9', 11..19), legacy in any::<bool>()) {
            let card = luhn_complete(body);
            let t = CardTokenizer::new(&Key::from_bytes([9; 32]), legacy);
            let token = t.tokenize("card_number", &card).unwrap();
            prop_assert_eq!(token.len(), card.len());
            prop_assert_eq!(&token[token.len() - 4..], &card[card.len() - 4..]);
            prop_assert_eq!(luhn_sum(token.as_bytes()) == 0, legacy);
            prop_assert_eq!(t.detokenize("card_number", &token).unwrap(), card.clone());
            // Another field or key gives another token.
            prop_assert_ne!(t.tokenize("other_field", &card).unwrap(), token.clone());
        }
    }

    #[test]
    fn opaque_and_ssn_tokens() {
        let a = random_token().unwrap();
        assert!(a.starts_with("tok_") && a.len() == 4 + 26, "{a}");
        assert_ne!(a, random_token().unwrap());
        let k = Key::from_bytes([5; 32]);
        let d = deterministic_token(&k, "email", "jane@example.com");
        assert_eq!(d, deterministic_token(&k, "email", "jane@example.com"));
        assert_ne!(d, deterministic_token(&k, "phone", "jane@example.com"));
        assert_ne!(d, deterministic_token(&Key::from_bytes([6; 32]), "email", "jane@example.com"));
        for _ in 0..200 {
            let s = ssn_token("6789").unwrap();
            let group: u32 = s[4..6].parse().unwrap();
            assert!(s.starts_with('9') && s.ends_with("-6789") && (1..=49).contains(&group), "{s}");
        }
        assert!(ssn_token("67a9").is_err());
        assert_eq!(base32(&[0xFF]), "ZW");
    }

    #[test]
    fn bad_input_is_refused() {
        let t = CardTokenizer::new(&Key::from_bytes([9; 32]), false);
        assert_eq!(t.tokenize("f", "4111"), Err(Error::CardFormat));
        assert_eq!(t.tokenize("f", "4111-1111-1111-1111"), Err(Error::CardFormat));
        assert!(!format!("{t:?}").contains('9'));
    }
}
