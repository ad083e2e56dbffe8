//! The same planted data in every container and document format custody reads.
//!
//! [`package`] takes a generated corpus (its text files and `truth.jsonl`) and writes each
//! file again as a member of a nested zip, a `.tar.gz`, a `.gz`, a Word, PowerPoint and
//! OpenDocument text file, an Excel (xlsx and legacy xls) and OpenDocument sheet (CSV
//! files, cell by cell), a PDF, an HTML page, an RTF document, a base64 mail with a CSV attachment, a quoted-printable
//! mailbox and a SQLite database. Offsets change in these formats, so the truth it returns is
//! by value: per written file, the kinds and values planted in it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;

/// One planted value in a packaged file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    /// The packaged file, relative to the output folder.
    pub file: String,
    /// The format family (`zip`, `docx`, `pdf`, …).
    pub family: &'static str,
    /// The kind, as in `truth.jsonl`.
    pub kind: String,
    /// The value as planted.
    pub value: String,
}

struct Source {
    rel: String,
    text: String,
    truth: Vec<(String, String)>,
}

fn read_sources(corpus: &Path) -> io::Result<Vec<Source>> {
    let mut by_file: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in fs::read_to_string(corpus.join("truth.jsonl"))?.lines() {
        let field = |name: &str| json_field(line, name);
        by_file.entry(field("path")).or_default().push((field("kind"), field("value")));
    }
    let mut sources = Vec::new();
    for (rel, truth) in by_file {
        // (UTF-16 files are left out: they are a test of plain-file reading.)
        let Ok(text) = fs::read_to_string(corpus.join(&rel)) else { continue };
        if text.contains('\0') {
            continue;
        }
        // Mail and JSON already are formats of their own; the rest is text or CSV.
        if matches!(extension(&rel), "eml" | "json" | "ndjson" | "jsonl") {
            continue;
        }
        sources.push(Source { rel, text, truth });
    }
    Ok(sources)
}

/// The generator's own extensions (always lower-case).
fn extension(rel: &str) -> &str {
    rel.rsplit_once('.').map_or("", |(_, e)| e)
}

/// Reads a string field of one `truth.jsonl` line (the testkit writes them itself, with
/// only `\"`, `\\` and `\uXXXX`-free escapes for the fields read here).
fn json_field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\":\"");
    let Some(start) = line.find(&key).map(|p| p + key.len()) else { return String::new() };
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// The addresses in the generated mails' own headers: real addresses, so planted too.
static MAIL_HEADER_ADDRESSES: std::sync::LazyLock<Source> = std::sync::LazyLock::new(|| Source {
    rel: String::new(),
    text: String::new(),
    truth: vec![
        ("email".into(), "shop@brightleaf.example".into()),
        ("email".into(), "accounts@brightleaf.example".into()),
    ],
});
static MBOX_HEADER_ADDRESSES: std::sync::LazyLock<Source> = std::sync::LazyLock::new(|| Source {
    rel: String::new(),
    text: String::new(),
    truth: vec![("email".into(), "shop@brightleaf.example".into())],
});

/// The largest source made into documents, sheets and mail.
const MAX_DOCUMENT: usize = 2 << 20;

