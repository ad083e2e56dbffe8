//! A scan job: files, folders and a database in one run, the data directory's cache and
//! ignore list, and targets shown without credentials.

mod common;

use std::fs;

use common::Collect;
use custody_detect::{DetectorConfig, Kind};
use custody_scan::{Job, NoProgress};

/// An SSN in an issued area.
const SSN: &str = "773-12-3456";

/// A Luhn-valid Visa number that is not a published test card.
fn card() -> String {
    let payload = "453952100007919";
    format!("{payload}{}", custody_testkit::checks::luhn_check_digit(payload.as_bytes()))
}

fn job(targets: Vec<std::path::PathBuf>, data_dir: &std::path::Path) -> Job {
    Job { targets, data_dir: Some(data_dir.to_path_buf()), threads: 2, ..Job::default() }
}

#[test]
fn files_and_a_database_are_one_summary_and_the_data_directory_is_not_entered() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("share");
    let data = tree.join(".custody");
    fs::create_dir_all(&data).unwrap();
    fs::write(tree.join("notes.txt"), format!("customer SSN {SSN}\n")).unwrap();
    // custody's own directory holds nothing to report, even when it sits inside the tree.
    fs::write(data.join("left-over.txt"), format!("SSN {SSN}\n")).unwrap();
    let db = tmp.path().join("shop.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, card TEXT)").unwrap();
    conn.execute("INSERT INTO customers (card) VALUES (?1)", [card()]).unwrap();
    drop(conn);

    let url = format!("sqlite:{}", db.display());
    let job = Job { cache: false, ..job(vec![tree.clone(), url.clone().into()], &data) };
    let mut sink = Collect(Vec::new(), Vec::new());
    let ran = job.run(&mut sink, &NoProgress).expect("the job runs");

    let paths: Vec<&str> = sink.0.iter().map(|f| &*f.path).collect();
    assert!(paths.contains(&"notes.txt"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.contains(".custody")),
        "the data directory is skipped: {paths:?}"
    );
    assert_eq!(ran.summary.findings_by_kind.get(&Kind::UsSsn), Some(&1));
    assert!(
        ran.summary.columns.iter().any(|c| c.kind == Kind::CreditCard && c.rows_matched == 1),
        "the database's card column is in the same summary: {:?}",
        ran.summary.columns
    );
    assert_eq!(ran.targets, vec![tree.display().to_string(), url]);
    assert!(ran.notes.is_empty(), "{:?}", ran.notes);
}

#[test]
fn a_database_url_is_shown_without_its_password() {
    let job =
        Job { targets: vec!["postgres://shop:s3cret-pw@127.0.0.1/test".into()], ..Job::default() };
    let shown = job.shown_targets().join(" ");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
}

#[test]
fn the_cache_serves_an_unchanged_file_and_a_full_read_does_not_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (tree, data) = (tmp.path().join("share"), tmp.path().join("data"));
    fs::create_dir_all(&tree).unwrap();
    fs::create_dir_all(&data).unwrap();
    fs::write(tree.join("a.txt"), format!("SSN {SSN}\n")).unwrap();
    let run = |job: &Job| {
        let mut sink = Collect(Vec::new(), Vec::new());
        let ran = job.run(&mut sink, &NoProgress).expect("the job runs");
        (ran, sink.0.len())
    };
    let cached = job(vec![tree.clone()], &data);
    let (first, found) = run(&cached);
    assert_eq!((first.summary.files_cached, found), (0, 1));
    let (second, found) = run(&cached);
    assert_eq!((second.summary.files_cached, found), (1, 1), "unchanged: from the cache");

    let everything = Job { everything: true, ..cached.clone() };
    let (full, found) = run(&everything);
    assert_eq!((full.summary.files_cached, found), (0, 1), "a full read reads the file");

    // Another detector configuration is another cache key: the file is read again.
    let other = Job {
        detector: DetectorConfig::default().with_kinds(&[Kind::UsSsn, Kind::Email]),
        ..cached.clone()
    };
    assert_ne!(other.cache_key(None), cached.cache_key(None));
    let (again, _) = run(&other);
    assert_eq!(again.summary.files_cached, 0);
}

#[test]
fn a_damaged_cache_is_replaced_with_a_note_and_the_scan_still_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (tree, data) = (tmp.path().join("share"), tmp.path().join("data"));
    fs::create_dir_all(&tree).unwrap();
    fs::create_dir_all(&data).unwrap();
    fs::write(tree.join("a.txt"), format!("SSN {SSN}\n")).unwrap();
    let cache = custody_store::DataDir::new(&data).scan_cache();
    fs::create_dir_all(cache.parent().unwrap()).unwrap();
    fs::write(&cache, b"this is not a SQLite database, just bytes").unwrap();

    let mut sink = Collect(Vec::new(), Vec::new());
    let ran = job(vec![tree], &data).run(&mut sink, &NoProgress).expect("the job runs");
    assert_eq!(sink.0.len(), 1);
    assert_eq!(ran.notes.len(), 1, "{:?}", ran.notes);
    assert!(ran.notes[0].contains("starting a new one"), "{:?}", ran.notes);
}

#[test]
fn an_unreachable_database_is_an_error_without_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let job = Job {
        targets: vec!["postgres://shop:s3cret-pw@127.0.0.1:1/test".into()],
        ..job(Vec::new(), tmp.path())
    };
    let err = job.run(&mut Collect(Vec::new(), Vec::new()), &NoProgress).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, custody_scan::Error::Source { .. }), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}
