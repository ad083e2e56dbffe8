//! Database sources against the real servers on this machine (PostgreSQL at
//! 127.0.0.1:5432, trust auth, database `test`; MariaDB at 127.0.0.1:3306, root without a
//! password, database `test`; `.ci/run` starts both) and a SQLite file. Seeded tables hold
//! valid SSNs, card numbers and emails beside look-alike order numbers; the scan must
//! report each column correctly, locate values by primary key, honour the sample size and
//! never print credentials. These tests fail, never skip, when a server is down.

mod common;

use common::Collect;
use custody_detect::Kind;
use custody_scan::{DatabaseOptions, Summary, scan_database};
use custody_testkit::checks::luhn_check_digit;

const ROWS: u64 = 300;

/// Row `i`'s values: a valid SSN, a Luhn-valid Visa number, an email, and an order
/// number that is not Luhn-valid (so no card).
fn row(i: u64) -> (String, String, String, String) {
    let ssn = format!("{:03}-{:02}-{:04}", 100 + i % 500, 10 + i % 80, 1000 + i);
    let payload = format!("453952{:09}", 100_000_000 + i * 7919);
    let card = format!("{payload}{}", luhn_check_digit(payload.as_bytes()));
    let email = format!("customer{i}@example.org");
    let mut order = format!("{payload}{}", (luhn_check_digit(payload.as_bytes()) + 1) % 10);
    order.insert_str(0, "ORD-");
    (ssn, card, email, order)
}

fn scan(url: &str, sample: Option<u64>) -> (Summary, Collect) {
    let mut sink = Collect(Vec::new(), Vec::new());
    let options = DatabaseOptions { sample, ..DatabaseOptions::default() };
    let summary = scan_database(url, &options, &mut sink).expect("the database scan runs");
    (summary, sink)
}

fn column<'s>(summary: &'s Summary, suffix: &str, kind: Kind) -> &'s custody_scan::ColumnReport {
    summary
        .columns
        .iter()
        .find(|c| c.column.ends_with(suffix) && c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} in {suffix}: {:?}", summary.columns))
}

/// The checks every engine must pass.
fn check(url: &str, table: &str) {
    let (summary, found) = scan(url, None);
    assert!(found.1.is_empty(), "{:?}", found.1);
    for (col, kind) in [("ssn", Kind::UsSsn), ("card", Kind::CreditCard), ("email", Kind::Email)] {
        let c = column(&summary, &format!("{table}.{col}"), kind);
        assert_eq!(c.rows_read, ROWS);
        assert_eq!(c.rows_matched, ROWS, "{c:?}");
        assert!((c.share - 1.0).abs() < f64::EPSILON);
    }
    assert!(
        !summary.columns.iter().any(|c| c.column.ends_with(".order_no")),
        "order numbers are not cards: {:?}",
        summary.columns
    );
    // Values are located by primary key.
    let ssn_7 =
        found.0.iter().find(|f| f.kind == Kind::UsSsn && f.path.ends_with("#row=7")).unwrap();
    assert!(ssn_7.path.ends_with(&format!("{table}.ssn#row=7")), "{}", ssn_7.path);
    assert_eq!(ssn_7.value.expose(), row(7).0);
    // A sample reads only that many rows.
    let (sampled, _) = scan(url, Some(50));
    assert_eq!(column(&sampled, &format!("{table}.email"), Kind::Email).rows_read, 50);
}

