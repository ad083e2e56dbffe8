//! Office documents: Word/PowerPoint/OpenDocument text from their XML, spreadsheets cell
//! by cell (calamine), legacy Excel and encrypted Office files (OLE2 compound files).

use std::io::{Cursor, Read, Seek, SeekFrom};

use calamine::{Data, Range, Reader};
use quick_xml::events::Event;
use zip::ZipArchive;

use crate::isolate::{self, Parsed, Piece};
use crate::{Cx, Format, Label, Skipped, join};

/// The kind of document a zip is, from its members (for files whose name does not say).
pub(crate) fn zip_flavour<R: Read + Seek>(
    names: &[String],
    archive: &mut ZipArchive<R>,
) -> Option<Format> {
    let has = |n: &str| names.iter().any(|m| m == n);
    if has("word/document.xml") {
        return Some(Format::Docx);
    }
    if has("xl/workbook.xml") {
        return Some(Format::Xlsx);
    }
    if has("ppt/presentation.xml") {
        return Some(Format::Pptx);
    }
    if has("mimetype") {
        let mut kind = String::new();
        archive.by_name("mimetype").ok()?.take(100).read_to_string(&mut kind).ok()?;
        return match kind.trim() {
            "application/vnd.oasis.opendocument.text" => Some(Format::Odt),
            "application/vnd.oasis.opendocument.spreadsheet" => Some(Format::Ods),
            _ => None,
        };
    }
    None
}

/// Whether part `name` of an Office Open XML package holds text: the one list of them, for
/// reading (docx and pptx here; xlsx sheets and shared strings are read through calamine)
/// and for redaction (custody-remedy rewrites exactly these parts).
///
/// - docx: every `word/…xml` part except relationships and the style, settings, font and
///   web-settings parts (the body, headers, footers, notes, comments, glossary; parts
///   without text elements give no text).
/// - xlsx: the shared strings, the worksheets, the comments.
/// - pptx: the slides and their notes.
pub fn ooxml_text_part(format: Format, name: &str) -> bool {
    let xml = std::path::Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    if !xml || name.contains("/_rels/") {
        return false;
    }
    match format {
        Format::Docx => {
            name.starts_with("word/")
                && !matches!(
                    name,
                    "word/styles.xml"
                        | "word/settings.xml"
                        | "word/fontTable.xml"
                        | "word/webSettings.xml"
                )
        }
        Format::Xlsx => {
            name == "xl/sharedStrings.xml"
                || name.starts_with("xl/worksheets/")
                || name.starts_with("xl/comments")
        }
        Format::Pptx => ["ppt/slides/slide", "ppt/notesSlides/notesSlide"].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|s| s.strip_suffix(".xml"))
                .is_some_and(|n| n.parse::<u32>().is_ok())
        }),
        _ => false,
    }
}