/// Writes every format family from the corpus at `corpus` into `out`; returns the truth.
pub fn package(corpus: &Path, out: &Path) -> io::Result<Vec<Planted>> {
    fs::create_dir_all(out)?;
    let sources = read_sources(corpus)?;
    let mut truth = Vec::new();
    let mut plant = |file: &str, family: &'static str, s: &Source| {
        for (kind, value) in &s.truth {
            truth.push(Planted {
                file: file.to_string(),
                family,
                kind: kind.clone(),
                value: value.clone(),
            });
        }
    };
    // Tables (their header row is context) become sheets and database tables; the rest
    // becomes documents.
    let is_table = |s: &&Source| matches!(extension(&s.rel), "csv" | "tsv");
    let csvs: Vec<&Source> = sources.iter().filter(is_table).collect();
    let texts: Vec<&Source> = sources.iter().filter(|s| !is_table(s)).collect();

    // Archives: a nested zip, a tar.gz, and single gz files (members keep their text).
    let half = sources.len() / 2;
    let inner =
        zip_bytes(sources[..half].iter().map(|s| (s.rel.as_str(), s.text.as_bytes().to_vec())))?;
    let mut outer_members: Vec<(String, Vec<u8>)> = vec![("backup/inner.zip".into(), inner)];
    outer_members
        .extend(sources[half..].iter().map(|s| (s.rel.clone(), s.text.as_bytes().to_vec())));
    fs::write(
        out.join("archive.zip"),
        zip_bytes(outer_members.iter().map(|(n, b)| (n.as_str(), b.clone())))?,
    )?;
    for s in &sources {
        plant("archive.zip", "zip", s);
    }
    write_tar_gz(&out.join("archive.tar.gz"), &sources)?;
    for s in &sources {
        plant("archive.tar.gz", "tar.gz", s);
    }

    // Documents are made of the files up to a few MB (a 100 MB log is not a letter); the
    // archives above hold everything.
    let texts: Vec<&Source> = texts.into_iter().filter(|s| s.text.len() <= MAX_DOCUMENT).collect();
    let csvs: Vec<&Source> = csvs.into_iter().filter(|s| s.text.len() <= MAX_DOCUMENT).collect();
    for (i, s) in texts.iter().enumerate() {
        let lines: Vec<&str> = s.text.lines().collect();
        let name = format!("doc{i:03}");
        let mut families: Vec<(&'static str, String, Vec<u8>)> = vec![
            ("docx", format!("{name}.docx"), docx(&lines)?),
            ("odt", format!("{name}.odt"), odt(&lines)?),
            ("pptx", format!("{name}.pptx"), pptx(&lines)?),
            ("pdf", format!("{name}.pdf"), pdf(&lines)),
            ("html", format!("{name}.html"), html(&lines).into_bytes()),
            ("rtf", format!("{name}.rtf"), rtf(&lines).into_bytes()),
            ("eml", format!("{name}.eml"), eml(&s.text, None).into_bytes()),
            ("gz", format!("{name}.txt.gz"), gz(s.text.as_bytes())?),
        ];
        for (family, file, bytes) in families.drain(..) {
            fs::write(out.join(&file), bytes)?;
            plant(&file, family, s);
            if family == "eml" {
                plant(&file, family, &MAIL_HEADER_ADDRESSES);
            }
        }
    }
    let mut mbox = String::new();
    for (i, s) in texts.iter().enumerate() {
        let _ = writeln!(mbox, "From shop@example.com Mon Jan  {} 10:00:00 2024", i % 28 + 1);
        mbox.push_str(&quoted_printable_mail(&s.text));
        mbox.push('\n');
        plant("mail.mbox", "mbox", s);
        plant("mail.mbox", "mbox", &MBOX_HEADER_ADDRESSES);
    }
    fs::write(out.join("mail.mbox"), mbox)?;

    for (i, s) in csvs.iter().enumerate() {
        let rows = parse_table(s);
        let name = format!("sheet{i:03}");
        fs::write(out.join(format!("{name}.xlsx")), xlsx(&rows)?)?;
        plant(&format!("{name}.xlsx"), "xlsx", s);
        fs::write(out.join(format!("{name}.ods")), ods(&rows)?)?;
        plant(&format!("{name}.ods"), "ods", s);
        if let Some(book) = xls(&rows)? {
            fs::write(out.join(format!("{name}.xls")), book)?;
            plant(&format!("{name}.xls"), "xls", s);
        }
        let attachment = (format!("{name}.csv"), s.text.clone());
        fs::write(
            out.join(format!("{name}.eml")),
            eml("Please find the list attached.\n", Some(&attachment)),
        )?;
        plant(&format!("{name}.eml"), "eml", s);
        plant(&format!("{name}.eml"), "eml", &MAIL_HEADER_ADDRESSES);
    }
    let db = out.join("shop.sqlite");
    sqlite(&db, &csvs)?;
    for s in &csvs {
        plant("shop.sqlite", "sqlite", s);
    }
    Ok(truth)
}

