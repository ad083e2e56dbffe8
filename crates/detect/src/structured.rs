//! Names and street addresses: only where structure gives strong evidence.
//!
//! A bare dictionary hit in prose ("Jordan", "Main") proves nothing, so names are reported
//! only as cells of a column whose header says name, or as values under a JSON key that
//! says so (and not inside an `items`/`products` object). Addresses additionally match a
//! full US pattern: number, street, suffix, optional unit, city, state, ZIP.

use std::sync::LazyLock;

use regex::bytes::Regex;

use crate::Kind;
use crate::context::{self, Hint};
use crate::detector::{Detection, Reason, Scan, Structure};

/// Parent keys whose objects describe things, not people.
const THING_PARENTS: &[&str] = &[
    "items",
    "item",
    "products",
    "product",
    "lines",
    "line_items",
    "lineitems",
    "order_items",
    "variants",
    "catalog",
    "company",
    "business",
    "merchant",
    "store",
    "shop",
    "vendor",
    "supplier",
    "carrier",
    "shipping_method",
    "payment_method",
    "bank",
    "category",
    "categories",
    "tags",
    "files",
    "file",
    "app",
    "service",
    "project",
    "event",
    "plan",
];

/// Cell values that mean "no value".
const EMPTY_WORDS: &[&str] =
    &["n/a", "na", "none", "null", "unknown", "-", "--", "tbd", "test", "nil", "undefined"];

/// US state and territory codes.
const STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

