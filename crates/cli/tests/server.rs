//! `custody serve` end to end: the real binary, real HTTP, a real SQLite data directory.
//! Sealing and unsealing, the role × field × purpose matrix, erasure, tampering, bad
//! requests, no plaintext on disk or in the logs, and a SIGKILL under write load.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use custody_vault::{Config, ReadMode};
use serde_json::{Value, json};

const PASS: &str = "correct horse battery staple";

fn custody(data: &Path, args: &[&str]) -> Output {
    custody_with(data, args, &[])
}

/// Every ledger event of a data directory (the server stopped), as its canonical JSON.
fn ledger_events(data: &Path) -> Vec<String> {
    let ledger =
        custody_ledger::Ledger::open(data, custody_ledger::LedgerOptions::default()).unwrap();
    (0..ledger.size().unwrap())
        .map(|i| String::from_utf8_lossy(&ledger.leaf(i).unwrap()).into_owned())
        .collect()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn credential(out: &str) -> String {
    out.split_whitespace().find(|w| w.starts_with("ck_")).expect("a key in the output").into()
}

/// `custody init`; returns the owner's API key and the recovery shares.
fn init(data: &Path) -> (String, Vec<String>) {
    let out = custody(data, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    // Without --kit, the kit is printed, never written into the data directory.
    assert!(!data.join("recovery-kit.txt").exists());
    let kit = String::from_utf8_lossy(&out.stdout).into_owned();
    let shares = kit
        .lines()
        .filter(|l| l.starts_with("custody-share"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    (credential(&String::from_utf8_lossy(&out.stdout)), shares)
}

fn create_key(data: &Path, name: &str, role: &str) -> String {
    let out = custody(data, &["keys", "create", "--name", name, "--role", role]);
    assert!(out.status.success(), "{}", text(&out));
    credential(&String::from_utf8_lossy(&out.stdout))
}

/// A running `custody serve` on a free port; its standard error is collected.
struct Server {
    child: Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(data: &Path, unsealed: bool) -> Server {
        Self::start_with(data, unsealed, &["--listen", "127.0.0.1:0"])
    }

    fn start_with(data: &Path, unsealed: bool, args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
        cmd.arg("--data-dir").arg(data).arg("serve").args(args);
        if unsealed {
            cmd.env("CUSTODY_PASSPHRASE", PASS);
        } else {
            cmd.env_remove("CUSTODY_PASSPHRASE");
        }
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Server { child, url, log }
    }

    /// Stops with SIGTERM (graceful) and waits.
    fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP call; returns the status and the JSON body.
fn call(
    method: &str,
    url: &str,
    key: Option<&str>,
    purpose: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    if let Some(p) = purpose {
        req = req.header("X-Custody-Purpose", p);
    }
    let mut response = match body {
        Some(b) => agent
            .run(req.header("Content-Type", "application/json").body(b.to_string()).unwrap())
            .unwrap(),
        None => agent.run(req.body(()).unwrap()).unwrap(),
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn jane() -> Value {
    json!({"fields": {
        "name": "Jane Quinton-Doe",
        "email": "Jane.Quinton@Example.com",
        "phone": "+1 415 555 0134",
        "address": "742 Evergreen Terrace, Apt 2, Springfield, OR 97403, US",
        "date_of_birth": "1984-03-09",
        "ssn": "219-44-7321",
        "card_number": "4539 5260 1815 9083",
        "card_expiry": "07/29",
        "notes": "prefers morning deliveries"
    }})
}

fn health(url: &str) -> String {
    call("GET", &format!("{url}/v1/health"), None, None, None).1["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_sealed_server_refuses_data_until_unsealed_and_one_share_is_not_enough() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, shares) = init(&data);
    assert_eq!(shares.len(), 3);
    let server = Server::start(&data, false);
    let url = &server.url;
    assert_eq!(health(url), "sealed");
    let records = format!("{url}/v1/collections/customers/records");
    let (status, body) = call("POST", &records, Some(&owner), None, Some(&jane()));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "sealed");
    let unseal = format!("{url}/v1/sys/unseal");
    let (status, body) =
        call("POST", &unseal, None, None, Some(&json!({"passphrase": "wrong passphrase!!"})));
    assert_eq!(status, 403, "{body}");
    let (status, _) = call("POST", &unseal, None, None, Some(&json!({"shares": [shares[0]]})));
    assert_eq!(status, 403);
    assert_eq!(health(url), "sealed");
    let (status, body) =
        call("POST", &unseal, None, None, Some(&json!({"shares": [shares[0], shares[2]]})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(health(url), "ready");
    let (status, body) = call("POST", &records, Some(&owner), None, Some(&jane()));
    assert_eq!(status, 201, "{body}");
    // `custody unseal` against an already unsealed server is fine.
    let out = custody(&data, &["unseal", "--url", url]);
    assert!(out.status.success(), "{}", text(&out));
    let log = server.stop();
    // Attempts are in the ledger: two refused (`auth.failed`, one each), one accepted (the
    // last call found it open).
    let events = ledger_events(&data);
    let unseals: Vec<&String> = events.iter().filter(|e| e.contains("sys.unseal")).collect();
    assert_eq!(unseals.len(), 1, "{events:?}");
    let refused: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    assert_eq!(refused.len(), 2, "{events:?}");
    assert_eq!(refused[0]["details"]["reason"], "wrong_passphrase");
    assert_eq!(refused[1]["details"]["reason"], "wrong_shares");
    assert!(refused.iter().all(|e| e["details"]["via"] == "unseal" && e["source"].is_string()));
    // No fingerprint of a passphrase: it would be a fast guessing oracle.
    assert!(refused.iter().all(|e| e["details"].get("fingerprint").is_none()));
    assert!(!log.contains(PASS));
}

#[test]
fn every_role_field_and_purpose_reads_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let mut keys = BTreeMap::from([("owner".to_string(), owner.clone())]);
    for role in ["staff", "app", "auditor"] {
        keys.insert(role.to_string(), create_key(&data, role, role));
    }
    let config = Config::default_config();
    let server = Server::start(&data, true);
    let url = &server.url;
    let (status, created) = call(
        "POST",
        &format!("{url}/v1/collections/customers/records"),
        Some(&owner),
        Some("billing"),
        Some(&jane()),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let record = format!("{url}/v1/collections/customers/records/{id}");
    // The plain values, as the owner reads them for billing.
    let (_, plain) = call("GET", &record, Some(&owner), Some("billing"), None);
    let mut purposes: Vec<Option<&str>> = vec![None];
    purposes.extend(config.purposes.iter().map(|p| Some(p.as_str())));
    let mut cells = 0;
    for (role, key) in &keys {
        for purpose in &purposes {
            let (status, body) = call("GET", &record, Some(key), *purpose, None);
            let fields = &config.collections["customers"].fields;
            if fields
                .iter()
                .all(|f| config.decide(role, "customers", &f.name, *purpose) == ReadMode::None)
            {
                // A role that sees no field is refused outright (not shown an empty record).
                assert_eq!(status, 403, "{role} {purpose:?}: {body}");
                cells += fields.len();
                continue;
            }
            assert_eq!(status, 200, "{role} {purpose:?}: {body}");
            for field in fields {
                let expected = config.decide(role, "customers", &field.name, *purpose);
                let got = &body["fields"][&field.name];
                assert_eq!(got["mode"], expected.as_str(), "{role} {purpose:?} {}", field.name);
                let real = &plain["fields"][&field.name]["value"];
                match expected {
                    ReadMode::Plain => assert_eq!(&got["value"], real),
                    ReadMode::None => assert!(got["value"].is_null()),
                    _ => assert_ne!(&got["value"], real, "{role} {} leaked", field.name),
                }
                cells += 1;
            }
        }
    }
    // Nine fields, the address one of them in six parts.
    assert_eq!(cells, 4 * 5 * 14);
    // Spot checks of the policy the issue names.
    let (_, app) = call("GET", &record, Some(&keys["app"]), Some("order_fulfillment"), None);
    assert_eq!(app["fields"]["card_number"]["mode"], "token");
    assert_eq!(app["fields"]["ssn"]["mode"], "token");
    let (_, staff) = call("GET", &record, Some(&keys["staff"]), Some("customer_support"), None);
    assert_eq!(staff["fields"]["phone"]["mode"], "plain");
    assert_eq!(staff["fields"]["email"]["mode"], "masked");
    let (status, _) = call("GET", &record, Some(&keys["auditor"]), Some("billing"), None);
    assert_eq!(status, 403, "the auditor reads no customer data");
    // Standalone tokens: only a role that reads the field plain for the purpose (else the
    // app could test guesses of card numbers against the tokens it holds).
    let tokens = format!("{url}/v1/tokens");
    let card = json!({"kind": "card_number", "value": "4539526018159083"});
    assert_eq!(
        call("POST", &tokens, Some(&keys["app"]), Some("order_fulfillment"), Some(&card)).0,
        403
    );
    assert_eq!(call("POST", &tokens, Some(&owner), None, Some(&card)).0, 403);
    let (status, standalone) = call("POST", &tokens, Some(&owner), Some("billing"), Some(&card));
    assert_eq!(status, 201, "{standalone}");
    // Unknown field names are refused without being echoed (or recorded).
    let (status, body) = call(
        "POST",
        &format!("{url}/v1/collections/customers/records"),
        Some(&owner),
        None,
        Some(&json!({"fields": {"name": "A B", "jane@secret.example": "x"}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("jane@secret"), "{body}");
    let (status, body) = call(
        "GET",
        &format!("{url}/v1/collections/customers/records?jane@secret.example=1"),
        Some(&owner),
        None,
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("jane@secret"), "{body}");
    // A role that may reveal nothing learns nothing about whether a token exists.
    let reveal_none = json!({"token": "tok_DOESNOTEXIST"});
    assert_eq!(
        call(
            "POST",
            &format!("{url}/v1/tokens/reveal"),
            Some(&keys["auditor"]),
            Some("billing"),
            Some(&reveal_none)
        )
        .0,
        403
    );
    assert_eq!(
        call(
            "POST",
            &format!("{url}/v1/tokens/reveal"),
            Some(&owner),
            Some("billing"),
            Some(&reveal_none)
        )
        .0,
        404
    );

    // What a role may do at all.
    let records = format!("{url}/v1/collections/customers/records");
    let (status, _) = call("POST", &records, Some(&keys["auditor"]), None, Some(&jane()));
    assert_eq!(status, 403);
    let (status, _) = call("DELETE", &record, Some(&keys["staff"]), None, None);
    assert_eq!(status, 403);
    let (status, _) = call(
        "GET",
        &format!("{records}?email=jane.quinton@example.com"),
        Some(&keys["auditor"]),
        None,
        None,
    );
    assert_eq!(status, 403);
    let (status, found) = call(
        "GET",
        &format!("{records}?email=JANE.QUINTON@example.com"),
        Some(&keys["app"]),
        None,
        None,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["count"], 1);
    // Exports: only with the purpose, only for a role that reads all of it plain.
    let export = format!("{record}/export");
    assert_eq!(call("GET", &export, Some(&owner), None, None).0, 403);
    assert_eq!(
        call("GET", &export, Some(&keys["staff"]), Some("data_subject_request"), None).0,
        403
    );
    let (status, exported) = call("GET", &export, Some(&owner), Some("data_subject_request"), None);
    assert_eq!(status, 200, "{exported}");
    assert_eq!(exported["fields"]["ssn"]["value"], "219-44-7321");
    // Token reveal: needs a purpose, and a role that reads the field plain for it.
    let card_token = created["tokens"]["card_number"].as_str().unwrap();
    assert_ne!(card_token, "4539526018159083");
    let reveal = format!("{url}/v1/tokens/reveal");
    let body = json!({"token": card_token});
    assert_eq!(call("POST", &reveal, Some(&owner), None, Some(&body)).0, 403);
    assert_eq!(
        call("POST", &reveal, Some(&keys["app"]), Some("order_fulfillment"), Some(&body)).0,
        403
    );
    let (status, revealed) = call("POST", &reveal, Some(&owner), Some("billing"), Some(&body));
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["value"], "4539526018159083");
    // Unknown purpose, unknown collection, no key, a bad key.
    assert_eq!(call("GET", &record, Some(&owner), Some("curiosity"), None).0, 400);
    assert_eq!(
        call("GET", &format!("{url}/v1/collections/secrets/records/x"), Some(&owner), None, None).0,
        404
    );
    assert_eq!(
        call("GET", &format!("{url}/v1/collections/_tokens/records/x"), Some(&owner), None, None).0,
        404
    );
    assert_eq!(call("GET", &record, None, None, None).0, 401);
    let last = if owner.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &owner[..owner.len() - 1]);
    assert_eq!(call("GET", &record, Some(&forged), None, None).0, 401);
    server.stop();
}

#[test]
fn erasure_leaves_nothing_to_decrypt_search_or_reveal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let server = Server::start(&data, true);
    let url = &server.url;
    let records = format!("{url}/v1/collections/customers/records");
    let (_, created) = call("POST", &records, Some(&owner), Some("billing"), Some(&jane()));
    let id = created["id"].as_str().unwrap().to_string();
    let (_, other) = call(
        "POST",
        &records,
        Some(&owner),
        None,
        Some(&json!({"fields": {"name": "Sam Other", "email": "sam@example.org"}})),
    );
    let order = json!({"fields": {"customer_id": id, "items": "2 mugs", "amount": "19.50"}});
    let (status, order) = call(
        "POST",
        &format!("{url}/v1/collections/orders/records"),
        Some(&owner),
        None,
        Some(&order),
    );
    assert_eq!(status, 201, "{order}");
    let (status, exported) = call(
        "GET",
        &format!("{records}/{id}/export"),
        Some(&owner),
        Some("data_subject_request"),
        None,
    );
    assert_eq!(status, 200, "{exported}");
    assert_eq!(exported["linked"]["orders"][0]["fields"]["items"]["value"], "2 mugs");

    // The same card tokenised on its own gives the customer's (deterministic) token.
    let card_token = created["tokens"]["card_number"].as_str().unwrap().to_string();
    let (status, standalone) = call(
        "POST",
        &format!("{url}/v1/tokens"),
        Some(&owner),
        Some("billing"),
        Some(&json!({"kind": "card_number", "value": "4539526018159083"})),
    );
    assert_eq!(status, 201, "{standalone}");
    assert_eq!(standalone["token"], card_token.as_str());
    let (status, erased) = call("DELETE", &format!("{records}/{id}"), Some(&owner), None, None);
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["linked_erased"], 1);
    assert_eq!(call("GET", &format!("{records}/{id}"), Some(&owner), None, None).0, 404);
    assert_eq!(call("DELETE", &format!("{records}/{id}"), Some(&owner), None, None).0, 404);
    let (_, found) =
        call("GET", &format!("{records}?email=jane.quinton@example.com"), Some(&owner), None, None);
    assert_eq!(found["count"], 0);
    let card_token = created["tokens"]["card_number"].as_str().unwrap();
    let (status, _) = call(
        "POST",
        &format!("{url}/v1/tokens/reveal"),
        Some(&owner),
        Some("billing"),
        Some(&json!({"token": card_token})),
    );
    assert_eq!(status, 404);
    // The other customer is untouched.
    let other_id = other["id"].as_str().unwrap();
    assert_eq!(call("GET", &format!("{records}/{other_id}"), Some(&owner), None, None).0, 200);
    server.stop();

    // The raw database: no row of the customer or their order is left.
    let db = rusqlite::Connection::open(data.join("vault.db")).unwrap();
    let order_id = order["id"].as_str().unwrap();
    for table in ["deks", "fields", "blind", "tokens"] {
        for rec in [id.as_str(), order_id] {
            let n: i64 = db
                .query_row(&format!("SELECT COUNT(*) FROM {table} WHERE record = ?1"), [rec], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(n, 0, "{table} still holds {rec}");
        }
    }
    let erasures = ledger_events(&data).iter().filter(|e| e.contains("record.erase")).count();
    assert_eq!(erasures, 2, "the erase and the refused second erase are both recorded");
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A value and its common encodings: as stored after normalisation, lower case, hex,
/// base64 and UTF-16.
fn encodings(value: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut out = vec![value.as_bytes().to_vec(), value.to_lowercase().into_bytes()];
    out.push(custody_store::hex::encode(value.as_bytes()).into_bytes());
    out.push(base64::engine::general_purpose::STANDARD.encode(value).into_bytes());
    out.push(value.encode_utf16().flat_map(u16::to_le_bytes).collect());
    out
}

#[test]
fn no_customer_value_is_in_the_data_directory_or_the_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let server = Server::start(&data, true);
    let url = &server.url;
    let records = format!("{url}/v1/collections/customers/records");
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (status, created) = call("POST", &records, Some(&owner), None, Some(&jane()));
        assert_eq!(status, 201);
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    // Reads, plain reads, searches and reveals too: none may leave a value behind.
    for id in &ids[..5] {
        call("GET", &format!("{records}/{id}"), Some(&owner), Some("billing"), None);
    }
    call(
        "GET",
        &format!("{records}?email=jane.quinton@example.com"),
        Some(&owner),
        Some("billing"),
        None,
    );
    call(
        "POST",
        &format!("{url}/v1/tokens"),
        Some(&owner),
        Some("billing"),
        Some(&json!({"kind": "ssn", "value": "284-73-1956"})),
    );
    // A malformed body that contains a value must not be echoed.
    let (status, bad) = call(
        "POST",
        &records,
        Some(&owner),
        None,
        Some(
            &json!({"fields": {"ssn": "219-44-7321", "card_number": 4_539_526_018_159_083_u64, "notes": ["x"]}}),
        ),
    );
    assert_eq!(status, 400);
    assert!(!bad.to_string().contains("219-44-7321"), "{bad}");
    let log = server.stop();
    let secrets = [
        "Jane Quinton-Doe",
        "jane.quinton@example.com",
        "+14155550134",
        "415 555 0134",
        "742 Evergreen Terrace",
        "1984-03-09",
        "219-44-7321",
        "219447321",
        "4539526018159083",
        "4539 5260 1815 9083",
        "07/29",
        "prefers morning deliveries",
        "284-73-1956",
    ];
    let mut checked = 0;
    for file in files(&data) {
        if file.ends_with("recovery-kit.txt") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        for secret in secrets {
            for encoded in encodings(secret) {
                assert!(
                    !bytes.windows(encoded.len()).any(|w| w == encoded.as_slice()),
                    "{secret} found in {}",
                    file.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "the data directory was scanned ({checked} checks)");
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in the server log:\n{log}");
    }
    assert!(log.contains("POST /v1/collections/{collection}/records 201"), "{log}");
}

#[test]
fn malformed_requests_get_clear_errors_and_limits_apply() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    // A small reveal limit and body limit, to reach them.
    let config = std::fs::read_to_string(data.join("config.toml")).unwrap();
    let config = config
        .replace("reveals_per_minute = 600", "reveals_per_minute = 3")
        .replace("max_body_bytes = 65536", "max_body_bytes = 2048");
    std::fs::write(data.join("config.toml"), config).unwrap();
    let server = Server::start(&data, true);
    let url = &server.url;
    let records = format!("{url}/v1/collections/customers/records");
    let (_, created) = call("POST", &records, Some(&owner), None, Some(&jane()));
    let record = format!("{records}/{}", created["id"].as_str().unwrap());

    let (status, body) = call("POST", &records, Some(&owner), None, Some(&json!({"nope": 1})));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")));
    let (status, body) = call(
        "POST",
        &records,
        Some(&owner),
        None,
        Some(&json!({"fields": {"email": "not an email"}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("not an email"));
    let (status, body) = call(
        "POST",
        &records,
        Some(&owner),
        None,
        Some(&json!({"fields": {"name": "x".repeat(4000)}})),
    );
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("too_large")), "{body}");
    let (status, _) = call(
        "PATCH",
        &format!("{records}/rec_nothing"),
        Some(&owner),
        None,
        Some(&json!({"fields": {"name": "A B"}})),
    );
    assert_eq!(status, 404);
    let (status, body) = call("GET", &format!("{url}/v1/nothing"), Some(&owner), None, None);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    // Three plain reads a minute, then 429; masked reads are not limited.
    for _ in 0..3 {
        assert_eq!(call("GET", &record, Some(&owner), Some("billing"), None).0, 200);
    }
    let (status, body) = call("GET", &record, Some(&owner), Some("billing"), None);
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert_eq!(call("GET", &record, Some(&owner), None, None).0, 200);
    // A changed field reads back changed.
    let (_, before) = call("GET", &record, Some(&owner), None, None);
    let (status, body) = call(
        "PATCH",
        &record,
        Some(&owner),
        None,
        Some(&json!({"fields": {"phone": "+44 20 7946 0958"}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["written"], json!(["phone"]));
    let (_, changed) = call("GET", &record, Some(&owner), None, None);
    assert_eq!(changed["fields"]["phone"]["mode"], "masked");
    assert_ne!(changed["fields"]["phone"]["value"], before["fields"]["phone"]["value"]);
    // The OpenAPI document lists every route the server has.
    let (status, doc) = call("GET", &format!("{url}/v1/openapi.json"), None, None, None);
    assert_eq!(status, 200);
    for path in [
        "/v1/health",
        "/v1/sys/unseal",
        "/v1/sys/rotate",
        "/v1/collections/{collection}/records",
        "/v1/collections/{collection}/records/{id}",
        "/v1/collections/{collection}/records/{id}/export",
        "/v1/tokens",
        "/v1/tokens/reveal",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    // A revoked key stops working at once; the ledger lock keeps `keys` away from the data
    // directory while serving, and the error names the command that works instead.
    let out = custody(&data, &["keys", "revoke", "owner"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("custody keys revoke owner --server"), "{}", text(&out));
    server.stop();
    let out = custody(&data, &["keys", "revoke", "owner"]);
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::start(&data, true);
    let record = format!(
        "{}/v1/collections/customers/records/{}",
        server.url,
        created["id"].as_str().unwrap()
    );
    assert_eq!(call("GET", &record, Some(&owner), None, None).0, 401);
    server.stop();
    // The refused fourth plain read is in the ledger.
    let limited = ledger_events(&data)
        .iter()
        .filter(|e| e.contains("limit.reveal") && e.contains("denied"))
        .count();
    assert_eq!(limited, 1);
}

#[test]
fn moved_or_altered_ciphertext_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    let (_, a) = call("POST", &records, Some(&owner), None, Some(&jane()));
    let (_, b) = call("POST", &records, Some(&owner), None, Some(&jane()));
    server.stop();
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let db = rusqlite::Connection::open(data.join("vault.db")).unwrap();
    // B's notes replaced by A's envelope; A's name altered by one bit.
    db.execute(
        "UPDATE fields SET envelope = (SELECT envelope FROM fields WHERE record = ?1 AND field = 'notes') WHERE record = ?2 AND field = 'notes'",
        [a, b],
    )
    .unwrap();
    let mut name: Vec<u8> = db
        .query_row("SELECT envelope FROM fields WHERE record = ?1 AND field = 'name'", [a], |r| {
            r.get(0)
        })
        .unwrap();
    let last = name.len() - 1;
    name[last] ^= 1;
    db.execute(
        "UPDATE fields SET envelope = ?1 WHERE record = ?2 AND field = 'name'",
        rusqlite::params![name, a],
    )
    .unwrap();
    drop(db);
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    for id in [a, b] {
        let (status, body) = call("GET", &format!("{records}/{id}"), Some(&owner), None, None);
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "integrity");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("vault cryptography"),
            "{body}"
        );
    }
    server.stop();
}

#[test]
fn a_server_killed_under_write_load_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    raise_limits(&data);
    let mut server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (records, owner, acked) = (records.clone(), owner.clone(), acked.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let body = json!({"fields": {"name": format!("Writer {i} Number {n}"), "email": format!("w{i}n{n}@example.com")}});
                    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
                    let Ok(mut response) = agent
                        .post(&records)
                        .header("Authorization", format!("Bearer {owner}"))
                        .send_json(&body)
                    else {
                        return; // the server is gone
                    };
                    if response.status() == 201 {
                        let created: Value = response.body_mut().read_json().unwrap();
                        acked.lock().unwrap().push(created["id"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    drop(server);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "only {} writes were acknowledged", acked.len());
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    for id in &acked {
        let (status, body) = call("GET", &format!("{records}/{id}"), Some(&owner), None, None);
        assert_eq!(status, 200, "acknowledged {id} is missing: {body}");
    }
    server.stop();
    let verify = custody(&data, &["ledger", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    println!("{} acknowledged creates, all present after SIGKILL", acked.len());
}

fn custody_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.arg("--data-dir").arg(data).args(args).env("CUSTODY_PASSPHRASE", PASS);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run custody")
}

#[test]
fn a_csv_import_previews_masked_reports_bad_rows_and_the_client_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "Full Name,E-mail,Phone,Card,Favourite colour\n\
         Ada Lovelace,ada@example.com,+44 20 7946 0958,4539 5260 1815 9083,green\n\
         Bad Mail,not-an-email,,,blue\n\
         ,nameless@example.com,,,red\n\
         \"Grace Hopper\",grace@example.org,+1 415 555 0134,,\"navy, dark\"\n",
    )
    .unwrap();
    let dry = custody(&data, &["import", csv.to_str().unwrap()]);
    let out = text(&dry);
    assert!(dry.status.success(), "{out}");
    assert!(out.contains("Full Name") && out.contains("→ name"), "{out}");
    assert!(out.contains("Favourite colour") && out.contains("left out"), "{out}");
    assert!(out.contains("line 3: field 'email'"), "{out}");
    assert!(out.contains("line 4: field 'name': is required"), "{out}");
    assert!(out.contains("Nothing was imported"), "{out}");
    for value in ["ada@example.com", "4539 5260 1815 9083", "Lovelace", "not-an-email"] {
        assert!(!out.contains(value), "{value} shown in the preview:\n{out}");
    }
    let applied = custody(&data, &["import", csv.to_str().unwrap(), "--apply"]);
    let out = text(&applied);
    assert!(applied.status.success(), "{out}");
    assert!(out.contains("Imported 2 record(s)"), "{out}");
    assert!(out.contains("2 row(s) left out"), "{out}");
    assert!(out.contains("shred -u"), "{out}");
    assert!(!out.contains("ada@example.com"), "{out}");
    // A file without a header line is refused without showing its first row.
    let headless = dir.path().join("headless.csv");
    std::fs::write(&headless, "Ada Lovelace,ada@example.com,+44 20 7946 0958\n").unwrap();
    let out = custody(&data, &["import", headless.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("looks like customer data") && !text(&out).contains("ada@"),
        "{}",
        text(&out)
    );
    // A bad --map is refused before anything is read.
    let bad_map = custody(&data, &["import", csv.to_str().unwrap(), "--map", "Nope=email"]);
    assert_eq!(bad_map.status.code(), Some(2));

    let server = Server::start(&data, true);
    let key = [("CUSTODY_API_KEY", owner.as_str()), ("CUSTODY_URL", server.url.as_str())];
    let found =
        custody_with(&data, &["records", "search", "customers", "email", "ADA@example.com"], &key);
    let out = text(&found);
    assert!(found.status.success(), "{out}");
    assert!(!out.contains("ada@example.com"), "masked without a purpose:\n{out}");
    let id = out.lines().next().unwrap().trim().to_string();
    assert!(id.starts_with("rec_"), "{out}");
    let plain =
        custody_with(&data, &["records", "get", "customers", &id, "--purpose", "billing"], &key);
    assert!(text(&plain).contains("ada@example.com"), "{}", text(&plain));
    let order = call(
        "POST",
        &format!("{}/v1/collections/orders/records", server.url),
        Some(&owner),
        None,
        Some(&json!({"fields": {"customer_id": id, "items": "1 teapot", "amount": "24.00"}})),
    );
    assert_eq!(order.0, 201, "{}", order.1);
    let export_file = dir.path().join("export.json");
    let export = custody_with(
        &data,
        &["records", "export", "customers", &id, "--out", export_file.to_str().unwrap()],
        &key,
    );
    assert!(export.status.success(), "{}", text(&export));
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&export_file).unwrap()).unwrap();
    assert_eq!(exported["fields"]["email"]["value"], "ada@example.com");
    assert_eq!(exported["linked"]["orders"][0]["fields"]["items"]["value"], "1 teapot");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let erase = custody_with(&data, &["records", "erase", "customers", &id], &key);
    assert!(erase.status.success(), "{}", text(&erase));
    assert!(text(&erase).contains("1 linked record"), "{}", text(&erase));
    let gone = custody_with(&data, &["records", "get", "customers", &id], &key);
    assert_eq!(gone.status.code(), Some(2));
    assert!(text(&gone).contains("HTTP 404"), "{}", text(&gone));
    server.stop();
    // Retention on demand; what it removed goes to the ledger with the counts.
    let retention = custody(&data, &["retention", "run"]);
    assert!(text(&retention).contains("Retention applied: 0 record(s)"), "{}", text(&retention));
    let last = ledger_events(&data).pop().unwrap();
    assert!(last.contains("retention.done") && last.contains("records_erased"), "{last}");
}

#[test]
fn keys_rotate_online_through_the_server_for_an_admin_role_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let staff = create_key(&data, "staff", "staff");
    let server = Server::start(&data, true);
    let url = &server.url;
    let records = format!("{url}/v1/collections/customers/records");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            call("POST", &records, Some(&owner), None, Some(&jane())).1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let rotate = format!("{url}/v1/sys/rotate");
    assert_eq!(call("POST", &rotate, Some(&staff), None, None).0, 403);
    let (status, rotated) = call("POST", &rotate, Some(&owner), None, None);
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["rewrapped"], 3);
    assert_eq!(rotated["kek_version"], 2);
    // Records from before and after read as before.
    ids.push(
        call("POST", &records, Some(&owner), None, Some(&jane())).1["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    for id in &ids {
        let (status, body) =
            call("GET", &format!("{records}/{id}"), Some(&owner), Some("billing"), None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["fields"]["ssn"]["value"], "219-44-7321");
    }
    server.stop();
    // Only the new key-encryption key is left.
    let db = rusqlite::Connection::open(data.join("vault.db")).unwrap();
    let versions: Vec<u32> = db
        .prepare("SELECT version FROM keks")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, vec![2]);
}

#[test]
fn serve_speaks_tls_when_given_a_certificate_and_warns_without_it_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) makes the test certificate");
    assert!(made.status.success(), "{}", text(&made));
    let server = Server::start_with(
        &data,
        false,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let https = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&cert)
        .arg(format!("{}/v1/health", server.url))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&https.stdout),
        r#"{"status":"sealed"}"#,
        "{}",
        text(&https)
    );
    // openssl's default self-signed certificate says CA:TRUE, which rustls will not take
    // as a server's own: the command line says how to make one it will.
    let as_ca =
        custody(&data, &["unseal", "--url", &server.url, "--ca-cert", cert.to_str().unwrap()]);
    assert_eq!(as_ca.status.code(), Some(2), "{}", text(&as_ca));
    assert!(text(&as_ca).contains("basicConstraints=critical,CA:FALSE"), "{}", text(&as_ca));
    // Plain HTTP on the TLS port gets no answer.
    let plain = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("{}/v1/health", server.url.replace("https://", "http://")))
        .output()
        .expect("curl");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("sealed"));
    server.stop();
    // A bad key file is a clear error, and nothing listens.
    let bad = custody(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("cannot use the TLS certificate"), "{}", text(&bad));
    // Off loopback without TLS: a loud warning.
    let open = Server::start_with(&data, false, &["--listen", "0.0.0.0:0"]);
    std::thread::sleep(Duration::from_millis(300));
    let log = open.stop();
    assert!(log.contains("WARNING: listening on 0.0.0.0"), "{log}");
}

/// Review item 15: the command line is a client of an `https://` server. It unseals and
/// reads through TLS when told which certificate to trust, refuses a certificate it cannot
/// check, and never sends a key in the clear to a server off this machine.
#[test]
fn review_15_the_command_line_speaks_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) makes the test certificate");
    assert!(made.status.success(), "{}", text(&made));
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = Server::start_with(
        &data,
        false,
        &["--listen", "127.0.0.1:0", "--tls-cert", cert_arg, "--tls-key", key_arg],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let url = server.url.as_str();

    // Not told which certificate to trust: a clear refusal, and the server stays sealed.
    let untrusted = custody_with(&data, &["unseal", "--url", url], &[("CUSTODY_PASSPHRASE", PASS)]);
    assert_eq!(untrusted.status.code(), Some(2), "{}", text(&untrusted));
    assert!(text(&untrusted).contains("--ca-cert"), "{}", text(&untrusted));
    assert!(!text(&untrusted).contains(PASS), "{}", text(&untrusted));
    let trusted = ureq::tls::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[trusted]))
                .build(),
        )
        .http_status_as_error(false)
        .build()
        .new_agent();
    let health = |agent: &ureq::Agent| -> String {
        agent.get(format!("{url}/v1/health")).call().unwrap().body_mut().read_to_string().unwrap()
    };
    assert_eq!(health(&agent), r#"{"status":"sealed"}"#);

    // Told: it unseals, and a record written over the API is read back from the command line.
    let unsealed = custody_with(
        &data,
        &["unseal", "--url", url, "--ca-cert", cert_arg],
        &[("CUSTODY_PASSPHRASE", PASS)],
    );
    assert!(unsealed.status.success(), "{}", text(&unsealed));
    assert_ne!(health(&agent), r#"{"status":"sealed"}"#);
    let created = agent
        .post(format!("{url}/v1/collections/customers/records"))
        .header("Authorization", format!("Bearer {owner}"))
        .send_json(json!({"fields": {"name": "Ada Lovelace", "email": "ada@example.com"}}))
        .unwrap()
        .body_mut()
        .read_json::<Value>()
        .unwrap();
    let id = created["id"].as_str().expect("a record id").to_string();
    let env = [("CUSTODY_API_KEY", owner.as_str()), ("CUSTODY_CA_CERT", cert_arg)];
    let got = custody_with(&data, &["records", "get", "customers", &id, "--url", url], &env);
    assert!(got.status.success(), "{}", text(&got));
    assert!(text(&got).contains("email"), "{}", text(&got));
    assert!(!text(&got).contains("ada@example.com"), "masked without a purpose: {}", text(&got));

    // A file that holds no certificate is a clear error, not a silent fallback.
    let wrong = custody_with(
        &data,
        &["records", "get", "customers", &id, "--url", url, "--ca-cert", key_arg],
        &[("CUSTODY_API_KEY", owner.as_str())],
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(text(&wrong).contains("holds no certificate"), "{}", text(&wrong));

    // Plain HTTP to a server that is not on this machine: refused before anything is sent.
    let far = custody_with(
        &data,
        &["records", "get", "customers", &id, "--url", "http://192.0.2.7:8731"],
        &[("CUSTODY_API_KEY", owner.as_str())],
    );
    assert_eq!(far.status.code(), Some(2), "{}", text(&far));
    assert!(text(&far).contains("refusing to send"), "{}", text(&far));
    assert!(!text(&far).contains(&owner), "{}", text(&far));
    server.stop();
}

/// Sets every per-key budget in `[limits]` high, for tests that put load on one key.
fn raise_limits(data: &Path) {
    let config = std::fs::read_to_string(data.join("config.toml")).unwrap();
    let config = config
        .replace("reveals_per_minute = 600", "reveals_per_minute = 1000000")
        .replace("searches_per_minute = 300", "searches_per_minute = 1000000")
        .replace("writes_per_minute = 600", "writes_per_minute = 1000000");
    std::fs::write(data.join("config.toml"), config).unwrap();
}

/// Review items 4, 5 and 16: a write answers only the names of the fields written, and a
/// token only where the caller could have tokenised the value itself — so a role that sees
/// cards as tokens cannot test guessed card numbers by writing them, and no write reads
/// the record's other fields. Writes and searches count against per-key budgets (searches
/// with or without a purpose), and each refusal is a `limit.write` / `limit.search` event.
#[test]
fn review_4_5_16_writes_and_searches_answer_no_values_and_are_budgeted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let app_key = create_key(&data, "shop", "app");
    let staff_key = create_key(&data, "till", "staff");
    let config = std::fs::read_to_string(data.join("config.toml")).unwrap();
    let config = config
        .replace("searches_per_minute = 300", "searches_per_minute = 3")
        .replace("writes_per_minute = 600", "writes_per_minute = 4");
    std::fs::write(data.join("config.toml"), config).unwrap();
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);

    // The app key writes a customer with a card: it gets the id and the field names, and
    // nothing it could compare a guess with.
    let (status, created) =
        call("POST", &records, Some(&app_key), Some("order_fulfillment"), Some(&jane()));
    assert_eq!(status, 201, "{created}");
    let mut keys: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["collection", "id", "tokens", "written"], "{created}");
    // Tokens only for what the app reads plain for its purpose (email), as /v1/tokens
    // would give it; not for the card or the SSN, which it sees as tokens only.
    let tokens = created["tokens"].as_object().unwrap();
    assert!(!tokens.contains_key("card_number") && !tokens.contains_key("ssn"), "{created}");
    let written: Vec<&str> =
        created["written"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(written.contains(&"card_number") && written.contains(&"ssn"), "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let record = format!("{records}/{id}");
    // The card's token exists (the owner sees it) and the write answer did not carry it.
    let (_, seen) = call("GET", &record, Some(&owner), None, None);
    let token = seen["fields"]["card_number"]["value"].as_str().unwrap().to_string();
    assert_eq!(seen["fields"]["card_number"]["mode"], "token");
    assert!(!created.to_string().contains(&token), "{created}");
    // A change answers the same way, for the fields changed only.
    let (status, changed) = call(
        "PATCH",
        &record,
        Some(&app_key),
        None,
        Some(&json!({"fields": {"card_number": "4111 1111 1111 1111"}})),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["written"], json!(["card_number"]));
    assert_eq!(changed["tokens"], json!({}));
    // The owner, who may tokenise cards for billing, gets the card's token back; it is the
    // token a reveal turns into the card.
    let (status, billed) = call("POST", &records, Some(&owner), Some("billing"), Some(&jane()));
    assert_eq!(status, 201, "{billed}");
    let card_token = billed["tokens"]["card_number"].as_str().expect("a card token").to_string();
    assert!(billed["tokens"].get("name").is_none(), "{billed}");
    let (_, revealed) = call(
        "POST",
        &format!("{}/v1/tokens/reveal", server.url),
        Some(&owner),
        Some("billing"),
        Some(&json!({"token": card_token})),
    );
    assert_eq!(revealed["value"], "4539526018159083");

    // Writes: four a minute for the app key (the create and the change above were two).
    for n in 0..2 {
        let body =
            json!({"fields": {"name": format!("Guess {n}"), "card_number": "4539 5260 1815 9083"}});
        assert_eq!(call("POST", &records, Some(&app_key), None, Some(&body)).0, 201);
    }
    let body = json!({"fields": {"name": "One too many"}});
    let (status, refused) = call("POST", &records, Some(&app_key), None, Some(&body));
    assert_eq!((status, refused["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert!(refused["error"]["message"].as_str().unwrap().contains("record writes"), "{refused}");
    let (status, _) = call("PATCH", &record, Some(&app_key), None, Some(&body));
    assert_eq!(status, 429, "a change counts as a write too");
    // Another key has its own budget.
    assert_eq!(call("POST", &records, Some(&staff_key), None, Some(&body)).0, 201);

    // Searches: three a minute for the staff key, without a purpose too.
    let search = format!("{records}?email=jane.quinton@example.com");
    for _ in 0..3 {
        let (status, found) = call("GET", &search, Some(&staff_key), None, None);
        assert_eq!(status, 200, "{found}");
    }
    let (status, refused) = call("GET", &search, Some(&staff_key), None, None);
    assert_eq!((status, refused["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert!(refused["error"]["message"].as_str().unwrap().contains("searches"), "{refused}");
    assert_eq!(call("GET", &search, Some(&app_key), None, None).0, 200);
    server.stop();

    // Each refusal is in the ledger; no write was also a read of the record.
    let denied =
        |action: &str| events_of(&data, action).iter().filter(|e| e["outcome"] == "denied").count();
    assert_eq!(denied("limit.write"), 2);
    assert_eq!(denied("limit.search"), 1);
    let writes: Vec<Value> = ["record.create", "record.update"]
        .iter()
        .flat_map(|a| events_of(&data, a))
        .map(|e| e["request_id"].clone())
        .collect();
    assert!(writes.len() >= 6, "{writes:?}");
    let reads = events_of(&data, "record.read");
    assert!(!reads.is_empty(), "the GET and the searches are reads");
    for read in &reads {
        assert!(!writes.contains(&read["request_id"]), "a write also read the record: {read}");
    }
}

/// Review item 7: an API key's row is sealed under the root key. Someone who can write
/// `vault.db` cannot promote a staff key to owner or bring a revoked key back: the edited
/// row is refused (`auth.failed`, reason `tampered_key`) while untouched keys still work.
#[test]
fn review_7_an_edited_api_key_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let staff = create_key(&data, "till", "staff");
    let gone = create_key(&data, "old-laptop", "staff");
    let revoked = custody(&data, &["keys", "revoke", "old-laptop"]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let other = create_key(&data, "counter", "staff");
    {
        let db = rusqlite::Connection::open(data.join("vault.db")).unwrap();
        let promoted =
            db.execute("UPDATE api_keys SET role = 'owner' WHERE name = 'till'", []).unwrap();
        let restored = db
            .execute("UPDATE api_keys SET revoked_at = NULL WHERE name = 'old-laptop'", [])
            .unwrap();
        assert_eq!((promoted, restored), (1, 1));
    }
    let server = Server::start(&data, true);
    let url = &server.url;
    let keys = format!("{url}/v1/sys/keys");
    let records = format!("{url}/v1/collections/customers/records");
    // The promoted key can do nothing, not even what it could as staff.
    assert_eq!(call("GET", &keys, Some(&staff), None, None).0, 401);
    assert_eq!(call("POST", &records, Some(&staff), None, Some(&jane())).0, 401);
    // The revoked key stays revoked.
    assert_eq!(call("POST", &records, Some(&gone), None, Some(&jane())).0, 401);
    // Untouched keys work as before.
    assert_eq!(call("POST", &records, Some(&other), None, Some(&jane())).0, 201);
    assert_eq!(call("GET", &keys, Some(&owner), None, None).0, 200);
    // Revoking the edited key still works (and seals its row anew, as revoked).
    let (status, body) = call("DELETE", &format!("{keys}/till"), Some(&owner), None, None);
    assert_eq!(status, 200, "{body}");
    server.stop();
    let reasons: Vec<String> = events_of(&data, "auth.failed")
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(reasons.iter().filter(|r| *r == "tampered_key").count(), 3, "{reasons:?}");
}

/// A vault made before rows were sealed has its key rows sealed when it is opened, so its
/// keys keep working; after that, a row stripped of its seal is refused.
#[test]
fn review_7_old_key_rows_are_sealed_once_and_a_stripped_seal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let staff = create_key(&data, "till", "staff");
    let strip = |which: &str| {
        let db = rusqlite::Connection::open(data.join("vault.db")).unwrap();
        db.execute(&format!("UPDATE api_keys SET tag = substr(tag, 1, 32) WHERE {which}"), [])
            .unwrap()
    };
    // As an earlier release left it: no row has a seal.
    assert_eq!(strip("1"), 2);
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    assert_eq!(call("POST", &records, Some(&staff), None, Some(&jane())).0, 201);
    assert_eq!(call("POST", &records, Some(&owner), None, Some(&jane())).0, 201);
    server.stop();
    // Now sealed: stripping one row's seal (to edit it unseen) is refused.
    assert_eq!(strip("name = 'till'"), 1);
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    assert_eq!(call("POST", &records, Some(&staff), None, Some(&jane())).0, 401);
    assert_eq!(call("POST", &records, Some(&owner), None, Some(&jane())).0, 201);
    server.stop();
}

/// Every event of `action` in the data directory's ledger, parsed.
fn events_of(data: &Path, action: &str) -> Vec<Value> {
    ledger_events(data)
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|e| e["action"] == action)
        .collect()
}

/// Issue 12: a staff key is made on a running server, used at once, revoked; the next call
/// is 401 and recorded. Every refused credential writes exactly one `auth.failed` event,
/// and the key presented is nowhere in the data directory or the log.
#[test]
fn api_keys_are_managed_while_serving_and_refused_keys_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let owner_file = dir.path().join("owner.key");
    std::fs::write(&owner_file, &owner).unwrap();
    let server = Server::start(&data, true);
    let url = server.url.clone();
    let owner_path = owner_file.to_str().unwrap();

    // Without --server, the CLI says exactly what to run instead.
    let out = custody(&data, &["keys", "create", "--name", "till-2", "--role", "staff"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("custody keys create --name till-2 --role staff --server"), "{said}");

    // Created through the running server, used at once.
    let out = custody(
        &data,
        &[
            "keys",
            "create",
            "--name",
            "till-2",
            "--role",
            "staff",
            "--server",
            &url,
            "--key-file",
            owner_path,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let staff = credential(&String::from_utf8_lossy(&out.stdout));
    let records = format!("{url}/v1/collections/customers/records");
    let (status, created) = call("POST", &records, Some(&owner), None, Some(&jane()));
    assert_eq!(status, 201, "{created}");
    let record = format!("{records}/{}", created["id"].as_str().unwrap());
    assert_eq!(call("GET", &record, Some(&staff), None, None).0, 200);

    // Listed (without secrets), by the owner only.
    let out =
        custody(&data, &["keys", "list", "--json", "--server", &url, "--key-file", owner_path]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains("\"till-2\"") && !listed.contains(&staff), "{listed}");
    let (status, body) = call("GET", &format!("{url}/v1/sys/keys"), Some(&staff), None, None);
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(
        "POST",
        &format!("{url}/v1/sys/keys"),
        Some(&staff),
        None,
        Some(&json!({"name": "mine", "role": "owner"})),
    );
    assert_eq!(status, 403, "a staff key cannot make keys: {body}");
    // The last owner key cannot be revoked (the owner would be locked out).
    let (status, body) =
        call("DELETE", &format!("{url}/v1/sys/keys/owner"), Some(&owner), None, None);
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("last_admin_key")), "{body}");

    // Revoked through the server (the whole key pasted by mistake works, and only its id is
    // recorded): the next call is 401.
    let out =
        custody(&data, &["keys", "revoke", &staff, "--server", &url, "--key-file", owner_path]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(call("GET", &record, Some(&staff), None, None).0, 401);

    // The other refusal paths, one call each.
    let (id, _) = staff.trim_start_matches("ck_").split_once('_').unwrap();
    let forged = format!("ck_{id}_{}", "a1".repeat(32));
    let unknown = format!("ck_{}_{}", "f".repeat(id.len()), "b2".repeat(32));
    assert_eq!(call("GET", &record, None, None, None).0, 401);
    assert_eq!(call("GET", &record, Some("not-a-key"), None, None).0, 401);
    assert_eq!(call("GET", &record, Some(&unknown), None, None).0, 401);
    assert_eq!(call("GET", &record, Some(&forged), None, None).0, 401);
    let log = server.stop();

    let refused = events_of(&data, "auth.failed");
    let reasons: Vec<&str> =
        refused.iter().map(|e| e["details"]["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        ["revoked_key", "missing", "malformed", "unknown_key", "wrong_secret"],
        "one auth.failed per refused call: {refused:?}"
    );
    for e in &refused {
        assert_eq!(e["outcome"], "denied");
        assert_eq!(e["details"]["via"], "api");
        assert!(e["source"].as_str().is_some_and(|s| s.len() == 64), "source pseudonym: {e}");
    }
    // The same key presented twice has the same fingerprint; a different one does not.
    let revoked_fp = refused[0]["details"]["fingerprint"].as_str().unwrap();
    assert_eq!(revoked_fp.len(), 32);
    assert!(refused[1]["details"].get("fingerprint").is_none(), "nothing was presented");
    assert_ne!(refused[3]["details"]["fingerprint"], refused[4]["details"]["fingerprint"]);
    // The key-management calls are in the ledger, allowed and denied.
    let created = events_of(&data, "apikey.create");
    assert!(created.iter().any(|e| e["outcome"] == "ok" && e["details"]["key"] == "till-2"));
    assert!(created.iter().any(|e| e["outcome"] == "denied"));
    let (staff_id, _) = staff.trim_start_matches("ck_").split_once('_').unwrap();
    assert!(
        events_of(&data, "apikey.revoke")
            .iter()
            .any(|e| e["outcome"] == "ok" && e["details"]["key"] == staff_id)
    );
    // No presented key, nor any part of its secret, is in the data directory or the log.
    for key in [&staff, &forged, &unknown] {
        let secret = key.rsplit('_').next().unwrap();
        assert!(!log.contains(secret), "a key is in the server log");
        for file in files(&data) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a presented key is in {}",
                file.display()
            );
        }
    }
}

/// Issue 12: an address in parts through the API (an object or one line), searchable by
/// region and country; bad parts are a 400 naming the part, never echoing the value.
#[test]
fn addresses_are_kept_in_parts_and_bad_parts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, _) = init(&data);
    let server = Server::start(&data, true);
    let records = format!("{}/v1/collections/customers/records", server.url);
    let create = |address: Value| {
        call(
            "POST",
            &records,
            Some(&owner),
            Some("order_fulfillment"),
            Some(&json!({"fields": {"name": "Ada Quist", "address": address}})),
        )
    };
    let (status, a) = create(json!({
        "street": "1200 Getty Center Dr", "unit": "Suite 400", "city": "Los Angeles",
        "region": "california", "postal_code": "90049", "country": "usa"
    }));
    assert_eq!(status, 201, "{a}");
    let (status, b) = create(json!("500 Oak Ave, Portland OR 97204"));
    assert_eq!(status, 201, "{b}");
    let (status, c) = create(json!({"street": "1 Martin Pl", "city": "Sydney", "region": "NSW",
        "postal_code": "2000", "country": "AU"}));
    assert_eq!(status, 201, "{c}");
    let read = |v: &Value| {
        let url = format!("{records}/{}", v["id"].as_str().unwrap());
        call("GET", &url, Some(&owner), Some("order_fulfillment"), None).1
    };
    let a = read(&a);
    let part = |r: &Value, p: &str| r["fields"][format!("address_{p}")]["value"].clone();
    assert_eq!(part(&a, "region"), "US-CA");
    assert_eq!(part(&a, "country"), "US");
    assert_eq!(part(&a, "unit"), "Suite 400");
    assert_eq!(a["fields"]["address_region"]["mode"], "plain");
    let b = read(&b);
    assert_eq!((part(&b, "city"), part(&b, "region")), (json!("Portland"), json!("US-OR")));
    assert_eq!(part(&b, "country"), "US", "inferred from the state and the ZIP");
    // Without a purpose the owner sees parts masked, one mode each.
    let (_, masked) =
        call("GET", &format!("{records}/{}", a["id"].as_str().unwrap()), Some(&owner), None, None);
    assert_eq!(masked["fields"]["address_street"]["mode"], "masked");
    assert_ne!(masked["fields"]["address_street"]["value"], "1200 Getty Center Dr");
    // Searchable by region and by country, so a breach can be scoped by state.
    let search = |q: &str| {
        let (status, found) = call("GET", &format!("{records}?{q}"), Some(&owner), None, None);
        assert_eq!(status, 200, "{found}");
        found["count"].as_u64().unwrap()
    };
    assert_eq!(search("address_region=US-OR"), 1);
    assert_eq!(search("address_region=Oregon"), 1);
    assert_eq!(search("address_country=US"), 2);
    assert_eq!(search("address_country=AU"), 1);
    // A code two countries use is refused, not silently empty.
    let (status, body) =
        call("GET", &format!("{records}?address_region=WA"), Some(&owner), None, None);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("US-WA"), "{body}");
    // Bad parts: 400, the part named, the value never echoed.
    for (address, part) in [
        (json!({"street": "1 Main St", "country": "Atlantis"}), "address_country"),
        (
            json!({"street": "1 Main St", "postal_code": "9X0210", "country": "US"}),
            "address_postal_code",
        ),
        (json!({"region": "Ontario", "country": "US"}), "address_region"),
        (json!({"region": "QC", "postal_code": "54321", "country": "CA"}), "address_postal_code"),
        (json!({"planet": "Mars"}), "address"),
    ] {
        let text = address.to_string();
        let (status, body) = create(address);
        assert_eq!(status, 400, "{text}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("'{part}'")), "{text}: {message}");
        for word in ["Atlantis", "9X0210", "Ontario", "54321", "Mars"] {
            assert!(!message.contains(word), "{message} echoes the value");
        }
    }
    // An update of the region alone is checked against the stored country.
    let url = format!("{records}/{}", c["id"].as_str().unwrap());
    let patch = |region: &str| {
        call(
            "PATCH",
            &url,
            Some(&owner),
            None,
            Some(&json!({"fields": {"address": {"region": region}}})),
        )
    };
    assert_eq!(patch("Texas").0, 400, "Texas is not in Australia");
    assert_eq!(patch("vic").0, 200);
    assert_eq!(part(&read(&c), "region"), "AU-VIC");
    // An address given whole replaces the stored one: no old city, state or country stays.
    let (status, body) = call(
        "PATCH",
        &url,
        Some(&owner),
        None,
        Some(&json!({"fields": {"address": "Flat 3, 10 Downing Street, London SW1A 2AA"}})),
    );
    assert_eq!(status, 200, "{body}");
    let moved = read(&c);
    assert_eq!(part(&moved, "street"), "Flat 3, 10 Downing Street, London SW1A 2AA");
    for gone in ["city", "region", "postal_code", "country"] {
        assert!(moved["fields"].get(format!("address_{gone}")).is_none(), "{gone}: {moved}");
    }
    assert_eq!(search("address_country=AU"), 0, "the old country's index went too");
    server.stop();
}

/// Issue 12: import maps address columns (part by part, or one column parsed), and an
/// earlier data directory with free-text addresses migrates, counting what was read.
#[test]
fn address_columns_import_and_free_text_addresses_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    // Part by part, with the usual header names.
    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "Full Name,Street Address,Apt,City,State,ZIP Code,Country\n\
         Ada Quist,1200 Getty Center Dr,Suite 400,Los Angeles,CA,90049,US\n\
         Bo Ruiz,12 Elm St,,Austin,Texas,7870,US\n",
    )
    .unwrap();
    let out = text(&custody(&data, &["import", csv.to_str().unwrap()]));
    for (column, field) in [
        ("Street Address", "address_street"),
        ("Apt", "address_unit"),
        ("City", "address_city"),
        ("State", "address_region"),
        ("ZIP Code", "address_postal_code"),
        ("Country", "address_country"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(column) && l.contains(&format!("→ {field}"))),
            "{column}: {out}"
        );
    }
    assert!(out.contains("line 3: field 'address_postal_code'"), "a four-digit ZIP: {out}");
    assert!(!out.contains("7870"), "the bad value is not echoed: {out}");
    // One column holding the whole address.
    let single = dir.path().join("single.csv");
    std::fs::write(&single, "name,address\nCy Dahl,\"9 Oregon Trail, Boise, ID 83702\"\n").unwrap();
    let applied = custody(&data, &["import", single.to_str().unwrap(), "--apply"]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(text(&applied).contains("Imported 1 record"), "{}", text(&applied));

    // An earlier installation: the address was one text field.
    let old = dir.path().join("old");
    init(&old);
    let config = old.join("config.toml");
    let current = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, current.replacen("type = \"address\"", "type = \"text\"", 1)).unwrap();
    let mut ids = Vec::new();
    for address in [
        "742 Evergreen Terrace, Springfield, OR 97403, US",
        "100 Queen St W, Toronto, ON M5H 2N2, Canada",
        "Flat 3, 10 Downing Street, London SW1A 2AA",
    ] {
        let out = custody(
            &old,
            &["records", "add", "customers", "name=Old Customer", &format!("address={address}")],
        );
        assert!(out.status.success(), "{}", text(&out));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let migrated = custody(&old, &["migrate"]);
    let said = text(&migrated);
    assert!(migrated.status.success(), "{said}");
    assert!(
        said.contains("3 address(es) moved into parts: 2 with region and country, 0 with the country only, 1 kept whole as the street"),
        "{said}"
    );
    assert!(old.join("config.toml.before-migrate").is_file());
    assert!(std::fs::read_to_string(&config).unwrap().contains("type = \"address\""));
    let show = |id: &str| {
        let out = custody(
            &old,
            &["records", "show", "customers", id, "--purpose", "billing", "--reveal", "--json"],
        );
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = show(&ids[0]);
    assert_eq!(first["fields"]["address_region"]["value"], "US-OR");
    assert_eq!(first["fields"]["address_street"]["value"], "742 Evergreen Terrace");
    assert!(first["fields"].get("address").is_none(), "the old value is gone");
    let third = show(&ids[2]);
    assert_eq!(
        third["fields"]["address_street"]["value"],
        "Flat 3, 10 Downing Street, London SW1A 2AA"
    );
    assert!(third["fields"].get("address_country").is_none());
    // Recorded, and a second run has nothing to do.
    assert!(
        ledger_events(&old)
            .iter()
            .any(|e| e.contains("\"vault.migrate\"") && e.contains("\"records\":3"))
    );
    let again = custody(&old, &["migrate"]);
    assert!(text(&again).contains("up to date"), "{}", text(&again));
}

/// Review item 13: slow clients cannot hold the server. With room for four connections
/// and a one-second header timeout, ten connections that never finish their request head,
/// and one that goes idle after a request, are closed by the server, and a normal request
/// made behind them is answered.
#[test]
fn review_13_slow_connections_do_not_hold_the_server() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let server = Server::start_with(
        &data,
        true,
        &["--listen", "127.0.0.1:0", "--max-connections", "4", "--header-timeout", "1"],
    );
    let addr = server.url.trim_start_matches("http://").to_string();
    // One connection that makes a request and then stays open, saying nothing.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Ten that start a request head and never finish it.
    let slow: Vec<std::net::TcpStream> = (0..10)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let started = std::time::Instant::now();
    let (status, body) = call("GET", &format!("{}/v1/health", server.url), None, None, None);
    assert_eq!(status, 200, "{body}");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(15), "served only after {waited:?}");
    // Each slow connection and the idle one were closed by the server (end of stream or a
    // reset), not left open.
    for mut s in slow.into_iter().chain([idle]) {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                "a slow connection is still open: {e}"
            ),
        }
    }
    server.stop();
}