/// Reads a member of a document whole (the limit on one member applies).
fn member_bytes<R: Read + Seek>(
    cx: &Cx<'_, '_>,
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, Skipped> {
    let limit = cx.budget.limits.max_unpacked;
    cx.budget.check_time()?;
    let file = archive.by_name(name).map_err(|_| Skipped::Corrupt("a document part is damaged"))?;
    if file.encrypted() {
        return Err(Skipped::Encrypted);
    }
    if file.size() > limit {
        return Err(Skipped::TooLarge { limit });
    }
    let compressed = file.compressed_size();
    let mut bytes = Vec::with_capacity(file.size().min(limit) as usize);
    // Spent against the file's budget: its ratio, total and time limits hold here too
    // (the sizes a zip declares can lie).
    let mut limited = crate::budget::Limited::new(file, cx.budget, limit, Some(compressed));
    if (&mut limited).take(limit + 1).read_to_end(&mut bytes).is_err() {
        if let Some(fatal) = cx.budget.fatal() {
            return Err(fatal);
        }
        let tripped = cx.budget.take_member_trip();
        return Err(tripped.unwrap_or(Skipped::Corrupt("a document part is damaged")));
    }
    if bytes.len() as u64 > limit {
        return Err(Skipped::TooLarge { limit });
    }
    Ok(bytes)
}

/// A Word, PowerPoint, OpenDocument or spreadsheet file, already open as a zip.
pub(crate) fn document<R: Read + Seek>(
    cx: &mut Cx<'_, '_>,
    location: &str,
    format: Format,
    mut archive: ZipArchive<R>,
) -> Result<(), Skipped> {
    if matches!(format, Format::Xlsx | Format::Ods) {
        if format == Format::Ods && odf_encrypted(cx, &mut archive) {
            return Err(Skipped::Encrypted);
        }
        if format == Format::Ods {
            // calamine lays a sheet out as a full grid: a few hundred bytes that repeat a
            // cell a million times, or fill two far corners, would cost gigabytes.
            let content = member_bytes(cx, &mut archive, "content.xml")?;
            if ods_cells(&content) > MAX_SHEET_CELLS {
                return Err(HUGE_SHEET);
            }
        }
        return workbook(cx, location, format, archive.into_inner());
    }
    let archive = &mut archive;
    let names: Vec<String> =
        archive.file_names().filter_map(|n| n.ok().map(std::borrow::Cow::into_owned)).collect();
    match format {
        Format::Docx => {
            let mut parts: Vec<(String, String)> = Vec::new();
            for n in &names {
                if !ooxml_text_part(Format::Docx, n) {
                    continue;
                }
                let stem = n.strip_prefix("word/").unwrap_or(n);
                let stem = stem.get(..stem.len() - 4).unwrap_or(stem);
                let level = if stem == "document" { String::new() } else { stem.to_string() };
                parts.push((n.clone(), level));
            }
            parts.sort_by_key(|(_, level)| (!level.is_empty(), level.clone()));
            for (member, level) in parts {
                let xml = member_bytes(cx, archive, &member)?;
                let text = xml_text(&xml, &WORD)?;
                let here =
                    if level.is_empty() { location.to_string() } else { join(location, &level) };
                cx.text(&here, &mut text.as_bytes(), false, &[])?;
            }
            Ok(())
        }
        Format::Pptx => {
            let mut slides: Vec<(u32, String, &str)> = Vec::new();
            for n in names.iter().filter(|n| ooxml_text_part(Format::Pptx, n)) {
                for (prefix, level) in
                    [("ppt/slides/slide", "slide"), ("ppt/notesSlides/notesSlide", "notes")]
                {
                    if let Some(num) = n.strip_prefix(prefix).and_then(|s| s.strip_suffix(".xml"))
                        && let Ok(num) = num.parse::<u32>()
                    {
                        slides.push((num, n.clone(), level));
                    }
                }
            }
            slides.sort();
            for (num, member, level) in slides {
                let xml = member_bytes(cx, archive, &member)?;
                let text = xml_text(&xml, &DRAWING)?;
                cx.text(
                    &join(location, &format!("{level}{num}")),
                    &mut text.as_bytes(),
                    false,
                    &[],
                )?;
            }
            Ok(())
        }
        Format::Odt => {
            if odf_encrypted(cx, archive) {
                return Err(Skipped::Encrypted);
            }
            let xml = member_bytes(cx, archive, "content.xml")?;
            let text = xml_text(&xml, &OPEN_DOCUMENT)?;
            cx.text(location, &mut text.as_bytes(), false, &[])
        }
        _ => unreachable!("document() is only called for Office formats"),
    }
}

/// An OpenDocument file whose manifest says its content is encrypted.
fn odf_encrypted<R: Read + Seek>(cx: &Cx<'_, '_>, archive: &mut ZipArchive<R>) -> bool {
    member_bytes(cx, archive, "META-INF/manifest.xml")
        .is_ok_and(|m| memchr::memmem::find(&m, b"encryption-data").is_some())
}

/// The most cells a sheet read through calamine (ods, xls) may span: its grid costs about
/// 32 bytes a cell, plus the text.
const MAX_SHEET_CELLS: u64 = 3_000_000;
/// The same for legacy Excel, where the entries calamine collects before laying a sheet
/// out count too (a full sheet costs its cells twice).
const MAX_XLS_CELLS: u64 = 2 * MAX_SHEET_CELLS;
const HUGE_SHEET: Skipped = Skipped::Oversized("a sheet spanning more than 3,000,000 cells");

/// The largest grid (rows × columns up to the last non-empty cell, repeats expanded) of
/// any table in an OpenDocument spreadsheet's `content.xml`, read the way calamine reads
/// it (qualified `table:` names). Damaged XML counts what was read before the damage.
fn ods_cells(xml: &[u8]) -> u64 {
    let repeat = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> u64 {
        e.try_get_attribute(name)
            .ok()
            .flatten()
            .and_then(|a| a.value.parse::<u64>().ok())
            .unwrap_or(1)
            .max(1)
    };
    let mut reader = quick_xml::Reader::from_reader(xml);
    let (mut largest, mut row, mut col, mut max_row, mut max_col) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut rows_repeated, mut row_has) = (1u64, false);
    loop {
        let (event, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(e)) => {
                match e.name().as_ref() {
                    "table:table-row" => {
                        if row_has {
                            max_row = max_row.max(row.saturating_add(rows_repeated));
                        }
                        row = row.saturating_add(rows_repeated);
                    }
                    "table:table" => {
                        largest = largest.max(max_row.saturating_mul(max_col));
                        (row, max_row, max_col) = (0, 0, 0);
                    }
                    _ => {}
                }
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => continue,
        };
        match event.name().as_ref() {
            "table:table-row" if empty => {
                row = row.saturating_add(repeat(&event, "table:number-rows-repeated"));
            }
            "table:table-row" => {
                rows_repeated = repeat(&event, "table:number-rows-repeated");
                (col, row_has) = (0, false);
            }
            "table:table-cell" | "table:covered-table-cell" => {
                let n = repeat(&event, "table:number-columns-repeated");
                let filled =
                    !empty || event.try_get_attribute("office:value-type").ok().flatten().is_some();
                if filled {
                    max_col = max_col.max(col.saturating_add(n));
                    row_has = true;
                }
                col = col.saturating_add(n);
            }
            _ => {}
        }
    }
    largest.max(max_row.saturating_mul(max_col))
}

