//! The detector: runs every matcher over one buffer and scores what they find.
//!
//! A caller (custody-scan) hands in a [`Chunk`]: a buffer, whether it begins and ends the
//! stream, and the range in which detections should be reported. Matchers look at
//! neighbouring bytes for boundaries and context, so the caller keeps an overlap of
//! [`Detector::overlap`] bytes between chunks and reports each detection exactly once.

use std::fmt;

use crate::context::{self, Hint, Keywords, Nearby};
use crate::value::SensitiveValue;
use crate::{Kind, email, numeric, secrets, structured};

/// Why a detection was made or how its confidence was adjusted. Stable strings in output.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A validator passed (`luhn`, `iin:visa`, `ssn-rules`, `mod97`, `aba-checksum`, …).
    Validator(&'static str),
    /// A keyword was found near the value (`context:card`).
    Context(&'static str),
    /// The value sits in a column whose header says what it is (`column:ssn`).
    Column(Hint),
    /// The value is written under a key that says what it is (`key:ssn`).
    Key(Hint),
    /// Negative context lowered the confidence (`negative:order`).
    Negative(&'static str),
    /// The phone number is valid in this region's numbering plan (`numbering-plan:US`).
    NumberingPlan(&'static str),
    /// A published test number (`test-card`).
    TestCard,
    /// A format that adds or removes evidence (`format:grouped`, `format:role-account`).
    Format(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Validator(v) => f.write_str(v),
            Reason::Context(w) => write!(f, "context:{w}"),
            Reason::Column(h) => write!(f, "column:{}", h.as_str()),
            Reason::Key(h) => write!(f, "key:{}", h.as_str()),
            Reason::Negative(w) => write!(f, "negative:{w}"),
            Reason::NumberingPlan(region) => write!(f, "numbering-plan:{region}"),
            Reason::TestCard => f.write_str("test-card"),
            Reason::Format(w) => write!(f, "format:{w}"),
        }
    }
}

/// One value found in a buffer.
#[derive(Clone, Debug)]
pub struct Detection {
    /// What it is.
    pub kind: Kind,
    /// A finer label where one exists (`aws_access_key_id`, `v6`).
    pub subkind: Option<&'static str>,
    /// Byte offset of the first byte, relative to the chunk buffer.
    pub start: usize,
    /// Byte offset one past the last byte, relative to the chunk buffer.
    pub end: usize,
    /// How sure we are, 0–1.
    pub confidence: f32,
    /// Why.
    pub reasons: Vec<Reason>,
    /// A published test card number (reported with low confidence, never as a real card).
    pub test_card: bool,
    /// The matched value. Masked whenever printed.
    pub value: SensitiveValue,
}

/// How a buffer is structured, which decides what counts as context.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Structure {
    /// Free text: keywords and keys are the only context.
    #[default]
    Plain,
    /// CSV/TSV: every value is also in a column whose header is context.
    Delimited {
        /// The field separator.
        delimiter: u8,
        /// What each column's header says, by position.
        columns: Vec<Option<Hint>>,
    },
}

impl Structure {
    /// Reads a header line and returns a delimited structure if it looks like one: at least
    /// two fields, none of them looking like data (no `@`, no long digit runs).
    pub fn from_header(line: &[u8]) -> Option<Structure> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let delimiter = [b'\t', b',', b';', b'|']
            .into_iter()
            .max_by_key(|d| line.iter().filter(|c| *c == d).count())?;
        let fields: Vec<&[u8]> = line.split(|c| *c == delimiter).collect();
        if fields.len() < 2 {
            return None;
        }
        let looks_like_data = |f: &[u8]| {
            f.contains(&b'@')
                || f.windows(4).any(|w| w.iter().all(u8::is_ascii_digit))
                || f.len() > 64
        };
        if fields.iter().any(|f| looks_like_data(f)) {
            return None;
        }
        let columns = fields
            .iter()
            .map(|f| std::str::from_utf8(f).ok().and_then(context::hint_for_name))
            .collect();
        Some(Structure::Delimited { delimiter, columns })
    }
}