/// Review item 20 (the process part): a serving process writes no core file, soft or hard
/// limit, so its unsealed keys cannot end up in a crash dump.
#[test]
fn review_20_the_server_cannot_dump_core() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let server = Server::start(&data, true);
    let pid = server.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
    // The hard limit was unlimited here before: only the server lowers it. (Whether the
    // process is dumpable cannot be seen from outside by root, which CI runs as.)
    server.stop();
}

/// Review item 2 through the API: `POST /v1/sys/rotate-root` replaces the root of a
/// running server (admin roles only, a real passphrase only), answers the new kit once,
/// and every record, search and key goes on working; afterwards the old passphrase opens
/// nothing and the new one and the new shares do.
#[test]
fn review_2_the_root_is_replaced_online() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (owner, old_shares) = init(&data);
    let staff = create_key(&data, "staff", "staff");
    let server = Server::start(&data, true);
    let url = &server.url;
    let records = format!("{url}/v1/collections/customers/records");
    let (status, made) = call("POST", &records, Some(&owner), None, Some(&jane()));
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let rotate = format!("{url}/v1/sys/rotate-root");
    let new_pass = "the brand new owner passphrase";
    let body = json!({"new_passphrase": new_pass});
    assert_eq!(call("POST", &rotate, Some(&staff), None, Some(&body)).0, 403);
    let (status, short) =
        call("POST", &rotate, Some(&owner), None, Some(&json!({"new_passphrase": "short"})));
    assert_eq!(status, 400, "{short}");
    let (status, rotated) = call("POST", &rotate, Some(&owner), None, Some(&body));
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["rewrapped"], 1);
    assert_eq!(rotated["legacy_keys"], false);
    assert!(!rotated.to_string().contains(new_pass));
    let new_shares: Vec<String> = rotated["recovery_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new_shares.len(), 3);
    assert!(new_shares.iter().all(|s| !old_shares.contains(s)));

    // The running server reads, searches (indexes rebuilt) and writes under the new root;
    // the API keys made before still work.
    let (status, read) =
        call("GET", &format!("{records}/{id}"), Some(&owner), Some("billing"), None);
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["fields"]["ssn"]["value"], "219-44-7321");
    let (status, found) = call(
        "GET",
        &format!("{records}?email=jane.quinton%40example.com"),
        Some(&staff),
        Some("order_fulfillment"),
        None,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(call("POST", &records, Some(&owner), None, Some(&jane())).0, 201);
    // The command line does the same through the server.
    let third = "a third passphrase, from the command line";
    let pass_file = dir.path().join("third.txt");
    std::fs::write(&pass_file, format!("{third}\n")).unwrap();
    let by_cli = custody_with(
        &data,
        &["keys", "rotate", "--root", "--server", url, "--new-passphrase-file"]
            .into_iter()
            .chain([pass_file.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[("CUSTODY_API_KEY", owner.as_str())],
    );
    assert!(by_cli.status.success(), "{}", text(&by_cli));
    assert!(text(&by_cli).contains("Replaced the root key of the running server"));
    assert_eq!(text(&by_cli).matches("custody-share-").count(), 3, "{}", text(&by_cli));
    server.stop();

    // Offline: the old passphrase is refused, the new one reads, the new shares recover.
    let show = |pass: &str| {
        custody_with(
            &data,
            &["records", "show", "customers", &id, "--purpose", "billing", "--reveal"],
            &[("CUSTODY_PASSPHRASE", pass)],
        )
    };
    assert!(text(&show(PASS)).contains("wrong passphrase"), "{}", text(&show(PASS)));
    assert!(text(&show(new_pass)).contains("wrong passphrase"), "{}", text(&show(new_pass)));
    assert!(text(&show(third)).contains("219-44-7321"), "{}", text(&show(third)));
    assert!(ledger_events(&data).iter().any(|e| e.contains("keys.rotate_root")));
}
