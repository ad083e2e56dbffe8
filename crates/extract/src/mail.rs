//! Mail: one message (eml) or a mailbox (mbox). The headers, the bodies in
//! whatever transfer encoding they were sent (mail-parser decodes base64 and
//! quoted-printable), and every attachment, read as what it is.

use std::io::{BufRead, BufReader, Read};

use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};

use crate::{Cx, Skipped, join, markup, sniff};

/// One message, held whole. `depth` is the container depth of the message itself.
pub(crate) fn message(
    cx: &mut Cx<'_, '_>,
    location: &str,
    raw: &[u8],
    depth: u32,
) -> Result<(), Skipped> {
    let Some(parsed) = MessageParser::default().parse(raw) else {
        return Err(Skipped::Corrupt("not a readable mail message"));
    };
    let root = parsed.root_part();
    let verbatim = parsed.parts.len() == 1
        && matches!(root.body, PartType::Text(_))
        && root.encoding == Encoding::None;
    if verbatim {
        // A plain single-part message reads as it is written: lines and offsets are the
        // file's own.
        cx.text(location, &mut &raw[..], false, &[])?;
    } else {
        // The header block as written (names and addresses keep their context), then
        // the bodies decoded (base64, quoted-printable, HTML without tags).
        let header_end = (root.offset_body as usize).min(raw.len());
        let mut text = String::from_utf8_lossy(&raw[..header_end]).into_owned();
        if let Some(subject) = parsed.subject() {
            text.push_str("Subject: ");
            text.push_str(subject);
            text.push('\n');
        }
        for part in parsed.text_bodies() {
            match &part.body {
                PartType::Text(t) => text.push_str(t),
                PartType::Html(h) => text.push_str(&markup::html_text(h.as_bytes())),
                _ => {}
            }
            text.push('\n');
        }
        cx.text(location, &mut text.as_bytes(), false, &[])?;
    }
    for (i, part) in parsed.attachments().enumerate() {
        let name =
            part.attachment_name().map_or_else(|| format!("attachment{}", i + 1), str::to_string);
        let here = join(location, &name);
        cx.budget.count_member()?;
        match &part.body {
            PartType::Message(inner) => {
                if depth + 1 >= cx.budget.limits.max_depth {
                    cx.skip(&here, Skipped::TooDeep { limit: cx.budget.limits.max_depth });
                } else {
                    message(cx, &here, inner.raw_message(), depth + 1)?;
                }
            }
            PartType::Text(t) | PartType::Html(t) => {
                let format = sniff(&name, t.as_bytes());
                cx.bytes(&here, &name, format, t.as_bytes().to_vec(), depth)?;
            }
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                let format = sniff(&name, b);
                cx.bytes(&here, &name, format, b.to_vec(), depth)?;
            }
            PartType::Multipart(_) => {}
        }
    }
    Ok(())
}

/// Longest line read at once; a longer line is read in pieces.
const LINE_CAP: u64 = 64 * 1024;

/// A mailbox: messages split at `From ` lines (mboxrd `>From ` unescaped), each read as
/// a message at `location!messageN`. A message over the size limit is skipped and the
/// mailbox goes on, so a huge attachment costs one message, not the mailbox or memory.
pub(crate) fn mbox(
    cx: &mut Cx<'_, '_>,
    location: &str,
    reader: &mut dyn Read,
    depth: u32,
) -> Result<(), Skipped> {
    let limit = cx.budget.limits.max_unpacked;
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut current: Vec<u8> = Vec::new();
    let mut oversized = false;
    let mut number = 0u64;
    let mut at_line_start = true;
    let mut line = Vec::new();
    loop {
        line.clear();
        let Ok(n) = (&mut reader).take(LINE_CAP).read_until(b'\n', &mut line) else {
            return cx.settle(location, true, "the mailbox could not be read");
        };
        let separator = n == 0 || (at_line_start && line.starts_with(b"From "));
        if separator {
            if number == 0 && oversized {
                cx.skip(&join(location, "preamble"), Skipped::TooLarge { limit });
            }
            if number == 0 && !current.is_empty() {
                // Text before the first separator (or a file named .mbox that is not one):
                // scanned as text, never dropped.
                let preamble = std::mem::take(&mut current);
                cx.text(&join(location, "preamble"), &mut preamble.as_slice(), false, &[])?;
            }
            if number > 0 {
                let here = join(location, &format!("message{number}"));
                cx.budget.count_member()?;
                if oversized {
                    cx.skip(&here, Skipped::TooLarge { limit });
                } else {
                    let raw = std::mem::take(&mut current);
                    // One message's failure (even a parser crash) costs that message only.
                    match crate::guarded(|| message(cx, &here, &raw, depth + 1)) {
                        Ok(()) => {}
                        Err(_) if cx.budget.fatal().is_some() => {
                            return Err(cx.budget.fatal().unwrap_or(Skipped::Crashed));
                        }
                        Err(why) => cx.skip(&here, why),
                    }
                }
            }
            if n == 0 {
                return Ok(());
            }
            number += 1;
            current.clear();
            oversized = false;
        } else if !oversized {
            let body = if at_line_start
                && line.starts_with(b">")
                && line.iter().skip_while(|b| **b == b'>').take(5).eq(b"From ".iter())
            {
                &line[1..]
            } else {
                &line[..]
            };
            if (current.len() + body.len()) as u64 > limit {
                oversized = true;
                current = Vec::new();
            } else {
                current.extend_from_slice(body);
            }
        }
        at_line_start = line.ends_with(b"\n");
        cx.budget.check_time()?;
    }
}
