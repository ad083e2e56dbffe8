//! Constructors for planted values and hard negatives, built from the specs in
//! [`crate::checks`]. Every function appends to a caller-owned `String` so the hot paths reuse
//! one buffer.

use std::fmt::Write as _;

use crate::checks;
use crate::rng::Rng;
use crate::words;

/// Well-known processor test numbers; planted with `"test_card": true`.
pub(crate) const TEST_CARDS: [&str; 11] = [
    "4111111111111111",
    "4242424242424242",
    "5555555555554444",
    "5105105105105100",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "3530111333300000",
    "2223003122003222",
    "4000056655665556",
    "4012888888881881",
];

/// Card brands and their issuer prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Brand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Jcb,
    Diners,
    UnionPay,
    Maestro,
}

impl Brand {
    /// A brand, weighted roughly like a small US shop's mix.
    pub(crate) fn random(r: &mut Rng) -> Brand {
        match r.below(100) {
            0..=34 => Brand::Visa,
            35..=64 => Brand::Mastercard,
            65..=74 => Brand::Amex,
            75..=82 => Brand::Discover,
            83..=87 => Brand::Jcb,
            88..=91 => Brand::Diners,
            92..=95 => Brand::UnionPay,
            _ => Brand::Maestro,
        }
    }

    /// How staff would write the brand in a note.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Brand::Visa => "Visa",
            Brand::Mastercard => "Mastercard",
            Brand::Amex => "Amex",
            Brand::Discover => "Discover",
            Brand::Jcb => "JCB",
            Brand::Diners => "Diners Club",
            Brand::UnionPay => "UnionPay",
            Brand::Maestro => "Maestro",
        }
    }

    fn of_test_card(digits: &str) -> Brand {
        match digits.as_bytes()[0] {
            b'4' => Brand::Visa,
            b'3' if digits.len() == 15 => Brand::Amex,
            b'3' => Brand::Jcb,
            b'6' => Brand::Discover,
            _ => Brand::Mastercard,
        }
    }
}

/// A card number as ASCII digits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pan {
    digits: [u8; 19],
    len: usize,
    pub(crate) brand: Brand,
}

impl Pan {
    pub(crate) fn as_str(&self) -> &str {
        // Invariant: `digits[..len]` only ever holds ASCII digits.
        std::str::from_utf8(&self.digits[..self.len]).expect("ASCII digits")
    }

    /// One of [`TEST_CARDS`].
    pub(crate) fn test_card(r: &mut Rng) -> Pan {
        let s = r.pick(&TEST_CARDS);
        let mut digits = [b'0'; 19];
        digits[..s.len()].copy_from_slice(s.as_bytes());
        Pan { digits, len: s.len(), brand: Brand::of_test_card(s) }
    }
}

/// Writes `value` as `width` zero-padded digits into `out`.
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A random card number for `brand`. With `luhn_ok` false the check digit is deliberately wrong.
/// With `standard_len` the brand's usual length is used (16 for Visa and Maestro).
pub(crate) fn pan(r: &mut Rng, brand: Brand, luhn_ok: bool, standard_len: bool) -> Pan {
    loop {
        let (prefix, plen, len): (u64, usize, usize) = match brand {
            Brand::Visa => {
                let len =
                    if standard_len { 16 } else { r.pick(&[16, 16, 16, 16, 16, 16, 16, 13, 19]) };
                (4, 1, len)
            }
            Brand::Mastercard => {
                // Half from the 2-series (2221–2720) that older detectors miss.
                if r.percent(50) { (r.range(51, 55), 2, 16) } else { (r.range(2221, 2720), 4, 16) }
            }
            Brand::Amex => (r.pick(&[34, 37]), 2, 15),
            Brand::Discover => match r.below(3) {
                0 => (6011, 4, 16),
                1 => (r.range(644, 649), 3, 16),
                _ => (65, 2, 16),
            },
            Brand::Jcb => (r.range(3528, 3589), 4, 16),
            Brand::Diners => {
                if r.percent(50) {
                    (36, 2, 14)
                } else {
                    (r.range(300, 305), 3, 14)
                }
            }
            Brand::UnionPay => (62, 2, 16),
            Brand::Maestro => {
                let len = if standard_len || r.percent(50) { 16 } else { 19 };
                (r.pick(&[6759, 5018, 5020, 5038, 5893]), 4, len)
            }
        };
        let mut digits = [b'0'; 19];
        put_digits(&mut digits[..plen], prefix);
        for d in &mut digits[plen..len - 1] {
            *d = r.digit();
        }
        let check = checks::luhn_check_digit(&digits[..len - 1]);
        let last = if luhn_ok { check } else { (check + 1 + r.below(9) as u8) % 10 };
        digits[len - 1] = b'0' + last;
        let p = Pan { digits, len, brand };
        if !TEST_CARDS.contains(&p.as_str()) {
            return p;
        }
    }
}

