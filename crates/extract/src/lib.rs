//! custody-extract: the text inside containers and documents.
//!
//! Customer data in a small business sits in zipped backups, Excel exports, Word letters,
//! PDF invoices and mailboxes as much as in plain text. This crate opens those and hands
//! their text to a [`Visitor`] as [`Part`]s, each with a location that says where inside
//! the file it was (`backup.zip!2023/customers.xlsx!Sheet1!C7`: `!` separates container
//! levels; spreadsheets add sheet and cell, PDFs the page, mail the message and
//! attachment). It never detects anything itself: custody-scan runs the detectors over
//! each part, exactly as over a plain file.
//!
//! Everything here treats input as hostile. [`Limits`] bound nesting depth, members, bytes
//! per member and per file, the compression ratio (zip bombs, including overlapping-entry
//! ones, are refused before anything is inflated where the archive's own directory shows
//! it) and time per file. A parser that panics costs one part, reported as
//! [`Skipped::Crashed`]; encrypted archives, PDFs and Office files are reported as
//! [`Skipped::Encrypted`] so the owner knows they exist. Skip reasons carry fixed words,
//! never a parser's message (which could quote the file's content).
//!
//! Formats: zip (nested), tar, gzip, zstd (and their combinations), docx, pptx, odt,
//! xlsx/xlsm, ods, legacy xls, PDF text, eml and mbox (bodies in every transfer encoding,
//! attachments recursed into), HTML, RTF, JSON/NDJSON (key paths as labels), SQLite
//! database files (every table), CSV/TSV and plain text.

mod archive;
mod budget;
mod isolate;
mod mail;
mod markup;
mod office;
mod pdf;
mod sniff;
mod sqlite;
mod structured;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

pub use budget::Limits;
pub use isolate::{CHILD_MEMORY, CHILD_MEMORY_PER_BYTE, Isolation, child_main};
pub use office::ooxml_text_part;
pub use sniff::{Format, sniff};

use budget::{Budget, Limited};

/// Why a file, or something inside it, was not read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Skipped {
    /// Password-protected: an encrypted zip member, PDF or Office file.
    Encrypted,
    /// Containers nested deeper than the limit.
    TooDeep {
        /// The limit.
        limit: u32,
    },
    /// More members than the limit (in one file, all levels together).
    TooManyMembers {
        /// The limit.
        limit: u64,
    },
    /// Bigger, once unpacked, than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A structure too large to read safely, whatever the limits (a fixed description).
    Oversized(&'static str),
    /// Unpacks to far more than its own size (a zip bomb), or its entries overlap.
    Bomb,
    /// Damaged or not what its name says: a fixed description, never parser output.
    Corrupt(&'static str),
    /// Reading took longer than the limit.
    TimedOut {
        /// The limit, in seconds.
        seconds: u64,
    },
    /// The parser for this format crashed on it.
    Crashed,
    /// A format or feature custody does not read (yet).
    Unsupported(&'static str),
}

impl Skipped {
    /// A short stable code for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Skipped::Encrypted => "encrypted",
            Skipped::TooDeep { .. } => "too_deep",
            Skipped::TooManyMembers { .. } => "too_many_members",
            Skipped::TooLarge { .. } | Skipped::Oversized(_) => "too_large",
            Skipped::Bomb => "compression_bomb",
            Skipped::Corrupt(_) => "corrupt",
            Skipped::TimedOut { .. } => "timeout",
            Skipped::Crashed => "parser_crash",
            Skipped::Unsupported(_) => "unsupported",
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skipped::Encrypted => {
                f.write_str("encrypted (password-protected): custody cannot look inside")
            }
            Skipped::TooDeep { limit } => {
                write!(f, "containers nested more than {limit} deep (--max-depth)")
            }
            Skipped::TooManyMembers { limit } => {
                write!(f, "more than {limit} files inside (--max-members)")
            }
            Skipped::TooLarge { limit } => {
                write!(f, "larger than {} once unpacked (see --max-unpacked)", human(*limit))
            }
            Skipped::Oversized(what) => write!(f, "too large to read safely: {what}"),
            Skipped::Bomb => f.write_str(
                "unpacks to far more than its own size, or its entries overlap: a zip bomb",
            ),
            Skipped::Corrupt(what) => write!(f, "damaged: {what}"),
            Skipped::TimedOut { seconds } => {
                write!(f, "took longer than {seconds} s to read (--max-seconds)")
            }
            Skipped::Crashed => f.write_str(
                "the reader for this format failed on it (please report it, without the file)",
            ),
            Skipped::Unsupported(what) => write!(f, "not read: {what}"),
        }
    }
}