#[test]
fn postgres_columns_and_values() {
    let mut client = postgres::Client::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        postgres::NoTls,
    )
    .expect("PostgreSQL at 127.0.0.1:5432 (see .ci/run)");
    client
        .batch_execute(
            "DROP SCHEMA IF EXISTS custody_scan_test CASCADE; CREATE SCHEMA custody_scan_test;
             CREATE TABLE custody_scan_test.customers (id integer PRIMARY KEY, ssn text, card bigint, email varchar(80), order_no text, photo bytea);
             CREATE TABLE custody_scan_test.no_key (note text);
             INSERT INTO custody_scan_test.no_key VALUES ('call 212-555-0143 please');
             CREATE TABLE custody_scan_test.by_email (email text PRIMARY KEY, ssn text);
             INSERT INTO custody_scan_test.by_email VALUES ('natural.key@example.org', '536-22-1234');",
        )
        .unwrap();
    for i in 1..=ROWS {
        let (ssn, card, email, order) = row(i);
        client
            .execute(
                "INSERT INTO custody_scan_test.customers VALUES ($1, $2, $3, $4, $5, '\\x00ff')",
                &[&(i as i32), &ssn, &card.parse::<i64>().unwrap(), &email, &order],
            )
            .unwrap();
    }
    // Trust authentication ignores the password: it is there to prove it is never shown.
    let url = "postgres://postgres:hunter2@127.0.0.1:5432/test";
    check(url, "custody_scan_test.customers");
    let (summary, found) = scan(url, None);
    let no_key =
        found.0.iter().find(|f| f.path.contains("no_key")).expect("the table without a key");
    assert!(no_key.path.contains("no_key.note#row=("), "rows located by ctid: {}", no_key.path);
    // A natural key (here an email) never names the row: the customer's value would show.
    let by_email: Vec<&str> =
        found.0.iter().filter(|f| f.path.contains("by_email")).map(|f| &*f.path).collect();
    assert!(
        !by_email.is_empty() && by_email.iter().all(|p| p.ends_with("#rownum=1")),
        "{by_email:?}"
    );
    let shown = format!(
        "{:?} {:?}",
        found.0.iter().map(|f| f.path.to_string()).collect::<Vec<_>>(),
        summary.columns
    );
    assert!(!shown.contains("hunter2"), "the password was shown");
    assert!(!shown.contains("postgres@"), "the user name was shown");
    client.batch_execute("DROP SCHEMA custody_scan_test CASCADE").unwrap();
}

#[test]
fn mariadb_columns_and_values() {
    use mysql::prelude::Queryable;
    let mut conn =
        mysql::Conn::new(mysql::Opts::from_url("mysql://root@127.0.0.1:3306/test").unwrap())
            .expect("MariaDB at 127.0.0.1:3306 (see .ci/run)");
    conn.query_drop(
        "DROP TABLE IF EXISTS custody_scan_customers;
         CREATE TABLE custody_scan_customers (id INT PRIMARY KEY, ssn VARCHAR(11), card BIGINT, email VARCHAR(80), order_no VARCHAR(40))",
    )
    .unwrap();
    let rows: Vec<(u64, String, i64, String, String)> = (1..=ROWS)
        .map(|i| {
            let (ssn, card, email, order) = row(i);
            (i, ssn, card.parse().unwrap(), email, order)
        })
        .collect();
    conn.exec_batch("INSERT INTO custody_scan_customers VALUES (?, ?, ?, ?, ?)", rows).unwrap();
    check("mysql://root@127.0.0.1:3306/test", "test.custody_scan_customers");
    conn.query_drop("DROP TABLE custody_scan_customers").unwrap();
}

#[test]
fn sqlite_file_columns_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, ssn TEXT, card INTEGER, email TEXT, order_no TEXT)")
        .unwrap();
    for i in 1..=ROWS {
        let (ssn, card, email, order) = row(i);
        conn.execute(
            "INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![i as i64, ssn, card.parse::<i64>().unwrap(), email, order],
        )
        .unwrap();
    }
    drop(conn);
    check(&format!("sqlite:{}", path.display()), "customers");
}

#[test]
fn unreachable_databases_fail_clearly_without_credentials() {
    let mut sink = Collect(Vec::new(), Vec::new());
    for url in [
        "postgres://admin:s3cret-pw@127.0.0.1:1/shop",
        "mysql://admin:s3cret-pw@127.0.0.1:1/shop",
        "sqlite:/nonexistent/s3cret-pw.db",
    ] {
        let err =
            scan_database(url, &DatabaseOptions::default(), &mut sink).unwrap_err().to_string();
        assert!(err.starts_with("cannot scan "), "{err}");
        if !url.starts_with("sqlite") {
            assert!(!err.contains("s3cret") && !err.contains("admin"), "{err}");
        }
    }
    assert_eq!(
        custody_scan::display_url("postgres://u:p@h:5432/db?sslmode=require"),
        "postgres://h:5432/db"
    );
}

