//! What a file is, from its first bytes (magic numbers first, the name's extension second).

/// Bytes read from the start of a file to decide its format (a tar header's `ustar` magic
/// sits at offset 257).
pub(crate) const HEAD: usize = 1024;

/// A file format custody reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Plain text (scanned as it is).
    Text,
    /// CSV/TSV: the first line is a header row.
    Delimited,
    /// JSON: values labelled by key path.
    Json,
    /// Newline-delimited JSON, one record per line.
    Ndjson,
    /// HTML: text without tags.
    Html,
    /// Rich Text Format.
    Rtf,
    /// One mail message (RFC 5322, MIME).
    Eml,
    /// A mailbox of messages (mbox).
    Mbox,
    /// PDF: text by page.
    Pdf,
    /// A zip archive.
    Zip,
    /// Word (Office Open XML).
    Docx,
    /// Excel (Office Open XML), with or without macros.
    Xlsx,
    /// PowerPoint (Office Open XML).
    Pptx,
    /// OpenDocument text.
    Odt,
    /// OpenDocument spreadsheet.
    Ods,
    /// An OLE2 compound file: legacy Excel (read), legacy Word/PowerPoint (not yet),
    /// or an encrypted Office file.
    Ole,
    /// A tar archive.
    Tar,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
    /// A SQLite database file.
    Sqlite,
}

impl Format {
    /// Formats that are read whole into memory (random access or a whole-document parse).
    pub fn needs_memory(self) -> bool {
        matches!(
            self,
            Format::Pdf
                | Format::Ole
                | Format::Eml
                | Format::Html
                | Format::Rtf
                | Format::Json
                | Format::Ndjson
        )
    }

    /// The zip family (a zip, or an Office/OpenDocument file, which is a zip).
    pub fn is_zip(self) -> bool {
        matches!(
            self,
            Format::Zip | Format::Docx | Format::Xlsx | Format::Pptx | Format::Odt | Format::Ods
        )
    }

    /// Formats that hold other files (counted against the depth limit).
    pub fn is_container(self) -> bool {
        matches!(
            self,
            Format::Zip | Format::Tar | Format::Gzip | Format::Zstd | Format::Eml | Format::Mbox
        )
    }

    /// Plain text, scanned as it is (no extraction needed).
    pub fn is_plain(self) -> bool {
        matches!(self, Format::Text | Format::Delimited)
    }
}

fn extension(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

fn starts_with_ci(head: &[u8], prefix: &[u8]) -> bool {
    head.len() >= prefix.len() && head[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Headers that only a mail message starts with.
const MAIL_HEADERS: [&[u8]; 5] =
    [b"Return-Path:", b"Received:", b"Delivered-To:", b"MIME-Version:", b"Message-ID:"];

/// Decides what a file named `name` whose first bytes are `head` is.
pub fn sniff(name: &str, head: &[u8]) -> Format {
    let ext = extension(name);
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return match ext.as_str() {
            "docx" | "docm" | "dotx" => Format::Docx,
            "xlsx" | "xlsm" | "xltx" | "xltm" => Format::Xlsx,
            "pptx" | "pptm" => Format::Pptx,
            "odt" | "ott" => Format::Odt,
            "ods" | "ots" => Format::Ods,
            _ => Format::Zip, // refined by the member names once opened
        };
    }
    if head.starts_with(b"\x1f\x8b") {
        return Format::Gzip;
    }
    if head.starts_with(b"\x28\xb5\x2f\xfd") {
        return Format::Zstd;
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Format::Tar;
    }
    if head.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Format::Ole;
    }
    if head.starts_with(b"SQLite format 3\0") {
        return Format::Sqlite;
    }
    if memchr::memmem::find(&head[..head.len().min(1024)], b"%PDF-").is_some() {
        return Format::Pdf;
    }
    if head.starts_with(b"{\\rtf") {
        return Format::Rtf;
    }
    let trimmed = {
        let bom = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        let start = bom.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bom.len());
        &bom[start..]
    };
    match ext.as_str() {
        "csv" | "tsv" | "psv" | "tab" => return Format::Delimited,
        "json" | "geojson" => return Format::Json,
        "jsonl" | "ndjson" => return Format::Ndjson,
        "html" | "htm" | "xhtml" => return Format::Html,
        "eml" => return Format::Eml,
        "mbox" | "mbx" => return Format::Mbox,
        "rtf" => return Format::Rtf,
        _ => {}
    }
    if head.starts_with(b"From ") && head.contains(&b'\n') {
        // An mbox's separator line ("From sender date") followed by headers.
        let second = head.iter().position(|b| *b == b'\n').map_or(&[][..], |p| &head[p + 1..]);
        if second.iter().take(64).any(|b| *b == b':') {
            return Format::Mbox;
        }
    }
    if MAIL_HEADERS.iter().any(|h| starts_with_ci(head, h)) {
        return Format::Eml;
    }
    if starts_with_ci(trimmed, b"<!doctype html") || starts_with_ci(trimmed, b"<html") {
        return Format::Html;
    }
    Format::Text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_wins_over_the_name() {
        assert_eq!(sniff("notes.txt", b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(sniff("a.xlsx", b"PK\x03\x04rest"), Format::Xlsx);
        assert_eq!(sniff("report.csv", b"%PDF-1.7\n"), Format::Pdf);
        assert_eq!(sniff("x", b"\x1f\x8b\x08"), Format::Gzip);
        assert_eq!(sniff("x.db", b"SQLite format 3\0..."), Format::Sqlite);
        assert_eq!(sniff("x.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), Format::Ole);
    }

    #[test]
    fn text_formats_by_name_or_content() {
        assert_eq!(sniff("c.csv", b"name,email\n"), Format::Delimited);
        assert_eq!(sniff("c.ndjson", b"{}\n"), Format::Ndjson);
        assert_eq!(sniff("page", b"  <!DOCTYPE html><html>"), Format::Html);
        assert_eq!(sniff("msg", b"Return-Path: <a@b.c>\r\n"), Format::Eml);
        assert_eq!(
            sniff("Inbox", b"From a@b.c Mon Jan  1 00:00:00 2024\nFrom: a@b.c\n"),
            Format::Mbox
        );
        assert_eq!(sniff("letter", b"From the desk of the owner\nthanks"), Format::Text);
        assert_eq!(sniff("notes.txt", b"hello"), Format::Text);
        let mut tar = vec![0u8; 300];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff("b", &tar), Format::Tar);
    }
}