/// A spreadsheet: one part per sheet, a tab-separated row per line, the first row the
/// header, every cell labelled with its reference (`C7`).
fn workbook<RS: Read + Seek>(
    cx: &mut Cx<'_, '_>,
    location: &str,
    format: Format,
    mut reader: RS,
) -> Result<(), Skipped> {
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|_| Skipped::Corrupt("the spreadsheet could not be read"))?;
    let sheets: Vec<(String, Result<Range<Data>, Skipped>)> = match format {
        Format::Xlsx => {
            let mut book = calamine::Xlsx::new(reader).map_err(|e| sheet_error(&e.into()))?;
            return xlsx_streamed(cx, location, &mut book);
        }
        Format::Ods => {
            let mut book = calamine::Ods::new(reader).map_err(|e| sheet_error(&e.into()))?;
            all_sheets(&mut book)
        }
        _ => return Err(Skipped::Unsupported("this spreadsheet format")),
    };
    for (sheet, range) in sheets {
        let here = join(location, &sheet);
        match range {
            Ok(range) => {
                cx.budget.check_time()?;
                let (text, labels) = sheet_text(&range);
                cx.text(&here, &mut text.as_bytes(), true, &labels)?;
            }
            Err(why) => cx.skip(&here, why),
        }
    }
    Ok(())
}

/// A legacy Excel workbook's sheets as text, a tab-separated row per line, each cell
/// labelled (run by [`isolate::parse`], in a child process when the scan has one).
pub(crate) fn xls_parse(bytes: &[u8]) -> Parsed {
    let mut book = match calamine::Xls::new(Cursor::new(bytes)) {
        Ok(book) => book,
        Err(e) => return Parsed::Refused(sheet_error(&e.into())),
    };
    // One sheet's copy at a time: calamine holds every sheet already.
    let pieces = book
        .sheet_names()
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).map_err(|e| sheet_error(&e.into()));
            Piece { text: range.map(|r| sheet_text(&r)), name }
        })
        .collect();
    Parsed::Pieces(pieces)
}

