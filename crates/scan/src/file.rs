//! Reading one file: encoding, binary detection, bounded chunks with overlap, and exact
//! line/column/offset for every detection.

use std::io::{self, Read};

use custody_detect::{Chunk, Detection, Detector, Structure};

use crate::finding::SkipReason;

/// How far into a file we look for a NUL byte to call it binary (as ripgrep and git do).
const BINARY_PROBE: usize = 8 * 1024;

/// The text encoding of a file, decided from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// UTF-8 or Latin-1: scanned as bytes (every kind we match is ASCII-anchored, and a
    /// value that is not UTF-8 is shown as Latin-1).
    Bytes,
    /// UTF-16 with a byte-order mark, little or big endian.
    Utf16 { big_endian: bool },
}

/// A detection located in the file.
pub(crate) struct Located {
    pub detection: Detection,
    pub line: u64,
    pub column: u64,
    pub offset: u64,
    pub length: u64,
}

/// Reads `file` and calls `found` for each detection, in file order. Returns the bytes
/// read, or why the file could not be scanned (a read error after some chunks were
/// scanned still reports what was found before it).
pub(crate) fn scan_file(
    file: &mut dyn Read,
    detector: &Detector,
    chunk_size: usize,
    is_delimited: bool,
    probe_binary: bool,
    on_bytes: &mut dyn FnMut(u64),
    found: &mut dyn FnMut(Located),
) -> Result<u64, SkipReason> {
    let unreadable = |e: io::Error| SkipReason::Unreadable(e.to_string());
    let overlap = detector.overlap();
    let chunk_size = chunk_size.max(2 * overlap);

    // The buffer holds [overlap kept from the previous chunk][new data]. Each worker
    // thread keeps one and reuses it from file to file.
    let mut buf = ThreadBuffer::take();
    buf.reserve(chunk_size + overlap);

    // Probe: encoding and binary check, on the first bytes read into the buffer.
    let probed =
        (&mut *file).take(BINARY_PROBE as u64).read_to_end(&mut buf).map_err(unreadable)?;
    let (encoding, bom) = match buf.as_slice() {
        [0xFF, 0xFE, ..] => (Encoding::Utf16 { big_endian: false }, 2),
        [0xFE, 0xFF, ..] => (Encoding::Utf16 { big_endian: true }, 2),
        _ => (Encoding::Bytes, 0),
    };
    if probe_binary && encoding == Encoding::Bytes && memchr::memchr(0, &buf).is_some() {
        return Err(SkipReason::Binary);
    }
    // Bytes (UTF-8, with or without a byte-order mark, or Latin-1) are scanned as read, so
    // offsets need no adjustment; UTF-16 is narrowed, its byte-order mark dropped and added
    // back when mapping offsets.
    let mut pending = Vec::new();
    if matches!(encoding, Encoding::Utf16 { .. }) {
        pending.extend_from_slice(&buf[bom..]);
        buf.clear();
    }
    let mut source = Source { file, encoding, pending, pending_pos: 0, odd: None };
    let mut total: u64 = if pending_is_counted(encoding) { probed as u64 } else { bom as u64 };
    on_bytes(total);
    let mut base: u64 = 0; // position of buf[0] in the decoded stream
    let mut emit_from = 0usize;
    let mut structure: Option<Structure> = None;
    let mut lines = LineCounter { line: 1, line_start: 0, counted_to: 0 };
    let mut detections = Vec::new();
    loop {
        // (The probe alone may already exceed a small chunk.)
        let want = (chunk_size + overlap).saturating_sub(buf.len());
        let got = source.fill(&mut buf, want).map_err(unreadable)?;
        total += got.raw;
        on_bytes(got.raw);
        let eof = got.eof;
        if structure.is_none() {
            structure = Some(if is_delimited && base == 0 {
                let first_line = memchr::memchr(b'\n', &buf).map_or(&buf[..], |p| &buf[..p]);
                Structure::from_header(first_line).unwrap_or_default()
            } else {
                Structure::Plain
            });
        }
        let emit_to = if eof { buf.len() } else { split_point(&buf, emit_from, overlap) };
        let chunk =
            Chunk { bytes: &buf, stream_start: base == 0, stream_end: eof, emit_from, emit_to };
        detections.clear();
        detector.detect(&chunk, structure.as_ref().unwrap_or(&Structure::Plain), &mut detections);
        for d in detections.drain(..) {
            let at = base + d.start as u64;
            lines.advance_to(&buf, base, at);
            let (offset, length, column) = match encoding {
                Encoding::Bytes => (at, (d.end - d.start) as u64, at - lines.line_start + 1),
                Encoding::Utf16 { .. } => {
                    (bom as u64 + 2 * at, 2 * (d.end - d.start) as u64, at - lines.line_start + 1)
                }
            };
            found(Located { line: lines.line, column, offset, length, detection: d });
        }
        if eof {
            break;
        }
        lines.advance_to(&buf, base, base + emit_to as u64);
        // Keep `overlap` bytes before the split point as left context for the next chunk.
        let keep_from = emit_to.saturating_sub(overlap);
        buf.copy_within(keep_from.., 0);
        let kept = buf.len() - keep_from;
        buf.truncate(kept);
        base += keep_from as u64;
        emit_from = emit_to - keep_from;
    }
    Ok(total)
}

