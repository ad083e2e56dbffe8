//! The ledger against a real SQLite data directory: proofs, tampering, witnessing,
//! evidence bundles, and a writer killed mid-flight.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use custody_ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use custody_ledger::{Event, ExportFilter, Ledger, LedgerOptions, Outcome, Target, verify_bundle};
use rusqlite::{Connection, params};

fn event(i: u64) -> Event {
    let mut e =
        Event::new(format!("key:staff{}", i % 3), custody_ledger::Action::RecordRead, Outcome::Ok);
    e.time = 1_700_000_000_000 + i as i64 * 1000;
    e.fields = vec!["name".into(), "phone".into()];
    e.purpose = Some("order_fulfillment".into());
    e.details.insert("n".into(), i.into());
    e
}

fn filled(dir: &Path, n: u64) -> Ledger {
    let options = LedgerOptions { checkpoint_every: 10, ..LedgerOptions::default() };
    let ledger = Ledger::init(dir, options).unwrap();
    for i in 0..n {
        assert_eq!(ledger.append(&event(i)).unwrap(), i);
    }
    ledger
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("ledger.db")).unwrap()
}

/// Recomputes every stored tree hash from the stored events, as an attacker covering an
/// edit would.
fn rebuild_nodes(c: &Connection) {
    let leaves: Vec<Vec<u8>> = c
        .prepare("SELECT leaf FROM events ORDER BY idx")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    c.execute("DELETE FROM nodes", []).unwrap();
    let mut f = custody_ledger::merkle::Frontier::default();
    for leaf in &leaves {
        f.push(leaf_hash(leaf), |level, index, hash| {
            c.execute(
                "INSERT INTO nodes (done, level, hash) VALUES (?1, ?2, ?3)",
                params![((index + 1) << level) as i64, level, hash.as_slice()],
            )
            .unwrap();
        });
    }
}

#[test]
fn proofs_verify_against_signed_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path(), 57);
    let cp = ledger.checkpoint().unwrap();
    assert_eq!(cp.size, 57);
    assert_eq!(ledger.verifier().verify(&cp.note).unwrap(), cp);
    for index in [0, 1, 31, 56] {
        let proof = ledger.inclusion_proof(index, 57).unwrap();
        let leaf = ledger.leaf(index).unwrap();
        assert!(verify_inclusion(&leaf_hash(&leaf), index, 57, &proof, &cp.root));
    }
    for old in [1, 10, 32, 56] {
        let proof = ledger.consistency_proof(old, 57).unwrap();
        assert!(verify_consistency(old, 57, &ledger.root(old).unwrap(), &cp.root, &proof));
    }
    let report = ledger.verify().unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.events, 57);
    assert!(report.checkpoints >= 5, "{report:?}");
    assert!(ledger.inclusion_proof(57, 57).is_err());
}

#[test]
fn pseudonyms_keep_identifiers_out_of_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::init(dir.path(), LedgerOptions::default()).unwrap();
    let mut e = Event::new("key:app", custody_ledger::Action::RecordRead, Outcome::Ok);
    e.target = Some(Target {
        collection: "customers".into(),
        record: Some(ledger.pseudonym("jane.sample@example.com")),
    });
    e.source = Some(ledger.pseudonym("203.0.113.42"));
    ledger.append(&e).unwrap();
    ledger.close();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for needle in ["jane.sample@example.com", "203.0.113.42"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in {}",
                    path.display()
                );
            }
        }
    }
}

