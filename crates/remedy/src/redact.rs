//! Redaction: the same file, with every value found replaced by its masked form, still a
//! valid file of its format.
//!
//! - Text, CSV/TSV and HTML: each value's bytes are replaced by its mask (`*****6789`),
//!   with characters that mean something in these formats (`,` `"` `<` `&`…) masked too.
//! - JSON and NDJSON: the same inside strings; a bare number that is a value (a card
//!   number written as a number) becomes a string holding its mask, so the file still parses.
//! - docx and xlsx: the text of every paragraph (Word) and of every shared string, inline
//!   string and text cell (Excel) is checked as one piece, so a value split across
//!   formatting runs is still found; the masked text is written back into the runs. A
//!   number cell holding a value becomes a string cell holding its mask (`0` if a formula
//!   computes it). Every other part of the package is copied byte for byte.
//!
//! The caller re-scans the result before it replaces anything (see [`super::Fixer`]).

use std::io::{Cursor, Read, Write};

use aho_corasick::{AhoCorasick, MatchKind};
use custody_detect::{
    Chunk, Detection, Detector, Kind, PEM_REACH, SensitiveValue, Structure, mask,
};
use custody_extract::Format;
use quick_xml::events::Event;

/// Files bigger than this are not redacted in place (quarantine them instead).
pub const MAX_REDACT: u64 = 256 << 20;

/// The formats redaction rewrites.
pub fn redactable(format: Format) -> bool {
    matches!(
        format,
        Format::Text
            | Format::Delimited
            | Format::Json
            | Format::Ndjson
            | Format::Html
            | Format::Docx
            | Format::Xlsx
    )
}

/// A redacted file, and how many values were masked.
pub struct Redacted {
    /// The new content.
    pub bytes: Vec<u8>,
    /// Values masked.
    pub values: u64,
}

/// Why a file could not be redacted.
#[derive(Debug)]
pub enum RedactError {
    /// Not a format redaction can rewrite.
    Unsupported,
    /// UTF-16 text: not rewritten (quarantine it instead).
    Utf16,
    /// The document's package or XML is damaged.
    Damaged(&'static str),
    /// An Office document keeps a value in a part redaction does not rewrite (a chart or
    /// pivot cache, an embedded file, document properties, a link): rewriting the text
    /// would leave the value behind, so the file is not redacted.
    HiddenPart(&'static str),
}

impl std::fmt::Display for RedactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedactError::Unsupported => f.write_str(
                "this kind of file cannot be redacted (text, CSV, JSON, HTML, docx and xlsx can)",
            ),
            RedactError::Utf16 => f.write_str("UTF-16 text files are not redacted"),
            RedactError::Damaged(what) => write!(f, "the file is damaged: {what}"),
            RedactError::HiddenPart(what) => write!(
                f,
                "the document also keeps values in {what}, which redaction cannot rewrite"
            ),
        }
    }
}

/// Redacts `bytes`, a file of `format`.
pub fn redact(format: Format, bytes: &[u8], finder: &Finder<'_>) -> Result<Redacted, RedactError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(RedactError::Utf16);
    }
    match format {
        Format::Text | Format::Html => Ok(text(bytes, &Structure::Plain, finder, false)),
        Format::Delimited => {
            let first = memchr::memchr(b'\n', bytes).map_or(bytes, |p| &bytes[..p]);
            let structure = Structure::from_header(first).unwrap_or_default();
            Ok(text(bytes, &structure, finder, false))
        }
        Format::Json | Format::Ndjson => {
            let redacted = text(bytes, &Structure::Plain, finder, true);
            // JSON that parsed before must parse after.
            if parses(format, bytes) && !parses(format, &redacted.bytes) {
                return Err(RedactError::Damaged("the redacted JSON would not parse"));
            }
            Ok(redacted)
        }
        Format::Docx => office(bytes, finder, &DOCX),
        Format::Xlsx => office(bytes, finder, &XLSX),
        _ => Err(RedactError::Unsupported),
    }
}

fn parses(format: Format, bytes: &[u8]) -> bool {
    use serde::de::IgnoredAny;
    if format == Format::Ndjson {
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .all(|l| serde_json::from_slice::<IgnoredAny>(l).is_ok())
    } else {
        serde_json::from_slice::<IgnoredAny>(bytes).is_ok()
    }
}

