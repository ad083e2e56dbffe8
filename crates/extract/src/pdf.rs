//! PDF text by page (pdf-extract, pure Rust). The parser is known to panic and can spin
//! on malformed files, so it runs on a thread of its own: a panic costs this file
//! ([`Skipped::Crashed`]), and past the file's time limit the scan moves on
//! ([`Skipped::TimedOut`]) while the thread is left to finish on its own.

use std::sync::mpsc;

use crate::{Cx, Skipped, join};

pub(crate) fn pages(cx: &mut Cx<'_, '_>, location: &str, bytes: Vec<u8>) -> Result<(), Skipped> {
    let encrypted = memchr::memmem::find(&bytes, b"/Encrypt").is_some();
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("custody-pdf".into()).spawn(move || {
        let result =
            std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(&bytes));
        let _ = tx.send(result);
    });
    let Ok(handle) = spawned else {
        return Err(Skipped::Unsupported("no thread could be started to read it"));
    };
    let answer = rx.recv_timeout(cx.budget.remaining());
    if answer.is_ok() {
        // The thread has sent its result: wait for it to end, so nothing of it outlives
        // this file. (Past the time limit it is left to finish on its own.)
        let _ = handle.join();
    }
    let pages = match answer {
        Ok(Ok(Ok(pages))) => pages,
        Ok(Ok(Err(_)) | Err(_)) if encrypted => return Err(Skipped::Encrypted),
        Ok(Ok(Err(_))) => return Err(Skipped::Corrupt("not a readable PDF")),
        Ok(Err(_)) => return Err(Skipped::Crashed),
        Err(_) => return Err(cx.budget.trip(cx.budget.timed_out())),
    };
    if encrypted && pages.iter().all(|p| p.trim().is_empty()) {
        return Err(Skipped::Encrypted);
    }
    for (i, page) in pages.iter().enumerate() {
        cx.text(&join(location, &format!("page{}", i + 1)), &mut page.as_bytes(), false, &[])?;
    }
    Ok(())
}