/// How a card number is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CardFormat {
    Plain,
    Spaces,
    Dashes,
}

impl CardFormat {
    pub(crate) fn random(r: &mut Rng) -> CardFormat {
        match r.below(10) {
            0..=3 => CardFormat::Plain,
            4..=7 => CardFormat::Spaces,
            _ => CardFormat::Dashes,
        }
    }
}

/// Appends `digits` grouped the way cards are printed: 4-4-4-4, 4-4-4-4-3, Amex 4-6-5,
/// Diners 4-6-4; 13-digit numbers are always plain.
pub(crate) fn push_card(out: &mut String, digits: &str, fmt: CardFormat) {
    let groups: &[usize] = match digits.len() {
        14 => &[4, 6, 4],
        15 => &[4, 6, 5],
        16 => &[4, 4, 4, 4],
        19 => &[4, 4, 4, 4, 3],
        _ => &[],
    };
    let sep = match fmt {
        CardFormat::Plain => None,
        CardFormat::Spaces => Some(' '),
        CardFormat::Dashes => Some('-'),
    };
    match sep {
        Some(sep) if !groups.is_empty() => {
            let mut at = 0;
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    out.push(sep);
                }
                out.push_str(&digits[at..at + g]);
                at += g;
            }
        }
        _ => out.push_str(digits),
    }
}

/// How an SSN is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SsnFormat {
    Dashes,
    Spaces,
    Bare,
}

/// A valid post-2011 SSN as nine ASCII digits; about a third have an area in 773–899.
pub(crate) fn ssn(r: &mut Rng) -> [u8; 9] {
    loop {
        let area = if r.percent(35) { r.range(773, 899) } else { r.range(1, 772) };
        if area == 666 {
            continue;
        }
        let mut d = [0u8; 9];
        put_digits(&mut d[..3], area);
        put_digits(&mut d[3..5], r.range(1, 99));
        put_digits(&mut d[5..], r.range(1, 9999));
        if !checks::SSN_SAMPLE_NUMBERS.iter().any(|s| s.as_bytes() == d) {
            return d;
        }
    }
}

/// An SSN-shaped number that breaks one rule. Areas stay below 900 so it never looks like an
/// ITIN.
pub(crate) fn invalid_ssn(r: &mut Rng) -> [u8; 9] {
    let mut d = [0u8; 9];
    match r.below(5) {
        0 => {
            put_digits(&mut d[..3], 0);
            put_digits(&mut d[3..5], r.range(1, 99));
            put_digits(&mut d[5..], r.range(1, 9999));
        }
        1 => {
            put_digits(&mut d[..3], 666);
            put_digits(&mut d[3..5], r.range(1, 99));
            put_digits(&mut d[5..], r.range(1, 9999));
        }
        2 => {
            put_digits(&mut d[..3], r.range(1, 899));
            put_digits(&mut d[3..5], 0);
            put_digits(&mut d[5..], r.range(1, 9999));
        }
        3 => {
            put_digits(&mut d[..3], r.range(1, 899));
            put_digits(&mut d[3..5], r.range(1, 99));
            put_digits(&mut d[5..], 0);
        }
        _ => d.copy_from_slice(r.pick(&checks::SSN_SAMPLE_NUMBERS).as_bytes()),
    }
    d
}

/// Appends nine SSN digits in `fmt`.
pub(crate) fn push_ssn(out: &mut String, d: &[u8; 9], fmt: SsnFormat) {
    let s = std::str::from_utf8(d).expect("ASCII digits");
    match fmt {
        SsnFormat::Bare => out.push_str(s),
        SsnFormat::Dashes | SsnFormat::Spaces => {
            let sep = if fmt == SsnFormat::Dashes { '-' } else { ' ' };
            out.push_str(&s[..3]);
            out.push(sep);
            out.push_str(&s[3..5]);
            out.push(sep);
            out.push_str(&s[5..]);
        }
    }
}