/// Encrypted connections, checked against the server's own certificate (Debian's
/// snakeoil certificate, made for `localhost`): `require` encrypts, `verify-full` checks
/// the chain and the name, `verify-ca` the chain only; another authority and another name
/// are refused in plain words. (In database `postgres`: no other test changes it.)
#[test]
fn postgres_over_tls_checks_what_sslmode_says() {
    let mut client = postgres::Client::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        postgres::NoTls,
    )
    .expect("PostgreSQL at 127.0.0.1:5432 (see .ci/run)");
    let ssl: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(ssl, "on", "the PostgreSQL server must offer TLS for this test");
    let cert: String = client.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
    client
        .batch_execute(
            "DROP SCHEMA IF EXISTS custody_tls_test CASCADE; CREATE SCHEMA custody_tls_test;
             CREATE TABLE custody_tls_test.customers (id integer PRIMARY KEY, ssn text);
             INSERT INTO custody_tls_test.customers VALUES (1, '536-22-1234');
             INSERT INTO custody_tls_test.customers
               SELECT g, 'note ' || g FROM generate_series(2, 300000) g;",
        )
        .unwrap();
    // The server accepts plain connections too: watch the scan's own session from here
    // to see it is encrypted.
    let watched = std::thread::spawn(|| {
        let url = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=require&application_name=custody-tls-test";
        let mut sink = Collect(Vec::new(), Vec::new());
        let options = DatabaseOptions { sample: None, ..DatabaseOptions::default() };
        scan_database(url, &options, &mut sink).expect("the scan over TLS");
        sink
    });
    let mut encrypted = None;
    while !watched.is_finished() {
        let rows = client
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = 'custody-tls-test'",
                &[],
            )
            .unwrap();
        if let Some(row) = rows.first() {
            encrypted = Some(row.get::<_, bool>(0));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let found = watched.join().unwrap();
    assert!(found.0.iter().any(|f| f.path.contains("custody_tls_test.customers.ssn#row=1")));
    assert_eq!(encrypted, Some(true), "the scan's session was not seen encrypted");
    // A Unix socket (no host name, no TLS) still connects.
    let (_, found) = scan("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres", Some(10));
    assert!(found.0.iter().any(|f| f.path.contains("custody_tls_test.customers.ssn#row=1")));
    let reads = |url: &str| {
        let (_, found) = scan(url, None);
        assert!(
            found.0.iter().any(|f| f.path.contains("custody_tls_test.customers.ssn#row=1")),
            "{url}: {:?}",
            found.0.iter().map(|f| f.path.to_string()).collect::<Vec<_>>()
        );
    };
    let base = "postgres://postgres@127.0.0.1:5432/postgres";
    reads(&format!("{base}?sslmode=require"));
    reads(&format!("{base}?sslmode=verify-ca&sslrootcert={cert}"));
    reads(&format!(
        "postgres://postgres@localhost:5432/postgres?sslmode=verify-full&sslrootcert={cert}"
    ));
    let refused = |url: &str| {
        let mut sink = Collect(Vec::new(), Vec::new());
        scan_database(url, &DatabaseOptions::default(), &mut sink).unwrap_err().to_string()
    };
    // The certificate names localhost, not 127.0.0.1.
    let err = refused(&format!("{base}?sslmode=verify-full&sslrootcert={cert}"));
    assert!(err.contains("not for this host name"), "{err}");
    // An authority that did not sign the server's certificate.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(&other)
        .output()
        .expect("openssl (see .ci/run)");
    assert!(made.status.success());
    let err = refused(&format!(
        "postgres://postgres@localhost:5432/postgres?sslmode=verify-full&sslrootcert={}",
        other.display()
    ));
    assert!(err.contains("not signed by the authority"), "{err}");
    let err = refused(&format!("{base}?sslmode=verify-full"));
    assert!(err.contains("add sslrootcert"), "{err}");
    client.batch_execute("DROP SCHEMA custody_tls_test CASCADE").unwrap();
}