/// A value's replacement: its mask, without characters that are syntax in the formats
/// redaction writes (so a masked value never opens a quote, a tag or an entity).
fn replacement(kind: Kind, value: &str) -> String {
    mask(kind, value)
        .chars()
        .map(|c| {
            if matches!(c, ',' | ';' | '"' | '\'' | '<' | '>' | '&' | '\\' | '\t') {
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// What redaction masks: what the detector finds in the text itself, and every
/// occurrence (as a whole word) of the values a scan of the whole file found — values the
/// detector recognises only with the document around them (a name under a `name` column
/// header in a spreadsheet whose cells are read one by one here).
pub struct Finder<'a> {
    detector: &'a Detector,
    known: Option<(AhoCorasick, Vec<(Kind, SensitiveValue)>)>,
}

impl<'a> Finder<'a> {
    /// A finder for `detector` and the `known` values of the file.
    pub fn new(detector: &'a Detector, known: &[(Kind, SensitiveValue)]) -> Self {
        let mut values: Vec<(Kind, SensitiveValue)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (kind, value) in known {
            if value.expose().len() >= 2 && seen.insert(value.expose()) {
                values.push((*kind, value.clone()));
            }
        }
        let known = (!values.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(values.iter().map(|(_, v)| v.expose()))
                    .ok()
                    .map(|ac| (ac, values))
            })
            .flatten();
        Self { detector, known }
    }

    /// Values starting in the chunk's emit range, in order, without overlaps; offsets
    /// relative to the chunk.
    fn find(&self, chunk: &Chunk<'_>, structure: &Structure) -> Vec<Detection> {
        let mut out = Vec::new();
        self.detector.detect(chunk, structure, &mut out);
        if let Some((ac, values)) = &self.known {
            let bytes = chunk.bytes;
            let word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
            for m in ac.find_iter(bytes) {
                let (start, end) = (m.start(), m.end());
                if !(chunk.emit_from..chunk.emit_to).contains(&start) {
                    continue;
                }
                if (start > 0 && word(bytes[start - 1])) || (end < bytes.len() && word(bytes[end]))
                {
                    continue;
                }
                let (kind, value) = &values[m.pattern().as_usize()];
                out.push(Detection {
                    kind: *kind,
                    subkind: None,
                    start,
                    end,
                    confidence: 1.0,
                    reasons: Vec::new(),
                    test_card: false,
                    value: value.clone(),
                });
            }
        }
        out.sort_by_key(|d| (d.start, std::cmp::Reverse(d.end)));
        // Overlapping detections (one value seen twice, or as two kinds): the first wins.
        let mut end = 0;
        out.retain(|d| {
            let keep = d.start >= end;
            if keep {
                end = d.end;
            }
            keep
        });
        out
    }
}

/// Text is checked in windows of this many bytes (ending at a line end), with the
/// detector's overlap on both sides, so memory follows the window, not the file.
const WINDOW: usize = 4 << 20;

/// A window ending at `to` must not cut a private key's PEM block, or its tail (in the next
/// window, behind text already written) would be left in clear: when a BEGIN line in the
/// last [`PEM_REACH`] bytes before `to` has no END line before `to`, the window ends after
/// the next END line instead.
fn past_open_key_block(bytes: &[u8], to: usize) -> usize {
    let from = to.saturating_sub(PEM_REACH);
    let Some(begin) = memchr::memmem::rfind(&bytes[from..to], b"-----BEGIN ") else {
        return to;
    };
    if memchr::memmem::find(&bytes[from + begin..to], b"-----END ").is_some() {
        return to;
    }
    let ahead = &bytes[to..(to + PEM_REACH).min(bytes.len())];
    memchr::memmem::find(ahead, b"-----END ").map_or(to, |end| {
        let at = to + end;
        memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |nl| at + nl + 1)
    })
}

fn text(bytes: &[u8], structure: &Structure, finder: &Finder<'_>, json: bool) -> Redacted {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    let mut values = 0;
    // For JSON: whether position `at` is inside a string, tracked as we go.
    let mut strings = JsonStrings::default();
    let overlap = finder.detector.overlap();
    let mut from = 0;
    while from < bytes.len() {
        let mut to = (from + WINDOW).min(bytes.len());
        if to < bytes.len() {
            to = memchr::memchr(b'\n', &bytes[to..]).map_or(bytes.len(), |nl| to + nl + 1);
            to = past_open_key_block(bytes, to);
        }
        let lo = from.saturating_sub(overlap);
        let hi = (to + overlap).min(bytes.len());
        let chunk = Chunk {
            bytes: &bytes[lo..hi],
            stream_start: lo == 0,
            stream_end: hi == bytes.len(),
            emit_from: from - lo,
            emit_to: to - lo,
        };
        for d in finder.find(&chunk, structure) {
            let (start, end) = (lo + d.start, lo + d.end);
            if start < at {
                continue; // overlaps a value already replaced
            }
            values += 1;
            mask_span(bytes, &mut out, &mut at, &mut strings, json, (start, end), &d);
        }
        from = to;
    }
    out.extend_from_slice(&bytes[at..]);
    Redacted { bytes: out, values }
}

/// Copies `bytes[at..start]` and the replacement of the value at `start..end`.
fn mask_span(
    bytes: &[u8],
    out: &mut Vec<u8>,
    at: &mut usize,
    strings: &mut JsonStrings,
    json: bool,
    (mut start, mut end): (usize, usize),
    d: &Detection,
) {
    let in_string = strings.advance(&bytes[*at..start]);
    let bare = json && !in_string;
    if bare {
        // A bare number: the whole token goes (`-4539….0e0`), or quoting it would leave
        // half a number beside the string.
        while start > *at && matches!(bytes[start - 1], b'-' | b'0'..=b'9') {
            start -= 1;
        }
        while end < bytes.len()
            && matches!(bytes[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        {
            end += 1;
        }
    }
    out.extend_from_slice(&bytes[*at..start]);
    let masked = replacement(d.kind, d.value.expose());
    if bare {
        out.push(b'"');
        out.extend_from_slice(masked.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(masked.as_bytes());
    }
    strings.advance(&bytes[start..end]);
    *at = end;
}

/// Tracks whether a JSON text is inside a string.
#[derive(Default)]
struct JsonStrings {
    inside: bool,
    escaped: bool,
}

impl JsonStrings {
    /// Consumes `bytes`; returns whether the position after them is inside a string.
    fn advance(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.escaped {
                self.escaped = false;
            } else if self.inside && b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.inside = !self.inside;
            }
        }
        self.inside
    }
}

/// Which parts of an Office package hold text (custody-extract's list, so redaction rewrites
/// what reading reads), and how.
struct OfficeRule {
    /// Part names to rewrite.
    parts: fn(&str) -> bool,
    /// Elements whose content is text.
    text: &'static [&'static str],
    /// Elements that hold one piece of text (a paragraph, a shared string, a cell).
    block: &'static [&'static str],
    /// Excel: `<v>` of number cells holds a number.
    cells: bool,
}

