//! The scan cache end to end: an unchanged tree is not read again and gives the same
//! results; changed files are; only masked values are kept; --reveal, --no-cache and a
//! decommission check bypass it; a damaged cache is replaced; an interrupted scan resumes.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const PASS: &str = "correct horse battery staple";

fn custody(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("CUSTODY_PASSPHRASE", PASS)
        .output()
        .expect("run custody")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn shop() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop").display().to_string()
}

/// Findings (sorted) and the summary of a JSON scan.
fn scan(data: &Path, extra: &[&str], root: &str) -> (Vec<String>, serde_json::Value) {
    let mut args = vec!["scan", "--format", "json"];
    args.extend_from_slice(extra);
    args.push(root);
    let out = custody(data, &args);
    // 1: a decommission check that found data.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut findings: Vec<String> =
        v["findings"].as_array().unwrap().iter().map(ToString::to_string).collect();
    findings.sort();
    (findings, v["summary"].clone())
}

fn init(data: &Path) {
    let out = custody(data, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn unchanged_files_are_not_read_again_and_give_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Without a data directory there is no cache (and nothing is created).
    let (_, summary) = scan(&data, &[], &shop());
    assert_eq!(summary["files_cached"], 0);
    assert!(!data.exists());
    init(&data);
    let tree = dir.path().join("shop");
    copy_dir(Path::new(&shop()), &tree);
    // A `!` in a file's own name is not a member separator.
    std::fs::write(tree.join("urgent!.txt"), "call back bob@example.net\n").unwrap();
    let root = tree.to_str().unwrap();

    let (fresh, first) = scan(&data, &["--no-cache"], root);
    assert!(!data.join("scan-cache.db").exists(), "--no-cache writes no cache");
    let (_, filled) = scan(&data, &[], root);
    assert_eq!(filled["files_cached"], 0);
    let (again, second) = scan(&data, &[], root);
    assert_eq!(second["files_cached"], first["files_scanned"], "every file reused");
    assert_eq!(again, fresh, "the same findings, field for field");
    assert_eq!(second["findings_by_kind"], first["findings_by_kind"]);
    assert_eq!(second["riskiest"], first["riskiest"]);

    // The cache holds masked values only.
    let db = std::fs::read(data.join("scan-cache.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    for value in ["4539 5260 1815 9083", "773-12-3456", "jane.sample@example.com"] {
        assert!(!db.contains(value), "{value} in the cache");
    }

    // A changed file is read again; a touched one with the same bytes is not.
    let notes = tree.join("staff_notes.txt");
    let mut content = std::fs::read_to_string(&notes).unwrap();
    content.push_str("new customer: zoe.new@example.net\n");
    std::fs::write(&notes, &content).unwrap();
    let orders = tree.join("customers_export_2023.csv");
    let bytes = std::fs::read(&orders).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&orders, &bytes).unwrap(); // same content, new modification time
    let (changed, third) = scan(&data, &[], root);
    assert_eq!(changed.len(), fresh.len() + 1, "the new value is found");
    assert_eq!(
        third["files_cached"].as_u64().unwrap(),
        first["files_scanned"].as_u64().unwrap() - 1,
        "only the changed file was read"
    );

    // --reveal reads everything (the cache has no full values to show); so does a
    // decommission check.
    let (revealed, summary) = scan(&data, &["--reveal"], root);
    assert_eq!(summary["files_cached"], 0);
    assert!(revealed.iter().any(|f| f.contains("zoe.new@example.net")));
    let cert = dir.path().join("cert.html");
    let (_, summary) =
        scan(&data, &["--decommission", "--certificate", cert.to_str().unwrap()], root);
    assert_eq!(summary["files_cached"], 0);

    // Another configuration does not reuse results made for this one.
    let (_, summary) = scan(&data, &["--kinds", "email"], root);
    assert_eq!(summary["files_cached"], 0);
}

#[test]
fn a_damaged_cache_is_replaced_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let (fresh, _) = scan(&data, &["--no-cache"], &shop());
    std::fs::write(data.join("scan-cache.db"), b"this is not a database").unwrap();
    let out = custody(&data, &["scan", "--format", "json", &shop()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting a new one"), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), fresh.len());
    let (again, summary) = scan(&data, &[], &shop());
    assert_eq!(again, fresh);
    assert!(summary["files_cached"].as_u64().unwrap() > 0);
}

#[test]
fn an_interrupted_scan_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    // Many small files, so results are committed several times before the kill.
    for i in 0..3000 {
        let body = format!("order {i}\ncustomer c{i}@example.org paid with 4539 1488 0343 6467\n")
            .repeat(200);
        std::fs::write(tree.join(format!("order-{i:04}.txt")), body).unwrap();
    }
    let root = tree.to_str().unwrap();
    let (fresh, total) = scan(&data, &["--no-cache", "--threads", "1"], root);
    let files = total["files_scanned"].as_u64().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg("--data-dir")
        .arg(&data)
        .args(["scan", "--threads", "1", "--format", "jsonl", root])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the cache holds some results but the scan is not done.
    let started = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the scan finished before it could be interrupted; make the tree bigger"
        );
        if cached_rows(&data) > 0 || started.elapsed() > Duration::from_mins(1) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (resumed, summary) = scan(&data, &[], root);
    let reused = summary["files_cached"].as_u64().unwrap();
    assert!(reused > 0 && reused < files, "resumed after {reused} of {files} files");
    assert_eq!(resumed, fresh, "the same results as one uninterrupted scan");
}

/// Files whose results the cache holds (committed ones).
fn cached_rows(data: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        data.join("scan-cache.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