fn zip_bytes<'a>(members: impl Iterator<Item = (&'a str, Vec<u8>)>) -> io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        w.start_file(name, options).map_err(io::Error::other)?;
        w.write_all(&bytes)?;
    }
    Ok(w.finish().map_err(io::Error::other)?.into_inner())
}

fn gz(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes)?;
    e.finish()
}

fn write_tar_gz(path: &Path, sources: &[Source]) -> io::Result<()> {
    let gz = flate2::write::GzEncoder::new(File::create(path)?, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for s in sources {
        let mut header = tar::Header::new_gnu();
        header.set_size(s.text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, &s.rel, s.text.as_bytes())?;
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// Text escaped for XML content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

const CONTENT_TYPES_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>"#;

fn rels(target: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{target}"/></Relationships>"#
    )
}

/// A Word document with one paragraph per line (it opens in Word and LibreOffice).
pub fn docx(lines: &[&str]) -> io::Result<Vec<u8>> {
    let mut body = String::new();
    for line in lines {
        let _ = write!(
            body,
            r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#,
            xml_escape(line)
        );
    }
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    let types = format!(
        r#"{CONTENT_TYPES_HEAD}<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#
    );
    zip_bytes(
        [
            ("[Content_Types].xml", types.into_bytes()),
            ("_rels/.rels", rels("word/document.xml").into_bytes()),
            ("word/document.xml", document.into_bytes()),
        ]
        .into_iter(),
    )
}

/// A PowerPoint file with up to 20 lines per slide.
pub fn pptx(lines: &[&str]) -> io::Result<Vec<u8>> {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut overrides = String::new();
    for (n, chunk) in lines.chunks(20).enumerate() {
        let mut paras = String::new();
        for line in chunk {
            let _ = write!(paras, "<a:p><a:r><a:t>{}</a:t></a:r></a:p>", xml_escape(line));
        }
        let slide = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld><p:spTree><p:sp><p:txBody>{paras}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        );
        members.push((format!("ppt/slides/slide{}.xml", n + 1), slide.into_bytes()));
        let _ = write!(
            overrides,
            r#"<Override PartName="/ppt/slides/slide{}.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.slide+xml"/>"#,
            n + 1
        );
    }
    members.push((
        "ppt/presentation.xml".into(),
        br#"<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>"#.to_vec(),
    ));
    members.push((
        "[Content_Types].xml".into(),
        format!("{CONTENT_TYPES_HEAD}{overrides}</Types>").into_bytes(),
    ));
    members.push(("_rels/.rels".into(), rels("ppt/presentation.xml").into_bytes()));
    zip_bytes(members.iter().map(|(n, b)| (n.as_str(), b.clone())))
}

fn odf(mimetype: &str, body: &str) -> io::Result<Vec<u8>> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2"><office:body>{body}</office:body></office:document-content>"#
    );
    let manifest = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#
    );
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("mimetype", stored).map_err(io::Error::other)?;
    w.write_all(mimetype.as_bytes())?;
    w.start_file("content.xml", deflated).map_err(io::Error::other)?;
    w.write_all(content.as_bytes())?;
    w.start_file("META-INF/manifest.xml", deflated).map_err(io::Error::other)?;
    w.write_all(manifest.as_bytes())?;
    Ok(w.finish().map_err(io::Error::other)?.into_inner())
}

/// An OpenDocument text with one paragraph per line.
pub fn odt(lines: &[&str]) -> io::Result<Vec<u8>> {
    let mut body = String::from("<office:text>");
    for line in lines {
        let _ = write!(body, "<text:p>{}</text:p>", xml_escape(line));
    }
    body.push_str("</office:text>");
    odf("application/vnd.oasis.opendocument.text", &body)
}

