//! The `custody` binary end to end: the README's quick start, output contracts, masking,
//! exit codes, and hostile directories (binary files, symlink loops, unreadable files,
//! invalid UTF-8, UTF-16, a 2 GB single-line file).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn custody() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custody"))
}

fn shop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop")
}

fn run(args: &[&str]) -> Output {
    custody().args(args).output().expect("run custody")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Values planted in examples/shop that must never appear unmasked by default.
const SHOP_SECRETS: &[&str] = &[
    "4539 5260 1815 9083",
    "4539526018159083",
    "5425301661318608",
    "773-12-3456",
    "498-23-7612",
    "jane.sample@example.com",
    "tom.example@example.org",
    "DE89 3704 0044 0532 0130 00",
    "sk_live_51Hc8RmKq2vT9xLpW3nB7dFzY",
    "Wint3r-Sunrise-42",
    "AKIAQ3EGRWT5ZJX7KP2M",
    "Jane Sample",
];

#[test]
fn quick_start_finds_the_shop_data_and_masks_it() {
    let out = run(&["scan", shop().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for kind in ["credit_card", "us_ssn", "email", "phone", "iban", "secret", "person_name"] {
        assert!(text.contains(kind), "no {kind} in:\n{text}");
    }
    assert!(text.contains("**** **** **** 9083"));
    assert!(text.contains("***-**-3456"));
    assert!(text.contains("j***@example.com"));
    assert!(text.contains("Riskiest files:"));
    for secret in SHOP_SECRETS {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        assert!(!stderr(&out).contains(secret));
    }
}

#[test]
fn every_format_masks_by_default_and_reveal_shows_values() {
    for format in ["table", "jsonl", "json", "csv", "sarif"] {
        let out = run(&["scan", "--format", format, shop().to_str().unwrap()]);
        assert!(out.status.success());
        let text = stdout(&out);
        for secret in SHOP_SECRETS {
            assert!(!text.contains(secret), "{format}: {secret} leaked");
        }
    }
    let out = run(&["scan", "--reveal", "--format", "jsonl", shop().to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("4539 5260 1815 9083"));
    assert!(text.contains("773-12-3456"));
    assert!(text.contains("jane.sample@example.com"));
    assert!(stderr(&out).contains("warning: --reveal"), "{}", stderr(&out));
}

#[test]
fn jsonl_lines_follow_the_contract() {
    let out = run(&["scan", "--format", "jsonl", shop().to_str().unwrap()]);
    let text = stdout(&out);
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert!(lines.len() > 30);
    for v in &lines {
        for key in
            ["path", "kind", "line", "column", "offset", "length", "value", "confidence", "reasons"]
        {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        let path = v["path"].as_str().unwrap();
        assert!(
            !path.starts_with('/') && !path.contains("examples/shop"),
            "path not relative: {path}"
        );
        let c = v["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }
    // Offsets and lengths point at the value in the file.
    let revealed = run(&["scan", "--reveal", "--format", "jsonl", shop().to_str().unwrap()]);
    for line in stdout(&revealed).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let bytes = fs::read(shop().join(v["path"].as_str().unwrap())).unwrap();
        let (off, len) =
            (v["offset"].as_u64().unwrap() as usize, v["length"].as_u64().unwrap() as usize);
        assert_eq!(&bytes[off..off + len], v["value"].as_str().unwrap().as_bytes(), "{v}");
        // Line and column agree with the offset.
        let before = &bytes[..off];
        let line_no = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = off - before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
        assert_eq!(
            (v["line"].as_u64().unwrap() as usize, v["column"].as_u64().unwrap() as usize),
            (line_no, col),
            "{v}"
        );
    }
}

#[test]
fn json_csv_and_sarif_are_well_formed() {
    let jsonl = stdout(&run(&["scan", "--format", "jsonl", shop().to_str().unwrap()]));
    let count = jsonl.lines().count();

    let json: Value = serde_json::from_str(&stdout(&run(&[
        "scan",
        "--format",
        "json",
        shop().to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), count);
    assert_eq!(json["summary"]["findings"].as_u64().unwrap() as usize, count);
    assert!(json["summary"]["files_scanned"].as_u64().unwrap() >= 6);

    let sarif: Value = serde_json::from_str(&stdout(&run(&[
        "scan",
        "--format",
        "sarif",
        shop().to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), count);
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["name"], "custody");

    let csv = stdout(&run(&["scan", "--format", "csv", shop().to_str().unwrap()]));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "path,kind,subkind,line,column,offset,length,value,confidence,reasons,test_card,file,member"
    );
    assert_eq!(lines.count(), count);
}

#[test]
fn output_file_is_private_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("findings.jsonl");
    let out = run(&[
        "scan",
        "--format",
        "jsonl",
        "--output",
        file.to_str().unwrap(),
        shop().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("findings to"), "{}", stderr(&out));
    let written = fs::read_to_string(&file).unwrap();
    assert!(written.lines().count() > 30);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn exit_codes() {
    let shop = shop();
    assert_eq!(run(&["scan", shop.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(run(&["scan", "--fail-on-findings", shop.to_str().unwrap()]).status.code(), Some(1));
    let clean = tempfile::tempdir().unwrap();
    fs::write(clean.path().join("readme.txt"), "nothing to see here, 42 apples").unwrap();
    let out = run(&["scan", "--fail-on-findings", clean.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("No customer data found."));

    let missing = run(&["scan", "/no/such/folder"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = stderr(&missing);
    assert!(
        err.contains("error: cannot scan '/no/such/folder'") && err.contains("what to do:"),
        "{err}"
    );

    for bad in [
        &["scan", "--kinds", "cards"][..],
        &["scan", "--min-confidence", "2"],
        &["scan", "--format", "xml"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!stderr(&out).is_empty());
    }
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..20_000 {
        writeln!(text, "customer{i}@example.com").unwrap();
    }
    fs::write(dir.path().join("many.txt"), text).unwrap();
    let mut child = custody()
        .args(["scan", "--format", "jsonl", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("email"));
    drop(reader);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// Runs custody as an unprivileged user when we are root, so that file permissions apply.
fn custody_unprivileged() -> Command {
    if nix_is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_custody")]);
        c
    } else {
        custody()
    }
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

#[test]
fn hostile_directory_scans_without_panic_and_reports_every_skip() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    let sub = root.join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    // A symlink loop, a binary file, an unreadable file, a FIFO, invalid UTF-8, UTF-16.
    symlink("..", sub.join("loop")).unwrap();
    fs::write(root.join("photo.jpg"), b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01 4539 5260 1815 9083")
        .unwrap();
    fs::write(root.join("locked.csv"), "ssn\n773-12-3456\n").unwrap();
    fs::set_permissions(root.join("locked.csv"), fs::Permissions::from_mode(0o000)).unwrap();
    assert!(Command::new("mkfifo").arg(root.join("pipe")).status().unwrap().success());
    fs::write(
        root.join("latin1.txt"),
        b"Kunde M\xfcller, Karte 4539 5260 1815 9083, Stra\xdfe \xff\xfe\x80\n",
    )
    .unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "Name: Jos\u{e9}\nSSN 773-12-3456\n".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    fs::write(root.join("export-utf16.txt"), &utf16).unwrap();
    for f in ["photo.jpg", "latin1.txt", "export-utf16.txt"] {
        fs::set_permissions(root.join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }

    for follow in [false, true] {
        let mut cmd = custody_unprivileged();
        cmd.args(["scan", "--reveal", "--format", "json"]);
        if follow {
            cmd.arg("--follow-links");
        }
        let out = cmd.arg(root).output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(out.status.code(), Some(0), "{err}");
        let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
        let skipped: Vec<(String, String)> = json["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (s["path"].as_str().unwrap().to_string(), s["code"].as_str().unwrap().to_string())
            })
            .collect();
        let has = |path: &str, code: &str| skipped.iter().any(|(p, c)| p == path && c == code);
        assert!(has("photo.jpg", "binary"), "{skipped:?}");
        assert!(has("locked.csv", "unreadable"), "{skipped:?}");
        assert!(has("pipe", "not_a_file"), "{skipped:?}");
        if follow {
            assert!(has("sub/loop", "symlink_loop"), "{skipped:?}");
        } else {
            assert!(has("sub/loop", "symlink"), "{skipped:?}");
        }
        let findings = json["findings"].as_array().unwrap();
        let find = |path: &str, kind: &str| {
            findings.iter().find(|f| f["path"] == path && f["kind"] == kind).cloned()
        };
        let card = find("latin1.txt", "credit_card").expect("card in Latin-1 text");
        assert_eq!(card["value"], "4539 5260 1815 9083");
        assert_eq!(card["offset"], 20);
        let ssn = find("export-utf16.txt", "us_ssn").expect("SSN in UTF-16 text");
        assert_eq!(ssn["value"], "773-12-3456");
        // Offsets are in the file's bytes: BOM + 2 bytes per code unit.
        let units_before = "Name: Jos\u{e9}\nSSN ".encode_utf16().count() as u64;
        assert_eq!(ssn["offset"].as_u64().unwrap(), 2 + 2 * units_before);
        assert_eq!(ssn["length"], 22);
        assert_eq!((ssn["line"].as_u64(), ssn["column"].as_u64()), (Some(2), Some(5)));
        assert!(json["summary"]["files_skipped"]["binary"].as_u64() == Some(1));
    }
}

#[test]
fn ignore_files_and_excludes_are_honoured_and_hidden_files_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join(".backup")).unwrap();
    fs::create_dir_all(root.join("vendor")).unwrap();
    fs::write(root.join(".backup/old.csv"), "email\nhidden@example.com\n").unwrap();
    fs::write(root.join("vendor/lib.txt"), "vendor@example.com\n").unwrap();
    fs::write(root.join("debug.log"), "logged@example.com\n").unwrap();
    fs::write(root.join("keep.txt"), "kept@example.com\n").unwrap();
    fs::write(root.join(".custodyignore"), "vendor/\n").unwrap();
    let out = run(&[
        "scan",
        "--reveal",
        "--format",
        "jsonl",
        "--exclude",
        "*.log",
        root.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(text.contains("hidden@example.com"), "{text}");
    assert!(text.contains("kept@example.com"));
    assert!(!text.contains("vendor@example.com"), "{text}");
    assert!(!text.contains("logged@example.com"), "{text}");
    let bad = run(&["scan", "--exclude", "[unclosed", root.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("invalid exclude pattern"));
}

#[test]
fn a_2gb_single_line_file_scans_in_bounded_memory() {
    use nix::sys::resource::{UsageWho, getrusage};
    const SIZE: usize = 2 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-line.txt");
    {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(&path).unwrap());
        let block: Vec<u8> = b"lorem ipsum dolor sit amet, order 12 of 40 at 3.50 each; "
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        let mut written = 0;
        while written + block.len() < SIZE {
            f.write_all(&block).unwrap();
            written += block.len();
        }
        // The one value sits at the very end of the only line.
        f.write_all(b" card 4539 5260 1815 9083").unwrap();
        f.flush().unwrap();
    }
    let out =
        custody().args(["scan", "--format", "jsonl", path.to_str().unwrap()]).output().unwrap();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak_mb = usage.max_rss() as f64 / 1024.0;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["line"], 1);
    assert!(lines[0]["offset"].as_u64().unwrap() > SIZE as u64 - (2 << 20));
    eprintln!("peak RSS of custody over a 2 GB single-line file: {peak_mb:.1} MB");
    assert!(peak_mb <= 200.0, "peak RSS {peak_mb:.1} MB");
}