static FULL_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \b[0-9]{1,6}[A-Za-z]?\ +                       # house number
        (?:[NSEW]\.?\ +)?                             # direction
        (?:[A-Z0-9][A-Za-z0-9'.-]*\ +){1,4}?            # street name words
        (?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|ter|parkway|pkwy|circle|cir|highway|hwy|square|sq|trail|trl|alley|aly|plaza|plz)\.?
        (?:\ +(?:N|S|E|W|NE|NW|SE|SW)\.?)?                # post-direction
        (?:,?\ +(?i:apt|apartment|suite|ste|unit|fl|floor|\#)\.?\ *\#?[A-Za-z0-9-]+)?  # unit
        ,?\ +(?:[A-Z][A-Za-z.'-]*\ +){0,3}[A-Z][A-Za-z.'-]*   # city
        ,\ *[A-Z]{2}\ +$                              # state, then the ZIP we start from
        ",
    )
    .expect("the address pattern is a fixed, tested regex")
});

pub(crate) struct Structured {
    key_ends: memchr::memmem::Finder<'static>,
}

impl Structured {
    pub fn new() -> Self {
        Self { key_ends: memchr::memmem::Finder::new(b"\":") }
    }

    pub fn scan(&self, scan: &Scan<'_>, out: &mut Vec<Detection>) {
        if !scan.enabled(Kind::PersonName) && !scan.enabled(Kind::StreetAddress) {
            return;
        }
        if let Structure::Delimited { delimiter, columns } = scan.structure
            && columns.iter().any(|c| matches!(c, Some(Hint::Name | Hint::Address)))
        {
            cells(scan, *delimiter, columns, out);
        }
        self.json(scan, out);
    }

    /// `"name": "Jane Doe"` and `"address": "…"`: every `":` is the end of a JSON key.
    fn json(&self, scan: &Scan<'_>, out: &mut Vec<Detection>) {
        let bytes = scan.bytes();
        for colon in self.key_ends.find_iter(bytes) {
            // `key_end` is the closing quote of the key.
            let key_end = colon;
            // Keys that can name a person or an address end in e/s/t/r/1 (name, address,
            // street, addr, line1): a cheap test before reading the key.
            if key_end == 0
                || !matches!(
                    bytes[key_end - 1].to_ascii_lowercase(),
                    b'e' | b's' | b't' | b'r' | b'1'
                )
            {
                continue;
            }
            let floor = key_end.saturating_sub(48);
            let Some(q) = memchr::memrchr(b'"', &bytes[floor..key_end]) else {
                continue;
            };
            let key_start = floor + q + 1;
            let Ok(key) = std::str::from_utf8(&bytes[key_start..key_end]) else {
                continue;
            };
            let Some(hint @ (Hint::Name | Hint::Address)) = context::hint_for_name(key) else {
                continue;
            };
            let mut i = key_end + 2;
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
                i += 1;
            }
            if bytes.get(i) != Some(&b'"') {
                continue;
            }
            let vs = i + 1;
            let Some(len) = bytes[vs..bytes.len().min(vs + 201)]
                .iter()
                .position(|c| matches!(c, b'"' | b'\\' | b'\n'))
            else {
                continue;
            };
            let ve = vs + len;
            if bytes[ve] != b'"' || !scan.in_emit_range(vs) || scan.open_right(ve + 1) {
                continue;
            }
            if parent_is_thing(bytes, key_start.saturating_sub(1)) {
                continue;
            }
            if let Some(d) = cell_detection(scan, vs, ve, hint, Reason::Key(hint)) {
                out.push(d);
            }
        }
    }
}

/// Cells of name and address columns, one line at a time.
fn cells(scan: &Scan<'_>, delimiter: u8, columns: &[Option<Hint>], out: &mut Vec<Detection>) {
    let bytes = scan.bytes();
    let (from, to) = (scan.chunk.emit_from, scan.chunk.emit_to.min(bytes.len()));
    // First line start at or after `from` (the header line, at stream start, is skipped).
    let mut line = match memchr::memrchr(b'\n', &bytes[..from]) {
        Some(p) if p + 1 == from => from,
        _ => match memchr::memchr(b'\n', &bytes[from..]) {
            Some(p) => from + p + 1,
            None => return,
        },
    };
    while line < to {
        let end = memchr::memchr(b'\n', &bytes[line..]).map_or(bytes.len(), |p| line + p);
        if end == bytes.len() && !scan.chunk.stream_end {
            break;
        }
        let mut col = 0;
        let mut cell_start = line;
        let mut quoted = false;
        for k in line..=end {
            let c = if k < end { bytes[k] } else { delimiter };
            if c == b'"' {
                quoted = !quoted;
            } else if c == delimiter && !quoted || k == end {
                if let Some(Some(hint @ (Hint::Name | Hint::Address))) = columns.get(col) {
                    let (mut s, mut e) = (cell_start, k);
                    while s < e && matches!(bytes[s], b' ' | b'"' | b'\t') {
                        s += 1;
                    }
                    while e > s && matches!(bytes[e - 1], b' ' | b'"' | b'\r' | b'\t') {
                        e -= 1;
                    }
                    if let Some(d) = cell_detection(scan, s, e, *hint, Reason::Column(*hint)) {
                        out.push(d);
                    }
                }
                col += 1;
                cell_start = k + 1;
            }
        }
        line = end + 1;
    }
}

fn cell_detection(
    scan: &Scan<'_>,
    s: usize,
    e: usize,
    hint: Hint,
    reason: Reason,
) -> Option<Detection> {
    let value = &scan.bytes()[s..e];
    let letters = value.iter().filter(|c| c.is_ascii_alphabetic() || **c >= 0x80).count();
    // An `@` is an email; a `*` is a value already masked (custody's own redaction).
    if letters < 2 || value.len() > 200 || value.contains(&b'@') || value.contains(&b'*') {
        return None;
    }
    let lower = String::from_utf8_lossy(value).to_ascii_lowercase();
    if EMPTY_WORDS.contains(&lower.as_str()) {
        return None;
    }
    let kind = match hint {
        Hint::Name => {
            if value.iter().any(u8::is_ascii_digit) {
                return None;
            }
            Kind::PersonName
        }
        _ => Kind::StreetAddress,
    };
    if !scan.enabled(kind) {
        return None;
    }
    Some(scan.detection(kind, s, e, 0.8, vec![reason]))
}

/// Whether the JSON object holding the key that starts at `pos` sits under a key naming a
/// thing: `"items": [{"name": …}, {"name": …}]`, `"product": {"name": …}`.
fn parent_is_thing(bytes: &[u8], pos: usize) -> bool {
    let floor = pos.saturating_sub(2048);
    let Some(object) = unclosed(bytes, floor, pos, b'{') else {
        return false;
    };
    // What holds the object: a key (`"product": {`) or an array (`"items": [{…}, {`).
    let mut k = object;
    while k > floor && bytes[k - 1].is_ascii_whitespace() {
        k -= 1;
    }
    if k > floor && matches!(bytes[k - 1], b',' | b'[') {
        match unclosed(bytes, floor, k, b'[') {
            Some(array) => k = array,
            None => return false,
        }
        while k > floor && bytes[k - 1].is_ascii_whitespace() {
            k -= 1;
        }
    }
    if k == floor || bytes[k - 1] != b':' {
        return false;
    }
    k -= 1;
    while k > floor && bytes[k - 1].is_ascii_whitespace() {
        k -= 1;
    }
    if k == floor || bytes[k - 1] != b'"' {
        return false;
    }
    let key_end = k - 1;
    let Some(q) = memchr::memrchr(b'"', &bytes[floor..key_end]) else {
        return false;
    };
    let key = String::from_utf8_lossy(&bytes[floor + q + 1..key_end]).to_ascii_lowercase();
    THING_PARENTS.contains(&key.as_str()) || key.ends_with("items") || key.ends_with("products")
}

/// The position of the nearest `open` bracket before `pos` that is not closed before `pos`.
fn unclosed(bytes: &[u8], floor: usize, pos: usize, open: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    while i > floor {
        i -= 1;
        match bytes[i] {
            b'}' | b']' => depth += 1,
            b'{' | b'[' if depth > 0 => depth -= 1,
            c @ (b'{' | b'[') => return (c == open).then_some(i),
            _ => {}
        }
    }
    None
}

/// A ZIP code at `zip_start..zip_end`: if a full street address ends right before it,
/// report the whole address.
pub(crate) fn address_before_zip(
    scan: &Scan<'_>,
    zip_start: usize,
    zip_end: usize,
) -> Option<Detection> {
    if !scan.enabled(Kind::StreetAddress) {
        return None;
    }
    let bytes = scan.bytes();
    // Cheap gate: ", ST " right before the ZIP.
    if zip_start < 4 || bytes[zip_start - 1] != b' ' {
        return None;
    }
    let state = &bytes[zip_start - 3..zip_start - 1];
    if !STATES.iter().any(|s| s.as_bytes() == state) {
        return None;
    }
    let from = zip_start.saturating_sub(160);
    let from = memchr::memrchr(b'\n', &bytes[from..zip_start]).map_or(from, |p| from + p + 1);
    let m = FULL_ADDRESS.find(&bytes[from..zip_start])?;
    let start = from + m.start();
    if !scan.in_emit_range(start) || scan.open_left(from) && m.start() == 0 {
        return None;
    }
    Some(scan.detection(
        Kind::StreetAddress,
        start,
        zip_end,
        0.85,
        vec![Reason::Validator("us-address-pattern")],
    ))
}
