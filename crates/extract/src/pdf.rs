//! PDF text by page (pdf-extract, pure Rust). The parser is known to panic, to spin and
//! to allocate without bound on malformed files, so it never runs on the scan's own
//! thread: a panic costs this file ([`Skipped::Crashed`]) and past the file's time limit
//! the scan moves on ([`Skipped::TimedOut`]).
//!
//! Where it runs is [`PdfReader`]: on a thread, which is left to finish on its own past
//! the limit, or (what custody's binary does) in a child process running [`pdf_child`],
//! which is killed at the limit and cannot take more than [`PDF_CHILD_MEMORY`].

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{Cx, PdfReader, Skipped, join};

/// The address space a PDF child process may use (its program, stack and heap).
pub const PDF_CHILD_MEMORY: u64 = 512 << 20;

/// What the parser made of a PDF.
enum Parsed {
    Pages(Vec<String>),
    Unreadable,
    Panicked,
}

pub(crate) fn pages(cx: &mut Cx<'_, '_>, location: &str, bytes: Vec<u8>) -> Result<(), Skipped> {
    let encrypted = memchr::memmem::find(&bytes, b"/Encrypt").is_some();
    let parsed = match &cx.budget.limits.pdf_reader {
        PdfReader::Child { program, args } => match in_child(cx, program, args, &bytes) {
            Some(answer) => answer?,
            None => on_thread(cx, bytes)?,
        },
        PdfReader::Thread => on_thread(cx, bytes)?,
    };
    let pages = match parsed {
        Parsed::Pages(pages) => pages,
        Parsed::Unreadable if encrypted => return Err(Skipped::Encrypted),
        Parsed::Unreadable => return Err(Skipped::Corrupt("not a readable PDF")),
        Parsed::Panicked => return Err(Skipped::Crashed),
    };
    if encrypted && pages.iter().all(|p| p.trim().is_empty()) {
        return Err(Skipped::Encrypted);
    }
    for (i, page) in pages.iter().enumerate() {
        cx.text(&join(location, &format!("page{}", i + 1)), &mut page.as_bytes(), false, &[])?;
    }
    Ok(())
}

fn parse(bytes: &[u8]) -> Parsed {
    match std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes)) {
        Ok(Ok(pages)) => Parsed::Pages(pages),
        Ok(Err(_)) => Parsed::Unreadable,
        Err(_) => Parsed::Panicked,
    }
}

/// Parses on a thread of its own, waiting until the file's time limit.
fn on_thread(cx: &Cx<'_, '_>, bytes: Vec<u8>) -> Result<Parsed, Skipped> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("custody-pdf".into()).spawn(move || {
        let _ = tx.send(parse(&bytes));
    });
    let Ok(handle) = spawned else {
        return Err(Skipped::Unsupported("no thread could be started to read it"));
    };
    match rx.recv_timeout(cx.budget.remaining()) {
        Ok(parsed) => {
            // The thread has sent its result: wait for it to end, so nothing of it
            // outlives this file. (Past the time limit it is left to finish on its own.)
            let _ = handle.join();
            Ok(parsed)
        }
        Err(_) => Err(cx.budget.trip(cx.budget.timed_out())),
    }
}

/// Parses in a child process, killed at the file's time limit. `None` when no child
/// could be started (the caller then uses a thread).
fn in_child(
    cx: &Cx<'_, '_>,
    program: &std::path::Path,
    args: &[String],
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
    let (mut input, mut output) = (child.stdin.take()?, child.stdout.take()?);
    let (tx, rx) = mpsc::channel();
    let answer = std::thread::scope(|scope| {
        // The child reads all of its input before it answers; killing it ends both.
        scope.spawn(move || {
            let _ = input.write_all(bytes);
            drop(input);
            let mut out = Vec::new();
            let read = output.by_ref().take(limit.saturating_add(1)).read_to_end(&mut out);
            let _ = tx.send(read.map(|_| out));
        });
        let answer = rx.recv_timeout(cx.budget.remaining());
        // Whatever happened, the child is gone before this file is done.
        let _ = child.kill();
        let _ = child.wait();
        answer
    });
    let Ok(read) = answer else { return Some(Err(cx.budget.trip(cx.budget.timed_out()))) };
    let Ok(out) = read else { return Some(Ok(Parsed::Panicked)) };
    if out.len() as u64 > limit {
        return Some(Err(Skipped::TooLarge { limit }));
    }
    // Anything but a whole answer (killed by its memory limit, say) is a crash.
    Some(Ok(decode(&out).unwrap_or(Parsed::Panicked)))
}

