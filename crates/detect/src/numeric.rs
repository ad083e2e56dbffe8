//! Numbers: cards, SSNs, ITINs, routing numbers, IBANs, phones, dates of birth, IPv4/IPv6,
//! passport and license numbers, and the ZIP codes that anchor street addresses.
//!
//! One pass finds digit runs (eight bytes at a time), joins runs separated by a single
//! space, dash, dot, slash or parenthesis into a token, then tries each plausible sub-span of
//! the token against the shapes below, longest first. A token glued to letters, hex digits
//! or decimals on either side (`0.4111…`, UUID segments, hashes, CSS values) is not a
//! number of ours; only sub-spans that start or end at a space can escape that verdict.

use std::net::Ipv6Addr;

use crate::Kind;
use crate::context::Hint;
use crate::detector::{Detection, Reason, Scan, Structure};
use crate::validate::{self, card_brand, is_test_card, luhn};
use crate::{phone, structured};

/// Groups beyond this are evaluated in windows, so a line of space-separated digits costs
/// linear time.
const MAX_GROUPS: usize = 24;
/// A detection spans at most this many groups (`+33 6 12 34 56 78` has six).
const SPAN_GROUPS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sep {
    Space,
    Dash,
    Dot,
    Slash,
    /// `(` after a space: `+1 (415)`.
    ParenOpen,
    /// `)` or `) `: `(415) 837`.
    ParenClose,
}

impl Sep {
    /// A sub-span may start or end at this separator.
    fn soft(self) -> bool {
        matches!(self, Sep::Space | Sep::ParenOpen)
    }
}

struct Token {
    /// Digit runs as (start, end) offsets.
    groups: Vec<(usize, usize)>,
    seps: Vec<Sep>,
    /// A `+` right before the first group.
    plus: bool,
    /// A `(` right before the first group.
    paren: bool,
    /// The first group cannot start a detection (glued to what precedes it).
    left_bad: bool,
    /// The last group cannot end a detection.
    right_bad: bool,
    /// The token was cut at [`MAX_GROUPS`] and continues.
    cut: bool,
}