/// An OpenDocument spreadsheet with one sheet of string cells.
pub fn ods(rows: &[Vec<String>]) -> io::Result<Vec<u8>> {
    let mut body = String::from(r#"<office:spreadsheet><table:table table:name="Sheet1">"#);
    for row in rows {
        body.push_str("<table:table-row>");
        for cell in row {
            let _ = write!(
                body,
                r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
                xml_escape(cell)
            );
        }
        body.push_str("</table:table-row>");
    }
    body.push_str("</table:table></office:spreadsheet>");
    odf("application/vnd.oasis.opendocument.spreadsheet", &body)
}

/// An Excel workbook with one sheet of inline-string cells.
pub fn xlsx(rows: &[Vec<String>]) -> io::Result<Vec<u8>> {
    let mut data = String::new();
    for (r, row) in rows.iter().enumerate() {
        let _ = write!(data, r#"<row r="{}">"#, r + 1);
        for (c, cell) in row.iter().enumerate() {
            let col = (b'A' + (c % 26) as u8) as char;
            let prefix = if c >= 26 {
                ((b'A' + (c / 26 - 1) as u8) as char).to_string()
            } else {
                String::new()
            };
            let _ = write!(
                data,
                r#"<c r="{prefix}{col}{}" t="inlineStr"><is><t>{}</t></is></c>"#,
                r + 1,
                xml_escape(cell)
            );
        }
        data.push_str("</row>");
    }
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
    );
    let workbook = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let workbook_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let types = format!(
        r#"{CONTENT_TYPES_HEAD}<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
    );
    zip_bytes(
        [
            ("[Content_Types].xml", types.into_bytes()),
            ("_rels/.rels", rels("xl/workbook.xml").into_bytes()),
            ("xl/workbook.xml", workbook.as_bytes().to_vec()),
            ("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes().to_vec()),
            ("xl/worksheets/sheet1.xml", sheet.into_bytes()),
        ]
        .into_iter(),
    )
}

/// One BIFF record: type, length, data.
fn biff_record(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    out.extend_from_slice(&typ.to_le_bytes());
    out.extend_from_slice(&u16::try_from(data.len()).expect("a BIFF record fits").to_le_bytes());
    out.extend_from_slice(data);
}

/// The most data one BIFF8 record holds; more goes into CONTINUE records.
const BIFF_RECORD: usize = 8224;

/// A BIFF8 workbook stream with one sheet, record by record: a BOF, `globals`, the sheet
/// `name` listed `listed` times (each BoundSheet at the sheet's true offset, or at
/// `offset`), an EOF, then the sheet: a BOF, `sheet` and an EOF. Records are written as
/// given, so tests can build damaged or hostile workbooks with it.
pub fn biff_workbook(
    name: &str,
    globals: &[(u16, Vec<u8>)],
    sheet: &[(u16, Vec<u8>)],
    listed: usize,
    offset: Option<u32>,
) -> Vec<u8> {
    let bof = |dt: u16| {
        let mut d = Vec::new();
        for v in [0x0600u16, dt, 0x0DBB, 0x07CC] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&6u32.to_le_bytes());
        d
    };
    let units: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut bound = vec![0u8; 4]; // the sheet's offset, filled in below
    bound.extend_from_slice(&[
        0,
        0,
        u8::try_from(name.encode_utf16().count()).expect("a short name"),
        1,
    ]);
    bound.extend_from_slice(&units);

    let mut stream = Vec::new();
    biff_record(&mut stream, 0x0809, &bof(0x0005));
    let mut bound_at = Vec::new();
    for _ in 0..listed {
        bound_at.push(stream.len() + 4);
        biff_record(&mut stream, 0x0085, &bound);
    }
    for (typ, data) in globals {
        biff_record(&mut stream, *typ, data);
    }
    biff_record(&mut stream, 0x000A, &[]);
    let sheet_at = offset.unwrap_or(u32::try_from(stream.len()).expect("a small workbook"));
    for at in bound_at {
        stream[at..at + 4].copy_from_slice(&sheet_at.to_le_bytes());
    }
    biff_record(&mut stream, 0x0809, &bof(0x0010));
    for (typ, data) in sheet {
        biff_record(&mut stream, *typ, data);
    }
    biff_record(&mut stream, 0x000A, &[]);
    stream
}

/// A legacy Excel 97–2003 workbook (BIFF8 in an OLE2 compound file) with one sheet of
/// string cells, stored as Excel stores them: a shared string table and LABELSST cells.
/// `None` when the rows do not fit a BIFF8 sheet (65,536 rows, 256 columns, cells of at
/// most 4,000 characters).
pub fn xls(rows: &[Vec<String>]) -> io::Result<Option<Vec<u8>>> {
    if rows.len() > 65_536
        || rows.iter().any(|r| r.len() > 256 || r.iter().any(|c| c.chars().count() > 4000))
    {
        return Ok(None);
    }
    // The shared strings, each cell an index into them.
    let mut index: BTreeMap<&str, u32> = BTreeMap::new();
    let mut strings: Vec<&str> = Vec::new();
    let mut cells = 0u32;
    for cell in rows.iter().flatten() {
        cells += 1;
        index.entry(cell.as_str()).or_insert_with(|| {
            strings.push(cell.as_str());
            u32::try_from(strings.len() - 1).expect("fewer strings than cells")
        });
    }
    // SST: a new CONTINUE record starts at a string boundary (no split strings).
    let mut sst: Vec<Vec<u8>> = vec![Vec::new()];
    sst[0].extend_from_slice(&cells.to_le_bytes());
    sst[0].extend_from_slice(&u32::try_from(strings.len()).expect("fits").to_le_bytes());
    for s in &strings {
        let units: Vec<u16> = s.encode_utf16().collect();
        let mut entry = Vec::with_capacity(3 + 2 * units.len());
        entry.extend_from_slice(&u16::try_from(units.len()).expect("short cell").to_le_bytes());
        entry.push(1); // UTF-16LE characters
        entry.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        if sst.last().is_some_and(|r| r.len() + entry.len() > BIFF_RECORD) {
            sst.push(Vec::new());
        }
        sst.last_mut().expect("one record at least").extend_from_slice(&entry);
    }
    let mut globals = vec![(0x0042, 1200u16.to_le_bytes().to_vec())]; // CODEPAGE: UTF-16
    for (i, record) in sst.into_iter().enumerate() {
        globals.push((if i == 0 { 0x00FC } else { 0x003C }, record));
    }

    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut dimensions = Vec::new();
    dimensions.extend_from_slice(&0u32.to_le_bytes());
    dimensions.extend_from_slice(&u32::try_from(rows.len()).expect("fits").to_le_bytes());
    dimensions.extend_from_slice(&0u16.to_le_bytes());
    dimensions.extend_from_slice(&u16::try_from(columns).expect("fits").to_le_bytes());
    dimensions.extend_from_slice(&0u16.to_le_bytes());
    let mut sheet = vec![(0x0200, dimensions)];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let mut d = Vec::with_capacity(10);
            d.extend_from_slice(&u16::try_from(r).expect("fits").to_le_bytes());
            d.extend_from_slice(&u16::try_from(c).expect("fits").to_le_bytes());
            d.extend_from_slice(&0u16.to_le_bytes());
            d.extend_from_slice(&index[cell.as_str()].to_le_bytes());
            sheet.push((0x00FD, d));
        }
    }
    ole_file("/Workbook", &biff_workbook("Customers", &globals, &sheet, 1, None)).map(Some)
}

