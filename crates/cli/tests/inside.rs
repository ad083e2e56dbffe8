//! `custody scan` inside archives, documents and mail, end to end: locations, skips in
//! every output, and bounded memory on a mailbox with a 100 MB attachment. (A test binary
//! of its own: peak memory is measured over this process's children.)

use std::fs;
use std::io::Write;
use std::process::{Command, Output};

use serde_json::Value;

fn custody() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custody"))
}

fn scan_json(path: &std::path::Path) -> (Output, Value) {
    let out = custody().args(["scan", "--format", "json"]).arg(path).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

fn skips(json: &Value) -> Vec<(String, String)> {
    json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap().to_string(), s["code"].as_str().unwrap().to_string()))
        .collect()
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        w.start_file(*name, options).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn findings_inside_containers_are_located_and_skips_reported() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = custody_testkit::formats::xlsx(&[
        vec!["name".into(), "ssn".into()],
        vec!["Ann Lee".into(), "536-22-1234".into()],
    ])
    .unwrap();
    let mut locked = zip_of(&[("secret.csv", b"ssn\n536-22-1234\n")]);
    locked[6] |= 1;
    let cd = locked.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    locked[cd + 8] |= 1;
    let outer = zip_of(&[("2023/customers.xlsx", &sheet), ("old/locked.zip", &locked)]);
    fs::write(dir.path().join("backup.zip"), outer).unwrap();

    let (out, json) = scan_json(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let findings = json["findings"].as_array().unwrap();
    let ssn = findings.iter().find(|f| f["kind"] == "us_ssn").expect("the SSN in the sheet");
    assert_eq!(
        ssn["path"],
        "backup.zip!2023/customers.xlsx!Sheet1!B2".replace("Sheet1", "Customers")
    );
    assert_eq!(ssn["value"], "***-**-1234", "masked by default");
    let skipped = skips(&json);
    assert!(
        skipped.contains(&("backup.zip!old/locked.zip!secret.csv".into(), "encrypted".into())),
        "{skipped:?}"
    );
    // A member, not a file: the archive itself was read.
    assert_eq!(json["summary"]["members_skipped"]["encrypted"], 1);
    assert!(json["summary"]["files_skipped"].get("encrypted").is_none());

    // The table output names the skip in plain words.
    let table = custody().arg("scan").arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("backup.zip!old/locked.zip!secret.csv"), "{text}");
    assert!(text.contains("password-protected"), "{text}");
    assert!(!text.contains("536-22-1234"), "values stay masked: {text}");
}

#[test]
fn a_mailbox_with_a_100_mb_attachment_scans_in_bounded_memory() {
    use nix::sys::resource::{UsageWho, getrusage};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Inbox.mbox");
    {
        let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        let header =
            "From shop@example.com Mon Jan  1 10:00:00 2024\nFrom: a@example.com\nSubject: x\n";
        write!(f, "{header}\nFirst message: call me at (212) 555-0143 or ann.lee@example.org\n\n")
            .unwrap();
        write!(
            f,
            "{header}MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream; name=big.bin\nContent-Transfer-Encoding: base64\n\n"
        )
        .unwrap();
        let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n";
        for _ in 0..(100 << 20) / 57 {
            f.write_all(line.as_bytes()).unwrap();
        }
        write!(f, "--b--\n\n{header}\nLast message: card 4539 5260 1815 9083\n").unwrap();
    }
    let (out, json) = scan_json(dir.path());
    let peak_mb = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss() as f64 / 1024.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kinds: Vec<(&str, &str)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("Inbox.mbox!message1", "email")), "{kinds:?}");
    assert!(kinds.contains(&("Inbox.mbox!message3", "credit_card")), "{kinds:?}");
    assert_eq!(skips(&json), [("Inbox.mbox!message2".to_string(), "too_large".to_string())]);
    eprintln!("peak RSS of custody over a mailbox with a 100 MB attachment: {peak_mb:.1} MB");
    assert!(peak_mb <= 300.0, "peak RSS {peak_mb:.1} MB");
}