/// Tampering of every kind is detected, at the right position.
#[test]
fn verify_names_the_first_altered_position() {
    type Tamper = fn(&Connection);
    let cases: [(&str, Tamper, u64); 5] = [
        (
            "a flipped bit in event 23",
            |c| {
                let mut leaf: Vec<u8> = c
                    .query_row("SELECT leaf FROM events WHERE idx = 23", [], |r| r.get(0))
                    .unwrap();
                let at = leaf.iter().position(|b| *b == b'"').unwrap() + 1;
                leaf[at] ^= 0x01;
                c.execute("UPDATE events SET leaf = ?1 WHERE idx = 23", [leaf]).unwrap();
            },
            23,
        ),
        (
            "events 30 and 31 swapped",
            |c| {
                let a: Vec<u8> = c
                    .query_row("SELECT leaf FROM events WHERE idx = 30", [], |r| r.get(0))
                    .unwrap();
                let b: Vec<u8> = c
                    .query_row("SELECT leaf FROM events WHERE idx = 31", [], |r| r.get(0))
                    .unwrap();
                c.execute("UPDATE events SET leaf = ?1 WHERE idx = 30", [b]).unwrap();
                c.execute("UPDATE events SET leaf = ?1 WHERE idx = 31", [a]).unwrap();
            },
            30,
        ),
        (
            "event 12 deleted",
            |c| {
                c.execute("DELETE FROM events WHERE idx = 12", []).unwrap();
            },
            12,
        ),
        (
            "the log truncated to 40",
            |c| {
                c.execute("DELETE FROM events WHERE idx >= 40", []).unwrap();
                c.execute("DELETE FROM nodes WHERE done > 40", []).unwrap();
            },
            40,
        ),
        (
            "event 5 rewritten with its hashes recomputed",
            |c| {
                // An attacker without the signing key rewrites an event and every stored hash
                // above it; only the signed checkpoints can catch it.
                let mut e: serde_json::Value = serde_json::from_slice(
                    &c.query_row::<Vec<u8>, _, _>(
                        "SELECT leaf FROM events WHERE idx = 5",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap(),
                )
                .unwrap();
                e["actor"] = "key:nobody".into();
                // The index column too, as a careful attacker would.
                c.execute(
                    "UPDATE events SET leaf = ?1, actor = 'key:nobody' WHERE idx = 5",
                    [serde_json::to_vec(&e).unwrap()],
                )
                .unwrap();
                rebuild_nodes(c);
            },
            10,
        ),
    ];
    for (what, tamper, position) in cases {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 50).close();
        tamper(&db(dir.path()));
        let ledger = Ledger::open(dir.path(), LedgerOptions::default()).unwrap();
        let report = ledger.verify().unwrap();
        let problem = report.problem.unwrap_or_else(|| panic!("{what}: not detected"));
        assert_eq!(problem.position, position, "{what}: {}", problem.what);
    }
}

#[test]
fn a_witnessed_checkpoint_exposes_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path(), 20);
    let witnessed = ledger.checkpoint().unwrap();
    for i in 20..35 {
        ledger.append(&event(i)).unwrap();
    }
    let ok = ledger.verify_against(&witnessed.note).unwrap();
    assert_eq!((ok.witnessed_size, ok.current_size), (20, 35));
    ledger.close();

    // Someone with full access (and the signing key) rewrites event 3 and everything above
    // it, and re-signs every checkpoint: the log verifies on its own, but not against the
    // checkpoint that left the building.
    let c = db(dir.path());
    c.execute("UPDATE events SET leaf = CAST(replace(CAST(leaf AS TEXT), 'staff0', 'staffX') AS BLOB), actor = replace(actor, 'staff0', 'staffX') WHERE idx = 3", []).unwrap();
    rebuild_nodes(&c);
    c.execute("DELETE FROM checkpoints", []).unwrap();
    drop(c);
    let ledger = Ledger::open(dir.path(), LedgerOptions::default()).unwrap();
    ledger.checkpoint().unwrap();
    assert_eq!(ledger.verify().unwrap().problem, None, "the forgery is self-consistent");
    let err = ledger.verify_against(&witnessed.note).unwrap_err().to_string();
    assert!(err.contains("rewritten"), "{err}");
}

