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

#[test]
fn init_seals_the_root_key_and_writes_a_recovery_kit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let short = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["--data-dir", data.to_str().unwrap(), "init"])
        .env("CUSTODY_PASSPHRASE", "too short")
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(2));
    assert!(text(&short).contains("too short"), "{}", text(&short));
    assert!(!data.join("config.toml").exists(), "nothing written on a refused passphrase");

    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let kit_file = dir.path().join("usb").join("kit.txt");
    std::fs::create_dir(dir.path().join("usb")).unwrap();
    let out = custody(
        &data,
        &["init", "--passphrase-file", pass.to_str().unwrap(), "--kit", kit_file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(kit_file.to_str().unwrap()), "{}", text(&out));
    assert!(!text(&out).contains("custody-share"), "written, so not printed: {}", text(&out));
    assert!(!data.join("recovery-kit.txt").exists());
    // The configuration is the vault's default and parses.
    let config = std::fs::read_to_string(data.join("config.toml")).unwrap();
    assert!(custody_vault::Config::parse(&config).is_ok());
    // Two of the three shares rebuild the key the passphrase unseals.
    let kit = std::fs::read_to_string(&kit_file).unwrap();
    let shares: Vec<&str> = kit.lines().filter(|l| l.starts_with("custody-share-1-")).collect();
    assert_eq!(shares.len(), 3);
    let from_shares = custody_crypto::recovery::combine(&[shares[0], shares[2]]).unwrap();
    let sealed = std::fs::read_to_string(data.join("keys/root.sealed")).unwrap();
    let field =
        |name: &str| sealed.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string();
    let seal = custody_crypto::PassphraseSeal {
        params: custody_crypto::Argon2Params::default(),
        salt: custody_store::hex::decode(&field("salt ")).unwrap().try_into().unwrap(),
        sealed: custody_store::hex::decode(&field("sealed ")).unwrap(),
    };
    assert_eq!(seal.open(b"correct horse battery staple").unwrap(), from_shares);
    assert!(seal.open(b"correct horse battery stapler").is_err());
    // Files with secrets are private; a second init changes nothing.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [kit_file.clone(), data.join("keys/root.sealed"), data.join("config.toml")] {
            assert_eq!(
                std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                f.display()
            );
        }
    }
    let again = custody(&data, &["init", "--passphrase-file", pass.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(custody(&data, &["ledger", "verify"]).status.success());
}

#[test]
fn records_are_added_shown_masked_and_erased_through_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let p = pass.to_str().unwrap();
    assert!(custody(&data, &["init", "--passphrase-file", p]).status.success());

    // Values come in on standard input, so they never sit in the shell history.
    let added = with_stdin(
        &data,
        &["records", "add", "customers", "-", "--passphrase-file", p],
        "name=Jane Doe\nemail=Jane.Doe@Example.com\nphone=+1 415 555 0134\ncard_number=4539 5260 1815 9083\nssn=773-12-3456\n",
    );
    assert!(added.status.success(), "{}", text(&added));
    let id = String::from_utf8(added.stdout).unwrap().trim().to_string();

    let secrets = ["4539526018159083", "773-12-3456", "jane.doe@example.com", "Jane Doe"];
    let show = |extra: &[&str]| {
        let mut args = vec!["records", "show", "customers", &id, "--passphrase-file", p];
        args.extend_from_slice(extra);
        custody(&data, &args)
    };
    // Masked on the terminal by default, even for the owner.
    let masked = show(&["--purpose", "billing"]);
    assert!(masked.status.success(), "{}", text(&masked));
    for s in secrets {
        assert!(!text(&masked).contains(s), "{s} shown unmasked:\n{}", text(&masked));
    }
    assert!(text(&masked).contains("9083"), "{}", text(&masked));
    let revealed = show(&["--purpose", "billing", "--reveal"]);
    assert!(text(&revealed).contains("4539526018159083"), "{}", text(&revealed));
    assert!(text(&revealed).contains("773-12-3456"));
    // JSON for scripts: the same masking, a stable shape.
    let json = show(&["--purpose", "billing", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["fields"]["email"]["mode"], "masked");
    assert_eq!(v["fields"]["ssn"]["mode"], "masked");
    for s in secrets {
        assert!(!text(&json).contains(s), "{s} in JSON");
    }
    let json = show(&["--purpose", "billing", "--json", "--reveal"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["fields"]["ssn"], serde_json::json!({ "mode": "plain", "value": "773-12-3456" }));
    // Staff never sees the SSN or card in full, --reveal or not.
    let staff = show(&["--role", "staff", "--purpose", "billing", "--reveal"]);
    assert!(staff.status.success(), "{}", text(&staff));
    assert!(!text(&staff).contains("4539526018159083") && !text(&staff).contains("773-12-3456"));

    // A wrong passphrase: clear error, exit 2, nothing read; one `auth.failed` recorded.
    let size = || {
        let ledger =
            custody_ledger::Ledger::open(&data, custody_ledger::LedgerOptions::default()).unwrap();
        let events: Vec<_> = ledger.events(0).map(Result::unwrap).collect();
        events.last().map(|(_, e)| (events.len(), e.action.clone())).unwrap()
    };
    let (before, _) = size();
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "correct horse battery stapler\n").unwrap();
    let refused = custody(
        &data,
        &["records", "show", "customers", &id, "--passphrase-file", wrong.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).contains("wrong passphrase"), "{}", text(&refused));
    assert_eq!(size(), (before + 1, "auth.failed".to_string()));
    assert!(custody(&data, &["ledger", "verify"]).status.success());

    // Update is all or nothing: one invalid value and nothing changes.
    let update = |pairs: &[&str]| {
        let mut args = vec!["records", "update", "customers", &id, "--passphrase-file", p];
        args.extend_from_slice(pairs);
        custody(&data, &args)
    };
    let bad = update(&["phone=+1 415 555 0100", "card_number=4539526018159084"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!text(&bad).contains("4539526018159084"), "{}", text(&bad));
    assert!(text(&show(&["--purpose", "billing", "--reveal"])).contains("+14155550134"));
    assert!(update(&["phone=+1 415 555 0100"]).status.success());
    assert!(text(&show(&["--purpose", "billing", "--reveal"])).contains("+14155550100"));

    // Search by a normalised value; the auditor may not search at all.
    let find = |value: &str, role: &str| {
        custody(
            &data,
            &[
                "records",
                "find",
                "customers",
                "email",
                value,
                "--role",
                role,
                "--passphrase-file",
                p,
            ],
        )
    };
    let found = find("  JANE.doe@example.COM ", "owner");
    assert!(found.status.success(), "{}", text(&found));
    assert_eq!(String::from_utf8(found.stdout.clone()).unwrap().trim(), id);
    let denied = find("jane.doe@example.com", "auditor");
    assert_eq!(denied.status.code(), Some(2));
    assert!(text(&denied).contains("may not search"), "{}", text(&denied));

    // Nothing is past its retention yet.
    let expire = custody(&data, &["records", "expire", "--passphrase-file", p]);
    assert!(expire.status.success(), "{}", text(&expire));
    assert!(text(&expire).contains("0 record(s) erased, 0 value(s) deleted"), "{}", text(&expire));

    // Erase: nothing of the record can be read again; every step is in the ledger.
    let erased = custody(&data, &["records", "erase", "customers", &id, "--passphrase-file", p]);
    assert!(erased.status.success(), "{}", text(&erased));
    let gone = show(&["--purpose", "billing", "--reveal"]);
    assert_eq!(gone.status.code(), Some(2));
    for s in secrets {
        assert!(!text(&gone).contains(s));
    }
    assert!(find("jane.doe@example.com", "owner").stdout.is_empty(), "erased, yet found");
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    // The ledger and vault files hold none of the values.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for s in secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{s} in {}",
                    path.display()
                );
            }
        }
    }
}