const DOCX: OfficeRule = OfficeRule {
    parts: |name| custody_extract::ooxml_text_part(Format::Docx, name),
    text: &["t"],
    block: &["p"],
    cells: false,
};

const XLSX: OfficeRule = OfficeRule {
    parts: |name| custody_extract::ooxml_text_part(Format::Xlsx, name),
    text: &["t"],
    block: &["si", "c", "comment"],
    cells: true,
};

fn office(bytes: &[u8], finder: &Finder<'_>, rule: &OfficeRule) -> Result<Redacted, RedactError> {
    let damaged = || RedactError::Damaged("the document's package (zip) cannot be read");
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| damaged())?;
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(bytes.len())));
    let mut values = 0;
    for i in 0..archive.len() {
        let name = archive
            .by_index_raw(i)
            .map_err(|_| damaged())?
            .name()
            .map_err(|_| damaged())?
            .to_string();
        if !(rule.parts)(&name) {
            // Review item 8: a part copied as it is must hold no value (a chart's cached
            // labels, a pivot cache, a `mailto:` link, document properties), and an
            // embedded file cannot be checked at all: either refuses the redaction.
            if !inert_part(&name) {
                let what = hidden_part(&name);
                if what == "an embedded file" {
                    return Err(RedactError::HiddenPart(what));
                }
                let mut entry = archive.by_index(i).map_err(|_| damaged())?;
                if entry.size() > MAX_REDACT {
                    return Err(RedactError::HiddenPart(what));
                }
                let mut part = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut part).map_err(|_| damaged())?;
                drop(entry);
                if holds_a_value(&part, finder) {
                    return Err(RedactError::HiddenPart(what));
                }
            }
            let entry = archive.by_index_raw(i).map_err(|_| damaged())?;
            out.raw_copy_file(entry).map_err(|_| damaged())?;
            continue;
        }
        let mut entry = archive.by_index(i).map_err(|_| damaged())?;
        if entry.size() > MAX_REDACT {
            return Err(RedactError::Damaged("a part of the document is too large"));
        }
        let mut xml = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut xml).map_err(|_| damaged())?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(entry.last_modified().unwrap_or_default());
        drop(entry);
        let (rewritten, n) = redact_xml(&xml, finder, rule)?;
        // Values outside the text elements redaction rewrites (a chart's cached numbers in
        // a docx, an attribute) are still there: refuse rather than leave them.
        if holds_a_value(&rewritten, finder) {
            return Err(RedactError::HiddenPart(hidden_part(&name)));
        }
        values += n;
        out.start_file(name, options).map_err(|_| damaged())?;
        out.write_all(&rewritten).map_err(|_| damaged())?;
    }
    let bytes = out.finish().map_err(|_| damaged())?.into_inner();
    Ok(Redacted { bytes, values })
}

