//! Hostile and broken input: every case ends as a reported skip or a correct result,
//! within the limits, and never as a panic or an unbounded read.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use custody_extract::{Format, Limits, Part, Skipped, Visitor, extract_file, head, sniff};
use zip::write::SimpleFileOptions;

/// Records what the extractor handed out.
#[derive(Default)]
struct Record {
    parts: Vec<(String, String)>,
    skipped: Vec<(String, Skipped)>,
}

impl Visitor for Record {
    fn part(&mut self, part: Part<'_>) -> io::Result<()> {
        let mut text = Vec::new();
        part.text.read_to_end(&mut text)?;
        self.parts.push((part.location.to_string(), String::from_utf8_lossy(&text).into_owned()));
        Ok(())
    }
    fn skipped(&mut self, location: &str, why: Skipped) {
        self.skipped.push((location.to_string(), why));
    }
}

fn run(path: &Path, limits: &Limits) -> (Record, Result<(), Skipped>) {
    let mut file = std::fs::File::open(path).unwrap();
    let format = sniff(&path.file_name().unwrap().to_string_lossy(), &head(&mut file).unwrap());
    let mut record = Record::default();
    let result = extract_file(path, format, limits, &mut record);
    (record, result)
}

fn zip_of(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    for (name, bytes) in members {
        w.start_file(*name, SimpleFileOptions::default().compression_method(method)).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_zip_bomb_is_refused_from_its_directory_before_inflating() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 64 << 20];
    let bomb = zip_of(&[("zeros.txt", &zeros)], zip::CompressionMethod::Deflated);
    assert!(bomb.len() < 1 << 20, "the bomb compresses to {} bytes", bomb.len());
    let path = write(dir.path(), "bomb.zip", &bomb);
    let started = Instant::now();
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Err(Skipped::Bomb));
    assert!(record.parts.is_empty());
    assert!(started.elapsed() < Duration::from_secs(1), "refused in {:?}", started.elapsed());
}

#[test]
fn a_bomb_inside_a_normal_archive_costs_only_that_member() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![b'a'; 64 << 20];
    let bomb = zip_of(&[("zeros.txt", &zeros)], zip::CompressionMethod::Deflated);
    // The outer archive stores the bomb as it is, beside an ordinary file.
    let outer = zip_of(
        &[("bomb.zip", &bomb), ("notes.txt", b"call 212-555-0199")],
        zip::CompressionMethod::Stored,
    );
    let path = write(dir.path(), "outer.zip", &outer);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert_eq!(record.skipped, [("bomb.zip".to_string(), Skipped::Bomb)]);
    assert_eq!(record.parts, [("notes.txt".to_string(), "call 212-555-0199".to_string())]);
}

#[test]
fn a_gzip_bomb_stops_at_the_ratio_limit_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b'x'; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&block).unwrap();
    }
    let bytes = gz.finish().unwrap();
    let path = write(dir.path(), "log.txt.gz", &bytes);
    let started = Instant::now();
    let (_, result) = run(&path, &Limits::default());
    assert_eq!(result, Err(Skipped::Bomb), "{} compressed bytes", bytes.len());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Adds a second central-directory entry pointing at the first entry's data.
fn with_overlapping_entry(zip: &[u8]) -> Vec<u8> {
    let find = |sig: &[u8]| zip.windows(4).rposition(|w| w == sig).unwrap();
    let cd = find(b"PK\x01\x02");
    let eocd = find(b"PK\x05\x06");
    let u16_at = |p: usize| usize::from(u16::from_le_bytes([zip[p], zip[p + 1]]));
    let entry_len = 46 + u16_at(cd + 28) + u16_at(cd + 30) + u16_at(cd + 32);
    let mut copy = zip[cd..cd + entry_len].to_vec();
    let name_end = 46 + u16_at(cd + 28);
    copy[name_end - 1] = b'2'; // another name, the same data
    let mut out = zip[..cd + entry_len].to_vec();
    out.extend_from_slice(&copy);
    let mut end = zip[eocd..].to_vec();
    for p in [8, 10] {
        let n = u16::from_le_bytes([end[p], end[p + 1]]) + 1;
        end[p..p + 2].copy_from_slice(&n.to_le_bytes());
    }
    let size = u32::from_le_bytes([end[12], end[13], end[14], end[15]]) + entry_len as u32;
    end[12..16].copy_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&end);
    out
}