fn human(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= 1024 * MIB && bytes.is_multiple_of(1024 * MIB) {
        format!("{} GiB", bytes / (1024 * MIB))
    } else if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A piece of text found inside a file.
pub struct Part<'a> {
    /// Where it is inside the file: empty for the file's own text, else the levels below
    /// it joined by `!` (`inner.zip!customers.csv`, `Sheet1`, `page2`, `message3`).
    pub location: &'a str,
    /// The text, UTF-8, streamed.
    pub text: &'a mut dyn Read,
    /// The first line is a header row (CSV, TSV, a sheet, a table): its names are context.
    pub header: bool,
    /// The text is a member's own bytes, not a parser's output: it may turn out to be
    /// binary (an image in a zip), and the reader should check.
    pub raw: bool,
    /// The labels are key paths inside text that is the file's own (JSON): reported beside
    /// the location, not as part of it, so offsets and lines still point into the file.
    pub keys: bool,
    /// Finer locations inside the text, by the offset where each starts, ascending
    /// (a sheet's cells, a table's rows, a JSON value's key path). A detection at offset
    /// `o` lies in the last label starting at or before `o`.
    pub labels: &'a [Label],
}

/// A finer location inside a part's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Offset in the part's text where it starts.
    pub start: u64,
    /// Its name (`C7`, `customers.email#row=12`, `$.customers[3].ssn`).
    pub name: String,
}

impl Label {
    /// The label covering `offset` in a part whose labels are `labels`.
    pub fn find(labels: &[Label], offset: u64) -> Option<&Label> {
        let i = labels.partition_point(|l| l.start <= offset);
        i.checked_sub(1).map(|i| &labels[i])
    }
}