fn push_random_digits(out: &mut String, r: &mut Rng, n: usize) {
    for _ in 0..n {
        out.push(char::from(r.digit()));
    }
}

fn push_random_digits_nonzero_first(out: &mut String, r: &mut Rng, n: usize) {
    out.push(char::from(b'1' + r.below(9) as u8));
    push_random_digits(out, r, n - 1);
}

/// The IBAN countries planted, weighted toward the shop's usual suppliers.
pub(crate) const IBAN_COUNTRIES: [&str; 10] =
    ["DE", "GB", "FR", "NL", "ES", "IT", "BE", "AT", "CH", "IE"];

/// Builds a BBAN for `country` into `bban` (cleared first), with realistic national keys.
fn bban(r: &mut Rng, country: &str, bban: &mut String) {
    bban.clear();
    match country {
        "DE" => {
            push_random_digits_nonzero_first(bban, r, 8);
            push_random_digits(bban, r, 10);
        }
        "GB" => {
            bban.push_str(r.pick(&["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "NAIA"]));
            push_random_digits(bban, r, 14);
        }
        "IE" => {
            bban.push_str(r.pick(&["AIBK", "BOFI", "IPBS", "ULSB"]));
            push_random_digits(bban, r, 14);
        }
        "FR" => {
            let mut d = String::with_capacity(21);
            push_random_digits_nonzero_first(&mut d, r, 5);
            push_random_digits(&mut d, r, 16);
            let b = d.as_bytes();
            let key = checks::fr_rib_key(&b[..5], &b[5..10], &b[10..21]);
            bban.push_str(&d);
            let _ = write!(bban, "{key:02}");
        }
        "NL" => {
            bban.push_str(r.pick(&["ABNA", "INGB", "RABO", "TRIO", "KNAB", "SNSB", "ASNB"]));
            loop {
                let mut d = [0u8; 10];
                for x in &mut d[..9] {
                    *x = r.digit();
                }
                let s: u32 = d[..9]
                    .iter()
                    .zip((2..=10u32).rev())
                    .map(|(&c, w)| u32::from(c - b'0') * w)
                    .sum();
                let last = (11 - s % 11) % 11;
                if last < 10 {
                    d[9] = b'0' + last as u8;
                    debug_assert!(checks::nl_elfproef(&d));
                    bban.push_str(std::str::from_utf8(&d).expect("ASCII digits"));
                    break;
                }
            }
        }
        "ES" => {
            let mut bank_branch = String::with_capacity(10);
            bank_branch.push_str("00");
            push_random_digits_nonzero_first(&mut bank_branch, r, 4);
            push_random_digits(&mut bank_branch, r, 4);
            let mut account = String::with_capacity(10);
            push_random_digits(&mut account, r, 10);
            let d1 = checks::es_control_digit(bank_branch.as_bytes());
            let d2 = checks::es_control_digit(account.as_bytes());
            bban.push_str(&bank_branch[2..]);
            bban.push(char::from(b'0' + d1));
            bban.push(char::from(b'0' + d2));
            bban.push_str(&account);
        }
        "IT" => {
            let mut rest = String::with_capacity(22);
            push_random_digits(&mut rest, r, 22);
            bban.push(char::from(checks::it_cin(rest.as_bytes())));
            bban.push_str(&rest);
        }
        "BE" => {
            let mut ten = String::with_capacity(10);
            push_random_digits(&mut ten, r, 10);
            let c = checks::be_check(ten.as_bytes());
            bban.push_str(&ten);
            let _ = write!(bban, "{c:02}");
        }
        "AT" => {
            push_random_digits_nonzero_first(bban, r, 5);
            push_random_digits(bban, r, 11);
        }
        "CH" => {
            push_random_digits(bban, r, 5);
            push_random_digits(bban, r, 12);
        }
        _ => unreachable!("unknown IBAN country {country}"),
    }
}

/// Appends an IBAN for `country`, compact or grouped in fours. With `valid` false the check
/// digits are wrong (but still two digits in 02–98).
pub(crate) fn iban(r: &mut Rng, country: &str, valid: bool, grouped: bool, out: &mut String) {
    let mut b = String::with_capacity(32);
    bban(r, country, &mut b);
    let good = checks::iban_check_digits(country, &b);
    let check = if valid {
        good
    } else {
        // Any other value in 2..=98 fails mod 97 (only 99 aliases 02).
        let mut c = r.range(2, 97) as u8;
        if c >= good {
            c += 1;
        }
        c
    };
    let mut compact = String::with_capacity(34);
    compact.push_str(country);
    let _ = write!(compact, "{check:02}");
    compact.push_str(&b);
    debug_assert_eq!(checks::iban_length(country), Some(compact.len()));
    debug_assert_eq!(checks::iban_valid(&compact), valid);
    if grouped {
        for (i, chunk) in compact.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(std::str::from_utf8(chunk).expect("ASCII"));
        }
    } else {
        out.push_str(&compact);
    }
}

/// A few real, published routing numbers (Federal Reserve and large banks).
pub(crate) const KNOWN_ROUTING: [&str; 10] = [
    "021000021",
    "026009593",
    "121000248",
    "011000015",
    "122105278",
    "021200025",
    "071000013",
    "111000025",
    "031000503",
    "091000019",
];

/// A nine-digit ABA routing number; with `valid` false the checksum fails (prefix stays valid).
pub(crate) fn aba(r: &mut Rng, valid: bool) -> [u8; 9] {
    let mut d = [0u8; 9];
    if valid && r.percent(15) {
        d.copy_from_slice(r.pick(&KNOWN_ROUTING).as_bytes());
        return d;
    }
    let prefix = if r.percent(50) { r.range(1, 12) } else { r.range(21, 32) };
    put_digits(&mut d[..2], prefix);
    for x in &mut d[2..8] {
        *x = r.digit();
    }
    let check = checks::aba_check_digit(&d[..8]);
    let last = if valid { check } else { (check + 1 + r.below(9) as u8) % 10 };
    d[8] = b'0' + last;
    d
}

/// A customer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Person {
    pub(crate) first: &'static str,
    pub(crate) last: &'static str,
}

impl Person {
    pub(crate) fn random(r: &mut Rng) -> Person {
        Person { first: r.pick(words::FIRST), last: r.pick(words::LAST) }
    }

    pub(crate) fn push_full(self, out: &mut String) {
        out.push_str(self.first);
        out.push(' ');
        out.push_str(self.last);
    }
}

/// Appends `s` lowercased and folded to ASCII letters and digits (José -> jose, O'Brien ->
/// obrien, Müller -> muller).
pub(crate) fn push_folded(out: &mut String, s: &str) {
    for c in s.chars() {
        let m = match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'Á' | 'Ä' | 'Å' => 'a',
            'ç' | 'č' | 'Ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' | 'É' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ñ' | 'Ñ' => 'n',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'Ö' | 'Ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'Ü' => 'u',
            'ł' | 'Ł' => 'l',
            'ř' => 'r',
            'š' | 'Š' => 's',
            'ž' => 'z',
            'ý' => 'y',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            _ => continue,
        };
        out.push(m);
    }
}