/// Writes `body` to `dir/name` (a passphrase file); its path as text.
fn write_file(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

fn with_stdin(data: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Review item 12 (witnessing): with `[ledger] witness` set, every checkpoint is also
/// written to that folder outside the data directory, and `ledger verify` checks the log
/// against it by default. Dropping the newest events and checkpoints from the data
/// directory — which `verify` alone cannot see — is then reported.
#[test]
fn review_12_a_witness_folder_shows_dropped_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    assert!(
        custody(&data, &["init", "--passphrase-file", pass.to_str().unwrap()]).status.success()
    );
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("a.txt"), "nothing here\n").unwrap();
    let config = data.join("config.toml");
    let text_of = std::fs::read_to_string(&config).unwrap();
    // Inside the data directory: refused.
    let inside = format!("{text_of}\n[ledger]\nwitness = \"{}\"\n", data.join("w").display());
    std::fs::write(&config, inside).unwrap();
    let refused = custody(&data, &["ledger", "verify"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("inside the data directory"), "{}", text(&refused));
    let witness = dir.path().join("usb").join("witness");
    let with_witness = format!("{text_of}\n[ledger]\nwitness = \"{}\"\n", witness.display());
    std::fs::write(&config, &with_witness).unwrap();
    // The signing key is sealed under the vault (review item 12): nothing in keys/ signs
    // without the passphrase. Scans still record; the next signed checkpoint covers them.
    assert!(!data.join("keys/ledger-signing.key").exists());
    assert!(data.join("keys/ledger-signing.sealed").is_file());
    let sealed = std::fs::read_to_string(data.join("keys/ledger-signing.sealed")).unwrap();
    let public = custody(&data, &["ledger", "public-key"]);
    assert!(public.status.success(), "{}", text(&public));
    for _ in 0..4 {
        let scan = custody(&data, &["scan", files.to_str().unwrap()]);
        assert!(scan.status.success(), "{}", text(&scan));
    }
    assert!(!witness.join("checkpoint.txt").exists(), "nothing signed while sealed");
    let unsigned = custody(&data, &["ledger", "checkpoint"]);
    assert_eq!(unsigned.status.code(), Some(2), "{}", text(&unsigned));
    assert!(text(&unsigned).contains("signing key is sealed"), "{}", text(&unsigned));
    let signed =
        custody(&data, &["ledger", "checkpoint", "--passphrase-file", pass.to_str().unwrap()]);
    assert!(signed.status.success(), "{}", text(&signed));
    let events = {
        let db = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
        db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap()
    };
    assert!(
        text(&signed).contains(&format!("\n{events}\n")),
        "covers every event: {}",
        text(&signed)
    );
    assert!(!text(&signed).contains(sealed.trim()));
    assert!(witness.join("checkpoint.txt").is_file());
    let ok = custody(&data, &["ledger", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("witness folder"), "{}", text(&ok));

    // Someone with the account drops the two newest events and their checkpoints.
    {
        let db = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
        let total: i64 = db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
        let keep = total - 2;
        db.execute("DELETE FROM events WHERE idx >= ?1", [keep]).unwrap();
        db.execute("DELETE FROM checkpoints WHERE size > ?1", [keep]).unwrap();
        db.execute("DELETE FROM nodes WHERE done > ?1", [keep]).unwrap();
    }
    // Without the witness, the shortened log verifies: that is the gap.
    std::fs::write(&config, &text_of).unwrap();
    let blind = custody(&data, &["ledger", "verify"]);
    assert!(blind.status.success(), "{}", text(&blind));
    // With it, the removal is reported.
    std::fs::write(&config, &with_witness).unwrap();
    let seen = custody(&data, &["ledger", "verify"]);
    assert_eq!(seen.status.code(), Some(1), "{}", text(&seen));
    assert!(text(&seen).contains("events were removed"), "{}", text(&seen));
}

#[test]
fn a_lost_passphrase_is_recovered_from_two_shares_and_keys_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let write = |name: &str, body: &str| write_file(dir.path(), name, body);
    let old = write("old.txt", "correct horse battery staple\n");
    let new = write("new.txt", "a brand new long passphrase\n");
    let made = custody(&data, &["init", "--passphrase-file", &old]);
    assert!(made.status.success());
    let kit = String::from_utf8_lossy(&made.stdout).into_owned();
    let added = with_stdin(
        &data,
        &["records", "add", "customers", "-", "--passphrase-file", &old],
        "name=Jane Doe\nssn=773-12-3456\n",
    );
    assert!(added.status.success(), "{}", text(&added));
    let id = String::from_utf8(added.stdout).unwrap().trim().to_string();
    let show = |pass: &str| {
        custody(
            &data,
            &["records", "show", "customers", &id, "--purpose", "billing", "--reveal"]
                .into_iter()
                .chain(["--passphrase-file", pass])
                .collect::<Vec<_>>(),
        )
    };

    // Rotation keeps every record readable.
    let rotated = custody(&data, &["keys", "rotate", "--passphrase-file", &old]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    assert!(text(&show(&old)).contains("773-12-3456"));

    let shares: Vec<&str> = kit.lines().filter(|l| l.starts_with("custody-share-")).collect();
    // One share, or shares from another installation's kit, change nothing.
    let one = with_stdin(&data, &["keys", "recover", "--new-passphrase-file", &new], shares[1]);
    assert_eq!(one.status.code(), Some(2), "{}", text(&one));
    let other = dir.path().join("other");
    let other_made = custody(&other, &["init", "--passphrase-file", &old]);
    assert!(other_made.status.success());
    let other_kit = String::from_utf8_lossy(&other_made.stdout).into_owned();
    let foreign: Vec<&str> =
        other_kit.lines().filter(|l| l.starts_with("custody-share-")).collect();
    let wrong_kit = with_stdin(
        &data,
        &["keys", "recover", "--new-passphrase-file", &new],
        &format!("{}\n{}\n", foreign[0], foreign[1]),
    );
    assert_eq!(wrong_kit.status.code(), Some(2));
    assert!(text(&wrong_kit).contains("different custody installation"), "{}", text(&wrong_kit));
    assert!(text(&show(&old)).contains("773-12-3456"), "the old passphrase still works");

    // Two shares of this kit: the new passphrase opens the vault, the old one no longer does.
    let recovered = with_stdin(
        &data,
        &["keys", "recover", "--new-passphrase-file", &new],
        &format!("{}\n\n{}\n", shares[2], shares[0]),
    );
    assert!(recovered.status.success(), "{}", text(&recovered));
    assert!(text(&show(&new)).contains("773-12-3456"));
    let refused = show(&old);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).contains("wrong passphrase"));
    assert!(!data.join("keys/root.sealed.new").exists());

    // Changing the passphrase needs the current one.
    let third = write("third.txt", "yet another long passphrase\n");
    let change = |current: &str| {
        custody(
            &data,
            &["keys", "passphrase", "--passphrase-file", current, "--new-passphrase-file", &third],
        )
    };
    let denied = change(&old);
    assert_eq!(denied.status.code(), Some(2));
    assert!(text(&denied).contains("wrong passphrase"), "{}", text(&denied));
    assert!(text(&show(&new)).contains("773-12-3456"), "a refused change changes nothing");
    assert!(change(&new).status.success());
    assert!(text(&show(&third)).contains("773-12-3456"));
    assert_eq!(show(&new).status.code(), Some(2));
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn a_decommission_check_reads_everything_and_writes_a_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let disk = dir.path().join("old-pc");
    std::fs::create_dir(&disk).unwrap();
    // An ignore file would hide this from an ordinary scan; a decommission check reads it.
    std::fs::write(disk.join(".custodyignore"), "payroll.csv\n").unwrap();
    std::fs::write(disk.join("payroll.csv"), "name,ssn\nAnn Lee,536-22-1234\n").unwrap();
    let cert = dir.path().join("certificate.html");
    let cert_arg = cert.display().to_string();
    let disk_arg = disk.display().to_string();

    // Without a ledger there is nothing to sign with: a clear error and the next step.
    let refused = custody(&data, &["scan", "--decommission", &disk_arg]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("custody init"), "{}", text(&refused));
    assert!(custody(&data, &["ledger", "init"]).status.success());
    let narrowed = custody(&data, &["scan", "--decommission", "--kinds", "email", &disk_arg]);
    assert_eq!(narrowed.status.code(), Some(2), "{}", text(&narrowed));

    let ordinary = custody(&data, &["scan", "--format", "jsonl", &disk_arg]);
    assert!(String::from_utf8_lossy(&ordinary.stdout).is_empty(), "the ignore file hides it");
    let check = custody(
        &data,
        &["scan", "--decommission", "--certificate", &cert_arg, "--format", "jsonl", &disk_arg],
    );
    assert_eq!(check.status.code(), Some(1), "found data means not ready: {}", text(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("us_ssn"));
    let html = std::fs::read_to_string(&cert).unwrap();
    assert!(html.contains("NOT ready to be given away"));
    assert!(html.contains("social security number"));
    assert!(!html.contains("536-22-1234"), "the certificate shows no values");
    assert!(
        html.contains("\n\u{2014} custody.local/ledger/"),
        "the signed checkpoint, with its signature line"
    );
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));

    // Once the data is gone, the same check is clean, and says what was done.
    let payroll = disk.join("payroll.csv");
    let shred = custody(&data, &["fix", "shred", "--apply", payroll.to_str().unwrap()]);
    assert!(shred.status.success(), "{}", text(&shred));
    assert!(!payroll.exists());
    let clean = custody(&data, &["scan", "--decommission", "--certificate", &cert_arg, &disk_arg]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    let html = std::fs::read_to_string(&cert).unwrap();
    assert!(html.contains("No customer data was found."));
    assert!(html.contains("<td>shred</td>") && html.contains("payroll.csv"), "{html}");
}