#[test]
fn evidence_bundles_verify_offline_and_reject_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path(), 40);
    let filter = ExportFilter {
        from_ms: 1_700_000_010_000,
        to_ms: 1_700_000_019_000,
        actor: Some("key:staff1".into()),
        record: None,
    };
    let bundle = ledger.export(&filter).unwrap();
    // Events 10..=19 whose actor is staff1 (i % 3 == 1): 10, 13, 16, 19.
    assert_eq!(bundle.events.iter().map(|e| e.index).collect::<Vec<_>>(), vec![10, 13, 16, 19]);
    let key = ledger.verifier().to_key_string();
    // The bundle travels as JSON.
    let text = serde_json::to_string(&bundle).unwrap();
    let parsed: custody_ledger::Bundle = serde_json::from_str(&text).unwrap();
    let report = verify_bundle(&parsed, &key).unwrap();
    assert_eq!(report.events, 4);

    let mut altered = parsed.clone();
    altered.events[1].leaf = altered.events[1].leaf.replace("staff1", "staff2");
    assert!(verify_bundle(&altered, &key).is_err());
    let mut moved = parsed.clone();
    moved.events[0].index += 1;
    assert!(verify_bundle(&moved, &key).is_err());
    let other =
        Ledger::init(tempfile::tempdir().unwrap().path(), LedgerOptions::default()).unwrap();
    assert!(verify_bundle(&parsed, &other.verifier().to_key_string()).is_err());
}