/// Appends a plausible personal email address for `p`.
pub(crate) fn email(r: &mut Rng, p: Person, out: &mut String) {
    let initial = |out: &mut String, s: &str| {
        let start = out.len();
        push_folded(out, s);
        out.truncate(start + 1.min(out.len() - start));
    };
    match r.below(9) {
        0 | 1 => {
            push_folded(out, p.first);
            out.push('.');
            push_folded(out, p.last);
        }
        2 => {
            initial(out, p.first);
            push_folded(out, p.last);
        }
        3 => {
            initial(out, p.first);
            push_folded(out, p.last);
            let _ = write!(out, "{}", r.range(1, 99));
        }
        4 => {
            push_folded(out, p.first);
            out.push('_');
            push_folded(out, p.last);
        }
        5 => {
            push_folded(out, p.first);
            push_folded(out, p.last);
        }
        6 => {
            push_folded(out, p.first);
            out.push('.');
            push_folded(out, p.last);
            let _ = write!(out, "{}", r.range(1960, 2005));
        }
        7 => {
            push_folded(out, p.first);
            out.push('.');
            initial(out, p.last);
        }
        _ => {
            push_folded(out, p.first);
            out.push('.');
            push_folded(out, p.last);
            out.push_str("+shop");
        }
    }
    out.push('@');
    out.push_str(r.pick(words::EMAIL_DOMAINS));
}

