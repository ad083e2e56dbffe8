//! The vault's conformance suite: reads by role and purpose, search, tokens, tampering,
//! erasure, rotation, retention, permits and API keys — the same assertions on each store,
//! the embedded SQLite file (`sqlite::`) and the real PostgreSQL at 127.0.0.1:5432
//! (`postgres::`, started by `.ci/run`; these fail, never skip, when it is down). Upgrades
//! of old SQLite files and the data-directory scan are SQLite's own.

use std::collections::BTreeMap;
use std::path::Path;

use custody_crypto::Key;
use custody_ledger::{Ledger, LedgerOptions};
use custody_vault::{
    Access, AuditedVault, Config, Error, Expired, Location, ReadField, ReadMode, TOKENS_COLLECTION,
    Vault,
};

/// Jane's values as given and as normalised: none may be stored in the clear.
const NEEDLES: [&str; 11] = [
    "Jane Sample",
    "jane.sample@example.com",
    "Jane.Sample@Example.com",
    "+12015550123",
    "2015550123",
    "12 Birch Lane",
    "1984-07-23",
    "773-12-3456",
    "773123456",
    "4539526018159083",
    "4539 5260 1815 9083",
];

fn jane() -> BTreeMap<String, String> {
    [
        ("name", "Jane Sample"),
        ("email", "Jane.Sample@Example.com"),
        ("phone", "(201) 555-0123"),
        ("address", "12 Birch Lane, Springfield, IL 62704"),
        ("date_of_birth", "1984-07-23"),
        ("ssn", "773-12-3456"),
        ("card_number", "4539 5260 1815 9083"),
        ("card_expiry", "09/27"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn raw_vault(dir: &Path) -> Vault {
    Vault::open(&dir.join("vault.db"), Config::default_config(), Key::from_bytes([7; 32])).unwrap()
}

const PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// Where a conformance test's vault lives. The ledger is a file in the test's directory
/// on both (the ledger's own suite runs on both stores).
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(tempfile::TempDir, String),
}

impl Place {
    fn sqlite() -> Self {
        Place::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("vault_test_{}_{n}", std::process::id());
        let mut c = ::postgres::Client::connect(PG, ::postgres::NoTls)
            .expect("PostgreSQL at 127.0.0.1:5432 (started by .ci/run)");
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).unwrap();
        Place::Postgres(tempfile::tempdir().unwrap(), schema)
    }

    fn dir(&self) -> &Path {
        match self {
            Place::Sqlite(d) | Place::Postgres(d, _) => d.path(),
        }
    }

    fn location(&self) -> Location {
        match self {
            Place::Sqlite(d) => Location::Sqlite(d.path().join("vault.db")),
            Place::Postgres(_, schema) => {
                Location::Postgres { url: PG.into(), schema: schema.clone() }
            }
        }
    }

    fn raw_vault(&self) -> Vault {
        Vault::open_at(&self.location(), Config::default_config(), Key::from_bytes([7; 32]))
            .unwrap()
    }

    fn vault(&self) -> V {
        let ledger_dir = self.dir().join("test-ledger");
        let ledger = if Ledger::exists(&ledger_dir) {
            Ledger::open(&ledger_dir, LedgerOptions::default())
        } else {
            Ledger::init(&ledger_dir, LedgerOptions::default())
        };
        V(AuditedVault::new(self.raw_vault(), ledger.unwrap()))
    }

    /// Runs SQL on the store's tables, as someone with the database would.
    fn sql(&self, sql: &str) {
        match self {
            Place::Sqlite(d) => {
                rusqlite::Connection::open(d.path().join("vault.db"))
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Place::Postgres(_, schema) => {
                let mut c = ::postgres::Client::connect(PG, ::postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path TO {schema}; {sql}")).unwrap();
            }
        }
    }

    /// The first column of what a query returns, read with `sqlite` or `pg`.
    fn column<T>(
        &self,
        sql: &str,
        sqlite: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        pg: impl Fn(&::postgres::Row) -> T,
    ) -> Vec<T> {
        match self {
            Place::Sqlite(d) => {
                let c = rusqlite::Connection::open(d.path().join("vault.db")).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                stmt.query_map([], sqlite).unwrap().map(Result::unwrap).collect()
            }
            Place::Postgres(_, schema) => {
                let mut c = ::postgres::Client::connect(PG, ::postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path TO {schema}")).unwrap();
                c.query(sql, &[]).unwrap().iter().map(pg).collect()
            }
        }
    }

    /// The integers a query returns (first column).
    fn ints(&self, sql: &str) -> Vec<i64> {
        self.column(
            sql,
            |r| r.get(0),
            |r| r.try_get::<_, i64>(0).unwrap_or_else(|_| i64::from(r.get::<_, i32>(0))),
        )
    }

    /// The text a query returns (first column).
    fn texts(&self, sql: &str) -> Vec<String> {
        self.column(sql, |r| r.get(0), |r| r.get(0))
    }

    /// What the store holds, as bytes (the file; every row of every table as JSON).
    fn dump(&self) -> Vec<u8> {
        match self {
            Place::Sqlite(d) => std::fs::read(d.path().join("vault.db")).unwrap(),
            Place::Postgres(_, schema) => {
                let mut c = ::postgres::Client::connect(PG, ::postgres::NoTls).unwrap();
                let mut out = Vec::new();
                for table in ["keks", "deks", "fields", "blind", "tokens", "api_keys", "meta"] {
                    let sql = format!("SELECT row_to_json(t)::text FROM {schema}.{table} t");
                    for row in c.query(&sql, &[]).unwrap() {
                        out.extend_from_slice(row.get::<_, String>(0).as_bytes());
                    }
                }
                out
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Postgres(_, schema) = self
            && let Ok(mut c) = ::postgres::Client::connect(PG, ::postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Each test of the list runs once per store.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Place::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(&super::Place::postgres()); } )*
        }
    };
}

conformance!(
    reads_follow_role_and_purpose,
    search_uses_the_blind_index_after_normalisation,
    invalid_records_are_refused_whole,
    a_ciphertext_moved_to_another_record_does_not_open,
    erasure_leaves_nothing_to_decrypt_search_or_reveal,
    no_plaintext_value_in_the_store,
    updates_replace_values_indexes_and_tokens,
    key_rotation_rewraps_every_data_key_and_retires_the_old_kek,
    every_access_is_in_the_ledger_before_it_happens,
    searches_are_recorded_without_the_value_and_need_permission,
    retention_removes_expired_values_and_then_whole_records,
    customers_sharing_a_card_keep_their_tokens_when_one_is_erased,
    ssn_tokens_are_unique_even_when_the_last_four_digits_are_shared,
    a_permit_opens_only_what_the_gate_granted,
    a_vault_from_a_newer_custody_is_refused,
    api_keys_are_made_listed_and_revoked,
    review_2_a_root_rotation_leaves_the_old_root_opening_nothing,
    review_6_standalone_tokens_expire,
);

/// The vault as every caller reaches it: through the gate, each access in the ledger
/// first (the raw store's data methods need the gate's permits). Reads take a role and a
/// purpose; changes are the owner's.
struct V(AuditedVault);

fn access<'a>(role: &'a str, purpose: Option<&'a str>) -> Access<'a> {
    Access { actor: "test", role, purpose, request_id: None }
}

const OWNER: Access<'static> =
    Access { actor: "test", role: "owner", purpose: None, request_id: None };

impl V {
    fn insert(&mut self, c: &str, values: &BTreeMap<String, String>) -> Result<String, Error> {
        self.0.insert(&OWNER, c, values)
    }

    fn read(
        &self,
        c: &str,
        id: &str,
        role: &str,
        purpose: Option<&str>,
    ) -> Result<BTreeMap<String, ReadField>, Error> {
        self.0.read(&access(role, purpose), c, id)
    }

    fn reveal(&self, token: &str, role: &str, purpose: Option<&str>) -> Result<String, Error> {
        self.0.reveal(&access(role, purpose), token)
    }

    fn search(&self, c: &str, field: &str, value: &str) -> Result<Vec<String>, Error> {
        self.0.search(&OWNER, c, field, value)
    }

    fn update(
        &mut self,
        c: &str,
        id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.0.update(&OWNER, c, id, values)
    }

    fn erase(&mut self, c: &str, id: &str) -> Result<usize, Error> {
        self.0.erase(&OWNER, c, id)
    }

    fn expire(&mut self, now: i64) -> Result<Expired, Error> {
        self.0.expire(&OWNER, now)
    }

    fn rotate_keys(&mut self) -> Result<usize, Error> {
        self.0.rotate_keys(&OWNER)
    }

    fn kek_version(&self) -> u32 {
        self.0.kek_version()
    }

    /// The token of a field, as the owner reads it without a purpose.
    fn token_of(&self, c: &str, id: &str, field: &str) -> Result<String, Error> {
        let read = self.0.read(&OWNER, c, id)?;
        read.get(field).and_then(|f| f.value.clone()).ok_or_else(|| Error::NotFound(field.into()))
    }
}

fn vault(dir: &Path) -> V {
    let ledger_dir = dir.join("test-ledger");
    let ledger = if Ledger::exists(&ledger_dir) {
        Ledger::open(&ledger_dir, LedgerOptions::default())
    } else {
        Ledger::init(&ledger_dir, LedgerOptions::default())
    };
    V(AuditedVault::new(raw_vault(dir), ledger.unwrap()))
}

fn reads_follow_role_and_purpose(place: &Place) {
    let mut v = place.vault();
    let id = v.insert("customers", &jane()).unwrap();

    let owner = v.read("customers", &id, "owner", Some("customer_support")).unwrap();
    assert_eq!(owner["email"].value.as_deref(), Some("jane.sample@example.com"));
    assert_eq!(owner["phone"].value.as_deref(), Some("+12015550123"));
    assert_eq!(owner["card_number"].value.as_deref(), Some("4539526018159083"));
    assert_eq!(owner["card_number"].mode, ReadMode::Plain);

    let staff = v.read("customers", &id, "staff", Some("order_fulfillment")).unwrap();
    assert_eq!(staff["name"].value.as_deref(), Some("Jane Sample"));
    assert_eq!(staff["email"].value.as_deref(), Some("j***@example.com"));
    assert_eq!(staff["email"].mode, ReadMode::Masked);
    let token = staff["card_number"].value.clone().unwrap();
    assert_eq!(staff["card_number"].mode, ReadMode::Token);
    assert_eq!(token.len(), 16);
    assert!(token.ends_with("9083"));
    assert!(!custody_detect::validate::luhn(token.as_bytes()), "card tokens fail Luhn");

    let app = v.read("customers", &id, "app", None).unwrap();
    assert_eq!(app["ssn"].mode, ReadMode::Token);
    let ssn_token = app["ssn"].value.as_deref().unwrap();
    assert!(ssn_token.starts_with('9') && ssn_token.ends_with("-3456"), "{ssn_token}");
    assert_eq!(app["date_of_birth"].value, None);
    // A role that reads no field is refused outright (and the refusal is recorded).
    let auditor = v.read("customers", &id, "auditor", Some("billing"));
    assert!(matches!(auditor, Err(Error::Forbidden(_))), "{auditor:?}");

    // Tokens reveal only for a role and purpose allowed to read the field plain.
    assert_eq!(v.reveal(&token, "owner", Some("billing")).unwrap(), "4539526018159083");
    assert!(matches!(v.reveal(&token, "staff", Some("billing")), Err(Error::Forbidden(_))));
    assert!(matches!(v.reveal(&token, "owner", None), Err(Error::Forbidden(_))));
    // Debug output of a plain read never shows the value.
    assert!(!format!("{owner:?}").contains("4539526018159083"));
}

fn search_uses_the_blind_index_after_normalisation(place: &Place) {
    let mut v = place.vault();
    let id = v.insert("customers", &jane()).unwrap();
    let mut other = jane();
    other.insert("email".into(), "tom@example.org".into());
    let other_id = v.insert("customers", &other).unwrap();
    assert_eq!(
        v.search("customers", "email", "JANE.sample@example.com ").unwrap(),
        vec![id.clone()]
    );
    let mut both = vec![id, other_id];
    both.sort();
    assert_eq!(v.search("customers", "phone", "+1 201 555 0123").unwrap(), both);
    assert!(v.search("customers", "notes", "x").is_err(), "not searchable");
}

fn invalid_records_are_refused_whole(place: &Place) {
    let mut v = place.vault();
    let mut bad = jane();
    bad.insert("card_number".into(), "4539 5260 1815 9084".into());
    let err = v.insert("customers", &bad).unwrap_err().to_string();
    assert!(err.contains("card_number") && !err.contains("4539"), "{err}");
    let mut missing = jane();
    missing.remove("name");
    assert!(v.insert("customers", &missing).is_err());
    assert!(
        v.search("customers", "email", "jane.sample@example.com").unwrap().is_empty(),
        "nothing half-stored"
    );
}

fn a_ciphertext_moved_to_another_record_does_not_open(place: &Place) {
    let mut v = place.vault();
    let a = v.insert("customers", &jane()).unwrap();
    let mut other = jane();
    other.insert("email".into(), "tom@example.org".into());
    let b = v.insert("customers", &other).unwrap();
    drop(v);
    place.sql(&format!(
        "UPDATE fields SET envelope = (SELECT envelope FROM fields WHERE record = '{a}' AND field = 'email')
         WHERE record = '{b}' AND field = 'email'"
    ));
    let v = place.vault();
    assert!(matches!(v.read("customers", &b, "owner", Some("billing")), Err(Error::Crypto(_))));
    assert!(v.read("customers", &a, "owner", Some("billing")).is_ok());
}

fn erasure_leaves_nothing_to_decrypt_search_or_reveal(place: &Place) {
    let mut v = place.vault();
    let id = v.insert("customers", &jane()).unwrap();
    let token =
        v.read("customers", &id, "staff", None).unwrap()["card_number"].value.clone().unwrap();
    v.erase("customers", &id).unwrap();
    assert!(matches!(v.read("customers", &id, "owner", Some("billing")), Err(Error::NotFound(_))));
    assert!(v.search("customers", "email", "jane.sample@example.com").unwrap().is_empty());
    assert!(matches!(v.reveal(&token, "owner", Some("billing")), Err(Error::NotFound(_))));
    assert!(matches!(v.erase("customers", &id), Err(Error::NotFound(_))));
}

/// Review item 21: masked free text kept initials and word lengths (`D****** b* c*******`).
#[test]
fn review_21_masked_free_text_has_one_fixed_shape() {
    let config = Config::default_config();
    let short = custody_vault::mask_field(&config, "customers", "notes", "VIP");
    let long = custody_vault::mask_field(
        &config,
        "customers",
        "notes",
        "Delivers by courier, daughter Emily Sample is allergic to nuts",
    );
    assert_eq!(short, long, "the length does not show");
    assert!(!long.chars().any(char::is_alphanumeric), "{long}");
    assert_eq!(custody_vault::mask_field(&config, "orders", "items", "2x Blue Mug"), short);
    // A name keeps its initials, as the output contract says.
    assert_eq!(
        custody_vault::mask_field(&config, "customers", "name", "Jane Sample"),
        "J*** S*****"
    );
}

#[test]
fn no_plaintext_value_anywhere_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vault(dir.path());
    for _ in 0..3 {
        v.insert("customers", &jane()).unwrap();
    }
    drop(v);
    let needles = NEEDLES;
    // Every file, the ledger's included.
    let mut files = Vec::new();
    let mut dirs = vec![dir.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { dirs.push(path) } else { files.push(path) }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("ledger.db")), "{files:?}");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in {}",
                path.display()
            );
        }
    }
}

