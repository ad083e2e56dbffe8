//! Check-digit and validity rules, written from the published specifications.
//!
//! This module is deliberately independent of the detector: it is the ground truth the detector
//! is measured against, so sharing code would let one bug hide itself on both sides.
//!
//! - Luhn: ISO/IEC 7812-1 Annex B.
//! - IBAN: ISO 13616-1 (mod 97-10 of ISO 7064), per-country lengths from the SWIFT IBAN registry.
//! - ABA routing numbers: the ABA checksum with weights 3, 7, 1 and the Federal Reserve prefix
//!   ranges 01–12 and 21–32.
//! - SSN: SSA rules after the June 2011 randomisation (no area 000, 666 or 900–999, no group 00,
//!   no serial 0000) plus the well-known published sample numbers.
//! - National BBAN keys used to make IBANs look real: French RIB key, Spanish "DC", Italian CIN,
//!   Belgian mod-97, Dutch "elfproef".

/// The Luhn check digit (0–9) for `payload`, the ASCII digits that precede it.
///
/// # Panics
///
/// Panics in debug builds if `payload` holds a byte that is not an ASCII digit.
pub fn luhn_check_digit(payload: &[u8]) -> u8 {
    let mut sum = 0u32;
    // The rightmost payload digit sits next to the check digit, so it is the first one doubled.
    for (i, &c) in payload.iter().rev().enumerate() {
        debug_assert!(c.is_ascii_digit());
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    ((10 - sum % 10) % 10) as u8
}

/// Whether `number` passes the Luhn check. Spaces and dashes are ignored; any other non-digit,
/// or fewer than two digits, makes it invalid.
pub fn luhn_valid(number: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for c in number.bytes().rev() {
        match c {
            b'0'..=b'9' => {
                let mut d = u32::from(c - b'0');
                if n % 2 == 1 {
                    d *= 2;
                    if d > 9 {
                        d -= 9;
                    }
                }
                sum += d;
                n += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    n >= 2 && sum.is_multiple_of(10)
}

/// IBAN lengths (country code, total length) for the countries this generator plants.
pub const IBAN_LENGTHS: [(&str, usize); 10] = [
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("DE", 22),
    ("ES", 24),
    ("FR", 27),
    ("GB", 22),
    ("IE", 22),
    ("IT", 27),
    ("NL", 18),
];

/// The IBAN length for `country`, if it is one of [`IBAN_LENGTHS`].
pub fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS.iter().find(|(c, _)| *c == country).map(|&(_, len)| len)
}

/// Folds one IBAN character into a running mod-97 remainder (letters count as 10–35).
fn mod97_push(r: u32, c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((r * 10 + u32::from(c - b'0')) % 97),
        b'A'..=b'Z' => Some((r * 100 + u32::from(c - b'A') + 10) % 97),
        _ => None,
    }
}

/// The two IBAN check digits (2–98) for `country` (two uppercase letters) and `bban`
/// (uppercase letters and digits).
///
/// # Panics
///
/// Panics if `country` or `bban` holds a character other than `A`–`Z` or `0`–`9`.
pub fn iban_check_digits(country: &str, bban: &str) -> u8 {
    let mut r = 0u32;
    for &c in bban.as_bytes().iter().chain(country.as_bytes()).chain(b"00") {
        r = mod97_push(r, c).expect("IBAN parts are uppercase alphanumeric");
    }
    (98 - r) as u8
}

/// Whether `iban` (compact, or grouped with single spaces) is a valid IBAN of one of the
/// countries in [`IBAN_LENGTHS`]: right length, uppercase alphanumeric, mod 97 equal to 1.
pub fn iban_valid(iban: &str) -> bool {
    let compact: Vec<u8> = iban.bytes().filter(|&b| b != b' ').collect();
    if compact.len() < 5 {
        return false;
    }
    let Ok(country) = std::str::from_utf8(&compact[..2]) else {
        return false;
    };
    if iban_length(country) != Some(compact.len()) || !compact[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let mut r = 0u32;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        match mod97_push(r, c) {
            Some(next) => r = next,
            None => return false,
        }
    }
    r == 1
}

/// The ninth digit of an ABA routing number whose first eight ASCII digits are `first8`.
///
/// # Panics
///
/// Panics if `first8` is shorter than eight bytes; debug builds also check they are digits.
pub fn aba_check_digit(first8: &[u8]) -> u8 {
    const WEIGHTS: [u32; 8] = [3, 7, 1, 3, 7, 1, 3, 7];
    let sum: u32 = first8[..8]
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| {
            debug_assert!(c.is_ascii_digit());
            u32::from(c - b'0') * w
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether `s` is nine ASCII digits forming a valid ABA routing number with a Federal Reserve
/// prefix (01–12 or 21–32).
pub fn aba_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 9 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let prefix = (b[0] - b'0') * 10 + (b[1] - b'0');
    matches!(prefix, 1..=12 | 21..=32) && aba_check_digit(&b[..8]) == b[8] - b'0'
}

/// Published sample SSNs that were never issued or are widely misused, as nine digits.
pub const SSN_SAMPLE_NUMBERS: [&str; 4] = ["078051120", "219099999", "457555462", "123456789"];

/// Whether `s` (`AAA-GG-SSSS`, `AAA GG SSSS` or nine bare digits) is a valid post-2011 SSN.
pub fn ssn_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let digits: [u8; 9] = match b.len() {
        9 => {
            let mut d = [0u8; 9];
            d.copy_from_slice(b);
            d
        }
        11 if (b[3] == b'-' && b[6] == b'-') || (b[3] == b' ' && b[6] == b' ') => {
            let mut d = [0u8; 9];
            d[..3].copy_from_slice(&b[..3]);
            d[3..5].copy_from_slice(&b[4..6]);
            d[5..].copy_from_slice(&b[7..]);
            d
        }
        _ => return false,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: &[u8]| r.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
    let (area, group, serial) = (num(&digits[..3]), num(&digits[3..5]), num(&digits[5..]));
    let sample = SSN_SAMPLE_NUMBERS.iter().any(|s| s.as_bytes() == digits);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !sample
}

/// Remainder of a decimal ASCII string modulo `m`.
fn decimal_mod(digits: &[u8], m: u64) -> u64 {
    digits.iter().fold(0u64, |r, &c| (r * 10 + u64::from(c - b'0')) % m)
}

/// French RIB key: `97 - ((89*bank + 15*branch + 3*account) mod 97)`, numeric account only.
pub(crate) fn fr_rib_key(bank: &[u8], branch: &[u8], account: &[u8]) -> u8 {
    let r =
        (89 * decimal_mod(bank, 97) + 15 * decimal_mod(branch, 97) + 3 * decimal_mod(account, 97))
            % 97;
    (97 - r) as u8
}

/// One Spanish "dígito de control" over ten digits.
pub(crate) fn es_control_digit(ten: &[u8]) -> u8 {
    const W: [u32; 10] = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6];
    let s: u32 = ten.iter().zip(W).map(|(&c, w)| u32::from(c - b'0') * w).sum();
    match 11 - s % 11 {
        11 => 0,
        10 => 1,
        d => d as u8,
    }
}

/// The Italian CIN letter over ABI + CAB + account (22 characters, digits or uppercase).
pub(crate) fn it_cin(chars: &[u8]) -> u8 {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let mut sum = 0u32;
    for (i, &c) in chars.iter().enumerate() {
        let v = if c.is_ascii_digit() { usize::from(c - b'0') } else { usize::from(c - b'A') };
        // Positions are counted from 1, so index 0 is an "odd" position.
        sum += if i % 2 == 0 { ODD[v] } else { v as u32 };
    }
    b'A' + (sum % 26) as u8
}

/// The Belgian account check: the first ten digits mod 97, with 0 written as 97.
pub(crate) fn be_check(ten: &[u8]) -> u8 {
    match decimal_mod(ten, 97) {
        0 => 97,
        r => r as u8,
    }
}

/// Whether ten digits pass the Dutch "elfproef" (weights 10..1, sum divisible by 11).
pub(crate) fn nl_elfproef(ten: &[u8]) -> bool {
    let s: u32 = ten.iter().zip((1..=10u32).rev()).map(|(&c, w)| u32::from(c - b'0') * w).sum();
    s.is_multiple_of(11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_vectors() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert_eq!(luhn_check_digit(b"7992739871"), 3);
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(luhn_valid("3782-822463-10005"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("4111x1111"));
        for body in ["411111111111111", "37828224631000", "601111111111111"] {
            let check = luhn_check_digit(body.as_bytes());
            assert!(luhn_valid(&format!("{body}{check}")));
        }
    }

    #[test]
    fn iban_known_vectors() {
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("FR1420041010050500013M02606"));
        assert!(iban_valid("FR76 3000 6000 0112 3456 7890 189"));
        assert!(iban_valid("NL91ABNA0417164300"));
        assert!(iban_valid("BE68539007547034"));
        assert!(iban_valid("IT60X0542811101000000123456"));
        assert!(iban_valid("ES9121000418450200051332"));
        assert!(iban_valid("AT611904300234573201"));
        assert!(iban_valid("CH9300762011623852957"));
        assert!(iban_valid("IE29AIBK93115212345678"));
        assert!(!iban_valid("GB83WEST12345698765432"));
        assert!(!iban_valid("GB82WEST1234569876543"));
        assert_eq!(iban_check_digits("GB", "WEST12345698765432"), 82);
        assert_eq!(iban_check_digits("DE", "370400440532013000"), 89);
    }

    #[test]
    fn national_keys_known_vectors() {
        // FR7630006000011234567890189: bank 30006, branch 00001, account 12345678901, key 89.
        assert_eq!(fr_rib_key(b"30006", b"00001", b"12345678901"), 89);
        // FR1420041010050500013M02606 with its letter M transliterated to 4 (RIB table): key 06.
        assert_eq!(fr_rib_key(b"20041", b"01005", b"05000134026"), 6);
        // ES9121000418450200051332: bank 2100, branch 0418, DC 45, account 0200051332.
        assert_eq!(es_control_digit(b"0021000418"), 4);
        assert_eq!(es_control_digit(b"0200051332"), 5);
        // IT60X0542811101000000123456: CIN X.
        assert_eq!(it_cin(b"0542811101000000123456"), b'X');
        // BE68539007547034: 5390075470 mod 97 = 34.
        assert_eq!(be_check(b"5390075470"), 34);
        assert!(nl_elfproef(b"0417164300"));
    }

    #[test]
    fn aba_known_vectors() {
        assert!(aba_valid("011000015"));
        assert!(aba_valid("021000021"));
        assert!(aba_valid("121000248"));
        assert!(!aba_valid("011000016"));
        assert!(!aba_valid("991000019"));
        assert_eq!(aba_check_digit(b"01100001"), 5);
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_valid("773-12-3456"));
        assert!(ssn_valid("899 01 0001"));
        assert!(ssn_valid("001010001"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "078-05-1120",
            "219-09-9999",
            "457-55-5462",
            "123-45-6789",
            "123456789",
            "12-345-6789",
            "1234-5-6789",
        ] {
            assert!(!ssn_valid(bad), "{bad}");
        }
    }
}
