//! Several `custody serve` nodes over one PostgreSQL (issue 12): the real binary, real HTTP,
//! the real PostgreSQL at 127.0.0.1:5432 (started by `.ci/run`; this fails, never skips,
//! when it is down). Any node serves any request; a node killed with SIGKILL under write
//! load loses no acknowledged write; the ledger stays one sequence and verifies.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

const PASS: &str = "correct horse battery staple";
const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

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

/// A fresh schema name, dropped (with its two schemas) when the test ends.
struct Schema(String);

impl Schema {
    fn new(name: &str) -> Self {
        Schema(format!("nodes_{name}_{}", std::process::id()))
    }

    fn drop_all(&self) {
        let mut c = postgres::Client::connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test",
            postgres::NoTls,
        )
        .expect("PostgreSQL at 127.0.0.1:5432 (started by .ci/run)");
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {0}_vault CASCADE; DROP SCHEMA IF EXISTS {0}_ledger CASCADE",
            self.0
        ))
        .unwrap();
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        self.drop_all();
    }
}

/// Copies a node's data directory (its configuration and keys) for another node.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if !entry.file_name().to_string_lossy().ends_with(".lock") {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(data: &Path) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_custody"))
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("CUSTODY_PASSPHRASE", PASS)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Node { child, url }
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// A GET; with a purpose, plain reads (limited per minute), without one masked reads.
fn get(url: &str, key: &str, purpose: Option<&str>) -> (u16, Value) {
    let mut request = agent().get(url).header("Authorization", format!("Bearer {key}"));
    if let Some(p) = purpose {
        request = request.header("X-Custody-Purpose", p);
    }
    let mut r = request.call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

#[test]
fn two_nodes_over_postgresql_serve_any_request_and_a_killed_node_loses_no_acknowledged_write() {
    let schema = Schema::new("kill");
    schema.drop_all();
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let out = custody(&a_dir, &["init", "--store", PG_URL, "--schema", &schema.0]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!a_dir.join("vault.db").exists() && !a_dir.join("ledger.db").exists());
    let owner = text(&out)
        .split_whitespace()
        .find(|w| w.starts_with("ck_"))
        .expect("the owner's key")
        .to_string();
    // A second init into the same schemas is refused, and changes nothing there.
    let again = custody(&dir.path().join("c"), &["init", "--store", PG_URL, "--schema", &schema.0]);
    assert!(!again.status.success(), "{}", text(&again));
    // The load below is 32 clients on one owner key: past the default per-key budgets.
    let config = std::fs::read_to_string(a_dir.join("config.toml")).unwrap();
    let config = config
        .replace("searches_per_minute = 300", "searches_per_minute = 1000000")
        .replace("writes_per_minute = 600", "writes_per_minute = 1000000");
    std::fs::write(a_dir.join("config.toml"), config).unwrap();
    copy_dir(&a_dir, &b_dir);

    let a = Node::start(&a_dir);
    let b = Node::start(&b_dir);
    // Any node serves any request: made on one, read on the other.
    let made: Value = agent()
        .post(&format!("{}/v1/collections/customers/records", a.url))
        .header("Authorization", format!("Bearer {owner}"))
        .send_json(json!({"fields": {"name": "Jane Sample", "email": "jane@example.com"}}))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let (status, read) = get(
        &format!("{}/v1/collections/customers/records/{id}", b.url),
        &owner,
        Some("customer_support"),
    );
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["fields"]["email"]["value"], "jane@example.com");

    // 32 clients, half on each node, create records; node A is killed mid-load.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..32)
        .map(|i| {
            let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
            let records = format!("{url}/v1/collections/customers/records");
            let (owner, acked, stop) = (owner.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = agent();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let body = json!({"fields": {"name": format!("Client {i} Number {n}"), "email": format!("c{i}n{n}@example.com")}});
                    let Ok(mut response) = agent
                        .post(&records)
                        .header("Authorization", format!("Bearer {owner}"))
                        .send_json(&body)
                    else {
                        return; // the node is gone
                    };
                    if response.status() == 201 {
                        let created: Value = response.body_mut().read_json().unwrap();
                        acked.lock().unwrap().push(created["id"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let at_kill = acked.lock().unwrap().len();
    // Node B goes on serving its clients after A is gone.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    drop(a);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > at_kill, "node B stopped serving when A was killed");
    assert!(acked.len() > 100, "only {} writes were acknowledged", acked.len());
    for id in &acked {
        let (status, body) =
            get(&format!("{}/v1/collections/customers/records/{id}", b.url), &owner, None);
        assert_eq!(status, 200, "acknowledged {id} is missing: {body}");
    }
    b.stop();

    // One ledger sequence from both nodes, which verifies, with a record.create per
    // acknowledged write.
    let verify = custody(&b_dir, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let ledger =
        custody_vault::layout::open_ledger(&b_dir, custody_ledger::LedgerOptions::default())
            .unwrap();
    let mut positions = 0;
    let mut creates = 0;
    for (i, item) in ledger.events(0).enumerate() {
        let (at, event) = item.unwrap();
        assert_eq!(at, i as u64, "one sequence");
        positions += 1;
        creates += usize::from(event.action == "record.create");
    }
    assert_eq!(positions, ledger.size().unwrap());
    assert!(
        creates > acked.len(),
        "{creates} create events for {} acknowledged writes",
        acked.len()
    );
    ledger.close();
    println!(
        "{} acknowledged creates over 2 nodes ({at_kill} before node A was killed), all present; the ledger verifies",
        acked.len()
    );
}

/// `custody store migrate`: an embedded installation moves into PostgreSQL with its records
/// and its ledger, checked before `config.toml` is switched; the SQLite files are left as
/// they were; a destination already in use, or a second move, is refused.
#[test]
fn an_embedded_installation_moves_into_postgresql_and_keeps_its_records_and_ledger() {
    let schema = Schema::new("move");
    schema.drop_all();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = custody(&data, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut ids = Vec::new();
    for (name, email) in [("Jane Sample", "jane@example.com"), ("Tom Other", "tom@example.org")] {
        let out = custody(
            &data,
            &["records", "add", "customers", &format!("name={name}"), &format!("email={email}")],
        );
        assert!(out.status.success(), "{}", text(&out));
        ids.push(
            text(&out)
                .split_whitespace()
                .find(|w| w.starts_with("rec_"))
                .expect("an id")
                .trim_end_matches(['.', ','])
                .to_string(),
        );
    }
    let vault_before = std::fs::read(data.join("vault.db")).unwrap();

    // A destination that already holds a vault is refused, and nothing is switched.
    let other = dir.path().join("other");
    let taken = custody(&other, &["init", "--store", PG_URL, "--schema", &schema.0]);
    assert!(taken.status.success(), "{}", text(&taken));
    let refused = custody(&data, &["store", "migrate", "--to", PG_URL, "--schema", &schema.0]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("already holds"), "{}", text(&refused));
    assert!(!std::fs::read_to_string(data.join("config.toml")).unwrap().contains("[store]"));
    // The attempt is in the ledger, and so is its failure.
    let ledger =
        custody_vault::layout::open_ledger(&data, custody_ledger::LedgerOptions::default())
            .unwrap();
    let migrations: Vec<custody_ledger::Outcome> = ledger
        .events(0)
        .map(|e| e.unwrap().1)
        .filter(|e| e.action == "vault.migrate")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(migrations, [custody_ledger::Outcome::Ok, custody_ledger::Outcome::Error]);
    ledger.close();
    schema.drop_all();

    let moved = custody(&data, &["store", "migrate", "--to", PG_URL, "--schema", &schema.0]);
    assert!(moved.status.success(), "{}", text(&moved));
    assert!(text(&moved).contains("Copied 2 records"), "{}", text(&moved));
    assert!(std::fs::read_to_string(data.join("config.toml")).unwrap().contains("[store]"));
    assert_eq!(
        std::fs::read(data.join("vault.db")).unwrap(),
        vault_before,
        "the source is untouched"
    );
    // The records are read from PostgreSQL now, and the ledger there verifies.
    std::fs::rename(data.join("vault.db"), dir.path().join("vault.db.kept")).unwrap();
    for (id, email) in ids.iter().zip(["jane@example.com", "tom@example.org"]) {
        let out = custody(
            &data,
            &["records", "show", "customers", id, "--purpose", "customer_support", "--reveal"],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(email), "{}", text(&out));
    }
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let again = custody(&data, &["store", "migrate", "--to", PG_URL, "--schema", &schema.0]);
    assert!(!again.status.success(), "{}", text(&again));
}