#[inline]
fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Index of the first ASCII digit at or after `i`, or `bytes.len()`.
#[inline]
fn next_digit(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        // XOR with '0' maps digits to 0..=9 and nothing else below 10; then the classic
        // "has a byte less than n" test. Its lowest set bit is exact.
        let v = u64::from_le_bytes(word) ^ (u64::from(b'0') * ONES);
        let t = v.wrapping_sub(10 * ONES) & !v & HIGHS;
        if t != 0 {
            return i + (t.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && !is_digit(bytes[i]) {
        i += 1;
    }
    i
}

pub(crate) fn scan(scan: &Scan<'_>, out: &mut Vec<Detection>) {
    let bytes = scan.bytes();
    let n = bytes.len();
    let mut token = Token {
        groups: Vec::with_capacity(MAX_GROUPS),
        seps: Vec::with_capacity(MAX_GROUPS),
        plus: false,
        paren: false,
        left_bad: false,
        right_bad: false,
        cut: false,
    };
    let mut i = next_digit(bytes, 0);
    while i < n {
        // Nothing reported starts more than a few bytes (`+`, `(`, an IBAN's country code)
        // before its first digit, so tokens past the emit range belong to the next chunk.
        if i >= scan.chunk.emit_to + 4 {
            break;
        }
        // Fast path: a run of fewer than four digits that does not continue into a longer
        // token (`status=304`, `dur_ms=73`, `12:`) is none of our kinds.
        let mut e = i;
        while e < n && e - i < 4 && is_digit(bytes[e]) {
            e += 1;
        }
        if e - i < 4 && !continues(bytes, i, e) && !iban_start(bytes, i) {
            i = next_digit(bytes, e);
            continue;
        }
        let next = read_token(scan, i, &mut token);
        if let Some(skip_to) = glued_special(scan, &token, out) {
            i = next_digit(bytes, skip_to.max(i + 1));
            continue;
        }
        evaluate(scan, &token, out);
        i = next_digit(bytes, next);
    }
}

/// Whether the token whose digit run is `bytes[i..e]` goes on: a separator and another
/// digit, the first group of what may be an IPv6 address, or the end of the buffer.
#[inline]
fn continues(bytes: &[u8], i: usize, e: usize) -> bool {
    match bytes.get(e) {
        None => true,
        // An IPv6 address starts at a word boundary; later groups (and the minutes and
        // seconds of `12:34:56`) follow a colon.
        Some(b':') => {
            i == 0 || {
                let p = bytes[i - 1];
                p != b':' && (p.is_ascii_hexdigit() || !p.is_ascii_alphanumeric())
            }
        }
        Some(b' ' | b'-' | b'.' | b'/' | b')' | b',') => match bytes.get(e + 1) {
            Some(c) => is_digit(*c) || matches!(c, b'(' | b' '),
            None => true,
        },
        _ => false,
    }
}

/// Whether the digits at `i` follow a lone two-letter word, as an IBAN's check digits do.
#[inline]
fn iban_start(bytes: &[u8], i: usize) -> bool {
    i >= 2
        && bytes[i - 1].is_ascii_alphabetic()
        && bytes[i - 2].is_ascii_alphabetic()
        && (i == 2 || !bytes[i - 3].is_ascii_alphanumeric())
}

/// Whether exactly three digits start at `at` (a thousands group after a comma). Longer
/// runs after a comma are the next field of a CSV row.
fn thousands_group(bytes: &[u8], at: usize) -> bool {
    bytes.len() >= at + 3
        && bytes[at..at + 3].iter().all(|c| is_digit(*c))
        && bytes
            .get(at + 3)
            .is_none_or(|c| !c.is_ascii_alphanumeric() && !matches!(c, b'-' | b'/' | b':'))
}

/// Reads the token whose first digit is at `start`; returns where scanning resumes.
fn read_token(scan: &Scan<'_>, start: usize, t: &mut Token) -> usize {
    let bytes = scan.bytes();
    let n = bytes.len();
    t.groups.clear();
    t.seps.clear();
    t.cut = false;
    let at = |k: usize| bytes.get(k).copied().unwrap_or(0);
    t.plus = start > 0 && bytes[start - 1] == b'+';
    t.paren = start > 0 && bytes[start - 1] == b'(';
    let outer = if t.plus || t.paren { start - 1 } else { start };
    // In a comma-separated file a comma always separates fields, never thousands.
    let comma_fields = matches!(scan.structure, Structure::Delimited { delimiter: b',', .. });
    // The byte two before the token, if known: decides whether `,`/`:`/`-` join numbers.
    let before2 = |k: usize| if k > 1 { Some(bytes[k - 2]) } else { None };
    t.left_bad = scan.open_left(outer)
        || (outer > 0
            && {
                let p = bytes[outer - 1];
                let pp = before2(outer);
                is_word(p)
                || p == b'@'
                || (matches!(p, b':' | b'-' | b'/') && pp.is_none_or(is_digit) && (outer > 1 || !scan.chunk.stream_start))
                // `1,234,567`: a thousands group is exactly three digits.
                || (p == b',' && !comma_fields && pp.is_none_or(is_digit) && thousands_group(bytes, start))
                // `.4111…` and `-.53…` are fractions; `no.4111…` is an abbreviation.
                || (p == b'.' && !pp.is_some_and(|c| c.is_ascii_alphabetic()))
            });
    let mut i = start;
    loop {
        let gs = i;
        while i < n && is_digit(bytes[i]) {
            i += 1;
        }
        t.groups.push((gs, i));
        if i >= n {
            break;
        }
        let (sep, len) = match (bytes[i], at(i + 1), at(i + 2)) {
            (b' ', d, _) if is_digit(d) => (Sep::Space, 1),
            (b' ', b'(', d) if is_digit(d) => (Sep::ParenOpen, 2),
            (b'-', d, _) if is_digit(d) => (Sep::Dash, 1),
            (b'.', d, _) if is_digit(d) => (Sep::Dot, 1),
            (b'/', d, _) if is_digit(d) => (Sep::Slash, 1),
            (b')', d, _) if is_digit(d) => (Sep::ParenClose, 1),
            (b')', b' ', d) if is_digit(d) => (Sep::ParenClose, 2),
            _ => break,
        };
        if t.groups.len() == MAX_GROUPS {
            t.cut = true;
            break;
        }
        t.seps.push(sep);
        i += len;
    }
    let end = t.groups.last().map_or(start, |g| g.1);
    if !t.cut {
        t.right_bad = scan.open_right(end)
            || (end < n && {
                let c = bytes[end];
                let next = at(end + 1);
                is_word(c)
                    || c == b'@'
                    || (matches!(c, b':' | b'-' | b'/') && is_digit(next))
                    || (c == b',' && !comma_fields && thousands_group(bytes, end + 1))
                    // `4111….pdf`, `….5em`, a host name: not the end of a number.
                    || (c == b'.' && next.is_ascii_alphanumeric())
                    || (matches!(c, b'.' | b',' | b':' | b'-' | b'/') && scan.open_right(end + 1))
            });
    }
    if t.cut {
        // Resume at the first group we did not evaluate, so spans across the cut are seen.
        let keep = t.groups.len().saturating_sub(SPAN_GROUPS - 1).max(1);
        t.groups[keep].0
    } else {
        end
    }
}

/// Handles tokens glued to letters that make them something else: an IBAN (`DE89…`), a
/// passport or license number (`A1234567`), an IPv6 address. Returns where to resume if it
/// consumed the token, or `None` to evaluate it as plain digits.
fn glued_special(scan: &Scan<'_>, t: &Token, out: &mut Vec<Detection>) -> Option<usize> {
    let bytes = scan.bytes();
    let (g0s, g0e) = t.groups[0];
    if t.plus || t.paren {
        return None;
    }
    // IPv6: hex and colons around digits.
    let after = bytes.get(g0e).copied().unwrap_or(0);
    let before = if g0s > 0 { bytes[g0s - 1] } else { 0 };
    // Only from an address's first digit group: later groups of the same address (and of
    // every `12:34:56` time) follow a colon and were already looked at.
    if after == b':'
        && before != b':'
        && let Some(end) = ipv6(scan, g0s, out)
    {
        return Some(end);
    }
    if g0s == 0 || !bytes[g0s - 1].is_ascii_alphabetic() {
        return None;
    }
    // Letters before the digits: how many, and what precedes them.
    let mut ls = g0s;
    while ls > 0 && bytes[ls - 1].is_ascii_alphabetic() && g0s - ls <= 3 {
        ls -= 1;
    }
    let letters = g0s - ls;
    if letters > 2 || (ls > 0 && is_word(bytes[ls - 1])) || scan.open_left(ls) {
        return None;
    }
    if letters == 2
        && g0e - g0s >= 2
        && let Some(end) = iban(scan, ls, out)
    {
        return Some(end);
    }
    alnum_id(scan, ls, g0s, t, out)
}

fn ipv6(scan: &Scan<'_>, around: usize, out: &mut Vec<Detection>) -> Option<usize> {
    let bytes = scan.bytes();
    let ok = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut s = around;
    while s > 0 && ok(bytes[s - 1]) && around - s < 48 {
        s -= 1;
    }
    let mut e = around;
    while e < bytes.len() && ok(bytes[e]) && e - s < 48 {
        e += 1;
    }
    // Trailing punctuation of a sentence.
    while e > s && bytes[e - 1] == b'.' {
        e -= 1;
    }
    if (s > 0 && is_word(bytes[s - 1]))
        || (e < bytes.len() && is_word(bytes[e]))
        || scan.open_left(s)
        || scan.open_right(e)
    {
        return None;
    }
    let text = std::str::from_utf8(&bytes[s..e]).ok()?;
    // A full address has seven colons; a shorter one must compress with `::`. Times
    // (`10:23:45`) and MAC addresses fail here without a parse.
    if text.bytes().filter(|c| *c == b':').count() < 7 && !text.contains("::") {
        return None;
    }
    let addr: Ipv6Addr = text.parse().ok()?;
    if addr.is_unspecified() || addr.is_loopback() {
        return Some(e);
    }
    if scan.enabled(Kind::IpAddress) && scan.in_emit_range(s) {
        let ev = scan.evidence(s, e);
        let mut reasons = vec![Reason::Validator("ipv6")];
        let conf = ev.score(0.5, Hint::Ip, &mut reasons);
        let mut d = scan.detection(Kind::IpAddress, s, e, conf, reasons);
        d.subkind = Some("v6");
        out.push(d);
    }
    Some(e)
}

/// An IBAN starting at `s` with two country letters: compact, or grouped in fours.
fn iban(scan: &Scan<'_>, s: usize, out: &mut Vec<Detection>) -> Option<usize> {
    let bytes = scan.bytes();
    let country = [bytes[s], bytes[s + 1]];
    let len = validate::iban_length(&country)?;
    let mut compact = Vec::with_capacity(len);
    let mut i = s;
    while i < bytes.len() && compact.len() < len {
        let c = bytes[i];
        // IBANs are written in capitals; a lower-case run is a hex id (`be443aad45c1186f`
        // passes mod-97 one time in 97).
        if c.is_ascii_lowercase() {
            return None;
        }
        if c.is_ascii_alphanumeric() {
            compact.push(c);
            i += 1;
        } else if c == b' '
            && compact.len() % 4 == 0
            && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
        } else {
            break;
        }
    }
    if scan.open_right(i) {
        return None;
    }
    // Something shaped like an IBAN that fails its checks (wrong length, check digits) is a
    // mistyped or deliberately invalid IBAN: none of its digit groups is a card or phone.
    let shaped = compact.len() >= 14;
    if compact.len() != len
        || (i < bytes.len() && is_word(bytes[i]))
        || !validate::is_valid_iban(&compact)
    {
        return shaped.then_some(i);
    }
    if scan.enabled(Kind::Iban) && scan.in_emit_range(s) {
        let ev = scan.structural_evidence(s);
        let mut reasons = vec![Reason::Validator("mod97"), Reason::Validator("iban-length")];
        let conf = ev.score(0.9, Hint::Iban, &mut reasons);
        out.push(scan.detection(Kind::Iban, s, i, conf, reasons));
    }
    Some(i)
}

/// `A1234567`-style identifiers: US passports (letter + 8 digits since 2021) and many
/// states' driver's licenses. Only with context.
fn alnum_id(
    scan: &Scan<'_>,
    ls: usize,
    g0s: usize,
    t: &Token,
    out: &mut Vec<Detection>,
) -> Option<usize> {
    // Digits and dashes after the letters: `D123-4567-8901`.
    let last = if t.seps.iter().all(|s| *s == Sep::Dash) { t.groups.len() - 1 } else { 0 };
    let end = t.groups[last].1;
    if t.right_bad && last == t.groups.len() - 1 {
        return None;
    }
    let digits: usize = t.groups[..=last].iter().map(|g| g.1 - g.0).sum();
    let letters = g0s - ls;
    if !(4..=14).contains(&digits) || !scan.in_emit_range(ls) {
        return None;
    }
    let ev = scan.evidence_near(ls, end);
    let passport = letters == 1 && digits == 8 && last == 0 && ev.supports(Hint::Passport);
    let license = (4..=14).contains(&digits) && ev.supports(Hint::DriversLicense);
    let (kind, hint) = match (passport, license) {
        (true, true) => {
            if ev.strength(Hint::Passport) <= ev.strength(Hint::DriversLicense) {
                (Kind::UsPassport, Hint::Passport)
            } else {
                (Kind::UsDriversLicense, Hint::DriversLicense)
            }
        }
        (true, false) => (Kind::UsPassport, Hint::Passport),
        (false, true) => (Kind::UsDriversLicense, Hint::DriversLicense),
        (false, false) => return None,
    };
    if scan.enabled(kind) {
        let mut reasons = vec![Reason::Validator("format")];
        let conf = ev.score(0.4, hint, &mut reasons);
        out.push(scan.detection(kind, ls, end, conf, reasons));
    }
    Some(end)
}

/// Tries the sub-spans of a token, longest first from each allowed start.
fn evaluate(scan: &Scan<'_>, t: &Token, out: &mut Vec<Detection>) {
    let n = t.groups.len();
    // Fast path: the bulk of numbers in logs and prose are short single runs.
    if n == 1 && !t.cut {
        let len = t.groups[0].1 - t.groups[0].0;
        if !(5..=19).contains(&len) || t.left_bad || t.right_bad {
            return;
        }
    }
    // Written as one grouped card number (4-4-4-4, 4-6-5, 4-4-4-4-3) but invalid: a mistyped
    // or rejected card, and none of its parts is a phone or a shorter card.
    if !t.cut && n > 1 && !t.left_bad && !t.right_bad && card_grouping(t) {
        if let Some(d) = classify(scan, t, 0, n - 1) {
            out.push(d);
        }
        return;
    }
    let limit = if t.cut { n.saturating_sub(SPAN_GROUPS - 1).max(1) } else { n };
    let mut i = 0;
    while i < limit {
        let start_ok = if i == 0 { !t.left_bad } else { t.seps[i - 1].soft() };
        if !start_ok {
            i += 1;
            continue;
        }
        let mut found = None;
        for j in (i..n.min(i + SPAN_GROUPS)).rev() {
            let end_ok = if j == n - 1 { !t.right_bad && !t.cut } else { t.seps[j].soft() };
            if !end_ok {
                continue;
            }
            if let Some(d) = classify(scan, t, i, j) {
                found = Some((j, d));
                break;
            }
        }
        match found {
            Some((j, d)) => {
                out.push(d);
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

/// Group lengths of a span (at most [`SPAN_GROUPS`]) on the stack.
#[derive(Default)]
struct Lens {
    lens: [usize; SPAN_GROUPS],
    n: usize,
}

impl Lens {
    /// Adds a length; false when full.
    fn push(&mut self, len: usize) -> bool {
        if self.n == SPAN_GROUPS {
            return false;
        }
        self.lens[self.n] = len;
        self.n += 1;
        true
    }
    fn as_slice(&self) -> &[usize] {
        &self.lens[..self.n]
    }
}

/// The digits and shape of groups `i..=j`.
struct Span<'t> {
    t: &'t Token,
    i: usize,
    j: usize,
    digits: [u8; 32],
    len: usize,
}

impl Span<'_> {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
    fn lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.t.groups[self.i..=self.j].iter().map(|g| g.1 - g.0)
    }
    /// The group lengths, without allocating.
    fn lens_array(&self) -> Lens {
        let mut lens = Lens::default();
        for l in self.lens() {
            lens.push(l);
        }
        lens
    }
    fn shape(&self, want: &[usize]) -> bool {
        self.j - self.i + 1 == want.len() && self.lens().zip(want).all(|(a, b)| a == *b)
    }
    fn seps(&self) -> &[Sep] {
        &self.t.seps[self.i..self.j]
    }
    fn uniform(&self, allowed: &[Sep]) -> Option<Sep> {
        let seps = self.seps();
        let first = *seps.first()?;
        (allowed.contains(&first) && seps.iter().all(|s| *s == first)).then_some(first)
    }
    fn plus(&self) -> bool {
        self.i == 0 && self.t.plus
    }
    fn paren(&self) -> bool {
        (self.i == 0 && self.t.paren) || (self.i > 0 && self.t.seps[self.i - 1] == Sep::ParenOpen)
    }
    fn start(&self) -> usize {
        let s = self.t.groups[self.i].0;
        if self.plus() || self.paren() { s - 1 } else { s }
    }
    fn end(&self) -> usize {
        self.t.groups[self.j].1
    }
}

fn classify(scan: &Scan<'_>, t: &Token, i: usize, j: usize) -> Option<Detection> {
    let mut span = Span { t, i, j, digits: [0; 32], len: 0 };
    for g in &t.groups[i..=j] {
        let run = &scan.bytes()[g.0..g.1];
        if span.len + run.len() > span.digits.len() {
            return None;
        }
        span.digits[span.len..span.len + run.len()].copy_from_slice(run);
        span.len += run.len();
    }
    let single = i == j;
    let total = span.len;
    if single && t.groups[i].1 - t.groups[i].0 < 5 {
        return None;
    }
    if !scan.in_emit_range(span.start()) {
        return None;
    }
    if (12..=19).contains(&total)
        && !span.plus()
        && let Some(d) = card(scan, &span)
    {
        return Some(d);
    }
    if total == 9 && (span.shape(&[3, 2, 4]) || single) && !span.plus() && !span.paren() {
        return nine_digits(scan, &span);
    }
    if let Some(sep) = span.uniform(&[Sep::Dash, Sep::Slash, Sep::Dot]) {
        let lens = span.lens_array();
        let lens = lens.as_slice();
        let date = match lens {
            [4, 2, 2] => Some((0, 1, 2)),
            [1 | 2, 1 | 2, 4] => Some((2, 0, 1)),
            _ => None,
        };
        if let Some(order) = date {
            return date_of_birth(scan, &span, order, sep);
        }
        if sep == Sep::Dot && lens.len() == 4 && lens.iter().all(|l| *l <= 3) {
            return ipv4(scan, &span);
        }
    }
    if (7..=15).contains(&total)
        && let Some(d) = phone(scan, &span)
    {
        return Some(d);
    }
    if single && total == 5 || span.shape(&[5, 4]) && span.uniform(&[Sep::Dash]).is_some() {
        return structured::address_before_zip(scan, span.start(), span.end());
    }
    if single && (4..=14).contains(&total) && !span.plus() {
        return license_digits(scan, &span);
    }
    None
}

/// Whether a whole token is written the way card numbers are printed.
fn card_grouping(t: &Token) -> bool {
    let mut lens = Lens::default();
    for g in &t.groups {
        if !lens.push(g.1 - g.0) {
            return false;
        }
    }
    let lens = lens.as_slice();
    let total: usize = lens.iter().sum();
    let uniform =
        t.seps.iter().all(|s| *s == t.seps[0]) && matches!(t.seps[0], Sep::Space | Sep::Dash);
    (12..=19).contains(&total) && uniform && !t.plus && grouped_like_card(lens)
}

fn grouped_like_card(lens: &[usize]) -> bool {
    let fours = lens.len() >= 3
        && lens[..lens.len() - 1].iter().all(|l| *l == 4)
        && (1..=4).contains(&lens[lens.len() - 1]);
    fours || lens == [4, 6, 5] || lens == [4, 6, 4]
}

fn card(scan: &Scan<'_>, span: &Span<'_>) -> Option<Detection> {
    let single = span.i == span.j;
    let grouped = !single && {
        let sep_ok = span.uniform(&[Sep::Space, Sep::Dash]).is_some();
        sep_ok && grouped_like_card(span.lens_array().as_slice())
    };
    if !single && !grouped {
        return None;
    }
    let digits = span.digits();
    if !luhn(digits) {
        return None;
    }
    let brand = card_brand(digits)?;
    // A card in parentheses: the parenthesis is not part of the value.
    let (start, end) = (span.t.groups[span.i].0, span.end());
    let ev = scan.evidence(start, end);
    let mut reasons = vec![Reason::Validator("luhn"), Reason::Validator(iin_reason(brand))];
    let test = is_test_card(digits);
    let base = if test {
        reasons.push(Reason::TestCard);
        0.35
    } else if grouped {
        reasons.push(Reason::Format("grouped"));
        0.8
    } else {
        0.7
    };
    let mut conf = ev.score(base, Hint::Card, &mut reasons);
    if test {
        // Context cannot make a test number real.
        conf = conf.min(0.35);
    }
    let mut d = scan.detection(Kind::CreditCard, start, end, conf, reasons);
    d.test_card = test;
    Some(d)
}

fn iin_reason(brand: validate::CardBrand) -> &'static str {
    use validate::CardBrand as B;
    match brand {
        B::Visa => "iin:visa",
        B::Mastercard => "iin:mastercard",
        B::Amex => "iin:amex",
        B::Discover => "iin:discover",
        B::Jcb => "iin:jcb",
        B::Diners => "iin:diners",
        B::UnionPay => "iin:unionpay",
        B::Maestro => "iin:maestro",
        _ => "iin:mir",
    }
}

/// Nine digits: an SSN or ITIN by shape (dashed, spaced) or, bare, whichever of SSN, ITIN,
/// routing number or passport the context names.
fn nine_digits(scan: &Scan<'_>, span: &Span<'_>) -> Option<Detection> {
    let digits = span.digits();
    let (start, end) = (span.start(), span.end());
    if span.i != span.j {
        let sep = span.uniform(&[Sep::Dash, Sep::Space])?;
        let ev = scan.evidence_near(start, end);
        let (kind, hint, rule) = if validate::is_valid_ssn(digits) {
            (Kind::UsSsn, Hint::Ssn, "ssn-rules")
        } else if validate::is_valid_itin(digits) {
            (Kind::UsItin, Hint::Itin, "itin-rules")
        } else {
            return None;
        };
        let mut reasons = vec![Reason::Validator(rule)];
        let base = if sep == Sep::Dash { 0.75 } else { 0.6 };
        // An ITIN written where the context says SSN is still an ITIN, with the support.
        let hint = if kind == Kind::UsItin && !ev.supports(Hint::Itin) && ev.supports(Hint::Ssn) {
            Hint::Ssn
        } else {
            hint
        };
        let conf = ev.score(base, hint, &mut reasons);
        return Some(scan.detection(kind, start, end, conf, reasons));
    }
    let ev = scan.evidence_near(start, end);
    let mut options: Vec<(u32, Kind, Hint, &'static str)> = Vec::new();
    let mut offer = |valid: bool, kind: Kind, hint: Hint, rule: &'static str| {
        if valid && let Some(s) = ev.strength(hint) {
            options.push((s, kind, hint, rule));
        }
    };
    offer(validate::is_valid_ssn(digits), Kind::UsSsn, Hint::Ssn, "ssn-rules");
    offer(validate::is_valid_itin(digits), Kind::UsItin, Hint::Itin, "itin-rules");
    offer(validate::is_valid_itin(digits), Kind::UsItin, Hint::Ssn, "itin-rules");
    offer(validate::is_valid_aba(digits), Kind::UsBankRouting, Hint::Routing, "aba-checksum");
    offer(true, Kind::UsPassport, Hint::Passport, "format");
    offer(true, Kind::UsDriversLicense, Hint::DriversLicense, "format");
    let (_, kind, hint, rule) = options.into_iter().min_by_key(|o| o.0)?;
    let mut reasons = vec![Reason::Validator(rule)];
    let base = match kind {
        Kind::UsPassport | Kind::UsDriversLicense => 0.4,
        _ => 0.5,
    };
    let conf = ev.score(base, hint, &mut reasons);
    Some(scan.detection(kind, start, end, conf, reasons))
}

fn license_digits(scan: &Scan<'_>, span: &Span<'_>) -> Option<Detection> {
    let (start, end) = (span.start(), span.end());
    let ev = scan.evidence_near(start, end);
    if !ev.supports(Hint::DriversLicense) || (span.len == 10 && ev.supports(Hint::Phone)) {
        return None;
    }
    let mut reasons = vec![Reason::Validator("format")];
    let conf = ev.score(0.4, Hint::DriversLicense, &mut reasons);
    Some(scan.detection(Kind::UsDriversLicense, start, end, conf, reasons))
}

fn date_of_birth(
    scan: &Scan<'_>,
    span: &Span<'_>,
    (y, m, d): (usize, usize, usize),
    _sep: Sep,
) -> Option<Detection> {
    let bytes = scan.bytes();
    let part = |k: usize| {
        let g = span.t.groups[span.i + k];
        bytes[g.0..g.1].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'))
    };
    let (year, mut month, mut day) = (part(y), part(m), part(d));
    if !validate::is_plausible_birth_date(year, month, day, scan.current_year()) {
        // Day-first (European) order.
        std::mem::swap(&mut month, &mut day);
        if y == 0 || !validate::is_plausible_birth_date(year, month, day, scan.current_year()) {
            return None;
        }
    }
    let (start, end) = (span.start(), span.end());
    let ev = scan.evidence_near(start, end);
    if !ev.supports(Hint::Dob) {
        return None;
    }
    let mut reasons = vec![Reason::Validator("date")];
    let conf = ev.score(0.5, Hint::Dob, &mut reasons);
    Some(scan.detection(Kind::DateOfBirth, start, end, conf, reasons))
}

fn ipv4(scan: &Scan<'_>, span: &Span<'_>) -> Option<Detection> {
    let bytes = scan.bytes();
    let mut octets = [0u32; 4];
    for (k, g) in span.t.groups[span.i..=span.j].iter().enumerate() {
        let run = &bytes[g.0..g.1];
        if run.len() > 1 && run[0] == b'0' {
            return None;
        }
        octets[k] = run.iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
    }
    if octets.iter().any(|o| *o > 255)
        || octets == [0, 0, 0, 0]
        || octets[0] == 127
        || octets == [255; 4]
    {
        return None;
    }
    let (start, end) = (span.start(), span.end());
    // `v1.2.3.4`, `version 1.2.3.4`.
    if start > 0 && matches!(bytes[start - 1], b'v' | b'V') {
        return None;
    }
    let ev = scan.evidence(start, end);
    let mut reasons = vec![Reason::Validator("ipv4")];
    let conf = ev.score(0.5, Hint::Ip, &mut reasons);
    let mut d = scan.detection(Kind::IpAddress, start, end, conf, reasons);
    d.subkind = Some("v4");
    Some(d)
}

/// How a phone candidate is validated.
enum Plan {
    /// `+` and a country code.
    International,
    /// North American numbering plan.
    Nanp,
    /// A national number with a trunk `0` (UK, France, Germany, …).
    Trunk,
}

fn phone(scan: &Scan<'_>, span: &Span<'_>) -> Option<Detection> {
    let digits = span.digits();
    let total = digits.len();
    let lens = span.lens_array();
    let lens = lens.as_slice();
    let seps = span.seps();
    let phone_seps = seps
        .iter()
        .all(|s| matches!(s, Sep::Space | Sep::Dash | Sep::Dot | Sep::ParenOpen | Sep::ParenClose));
    if !phone_seps {
        return None;
    }
    // Parentheses must close right after the group they open.
    let paren_ok = |k: usize| seps.get(k) == Some(&Sep::ParenClose);
    for (k, s) in seps.iter().enumerate() {
        if *s == Sep::ParenClose
            && !(k == 0 && span.paren() || k > 0 && seps[k - 1] == Sep::ParenOpen)
        {
            return None;
        }
    }
    if span.paren() && !paren_ok(0) {
        return None;
    }
    let (start, end) = (span.start(), span.end());
    let text = std::str::from_utf8(&digits[..total]).ok()?;
    let nanp_shape =
        matches!(lens, [3, 3, 4] | [1, 3, 3, 4]) && (lens.len() == 3 || digits[0] == b'1');
    let plan = if span.plus() {
        if total < 8 {
            return None;
        }
        Plan::International
    } else if digits[0] == b'0' && (9..=11).contains(&total) && lens.len() >= 2 && lens != [5, 4] {
        // (`02996-1632` is a New England ZIP+4, not a German number.)
        Plan::Trunk
    } else if nanp_shape
        && (span.uniform(&[Sep::Dash, Sep::Dot, Sep::Space]).is_some()
            || span.paren()
            || seps.contains(&Sep::ParenClose))
    {
        Plan::Nanp
    } else if lens.len() == 1 && (total == 10 || total == 11 && digits[0] == b'1') {
        // Bare ten digits: epoch seconds and ids look the same; only with context. An area
        // code starts with 2-9 (epoch seconds with 1), checked before gathering context.
        let area = if total == 11 { digits[1] } else { digits[0] };
        if area < b'2' {
            return None;
        }
        let ev = scan.evidence_near(start, end);
        if !ev.supports(Hint::Phone) {
            return None;
        }
        Plan::Nanp
    } else {
        return None;
    };
    let (region, grouped_bonus) = match plan {
        Plan::International => (phone::international(text)?, 0.15),
        Plan::Nanp => (phone::nanp(text)?, 0.0),
        Plan::Trunk => (phone::national(text, &validate::TRUNK_REGIONS)?, 0.0),
    };
    let ev = scan.evidence(start, end);
    let mut reasons = vec![Reason::NumberingPlan(region)];
    let conf = ev.score(0.6 + grouped_bonus, Hint::Phone, &mut reasons);
    Some(scan.detection(Kind::Phone, start, end, conf, reasons))
}

#[cfg(test)]
mod tests {
    use super::next_digit;

    #[test]
    fn next_digit_finds_the_first_digit_at_every_alignment() {
        for len in 0..40 {
            for pos in 0..=len {
                let mut buf = vec![b'x'; len];
                // Bytes around '0'..'9' that a sloppy range test would accept.
                for (k, b) in buf.iter_mut().enumerate() {
                    *b = [b'/', b':', b'a', 0xB0, 0x80, b' '][k % 6];
                }
                if pos < len {
                    buf[pos] = b'0' + (pos % 10) as u8;
                }
                assert_eq!(next_digit(&buf, 0), pos.min(len), "len {len} pos {pos}");
            }
        }
    }
}