/// NANP area codes that exist (US and Canada).
const NANP_AREAS: &[u16] = &[
    212, 415, 312, 617, 206, 303, 305, 404, 512, 602, 702, 718, 773, 646, 214, 469, 213, 310, 818,
    503, 612, 615, 704, 919, 407, 813, 216, 412, 202, 720, 347, 929, 628, 510, 408, 416, 604, 514,
    403, 613, 905, 647, 778,
];

/// UK mobile prefixes (after the 0 / +44) that are in service ranges.
const GB_MOBILE: &[&str] = &[
    "7411", "7426", "7488", "7501", "7534", "7711", "7723", "7805", "7812", "7890", "7903", "7946",
    "7957", "7971",
];

/// German mobile network prefixes.
const DE_MOBILE: &[&str] = &[
    "151", "152", "157", "159", "160", "162", "170", "171", "172", "173", "174", "175", "176",
    "177", "178", "179",
];

/// Appends a phone number valid under its numbering plan. `bare_ok` allows a bare ten-digit
/// NANP number (only where a phone context or column header stands before it).
pub(crate) fn phone(r: &mut Rng, bare_ok: bool, out: &mut String) {
    match r.below(100) {
        0..=59 => nanp(r, bare_ok, out),
        60..=74 => gb(r, out),
        75..=84 => de(r, out),
        _ => fr(r, out),
    }
}

fn nanp(r: &mut Rng, bare_ok: bool, out: &mut String) {
    let area = r.pick(NANP_AREAS);
    let exchange = loop {
        let e = r.range(200, 999);
        // No N11 service codes and no 555.
        if e % 100 != 11 && e != 555 {
            break e;
        }
    };
    let line = r.below(10_000);
    let _ = match r.below(100) {
        0..=29 => write!(out, "({area}) {exchange}-{line:04}"),
        30..=54 => write!(out, "{area}-{exchange}-{line:04}"),
        55..=64 => write!(out, "{area}.{exchange}.{line:04}"),
        65..=74 => write!(out, "+1 {area} {exchange} {line:04}"),
        75..=84 => write!(out, "+1{area}{exchange}{line:04}"),
        _ if bare_ok => write!(out, "{area}{exchange}{line:04}"),
        _ => write!(out, "{area}-{exchange}-{line:04}"),
    };
}

fn gb(r: &mut Rng, out: &mut String) {
    if r.percent(55) {
        let lead = r.pick(&[7u64, 3]);
        let a = r.below(1000);
        let b = r.below(10_000);
        let _ = if r.percent(50) {
            write!(out, "+44 20 {lead}{a:03} {b:04}")
        } else {
            write!(out, "020 {lead}{a:03} {b:04}")
        };
    } else {
        let pre = r.pick(GB_MOBILE);
        let _ = write!(out, "+44 {pre} {:06}", r.below(1_000_000));
    }
}

fn de(r: &mut Rng, out: &mut String) {
    if r.percent(50) {
        let _ = write!(out, "+49 30 {}", r.range(20_000_000, 99_999_999));
    } else {
        let pre = r.pick(DE_MOBILE);
        let _ = write!(out, "+49 {pre} {}", r.range(10_000_000, 99_999_999));
    }
}

fn fr(r: &mut Rng, out: &mut String) {
    // National significant number: first digit then 8 more, shown as 1 + four pairs.
    let (first, second) = match r.below(7) {
        0 | 1 => (1, r.below(10)),
        2 => (2, r.pick(&[0u64, 1, 2, 3, 4, 5, 7, 8, 9])),
        3 => (4, r.range(1, 9)),
        4 => (5, r.range(0, 8)),
        5 => (6, r.pick(&[0u64, 1, 2, 4, 5, 6, 7, 8])),
        _ => (7, r.range(3, 9)),
    };
    let rest = r.below(10_000_000);
    let pairs = [second * 10 + rest / 1_000_000, rest / 10_000 % 100, rest / 100 % 100, rest % 100];
    let _ = if r.percent(50) {
        write!(out, "+33 {first} {:02} {:02} {:02} {:02}", pairs[0], pairs[1], pairs[2], pairs[3])
    } else {
        write!(out, "0{first} {:02} {:02} {:02} {:02}", pairs[0], pairs[1], pairs[2], pairs[3])
    };
}