/// Detector settings.
#[derive(Clone, Debug)]
pub struct DetectorConfig {
    enabled: [bool; Kind::ALL.len()],
    /// Bytes before a candidate searched for keywords (after: a quarter of it).
    pub context_window: usize,
    /// Detections below this confidence are dropped.
    pub min_confidence: f32,
    /// Dates of birth after this year are rejected.
    pub current_year: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            enabled: [true; Kind::ALL.len()],
            context_window: 48,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            current_year: current_year(),
        }
    }
}

/// Default confidence threshold: keeps test cards (0.35) and drops values whose negative
/// context (order, invoice, tracking numbers) outweighs their validation.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.3;

impl DetectorConfig {
    /// A stable text naming every setting that changes what is detected, for keys such as
    /// the scan cache's: the kinds by name, the context window, the threshold (exact, as
    /// its bits) and the year dates of birth are checked against. Unlike `Debug`, it does
    /// not change when a field is renamed or reordered.
    pub fn fingerprint(&self) -> String {
        let kinds: Vec<&str> = Kind::ALL
            .iter()
            .zip(self.enabled)
            .filter(|(_, on)| *on)
            .map(|(k, _)| k.as_str())
            .collect();
        format!(
            "kinds={};window={};min={:08x};year={}",
            kinds.join(","),
            self.context_window,
            self.min_confidence.to_bits(),
            self.current_year
        )
    }

    /// Restricts detection to `kinds` (an empty slice enables every kind).
    #[must_use]
    pub fn with_kinds(mut self, kinds: &[Kind]) -> Self {
        if !kinds.is_empty() {
            self.enabled = [false; Kind::ALL.len()];
            for k in kinds {
                self.enabled[*k as usize] = true;
            }
        }
        self
    }

    /// Whether `kind` is detected.
    pub fn is_enabled(&self, kind: Kind) -> bool {
        self.enabled[kind as usize]
    }
}

/// This year in UTC (dates of birth in the future are not dates of birth).
fn current_year() -> u32 {
    jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year().unsigned_abs().into()
}

/// A buffer to scan and where in it to report.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    /// The bytes, including overlap on both sides.
    pub bytes: &'a [u8],
    /// `bytes[0]` is the first byte of the stream (nothing precedes it).
    pub stream_start: bool,
    /// The stream ends with `bytes`.
    pub stream_end: bool,
    /// Report detections that start at or after this offset…
    pub emit_from: usize,
    /// …and before this one.
    pub emit_to: usize,
}

impl<'a> Chunk<'a> {
    /// A whole, self-contained buffer.
    pub fn whole(bytes: &'a [u8]) -> Self {
        Self { bytes, stream_start: true, stream_end: true, emit_from: 0, emit_to: bytes.len() }
    }
}

/// Detects customer data in buffers. Cheap to share across threads.
pub struct Detector {
    config: DetectorConfig,
    keywords: Keywords,
    secrets: secrets::Secrets,
    structured: structured::Structured,
}

impl Detector {
    /// Builds a detector.
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            keywords: Keywords::new(),
            secrets: secrets::Secrets::new(),
            structured: structured::Structured::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Bytes of overlap a caller must keep between consecutive chunks so that every value,
    /// with its context, is seen whole in one of them.
    pub fn overlap(&self) -> usize {
        // Longest value we match (a PEM header or URL password ≤ 1 KiB) plus context.
        2048 + 2 * self.config.context_window
    }

    /// Scans `chunk` and appends detections, sorted by start, to `out`.
    pub fn detect(&self, chunk: &Chunk<'_>, structure: &Structure, out: &mut Vec<Detection>) {
        let scan = Scan { det: self, chunk: *chunk, structure };
        let mut found = Vec::new();
        numeric::scan(&scan, &mut found);
        email::scan(&scan, &mut found);
        self.secrets.scan(&scan, &mut found);
        self.structured.scan(&scan, &mut found);
        found.retain(|d| {
            d.start >= chunk.emit_from
                && d.start < chunk.emit_to
                && self.config.is_enabled(d.kind)
                && d.confidence >= self.config.min_confidence
        });
        found.sort_by(|a, b| a.start.cmp(&b.start).then(b.confidence.total_cmp(&a.confidence)));
        // Overlapping detections: keep the more confident one.
        let first = out.len();
        for d in found {
            if let Some(last) = out[first..].last_mut()
                && d.start < last.end
            {
                if d.confidence > last.confidence {
                    *last = d;
                }
                continue;
            }
            out.push(d);
        }
    }
}