/// An OLE2 compound file holding one stream, in version 3 (512-byte sectors) as Office
/// writes them.
pub fn ole_file(stream_path: &str, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut file =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, io::Cursor::new(Vec::new()))?;
    file.create_stream(stream_path)?.write_all(bytes)?;
    file.flush()?;
    Ok(file.into_inner().into_inner())
}

/// A PDF with the lines as text (Helvetica, WinAnsi), 60 lines per page.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let pages: Vec<&[&str]> =
        if lines.is_empty() { vec![&[][..]] } else { lines.chunks(60).collect() };
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(
        format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len())
            .into_bytes(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    for (i, page) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let mut content = b"BT /F1 9 Tf 11 TL 30 760 Td\n".to_vec();
        for line in *page {
            content.push(b'(');
            for c in line.chars() {
                let b = u8::try_from(u32::from(c)).unwrap_or(b'?');
                match b {
                    b'(' | b')' | b'\\' => content.extend_from_slice(&[b'\\', b]),
                    0x20..=0x7e => content.push(b),
                    other => content.extend_from_slice(format!("\\{other:03o}").as_bytes()),
                }
            }
            content.extend_from_slice(b") Tj T*\n");
        }
        content.extend_from_slice(b"ET");
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(&content);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(obj);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn html(lines: &[&str]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html><head><title>Notes</title><style>p{margin:0}</style></head><body>\n",
    );
    for line in lines {
        let _ = writeln!(out, "<p>{}</p>", xml_escape(line));
    }
    out.push_str("</body></html>\n");
    out
}

