//! Output files and the ground-truth ledger.
//!
//! A [`Doc`] is one generated file: text is appended to an in-memory buffer (flushed in large
//! chunks), and every planted value or hard negative is recorded with the byte offset at which
//! it is written, so a span can never drift from the bytes on disk.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::kind::{Kind, NegativeCategory};

/// Buffer sizes: file content is flushed past this many bytes, records likewise.
const FLUSH_AT: usize = 4 << 20;

/// Collects truth and negative records and counts for one corpus.
pub(crate) struct Ledger {
    root: PathBuf,
    truth: File,
    negatives: File,
    truth_buf: Vec<u8>,
    neg_buf: Vec<u8>,
    pub(crate) positives: [u64; Kind::ALL.len()],
    pub(crate) negs: [u64; NegativeCategory::ALL.len()],
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    spare_buf: Vec<u8>,
    spare_scratch: String,
}

impl Ledger {
    /// Creates `root` (if needed) with its `truth.jsonl` and `negatives.jsonl`.
    pub(crate) fn create(root: &Path) -> io::Result<Ledger> {
        fs::create_dir_all(root)?;
        // The corpus holds its own answers; tell gitignore-style walkers to skip them.
        fs::write(root.join(".ignore"), "/truth.jsonl\n/negatives.jsonl\n")?;
        Ok(Ledger {
            root: root.to_path_buf(),
            truth: File::create(root.join("truth.jsonl"))?,
            negatives: File::create(root.join("negatives.jsonl"))?,
            truth_buf: Vec::with_capacity(1 << 20),
            neg_buf: Vec::with_capacity(1 << 20),
            positives: [0; Kind::ALL.len()],
            negs: [0; NegativeCategory::ALL.len()],
            files: 0,
            bytes: 0,
            spare_buf: Vec::new(),
            spare_scratch: String::with_capacity(256),
        })
    }

    /// Starts the file at `rel` (relative, `/`-separated), creating its directories.
    pub(crate) fn open(&mut self, rel: &str) -> io::Result<Doc<'_>> {
        let full = self.root.join(rel);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = File::create(&full)?;
        let mut buf = std::mem::take(&mut self.spare_buf);
        buf.clear();
        let scratch = std::mem::take(&mut self.spare_scratch);
        Ok(Doc { ledger: self, path: rel.to_string(), file, buf, flushed: 0, scratch })
    }

    fn flush_records(&mut self, force: bool) -> io::Result<()> {
        if force || self.truth_buf.len() >= FLUSH_AT {
            self.truth.write_all(&self.truth_buf)?;
            self.truth_buf.clear();
        }
        if force || self.neg_buf.len() >= FLUSH_AT {
            self.negatives.write_all(&self.neg_buf)?;
            self.neg_buf.clear();
        }
        Ok(())
    }

    /// Writes out the remaining records.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.flush_records(true)?;
        self.truth.flush()?;
        self.negatives.flush()
    }
}

/// One file being generated.
pub(crate) struct Doc<'a> {
    ledger: &'a mut Ledger,
    path: String,
    file: File,
    buf: Vec<u8>,
    flushed: u64,
    scratch: String,
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn push_record(
    out: &mut Vec<u8>,
    path: &str,
    kind: Kind,
    category: Option<NegativeCategory>,
    offset: u64,
    value: &str,
    test_card: bool,
) {
    out.extend_from_slice(b"{\"path\":");
    push_json_str(out, path);
    out.extend_from_slice(b",\"kind\":\"");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'"');
    if let Some(c) = category {
        out.extend_from_slice(b",\"category\":\"");
        out.extend_from_slice(c.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"offset\":");
    push_u64(out, offset);
    out.extend_from_slice(b",\"length\":");
    push_u64(out, value.len() as u64);
    out.extend_from_slice(b",\"value\":");
    push_json_str(out, value);
    out.extend_from_slice(if test_card {
        b",\"test_card\":true}\n"
    } else {
        b",\"test_card\":false}\n"
    });
}