/// Evidence around one candidate.
pub(crate) struct Evidence {
    pub nearby: Nearby,
    pub key: Option<Hint>,
    pub column: Option<Hint>,
}

impl Evidence {
    /// Applies context to a base confidence for a value of meaning `hint`.
    ///
    /// Negative context (order, invoice, tracking, SKU numbers) only applies to bare numbers
    /// that could be such identifiers, and only when it comes right before the value:
    /// an email or an IBAN is what it is whatever surrounds it.
    pub fn score(&self, base: f32, hint: Hint, reasons: &mut Vec<Reason>) -> f32 {
        /// A negative keyword names a number at most this far after it (`Invoice # 123`).
        const NEGATIVE_REACH: u16 = 24;
        let mut conf = base;
        let positive = if self.column == Some(hint) {
            reasons.push(Reason::Column(hint));
            conf += (1.0 - conf) * 0.8;
            Some(0)
        } else if self.key == Some(hint) {
            reasons.push(Reason::Key(hint));
            conf += (1.0 - conf) * 0.8;
            Some(0)
        } else if let Some((d, word)) = self.nearby.get(hint) {
            reasons.push(Reason::Context(word));
            conf += (1.0 - conf) * 0.6;
            Some(d)
        } else {
            None
        };
        let numeric = !matches!(hint, Hint::Email | Hint::Iban | Hint::Name | Hint::Address);
        let negative = if !numeric {
            None
        } else if self.column == Some(Hint::Negative) {
            Some(("column", 0))
        } else if self.key == Some(Hint::Negative) {
            Some(("key", 0))
        } else {
            self.nearby
                .get(Hint::Negative)
                .filter(|(d, _)| *d <= NEGATIVE_REACH)
                .map(|(d, w)| (w, d))
        };
        if let Some((word, d)) = negative {
            // The nearer context wins; a column header beats a keyword either way.
            let outweighed = positive.is_some_and(|p| p < d) && self.column != Some(Hint::Negative);
            if !outweighed {
                reasons.push(Reason::Negative(word));
                conf *= 0.3;
            }
        }
        conf.clamp(0.0, 1.0)
    }

    /// Whether anything says the value is of this meaning: its column, its key, or a
    /// keyword close enough to name it (values that need context to count at all use this).
    pub fn supports(&self, hint: Hint) -> bool {
        self.strength(hint).is_some()
    }

    /// Distance rank for choosing between meanings: a column or key beats any keyword, a
    /// nearer keyword beats a farther one, and keywords beyond [`NAMING_REACH`] do not count.
    pub fn strength(&self, hint: Hint) -> Option<u32> {
        if self.column == Some(hint) || self.key == Some(hint) {
            Some(0)
        } else {
            self.nearby.get(hint).filter(|(d, _)| *d <= NAMING_REACH).map(|(d, _)| 1 + u32::from(d))
        }
    }
}

/// How far a keyword may stand from a bare value that needs it (`SSN: 123456789`,
/// `social security number 123456789`); farther away it describes some other value.
const NAMING_REACH: u16 = 32;

/// One scan of one chunk: the shared state matchers need.
pub(crate) struct Scan<'a> {
    pub det: &'a Detector,
    pub chunk: Chunk<'a>,
    pub structure: &'a Structure,
}