#[test]
fn overlapping_entries_are_refused_as_a_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_of(&[("data1.txt", b"ssn 123-45-6789")], zip::CompressionMethod::Stored);
    let path = write(dir.path(), "overlap.zip", &with_overlapping_entry(&zip));
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Err(Skipped::Bomb));
    assert!(record.parts.is_empty());
}

#[test]
fn nesting_past_the_depth_limit_is_reported_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut inner = zip_of(&[("deep.txt", b"deepest")], zip::CompressionMethod::Deflated);
    for level in (1..=8).rev() {
        let note = format!("level {level}");
        inner = zip_of(
            &[(&format!("l{level}.zip"), &inner), (&format!("n{level}.txt"), note.as_bytes())],
            zip::CompressionMethod::Deflated,
        );
    }
    let path = write(dir.path(), "nested.zip", &inner);
    let limits = Limits { max_depth: 3, ..Limits::default() };
    let (record, result) = run(&path, &limits);
    assert_eq!(result, Ok(()));
    let mut read: Vec<&str> = record.parts.iter().map(|(_, t)| t.as_str()).collect();
    read.sort_unstable();
    assert_eq!(read, ["level 1", "level 2", "level 3", "level 4"], "{:?}", record.parts);
    assert_eq!(record.skipped.len(), 1, "{:?}", record.skipped);
    assert_eq!(record.skipped[0].0, "l1.zip!l2.zip!l3.zip!l4.zip");
    assert_eq!(record.skipped[0].1, Skipped::TooDeep { limit: 3 });
}

#[test]
fn too_many_members_stops_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("f{i}.txt")).collect();
    let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let path = write(dir.path(), "many.zip", &zip_of(&members, zip::CompressionMethod::Stored));
    let (_, result) = run(&path, &Limits { max_members: 10, ..Limits::default() });
    assert_eq!(result, Err(Skipped::TooManyMembers { limit: 10 }));
}

#[test]
fn an_encrypted_zip_member_is_reported_as_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let mut zip = zip_of(
        &[("secret.txt", b"4111 1111 1111 1111"), ("open.txt", b"hello")],
        zip::CompressionMethod::Stored,
    );
    // Set the "encrypted" flag of the first entry, in its local and central headers.
    zip[6] |= 1;
    let cd = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    zip[cd + 8] |= 1;
    let path = write(dir.path(), "locked.zip", &zip);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert_eq!(record.skipped, [("secret.txt".to_string(), Skipped::Encrypted)]);
    assert_eq!(record.parts, [("open.txt".to_string(), "hello".to_string())]);
}

#[test]
fn encrypted_office_and_pdf_files_are_reported_as_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    // An encrypted .docx is an OLE2 compound file holding an EncryptedPackage stream.
    let mut ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec();
    ole.resize(512, 0);
    ole.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
    ole.resize(2048, 0);
    let (_, result) = run(&write(dir.path(), "letter.docx", &ole), &Limits::default());
    assert_eq!(result, Err(Skipped::Encrypted));

    let mut pdf = custody_testkit::formats::pdf(&["secret"]);
    let trailer = pdf.windows(7).rposition(|w| w == b"trailer").unwrap();
    pdf.splice(
        trailer + 8..trailer + 8,
        b"<< /Encrypt << /Filter /Standard /V 2 /R 3 >> >>\n".iter().copied(),
    );
    let (_, result) = run(&write(dir.path(), "locked.pdf", &pdf), &Limits::default());
    assert_eq!(result, Err(Skipped::Encrypted));
}