fn rtf(lines: &[&str]) -> String {
    let mut out = String::from(r"{\rtf1\ansi\deff0{\fonttbl{\f0 Helvetica;}}\f0\fs20 ");
    for line in lines {
        for c in line.chars() {
            match c {
                '\\' | '{' | '}' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_ascii() => out.push(c),
                c => {
                    let _ = write!(out, "\\u{}?", u32::from(c) as i16);
                }
            }
        }
        out.push_str("\\par\n");
    }
    out.push('}');
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (n, chunk) in bytes.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A multipart mail: the body base64-encoded, and an optional CSV attachment.
fn eml(body: &str, attachment: Option<&(String, String)>) -> String {
    let mut out = String::from(
        "From: Brightleaf Goods <shop@brightleaf.example>\r\nTo: Accounts <accounts@brightleaf.example>\r\nSubject: Customer records\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    out.push_str(&base64(body.as_bytes()));
    out.push_str("\r\n");
    if let Some((name, csv)) = attachment {
        let _ = write!(
            out,
            "--b1\r\nContent-Type: text/csv; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64(csv.as_bytes())
        );
    }
    out.push_str("--b1--\r\n");
    out
}

/// A single-part mail with a quoted-printable body (for a mailbox).
fn quoted_printable_mail(body: &str) -> String {
    let mut out = String::from(
        "From: Brightleaf Goods <shop@brightleaf.example>\nSubject: notes\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n",
    );
    for line in body.lines() {
        let mut width = 0;
        for b in line.bytes() {
            let piece = if b == b'=' || !(0x20..0x7f).contains(&b) {
                format!("={b:02X}")
            } else {
                char::from(b).to_string()
            };
            if width + piece.len() > 72 {
                out.push_str("=\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push('\n');
    }
    out
}

/// A CSV or TSV file's rows (RFC 4180 quoting).
fn parse_table(s: &Source) -> Vec<Vec<String>> {
    let delimiter = if extension(&s.rel) == "tsv" { b'\t' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(s.text.as_bytes());
    reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_string).collect())
        .collect()
}

fn sqlite(path: &Path, csvs: &[&Source]) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).map_err(io::Error::other)?;
    for (i, s) in csvs.iter().enumerate() {
        let rows = parse_table(s);
        let Some((header, body)) = rows.split_first() else { continue };
        let columns: Vec<String> =
            (0..header.len()).map(|c| format!("\"{}\"", header[c].replace('"', ""))).collect();
        conn.execute_batch(&format!(
            "CREATE TABLE t{i} (rowid_ INTEGER PRIMARY KEY, {})",
            columns.join(", ")
        ))
        .map_err(io::Error::other)?;
        let marks = vec!["?"; header.len()].join(", ");
        let mut stmt = conn
            .prepare(&format!("INSERT INTO t{i} ({}) VALUES ({marks})", columns.join(", ")))
            .map_err(io::Error::other)?;
        for row in body {
            let mut values: Vec<&str> = row.iter().map(String::as_str).collect();
            values.resize(header.len(), "");
            stmt.execute(rusqlite::params_from_iter(values)).map_err(io::Error::other)?;
        }
    }
    Ok(())
}
