//! Lower-case hex, the one codec for keys and hashes written as text.

use std::fmt::Write as _;

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Decodes lower- or upper-case hex; `None` if `text` is not whole bytes of hex. Never
/// slices inside a character, so damaged text is `None`, not a panic.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A 32-byte key written as hex (surrounding white space allowed).
pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    decode(text.trim())?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode("00ABff").unwrap(), [0x00, 0xab, 0xff]);
        for bad in ["abc", "zz", "é0", "0 "] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert_eq!(decode_key(&format!(" {}\n", "11".repeat(32))), Some([0x11; 32]));
        assert_eq!(decode_key("11"), None);
    }
}