/// The child half of the crash test: appends until killed, printing each acknowledged
/// position. Runs only when the parent starts it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("CUSTODY_CRASH_DIR") else { return };
    let ledger = Ledger::open(Path::new(&dir), LedgerOptions::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let ledger = &ledger;
            s.spawn(move || {
                for i in 0.. {
                    let index = ledger.append(&event(t * 1_000_000 + i)).unwrap();
                    println!("{index} {}", t * 1_000_000 + i);
                }
            });
        }
    });
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    Ledger::init(dir.path(), LedgerOptions::default()).unwrap().close();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
        .env("CUSTODY_CRASH_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let started = std::time::Instant::now();
    for line in reader.lines() {
        let line = line.unwrap();
        let mut parts = line.split(' ');
        if let (Some(Ok(index)), Some(Ok(n))) =
            (parts.next().map(str::parse::<u64>), parts.next().map(str::parse::<u64>))
        {
            acknowledged.push((index, n));
        }
        if started.elapsed() > std::time::Duration::from_millis(1500) && acknowledged.len() > 500 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ledger = Ledger::open(dir.path(), LedgerOptions::default()).unwrap();
    let size = ledger.size().unwrap();
    for (index, n) in &acknowledged {
        assert!(*index < size, "acknowledged event {index} lost (log has {size})");
        let stored = Event::from_canonical(&ledger.leaf(*index).unwrap()).unwrap();
        assert_eq!(stored.details["n"], *n, "event {index} holds another event");
    }
    let report = ledger.verify().unwrap();
    assert_eq!(report.problem, None, "{report:?}");
    eprintln!(
        "{} acknowledged appends before SIGKILL, {size} in the log after restart",
        acknowledged.len()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any single-bit change in any stored event is reported at that event's position.
    #[test]
    fn any_flipped_bit_is_found_at_its_event(target in 0u64..30, bit in 0usize..4096) {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 30).close();
        let c = db(dir.path());
        let mut leaf: Vec<u8> = c.query_row("SELECT leaf FROM events WHERE idx = ?1", [target as i64], |r| r.get(0)).unwrap();
        let bit = bit % (leaf.len() * 8);
        leaf[bit / 8] ^= 1 << (bit % 8);
        c.execute("UPDATE events SET leaf = ?1 WHERE idx = ?2", params![leaf, target as i64]).unwrap();
        drop(c);
        let ledger = Ledger::open(dir.path(), LedgerOptions::default()).unwrap();
        let problem = ledger.verify().unwrap().problem.expect("detected");
        proptest::prop_assert_eq!(problem.position, target, "{}", problem.what);
    }
}

/// The same checks against the real PostgreSQL server (127.0.0.1:5432, trust auth, database
/// `test`; `.ci/run` starts it). Each run uses a schema of its own.
mod postgres_store {
    use custody_ledger::{LedgerOptions, PgStore};

    use super::*;

    const PARAMS: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

    fn pg_ledger(dir: &Path, schema: &str) -> Ledger {
        let reader = Box::new(
            PgStore::connect(PARAMS, schema).expect("PostgreSQL at 127.0.0.1:5432 (see .ci/run)"),
        );
        let writer = Box::new(PgStore::connect(PARAMS, schema).unwrap());
        let options = LedgerOptions { checkpoint_every: 10, ..LedgerOptions::default() };
        Ledger::init_with_stores(dir, options, reader, writer).unwrap()
    }

    fn schema(name: &str) -> String {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("custody_test_{name}_{}_{nanos}", std::process::id())
    }

    fn drop_schema(schema: &str) {
        let mut c = postgres::Client::connect(PARAMS, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).unwrap();
    }

    #[test]
    fn proofs_verification_and_tampering_on_postgresql() {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema("proofs");
        let ledger = pg_ledger(dir.path(), &schema);
        for i in 0..57 {
            assert_eq!(ledger.append(&event(i)).unwrap(), i);
        }
        let cp = ledger.checkpoint().unwrap();
        for index in [0, 31, 56] {
            let proof = ledger.inclusion_proof(index, 57).unwrap();
            assert!(verify_inclusion(
                &leaf_hash(&ledger.leaf(index).unwrap()),
                index,
                57,
                &proof,
                &cp.root
            ));
        }
        let proof = ledger.consistency_proof(10, 57).unwrap();
        assert!(verify_consistency(10, 57, &ledger.root(10).unwrap(), &cp.root, &proof));
        assert_eq!(ledger.verify().unwrap().problem, None);
        let bundle = ledger
            .export(&ExportFilter { from_ms: 0, to_ms: i64::MAX, actor: None, record: None })
            .unwrap();
        assert_eq!(verify_bundle(&bundle, &ledger.verifier().to_key_string()).unwrap().events, 57);
        ledger.close();

        // Tamper with event 23 directly in PostgreSQL.
        let mut c = postgres::Client::connect(PARAMS, postgres::NoTls).unwrap();
        c.execute(&format!("UPDATE {schema}.events SET leaf = overlay(leaf placing 'X' from 12 for 1) WHERE idx = 23"), &[]).unwrap();
        let reader = Box::new(PgStore::connect(PARAMS, &schema).unwrap());
        let writer = Box::new(PgStore::connect(PARAMS, &schema).unwrap());
        let ledger =
            Ledger::open_with_stores(dir.path(), LedgerOptions::default(), reader, writer).unwrap();
        assert_eq!(ledger.verify().unwrap().problem.expect("detected").position, 23);
        ledger.close();
        drop_schema(&schema);
    }

    /// Issue 12: several writers (one per `custody serve` node) share one PostgreSQL
    /// ledger. Their appends interleave into one sequence with no gap or repeat, the
    /// tree verifies, and the checkpoints (signed by whichever writer holds the
    /// sequencer role) cover what every writer appended; when the sequencer stops, another
    /// writer takes the role over.
    #[test]
    fn two_writers_on_one_postgresql_ledger_make_one_sequence() {
        let schema = schema("nodes");
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = pg_ledger(a_dir.path(), &schema);
        // The second node has the same keys (a copy of the first one's `keys/`).
        std::fs::create_dir(b_dir.path().join("keys")).unwrap();
        for entry in std::fs::read_dir(a_dir.path().join("keys")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), b_dir.path().join("keys").join(entry.file_name())).unwrap();
        }
        let open_b = || {
            let options = LedgerOptions { checkpoint_every: 10, ..LedgerOptions::default() };
            Ledger::open_with_stores(
                b_dir.path(),
                options,
                Box::new(PgStore::connect(PARAMS, &schema).unwrap()),
                Box::new(PgStore::connect(PARAMS, &schema).unwrap()),
            )
            .unwrap()
        };
        let b = open_b();
        let positions = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let node = if t % 2 == 0 { &a } else { &b };
                let positions = &positions;
                scope.spawn(move || {
                    for i in 0..60 {
                        let at = node.append(&event(t * 1000 + i)).unwrap();
                        positions.lock().unwrap().push(at);
                    }
                });
            }
        });
        let mut positions = positions.into_inner().unwrap();
        positions.sort_unstable();
        assert_eq!(positions, (0..480).collect::<Vec<u64>>(), "one sequence, no gap, no repeat");
        assert_eq!(a.size().unwrap(), 480);
        assert_eq!(b.size().unwrap(), 480);
        let report = b.verify().unwrap();
        assert_eq!(report.problem, None);
        assert!(report.checkpoints > 0, "the sequencer signed checkpoints");
        // The first writer held the sequencer role; once it is gone, the other takes over and
        // its closing checkpoint covers everything.
        a.close();
        for i in 0..5 {
            b.append(&event(9000 + i)).unwrap();
        }
        b.close();
        let b = open_b();
        let last = b.latest_checkpoint().unwrap().expect("a checkpoint");
        assert_eq!(last.size, 485, "the last checkpoint covers both writers' events");
        assert_eq!(b.verify().unwrap().problem, None);
        b.close();
        drop_schema(&schema);
    }

    /// The ledger's PostgreSQL store is encrypted as its address asks (issue 12: the
    /// stores get the scanner's TLS): seen encrypted from the server's side, and refused
    /// when the certificate cannot be checked as asked.
    #[test]
    fn the_postgresql_store_connects_over_tls() {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema("tls");
        let params = "host=localhost port=5432 user=postgres dbname=test sslmode=require application_name=custody-ledger-tls";
        let reader = Box::new(PgStore::connect(params, &schema).expect("TLS to the local server"));
        let writer = Box::new(PgStore::connect(params, &schema).unwrap());
        let ledger =
            Ledger::init_with_stores(dir.path(), LedgerOptions::default(), reader, writer).unwrap();
        ledger.append(&event(0)).unwrap();
        let mut c = postgres::Client::connect(PARAMS, postgres::NoTls).unwrap();
        let rows = c
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = 'custody-ledger-tls'",
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 2, "the reader and the writer");
        assert!(rows.iter().all(|r| r.get::<_, bool>(0)), "a ledger connection is not encrypted");
        ledger.close();
        // verify-full without an authority to check against is refused, with the next step.
        let err = PgStore::connect(
            "host=localhost port=5432 user=postgres dbname=test sslmode=verify-full",
            &schema,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sslrootcert"), "{err}");
        drop_schema(&schema);
    }

    #[test]
    fn an_edited_index_column_is_named_on_postgresql() {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema("columns");
        let ledger = pg_ledger(dir.path(), &schema);
        for i in 0..40 {
            ledger.append(&event(i)).unwrap();
        }
        ledger.close();
        let open = || {
            let reader = Box::new(PgStore::connect(PARAMS, &schema).unwrap());
            let writer = Box::new(PgStore::connect(PARAMS, &schema).unwrap());
            Ledger::open_with_stores(dir.path(), LedgerOptions::default(), reader, writer).unwrap()
        };
        let exec = |sql: &str| {
            let mut c = postgres::Client::connect(PARAMS, postgres::NoTls).unwrap();
            c.batch_execute(&sql.replace("{t}", &format!("{schema}.events"))).unwrap();
        };
        index_columns_are_checked(&open, &exec);
        drop_schema(&schema);
    }
}