/// A calendar date.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Date {
    pub(crate) y: u32,
    pub(crate) m: u32,
    pub(crate) d: u32,
}

fn days_in_month(y: u32, m: u32) -> u32 {
    // Years and months here are generated in range (1900..=2100, 1..=12).
    jiff::civil::Date::new(y as i16, m as i8, 1).map_or(28, |d| d.days_in_month() as u32)
}

impl Date {
    pub(crate) fn random(r: &mut Rng, from_year: u32, to_year: u32) -> Date {
        let y = r.range(u64::from(from_year), u64::from(to_year)) as u32;
        let m = r.range(1, 12) as u32;
        let d = r.range(1, u64::from(days_in_month(y, m))) as u32;
        Date { y, m, d }
    }

    /// Appends `YYYY-MM-DD` or `MM/DD/YYYY`.
    pub(crate) fn push(self, us: bool, out: &mut String) {
        let _ = if us {
            write!(out, "{:02}/{:02}/{}", self.m, self.d, self.y)
        } else {
            write!(out, "{}-{:02}-{:02}", self.y, self.m, self.d)
        };
    }
}

/// Appends a street line such as `742 Evergreen Terrace`, optionally with `, Apt 4B`.
pub(crate) fn street(r: &mut Rng, with_unit: bool, out: &mut String) {
    let number = match r.below(3) {
        0 => r.range(1, 99),
        1 => r.range(100, 999),
        _ => r.range(1000, 9999),
    };
    let _ = write!(out, "{number} {} {}", r.pick(words::STREETS), r.pick(words::SUFFIXES));
    if with_unit {
        let unit = r.pick(words::UNITS);
        let sep = if unit == "#" { "" } else { " " };
        let _ = write!(out, ", {unit}{sep}{}", r.range(1, 40));
        if r.percent(30) {
            out.push(char::from(b'A' + r.below(4) as u8));
        }
    }
}

/// A (city, state, ZIP) triple.
pub(crate) fn city(r: &mut Rng) -> (&'static str, &'static str, u32) {
    let (c, s, z) = r.pick(words::CITIES);
    (c, s, u32::from(z) * 100 + r.range(1, 99) as u32)
}

/// Appends a full US address: `123 Main St, Springfield, IL 62704`.
pub(crate) fn full_address(r: &mut Rng, out: &mut String) {
    let with_unit = r.percent(15);
    street(r, with_unit, out);
    let (c, s, z) = city(r);
    let _ = write!(out, ", {c}, {s} {z:05}");
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn push_from(r: &mut Rng, alphabet: &[u8], n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(char::from(r.pick(alphabet)));
    }
}

/// Kinds of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecretKind {
    AwsKeyId,
    Stripe,
    Github,
    Slack,
    UrlPassword,
}

/// Appends a credential of `kind` (for `UrlPassword`, just the password).
pub(crate) fn secret(r: &mut Rng, kind: SecretKind, out: &mut String) {
    match kind {
        SecretKind::AwsKeyId => {
            out.push_str("AKIA");
            push_from(r, BASE32, 16, out);
        }
        SecretKind::Stripe => {
            out.push_str("sk_live_");
            push_from(r, ALNUM, 24, out);
        }
        SecretKind::Github => {
            out.push_str("ghp_");
            push_from(r, ALNUM, 36, out);
        }
        SecretKind::Slack => {
            let _ = write!(
                out,
                "xoxb-{}-{}-",
                r.range(100_000_000_000, 999_999_999_999),
                r.range(1_000_000_000_000, 9_999_999_999_999)
            );
            push_from(r, ALNUM, 24, out);
        }
        SecretKind::UrlPassword => {
            if r.percent(50) {
                let w = r.pick(&["Summer", "Brightleaf", "Shop", "Winter", "Maple", "Tiger"]);
                let _ = write!(out, "{w}{}", r.range(10, 2099));
                out.push(r.pick(&['!', '_', 'x', 'Q']));
                push_from(r, ALNUM, 3, out);
            } else {
                let n = r.range(12, 20) as usize;
                push_from(r, ALNUM, n, out);
            }
        }
    }
}