#[test]
fn the_html_report_is_self_contained_masked_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("Dropbox");
    fs::create_dir(&shared).unwrap();
    // A file name that would be markup if it were not escaped.
    fs::write(
        shared.join("clients<b>.csv"),
        "name,ssn,card\nAnn Lee,536-22-1234,4539 5260 1815 9083\n",
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), "ring ann.lee@example.org tomorrow\n").unwrap();
    let report = dir.path().join("report.html");
    let out = custody()
        .args(["scan", "--format", "html", "-o"])
        .arg(&report)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in ["<script", "http://", "https://", "<link", "src="] {
        assert!(!html.contains(external), "the page must stand alone: found {external}");
    }
    assert!(html.contains("Dropbox/clients&lt;b&gt;.csv"), "names are escaped");
    assert!(!html.contains("clients<b>"));
    for value in ["536-22-1234", "4539 5260 1815 9083", "ann.lee@example.org"] {
        assert!(!html.contains(value), "{value} must be masked");
    }
    assert!(html.contains("***-**-1234"));
    assert!(html.contains("Move it out of Dropbox today"), "one next step per file");
    assert!(html.contains("class=\"lvl high\""), "the riskiest file is high risk");
}

#[test]
fn a_file_stopped_by_a_limit_still_ranks_by_what_it_showed() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let csv = format!("name,ssn\nA{i},536-22-123{i}\n");
            zip_of(&[
                ("a.csv", csv.as_bytes()),
                ("b.csv", csv.as_bytes()),
                ("c.csv", csv.as_bytes()),
            ])
        })
        .collect();
    let names: Vec<String> = (0..4).map(|i| format!("part{i}.zip")).collect();
    let members: Vec<(&str, &[u8])> =
        names.iter().zip(&inner).map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    fs::write(dir.path().join("backup.zip"), zip_of(&members)).unwrap();
    let out = custody()
        .args(["scan", "--format", "json", "--max-members", "6"])
        .arg(dir.path())
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(skips(&json).contains(&("backup.zip".into(), "too_many_members".into())), "{json}");
    let riskiest = json["summary"]["riskiest"].as_array().unwrap();
    assert_eq!(riskiest[0]["path"], "backup.zip", "{riskiest:?}");
    assert!(json["summary"]["findings_by_kind"]["us_ssn"].as_u64().unwrap() >= 1);
    assert_eq!(json["summary"]["files_scanned"], 0, "not read to the end");
}

#[test]
fn a_binary_member_is_reported_not_scanned_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let photo: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
    fs::write(
        dir.path().join("photos.zip"),
        zip_of(&[("photo.jpg", &photo), ("note.txt", b"ring 212-555-0143")]),
    )
    .unwrap();
    let (out, json) = scan_json(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(skips(&json), [("photos.zip!photo.jpg".to_string(), "binary".to_string())]);
}

/// The processes whose environment holds `marker` and whose command line holds `needle`.
fn processes_with(marker: &str, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let (Ok(environ), Ok(cmdline)) =
            (fs::read(entry.path().join("environ")), fs::read(entry.path().join("cmdline")))
        else {
            continue;
        };
        let has = |hay: &[u8], s: &str| hay.windows(s.len()).any(|w| w == s.as_bytes());
        if has(&environ, marker) && has(&cmdline, needle) {
            found.push(pid);
        }
    }
    found
}