#[test]
fn damaged_documents_are_skipped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let docx = custody_testkit::formats::docx(&["SSN 123-45-6789"]).unwrap();
    let xlsx =
        custody_testkit::formats::xlsx(&[vec!["ssn".into()], vec!["078-05-1120".into()]]).unwrap();
    let pdf = custody_testkit::formats::pdf(&["card 4111 1111 1111 1111"]);
    for (name, bytes) in [("a.docx", &docx), ("b.xlsx", &xlsx), ("c.pdf", &pdf)] {
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 30] {
            let path = write(dir.path(), name, &bytes[..cut]);
            let (_, result) = run(&path, &Limits::default());
            // A truncated file is either refused with a reason or read as far as it goes.
            if let Err(why) = result {
                assert!(
                    matches!(why, Skipped::Corrupt(_) | Skipped::Crashed),
                    "{name} cut at {cut}: {why:?}"
                );
                assert!(!why.to_string().contains("123-45") && !why.to_string().contains("4111"));
            }
        }
    }
    // A PDF whose cross-reference table points nowhere.
    let mut broken = pdf.clone();
    let xref = broken.windows(9).rposition(|w| w == b"startxref").unwrap();
    broken.truncate(xref);
    broken.extend_from_slice(b"startxref\n999999\n%%EOF\n");
    let (record, result) = run(&write(dir.path(), "broken-xref.pdf", &broken), &Limits::default());
    assert!(result.is_err() || record.parts.iter().any(|(_, t)| t.contains("4111")), "{result:?}");
    // Random bytes named like every format.
    let junk: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for name in [
        "x.docx", "x.xlsx", "x.pdf", "x.zip", "x.eml", "x.mbox", "x.rtf", "x.html", "x.json",
        "x.ods",
    ] {
        let path = write(dir.path(), name, &junk);
        let _ = run(&path, &Limits::default());
    }
}

#[test]
fn the_time_limit_ends_a_slow_file() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(String, Vec<u8>)> =
        (0..200).map(|i| (format!("f{i}.txt"), vec![b'a'; 64 << 10])).collect();
    let refs: Vec<(&str, &[u8])> =
        members.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let path = write(dir.path(), "slow.zip", &zip_of(&refs, zip::CompressionMethod::Deflated));
    let (_, result) = run(&path, &Limits { max_time: Duration::ZERO, ..Limits::default() });
    assert_eq!(result, Err(Skipped::TimedOut { seconds: 0 }));
}

#[test]
fn formats_are_sniffed_from_content_first() {
    let zip = zip_of(&[("word/document.xml", b"<w:document/>")], zip::CompressionMethod::Stored);
    assert_eq!(sniff("report.bin", &zip), Format::Zip);
    assert_eq!(sniff("report.docx", &zip), Format::Docx);
    assert_eq!(sniff("x.csv", b"%PDF-1.4"), Format::Pdf);
}

/// Found by fuzzing (`fuzz/`, target `pdf`): a 1.4 KB PDF on which the PDF parser spins.
/// It must end as a time-out skip at the limit, not hold the scan.
#[test]
fn a_pdf_the_parser_spins_on_ends_at_the_time_limit() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-slow.pdf");
    let started = Instant::now();
    let limits = Limits { max_time: Duration::from_secs(2), ..Limits::default() };
    let (record, result) = run(&path, &limits);
    assert_eq!(result, Err(Skipped::TimedOut { seconds: 2 }));
    assert!(record.parts.is_empty());
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[test]
fn text_before_the_first_message_of_a_mailbox_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "notes.mbox",
        b"not really a mailbox: call 212-555-0143\n\nFrom a@b.c Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
    );
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(
        record.parts.iter().any(|(l, t)| l == "preamble" && t.contains("212-555-0143")),
        "{:?}",
        record.parts
    );
    assert!(record.parts.iter().any(|(l, t)| l == "message1" && t.contains("body")));
}