/// Review item 6 (the store's part): after an erasure, no stored byte of the customer is
/// left in the SQLite files — neither in the database's free pages nor in the write-ahead
/// log, which kept the frames written when the values were stored. Checked on the raw
/// envelopes, blind-index entries and data key of the record, taken before the erasure.
#[test]
fn review_6_an_erasure_leaves_no_old_page_in_the_database_or_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vault(dir.path());
    let id = v.insert("customers", &jane()).unwrap();
    // Another customer, sharing no searchable value (the same value has the same index).
    let mut sam = jane();
    for (field, value) in [
        ("name", "Sam Other"),
        ("email", "sam@example.org"),
        ("phone", "(312) 555-0188"),
        ("address", "4 Oak St, Salem, OR 97301"),
        ("ssn", "219-44-7321"),
        ("card_number", "4916 3385 0608 2832"),
    ] {
        sam.insert(field.into(), value.into());
    }
    let other = v.insert("customers", &sam).unwrap();
    let db = dir.path().join("vault.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stored: Vec<Vec<u8>> = Vec::new();
    let mut take = |sql: &str| {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([&id], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        stored.extend(rows.map(Result::unwrap));
    };
    take("SELECT envelope FROM fields WHERE record = ?1");
    take("SELECT wrapped FROM deks WHERE record = ?1");
    take("SELECT CAST(idx AS BLOB) FROM blind WHERE record = ?1");
    // An index entry both share (the country, US) stays, rightly: it is the other's too.
    let shared: Vec<Vec<u8>> = conn
        .prepare("SELECT CAST(idx AS BLOB) FROM blind WHERE record = ?1")
        .unwrap()
        .query_map([&other], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    stored.retain(|value| !shared.contains(value));
    drop(conn);
    assert!(stored.len() > 10, "{}", stored.len());
    let wal = dir.path().join("vault.db-wal");
    let present = |stored: &[Vec<u8>]| -> Vec<String> {
        let mut found = Vec::new();
        for file in [&db, &wal] {
            let Ok(bytes) = std::fs::read(file) else { continue };
            for (i, value) in stored.iter().enumerate() {
                let probe = &value[..value.len().min(24)];
                if bytes.windows(probe.len()).any(|w| w == probe) {
                    found.push(format!("stored value {i} in {}", file.display()));
                }
            }
        }
        found
    };
    assert!(!present(&stored).is_empty(), "the probes find the record before the erasure");
    v.erase("customers", &id).unwrap();
    let left = present(&stored);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0, "the WAL is truncated");
    // The other customer is still there, whole.
    assert!(v.read("customers", &other, "owner", Some("billing")).is_ok());
}

fn updates_replace_values_indexes_and_tokens(place: &Place) {
    let mut v = place.vault();
    let id = v.insert("customers", &jane()).unwrap();
    let change: BTreeMap<String, String> =
        [("email".to_string(), "jane@new.example".to_string())].into();
    v.update("customers", &id, &change).unwrap();
    assert!(v.search("customers", "email", "jane.sample@example.com").unwrap().is_empty());
    assert_eq!(v.search("customers", "email", "jane@new.example").unwrap(), vec![id.clone()]);
    let bad: BTreeMap<String, String> = [("email".to_string(), "not an email".to_string())].into();
    assert!(v.update("customers", &id, &bad).is_err());
    let read = v.read("customers", &id, "owner", Some("customer_support")).unwrap();
    assert_eq!(read["email"].value.as_deref(), Some("jane@new.example"));
}

fn key_rotation_rewraps_every_data_key_and_retires_the_old_kek(place: &Place) {
    let mut v = place.vault();
    let ids: Vec<String> = (0..5).map(|_| v.insert("customers", &jane()).unwrap()).collect();
    assert_eq!(v.kek_version(), 1);
    assert_eq!(v.rotate_keys().unwrap(), 5);
    assert_eq!(v.kek_version(), 2);
    drop(v);
    let versions = place.ints("SELECT version FROM keks");
    assert_eq!(versions, vec![2], "version 1 is retired once nothing refers to it");
    let v = place.vault();
    for id in &ids {
        let read = v.read("customers", id, "owner", Some("billing")).unwrap();
        assert_eq!(read["ssn"].value.as_deref(), Some("773-12-3456"));
    }
}

/// Review item 2: after a root rotation the old root (an old `root.sealed` with the old
/// passphrase, or two shares of an old kit: both rebuild exactly that key) opens nothing
/// in the vault — no key row, so no data key, token key or index key — and the old index
/// key would find nothing; with the new root every record, search, token and API key works.
fn review_2_a_root_rotation_leaves_the_old_root_opening_nothing(place: &Place) {
    let mut v = place.vault();
    let jane_id = v.insert("customers", &jane()).unwrap();
    let mut sam = jane();
    sam.insert("email".into(), "sam@example.org".into());
    sam.insert("ssn".into(), "219-44-7321".into());
    let sam_id = v.insert("customers", &sam).unwrap();
    let card_token = v.token_of("customers", &jane_id, "card_number").unwrap();
    let (_, api_key) = v.0.create_api_key(&OWNER, "till", "staff").unwrap();
    v.rotate_keys().unwrap();
    let old_indexes = place.texts("SELECT idx FROM blind");
    assert!(old_indexes.len() >= 6, "{}", old_indexes.len());

    let new_root = Key::from_bytes([8; 32]);
    let done = v.0.rotate_root(&OWNER, new_root.clone()).unwrap();
    assert_eq!(done.rewrapped, 2);
    assert_eq!(done.kek_version, 3);
    assert!(!done.legacy_keys, "a vault of this release has its own purpose keys");
    assert_eq!(done.reindexed, old_indexes.len(), "every index entry is rebuilt");
    // The same vault object goes on working under the new root.
    assert_eq!(v.search("customers", "email", "SAM@example.org").unwrap(), vec![sam_id.clone()]);
    drop(v);

    // The old root opens no key row: the rows wrapped under it are gone.
    assert_eq!(place.ints("SELECT version FROM keks"), vec![3]);
    let old = Vault::open_at(&place.location(), Config::default_config(), Key::from_bytes([7; 32]));
    assert!(matches!(old, Err(Error::Crypto(_))), "{old:?}");
    // Every index entry is new: an old index key (from an old copy) finds nothing.
    let new_indexes = place.texts("SELECT idx FROM blind");
    assert_eq!(new_indexes.len(), old_indexes.len());
    assert!(new_indexes.iter().all(|i| !old_indexes.contains(i)));

    // The new root opens everything; tokens in apps and API keys keep working.
    let ledger_dir = place.dir().join("test-ledger");
    let ledger = Ledger::open(&ledger_dir, LedgerOptions::default()).unwrap();
    let raw = Vault::open_at(&place.location(), Config::default_config(), new_root).unwrap();
    assert_eq!(raw.authenticate(&api_key).unwrap().unwrap().name, "till");
    let v = V(AuditedVault::new(raw, ledger));
    let read = v.read("customers", &jane_id, "owner", Some("billing")).unwrap();
    assert_eq!(read["ssn"].value.as_deref(), Some("773-12-3456"));
    assert_eq!(
        v.search("customers", "email", "jane.sample@example.com").unwrap(),
        vec![jane_id.clone()]
    );
    assert_eq!(v.search("customers", "email", "sam@example.org").unwrap(), vec![sam_id]);
    assert_eq!(v.token_of("customers", &jane_id, "card_number").unwrap(), card_token);
    assert_eq!(v.reveal(&card_token, "owner", Some("billing")).unwrap(), "4539526018159083");
    // A staff key may not replace the root.
    let mut v = v;
    assert!(matches!(
        v.0.rotate_root(&access("staff", None), Key::from_bytes([9; 32])),
        Err(Error::Forbidden(_))
    ));
}

/// A vault made before purpose keys (its key row wraps the KEK alone) opens as before and
/// rotates its root; the rotation says its token and API-key keys are still the old root.
#[test]
fn review_2_a_vault_from_before_purpose_keys_rotates_and_says_what_stays() {
    let dir = tempfile::tempdir().unwrap();
    let root = Key::from_bytes([7; 32]);
    drop(raw_vault(dir.path()));
    let kek = Key::random().unwrap();
    let legacy = custody_crypto::hierarchy::wrap_kek(&root, 1, &kek).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
    conn.execute("UPDATE keks SET wrapped = ?1 WHERE version = 1", [&legacy]).unwrap();
    drop(conn);
    let mut v = vault(dir.path());
    let id = v.insert("customers", &jane()).unwrap();
    let token = v.token_of("customers", &id, "card_number").unwrap();
    // Its tokens are those of the root itself, as before.
    let by_root = custody_crypto::CardTokenizer::new(&root, false)
        .tokenize("card_number", "4539526018159083")
        .unwrap();
    assert_eq!(token, by_root);
    let done = v.0.rotate_root(&OWNER, Key::from_bytes([8; 32])).unwrap();
    assert!(done.legacy_keys);
    assert_eq!(
        v.search("customers", "email", "jane.sample@example.com").unwrap(),
        vec![id.clone()]
    );
    assert_eq!(v.token_of("customers", &id, "card_number").unwrap(), token);
    drop(v);
    let old = Vault::open_at(
        &Location::Sqlite(dir.path().join("vault.db")),
        Config::default_config(),
        root,
    );
    assert!(matches!(old, Err(Error::Crypto(_))));
}

fn every_access_is_in_the_ledger_before_it_happens(place: &Place) {
    use custody_ledger::{Ledger, LedgerOptions};
    use custody_vault::{Access, AuditedVault};
    let ledger = Ledger::init(&place.dir().join("ledger"), LedgerOptions::default()).unwrap();
    let mut av = AuditedVault::new(place.raw_vault(), ledger);
    let owner = Access {
        actor: "key:owner",
        role: "owner",
        purpose: Some("billing"),
        request_id: Some("r1"),
    };
    let staff =
        Access { actor: "key:staff", role: "staff", purpose: Some("billing"), request_id: None };
    let id = av.insert(&owner, "customers", &jane()).unwrap();
    let card = av.read(&staff, "customers", &id).unwrap()["card_number"].value.clone().unwrap();
    assert!(av.reveal(&staff, &card).is_err());
    assert_eq!(av.reveal(&owner, &card).unwrap(), "4539526018159083");
    assert!(av.erase(&staff, "customers", &id).is_err());
    av.erase(&owner, "customers", &id).unwrap();
    let ledger = av.ledger();
    assert_eq!(ledger.size().unwrap(), 6);
    let actions: Vec<String> = (0..6)
        .map(|i| {
            let e = custody_ledger::Event::from_canonical(&ledger.leaf(i).unwrap()).unwrap();
            format!("{} {} {:?}", e.actor, e.action, e.outcome)
        })
        .collect();
    assert_eq!(
        actions,
        [
            "key:owner record.create Ok",
            "key:staff record.read Ok",
            "key:staff token.reveal Denied",
            "key:owner token.reveal Ok",
            "key:staff record.erase Denied",
            "key:owner record.erase Ok",
        ]
    );
    // The ledger holds pseudonyms, never the record id or a value.
    for i in 0..6 {
        let leaf = String::from_utf8(ledger.leaf(i).unwrap()).unwrap();
        assert!(!leaf.contains(&id) && !leaf.contains("4539") && !leaf.contains("jane"), "{leaf}");
    }
    assert_eq!(ledger.verify().unwrap().problem, None);
}

#[test]
fn no_value_is_released_while_the_ledger_cannot_record() {
    use custody_ledger::{Ledger, LedgerOptions};
    use custody_vault::{Access, AuditedVault, Error};
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let ledger = Ledger::init(&ledger_dir, LedgerOptions::default()).unwrap();
    let mut av = AuditedVault::new(raw_vault(dir.path()), ledger);
    let owner =
        Access { actor: "key:owner", role: "owner", purpose: Some("billing"), request_id: None };
    let id = av.insert(&owner, "customers", &jane()).unwrap();
    let staff = Access { actor: "key:staff", role: "staff", ..owner.clone() };
    let token = av.read(&staff, "customers", &id).unwrap()["card_number"].value.clone().unwrap();
    assert_ne!(token, "4539526018159083");

    // Another process holds the ledger's write lock: the ledger cannot record (after its
    // busy timeout), so the reveal must fail closed and release nothing.
    let blocker = rusqlite::Connection::open(ledger_dir.join("ledger.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let size_before = av.ledger().size().unwrap();
    let refused = av.reveal(&owner, &token);
    match &refused {
        Err(Error::Audit(message)) => assert!(!message.contains("4539"), "{message}"),
        Err(other) => panic!("expected an audit failure, got {other}"),
        Ok(_) => panic!("a value was released without being recorded"),
    }
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);

    // Once the ledger can write again, access resumes and the log is whole.
    assert_eq!(av.ledger().size().unwrap(), size_before);
    assert_eq!(av.reveal(&owner, &token).unwrap(), "4539526018159083");
    assert_eq!(av.ledger().size().unwrap(), size_before + 1);
    assert_eq!(av.ledger().verify().unwrap().problem, None);
}

fn searches_are_recorded_without_the_value_and_need_permission(place: &Place) {
    use custody_ledger::{Event, Ledger, LedgerOptions, Outcome};
    use custody_vault::{Access, AuditedVault, Error};
    let ledger = Ledger::init(&place.dir().join("ledger"), LedgerOptions::default()).unwrap();
    let mut av = AuditedVault::new(place.raw_vault(), ledger);
    let access = |role| Access { actor: "key:x", role, purpose: Some("billing"), request_id: None };
    let id = av.insert(&access("owner"), "customers", &jane()).unwrap();
    let email = jane()["email"].clone();
    assert_eq!(av.search(&access("owner"), "customers", "email", &email).unwrap(), [id]);
    assert!(matches!(
        av.search(&access("auditor"), "customers", "email", &email),
        Err(Error::Forbidden(_))
    ));
    let ledger = av.ledger();
    assert_eq!(ledger.size().unwrap(), 3);
    let outcomes: Vec<(String, Outcome)> = (1..3)
        .map(|i| {
            let leaf = ledger.leaf(i).unwrap();
            let local = email.split('@').next().unwrap().to_lowercase();
            assert!(!String::from_utf8_lossy(&leaf).to_lowercase().contains(&local));
            let e = Event::from_canonical(&leaf).unwrap();
            (e.action, e.outcome)
        })
        .collect();
    assert_eq!(
        outcomes,
        [("record.search".into(), Outcome::Ok), ("record.search".into(), Outcome::Denied)]
    );
}

fn retention_removes_expired_values_and_then_whole_records(place: &Place) {
    let mut v = place.vault();
    let keep = v.insert("customers", &jane()).unwrap();
    let mut other = jane();
    other.insert("card_number".into(), "4111 1111 1111 1111".into());
    let old = v.insert("customers", &other).unwrap();
    let card_token = v.read("customers", &old, "staff", Some("billing")).unwrap()["card_number"]
        .value
        .clone()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    let age = |days: i64, fields: &str| {
        place.sql(&format!(
            "UPDATE fields SET stored_at = {} WHERE record = '{old}' AND field IN ({fields})",
            now - days * 86_400
        ));
    };
    // Nothing is due yet.
    assert_eq!(v.expire(now).unwrap(), custody_vault::Expired::default());
    // Card data past its 90 days goes; the rest of the record stays.
    age(91, "'card_number', 'card_expiry'");
    assert_eq!(v.expire(now).unwrap(), custody_vault::Expired { records: 0, fields: 2 });
    let read = v.read("customers", &old, "owner", Some("billing")).unwrap();
    assert!(!read.contains_key("card_number") && !read.contains_key("card_expiry"));
    assert_eq!(read["ssn"].value.as_deref(), Some("773-12-3456"));
    assert!(v.reveal(&card_token, "owner", Some("billing")).is_err());
    // A customer with no activity for longer than the collection keeps records is erased.
    age(1096, "SELECT field FROM fields");
    assert_eq!(v.expire(now).unwrap(), custody_vault::Expired { records: 1, fields: 0 });
    assert!(v.read("customers", &old, "owner", Some("billing")).is_err());
    // The other customer is untouched.
    let kept = v.read("customers", &keep, "owner", Some("billing")).unwrap();
    assert_eq!(kept["card_number"].value.as_deref(), Some("4539526018159083"));
}

#[test]
fn a_vault_from_before_retention_dates_its_values_at_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let id = vault(dir.path()).insert("customers", &jane()).unwrap();
    // The schema as it was: no storage time.
    let c = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
    // (and no schema version: versions began after it).
    c.execute_batch("ALTER TABLE fields DROP COLUMN stored_at; PRAGMA user_version = 0").unwrap();
    drop(c);
    let mut v = vault(dir.path());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    // Nothing expires for lack of a date; the clock starts at the upgrade.
    assert_eq!(v.expire(now).unwrap(), custody_vault::Expired::default());
    assert_eq!(
        v.read("customers", &id, "owner", Some("billing")).unwrap()["card_number"].value.as_deref(),
        Some("4539526018159083")
    );
    assert_eq!(
        v.expire(now + 91 * 86_400).unwrap(),
        custody_vault::Expired { records: 0, fields: 2 }
    );
}

/// Review item 6: a standalone token (`POST /v1/tokens`) belongs to no customer; it is
/// kept `[tokens] retention_days` (365 by default), then the retention run erases it and
/// it reveals nothing.
fn review_6_standalone_tokens_expire(place: &Place) {
    let mut v = place.vault();
    let one = |field: &str, value: &str| BTreeMap::from([(field.to_string(), value.to_string())]);
    let ssn = v.insert(TOKENS_COLLECTION, &one("ssn", "219-44-7321")).unwrap();
    let card = v.insert(TOKENS_COLLECTION, &one("card_number", "4916 3385 0608 2832")).unwrap();
    let ssn_token = v.token_of(TOKENS_COLLECTION, &ssn, "ssn").unwrap();
    let card_token = v.token_of(TOKENS_COLLECTION, &card, "card_number").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    // Within the year: the SSN token is kept; the card's went with card data's 90 days.
    v.expire(now + 300 * 86_400).unwrap();
    assert_eq!(v.reveal(&ssn_token, "owner", Some("billing")).unwrap(), "219-44-7321");
    assert!(v.reveal(&card_token, "owner", Some("billing")).is_err());
    // After it: erased, value and mapping.
    let expired = v.expire(now + 366 * 86_400).unwrap();
    assert!(expired.records >= 1, "{expired:?}");
    for token in [&ssn_token, &card_token] {
        assert!(v.reveal(token, "owner", Some("billing")).is_err(), "{token} still reveals");
    }
    assert!(Config::default_config().tokens.retention_days == 365);
}

fn customers_sharing_a_card_keep_their_tokens_when_one_is_erased(place: &Place) {
    let token_of = |v: &V, id: &str| {
        v.read("customers", id, "staff", Some("billing")).unwrap()["card_number"]
            .value
            .clone()
            .unwrap()
    };
    let mut v = place.vault();
    let first = v.insert("customers", &jane()).unwrap();
    let second = v.insert("customers", &jane()).unwrap();
    let third = v.insert("customers", &jane()).unwrap();
    // Card tokens are deterministic: the same card gives the same token.
    assert_eq!(token_of(&v, &first), token_of(&v, &second));
    let token = token_of(&v, &second);
    v.erase("customers", &first).unwrap();
    assert_eq!(v.reveal(&token, "owner", Some("billing")).unwrap(), "4539526018159083");
    v.erase("customers", &second).unwrap();
    assert_eq!(v.reveal(&token, "owner", Some("billing")).unwrap(), "4539526018159083");
    v.erase("customers", &third).unwrap();
    assert!(v.reveal(&token, "owner", Some("billing")).is_err());
}

/// A vault from when the token map held one row per token is rebuilt from the fields.
#[test]
fn a_vault_with_one_row_per_token_is_rebuilt_from_its_fields() {
    let place = Place::sqlite();
    let mut v = place.vault();
    let first = v.insert("customers", &jane()).unwrap();
    let second = v.insert("customers", &jane()).unwrap();
    let token = v.token_of("customers", &second, "card_number").unwrap();
    drop(v);
    let c = rusqlite::Connection::open(place.dir().join("vault.db")).unwrap();
    c.execute_batch(
        "DROP TABLE tokens;
         CREATE TABLE tokens (token TEXT PRIMARY KEY, collection TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL);
         PRAGMA user_version = 0;",
    )
    .unwrap();
    c.execute(
        "INSERT INTO tokens VALUES (?1, 'customers', ?2, 'card_number')",
        rusqlite::params![token, first],
    )
    .unwrap();
    drop(c);
    let mut v = place.vault();
    v.erase("customers", &first).unwrap();
    assert_eq!(v.reveal(&token, "owner", Some("billing")).unwrap(), "4539526018159083");
    v.erase("customers", &second).unwrap();
    assert!(v.reveal(&token, "owner", Some("billing")).is_err());
}

/// SSN tokens keep the last four digits and have 4,900 shapes per last four: customers
/// whose SSNs end alike still get tokens that lead back to their own number.
fn ssn_tokens_are_unique_even_when_the_last_four_digits_are_shared(place: &Place) {
    let mut v = place.vault();
    let mut seen = std::collections::BTreeSet::new();
    let mut made = Vec::new();
    for area in 200..500 {
        let ssn = format!("{area}-44-7321");
        let values = BTreeMap::from([
            ("name".to_string(), "A B".to_string()),
            ("ssn".to_string(), ssn.clone()),
        ]);
        let id = v.insert("customers", &values).unwrap();
        let token = v.token_of("customers", &id, "ssn").unwrap();
        assert!(token.ends_with("-7321"), "{token}");
        assert!(seen.insert(token.clone()), "token {token} given twice");
        made.push((token, ssn));
    }
    for (token, ssn) in made.iter().step_by(10) {
        assert_eq!(&v.reveal(token, "owner", Some("billing")).unwrap(), ssn);
    }
}

/// Issue 12: the store's data methods need the gate's permit, made only once the event is
/// in the ledger, and a permit opens exactly what it was granted for.
fn a_permit_opens_only_what_the_gate_granted(place: &Place) {
    use std::sync::Arc;

    use custody_vault::Gate;
    let mut v = place.vault();
    let a = v.insert("customers", &jane()).unwrap();
    let b = v.insert("customers", &jane()).unwrap();
    drop(v);
    let mut raw = place.raw_vault();
    let ledger = Ledger::open(&place.dir().join("test-ledger"), LedgerOptions::default()).unwrap();
    let gate = Gate::new(Arc::new(ledger));
    let config = Config::default_config();
    let staff = access("staff", Some("order_fulfillment"));
    let before = gate.ledger().size().unwrap();
    let read_a = gate.read(&config, &staff, "customers", &a).unwrap();
    assert_eq!(gate.ledger().size().unwrap(), before + 1, "the permit came after the event");
    assert!(raw.read(&read_a, "customers", &a).is_ok());
    assert!(matches!(raw.read(&read_a, "customers", &b), Err(Error::Forbidden(_))));
    assert!(matches!(raw.read(&read_a, "orders", &a), Err(Error::Forbidden(_))));
    assert!(matches!(raw.erase(&read_a, "customers", &a), Err(Error::Forbidden(_))));
    assert!(matches!(raw.export(&read_a, "customers", &a), Err(Error::Forbidden(_))));
    // A search permit is for its field only, and finds ids without reading them.
    let owner = access("owner", None);
    let search = gate.search(&config, &owner, "customers", "email").unwrap();
    assert_eq!(
        raw.search(&search, "customers", "email", "jane.sample@example.com").unwrap().len(),
        2
    );
    assert!(matches!(
        raw.search(&search, "customers", "phone", "+12015550123"),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(raw.read(&search, "customers", &a), Err(Error::Forbidden(_))));
    // A create permit makes one record.
    let mut create = gate.create(&config, &owner, "customers", vec!["name".into()]).unwrap();
    let name = BTreeMap::from([("name".to_string(), "C D".to_string())]);
    let c = raw.insert(&mut create, "customers", &name).unwrap();
    assert_eq!(create.record(), Some(c.as_str()));
    assert!(matches!(raw.insert(&mut create, "customers", &name), Err(Error::Forbidden(_))));
    // A refusal gives no permit at all.
    let auditor = access("auditor", Some("billing"));
    assert!(gate.read(&config, &auditor, "customers", &a).is_err());
}

/// A vault made by a newer custody (a schema version this build does not know) is refused
/// with a clear error, not opened or changed.
fn a_vault_from_a_newer_custody_is_refused(place: &Place) {
    drop(place.vault());
    match place {
        Place::Sqlite(_) => place.sql("PRAGMA user_version = 99"),
        Place::Postgres(..) => {
            place.sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
        }
    }
    let err = Vault::open_at(&place.location(), Config::default_config(), Key::from_bytes([7; 32]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("schema version 99") && err.contains("newer"), "{err}");
}

/// API keys live in the store: made (a name twice is a conflict), found by their secret,
/// listed, revoked (then refused as revoked), and a forged secret is refused.
fn api_keys_are_made_listed_and_revoked(place: &Place) {
    let mut v = place.vault();
    let (info, key) = v.0.create_api_key(&OWNER, "till", "staff").unwrap();
    assert!(matches!(v.0.create_api_key(&OWNER, "till", "staff"), Err(Error::Conflict(_))));
    let gate_vault = place.raw_vault();
    assert_eq!(gate_vault.authenticate(&key).unwrap().unwrap().name, "till");
    let forged = format!("{}x", &key[..key.len() - 1]);
    assert!(gate_vault.authenticate(&forged).unwrap().is_err());
    let listed = v.0.list_api_keys(&OWNER).unwrap();
    assert_eq!(listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["till"]);
    v.0.revoke_api_key(&OWNER, &info.id).unwrap();
    assert_eq!(
        gate_vault.authenticate(&key).unwrap().unwrap_err(),
        custody_vault::Refused::Revoked
    );
    assert!(v.0.list_api_keys(&OWNER).unwrap()[0].revoked_at.is_some());
}

/// No value a customer gave is in the store in any form (sealed, indexed or tokenised
/// only).
fn no_plaintext_value_in_the_store(place: &Place) {
    let mut v = place.vault();
    for _ in 0..3 {
        v.insert("customers", &jane()).unwrap();
    }
    drop(v);
    let bytes = place.dump();
    assert!(bytes.len() > 1000, "the dump holds the rows");
    for needle in NEEDLES {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle}");
    }
}

/// Two writers (two nodes) on one PostgreSQL vault draw SSN tokens at the same time from
/// the 4,900 per last four digits: each token still leads back to one customer only.
#[test]
fn ssn_tokens_stay_unique_when_two_nodes_write_at_once() {
    let place = Place::postgres();
    let other_ledger = tempfile::tempdir().unwrap();
    let mut nodes = [
        place.vault(),
        V(AuditedVault::new(
            place.raw_vault(),
            Ledger::init(other_ledger.path(), LedgerOptions::default()).unwrap(),
        )),
    ];
    let made = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (n, node) in nodes.iter_mut().enumerate() {
            let made = &made;
            scope.spawn(move || {
                for area in 0..250 {
                    let ssn = format!("{}-44-7321", 100 + n * 300 + area);
                    let values = BTreeMap::from([
                        ("name".to_string(), "A B".to_string()),
                        ("ssn".to_string(), ssn.clone()),
                    ]);
                    let id = node.insert("customers", &values).unwrap();
                    made.lock().unwrap().push((id, ssn));
                }
            });
        }
    });
    let made = made.into_inner().unwrap();
    let v = &nodes[0];
    let mut seen = std::collections::BTreeSet::new();
    for (id, ssn) in &made {
        let token = v.token_of("customers", id, "ssn").unwrap();
        assert!(seen.insert(token.clone()), "token {token} given twice");
        assert_eq!(&v.reveal(&token, "owner", Some("billing")).unwrap(), ssn);
    }
    assert_eq!(seen.len(), 500);
}

/// A key rotation made through one node: another node that still holds the old KEK goes on
/// creating records (it reloads the newest KEK when the store refuses the old one), and
/// every record opens on both nodes.
#[test]
fn a_rotation_on_one_node_does_not_break_creates_on_another() {
    let place = Place::postgres();
    let other_ledger = tempfile::tempdir().unwrap();
    let mut a = place.vault();
    let mut b = V(AuditedVault::new(
        place.raw_vault(),
        Ledger::init(other_ledger.path(), LedgerOptions::default()).unwrap(),
    ));
    let before = b.insert("customers", &jane()).unwrap();
    assert_eq!(a.rotate_keys().unwrap(), 1);
    assert_eq!(place.ints("SELECT version FROM keks"), vec![2]);
    // B still holds KEK version 1, which the rotation deleted.
    let after = b.insert("customers", &jane()).unwrap();
    for id in [&before, &after] {
        for node in [&a, &b] {
            let read = node.read("customers", id, "owner", Some("billing")).unwrap();
            assert_eq!(read["ssn"].value.as_deref(), Some("773-12-3456"));
        }
    }
}
