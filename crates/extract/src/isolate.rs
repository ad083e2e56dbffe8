//! Parsers known to misbehave on hostile files (PDF: panics, spins and unbounded
//! allocation, found by fuzzing; legacy Excel: calamine lays out whatever a few bytes
//! claim) run where they cannot take the scan down with them: [`Isolation`].
//!
//! In a child process (what custody's binary does) the parser is killed at the file's
//! time limit and cannot use more than [`CHILD_MEMORY`]; it gets a tag byte and the
//! document on stdin and answers on stdout with [`Parsed`], length-prefixed.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{Cx, Label, Skipped};

/// The address space a parser's child process may use (its program, stack and heap) for
/// a small document: peak memory stays under the 300 MB custody holds itself to on
/// hostile files. A bigger document may use [`CHILD_MEMORY_PER_BYTE`] more per byte.
pub const CHILD_MEMORY: u64 = 288 << 20;

/// Address space a parser may use per byte of its document, beyond [`CHILD_MEMORY`]
/// (a 50 MB workbook of distinct strings is laid out in about 8 times its size).
pub const CHILD_MEMORY_PER_BYTE: u64 = 8;

/// Where the parsers known to misbehave run.
#[derive(Clone, Debug, Default)]
pub enum Isolation {
    /// In this process (PDFs on a thread of their own): a panic costs the file and past
    /// the time limit the file is reported, but a spinning PDF thread runs on, using a
    /// core, and memory is not limited.
    #[default]
    Thread,
    /// In a child process, `program args…`, which runs [`crate::child_main`]: killed at
    /// the time limit and held to [`CHILD_MEMORY`]. If it cannot be started, the parser
    /// runs in this process.
    Child {
        /// The program (custody itself).
        program: std::path::PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// What a document is, for the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Pdf,
    Xls,
}

/// One part of a parsed document: a page, a sheet.
#[derive(PartialEq, Eq)]
pub(crate) struct Piece {
    pub name: String,
    pub text: Result<(String, Vec<Label>), Skipped>,
}

/// The name and how much text, never the text (it is the customer's data).
impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.text.as_ref().map(|(t, labels)| (t.len(), labels.len()));
        f.debug_struct("Piece").field("name", &self.name).field("bytes_and_labels", &text).finish()
    }
}

/// What a parser made of a document.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Pieces(Vec<Piece>),
    Refused(Skipped),
    Panicked,
}

/// Runs the parser for `kind` over `bytes` (in this process, panics caught).
pub(crate) fn parse(kind: Kind, bytes: &[u8]) -> Parsed {
    std::panic::catch_unwind(|| match kind {
        Kind::Pdf => crate::pdf::parse(bytes),
        Kind::Xls => crate::office::xls_parse(bytes),
    })
    .unwrap_or(Parsed::Panicked)
}

/// Parses `bytes` where [`Isolation`] says: in a child process, or in this process (a
/// thread of its own, waited for until the file's time limit).
pub(crate) fn run(cx: &Cx<'_, '_>, kind: Kind, bytes: Vec<u8>) -> Result<Parsed, Skipped> {
    cx.budget.check_time()?;
    match &cx.budget.limits.isolation {
        // A child that cannot be started is a skip, never a fall back to parsing here
        // without limits: the owner sees the file was not read.
        Isolation::Child { program, args } => in_child(cx, program, args, kind, &bytes)
            .unwrap_or(Err(Skipped::Unsupported("no separate reader process could be started"))),
        Isolation::Thread => on_thread(cx, kind, bytes),
    }
}

/// Parses on a thread of its own, waiting until the file's time limit (past it, the
/// thread is left to finish on its own).
fn on_thread(cx: &Cx<'_, '_>, kind: Kind, bytes: Vec<u8>) -> Result<Parsed, Skipped> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("custody-parse".into()).spawn(move || {
        let _ = tx.send(parse(kind, &bytes));
    });
    let Ok(handle) = spawned else {
        return Err(Skipped::Unsupported("no thread could be started to read it"));
    };
    match rx.recv_timeout(cx.budget.remaining()) {
        Ok(parsed) => {
            let _ = handle.join();
            Ok(parsed)
        }
        Err(_) => Err(cx.budget.trip(cx.budget.timed_out())),
    }
}