/// Gaps kept as they are between cells (empty columns as tabs, empty rows as newlines);
/// wider gaps shrink to this, so a sheet naming its last possible cell stays small.
const MAX_GAP: u32 = 64;
/// Bytes of sheet text per part (a bigger sheet becomes several, each with the header row).
const SHEET_PART_BYTES: usize = 8 << 20;

/// An Excel workbook read cell by cell (never as a dense range: a 1 KB file can name cell
/// XFD1048576), a part per sheet (or per 8 MB of it), the first row repeated as the header
/// of each part.
fn xlsx_streamed<RS: Read + Seek>(
    cx: &mut Cx<'_, '_>,
    location: &str,
    book: &mut calamine::Xlsx<RS>,
) -> Result<(), Skipped> {
    for sheet in book.sheet_names() {
        let here = join(location, &sheet);
        let mut cells = match book.worksheet_cells_reader(&sheet) {
            Ok(c) => c,
            Err(e) => {
                cx.skip(&here, sheet_error(&e.into()));
                continue;
            }
        };
        let mut text = String::new();
        let mut labels: Vec<Label> = Vec::new();
        let mut header: Option<String> = None;
        let mut position: Option<(u32, u32)> = None; // the last cell written
        loop {
            let cell = match cells.next_cell() {
                Ok(Some(cell)) => cell,
                Ok(None) => break,
                Err(e) => {
                    cx.skip(&here, sheet_error(&e.into()));
                    break;
                }
            };
            let (row, col) = cell.get_position();
            let value = cell_ref_text(cell.get_value());
            if value.is_empty() {
                continue;
            }
            match position {
                Some((r, _)) if row > r => {
                    if header.is_none() {
                        header = Some(format!("{text}\n"));
                    }
                    let rows = (row - r).min(MAX_GAP);
                    text.extend(std::iter::repeat_n('\n', rows as usize));
                    if text.len() > SHEET_PART_BYTES {
                        cx.budget.check_time()?;
                        cx.text(&here, &mut text.as_bytes(), true, &labels)?;
                        text = header.clone().unwrap_or_default();
                        labels.clear();
                    }
                    text.extend(std::iter::repeat_n('\t', col.min(MAX_GAP) as usize));
                }
                Some((_, c)) => {
                    let gap = col.saturating_sub(c).clamp(1, MAX_GAP);
                    text.extend(std::iter::repeat_n('\t', gap as usize));
                }
                None => text.extend(std::iter::repeat_n('\t', col.min(MAX_GAP) as usize)),
            }
            position = Some((row, col));
            labels.push(Label {
                start: text.len() as u64,
                name: format!("{}{}", column_letters(col), row + 1),
            });
            text.extend(
                value.chars().map(|ch| if matches!(ch, '\t' | '\n' | '\r') { ' ' } else { ch }),
            );
        }
        drop(cells);
        text.push('\n');
        cx.budget.check_time()?;
        cx.text(&here, &mut text.as_bytes(), true, &labels)?;
    }
    Ok(())
}