/// What receives the text of a file.
pub trait Visitor {
    /// Reads one part. An error while reading its text ends the part; the extractor
    /// reports why (a limit, damaged data) through [`Visitor::skipped`] or its own result.
    fn part(&mut self, part: Part<'_>) -> io::Result<()>;
    /// Something inside the file was not read: `location` as in [`Part::location`].
    fn skipped(&mut self, location: &str, why: Skipped);
}

/// Reads the file at `path` (already sniffed as `format`) and hands its text to
/// `visitor`. An error means the file as a whole could not be read, or a limit for the
/// whole file was reached: what was handed out before stands.
pub fn extract_file(
    path: &Path,
    format: Format,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<(), Skipped> {
    let mut file =
        File::open(path).map_err(|_| Skipped::Corrupt("the file could not be opened"))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let budget = Budget::new(limits, size);
    let mut cx = Cx { budget: &budget, visitor };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match format {
        Format::Sqlite => guarded(|| sqlite::table_text(&mut cx, "", path)),
        Format::Zip | Format::Docx | Format::Xlsx | Format::Pptx | Format::Odt | Format::Ods => {
            guarded(|| archive::zip_family(&mut cx, "", format, &mut file, 0))
        }
        _ if format.needs_memory() => {
            if size > limits.max_unpacked {
                return Err(Skipped::TooLarge { limit: limits.max_unpacked });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)
                .map_err(|_| Skipped::Corrupt("the file could not be read"))?;
            cx.bytes("", &name, format, bytes, 0)
        }
        _ => {
            let mut reader = Limited::new(&mut file, &budget, u64::MAX, None);
            cx.stream("", &name, format, &mut reader, 0)
        }
    }
}

/// Reads `bytes` (a file named `name`, already in memory) and hands its text to `visitor`.
/// The same as [`extract_file`] without a file: for standard input, tests and fuzzing
/// (a SQLite database needs a file and is reported as unsupported here).
pub fn extract_bytes(
    name: &str,
    bytes: Vec<u8>,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<(), Skipped> {
    let budget = Budget::new(limits, bytes.len() as u64);
    let mut cx = Cx { budget: &budget, visitor };
    let format = sniff(name, &bytes[..bytes.len().min(sniff::HEAD)]);
    if format.is_plain() {
        return cx.raw_text("", &mut bytes.as_slice(), format == Format::Delimited);
    }
    cx.bytes("", name, format, bytes, 0)
}

/// Runs a parser, turning a panic into [`Skipped::Crashed`].
fn guarded<T>(f: impl FnOnce() -> Result<T, Skipped>) -> Result<T, Skipped> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(Err(Skipped::Crashed))
}

/// One extraction's state: the shared budget and the visitor.
struct Cx<'b, 'v> {
    budget: &'b Budget,
    visitor: &'v mut dyn Visitor,
}

/// Joins a location and a level below it.
fn join(location: &str, level: &str) -> String {
    if location.is_empty() { level.to_string() } else { format!("{location}!{level}") }
}

impl Cx<'_, '_> {
    /// Hands a text part to the visitor; a read error caused by a limit becomes that
    /// limit (fatal for the file, or a skip of this part), any other a damaged part.
    fn text(
        &mut self,
        location: &str,
        text: &mut dyn Read,
        header: bool,
        labels: &[Label],
    ) -> Result<(), Skipped> {
        let result =
            self.visitor.part(Part { location, text, header, raw: false, keys: false, labels });
        self.settle(location, result.is_err(), "the text could not be read")
    }

    /// Hands a member's own bytes to the visitor as text: they may turn out to be binary
    /// (an image in a zip), which the visitor checks ([`Part::raw`]).
    fn raw_text(
        &mut self,
        location: &str,
        text: &mut dyn Read,
        header: bool,
    ) -> Result<(), Skipped> {
        let result =
            self.visitor.part(Part { location, text, header, raw: true, keys: false, labels: &[] });
        self.settle(location, result.is_err(), "the text could not be read")
    }

    /// Hands the file's own text to the visitor with key-path labels (JSON).
    fn keyed_text(&mut self, location: &str, text: &[u8], labels: &[Label]) -> Result<(), Skipped> {
        let result = self.visitor.part(Part {
            location,
            text: &mut &text[..],
            header: false,
            raw: false,
            keys: true,
            labels,
        });
        self.settle(location, result.is_err(), "the text could not be read")
    }

    /// After a part or member was read: stops the file on a file-wide limit, reports a
    /// member's own limit or `damaged` as a skip.
    fn settle(
        &mut self,
        location: &str,
        failed: bool,
        damaged: &'static str,
    ) -> Result<(), Skipped> {
        if let Some(fatal) = self.budget.fatal() {
            return Err(fatal);
        }
        if let Some(why) = self.budget.take_member_trip() {
            self.visitor.skipped(location, why);
        } else if failed {
            self.visitor.skipped(location, Skipped::Corrupt(damaged));
        }
        Ok(())
    }

    /// A member of a container, as a stream: sniffs it and reads it as what it is.
    fn member(
        &mut self,
        location: &str,
        name: &str,
        reader: &mut dyn Read,
        depth: u32,
    ) -> Result<(), Skipped> {
        self.budget.count_member()?;
        self.sniffed(location, name, reader, depth)
    }

    /// Sniffs a stream's first bytes and reads it as what it is: streamed where the format
    /// allows, else whole (bounded).
    fn sniffed(
        &mut self,
        location: &str,
        name: &str,
        reader: &mut dyn Read,
        depth: u32,
    ) -> Result<(), Skipped> {
        let mut head = Vec::with_capacity(sniff::HEAD);
        if reader.take(sniff::HEAD as u64).read_to_end(&mut head).is_err() {
            return self.settle(location, true, "the data could not be unpacked");
        }
        let format = sniff(name, &head);
        let mut whole = io::Cursor::new(head).chain(reader);
        if format.needs_memory() || format.is_zip() || format == Format::Sqlite {
            let Some(bytes) = self.read_whole(location, &mut whole)? else { return Ok(()) };
            self.bytes(location, name, format, bytes, depth)
        } else {
            self.stream(location, name, format, &mut whole, depth)
        }
    }

    /// Reads a stream sniffed as `format`.
    fn stream(
        &mut self,
        location: &str,
        name: &str,
        format: Format,
        reader: &mut dyn Read,
        depth: u32,
    ) -> Result<(), Skipped> {
        self.budget.check_time()?;
        match format {
            Format::Gzip | Format::Zstd | Format::Tar => {
                if depth >= self.budget.limits.max_depth {
                    self.visitor.skipped(
                        location,
                        Skipped::TooDeep { limit: self.budget.limits.max_depth },
                    );
                    return Ok(());
                }
                let result =
                    guarded(|| archive::stream(self, location, name, format, reader, depth + 1));
                self.contain(location, result)
            }
            Format::Mbox => {
                let result = guarded(|| mail::mbox(self, location, reader, depth));
                self.contain(location, result)
            }
            Format::Text | Format::Delimited => {
                self.raw_text(location, reader, format == Format::Delimited)
            }
            _ => {
                let Some(bytes) = self.read_whole(location, reader)? else { return Ok(()) };
                self.bytes(location, name, format, bytes, depth)
            }
        }
    }

    /// Reads a whole member held in memory, sniffed as `format`.
    fn bytes(
        &mut self,
        location: &str,
        name: &str,
        format: Format,
        bytes: Vec<u8>,
        depth: u32,
    ) -> Result<(), Skipped> {
        self.budget.check_time()?;
        let nested = format.is_container();
        if nested && depth >= self.budget.limits.max_depth {
            self.visitor
                .skipped(location, Skipped::TooDeep { limit: self.budget.limits.max_depth });
            return Ok(());
        }
        let depth = depth + u32::from(nested);
        let this = &mut *self;
        let result = guarded(move || match format {
            f if f.is_zip() => {
                archive::zip_family(this, location, f, &mut io::Cursor::new(&bytes), depth)
            }
            Format::Ole => office::ole(this, location, name, &bytes),
            Format::Pdf => pdf::pages(this, location, bytes),
            Format::Eml => mail::message(this, location, &bytes, depth),
            Format::Html => {
                let text = markup::html_text(&bytes);
                this.text(location, &mut text.as_bytes(), false, &[])
            }
            Format::Rtf => {
                let text = markup::rtf_text(&bytes);
                this.text(location, &mut text.as_bytes(), false, &[])
            }
            Format::Json | Format::Ndjson => {
                structured::json(this, location, format == Format::Ndjson, &bytes)
            }
            Format::Sqlite => Err(Skipped::Unsupported(
                "a database file inside a container: unpack it, then scan it",
            )),
            _ => this.stream(location, name, format, &mut bytes.as_slice(), depth),
        });
        self.contain(location, result)
    }

    /// What a format's reader returned: a limit for the whole file, or any failure of the
    /// file itself (the top level), ends the file; a member's failure is reported as a
    /// skip of that member and the container goes on.
    fn contain(&mut self, location: &str, result: Result<(), Skipped>) -> Result<(), Skipped> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if location.is_empty() => Err(e),
            Err(_) if self.budget.fatal().is_some() => {
                Err(self.budget.fatal().unwrap_or(Skipped::Crashed))
            }
            Err(e) => {
                self.visitor.skipped(location, e);
                Ok(())
            }
        }
    }

    /// Reads a member whole, for a format that needs it in memory: at most
    /// [`Limits::max_unpacked`] bytes (past it, the member is skipped: `None`).
    fn read_whole(
        &mut self,
        location: &str,
        reader: &mut dyn Read,
    ) -> Result<Option<Vec<u8>>, Skipped> {
        let limit = self.budget.limits.max_unpacked;
        let mut bytes = Vec::new();
        if reader.take(limit + 1).read_to_end(&mut bytes).is_err() {
            self.settle(location, true, "the data could not be unpacked")?;
            return Ok(None);
        }
        if bytes.len() as u64 > limit {
            self.visitor.skipped(location, Skipped::TooLarge { limit });
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// A member that a format could not read: reported, and the file goes on.
    fn skip(&mut self, location: &str, why: Skipped) {
        self.visitor.skipped(location, why);
    }
}

/// Reads the first bytes of `file` for sniffing and rewinds it.
pub fn head(file: &mut File) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(sniff::HEAD);
    file.take(sniff::HEAD as u64).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(head)
}