/// Parses in a child process, killed at the file's time limit. `None` when no child
/// could be started.
fn in_child(
    cx: &Cx<'_, '_>,
    program: &std::path::Path,
    args: &[String],
    kind: Kind,
    bytes: &[u8],
) -> Option<Result<Parsed, Skipped>> {
    let limit = cx.budget.limits.max_unpacked;
    let mut child = Command::new(program)
        .args(args)
        .arg("--max-seconds")
        .arg(cx.budget.limits.max_time.as_secs().max(1).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let (Some(mut input), Some(mut output)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let tag = match kind {
        Kind::Pdf => b'P',
        Kind::Xls => b'X',
    };
    let (tx, rx) = mpsc::channel();
    let answer = std::thread::scope(|scope| {
        // The child reads all of its input before it answers; killing it ends both.
        let pipe = std::thread::Builder::new().spawn_scoped(scope, move || {
            let _ = input.write_all(&[tag]).and_then(|()| input.write_all(bytes));
            drop(input);
            let mut out = Vec::new();
            let read = output.by_ref().take(limit.saturating_add(1)).read_to_end(&mut out);
            let _ = tx.send(read.map(|_| out));
        });
        let answer = match pipe {
            Ok(_) => Some(rx.recv_timeout(cx.budget.remaining())),
            Err(_) => None,
        };
        // Whatever happened, the child is gone before this file is done.
        let _ = child.kill();
        (answer, child.wait().ok())
    });
    let (Some(answer), status) = answer else { return None };
    let Ok(read) = answer else { return Some(Err(cx.budget.trip(cx.budget.timed_out()))) };
    let Ok(out) = read else { return Some(Ok(Parsed::Panicked)) };
    if out.len() as u64 > limit {
        return Some(Err(Skipped::TooLarge { limit }));
    }
    match decode(&out) {
        Some(parsed) => Some(Ok(parsed)),
        // Rust aborts when an allocation fails: the parser wanted more than its limit.
        None if aborted(status) => Some(Err(Skipped::Oversized(
            "reading it needs more memory than custody allows a parser (288 MiB + 8 x its size)",
        ))),
        None => Some(Ok(Parsed::Panicked)),
    }
}

/// Whether the child ended by SIGABRT (what an allocation failure does).
fn aborted(status: Option<std::process::ExitStatus>) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.and_then(|s| s.signal()) == Some(6)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        false
    }
}

/// The fixed descriptions a parser's `Corrupt` may carry across the pipe.
const CORRUPT: [&str; 3] =
    ["not a readable PDF", "the spreadsheet could not be read", "the document could not be read"];

fn put(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_skip(out: &mut Vec<u8>, why: &Skipped) {
    match why {
        Skipped::Encrypted => out.push(b'x'),
        Skipped::Corrupt(what) => {
            out.push(b'c');
            out.push(CORRUPT.iter().position(|c| c == what).unwrap_or(2) as u8);
        }
        _ => out.push(b'?'),
    }
}

/// The answer on the wire: `p` (panicked); `r` and a skip (refused); `k`, a count and
/// each piece (name; `t`, text and labels, or a skip). Numbers are little-endian u64,
/// strings are length-prefixed UTF-8. Written piece by piece, so the text is never held
/// twice (the child's memory limit is tight).
fn encode(parsed: &Parsed, out: &mut impl Write) -> io::Result<()> {
    let mut buffer = Vec::new();
    match parsed {
        Parsed::Panicked => buffer.push(b'p'),
        Parsed::Refused(why) => {
            buffer.push(b'r');
            put_skip(&mut buffer, why);
        }
        Parsed::Pieces(pieces) => {
            buffer.push(b'k');
            put(&mut buffer, pieces.len());
            for piece in pieces {
                encode_piece(piece, &mut buffer);
                out.write_all(&buffer)?;
                buffer.clear();
            }
        }
    }
    out.write_all(&buffer)
}

fn encode_piece(piece: &Piece, out: &mut Vec<u8>) {
    put_str(out, &piece.name);
    match &piece.text {
        Ok((text, labels)) => {
            out.push(b't');
            put_str(out, text);
            put(out, labels.len());
            for label in labels {
                put(out, label.start as usize);
                put_str(out, &label.name);
            }
        }
        Err(why) => put_skip(out, why),
    }
}

/// Reads an answer back; `None` unless it is whole and nothing follows it.
fn decode(answer: &[u8]) -> Option<Parsed> {
    struct Wire<'a>(&'a [u8]);
    impl Wire<'_> {
        fn byte(&mut self) -> Option<u8> {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            Some(b)
        }
        fn number(&mut self) -> Option<usize> {
            let (n, rest) = self.0.split_first_chunk::<8>()?;
            self.0 = rest;
            usize::try_from(u64::from_le_bytes(*n)).ok()
        }
        fn string(&mut self) -> Option<String> {
            let len = self.number()?;
            let (s, rest) = self.0.split_at_checked(len)?;
            self.0 = rest;
            String::from_utf8(s.to_vec()).ok()
        }
        fn skip(&mut self, tag: u8) -> Option<Skipped> {
            match tag {
                b'x' => Some(Skipped::Encrypted),
                b'c' => Some(Skipped::Corrupt(CORRUPT.get(usize::from(self.byte()?))?)),
                b'?' => Some(Skipped::Crashed),
                _ => None,
            }
        }
    }
    let mut w = Wire(answer);
    let parsed = match w.byte()? {
        b'p' => Parsed::Panicked,
        b'r' => {
            let tag = w.byte()?;
            Parsed::Refused(w.skip(tag)?)
        }
        b'k' => {
            let count = w.number()?;
            let mut pieces = Vec::with_capacity(count.min(w.0.len() / 9));
            for _ in 0..count {
                let name = w.string()?;
                let text = match w.byte()? {
                    b't' => {
                        let text = w.string()?;
                        let n = w.number()?;
                        let mut labels = Vec::with_capacity(n.min(w.0.len() / 16));
                        for _ in 0..n {
                            let start = w.number()? as u64;
                            labels.push(Label { start, name: w.string()? });
                        }
                        Ok((text, labels))
                    }
                    tag => Err(w.skip(tag)?),
                };
                pieces.push(Piece { name, text });
            }
            Parsed::Pieces(pieces)
        }
        _ => return None,
    };
    w.0.is_empty().then_some(parsed)
}

