//! The embedded store: one SQLite file in WAL mode, owner-only, `secure_delete` on (erased
//! rows do not linger in free pages), its schema versioned by `PRAGMA user_version`.
//!
//! - `keks`: key-encryption keys by version, each wrapped under the root key.
//! - `deks`: one data key per record, wrapped under a KEK version.
//! - `fields`: one envelope per field; `stored_at` dates it for retention.
//! - `blind`: blind indexes of searchable fields.
//! - `tokens`: token → (collection, record, field), one row per holder.
//! - `api_keys`: API keys by id; `tag` is the credential's keyed hash (32 bytes) and the
//!   row's seal (32 bytes, [`custody_crypto::ApiKeyRowSeal`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Change, StoredDek, StoredField, Table, VaultStore};
use crate::{ApiKeyInfo, Error};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keks (version INTEGER PRIMARY KEY, wrapped BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS deks (collection TEXT NOT NULL, record TEXT NOT NULL, kek_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL, PRIMARY KEY (collection, record)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fields (collection TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL,
    key_version INTEGER NOT NULL, envelope BLOB NOT NULL, token TEXT, stored_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (collection, record, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blind (collection TEXT NOT NULL, field TEXT NOT NULL, idx TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (collection, field, idx, record)) WITHOUT ROWID;
";

/// The token map, one row per (token, record, field).
const TOKENS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tokens (token TEXT NOT NULL, collection TEXT NOT NULL,
    record TEXT NOT NULL, field TEXT NOT NULL, PRIMARY KEY (token, collection, record, field)) WITHOUT ROWID;";

const API_KEYS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, tag BLOB NOT NULL, created_at INTEGER NOT NULL,
    revoked_at INTEGER) WITHOUT ROWID;";

/// The vault's schema history (`PRAGMA user_version`). Version 1 is the schema as it was
/// when versions began, reached from any earlier release.
const MIGRATIONS: &[custody_store::sqlite::Migration] = &[custody_store::sqlite::Migration {
    version: 1,
    what: "the vault's tables, and the upgrades of releases before schema versions",
    step: custody_store::sqlite::Step::Code(schema_v1),
}];

fn schema_v1(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    // Vaults made when a token had one row: two customers with the same card shared it,
    // and erasing the first lost the second's. Rebuild the map from the fields.
    let tokens_sql: Option<String> = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'tokens'", [], |r| r.get(0))
        .optional()?;
    if tokens_sql.is_some_and(|sql| sql.contains("token TEXT PRIMARY KEY")) {
        conn.execute_batch(&format!(
            "DROP TABLE tokens;
             {TOKENS_SCHEMA}
             INSERT OR IGNORE INTO tokens (token, collection, record, field)
                 SELECT token, collection, record, field FROM fields WHERE token IS NOT NULL;"
        ))?;
    } else {
        conn.execute_batch(TOKENS_SCHEMA)?;
    }
    conn.execute_batch(API_KEYS_SCHEMA)?;
    // Vaults made before retention existed: date their values today, so none expires on
    // the first run because it has no date.
    if conn.prepare("SELECT stored_at FROM fields LIMIT 0").is_err() {
        conn.execute_batch(
            "ALTER TABLE fields ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0;
             UPDATE fields SET stored_at = CAST(strftime('%s','now') AS INTEGER);",
        )?;
    }
    Ok(())
}

fn store_err(e: &rusqlite::Error) -> Error {
    Error::Store(e.to_string())
}

/// The SQLite store.
pub(crate) struct SqliteStore {
    /// Background WAL checkpoints, once asked for. Declared first so it stops before the
    /// connection closes.
    checkpoints: Option<custody_ledger::Checkpointer>,
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the vault database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        // Owner-only from its first byte, whatever the umask (its -wal and -shm follow it).
        let conn = custody_store::sqlite::open(path, true)
            .map_err(|e| Error::Store(format!("'{}': {e}", path.display())))?;
        conn.pragma_update(None, "secure_delete", "ON").map_err(|e| store_err(&e))?;
        custody_store::sqlite::migrate(&conn, MIGRATIONS)
            .map_err(|e| Error::Store(format!("'{}': {e}", path.display())))?;
        Ok(Self { checkpoints: None, conn, path: path.to_path_buf() })
    }

    fn strings(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<String>, Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| store_err(&e))?;
        let rows = stmt.query_map(p, |r| r.get(0)).map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    fn one_change(&self, change: &Change) -> Result<u64, Error> {
        let c = &self.conn;
        let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64, Error> {
            c.prepare_cached(sql)
                .and_then(|mut s| s.execute(p))
                .map(|n| n as u64)
                .map_err(|e| store_err(&e))
        };
        Ok(match change {
            Change::PutKek { version, wrapped } => run(
                "INSERT INTO keks (version, wrapped) VALUES (?1, ?2)",
                params![version, wrapped],
            )?,
            Change::DropUnusedKeks { below } => run(
                "DELETE FROM keks WHERE version < ?1 AND version NOT IN (SELECT kek_version FROM deks)",
                params![below],
            )?,
            Change::PutDek { collection, record, kek_version, wrapped } => run(
                "INSERT INTO deks (collection, record, kek_version, wrapped) VALUES (?1, ?2, ?3, ?4)",
                params![collection, record, kek_version, wrapped],
            )?,
            Change::Rewrap { collection, record, kek_version, wrapped } => run(
                "UPDATE deks SET kek_version = ?1, wrapped = ?2 WHERE collection = ?3 AND record = ?4",
                params![kek_version, wrapped, collection, record],
            )?,
            Change::PutField {
                collection,
                record,
                field,
                key_version,
                envelope,
                token,
                stored_at,
            } => run(
                "INSERT OR REPLACE INTO fields (collection, record, field, key_version, envelope, token, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![collection, record, field, key_version, envelope, token, stored_at],
            )?,
            Change::PutToken { token, collection, record, field, unique } => {
                // One writer per file: the check and the insert cannot interleave with another.
                let others = "SELECT record FROM tokens WHERE token = ?1 AND NOT (collection = ?2 AND record = ?3 AND field = ?4) LIMIT 1";
                if *unique
                    && !self.strings(others, params![token, collection, record, field])?.is_empty()
                {
                    return Err(Error::Conflict("that token is taken".into()));
                }
                run(
                    "INSERT OR IGNORE INTO tokens (token, collection, record, field) VALUES (?1, ?2, ?3, ?4)",
                    params![token, collection, record, field],
                )?
            }
            Change::PutBlind { collection, field, idx, record } => run(
                "INSERT OR IGNORE INTO blind (collection, field, idx, record) VALUES (?1, ?2, ?3, ?4)",
                params![collection, field, idx, record],
            )?,
            Change::ClearBlind => run("DELETE FROM blind", params![])?,
            Change::ClearIndexes { collection, record, field } => {
                let p = params![collection, record, field];
                run("DELETE FROM blind WHERE collection = ?1 AND record = ?2 AND field = ?3", p)?
                    + run(
                        "DELETE FROM tokens WHERE collection = ?1 AND record = ?2 AND field = ?3",
                        p,
                    )?
            }
            Change::ClearField { collection, record, field } => {
                let p = params![collection, record, field];
                run("DELETE FROM blind WHERE collection = ?1 AND record = ?2 AND field = ?3", p)?;
                run("DELETE FROM tokens WHERE collection = ?1 AND record = ?2 AND field = ?3", p)?;
                run("DELETE FROM fields WHERE collection = ?1 AND record = ?2 AND field = ?3", p)?
            }
            Change::DeleteRecord { collection, record, must_exist } => {
                let p = params![collection, record];
                let gone = run("DELETE FROM deks WHERE collection = ?1 AND record = ?2", p)?;
                if gone == 0 && *must_exist {
                    return Err(Error::NotFound(format!("record in '{collection}'")));
                }
                for sql in [
                    "DELETE FROM blind WHERE collection = ?1 AND record = ?2",
                    "DELETE FROM tokens WHERE collection = ?1 AND record = ?2",
                    "DELETE FROM fields WHERE collection = ?1 AND record = ?2",
                ] {
                    run(sql, p)?;
                }
                gone
            }
            Change::ExpireField { collection, field, before } => {
                let p = params![collection, field, before];
                for table in ["blind", "tokens"] {
                    run(
                        &format!(
                            "DELETE FROM {table} WHERE collection = ?1 AND field = ?2 AND record IN
                             (SELECT record FROM fields WHERE collection = ?1 AND field = ?2 AND stored_at < ?3)"
                        ),
                        p,
                    )?;
                }
                run(
                    "DELETE FROM fields WHERE collection = ?1 AND field = ?2 AND stored_at < ?3",
                    p,
                )?
            }
            Change::PutApiKey { info, tag } => {
                let inserted = c.execute(
                    "INSERT INTO api_keys (id, name, role, tag, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![info.id, info.name, info.role, tag, info.created_at, info.revoked_at],
                );
                match inserted {
                    Ok(n) => n as u64,
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        return Err(Error::Conflict(
                            "an API key with that name exists: choose another name".into(),
                        ));
                    }
                    Err(e) => return Err(store_err(&e)),
                }
            }
            Change::RevokeApiKey { id, at, tag } => run(
                "UPDATE api_keys SET revoked_at = ?1, tag = ?3 WHERE id = ?2 AND revoked_at IS NULL",
                params![at, id, tag],
            )?,
            Change::SealApiKey { id, tag } => {
                run("UPDATE api_keys SET tag = ?2 WHERE id = ?1", params![id, tag])?
            }
        })
    }
}

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
    })
}