#[test]
fn a_damaged_key_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    Ledger::init(dir.path(), LedgerOptions::default()).unwrap().close();
    let key = dir.path().join("keys").join("ledger-signing.key");
    // 64 bytes, but not 64 hex digits: multi-byte characters that a byte-pair slice would
    // cut in half, a short key, plain garbage, nothing.
    let split_chars = format!("a{}", "€".repeat(21));
    assert_eq!(split_chars.len(), 64);
    for damaged in [split_chars, "ab".repeat(31), "zz".repeat(32), String::new()] {
        std::fs::write(&key, &damaged).unwrap();
        match Ledger::open(dir.path(), LedgerOptions::default()) {
            Err(e) => assert!(e.to_string().contains("is not a valid key"), "{e}"),
            Ok(_) => panic!("a damaged key file was accepted"),
        }
    }
}

/// Commits write only the WAL; the background thread copies it into the database file.
#[test]
fn checkpoints_run_in_the_background_not_in_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    let checkpoints = custody_ledger::Checkpointer::start(&conn, &path).unwrap();
    // 8 MB in 2,000 commits: with SQLite's automatic checkpoints, some commit would copy
    // the WAL into the file itself.
    let started = std::time::Instant::now();
    for _ in 0..2_000 {
        conn.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
    }
    let mut grown = size() > before + 4_000_000;
    let deadline = started + custody_ledger::Checkpointer::EVERY * 20;
    while !grown && std::time::Instant::now() < deadline {
        std::thread::sleep(custody_ledger::Checkpointer::EVERY);
        grown = size() > before + 4_000_000;
    }
    assert!(grown, "the background checkpoint copied the WAL into the database");
    drop(checkpoints);
    // Without the thread and with automatic checkpoints off, the file no longer grows.
    let after = size();
    for _ in 0..500 {
        conn.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
    }
    std::thread::sleep(custody_ledger::Checkpointer::EVERY * 3);
    assert_eq!(size(), after, "commits did not checkpoint");
}