#[test]
fn markup_that_once_broke_the_html_reader_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // An unclosed tag ending in a multi-byte character, and many style blocks (each once
    // made a lower-cased copy of the rest of the page).
    let mut page = "<style></style>".repeat(200_000).into_bytes();
    page.extend_from_slice(b"<p>ssn 536-22-1234<b\xff");
    let path = write(dir.path(), "page.html", &page);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(record.parts[0].1.contains("536-22-1234"));
}

#[test]
fn a_sheet_naming_its_last_possible_cell_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    // Two cells, A1 and XFD1048576: read as a dense range this is 17 billion cells.
    let sheet = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>ssn</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>536-22-1234</t></is></c></row></sheetData></worksheet>"#;
    let mut xlsx = custody_testkit::formats::xlsx(&[vec!["x".into()]]).unwrap();
    // Swap the testkit's sheet for the hostile one.
    let mut archive = zip::ZipArchive::new(io::Cursor::new(&xlsx)).unwrap();
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            bytes = sheet.to_vec();
        }
        w.start_file(name, SimpleFileOptions::default()).unwrap();
        w.write_all(&bytes).unwrap();
    }
    xlsx = w.finish().unwrap().into_inner();
    let path = write(dir.path(), "huge.xlsx", &xlsx);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    let (location, text) = &record.parts[0];
    assert_eq!(location, "Customers");
    assert!(text.contains("536-22-1234") && text.len() < 1_000, "{} bytes", text.len());
}

/// A tar header block for `name` of `size` bytes and type `kind`, checksummed.
fn tar_header(name: &str, size: u64, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn a_tar_long_name_of_megabytes_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 4 << 20;
    let mut tar = tar_header("././@LongLink", size, b'L').to_vec();
    tar.extend(std::iter::repeat_n(b'a', size as usize));
    tar.extend(tar_header("card.txt", 20, b'0'));
    let mut body = b"4539 1488 0343 6467\n".to_vec();
    body.resize(512, 0);
    tar.extend(body);
    tar.extend([0u8; 1024]);
    let path = write(dir.path(), "names.tar", &tar);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(
        record.skipped.iter().any(|(_, why)| matches!(why, Skipped::Oversized(_))),
        "{:?}",
        record.skipped
    );

    // Ordinary long names (GNU and PAX, as tar tools write them) are read as always.
    let long = format!("{}/customers.txt", "folder".repeat(30));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(20);
    header.set_mode(0o644);
    builder.append_data(&mut header, &long, &b"4539 1488 0343 6467\n"[..]).unwrap();
    let path = write(dir.path(), "long.tar", &builder.into_inner().unwrap());
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(record.skipped.is_empty(), "{:?}", record.skipped);
    assert_eq!(record.parts.len(), 1);
    assert!(record.parts[0].0.ends_with("customers.txt"), "{:?}", record.parts[0].0);
}