impl Scan<'_> {
    pub fn bytes(&self) -> &[u8] {
        self.chunk.bytes
    }

    pub fn enabled(&self, kind: Kind) -> bool {
        self.det.config.is_enabled(kind)
    }

    pub fn current_year(&self) -> u32 {
        self.det.config.current_year
    }

    /// Whether a candidate at `start` could be reported from this chunk (saves work on
    /// candidates in the overlap that the neighbouring chunk reports).
    pub fn in_emit_range(&self, start: usize) -> bool {
        start >= self.chunk.emit_from && start < self.chunk.emit_to
    }

    /// Evidence for a value that counts only with context (a bare 9-digit number, a date
    /// of birth): keywords within [`NAMING_REACH`] of it are all that can name it or, for
    /// negative words, deny it, so the search stays that small.
    pub fn evidence_near(&self, start: usize, end: usize) -> Evidence {
        self.evidence_within(start, end, usize::from(NAMING_REACH), usize::from(NAMING_REACH) / 2)
    }

    /// Gathers keywords, the key and the column around `bytes[start..end]`.
    pub fn evidence(&self, start: usize, end: usize) -> Evidence {
        let window = self.det.config.context_window;
        self.evidence_within(start, end, window, window / 4)
    }

    fn evidence_within(&self, start: usize, end: usize, before: usize, after: usize) -> Evidence {
        let bytes = self.bytes();
        let from = start.saturating_sub(before);
        let to = (end + after).min(bytes.len());
        // Keywords on the same line only: the line before is a different record.
        let line_from = memchr::memrchr(b'\n', &bytes[from..start]).map_or(from, |p| from + p + 1);
        let line_to = memchr::memchr(b'\n', &bytes[end..to]).map_or(to, |p| end + p);
        let Evidence { key, column, .. } = self.structural_evidence(start);
        // A value under an `order_id` key or in a `tracking_number` column is that, whatever
        // words surround it (see `score`): skip the keyword search.
        let nearby = if key == Some(Hint::Negative) || column == Some(Hint::Negative) {
            Nearby::default()
        } else {
            self.det.keywords.scan(bytes, line_from, line_to, start, end)
        };
        Evidence { nearby, key, column }
    }

    /// Only the key and the column around a value that validates on its own (an email, an
    /// IBAN): keywords could not change what it is, and searching for them is the costly
    /// part of gathering evidence.
    pub fn structural_evidence(&self, start: usize) -> Evidence {
        let bytes = self.bytes();
        let key = context::key_before(bytes, start)
            .and_then(|(s, e)| std::str::from_utf8(&bytes[s..e]).ok())
            .and_then(context::hint_for_name);
        Evidence { nearby: Nearby::default(), key, column: self.column_of(start) }
    }

    /// The header hint of the delimited column containing offset `pos`.
    fn column_of(&self, pos: usize) -> Option<Hint> {
        let Structure::Delimited { delimiter, columns } = self.structure else {
            return None;
        };
        let bytes = self.bytes();
        let line_start = match memchr::memrchr(b'\n', &bytes[..pos]) {
            Some(p) => p + 1,
            // The header line itself holds no values.
            None if self.chunk.stream_start => return None,
            None => return None,
        };
        let mut index = 0;
        let mut quoted = false;
        for &c in &bytes[line_start..pos] {
            if c == b'"' {
                quoted = !quoted;
            } else if c == *delimiter && !quoted {
                index += 1;
            }
        }
        columns.get(index).copied().flatten()
    }

    /// Builds a detection over `bytes[start..end]`.
    pub fn detection(
        &self,
        kind: Kind,
        start: usize,
        end: usize,
        confidence: f32,
        reasons: Vec<Reason>,
    ) -> Detection {
        let raw = &self.bytes()[start..end];
        let value = match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            // Not UTF-8: the text is Latin-1 (each byte one code point).
            Err(_) => raw.iter().map(|b| char::from(*b)).collect(),
        };
        Detection {
            kind,
            subkind: None,
            start,
            end,
            confidence,
            reasons,
            test_card: false,
            value: SensitiveValue::new(value),
        }
    }

    /// Whether the byte before `pos` is unknown (chunk start, not stream start).
    pub fn open_left(&self, pos: usize) -> bool {
        pos == 0 && !self.chunk.stream_start
    }

    /// Whether the byte at `pos` is unknown (chunk end, not stream end).
    pub fn open_right(&self, pos: usize) -> bool {
        pos >= self.bytes().len() && !self.chunk.stream_end
    }
}