/// A streamed cell's value as text (as [`cell_text`]).
fn cell_ref_text(cell: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef;
    match cell {
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Int(i) => cell_text(&Data::Int(*i)),
        DataRef::Float(f) => cell_text(&Data::Float(*f)),
        DataRef::Bool(b) => cell_text(&Data::Bool(*b)),
        DataRef::DateTime(d) => cell_text(&Data::DateTime(*d)),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

fn all_sheets<RS, R>(book: &mut R) -> Vec<(String, Result<Range<Data>, Skipped>)>
where
    RS: Read + Seek,
    R: Reader<RS>,
    R::Error: Into<calamine::Error>,
{
    let names = book.sheet_names();
    names
        .into_iter()
        .map(|n| {
            let range = book.worksheet_range(&n).map_err(|e| sheet_error(&e.into()));
            (n, range)
        })
        .collect()
}

/// A calamine error in fixed words (its own messages may quote cell content).
fn sheet_error(e: &calamine::Error) -> Skipped {
    let text = e.to_string();
    if text.contains("password") || text.contains("Password") || text.contains("ncrypt") {
        Skipped::Encrypted
    } else {
        Skipped::Corrupt("the spreadsheet could not be read")
    }
}

/// A column number (0-based) as letters: 0 → A, 27 → AB.
fn column_letters(mut col: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// A sheet as tab-separated text, with a label per non-empty cell.
fn sheet_text(range: &Range<Data>) -> (String, Vec<Label>) {
    let mut text = String::new();
    let mut labels = Vec::new();
    let (row0, col0) = range.start().unwrap_or((0, 0));
    for (r, row) in range.rows().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                text.push('\t');
            }
            let value = cell_text(cell);
            if !value.is_empty() {
                labels.push(Label {
                    start: text.len() as u64,
                    name: format!("{}{}", column_letters(col0 + c as u32), row0 + r as u32 + 1),
                });
                text.extend(
                    value.chars().map(|ch| if matches!(ch, '\t' | '\n' | '\r') { ' ' } else { ch }),
                );
            }
        }
        text.push('\n');
    }
    (text, labels)
}

/// A cell's value as text: whole numbers without a decimal point (an SSN or phone number
/// typed into a number cell), dates as ISO dates.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            let (y, m, d, hh, mm, ss, _) = dt.to_ymd_hms_milli();
            if (hh, mm, ss) == (0, 0, 0) {
                format!("{y:04}-{m:02}-{d:02}")
            } else {
                format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
            }
        }
    }
}

/// An OLE2 compound file: legacy Excel is read; an encrypted Office file (its package
/// inside an `EncryptedPackage` stream) is reported as encrypted; anything else (legacy
/// Word, PowerPoint, Outlook messages) is reported as not read.
pub(crate) fn ole(
    cx: &mut Cx<'_, '_>,
    location: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), Skipped> {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let has = |s: &str| memchr::memmem::find(bytes, &utf16(s)).is_some();
    if has("EncryptedPackage") || has("EncryptionInfo") {
        return Err(Skipped::Encrypted);
    }
    if has("Workbook") || has("Book") || name.to_ascii_lowercase().ends_with(".xls") {
        // calamine reads every sheet when it opens the file, each as a full grid, and
        // reserves what a sheet's DIMENSIONS record claims: a few hundred bytes naming
        // two far corners, or listing one sheet a thousand times, would cost gigabytes,
        // or abort the process.
        let stream = xls_stream(bytes)?;
        if xls_cells(&stream)? > MAX_XLS_CELLS {
            return Err(Skipped::Oversized("sheets spanning more than 3,000,000 cells in all"));
        }
        let rebuilt = xls_rebuilt(&stream)?;
        drop(stream);
        // The grid is bounded now, but not what its strings cost (a cell may repeat a
        // 64 KB shared string), nor calamine's own bugs: it runs isolated when it can.
        let parsed = isolate::run(cx, isolate::Kind::Xls, rebuilt)?;
        let sheets = match parsed {
            Parsed::Pieces(sheets) => sheets,
            Parsed::Refused(why) => return Err(why),
            Parsed::Panicked => return Err(Skipped::Crashed),
        };
        for sheet in sheets {
            let here = join(location, &sheet.name);
            match sheet.text {
                Ok((text, labels)) => cx.text(&here, &mut text.as_bytes(), true, &labels)?,
                Err(why) => cx.skip(&here, why),
            }
        }
        return Ok(());
    }
    let _ = cx;
    Err(Skipped::Unsupported("legacy Word, PowerPoint or Outlook file (.doc, .ppt, .msg)"))
}

