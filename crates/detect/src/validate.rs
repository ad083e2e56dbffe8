//! Validators: checksums and issuing rules that separate real identifiers from look-alikes.
//!
//! Each function takes ASCII digits (or the compact form of an identifier) and answers from
//! the published rule, with no context. Tables are kept current on purpose: several peers
//! still miss 2-series Mastercard or reject SSN areas above 772 (see the scanner notes).

/// Luhn (mod 10) over ASCII digits. Non-digits make it fail.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        if !d.is_ascii_digit() {
            return false;
        }
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// A card network, from the issuer identification number (IIN) table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardBrand {
    /// Visa: 4, 13/16/19 digits.
    Visa,
    /// Mastercard: 51–55 and 2221–2720, 16 digits.
    Mastercard,
    /// American Express: 34/37, 15 digits.
    Amex,
    /// Discover: 6011, 644–649, 65 and the 622126–622925 co-brand range.
    Discover,
    /// JCB: 3528–3589.
    Jcb,
    /// Diners Club: 300–305, 3095, 36, 38–39.
    Diners,
    /// China UnionPay: 62.
    UnionPay,
    /// Maestro: 5018, 5020, 5038, 5893, 6304, 6759, 6761–6763.
    Maestro,
    /// Mir: 2200–2204.
    Mir,
}

impl CardBrand {
    /// The stable lower-case name used in reasons (`iin:visa`).
    pub fn as_str(self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Discover => "discover",
            CardBrand::Jcb => "jcb",
            CardBrand::Diners => "diners",
            CardBrand::UnionPay => "unionpay",
            CardBrand::Maestro => "maestro",
            CardBrand::Mir => "mir",
        }
    }
}

/// One row of the IIN table: prefixes from `lo` to `hi` of `width` digits, valid lengths.
struct IinRange {
    lo: u32,
    hi: u32,
    width: usize,
    lengths: &'static [usize],
    brand: CardBrand,
}