/// The header line of a PEM private key (the planted span).
pub(crate) const PEM_HEADER: &str = "-----BEGIN RSA PRIVATE KEY-----";

/// Appends `n` lines of base64-looking PEM body.
pub(crate) fn pem_body(r: &mut Rng, lines: usize, indent: &str, out: &mut String) {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push_str(indent);
    out.push_str("MIIEpAIBAAKCAQEA");
    push_from(r, B64, 48, out);
    out.push('\n');
    for _ in 1..lines {
        out.push_str(indent);
        push_from(r, B64, 64, out);
        out.push('\n');
    }
}

// ---------------------------------------------------------------------------------------------
// Hard negatives.

/// Appends a decimal whose fractional digits pass Luhn (often a test card). `style` 0 =
/// `0.4111…`, 1 = `-0.53…%`, 2 = `0.45…em`, 3 = `51.45…`, 4 = `4.539…e+15`; `None` picks one.
/// The value is the whole numeric token.
pub(crate) fn decimal_luhn(r: &mut Rng, style: Option<u64>, out: &mut String) {
    let p = if r.percent(40) {
        Pan::test_card(r)
    } else {
        let brand = Brand::random(r);
        pan(r, brand, true, true)
    };
    let digits = p.as_str();
    let style = style.unwrap_or_else(|| r.below(5));
    match style {
        0 => {
            out.push_str("0.");
            out.push_str(digits);
        }
        1 => {
            out.push_str("-0.");
            out.push_str(digits);
            out.push('%');
        }
        2 => {
            out.push_str("0.");
            out.push_str(digits);
            out.push_str("em");
        }
        3 => {
            let _ = write!(out, "{}.", r.range(10, 59));
            out.push_str(digits);
        }
        _ => {
            out.push_str(&digits[..1]);
            out.push('.');
            out.push_str(&digits[1..]);
            let _ = write!(out, "e+{}", digits.len() - 1);
        }
    }
}

/// Seconds since the epoch somewhere in 2022–2025.
pub(crate) fn epoch_secs(r: &mut Rng) -> u64 {
    r.range(1_640_995_200, 1_767_225_599)
}

/// The civil date (UTC) `days` days after 1970-01-01.
pub(crate) fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let date = jiff::Timestamp::from_second(days as i64 * 86_400)
        .map_or(jiff::civil::date(1970, 1, 1), |t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
        });
    (date.year() as u64, date.month() as u32, date.day() as u32)
}

/// Appends a timestamp for `secs`: 0 = `2024-03-05T14:22:01.123Z`, 1 = `2024-03-05 14:22:01`,
/// 2 = epoch seconds, 3 = epoch milliseconds.
pub(crate) fn timestamp(secs: u64, millis: u64, style: u8, out: &mut String) {
    let (y, m, d) = civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    let (hh, mm, ss) = (t / 3600, t / 60 % 60, t % 60);
    let _ = match style {
        0 => write!(out, "{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{millis:03}Z"),
        1 => write!(out, "{y}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}"),
        2 => write!(out, "{secs}"),
        _ => write!(out, "{secs}{millis:03}"),
    };
}