/// PDFs are parsed in a child process of custody: a PDF the parser spins on (found by
/// fuzzing) is killed at the time limit, the scan reads the other files, and no process
/// is left behind. An ordinary PDF is read through the same child.
#[test]
fn a_pdf_the_parser_spins_on_is_killed_at_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../extract/tests/fixtures");
    fs::copy(fixtures.join("fuzz-slow.pdf"), dir.path().join("slow.pdf")).unwrap();
    fs::write(
        dir.path().join("invoice.pdf"),
        custody_testkit::formats::pdf(&["Invoice 1043", "Card 4539 1488 0343 6467"]),
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), "ssn 536-22-1234\n").unwrap();
    let marker = format!("CUSTODY_TEST_MARK=pdf-child-{}", std::process::id());
    let (name, value) = marker.split_once('=').unwrap();
    let out_path = dir.path().join("out.json");
    let mut scan = custody()
        .args(["scan", "--format", "json", "--max-seconds", "1", "--output"])
        .arg(&out_path)
        .arg(dir.path())
        .env(name, value)
        .spawn()
        .unwrap();
    let mut children_seen = std::collections::BTreeSet::new();
    let status = loop {
        if let Some(status) = scan.try_wait().unwrap() {
            break status;
        }
        children_seen.extend(processes_with(&marker, "internal-parse"));
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(!children_seen.is_empty(), "no PDF child process was ever seen");
    assert_eq!(processes_with(&marker, "internal-parse"), Vec::<u32>::new(), "left behind");
    let json: Value = serde_json::from_slice(&fs::read(&out_path).unwrap()).unwrap();
    let skipped = skips(&json);
    assert!(skipped.iter().any(|(p, c)| p.ends_with("slow.pdf") && c == "timeout"), "{skipped:?}");
    let findings = json["findings"].as_array().unwrap();
    let at = |kind: &str| {
        findings
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        at("credit_card").iter().any(|p| p.ends_with("invoice.pdf!page1")),
        "{:?}",
        at("credit_card")
    );
    assert!(at("us_ssn").iter().any(|p| p.ends_with("notes.txt")));
}

/// A legacy Excel file of 280 KB whose 20,000 cells each repeat one 65,535-character
/// shared string: calamine would hold 1.3 GB. It is parsed in the memory-limited child
/// process, reported as too large, and the scan goes on within 300 MB.
#[test]
fn a_spreadsheet_whose_strings_would_take_gigabytes_is_refused_in_bounded_memory() {
    use nix::sys::resource::{UsageWho, getrusage};
    const CELLS: u32 = 20_000;
    // The shared string table: one string of 65,535 one-byte characters, continued.
    let mut sst = Vec::new();
    sst.extend_from_slice(&CELLS.to_le_bytes());
    sst.extend_from_slice(&1u32.to_le_bytes());
    sst.extend_from_slice(&u16::MAX.to_le_bytes());
    sst.push(0);
    let mut left = usize::from(u16::MAX);
    let first = 8224 - sst.len();
    sst.extend(std::iter::repeat_n(b'A', first));
    left -= first;
    let mut globals = vec![(0x00FC, sst)];
    while left > 0 {
        let n = left.min(8223);
        let mut cont = vec![0u8];
        cont.extend(std::iter::repeat_n(b'A', n));
        globals.push((0x003C, cont));
        left -= n;
    }
    let cells = vec![(0x00FD, vec![0u8; 10]); CELLS as usize];
    let s = custody_testkit::formats::biff_workbook("S", &globals, &cells, 1, None);
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bomb.xls"),
        custody_testkit::formats::ole_file("/Workbook", &s).unwrap(),
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), "ssn 536-22-1234\n").unwrap();
    let (out, json) = scan_json(dir.path());
    let peak_mb = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss() as f64 / 1024.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(skips(&json), [("bomb.xls".to_string(), "too_large".to_string())]);
    assert!(json["findings"].as_array().unwrap().iter().any(|f| f["path"] == "notes.txt"));
    eprintln!("peak RSS over a 280 KB spreadsheet that unpacks to 1.3 GB: {peak_mb:.1} MB");
    assert!(peak_mb <= 300.0, "peak RSS {peak_mb:.1} MB");
}

/// An ordinary legacy Excel file goes through the parser process and back: sheet name,
/// cell labels and the header row as context survive the pipe.
#[test]
fn a_legacy_excel_file_is_read_through_the_parser_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = vec![vec!["name".to_string(), "note".to_string(), "ssn".to_string()]];
    for i in 0..2_000 {
        let ssn = if i == 6 { "536-22-1234".to_string() } else { format!("order {i}") };
        rows.push(vec![format!("Customer {i}"), "paid".to_string(), ssn]);
    }
    let book = custody_testkit::formats::xls(&rows).unwrap().unwrap();
    assert!(book.len() > 4096, "a stream outside the compound file's mini stream");
    fs::write(dir.path().join("customers.xls"), book).unwrap();
    let (out, json) = scan_json(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(skips(&json), Vec::<(String, String)>::new());
    let paths: Vec<(&str, &str)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert!(paths.contains(&("customers.xls!Customers!C8", "us_ssn")), "{paths:?}");
}