fn field_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredField> {
    Ok(StoredField {
        field: r.get(0)?,
        key_version: r.get(1)?,
        envelope: r.get(2)?,
        token: r.get(3)?,
    })
}

impl VaultStore for SqliteStore {
    fn latest_kek(&self) -> Result<Option<(u32, Vec<u8>)>, Error> {
        self.conn
            .query_row("SELECT version, wrapped FROM keks ORDER BY version DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| store_err(&e))
    }

    fn kek(&self, version: u32) -> Result<Option<Vec<u8>>, Error> {
        self.conn
            .query_row("SELECT wrapped FROM keks WHERE version = ?1", [version], |r| r.get(0))
            .optional()
            .map_err(|e| store_err(&e))
    }

    fn dek(&self, collection: &str, record: &str) -> Result<Option<(u32, Vec<u8>)>, Error> {
        self.conn
            .prepare_cached(
                "SELECT kek_version, wrapped FROM deks WHERE collection = ?1 AND record = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![collection, record], |r| Ok((r.get(0)?, r.get(1)?))).optional()
            })
            .map_err(|e| store_err(&e))
    }

    fn deks(&self) -> Result<Vec<StoredDek>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT collection, record, kek_version, wrapped FROM deks")
            .map_err(|e| store_err(&e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredDek {
                    collection: r.get(0)?,
                    record: r.get(1)?,
                    kek_version: r.get(2)?,
                    wrapped: r.get(3)?,
                })
            })
            .map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    fn fields(&self, collection: &str, record: &str) -> Result<Vec<StoredField>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT field, key_version, envelope, token FROM fields WHERE collection = ?1 AND record = ?2")
            .map_err(|e| store_err(&e))?;
        let rows =
            stmt.query_map(params![collection, record], field_row).map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    fn field(
        &self,
        collection: &str,
        record: &str,
        field: &str,
    ) -> Result<Option<StoredField>, Error> {
        self.conn
            .prepare_cached("SELECT field, key_version, envelope, token FROM fields WHERE collection = ?1 AND record = ?2 AND field = ?3")
            .and_then(|mut s| s.query_row(params![collection, record, field], field_row).optional())
            .map_err(|e| store_err(&e))
    }

    fn field_values(
        &self,
        collection: &str,
        field: &str,
    ) -> Result<Vec<(String, StoredField)>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT field, key_version, envelope, token, record FROM fields WHERE collection = ?1 AND field = ?2 ORDER BY record")
            .map_err(|e| store_err(&e))?;
        let rows = stmt
            .query_map(params![collection, field], |r| Ok((r.get(4)?, field_row(r)?)))
            .map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    fn count_values(&self, collection: &str, field: &str) -> Result<u64, Error> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM fields WHERE collection = ?1 AND field = ?2",
                params![collection, field],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| store_err(&e))
    }

    fn find(&self, collection: &str, field: &str, idx: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT record FROM blind WHERE collection = ?1 AND field = ?2 AND idx = ?3 ORDER BY record",
            params![collection, field, idx],
        )
    }

    fn token_taken(&self, token: &str) -> Result<bool, Error> {
        self.conn
            .prepare_cached("SELECT 1 FROM tokens WHERE token = ?1 LIMIT 1")
            .and_then(|mut s| s.exists([token]))
            .map_err(|e| store_err(&e))
    }

    fn token_target(&self, token: &str) -> Result<Option<(String, String, String)>, Error> {
        self.conn
            .prepare_cached("SELECT collection, record, field FROM tokens WHERE token = ?1 ORDER BY collection, record, field LIMIT 1")
            .and_then(|mut s| {
                s.query_row([token], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()
            })
            .map_err(|e| store_err(&e))
    }

    fn tokens_of(&self, collection: &str, record: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT token FROM tokens WHERE collection = ?1 AND record = ?2",
            params![collection, record],
        )
    }

    fn token_holders(&self, collection: &str, token: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT DISTINCT record FROM tokens WHERE collection = ?1 AND token = ?2",
            params![collection, token],
        )
    }

    fn stale_records(&self, collection: &str, before: i64) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT record FROM fields WHERE collection = ?1 GROUP BY record HAVING MAX(stored_at) < ?2",
            params![collection, before],
        )
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyInfo>, Error> {
        self.conn
            .prepare_cached(
                "SELECT id, name, role, created_at, revoked_at FROM api_keys WHERE id = ?1",
            )
            .and_then(|mut s| s.query_row([id], api_key_row).optional())
            .map_err(|e| store_err(&e))
    }

    fn api_key_named(&self, name: &str) -> Result<Option<ApiKeyInfo>, Error> {
        self.conn
            .prepare_cached(
                "SELECT id, name, role, created_at, revoked_at FROM api_keys WHERE name = ?1",
            )
            .and_then(|mut s| s.query_row([name], api_key_row).optional())
            .map_err(|e| store_err(&e))
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, name")
            .map_err(|e| store_err(&e))?;
        let rows = stmt.query_map([], api_key_row).map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    fn api_key_tag(&self, id: &str) -> Result<Option<(ApiKeyInfo, Vec<u8>)>, Error> {
        self.conn
            .prepare_cached(
                "SELECT id, name, role, created_at, revoked_at, tag FROM api_keys WHERE id = ?1",
            )
            .and_then(|mut s| s.query_row([id], |r| Ok((api_key_row(r)?, r.get(5)?))).optional())
            .map_err(|e| store_err(&e))
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Vec<u64>, Error> {
        // A savepoint: inside a batch it is one step of it, outside one it is the
        // transaction (its release commits).
        self.conn.execute_batch("SAVEPOINT apply").map_err(|e| store_err(&e))?;
        let mut counts = Vec::with_capacity(changes.len());
        for change in changes {
            match self.one_change(change) {
                Ok(n) => counts.push(n),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK TO apply; RELEASE apply");
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.conn.execute_batch("RELEASE apply") {
            let _ = self.conn.execute_batch("ROLLBACK TO apply; RELEASE apply");
            return Err(store_err(&e));
        }
        Ok(counts)
    }

    fn begin(&mut self) -> Result<(), Error> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| store_err(&e))
    }

    fn commit(&mut self) -> Result<(), Error> {
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            store_err(&e)
        })
    }

    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    fn count(&self, table: Table) -> Result<u64, Error> {
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", table.name()), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| store_err(&e))
    }

    fn rows(&self, table: Table, offset: u64, limit: u64) -> Result<Vec<Change>, Error> {
        let (offset, limit) = (offset as i64, limit as i64);
        let sql = match table {
            Table::Keks => "SELECT version, wrapped FROM keks ORDER BY version LIMIT ?2 OFFSET ?1",
            Table::Deks => {
                "SELECT collection, record, kek_version, wrapped FROM deks ORDER BY collection, record LIMIT ?2 OFFSET ?1"
            }
            Table::Fields => {
                "SELECT collection, record, field, key_version, envelope, token, stored_at FROM fields ORDER BY collection, record, field LIMIT ?2 OFFSET ?1"
            }
            Table::Tokens => {
                "SELECT token, collection, record, field FROM tokens ORDER BY token, collection, record, field LIMIT ?2 OFFSET ?1"
            }
            Table::Blind => {
                "SELECT collection, field, idx, record FROM blind ORDER BY collection, field, idx, record LIMIT ?2 OFFSET ?1"
            }
            Table::ApiKeys => {
                "SELECT id, name, role, created_at, revoked_at, tag FROM api_keys ORDER BY id LIMIT ?2 OFFSET ?1"
            }
        };
        let mut stmt = self.conn.prepare(sql).map_err(|e| store_err(&e))?;
        let rows = stmt
            .query_map(params![offset, limit], |r| {
                Ok(match table {
                    Table::Keks => Change::PutKek { version: r.get(0)?, wrapped: r.get(1)? },
                    Table::Deks => Change::PutDek {
                        collection: r.get(0)?,
                        record: r.get(1)?,
                        kek_version: r.get(2)?,
                        wrapped: r.get(3)?,
                    },
                    Table::Fields => Change::PutField {
                        collection: r.get(0)?,
                        record: r.get(1)?,
                        field: r.get(2)?,
                        key_version: r.get(3)?,
                        envelope: r.get(4)?,
                        token: r.get(5)?,
                        stored_at: r.get(6)?,
                    },
                    Table::Tokens => Change::PutToken {
                        token: r.get(0)?,
                        collection: r.get(1)?,
                        record: r.get(2)?,
                        field: r.get(3)?,
                        unique: false,
                    },
                    Table::Blind => Change::PutBlind {
                        collection: r.get(0)?,
                        field: r.get(1)?,
                        idx: r.get(2)?,
                        record: r.get(3)?,
                    },
                    Table::ApiKeys => Change::PutApiKey { info: api_key_row(r)?, tag: r.get(5)? },
                })
            })
            .map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    fn scrub_after_erase(&mut self) -> Result<(), Error> {
        // The WAL still holds the frames written when the erased values were stored (and
        // every page since): copy what is current into the database, then cut the WAL to
        // zero bytes. Readers of older snapshots make a checkpoint wait; it is retried a
        // few times, then left to the next erasure (the values are undecryptable already:
        // their data key is gone).
        for attempt in 0..20 {
            let busy: i64 = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(|e| store_err(&e))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10 * (attempt + 1)));
        }
        Err(Error::Busy("the vault's write-ahead log could not be truncated after an erasure; it will be at the next one".into()))
    }

    fn background_housekeeping(&mut self) -> Result<(), Error> {
        self.checkpoints = Some(
            custody_ledger::Checkpointer::start(&self.conn, &self.path)
                .map_err(|e| Error::Store(e.to_string()))?,
        );
        Ok(())
    }
}