/// The child's answer: `k`, a page count and each page (length, UTF-8); `e` for an
/// unreadable file; `p` for a parser panic. All numbers are little-endian u64.
fn encode(parsed: &Parsed, out: &mut impl Write) -> io::Result<()> {
    match parsed {
        Parsed::Pages(pages) => {
            out.write_all(b"k")?;
            out.write_all(&(pages.len() as u64).to_le_bytes())?;
            for page in pages {
                out.write_all(&(page.len() as u64).to_le_bytes())?;
                out.write_all(page.as_bytes())?;
            }
        }
        Parsed::Unreadable => out.write_all(b"e")?,
        Parsed::Panicked => out.write_all(b"p")?,
    }
    out.flush()
}

fn decode(mut answer: &[u8]) -> Option<Parsed> {
    fn number(answer: &mut &[u8]) -> Option<usize> {
        let (n, rest) = answer.split_first_chunk::<8>()?;
        *answer = rest;
        usize::try_from(u64::from_le_bytes(*n)).ok()
    }
    let (&tag, rest) = answer.split_first()?;
    answer = rest;
    let parsed = match tag {
        b'k' => {
            let count = number(&mut answer)?;
            let mut pages = Vec::with_capacity(count.min(answer.len() / 8));
            for _ in 0..count {
                let len = number(&mut answer)?;
                let (page, rest) = answer.split_at_checked(len)?;
                pages.push(String::from_utf8(page.to_vec()).ok()?);
                answer = rest;
            }
            Parsed::Pages(pages)
        }
        b'e' => Parsed::Unreadable,
        b'p' => Parsed::Panicked,
        _ => return None,
    };
    answer.is_empty().then_some(parsed)
}

/// The child process's side of [`PdfReader::Child`]: reads a PDF from `input`, parses
/// it and writes the pages to `output`, holding itself to [`PDF_CHILD_MEMORY`] of address
/// space and `max_time` (plus a second) of CPU time, so it ends even if its parent died.
pub fn pdf_child(
    mut input: impl Read,
    mut output: impl Write,
    max_time: Duration,
) -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // No core dump: it would hold the document and its text, wherever dumps are collected.
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    let cpu = max_time.as_secs().saturating_add(1);
    for (resource, limit) in
        [(Resource::Core, 0), (Resource::As, PDF_CHILD_MEMORY), (Resource::Cpu, cpu)]
    {
        // Never above a hard limit already set (ulimit, systemd): raising it is refused.
        let limit = getrlimit(resource).maximum.map_or(limit, |hard| hard.min(limit));
        setrlimit(resource, Rlimit { current: Some(limit), maximum: Some(limit) })?;
    }
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    // A panic is an answer; the default hook would print the parser's message.
    std::panic::set_hook(Box::new(|_| {}));
    encode(&parse(&bytes), &mut output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_the_pipe_and_partial_ones_are_refused() {
        let pages = Parsed::Pages(vec!["one ✓".into(), String::new(), "three".into()]);
        let mut wire = Vec::new();
        encode(&pages, &mut wire).unwrap();
        let Some(Parsed::Pages(back)) = decode(&wire) else { panic!("not decoded") };
        assert_eq!(back, ["one ✓", "", "three"]);
        for cut in 0..wire.len() {
            assert!(decode(&wire[..cut]).is_none(), "a partial answer of {cut} bytes");
        }
        let mut longer = wire.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        for (parsed, tag) in [(Parsed::Unreadable, b"e"), (Parsed::Panicked, b"p")] {
            let mut wire = Vec::new();
            encode(&parsed, &mut wire).unwrap();
            assert_eq!(wire, tag);
        }
        assert!(matches!(decode(b"e"), Some(Parsed::Unreadable)));
    }
}