/// The workbook stream of a legacy Excel file, as the `cfb` crate reads it (strictly:
/// the tree, not the first entry with a matching name). calamine is then given a clean
/// compound file holding only this stream, so it reads exactly what was measured.
fn xls_stream(bytes: &[u8]) -> Result<Vec<u8>, Skipped> {
    const DAMAGED: Skipped = Skipped::Corrupt("not a readable Excel 97-2003 workbook");
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes)).map_err(|_| DAMAGED)?;
    let stream = file.open_stream("/Workbook").or_else(|_| file.open_stream("/Book"));
    let mut out = Vec::new();
    // A stream is never larger than its file (a looping chain is the crate's error).
    stream
        .map_err(|_| DAMAGED)?
        .take(bytes.len() as u64)
        .read_to_end(&mut out)
        .map_err(|_| DAMAGED)?;
    Ok(out)
}

/// A compound file holding `stream` as its workbook, for calamine.
fn xls_rebuilt(stream: &[u8]) -> Result<Vec<u8>, Skipped> {
    let built = (|| {
        let mut file =
            cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))?;
        std::io::Write::write_all(&mut file.create_stream("/Workbook")?, stream)?;
        file.flush()?;
        Ok::<_, std::io::Error>(file.into_inner().into_inner())
    })();
    built.map_err(|_| Skipped::Corrupt("not a readable Excel 97-2003 workbook"))
}

/// The most sheets a workbook may list (Excel's own files hold a handful).
const MAX_SHEETS: usize = 4096;