fn ods_of(table: &str) -> Vec<u8> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="S">{table}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("mimetype", stored).unwrap();
    w.write_all(b"application/vnd.oasis.opendocument.spreadsheet").unwrap();
    w.start_file("content.xml", SimpleFileOptions::default()).unwrap();
    w.write_all(content.as_bytes()).unwrap();
    w.start_file("META-INF/manifest.xml", SimpleFileOptions::default()).unwrap();
    w.write_all(br#"<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>"#).unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn a_spreadsheet_repeating_one_cell_a_hundred_million_times_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 787 bytes that calamine once laid out as 100 million cells (6 GB, 30 s).
    let repeated = ods_of(
        r#"<table:table-row table:number-rows-repeated="100000"><table:table-cell table:number-columns-repeated="1000" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>4539 1488 0343 6467</text:p></table:table-cell></table:table-row>"#,
    );
    let path = write(dir.path(), "dense.ods", &repeated);
    let started = Instant::now();
    let (_, result) = run(&path, &Limits::default());
    assert!(matches!(result, Err(Skipped::Oversized(_))), "{result:?}");
    assert_eq!(result.unwrap_err().code(), "too_large");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Two far corners: the grid between them is the cost.
    let corners = ods_of(
        r#"<table:table-row><table:table-cell office:value-type="string"><text:p>a</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="16000"/></table:table-row><table:table-row><table:table-cell table:number-columns-repeated="16000"/><table:table-cell office:value-type="string"><text:p>b</text:p></table:table-cell></table:table-row>"#,
    );
    let path = write(dir.path(), "corners.ods", &corners);
    let (_, result) = run(&path, &Limits::default());
    assert!(matches!(result, Err(Skipped::Oversized(_))), "{result:?}");
    // Trailing empty rows and columns, as LibreOffice writes them, cost nothing.
    let ordinary = ods_of(
        r#"<table:table-row><table:table-cell office:value-type="string"><text:p>card</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1023"/></table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>4539 1488 0343 6467</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1023"/></table:table-row><table:table-row table:number-rows-repeated="1048574"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>"#,
    );
    let path = write(dir.path(), "ordinary.ods", &ordinary);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(
        record.parts.iter().any(|(_, t)| t.contains("4539 1488 0343 6467")),
        "{:?}",
        record.parts
    );
}

/// A NUMBER record.
fn number(row: u16, col: u16, value: f64) -> (u16, Vec<u8>) {
    let mut d = Vec::new();
    d.extend_from_slice(&row.to_le_bytes());
    d.extend_from_slice(&col.to_le_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&value.to_le_bytes());
    (0x0203, d)
}

/// A BIFF8 workbook stream listing one sheet `listed` times (all at the same offset, or
/// at `offset`), the sheet being `records` between its BOF and EOF.
fn workbook_stream(records: &[(u16, Vec<u8>)], listed: usize, offset: Option<u32>) -> Vec<u8> {
    custody_testkit::formats::biff_workbook("S", &[], records, listed, offset)
}

/// A BIFF8 workbook of one sheet: NUMBER cells at `cells` (row, column, value), and the
/// sheet's DIMENSIONS record and BoundSheet offset as given (`None`: the true offset).
fn xls_of(cells: &[(u16, u16, f64)], dimensions: Option<[u32; 4]>, offset: Option<u32>) -> Vec<u8> {
    let mut records = Vec::new();
    if let Some([first_row, last_row, first_col, last_col]) = dimensions {
        let mut d = Vec::new();
        d.extend_from_slice(&first_row.to_le_bytes());
        d.extend_from_slice(&last_row.to_le_bytes());
        d.extend_from_slice(&(first_col as u16).to_le_bytes());
        d.extend_from_slice(&(last_col as u16).to_le_bytes());
        d.extend_from_slice(&[0, 0]);
        records.push((0x0200, d));
    }
    records.extend(cells.iter().map(|(r, c, v)| number(*r, *c, *v)));
    custody_testkit::formats::ole_file("/Workbook", &workbook_stream(&records, 1, offset)).unwrap()
}