/// Parts of an Office package that hold layout only (styles, themes, fonts, settings,
/// images, the content-type list): copied without a look.
fn inert_part(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    lower == "[content_types].xml"
        || lower.contains("/theme/")
        || lower.contains("/media/")
        || matches!(
            file,
            "styles.xml"
                | "styleswitheffects.xml"
                | "settings.xml"
                | "fonttable.xml"
                | "websettings.xml"
                | "numbering.xml"
                | "calcchain.xml"
        )
        || lower.starts_with("word/fonts/")
}

/// What a part that redaction copies is, in the owner's words.
fn hidden_part(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let extension = std::path::Path::new(&lower).extension().and_then(|e| e.to_str());
    let bin = extension == Some("bin");
    if lower.contains("/embeddings/") || bin {
        "an embedded file"
    } else if lower.contains("pivotcache") || lower.contains("pivottable") {
        "a pivot table's cache"
    } else if lower.contains("/charts/") || lower.contains("/drawings/") {
        "a chart or drawing"
    } else if lower.contains("threadedcomment") || lower.contains("/persons/") {
        "a comment thread"
    } else if lower.starts_with("docprops/") || lower.starts_with("customxml/") {
        "the document's properties"
    } else if extension == Some("rels") {
        "a link (relationship)"
    } else if lower.contains("externallink")
        || lower.contains("querytable")
        || lower.contains("connections")
    {
        "a link to outside data"
    } else {
        "a part of the package"
    }
}

/// Whether the finder sees a value in `part` read as text (its XML markup included).
fn holds_a_value(part: &[u8], finder: &Finder<'_>) -> bool {
    let overlap = finder.detector.overlap();
    let mut from = 0;
    while from < part.len() {
        let to = (from + WINDOW).min(part.len());
        let lo = from.saturating_sub(overlap);
        let hi = (to + overlap).min(part.len());
        let chunk = Chunk {
            bytes: &part[lo..hi],
            stream_start: lo == 0,
            stream_end: hi == part.len(),
            emit_from: from - lo,
            emit_to: to - lo,
        };
        if !finder.find(&chunk, &Structure::Plain).is_empty() {
            return true;
        }
        from = to;
    }
    false
}

/// One run of text inside the XML: its raw (escaped) byte range.
struct Run {
    start: usize,
    end: usize,
    /// An Excel number cell's value: a value found here replaces the cell.
    number: Option<NumberCell>,
}