/// Whether the probe's bytes were already counted as read (bytes mode: they are in the
/// buffer; UTF-16: they are handed out, and counted, by the first fill).
fn pending_is_counted(encoding: Encoding) -> bool {
    encoding == Encoding::Bytes
}

thread_local! {
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A worker thread's read buffer, borrowed for one file and given back when dropped, so
/// that thousands of small files do not each allocate and free a chunk-sized buffer.
struct ThreadBuffer(Vec<u8>);

impl ThreadBuffer {
    fn take() -> Self {
        let mut buf = BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
        buf.clear();
        Self(buf)
    }
}

impl Drop for ThreadBuffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        BUFFER.with(|b| *b.borrow_mut() = buf);
    }
}

impl std::ops::Deref for ThreadBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for ThreadBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

/// Where this chunk stops reporting: at a line end if one is near the end (lines never
/// hold a value that crosses them), else a fixed distance from the end. Leaves at least
/// `overlap` bytes after it, so every reported value is seen whole with its context, and
/// lies far enough past `emit_from` and `overlap` that every chunk makes progress (a short
/// first line before a huge one must not pin the split at its end).
fn split_point(buf: &[u8], emit_from: usize, overlap: usize) -> usize {
    let limit = buf.len().saturating_sub(overlap);
    let floor = emit_from.max(overlap) + 1;
    let search_from = limit.saturating_sub(64 * 1024).max(floor);
    if search_from >= limit {
        return limit;
    }
    match memchr::memrchr(b'\n', &buf[search_from..limit]) {
        Some(p) => search_from + p + 1,
        None => limit,
    }
}

/// Counts lines incrementally so each byte is looked at once.
struct LineCounter {
    line: u64,
    line_start: u64,
    counted_to: u64,
}

impl LineCounter {
    fn advance_to(&mut self, buf: &[u8], base: u64, to: u64) {
        if to <= self.counted_to {
            return;
        }
        let from = (self.counted_to - base) as usize;
        let end = (to - base) as usize;
        for p in memchr::memchr_iter(b'\n', &buf[from..end]) {
            self.line += 1;
            self.line_start = base + (from + p + 1) as u64;
        }
        self.counted_to = to;
    }
}

struct Filled {
    raw: u64,
    eof: bool,
}

/// The file as a stream of scan bytes: as-is, or UTF-16 narrowed to one byte per code
/// unit (ASCII stays ASCII, Latin-1 stays Latin-1, anything else becomes 0xBF) so offsets
/// map back to the file exactly.
struct Source<'f> {
    file: &'f mut dyn Read,
    encoding: Encoding,
    /// Bytes already read (the probe) not yet handed out.
    pending: Vec<u8>,
    pending_pos: usize,
    /// A dangling byte of a UTF-16 code unit.
    odd: Option<u8>,
}

impl Source<'_> {
    /// Appends up to `want` scan bytes to `buf`.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<Filled> {
        // The probe's bytes first (its byte-order mark, if any, was already skipped).
        let pending = std::mem::take(&mut self.pending);
        let pending = &pending[self.pending_pos.min(pending.len())..];
        self.pending_pos = 0;
        match self.encoding {
            Encoding::Bytes => {
                buf.extend_from_slice(pending);
                let need = want.saturating_sub(pending.len());
                // `read_to_end` on a `Take` reads straight into spare capacity, no zeroing.
                let n = if need > 0 {
                    (&mut *self.file).take(need as u64).read_to_end(buf)?
                } else {
                    0
                };
                let raw = (pending.len() + n) as u64;
                // Asked for nothing (the probe filled a small chunk): nothing learned.
                Ok(Filled { raw, eof: need > 0 && n < need })
            }
            Encoding::Utf16 { big_endian } => {
                let mut raw = Vec::with_capacity(2 * want + 1);
                raw.extend(self.odd.take());
                raw.extend_from_slice(pending);
                let need = (2 * want).saturating_sub(raw.len());
                let n = (&mut *self.file).take(need as u64).read_to_end(&mut raw)?;
                let raw_total = (pending.len() + n) as u64;
                let pairs = raw.chunks_exact(2);
                if let [b] = pairs.remainder() {
                    self.odd = Some(*b);
                }
                buf.extend(pairs.map(|p| {
                    let unit = if big_endian {
                        u16::from_be_bytes([p[0], p[1]])
                    } else {
                        u16::from_le_bytes([p[0], p[1]])
                    };
                    u8::try_from(unit).unwrap_or(0xBF)
                }));
                Ok(Filled { raw: raw_total, eof: need > 0 && n < need })
            }
        }
    }
}