/// The index columns (`time`, `actor`, `action`, `record`) are copies for filtering: an edit
/// to any of them is named at its position by `verify`, and an export still holds the event
/// (it selects on the canonical event). `exec` runs SQL against the store's events table,
/// written with `{t}` for the table name.
fn index_columns_are_checked(open: &dyn Fn() -> Ledger, exec: &dyn Fn(&str)) {
    let edits = [
        ("time", "UPDATE {t} SET time = time + 1 WHERE idx = 7", 7),
        ("actor", "UPDATE {t} SET actor = 'key:staff2' WHERE idx = 13", 13),
        ("action", "UPDATE {t} SET action = 'record.create' WHERE idx = 21", 21),
        ("record", "UPDATE {t} SET record = 'ab' WHERE idx = 33", 33),
    ];
    for (column, sql, position) in edits {
        exec(sql);
        let ledger = open();
        let problem = ledger
            .verify()
            .unwrap()
            .problem
            .unwrap_or_else(|| panic!("an edited `{column}` column passed verification"));
        assert_eq!(problem.position, position, "{column}: {}", problem.what);
        assert!(problem.what.contains(&format!("`{column}`")), "{}", problem.what);
        // The export for the event's real actor still has it.
        let actor = format!("key:staff{}", position % 3);
        let bundle = ledger
            .export(&ExportFilter {
                from_ms: 0,
                to_ms: i64::MAX,
                actor: Some(actor.clone()),
                record: None,
            })
            .unwrap();
        let expected: Vec<u64> = (0..40).filter(|i| i % 3 == position % 3).collect();
        assert_eq!(
            bundle.events.iter().map(|e| e.index).collect::<Vec<_>>(),
            expected,
            "{column}: the export for {actor} is incomplete"
        );
        let verified = verify_bundle(&bundle, &ledger.verifier().to_key_string()).unwrap();
        assert_eq!(verified.events, expected.len());
        // Undo, so the next edit is the only one.
        ledger.close();
        exec(&format!(
            "UPDATE {{t}} SET time = {}, actor = 'key:staff{}', action = 'record.read', record = NULL WHERE idx = {position}",
            event(position).time,
            position % 3
        ));
        let ledger = open();
        assert_eq!(ledger.verify().unwrap().problem, None, "{column}: undo");
        ledger.close();
    }
}

#[test]
fn an_edited_index_column_is_named_and_exports_stay_complete() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 40).close();
    let path = dir.path().to_path_buf();
    index_columns_are_checked(&|| Ledger::open(&path, LedgerOptions::default()).unwrap(), &|sql| {
        db(&path).execute(&sql.replace("{t}", "events"), []).unwrap();
    });
}

#[test]
fn events_stream_typed_from_any_position() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path(), 2100);
    let all: Vec<(u64, Event)> = ledger.events(0).map(Result::unwrap).collect();
    assert_eq!(all.len(), 2100);
    assert!(
        all.iter().enumerate().all(|(i, (index, e))| *index == i as u64 && *e == event(*index))
    );
    let tail: Vec<u64> = ledger.events(2090).map(|r| r.unwrap().0).collect();
    assert_eq!(tail, (2090..2100).collect::<Vec<_>>());
    assert_eq!(ledger.events(5000).count(), 0);
}