impl Doc<'_> {
    /// Appends literal text.
    pub(crate) fn t(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Appends raw bytes (ASCII or UTF-8 text).
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends one byte.
    pub(crate) fn b(&mut self, c: u8) {
        self.buf.push(c);
    }

    /// Appends a number in decimal.
    pub(crate) fn u(&mut self, n: u64) {
        push_u64(&mut self.buf, n);
    }

    /// Appends a number zero-padded to `width` digits.
    pub(crate) fn u0(&mut self, n: u64, width: usize) {
        let start = self.buf.len();
        push_u64(&mut self.buf, n);
        let len = self.buf.len() - start;
        if len < width {
            let pad = width - len;
            self.buf.splice(start..start, std::iter::repeat_n(b'0', pad));
        }
    }

    /// Appends text built by `f` without recording it.
    pub(crate) fn with(&mut self, f: impl FnOnce(&mut String)) {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        f(&mut s);
        self.buf.extend_from_slice(s.as_bytes());
        self.scratch = s;
    }

    /// The last byte written, or a newline at the start of the file.
    pub(crate) fn last_byte(&self) -> u8 {
        self.buf.last().copied().unwrap_or(b'\n')
    }

    /// Bytes written to this file so far (= the offset of the next byte).
    pub(crate) fn offset(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// The last bytes written (for context checks in debug builds).
    fn tail(&self) -> &[u8] {
        &self.buf[self.buf.len().saturating_sub(20)..]
    }

    /// Appends a planted value built by `f` and records it in `truth.jsonl`.
    pub(crate) fn plant(&mut self, kind: Kind, test_card: bool, f: impl FnOnce(&mut String)) {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        f(&mut s);
        debug_assert!(!s.is_empty());
        debug_assert!(
            kind != Kind::CreditCard || !id_keyword_before(self.tail()),
            "card planted after an id keyword in {}: {:?}",
            self.path,
            String::from_utf8_lossy(self.tail())
        );
        let offset = self.offset();
        self.buf.extend_from_slice(s.as_bytes());
        push_record(&mut self.ledger.truth_buf, &self.path, kind, None, offset, &s, test_card);
        self.ledger.positives[kind.index()] += 1;
        self.scratch = s;
    }

    /// Appends a hard negative built by `f` and records it in `negatives.jsonl` under the kind
    /// it could be mistaken for.
    pub(crate) fn neg(
        &mut self,
        kind: Kind,
        category: NegativeCategory,
        f: impl FnOnce(&mut String),
    ) {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        f(&mut s);
        debug_assert!(!s.is_empty());
        let offset = self.offset();
        self.buf.extend_from_slice(s.as_bytes());
        push_record(&mut self.ledger.neg_buf, &self.path, kind, Some(category), offset, &s, false);
        self.ledger.negs[category.index()] += 1;
        self.scratch = s;
    }

    /// Hard negatives recorded in the whole corpus so far.
    pub(crate) fn negatives_so_far(&self) -> u64 {
        self.ledger.negs.iter().sum()
    }

    /// Flushes the buffer to disk once it is large; call between lines.
    pub(crate) fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.file.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
            self.ledger.flush_records(false)?;
        }
        Ok(())
    }

    /// Finishes the file.
    pub(crate) fn close(mut self) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.flushed += self.buf.len() as u64;
        self.ledger.files += 1;
        self.ledger.bytes += self.flushed;
        self.buf.clear();
        self.ledger.spare_buf = std::mem::take(&mut self.buf);
        self.ledger.spare_scratch = std::mem::take(&mut self.scratch);
        self.ledger.flush_records(false)
    }
}

/// Whether an order/invoice/tracking/SKU keyword stands within the last 20 bytes of `tail`,
/// which would turn a card-shaped number into an id for the detector.
pub(crate) fn id_keyword_before(tail: &[u8]) -> bool {
    let from = tail.len().saturating_sub(20);
    let window = tail[from..].to_ascii_lowercase();
    [&b"order"[..], b"invoice", b"tracking", b"sku", b"ref"]
        .iter()
        .any(|k| window.windows(k.len()).any(|w| w == *k))
}
