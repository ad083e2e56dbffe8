//! `custody ledger` end to end: init, scans recorded, checkpoints witnessed, tampering
//! detected, evidence bundles verified offline.

use std::path::Path;
use std::process::{Command, Output};

fn custody(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run custody")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn shop() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop").display().to_string()
}

#[test]
fn scans_are_recorded_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Without a ledger, scans still run and nothing is created.
    assert!(custody(&data, &["scan", &shop()]).status.success());
    assert!(!data.exists());
    let init = custody(&data, &["ledger", "init"]);
    assert!(init.status.success(), "{}", text(&init));
    assert!(text(&init).contains("Public key"));
    let again = custody(&data, &["ledger", "init"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    for _ in 0..3 {
        assert!(custody(&data, &["scan", "--format", "jsonl", &shop()]).status.success());
    }
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("OK: 3 events"), "{}", text(&verify));

    // The recorded scans hold counts, never values.
    let db = std::fs::read(data.join("ledger.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(db.contains("scan.run") || std::fs::read(data.join("ledger.db-wal")).is_ok());
    for value in ["4539 5260 1815 9083", "773-12-3456", "jane.sample@example.com"] {
        assert!(!db.contains(value), "{value} in the ledger");
    }

    let proof = custody(&data, &["ledger", "prove", "--index", "1"]);
    let proof: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert_eq!(proof["size"], 3);
    let consistency = custody(&data, &["ledger", "prove", "--from", "1", "--to", "3"]);
    assert!(consistency.status.success(), "{}", text(&consistency));
    let bad = custody(&data, &["ledger", "prove", "--index", "9"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_witnessed_checkpoint_and_a_bundle_survive_only_honest_changes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(custody(&data, &["ledger", "init"]).status.success());
    assert!(custody(&data, &["scan", &shop()]).status.success());
    let witness = dir.path().join("checkpoint.txt");
    assert!(
        custody(&data, &["ledger", "checkpoint", "--out", witness.to_str().unwrap()])
            .status
            .success()
    );
    assert!(custody(&data, &["scan", &shop()]).status.success());
    let ok = custody(&data, &["ledger", "verify", "--against", witness.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("append-only extension"));

    let key = String::from_utf8(custody(&data, &["ledger", "public-key"]).stdout).unwrap();
    let bundle = dir.path().join("bundle.json");
    let export = custody(
        &data,
        &[
            "ledger",
            "export",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{}", text(&export));
    // The bundle verifies without the data directory.
    std::fs::rename(&data, dir.path().join("elsewhere")).unwrap();
    let checked =
        custody(&data, &["ledger", "verify-bundle", bundle.to_str().unwrap(), "--key", key.trim()]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&checked).contains("OK: 2 events"), "{}", text(&checked));

    let tampered = std::fs::read_to_string(&bundle).unwrap().replacen("scan.run", "scan.ran", 1);
    std::fs::write(&bundle, tampered).unwrap();
    let refused =
        custody(&data, &["ledger", "verify-bundle", bundle.to_str().unwrap(), "--key", key.trim()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("PROBLEM"));
}

#[test]
fn a_tampered_ledger_fails_verification_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(custody(&data, &["ledger", "init"]).status.success());
    for _ in 0..4 {
        assert!(custody(&data, &["scan", &shop()]).status.success());
    }
    tamper_with_event_2(&data);
    let out = custody(&data, &["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("PROBLEM at position 2"), "{}", text(&out));
}

/// Changes event 2 in the database file, as someone with access to the disk could.
fn tamper_with_event_2(data: &Path) {
    let conn = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
    let leaf: Vec<u8> =
        conn.query_row("SELECT leaf FROM events WHERE idx = 2", [], |r| r.get(0)).unwrap();
    let altered = String::from_utf8(leaf).unwrap().replace("scan.run", "scan.rum");
    conn.execute("UPDATE events SET leaf = ?1 WHERE idx = 2", [altered.into_bytes()]).unwrap();
}

#[test]
fn the_data_directory_itself_is_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("custody-data");
    assert!(custody(&data, &["ledger", "init"]).status.success());
    std::fs::write(dir.path().join("notes.txt"), "mail jane.sample@example.com\n").unwrap();
    // A file that would be found, inside the data directory, stays unread.
    std::fs::write(data.join("stray.txt"), "card 4539 5260 1815 9083\n").unwrap();
    let out = custody(&data, &["scan", "--format", "json", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> =
        json["findings"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["notes.txt"], "{json}");
    assert_eq!(json["summary"]["files_scanned"], 1);
}