/// The child process's side of [`Isolation::Child`]: reads a tag byte (`P` PDF, `X`
/// legacy Excel) and the document from `input`, parses it and writes the answer to
/// `output`. It holds itself to [`CHILD_MEMORY`] (plus [`CHILD_MEMORY_PER_BYTE`] per
/// byte of the document) of address space and `max_time` (plus a
/// second) of CPU time, so it ends even if its parent died, and never dumps core.
pub fn child_main(
    mut input: impl Read,
    mut output: impl Write,
    max_time: Duration,
) -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // No core dump: it would hold the document and its text, wherever dumps are collected.
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    // The document first (its parent bounds its size), then the limits that depend on it.
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let memory =
        CHILD_MEMORY.saturating_add(CHILD_MEMORY_PER_BYTE.saturating_mul(bytes.len() as u64));
    let cpu = max_time.as_secs().saturating_add(1);
    for (resource, limit) in [(Resource::Core, 0), (Resource::As, memory), (Resource::Cpu, cpu)] {
        // Never above a hard limit already set (ulimit, systemd): raising it is refused.
        let limit = getrlimit(resource).maximum.map_or(limit, |hard| hard.min(limit));
        setrlimit(resource, Rlimit { current: Some(limit), maximum: Some(limit) })?;
    }
    // A panic is an answer; the default hook would print the parser's message.
    std::panic::set_hook(Box::new(|_| {}));
    let parsed = match bytes.split_first() {
        Some((b'P', document)) => parse(Kind::Pdf, document),
        Some((b'X', document)) => parse(Kind::Xls, document),
        _ => Parsed::Refused(Skipped::Corrupt(CORRUPT[2])),
    };
    encode(&parsed, &mut output)?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_the_pipe_and_partial_ones_are_refused() {
        let label = |start, name: &str| Label { start, name: name.into() };
        let pieces = Parsed::Pieces(vec![
            Piece { name: "page1".into(), text: Ok(("one ✓".into(), vec![])) },
            Piece { name: "Sheet 2".into(), text: Err(Skipped::Encrypted) },
            Piece {
                name: "S".into(),
                text: Ok(("a\tb\n".into(), vec![label(0, "A1"), label(2, "B1")])),
            },
            Piece { name: "x".into(), text: Err(Skipped::Corrupt(CORRUPT[1])) },
        ]);
        assert!(!format!("{pieces:?}").contains("one ✓"), "text in Debug: {pieces:?}");
        let wire = wire_of(&pieces);
        assert_eq!(decode(&wire), Some(pieces));
        for cut in 0..wire.len() {
            assert!(decode(&wire[..cut]).is_none(), "a partial answer of {cut} bytes");
        }
        let mut longer = wire.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        for parsed in [
            Parsed::Panicked,
            Parsed::Refused(Skipped::Corrupt(CORRUPT[0])),
            Parsed::Refused(Skipped::Encrypted),
        ] {
            assert_eq!(decode(&wire_of(&parsed)), Some(parsed));
        }
        // Counts the answer cannot back are refused, without allocating for them.
        let mut huge = b"k".to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).is_none());
        let mut labels = b"k".to_vec();
        labels.extend_from_slice(&1u64.to_le_bytes());
        labels.extend_from_slice(&0u64.to_le_bytes());
        labels.push(b't');
        labels.extend_from_slice(&0u64.to_le_bytes());
        labels.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode(&labels).is_none());
    }

    fn wire_of(parsed: &Parsed) -> Vec<u8> {
        let mut out = Vec::new();
        encode(parsed, &mut out).unwrap();
        out
    }
}