/// Where an Excel number cell is written, to turn it into a string cell holding a mask.
#[derive(Clone)]
struct NumberCell {
    /// The `<c …>` start tag, and what replaces it (the same attributes, a string type).
    tag: (usize, usize, Vec<u8>),
    /// `<v>…</v>`.
    value: (usize, usize),
    /// A formula computes it: the cell keeps its formula and its value becomes `0`.
    formula: bool,
}

fn redact_xml(
    xml: &[u8],
    finder: &Finder<'_>,
    rule: &OfficeRule,
) -> Result<(Vec<u8>, u64), RedactError> {
    let damaged = || RedactError::Damaged("the document's XML is damaged");
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut values = 0;
    let mut text_start: Option<usize> = None;
    // Excel: the type of the cell being read (`s` shared string, `n`/absent number…), its
    // start tag rewritten as a string cell's, whether it has a formula, where `<v>` began.
    let mut cell_type: Option<String> = None;
    let mut cell_tag: Option<(usize, usize, Vec<u8>)> = None;
    let mut formula = false;
    let mut value_open = 0;
    let mut value_start: Option<usize> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|_| damaged())?;
        match event {
            Event::Start(e) => {
                let local = e.local_name();
                let local = local.as_ref();
                if rule.text.contains(&local) {
                    text_start = Some(reader.buffer_position() as usize);
                } else if rule.cells && local == "c" {
                    cell_type = Some(
                        e.try_get_attribute("t")
                            .ok()
                            .flatten()
                            .map_or_else(|| "n".to_string(), |a| a.value.into_owned()),
                    );
                    let mut tag = b"<".to_vec();
                    tag.extend_from_slice(e.name().as_ref().as_bytes());
                    for a in e.attributes().flatten() {
                        if a.key.as_ref() != "t" {
                            tag.push(b' ');
                            tag.extend_from_slice(a.key.as_ref().as_bytes());
                            tag.extend_from_slice(b"=\"");
                            tag.extend_from_slice(a.value.as_bytes());
                            tag.push(b'"');
                        }
                    }
                    tag.extend_from_slice(br#" t="inlineStr">"#);
                    cell_tag = Some((before, reader.buffer_position() as usize, tag));
                    formula = false;
                } else if rule.cells && local == "f" {
                    formula = true;
                } else if rule.cells && local == "v" {
                    value_open = before;
                    value_start = Some(reader.buffer_position() as usize);
                }
            }
            Event::End(e) => {
                let local = e.local_name();
                let local = local.as_ref();
                if rule.text.contains(&local) {
                    if let Some(start) = text_start.take() {
                        runs.push(Run { start, end: before, number: None });
                    }
                } else if rule.cells
                    && local == "v"
                    && let Some(start) = value_start.take()
                {
                    match cell_type.as_deref() {
                        Some("n") => runs.push(Run {
                            start,
                            end: before,
                            number: cell_tag.clone().map(|tag| NumberCell {
                                tag,
                                value: (value_open, reader.buffer_position() as usize),
                                formula,
                            }),
                        }),
                        Some("str") => runs.push(Run { start, end: before, number: None }),
                        _ => {} // a shared-string index, a boolean, an error
                    }
                }
                if rule.block.contains(&local) {
                    values += block(xml, &runs, finder, &mut edits);
                    runs.clear();
                    if local == "c" {
                        cell_type = None;
                        cell_tag = None;
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if edits.is_empty() {
        return Ok((xml.to_vec(), 0));
    }
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(xml.len());
    let mut at = 0;
    for (start, end, with) in edits {
        if start < at {
            continue;
        }
        out.extend_from_slice(&xml[at..start]);
        out.extend_from_slice(&with);
        at = end;
    }
    out.extend_from_slice(&xml[at..]);
    Ok((out, values))
}

/// Checks the text of one block (its runs joined) and records the edits that mask what is
/// found: the mask goes into the run where the value starts, the value's bytes in later
/// runs are removed. Returns the values found.
fn block(
    xml: &[u8],
    runs: &[Run],
    finder: &Finder<'_>,
    edits: &mut Vec<(usize, usize, Vec<u8>)>,
) -> u64 {
    if runs.is_empty() {
        return 0;
    }
    let mut joined = Vec::new();
    let mut starts = Vec::with_capacity(runs.len()); // position of each run in `joined`
    for run in runs {
        starts.push(joined.len());
        joined.extend_from_slice(&xml[run.start..run.end]);
    }
    let found = finder.find(&Chunk::whole(&joined), &Structure::Plain);
    // Map a position in `joined` to (run index, position in the XML).
    let locate = |pos: usize| {
        let i = starts.partition_point(|&s| s <= pos).saturating_sub(1);
        (i, runs[i].start + (pos - starts[i]))
    };
    for d in &found {
        let (first, xml_start) = locate(d.start);
        let (last, xml_end) = locate(d.end.saturating_sub(1));
        let xml_end = xml_end + 1;
        let masked = replacement(d.kind, d.value.expose());
        if let Some(cell) = runs[first].number.as_ref().or(runs[last].number.as_ref()) {
            if cell.formula {
                // A formula's cached value: 0 (its formula is the owner's to review).
                let run = &runs[first];
                edits.push((run.start, run.end, b"0".to_vec()));
            } else {
                // A number cell becomes a string cell holding the mask.
                let (start, end, tag) = &cell.tag;
                edits.push((*start, *end, tag.clone()));
                let text = format!("<is><t>{masked}</t></is>");
                edits.push((cell.value.0, cell.value.1, text.into_bytes()));
            }
            continue;
        }
        if first == last {
            edits.push((xml_start, xml_end, masked.into_bytes()));
        } else {
            edits.push((xml_start, runs[first].end, masked.into_bytes()));
            for run in &runs[first + 1..last] {
                edits.push((run.start, run.end, Vec::new()));
            }
            edits.push((runs[last].start, xml_end, Vec::new()));
        }
    }
    found.len() as u64
}

#[cfg(test)]
mod tests {
    use custody_detect::DetectorConfig;

    use super::*;

    fn detector() -> Detector {
        Detector::new(DetectorConfig::default())
    }

    fn finder(d: &Detector) -> Finder<'_> {
        Finder::new(d, &[])
    }

    #[test]
    fn text_and_csv_keep_their_shape() {
        let d = detector();
        let csv = b"name,card,email\nAnn,4539 1488 0343 6467,ann@example.org\n";
        let r = redact(Format::Delimited, csv, &finder(&d)).unwrap();
        let out = String::from_utf8(r.bytes).unwrap();
        assert_eq!(r.values, 3, "the name, the card, the email: {out}");
        assert!(!out.contains("4539 1488 0343 6467") && !out.contains("ann@example.org"), "{out}");
        assert!(!out.contains("Ann"), "{out}");
        assert_eq!(out.lines().nth(1).unwrap().split(',').count(), 3, "{out}");
    }

    /// A PEM private key block: header, `lines` base64 lines of 64 characters, END line.
    fn key_block(lines: usize) -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for l in 0..lines {
            let line: String =
                (0..64).map(|i| alphabet[(l * 31 + i * 7 + l * i) % 64] as char).collect();
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }

    #[test]
    fn review_3_redacting_a_private_key_removes_the_whole_block() {
        let d = detector();
        // An Ed25519 key as OpenSSL writes it (PKCS#8), in a text file between other lines.
        let ed25519 = "-----BEGIN PRIVATE KEY-----\n\
                       MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
                       -----END PRIVATE KEY-----\n";
        let text = format!("deploy notes\n{ed25519}rsa below\n{}done\n", key_block(50));
        let r = redact(Format::Text, text.as_bytes(), &finder(&d)).unwrap();
        let out = String::from_utf8(r.bytes).unwrap();
        assert_eq!(r.values, 2, "{out}");
        assert!(!out.contains("MC4CAQAwBQYDK2Vw") && !out.contains("END PRIVATE"), "{out}");
        assert!(
            out.contains("deploy notes") && out.contains("rsa below") && out.ends_with("done\n")
        );
        for line in key_block(50).lines().skip(1) {
            assert!(!out.contains(line), "a body line is left: {line}");
        }
        // The check scan of the output finds nothing left of either key.
        let again = redact(Format::Text, out.as_bytes(), &finder(&d)).unwrap();
        assert_eq!(again.values, 0, "{}", String::from_utf8_lossy(&again.bytes));
    }

    #[test]
    fn review_3_a_key_across_a_window_boundary_is_removed_whole() {
        let d = detector();
        let block = key_block(60); // about 3.9 KiB, like an RSA-4096 key
        for before in [WINDOW - 1000, WINDOW - 3000, WINDOW - 100] {
            let mut text = "x".repeat(before - 1);
            text.push('\n');
            text.push_str(&block);
            text.push_str("tail line\n");
            let r = redact(Format::Text, text.as_bytes(), &finder(&d)).unwrap();
            let out = String::from_utf8(r.bytes).unwrap();
            assert_eq!(r.values, 1, "block at {before}");
            for line in block.lines().skip(1) {
                assert!(!out.contains(line), "block at {before}: a body line is left: {line}");
            }
            assert!(out.ends_with("tail line\n"));
        }
    }

    #[test]
    fn json_numbers_become_strings_and_the_file_still_parses() {
        let d = detector();
        let json = br#"{"card": 4539148803436467, "note": "card 5425 2334 3010 9903 \"ok\"", "email": "bob@example.com"}"#;
        let r = redact(Format::Json, json, &finder(&d)).unwrap();
        let out = String::from_utf8(r.bytes).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
        assert!(v["card"].is_string(), "{out}");

        assert!(!out.contains("4539148803436467") && !out.contains("bob@example.com"), "{out}");
        assert!(!out.contains("5425 2334 3010 9903"), "{out}");
        // A number with a fraction or a sign goes whole (found here as a value the scan of
        // the whole file reported).
        let signed = br#"{"a": -4539148803436467.0, "b": [4539148803436467.5E+2]}"#;
        let known = [(Kind::CreditCard, SensitiveValue::new("4539148803436467"))];
        let bytes = redact(Format::Json, signed, &Finder::new(&d, &known)).unwrap().bytes;
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("still JSON");
        assert!(v["a"].is_string() && v["b"][0].is_string(), "{v}");
    }

    #[test]
    fn a_value_split_across_word_runs_is_found_and_masked() {
        let xml = br#"<w:document><w:body><w:p><w:r><w:t>SSN 773-12-</w:t></w:r><w:r><w:t xml:space="preserve">3456 &amp; more</w:t></w:r></w:p></w:body></w:document>"#;
        let (out, n) = redact_xml(xml, &finder(&detector()), &DOCX).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(n, 1, "{out}");
        assert!(!out.contains("773-12-") && !out.contains(">3456"), "{out}");
        assert!(out.contains("&amp; more"), "{out}");
    }

    #[test]
    fn excel_number_cells_become_masked_strings_and_shared_string_indexes_stay() {
        let xml = br#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>4539148803436467</v></c><c r="B1"><v>4916338506082832</v></c><c r="C1" t="inlineStr"><is><t>carol@example.net</t></is></c><c r="D1" s="2"><f>B1*1</f><v>4916338506082832</v></c></row></sheetData></worksheet>"#;
        let (out, n) = redact_xml(xml, &finder(&detector()), &XLSX).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(n, 3, "{out}");
        assert!(out.contains(r#"<c r="D1" s="2"><f>B1*1</f><v>0</v></c>"#), "{out}");
        assert!(
            out.contains(r#"<c r="A1" t="s"><v>4539148803436467</v>"#),
            "index untouched: {out}"
        );
        assert!(
            out.contains(r#"<c r="B1" t="inlineStr"><is><t>**** **** **** 2832</t></is></c>"#),
            "{out}"
        );
        assert!(!out.contains("carol@example.net"), "{out}");
    }

    #[test]
    fn values_found_with_context_are_masked_as_whole_words() {
        let d = detector();
        let known = [(Kind::PersonName, SensitiveValue::new("Ann"))];
        let f = Finder::new(&d, &known);
        let xml =
            b"<sst><si><t>name</t></si><si><t>Ann</t></si><si><t>Annual report</t></si></sst>";
        let (out, n) = redact_xml(xml, &f, &XLSX).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(n, 1, "{out}");
        assert!(out.contains("<t>A**</t>") && out.contains("<t>Annual report</t>"), "{out}");
    }

    #[test]
    fn unsupported_and_damaged_input_is_refused() {
        let d = detector();
        assert!(matches!(
            redact(Format::Pdf, b"%PDF-1.4", &finder(&d)),
            Err(RedactError::Unsupported)
        ));
        assert!(matches!(
            redact(Format::Docx, b"PK\x03\x04broken", &finder(&d)),
            Err(RedactError::Damaged(_))
        ));
        assert!(matches!(
            redact(Format::Text, b"\xFF\xFEa\0", &finder(&d)),
            Err(RedactError::Utf16)
        ));
    }

    /// The same package with `extra` parts added (name, content).
    fn with_parts(package: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
        use std::io::Write as _;
        let mut archive = zip::ZipArchive::new(Cursor::new(package)).unwrap();
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..archive.len() {
            w.raw_copy_file(archive.by_index_raw(i).unwrap()).unwrap();
        }
        for (name, content) in extra {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Review item 8: values kept where redaction does not rewrite — a chart's cache, a
    /// pivot cache, a `mailto:` link, document properties, an embedded workbook, a docx
    /// chart's cached numbers — refuse the redaction (the fixer then says: quarantine it),
    /// instead of a "redacted" file that still holds them.
    #[test]
    fn review_8_values_in_parts_redaction_does_not_rewrite_refuse_it() {
        let d = detector();
        let sheet = custody_testkit::formats::xlsx(&[
            vec!["name".into(), "card".into()],
            vec!["Ann".into(), "4539 1488 0343 6467".into()],
        ])
        .unwrap();
        // The control: the workbook alone redacts.
        let plain = redact(Format::Xlsx, &sheet, &finder(&d)).unwrap();
        assert!(plain.values >= 1);
        let chart = r#"<c:chartSpace><c:strCache><c:pt idx="0"><c:v>4539 1488 0343 6467</c:v></c:pt></c:strCache></c:chartSpace>"#;
        let pivot =
            r#"<pivotCacheRecords><r><s v="ann.customer@example.org"/></r></pivotCacheRecords>"#;
        let link = r#"<Relationships><Relationship Id="rId1" Type="hyperlink" Target="mailto:ann.customer@example.org" TargetMode="External"/></Relationships>"#;
        let props =
            "<cp:coreProperties><dc:title>Card 4539 1488 0343 6467</dc:title></cp:coreProperties>";
        for (name, content, what) in [
            ("xl/charts/chart1.xml", chart, "a chart or drawing"),
            ("xl/pivotCache/pivotCacheRecords1.xml", pivot, "a pivot table's cache"),
            ("xl/worksheets/_rels/sheet1.xml.rels", link, "a link (relationship)"),
            ("docProps/core.xml", props, "the document's properties"),
            ("xl/embeddings/Microsoft_Excel_Worksheet1.xlsx", "PK not checked", "an embedded file"),
        ] {
            let package = with_parts(&sheet, &[(name, content)]);
            match redact(Format::Xlsx, &package, &finder(&d)) {
                Err(RedactError::HiddenPart(said)) => assert_eq!(said, what, "{name}"),
                Err(e) => panic!("{name}: {e}"),
                Ok(_) => panic!("{name}: redacted although the part keeps the value"),
            }
        }
        // A part without a value is copied as before.
        let harmless = with_parts(&sheet, &[("xl/charts/chart1.xml", "<c:chartSpace/>")]);
        assert!(redact(Format::Xlsx, &harmless, &finder(&d)).is_ok());
        // A docx chart is a `word/` part redaction rewrites, but its cached numbers are not
        // text runs: what is left after the rewrite refuses it too.
        let doc = custody_testkit::formats::docx(&["Card 4539 1488 0343 6467"]).unwrap();
        assert!(redact(Format::Docx, &doc, &finder(&d)).is_ok());
        let charted = with_parts(&doc, &[("word/charts/chart1.xml", chart)]);
        assert!(matches!(
            redact(Format::Docx, &charted, &finder(&d)),
            Err(RedactError::HiddenPart("a chart or drawing"))
        ));
        let message = RedactError::HiddenPart("a chart or drawing").to_string();
        assert!(message.contains("cannot rewrite") && !message.contains("4539"), "{message}");
    }
}