/// The cells calamine would lay out or reserve for a legacy Excel workbook: per sheet
/// listed (a sheet listed twice costs twice) the grid its cell records and its formulas
/// span, plus the largest list of cell entries it builds on the way (one per record, or
/// what a DIMENSIONS record asks to reserve), read the way
/// calamine 0.38 reads them (records after the first EOF of the globals, each sheet from
/// its BoundSheet offset, embedded substreams skipped, CONTINUE records folded away).
fn xls_cells(stream: &[u8]) -> Result<u64, Skipped> {
    // Bytes of records read, all sheets together: sheets overlapping each other would
    // make calamine (and this) read the same records over and over.
    let walked = std::cell::Cell::new(0usize);
    let records = |mut at: usize| {
        let walked = &walked;
        std::iter::from_fn(move || {
            let head = stream.get(at..at + 4)?;
            let (typ, len) = (u16_at(head, 0), usize::from(u16_at(head, 2)));
            let data = stream.get(at + 4..at + 4 + len)?;
            at += 4 + len;
            walked.set(walked.get() + 4 + len);
            Some((typ, data))
        })
        .filter(|(typ, _)| *typ != 0x003C)
    };
    let mut sheets = Vec::new();
    for (typ, data) in records(0) {
        match typ {
            0x0085 => sheets.push(u32_at(data, 0) as usize), // BoundSheet8: the sheet's offset
            0x000A => break,                                 // EOF of the globals
            _ => {}
        }
    }
    if sheets.len() > MAX_SHEETS {
        return Err(Skipped::Oversized("a workbook listing more than 4,096 sheets"));
    }
    let budget = stream.len().saturating_mul(2).saturating_add(1 << 20);
    let (mut total, mut on_the_way) = (0u64, 0u64);
    for at in sheets {
        if at >= stream.len() {
            return Err(Skipped::Corrupt("a sheet the workbook lists is missing"));
        }
        let mut cells = Span::default();
        let mut formulas = Span::default();
        let mut reserved = 0u64;
        let mut formula_at = (0u16, 0u16); // calamine's fmla_pos: (0, 0) until a formula
        let (mut depth, mut seen_bof) = (0usize, false);
        for (typ, d) in records(at) {
            if walked.get() > budget {
                return Err(Skipped::Oversized("a workbook whose sheets overlap"));
            }
            if depth > 0 {
                match typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            match typ {
                0x0809 if seen_bof => depth += 1,
                0x0809 => seen_bof = true,
                0x000A => break,
                0x0200 => reserved = reserved.max(dimensions(d)),
                // Number, Label, RString, BoolErr, RK, LabelSst: row, column.
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD if d.len() >= 4 => {
                    cells.add(u16_at(d, 0), u16_at(d, 2));
                }
                // Formula: a value (maybe) and a formula at its cell; a STRING record after
                // it puts its text there too.
                0x0006 if d.len() >= 20 => {
                    formula_at = (u16_at(d, 0), u16_at(d, 2));
                    cells.add(formula_at.0, formula_at.1);
                    formulas.add(formula_at.0, formula_at.1);
                }
                0x0207 => cells.add(formula_at.0, formula_at.1),
                // MulRk: a row, its first and last column.
                0x00BD if d.len() >= 6 => {
                    let (row, first, last) = (u16_at(d, 0), u16_at(d, 2), u16_at(d, d.len() - 2));
                    if first <= last {
                        cells.add(row, first);
                        cells.add(row, last);
                        cells.entries += u64::from(last - first).saturating_sub(1);
                    }
                }
                _ => {}
            }
        }
        // Kept: the sheet's grid and its formulas' grid. On the way: the list of cell
        // entries (as long as the records, or as DIMENSIONS reserved), one sheet at a time.
        total = total.saturating_add(cells.grid()).saturating_add(formulas.grid());
        on_the_way = on_the_way.max(cells.entries.max(reserved));
    }
    Ok(total.saturating_add(on_the_way))
}

/// What calamine reserves for a DIMENSIONS record, with its own arithmetic (wrapping, as
/// in a release build).
fn dimensions(d: &[u8]) -> u64 {
    let (first_row, last_row, mut first_col, last_col) = match d.len() {
        10 => (
            u32::from(u16_at(d, 0)),
            u32::from(u16_at(d, 2)),
            u32::from(u16_at(d, 4)),
            u32::from(u16_at(d, 6)),
        ),
        14 | 16 => (u32_at(d, 0), u32_at(d, 4), u32::from(u16_at(d, 8)), u32::from(u16_at(d, 10))),
        _ => return 0, // calamine refuses the workbook
    };
    if first_col > 0xFF || last_col < first_col {
        first_col = 0;
    }
    let (end_row, end_col) = if last_row >= 1 && last_col >= 1 {
        (last_row - 1, last_col - 1)
    } else {
        (first_row, first_col)
    };
    let span = |end: u32, start: u32| u64::from(end.wrapping_sub(start).wrapping_add(1));
    span(end_row, first_row).saturating_mul(span(end_col, first_col))
}

/// The little-endian u16 at `at` in a record (0 past its end, as a short record counts).
fn u16_at(d: &[u8], at: usize) -> u16 {
    d.get(at..at + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

/// The little-endian u32 at `at` in a record (0 past its end).
fn u32_at(d: &[u8], at: usize) -> u32 {
    d.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The rows and columns a sheet's cells reach, and how many cell entries calamine keeps
/// on the way (one per record, repeats included).
#[derive(Default)]
struct Span {
    reach: Option<((u16, u16), (u16, u16))>,
    entries: u64,
}

impl Span {
    fn add(&mut self, row: u16, col: u16) {
        let ((r0, r1), (c0, c1)) = self.reach.unwrap_or(((row, row), (col, col)));
        self.reach = Some(((r0.min(row), r1.max(row)), (c0.min(col), c1.max(col))));
        self.entries += 1;
    }

    /// The cells of the grid between them (calamine's `Range::from_sparse`).
    fn grid(&self) -> u64 {
        self.reach
            .map_or(0, |((r0, r1), (c0, c1))| (u64::from(r1 - r0) + 1) * (u64::from(c1 - c0) + 1))
    }
}

/// Which XML elements carry text, and which end a line.
struct TextRule {
    /// Only text inside elements with this local name counts (`None`: all text).
    text_in: Option<&'static str>,
    /// Elements whose end ends a line.
    lines: &'static [&'static str],
    /// Empty elements that stand for a tab or a line break.
    tabs: &'static [&'static str],
    breaks: &'static [&'static str],
}

const WORD: TextRule =
    TextRule { text_in: Some("t"), lines: &["p", "tr"], tabs: &["tab"], breaks: &["br", "cr"] };
const DRAWING: TextRule =
    TextRule { text_in: Some("t"), lines: &["p"], tabs: &["tab"], breaks: &["br"] };
const OPEN_DOCUMENT: TextRule =
    TextRule { text_in: None, lines: &["p", "h"], tabs: &["tab"], breaks: &["line-break"] };

/// The text of an Office XML part.
fn xml_text(xml: &[u8], rule: &TextRule) -> Result<String, Skipped> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut out = String::new();
    let mut inside = 0usize; // depth inside text elements
    loop {
        let event =
            reader.read_event().map_err(|_| Skipped::Corrupt("the document's XML is damaged"))?;
        let in_text = rule.text_in.is_none() || inside > 0;
        match event {
            Event::Start(e) if rule.text_in == Some(e.local_name().as_ref()) => {
                inside += 1;
            }
            Event::End(e) => {
                let local = e.local_name();
                if rule.text_in == Some(local.as_ref()) {
                    inside = inside.saturating_sub(1);
                }
                if rule.lines.contains(&local.as_ref()) {
                    out.push('\n');
                }
            }
            Event::Empty(e) => {
                let local = e.local_name();
                if rule.tabs.contains(&local.as_ref()) {
                    out.push('\t');
                } else if rule.breaks.contains(&local.as_ref())
                    || rule.lines.contains(&local.as_ref())
                {
                    out.push('\n');
                } else if local.as_ref() == "s" && rule.text_in.is_none() {
                    out.push(' '); // OpenDocument's run of spaces
                }
            }
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    out.push(ch);
                } else {
                    out.push_str(match r.into_inner().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn word_text_keeps_paragraphs_and_entities() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>SSN:</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve"> 123-45-6789 &amp; more</w:t></w:r></w:p><w:p><w:r><w:instrText>HYPERLINK</w:instrText><w:t>second</w:t></w:r></w:p></w:body></w:document>"#;
        assert_eq!(xml_text(xml, &WORD).unwrap(), "SSN:\t 123-45-6789 & more\nsecond\n");
    }

    #[test]
    fn numbers_in_cells_read_as_typed() {
        assert_eq!(cell_text(&Data::Float(123_456_789.0)), "123456789");
        assert_eq!(cell_text(&Data::Float(12.5)), "12.5");
        assert_eq!(cell_text(&Data::Empty), "");
    }
}

#[cfg(test)]
mod part_tests {
    use super::{Format, ooxml_text_part};

    /// Part names as ECMA-376 (Office Open XML) and the Office applications write them.
    #[test]
    fn the_text_bearing_parts_of_each_package() {
        for name in [
            "word/document.xml",
            "word/header1.xml",
            "word/footer2.xml",
            "word/footnotes.xml",
            "word/comments.xml",
            "word/glossary/document.xml",
        ] {
            assert!(ooxml_text_part(Format::Docx, name), "{name}");
        }
        for name in [
            "word/_rels/document.xml.rels",
            "word/styles.xml",
            "word/fontTable.xml",
            "[Content_Types].xml",
        ] {
            assert!(!ooxml_text_part(Format::Docx, name), "{name}");
        }
        for name in ["xl/sharedStrings.xml", "xl/worksheets/sheet1.xml", "xl/comments1.xml"] {
            assert!(ooxml_text_part(Format::Xlsx, name), "{name}");
        }
        for name in ["xl/workbook.xml", "xl/styles.xml", "xl/worksheets/_rels/sheet1.xml.rels"] {
            assert!(!ooxml_text_part(Format::Xlsx, name), "{name}");
        }
        for name in ["ppt/slides/slide1.xml", "ppt/notesSlides/notesSlide12.xml"] {
            assert!(ooxml_text_part(Format::Pptx, name), "{name}");
        }
        for name in ["ppt/slideLayouts/slideLayout1.xml", "ppt/slides/_rels/slide1.xml.rels"] {
            assert!(!ooxml_text_part(Format::Pptx, name), "{name}");
        }
    }
}