#[test]
fn a_legacy_excel_sheet_spanning_far_corners_is_refused_before_it_is_laid_out() {
    let dir = tempfile::tempdir().unwrap();
    // The testkit's workbook (a shared string table, LABELSST cells) is read cell by cell.
    let rows = vec![
        vec!["name".to_string(), "card".to_string()],
        vec!["Ann Lee".to_string(), "4539 1488 0343 6467".to_string()],
    ];
    let book = custody_testkit::formats::xls(&rows).unwrap().unwrap();
    let path = write(dir.path(), "customers.xls", &book);
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert_eq!(record.parts.len(), 1, "{:?}", record.parts);
    assert_eq!(record.parts[0].0, "Customers");
    assert!(record.parts[0].1.contains("4539 1488 0343 6467"), "{:?}", record.parts);
    // A few hundred bytes: cells at A1 and IV65536 (16.7 million cells between them), at
    // A1 and the last column a record can name (4.3 billion: the allocation aborts the
    // process), and a DIMENSIONS record asking to reserve 4 billion rows.
    let cases = [
        ("corners.xls", xls_of(&[(0, 0, 1.0), (65_535, 255, 2.0)], None, None)),
        ("far.xls", xls_of(&[(0, 0, 1.0), (65_535, 65_535, 2.0)], None, None)),
        ("dimensions.xls", xls_of(&[(0, 0, 1.0)], Some([0, u32::MAX, 0, 256]), None)),
        ("backwards.xls", xls_of(&[(0, 0, 1.0)], Some([10, 5, 0, 1]), None)),
    ];
    // A STRING record (a formula's text) lands where the last formula was, A1 before any:
    // with a number at the far corner, that spans 4.3 billion cells.
    let string_at_a1 =
        workbook_stream(&[number(65_535, 65_535, 1.0), (0x0207, vec![3, 0, 0, 0, 0])], 1, None);
    // One sheet of 2,998,000 cells, listed 1,000 times: each listing is laid out again.
    let listed = workbook_stream(&[number(0, 0, 1.0), number(1_999, 1_498, 2.0)], 1_000, None);
    let cases = cases.into_iter().chain([
        ("string.xls", custody_testkit::formats::ole_file("/Workbook", &string_at_a1).unwrap()),
        ("listed.xls", custody_testkit::formats::ole_file("/Workbook", &listed).unwrap()),
    ]);
    for (name, bytes) in cases {
        let path = write(dir.path(), name, &bytes);
        let started = Instant::now();
        let (_, result) = run(&path, &Limits::default());
        assert!(matches!(result, Err(Skipped::Oversized(_))), "{name}: {result:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{name}: {:?}", started.elapsed());
    }
    // An ordinary sheet with numbers and a sensible DIMENSIONS record is read.
    let path = write(
        dir.path(),
        "numbers.xls",
        &xls_of(&[(0, 0, 1.0), (99, 9, 5_362_212_345.0)], Some([0, 100, 0, 10]), None),
    );
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(record.parts.iter().any(|(_, t)| t.contains("5362212345")), "{:?}", record.parts);
    // A sheet the workbook points past its end is damaged, not a crash.
    let path = write(dir.path(), "missing.xls", &xls_of(&[(0, 0, 1.0)], None, Some(1 << 30)));
    let (_, result) = run(&path, &Limits::default());
    assert!(matches!(result, Err(Skipped::Corrupt(_))), "{result:?}");
    // A compound file calamine would read but the strict reader refuses (a damaged
    // byte-order mark) is damaged: it is never handed on unmeasured.
    let mut far = xls_of(&[(0, 0, 1.0), (65_535, 65_535, 2.0)], None, None);
    far[28..30].copy_from_slice(&[0, 0]);
    let path = write(dir.path(), "bom.xls", &far);
    let (_, result) = run(&path, &Limits::default());
    assert!(matches!(result, Err(Skipped::Corrupt(_))), "{result:?}");
    // Two streams named Workbook: calamine would take the first entry of the directory
    // (here the hostile one, in a storage); it is given only the one that was measured.
    let hostile = workbook_stream(&[number(0, 0, 1.0), number(65_535, 65_535, 2.0)], 1, None);
    let harmless = workbook_stream(&[number(0, 0, 5_362_212_345.0)], 1, None);
    let mut file =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, io::Cursor::new(Vec::new()))
            .unwrap();
    file.create_storage("/S").unwrap();
    file.create_stream("/S/Workbook").unwrap().write_all(&hostile).unwrap();
    file.create_stream("/Workbook").unwrap().write_all(&harmless).unwrap();
    file.flush().unwrap();
    let path = write(dir.path(), "two.xls", &file.into_inner().into_inner());
    let (record, result) = run(&path, &Limits::default());
    assert_eq!(result, Ok(()));
    assert!(record.parts.iter().any(|(_, t)| t.contains("5362212345")), "{:?}", record.parts);
}