/// Review item 23: with `USER` unset the CLI recorded `cli:unknown`, and with `USER` set it
/// recorded whatever the variable said. The actor is the account the process runs as.
#[test]
fn review_23_the_cli_actor_is_the_real_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(custody(&data, &["ledger", "init"]).status.success());
    let run = |user: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
        cmd.arg("--data-dir").arg(&data).args(["scan", "--format", "jsonl", &shop()]);
        cmd.env_remove("USER").env_remove("LOGNAME");
        if let Some(user) = user {
            cmd.env("USER", user).env("LOGNAME", user);
        }
        assert!(cmd.output().unwrap().status.success());
    };
    run(None);
    run(Some("mallory"));
    // The account's name as the system knows it (`id -un` reads the user database).
    let id = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8_lossy(&id.stdout).trim().to_string();
    assert!(!me.is_empty());
    let conn = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
    let mut stmt = conn.prepare("SELECT actor FROM events ORDER BY idx").unwrap();
    let actors: Vec<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(actors, vec![format!("cli:{me}"), format!("cli:{me}")]);
}

/// Review item 2 end to end: `keys rotate --root` gives a new passphrase and kit; an old
/// `keys/root.sealed` with the old passphrase and two shares of the old kit then open
/// nothing, the new ones everything; a rotation cut short either way is settled at the
/// next unlock.
#[test]
fn review_2_keys_rotate_root_shuts_out_old_seals_and_kits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let write = |name: &str, body: &str| write_file(dir.path(), name, body);
    let old = write("old.txt", "correct horse battery staple\n");
    let new = write("new.txt", "a brand new long passphrase\n");
    let made = custody(&data, &["init", "--passphrase-file", &old]);
    assert!(made.status.success(), "{}", text(&made));
    let old_kit = String::from_utf8_lossy(&made.stdout).into_owned();
    let added = with_stdin(
        &data,
        &["records", "add", "customers", "-", "--passphrase-file", &old],
        "name=Jane Doe\nssn=773-12-3456\nemail=jane.doe@example.com\n",
    );
    assert!(added.status.success(), "{}", text(&added));
    let id = String::from_utf8(added.stdout).unwrap().trim().to_string();
    let show = |pass: &str| {
        custody(
            &data,
            &["records", "show", "customers", &id, "--purpose", "billing", "--reveal"]
                .into_iter()
                .chain(["--passphrase-file", pass])
                .collect::<Vec<_>>(),
        )
    };
    let sealed = data.join("keys/root.sealed");
    let old_seal = std::fs::read(&sealed).unwrap();

    // A kit inside the data directory is refused before anything changes.
    let inside = data.join("kit.txt");
    let rotate = |kit: &Path| {
        custody(
            &data,
            &["keys", "rotate", "--root", "--passphrase-file", &old, "--new-passphrase-file", &new]
                .into_iter()
                .chain(["--kit", kit.to_str().unwrap()])
                .collect::<Vec<_>>(),
        )
    };
    let refused = rotate(&inside);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("must not be kept in the data directory"),
        "{}",
        text(&refused)
    );
    assert_eq!(std::fs::read(&sealed).unwrap(), old_seal, "nothing changed");

    let kit_file = dir.path().join("new-kit.txt");
    let rotated = rotate(&kit_file);
    assert!(rotated.status.success(), "{}", text(&rotated));
    assert!(text(&rotated).contains("Replaced the root key"), "{}", text(&rotated));
    assert!(!text(&rotated).contains("made before custody kept"), "{}", text(&rotated));
    assert!(!data.join("keys/root.sealed.next").exists());
    let new_kit = std::fs::read_to_string(&kit_file).unwrap();
    let new_seal = std::fs::read(&sealed).unwrap();

    // The new passphrase reads and finds; the old one is refused.
    assert!(text(&show(&new)).contains("773-12-3456"), "{}", text(&show(&new)));
    let found = custody(
        &data,
        &[
            "records",
            "find",
            "customers",
            "email",
            "Jane.Doe@example.com",
            "--passphrase-file",
            &new,
        ],
    );
    assert!(text(&found).contains(&id), "the search index was rebuilt: {}", text(&found));
    assert!(text(&show(&old)).contains("wrong passphrase"));

    // An old copy of root.sealed with the old passphrase opens nothing.
    std::fs::write(&sealed, &old_seal).unwrap();
    let stale = show(&old);
    assert_eq!(stale.status.code(), Some(2), "{}", text(&stale));
    assert!(!text(&stale).contains("773-12-3456"));
    std::fs::write(&sealed, &new_seal).unwrap();

    // Two shares of the old kit are another installation's now; two of the new one work.
    let shares = |kit: &str| -> String {
        let s: Vec<&str> = kit.lines().filter(|l| l.starts_with("custody-share-")).collect();
        format!("{}\n{}\n", s[0], s[2])
    };
    let third = write("third.txt", "yet another long passphrase\n");
    let old_shares =
        with_stdin(&data, &["keys", "recover", "--new-passphrase-file", &third], &shares(&old_kit));
    assert_eq!(old_shares.status.code(), Some(2), "{}", text(&old_shares));
    assert!(text(&old_shares).contains("different custody installation"), "{}", text(&old_shares));
    let new_shares =
        with_stdin(&data, &["keys", "recover", "--new-passphrase-file", &third], &shares(&new_kit));
    assert!(new_shares.status.success(), "{}", text(&new_shares));
    assert!(text(&show(&third)).contains("773-12-3456"));

    // Cut short before its commit: a waiting new seal that does not open the vault is
    // dropped at the next unlock.
    let next = data.join("keys/root.sealed.next");
    std::fs::write(&next, &old_seal).unwrap();
    assert!(text(&show(&third)).contains("773-12-3456"));
    assert!(!next.exists());
    // Cut short after its commit: the waiting seal is the vault's, and replaces the old one.
    let current = std::fs::read(&sealed).unwrap();
    std::fs::write(&next, &current).unwrap();
    std::fs::write(&sealed, &old_seal).unwrap();
    assert!(text(&show(&third)).contains("773-12-3456"));
    assert!(!next.exists());
    assert_eq!(std::fs::read(&sealed).unwrap(), current);

    // The rotation is in the ledger, and the ledger verifies.
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let export = custody(
        &data,
        &[
            "ledger",
            "export",
            // The signing key, sealed under the vault, survived the root rotation.
            // The signing key, sealed under the vault, survived the root rotation.
            "--passphrase-file",
            &third,
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--out",
            dir.path().join("b.json").to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{}", text(&export));
    let bundle = std::fs::read_to_string(dir.path().join("b.json")).unwrap();
    assert!(bundle.contains("keys.rotate_root"));
}