/// Appends a v4 UUID.
pub(crate) fn uuid(r: &mut Rng, upper: bool, out: &mut String) {
    let a = r.next_u64();
    let b = r.next_u64();
    let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
    let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    let _ = if upper {
        write!(
            out,
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    } else {
        write!(
            out,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    };
}

/// Appends `n` lowercase hex digits.
pub(crate) fn hex(r: &mut Rng, n: usize, out: &mut String) {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut word = 0u64;
    for i in 0..n {
        if i % 16 == 0 {
            word = r.next_u64();
        }
        out.push(char::from(HEX[(word & 15) as usize]));
        word >>= 4;
    }
}

/// Appends a hyphenated ISBN-13 (978/979) or ISBN-10 with a correct check digit.
pub(crate) fn isbn(r: &mut Rng, thirteen: bool, out: &mut String) {
    if thirteen {
        let mut d = [0u8; 12];
        put_digits(&mut d[..3], r.pick(&[978, 979]));
        for x in &mut d[3..] {
            *x = r.digit();
        }
        let s: u32 = d
            .iter()
            .enumerate()
            .map(|(i, &c)| u32::from(c - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        let check = (10 - s % 10) % 10;
        let t = std::str::from_utf8(&d).expect("ASCII digits");
        let _ = write!(out, "{}-{}-{}-{}-{check}", &t[..3], &t[3..4], &t[4..6], &t[6..12]);
    } else {
        let mut d = [0u8; 9];
        for x in &mut d {
            *x = r.digit();
        }
        let s: u32 =
            d.iter().enumerate().map(|(i, &c)| u32::from(c - b'0') * (10 - i as u32)).sum();
        let check = (11 - s % 11) % 11;
        let t = std::str::from_utf8(&d).expect("ASCII digits");
        let _ = write!(out, "{}-{}-{}-", &t[..1], &t[1..4], &t[4..9]);
        if check == 10 {
            out.push('X');
        } else {
            let _ = write!(out, "{check}");
        }
    }
}

/// Appends a money amount with thousands separators: `1,234,567.89`.
pub(crate) fn money(r: &mut Rng, max_dollars: u64, out: &mut String) {
    let dollars = r.range(1, max_dollars);
    let cents = r.below(100);
    let s = dollars.to_string();
    let lead = s.len() % 3;
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (i + 3 - lead).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    let _ = write!(out, ".{cents:02}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_the_calendar() {
        // 2024 is a leap year; 2100 is not. Expectations from the Gregorian calendar.
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2023, 11), 30);
    }

    #[test]
    fn test_cards_pass_luhn() {
        for c in TEST_CARDS {
            assert!(checks::luhn_valid(c), "{c}");
        }
    }

    #[test]
    fn known_routing_numbers_are_valid() {
        for k in KNOWN_ROUTING {
            assert!(checks::aba_valid(k), "{k}");
        }
    }

    #[test]
    fn constructed_values_validate() {
        let mut r = Rng::new(99);
        let mut s = String::new();
        for _ in 0..2000 {
            let brand = Brand::random(&mut r);
            let p = pan(&mut r, brand, true, false);
            assert!(checks::luhn_valid(p.as_str()), "{}", p.as_str());
            let bad = pan(&mut r, brand, false, false);
            assert!(!checks::luhn_valid(bad.as_str()));
            assert!(checks::ssn_valid(std::str::from_utf8(&ssn(&mut r)).unwrap()));
            assert!(!checks::ssn_valid(std::str::from_utf8(&invalid_ssn(&mut r)).unwrap()));
            assert!(checks::aba_valid(std::str::from_utf8(&aba(&mut r, true)).unwrap()));
            assert!(!checks::aba_valid(std::str::from_utf8(&aba(&mut r, false)).unwrap()));
            for c in IBAN_COUNTRIES {
                s.clear();
                let grouped = r.percent(50);
                iban(&mut r, c, true, grouped, &mut s);
                assert!(checks::iban_valid(&s), "{s}");
                s.clear();
                iban(&mut r, c, false, false, &mut s);
                assert!(!checks::iban_valid(&s), "{s}");
            }
        }
    }

    #[test]
    fn card_grouping() {
        let mut s = String::new();
        push_card(&mut s, "378282246310005", CardFormat::Spaces);
        assert_eq!(s, "3782 822463 10005");
        s.clear();
        push_card(&mut s, "36227206271667", CardFormat::Dashes);
        assert_eq!(s, "3622-720627-1667");
        s.clear();
        push_card(&mut s, "4111111111111111", CardFormat::Dashes);
        assert_eq!(s, "4111-1111-1111-1111");
        s.clear();
        push_card(&mut s, "4222222222222", CardFormat::Spaces);
        assert_eq!(s, "4222222222222");
    }

    #[test]
    fn helpers_format() {
        let mut s = String::new();
        timestamp(1_709_648_521, 123, 0, &mut s);
        assert_eq!(s, "2024-03-05T14:22:01.123Z");
        s.clear();
        let mut r = Rng::new(3);
        money(&mut r, 1_000_000_000, &mut s);
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        assert!(s.contains('.') && digits.len() >= 3, "{s}");
        s.clear();
        push_folded(&mut s, "Łukasz O'Brien-Müller");
        assert_eq!(s, "lukaszobrienmuller");
    }
}