// Order matters: narrower co-brand ranges come before the wide ones that contain them.
const IIN_TABLE: &[IinRange] = &[
    IinRange {
        lo: 622_126,
        hi: 622_925,
        width: 6,
        lengths: &[16, 17, 18, 19],
        brand: CardBrand::Discover,
    },
    IinRange { lo: 4, hi: 4, width: 1, lengths: &[13, 16, 19], brand: CardBrand::Visa },
    IinRange { lo: 51, hi: 55, width: 2, lengths: &[16], brand: CardBrand::Mastercard },
    IinRange { lo: 2221, hi: 2720, width: 4, lengths: &[16], brand: CardBrand::Mastercard },
    IinRange { lo: 2200, hi: 2204, width: 4, lengths: &[16, 17, 18, 19], brand: CardBrand::Mir },
    IinRange { lo: 34, hi: 34, width: 2, lengths: &[15], brand: CardBrand::Amex },
    IinRange { lo: 37, hi: 37, width: 2, lengths: &[15], brand: CardBrand::Amex },
    IinRange {
        lo: 6011,
        hi: 6011,
        width: 4,
        lengths: &[16, 17, 18, 19],
        brand: CardBrand::Discover,
    },
    IinRange { lo: 644, hi: 649, width: 3, lengths: &[16, 17, 18, 19], brand: CardBrand::Discover },
    IinRange { lo: 65, hi: 65, width: 2, lengths: &[16, 17, 18, 19], brand: CardBrand::Discover },
    IinRange { lo: 3528, hi: 3589, width: 4, lengths: &[16, 17, 18, 19], brand: CardBrand::Jcb },
    IinRange {
        lo: 300,
        hi: 305,
        width: 3,
        lengths: &[14, 15, 16, 17, 18, 19],
        brand: CardBrand::Diners,
    },
    IinRange {
        lo: 3095,
        hi: 3095,
        width: 4,
        lengths: &[14, 15, 16, 17, 18, 19],
        brand: CardBrand::Diners,
    },
    IinRange {
        lo: 36,
        hi: 36,
        width: 2,
        lengths: &[14, 15, 16, 17, 18, 19],
        brand: CardBrand::Diners,
    },
    IinRange { lo: 38, hi: 39, width: 2, lengths: &[16, 17, 18, 19], brand: CardBrand::Diners },
    IinRange { lo: 62, hi: 62, width: 2, lengths: &[16, 17, 18, 19], brand: CardBrand::UnionPay },
    IinRange {
        lo: 5018,
        hi: 5018,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
    IinRange {
        lo: 5020,
        hi: 5020,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
    IinRange {
        lo: 5038,
        hi: 5038,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
    IinRange {
        lo: 5893,
        hi: 5893,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
    IinRange {
        lo: 6304,
        hi: 6304,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
    IinRange {
        lo: 6759,
        hi: 6759,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
    IinRange {
        lo: 6761,
        hi: 6763,
        width: 4,
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        brand: CardBrand::Maestro,
    },
];

fn prefix_value(digits: &[u8], width: usize) -> Option<u32> {
    if digits.len() < width {
        return None;
    }
    Some(digits[..width].iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// The brand of a card number (ASCII digits), if its prefix and length fit the IIN table.
pub fn card_brand(digits: &[u8]) -> Option<CardBrand> {
    IIN_TABLE.iter().find_map(|row| {
        let p = prefix_value(digits, row.width)?;
        (p >= row.lo && p <= row.hi && row.lengths.contains(&digits.len())).then_some(row.brand)
    })
}

/// Published test numbers of the payment processors (Stripe, Braintree, Adyen, PayPal docs).
/// They pass Luhn and the IIN table but charge nobody.
const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4222222222222",
    "4000056655665556",
    "4000000000000002",
    "4000000000009995",
    "4000000000000077",
    "4917610000000000",
    "4988438843884305",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "5454545454545454",
    "2223003122003222",
    "2222400070000005",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "6011000400000000",
    "3530111333300000",
    "3566002020360505",
    "3566111111111113",
    "30569309025904",
    "38520000023237",
    "36227206271667",
    "36006666333344",
    "6200000000000005",
    "6759649826438453",
    "5019717010103742",
];

/// Whether `digits` is a published test card, or is so repetitive it cannot be an issued one.
pub fn is_test_card(digits: &[u8]) -> bool {
    if TEST_CARDS.iter().any(|t| t.as_bytes() == digits) {
        return true;
    }
    // A real account number is random after the IIN; two distinct digits in the last 12
    // means a placeholder such as 4444 4444 4444 4448.
    let tail = &digits[digits.len().saturating_sub(12)..];
    let mut seen = [false; 10];
    for d in tail {
        seen[usize::from(d - b'0')] = true;
    }
    seen.iter().filter(|s| **s).count() <= 2
}

/// Numbers the Social Security Administration voided after they were printed in ads or
/// samples, and the obvious sequences people use as placeholders.
const SAMPLE_SSNS: &[&str] = &["078051120", "219099999", "457555462", "123456789", "987654320"];

/// Post-2011 SSN rules over 9 ASCII digits: area 001–899 except 666, group ≠ 00,
/// serial ≠ 0000, and not a published sample number.
pub fn is_valid_ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = num(&digits[0..3]);
    let group = num(&digits[3..5]);
    let serial = num(&digits[5..9]);
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !SAMPLE_SSNS.iter().any(|s| s.as_bytes() == digits)
}

/// ITIN rules over 9 ASCII digits: area 9xx, group 50–65, 70–88, 90–92 or 94–99.
pub fn is_valid_itin(digits: &[u8]) -> bool {
    if digits.len() != 9 || digits[0] != b'9' || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let group = num(&digits[3..5]);
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// ABA routing number: the 3-7-1 weighted checksum and a Federal Reserve prefix
/// (00–12 banks, 21–32 thrifts, 61–72 electronic, 80 traveller's cheques).
pub fn is_valid_aba(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let prefix = num(&digits[0..2]);
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) || digits.iter().all(|d| *d == b'0') {
        return false;
    }
    let d: Vec<u32> = digits.iter().map(|c| u32::from(c - b'0')).collect();
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum.is_multiple_of(10)
}

/// IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The registered IBAN length for a two-letter country code.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == country).map(|(_, n)| *n)
}

/// Full IBAN check over the compact upper-case form: country length and mod-97 == 1.
pub fn is_valid_iban(compact: &[u8]) -> bool {
    if compact.len() < 15 || iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    if !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact.iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    // Move the first four characters to the end; letters count as 10..35.
    let mut rem = 0u32;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c - b'A') + 10) % 97;
        }
    }
    rem == 1
}

/// A calendar date check (proleptic Gregorian) with a plausible birth year range.
pub fn is_plausible_birth_date(year: u32, month: u32, day: u32, current_year: u32) -> bool {
    if !(1900..=current_year).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// Regions whose national numbers (with a trunk `0`) custody recognises.
pub(crate) const TRUNK_REGIONS: [(&str, u16); 10] = [
    ("GB", 44),
    ("DE", 49),
    ("FR", 33),
    ("NL", 31),
    ("BE", 32),
    ("IT", 39),
    ("ES", 34),
    ("AT", 43),
    ("IE", 353),
    ("CH", 41),
];

/// A phone number in E.164 form (`+14158372671`) if it is valid in its numbering plan:
/// written with `+` and a country code, as a North American number, or nationally with a
/// trunk `0` in one of the European plans custody knows (UK, DE, FR, NL, BE, IT, ES, AT,
/// IE, CH). Separators (spaces, dashes, dots, parentheses) are ignored.
pub fn phone_e164(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || !trimmed.chars().all(|c| c.is_ascii_digit() || " -.()+/".contains(c)) {
        return None;
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        crate::phone::international(&digits)?;
        return Some(format!("+{digits}"));
    }
    if crate::phone::nanp(&digits).is_some() {
        let national = if digits.len() == 11 { &digits[1..] } else { &digits[..] };
        return Some(format!("+1{national}"));
    }
    let region = crate::phone::national(&digits, &TRUNK_REGIONS)?;
    let (_, code) = TRUNK_REGIONS.iter().find(|(id, _)| *id == region)?;
    let national = if region == "IT" { &digits[..] } else { digits.strip_prefix('0')? };
    Some(format!("+{code}{national}"))
}

fn num(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn luhn_known_answers() {
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b""));
        assert!(!luhn(b"4111-1111"));
    }

    #[test]
    fn brands_from_the_iin_table() {
        assert_eq!(card_brand(b"4111111111111111"), Some(CardBrand::Visa));
        assert_eq!(card_brand(b"4222222222222"), Some(CardBrand::Visa));
        // 2-series Mastercard: the range Presidio and bulk_extractor miss.
        assert_eq!(card_brand(b"2223003122003222"), Some(CardBrand::Mastercard));
        assert_eq!(card_brand(b"2720990000000007"), Some(CardBrand::Mastercard));
        assert_eq!(card_brand(b"2721000000000000"), None);
        assert_eq!(card_brand(b"378282246310005"), Some(CardBrand::Amex));
        assert_eq!(card_brand(b"3782822463100050"), None, "Amex is 15 digits");
        assert_eq!(card_brand(b"6011111111111117"), Some(CardBrand::Discover));
        assert_eq!(card_brand(b"6221260000000000"), Some(CardBrand::Discover));
        assert_eq!(card_brand(b"6200000000000005"), Some(CardBrand::UnionPay));
        assert_eq!(card_brand(b"3530111333300000"), Some(CardBrand::Jcb));
        assert_eq!(card_brand(b"30569309025904"), Some(CardBrand::Diners));
        assert_eq!(card_brand(b"6759649826438453"), Some(CardBrand::Maestro));
        assert_eq!(card_brand(b"9111111111111111"), None);
        assert_eq!(card_brand(b"1234567890123"), None);
    }

    #[test]
    fn test_cards_are_recognised() {
        assert!(is_test_card(b"4111111111111111"));
        assert!(is_test_card(b"4444444444444448"));
        assert!(!is_test_card(b"4539148803436467"));
    }

    #[test]
    fn ssn_rules() {
        assert!(is_valid_ssn(b"123456780"));
        // Areas 773–899 were opened by randomisation in 2011; ClamAV still rejects them.
        assert!(is_valid_ssn(b"773121234"));
        assert!(is_valid_ssn(b"899991234"));
        assert!(!is_valid_ssn(b"900121234"));
        assert!(!is_valid_ssn(b"000121234"));
        assert!(!is_valid_ssn(b"666121234"));
        assert!(!is_valid_ssn(b"123001234"));
        assert!(!is_valid_ssn(b"123450000"));
        assert!(!is_valid_ssn(b"078051120"));
        assert!(!is_valid_ssn(b"12345678"));
    }

    #[test]
    fn itin_rules() {
        assert!(is_valid_itin(b"912701234"));
        assert!(is_valid_itin(b"900501234"));
        assert!(!is_valid_itin(b"912931234"));
        assert!(!is_valid_itin(b"812701234"));
    }

    #[test]
    fn aba_known_answers() {
        assert!(is_valid_aba(b"011000015"));
        assert!(is_valid_aba(b"021000021"));
        assert!(is_valid_aba(b"121000358"));
        assert!(!is_valid_aba(b"021000022"));
        assert!(!is_valid_aba(b"500000005"), "prefix 50 is not assigned");
        assert!(!is_valid_aba(b"000000000"));
    }

    #[test]
    fn iban_known_answers() {
        assert!(is_valid_iban(b"GB82WEST12345698765432"));
        assert!(is_valid_iban(b"DE89370400440532013000"));
        assert!(is_valid_iban(b"FR1420041010050500013M02606"));
        assert!(is_valid_iban(b"NL91ABNA0417164300"));
        assert!(!is_valid_iban(b"GB82WEST12345698765433"));
        assert!(!is_valid_iban(b"DE8937040044053201300"), "wrong length");
        assert!(!is_valid_iban(b"XX82WEST12345698765432"));
    }

    #[test]
    fn phones_in_e164() {
        assert_eq!(phone_e164("(415) 837-2671").as_deref(), Some("+14158372671"));
        assert_eq!(phone_e164("+1 415 837 2671").as_deref(), Some("+14158372671"));
        assert_eq!(phone_e164("020 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(phone_e164("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(phone_e164("123-456-7890"), None);
        assert_eq!(phone_e164("call me"), None);
        assert_eq!(phone_e164(""), None);
    }

    #[test]
    fn birth_dates() {
        assert!(is_plausible_birth_date(1984, 2, 29, 2026));
        assert!(!is_plausible_birth_date(1985, 2, 29, 2026));
        assert!(!is_plausible_birth_date(2030, 1, 1, 2026));
        assert!(!is_plausible_birth_date(1984, 13, 1, 2026));
    }

    fn luhn_complete(mut body: Vec<u8>) -> Vec<u8> {
        for check in b'0'..=b'9' {
            body.push(check);
            if luhn(&body) {
                return body;
            }
            body.pop();
        }
        unreachable!("one check digit always completes a Luhn number")
    }

    proptest! {
        #[test]
        fn luhn_detects_every_single_digit_error(body in proptest::collection::vec(b'0'..=b'9', 11..18), pos in 0usize..19, delta in 1u8..10) {
            let good = luhn_complete(body);
            prop_assert!(luhn(&good));
            let pos = pos % good.len();
            let mut bad = good.clone();
            bad[pos] = b'0' + (bad[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn(&bad));
        }

        #[test]
        fn iban_detects_every_single_character_error(bban in proptest::collection::vec(b'0'..=b'9', 18), pos in 4usize..22, delta in 1u8..10) {
            // Build a valid DE IBAN by computing its check digits.
            let mut probe = b"DE00".to_vec();
            probe.extend(&bban);
            let mut rem = 0u32;
            for &c in probe[4..].iter().chain(b"1314") {
                rem = (rem * 10 + u32::from(c - b'0')) % 97;
            }
            // rem is computed with check digits 00 ("DE" = 13 14, then "00").
            rem = (rem * 100) % 97;
            let check = 98 - rem;
            probe[2] = b'0' + (check / 10) as u8;
            probe[3] = b'0' + (check % 10) as u8;
            prop_assert!(is_valid_iban(&probe), "{}", String::from_utf8_lossy(&probe));
            let mut bad = probe.clone();
            bad[pos] = b'0' + (bad[pos] - b'0' + delta) % 10;
            prop_assert!(!is_valid_iban(&bad));
        }

        #[test]
        fn ssn_validity_matches_the_rules(area in 0u32..1000, group in 0u32..100, serial in 0u32..10000) {
            let s = format!("{area:03}{group:02}{serial:04}");
            let expected = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
                && !SAMPLE_SSNS.contains(&s.as_str());
            prop_assert_eq!(is_valid_ssn(s.as_bytes()), expected);
        }
    }
}
