//! PDF text by page (pdf-extract, pure Rust). The parser is known to panic, to spin and
//! to allocate without bound on malformed files, so it never runs on the scan's own
//! thread: in a child process (`Isolation::Child`, see `isolate.rs`) or on a thread of
//! its own. A panic costs this file ([`Skipped::Crashed`]) and past the file's time limit
//! the scan moves on ([`Skipped::TimedOut`]).

use crate::isolate::{self, Kind, Parsed, Piece};
use crate::{Cx, Skipped, join};

const UNREADABLE: Skipped = Skipped::Corrupt("not a readable PDF");

pub(crate) fn pages(cx: &mut Cx<'_, '_>, location: &str, bytes: Vec<u8>) -> Result<(), Skipped> {
    let encrypted = memchr::memmem::find(&bytes, b"/Encrypt").is_some();
    let parsed = isolate::run(cx, Kind::Pdf, bytes)?;
    let pages = match parsed {
        Parsed::Pieces(pages) => pages,
        Parsed::Refused(_) if encrypted => return Err(Skipped::Encrypted),
        Parsed::Refused(why) => return Err(why),
        Parsed::Panicked => return Err(Skipped::Crashed),
    };
    if encrypted && pages.iter().all(|p| text(p).trim().is_empty()) {
        return Err(Skipped::Encrypted);
    }
    for page in &pages {
        cx.text(&join(location, &page.name), &mut text(page).as_bytes(), false, &[])?;
    }
    Ok(())
}

/// A page's text (a PDF page is never a skip).
fn text(page: &Piece) -> &str {
    page.text.as_ref().map_or("", |(t, _)| t.as_str())
}

/// The pages of a PDF, named `page1`, `page2`, …
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    match pdf_extract::extract_text_from_mem_by_pages(bytes) {
        Ok(pages) => Parsed::Pieces(
            pages
                .into_iter()
                .enumerate()
                .map(|(i, text)| Piece {
                    name: format!("page{}", i + 1),
                    text: Ok((text, Vec::new())),
                })
                .collect(),
        ),
        Err(_) => Parsed::Refused(UNREADABLE),
    }
}
