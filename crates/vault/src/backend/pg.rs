//! The PostgreSQL store: the SQLite store's tables in a schema of their own, so several
//! `custody serve` nodes share one vault. Connections go through [`custody_store::pg`]
//! (TLS as the address's `sslmode` asks).
//!
//! Differences from SQLite, each deliberate:
//! - `deks.kek_version` references `keks`: a node that has not yet seen another node's key
//!   rotation cannot wrap a new data key under a KEK version the rotation deleted — the
//!   write fails (and the writer reloads the newest KEK) instead of making a record that no
//!   key opens.
//! - A token that must lead to one value (an SSN token) is marked `sole`, and a partial
//!   unique index keeps it to one row: a node inserting a token another node has just
//!   taken waits for that commit, then inserts nothing, and draws again.
//! - Erased rows are deleted; PostgreSQL has no `secure_delete`, so their bytes stay in
//!   dead tuples until `VACUUM` reuses the space. They stay unreadable all the same: the
//!   record's data key is deleted in the same transaction, and what remains is sealed
//!   under it.

use std::collections::HashMap;
use std::sync::Mutex;

use postgres::types::ToSql;
use postgres::{Client, Statement};

use super::{Change, StoredDek, StoredField, Table, VaultStore};
use crate::{ApiKeyInfo, Error};

/// A PostgreSQL error in words: the server's message (never its detail, which can quote a
/// row) or the connection failure.
fn pg_err(e: &postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        return Error::Store(format!("PostgreSQL: {} ({})", db.message(), db.code().code()));
    }
    Error::Store(custody_store::pg::failure(e).map_or_else(|| e.to_string(), str::to_string))
}

struct Conn {
    client: Client,
    /// Prepared statements by their SQL template.
    prepared: HashMap<&'static str, Statement>,
    in_batch: bool,
}

/// A vault store in a PostgreSQL schema.
pub(crate) struct PgStore {
    conn: Mutex<Conn>,
    schema: String,
}

fn check_schema(schema: &str) -> Result<(), Error> {
    if schema.is_empty()
        || schema.len() > 50
        || !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || schema.as_bytes()[0].is_ascii_digit()
    {
        return Err(Error::Config(
            "the PostgreSQL schema name must be lower-case letters, digits and _".into(),
        ));
    }
    Ok(())
}

impl PgStore {
    /// Connects and creates the tables in `schema` if they are missing.
    pub(crate) fn connect(url: &str, schema: &str) -> Result<Self, Error> {
        check_schema(schema)?;
        let mut client = custody_store::pg::connect(url)
            .map_err(|e| Error::Store(format!("cannot connect to the PostgreSQL store: {e}")))?;
        // Several nodes may create the schema at once: one at a time, by an advisory lock.
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_lock(hashtext('custody-vault-schema'));
                 CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO {schema}.meta (key, value) VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;
                 CREATE TABLE IF NOT EXISTS {schema}.keks (version INTEGER PRIMARY KEY, wrapped BYTEA NOT NULL);
                 CREATE TABLE IF NOT EXISTS {schema}.deks (collection TEXT NOT NULL, record TEXT NOT NULL,
                     kek_version INTEGER NOT NULL REFERENCES {schema}.keks(version), wrapped BYTEA NOT NULL,
                     PRIMARY KEY (collection, record));
                 CREATE TABLE IF NOT EXISTS {schema}.fields (collection TEXT NOT NULL, record TEXT NOT NULL,
                     field TEXT NOT NULL, key_version INTEGER NOT NULL, envelope BYTEA NOT NULL, token TEXT,
                     stored_at BIGINT NOT NULL, PRIMARY KEY (collection, record, field));
                 CREATE TABLE IF NOT EXISTS {schema}.blind (collection TEXT NOT NULL, field TEXT NOT NULL,
                     idx TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (collection, field, idx, record));
                 CREATE INDEX IF NOT EXISTS blind_record ON {schema}.blind (collection, record);
                 CREATE TABLE IF NOT EXISTS {schema}.tokens (token TEXT NOT NULL, collection TEXT NOT NULL,
                     record TEXT NOT NULL, field TEXT NOT NULL, sole BOOLEAN NOT NULL DEFAULT false,
                     PRIMARY KEY (token, collection, record, field));
                 CREATE UNIQUE INDEX IF NOT EXISTS tokens_sole ON {schema}.tokens (token) WHERE sole;
                 CREATE INDEX IF NOT EXISTS tokens_record ON {schema}.tokens (collection, record);
                 CREATE TABLE IF NOT EXISTS {schema}.api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                     role TEXT NOT NULL, tag BYTEA NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT);
                 SELECT pg_advisory_unlock(hashtext('custody-vault-schema'));"
            ))
            .map_err(|e| pg_err(&e))?;
        let version: String = client
            .query_one(
                &format!("SELECT value FROM {schema}.meta WHERE key = 'schema_version'"),
                &[],
            )
            .map_err(|e| pg_err(&e))?
            .get(0);
        if version != "1" {
            return Err(Error::Store(format!(
                "the vault in schema '{schema}' has schema version {version}, made by a newer custody: upgrade custody to open it"
            )));
        }
        Ok(Self {
            conn: Mutex::new(Conn { client, prepared: HashMap::new(), in_batch: false }),
            schema: schema.to_string(),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` with the client and the prepared statement for `sql` (`{s}` is the schema).
    fn with<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut Client, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        let mut conn = self.conn();
        let conn = &mut *conn;
        if !conn.prepared.contains_key(sql) {
            let statement =
                conn.client.prepare(&sql.replace("{s}", &self.schema)).map_err(|e| pg_err(&e))?;
            conn.prepared.insert(sql, statement);
        }
        f(&mut conn.client, &conn.prepared[sql]).map_err(|e| pg_err(&e))
    }

    fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, Error> {
        self.with(sql, |c, s| c.query(s, params))
    }

    fn query_opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, Error> {
        self.with(sql, |c, s| c.query_opt(s, params))
    }

    fn strings(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<String>, Error> {
        Ok(self.query(sql, params)?.iter().map(|r| r.get(0)).collect())
    }

    fn execute(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        self.with(sql, |c, s| c.execute(s, params))
    }

    fn one_change(&self, change: &Change) -> Result<u64, Error> {
        Ok(match change {
            Change::PutKek { version, wrapped } => self.execute(
                "INSERT INTO {s}.keks (version, wrapped) VALUES ($1, $2)",
                &[&(*version as i32), wrapped],
            )?,
            Change::DropUnusedKeks { below } => self.execute(
                "DELETE FROM {s}.keks WHERE version < $1 AND version NOT IN (SELECT kek_version FROM {s}.deks)",
                &[&(*below as i32)],
            )?,
            Change::Rewrap { collection, record, kek_version, wrapped } => self.execute(
                "UPDATE {s}.deks SET kek_version = $1, wrapped = $2 WHERE collection = $3 AND record = $4",
                &[&(*kek_version as i32), wrapped, collection, record],
            )?,
            // Inserts wait in `Rows` and go in one statement (`flush`).
            Change::PutDek { .. }
            | Change::PutField { .. }
            | Change::PutToken { .. }
            | Change::PutBlind { .. } => unreachable!("inserts are batched by Rows::take"),
            Change::ClearBlind => self.execute("DELETE FROM {s}.blind", &[])?,
            Change::ClearIndexes { collection, record, field } => {
                let p: [&(dyn ToSql + Sync); 3] = [collection, record, field];
                self.execute("DELETE FROM {s}.blind WHERE collection = $1 AND record = $2 AND field = $3", &p)?
                    + self.execute("DELETE FROM {s}.tokens WHERE collection = $1 AND record = $2 AND field = $3", &p)?
            }
            Change::ClearField { collection, record, field } => {
                let p: [&(dyn ToSql + Sync); 3] = [collection, record, field];
                self.execute("DELETE FROM {s}.blind WHERE collection = $1 AND record = $2 AND field = $3", &p)?;
                self.execute("DELETE FROM {s}.tokens WHERE collection = $1 AND record = $2 AND field = $3", &p)?;
                self.execute("DELETE FROM {s}.fields WHERE collection = $1 AND record = $2 AND field = $3", &p)?
            }
            Change::DeleteRecord { collection, record, must_exist } => {
                let p: [&(dyn ToSql + Sync); 2] = [collection, record];
                let gone =
                    self.execute("DELETE FROM {s}.deks WHERE collection = $1 AND record = $2", &p)?;
                if gone == 0 && *must_exist {
                    return Err(Error::NotFound(format!("record in '{collection}'")));
                }
                self.execute("DELETE FROM {s}.blind WHERE collection = $1 AND record = $2", &p)?;
                self.execute("DELETE FROM {s}.tokens WHERE collection = $1 AND record = $2", &p)?;
                self.execute("DELETE FROM {s}.fields WHERE collection = $1 AND record = $2", &p)?;
                gone
            }
            Change::ExpireField { collection, field, before } => {
                let p: [&(dyn ToSql + Sync); 3] = [collection, field, before];
                self.execute(
                    "DELETE FROM {s}.blind WHERE collection = $1 AND field = $2 AND record IN
                     (SELECT record FROM {s}.fields WHERE collection = $1 AND field = $2 AND stored_at < $3)",
                    &p,
                )?;
                self.execute(
                    "DELETE FROM {s}.tokens WHERE collection = $1 AND field = $2 AND record IN
                     (SELECT record FROM {s}.fields WHERE collection = $1 AND field = $2 AND stored_at < $3)",
                    &p,
                )?;
                self.execute(
                    "DELETE FROM {s}.fields WHERE collection = $1 AND field = $2 AND stored_at < $3",
                    &p,
                )?
            }
            Change::PutApiKey { info, tag } => {
                let inserted = self.execute(
                    "INSERT INTO {s}.api_keys (id, name, role, tag, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&info.id, &info.name, &info.role, tag, &info.created_at, &info.revoked_at],
                )?;
                if inserted == 0 {
                    return Err(Error::Conflict(
                        "an API key with that name exists: choose another name".into(),
                    ));
                }
                inserted
            }
            Change::RevokeApiKey { id, at, tag } => self.execute(
                "UPDATE {s}.api_keys SET revoked_at = $1, tag = $3 WHERE id = $2 AND revoked_at IS NULL",
                &[at, id, tag],
            )?,
            Change::SealApiKey { id, tag } => {
                self.execute("UPDATE {s}.api_keys SET tag = $2 WHERE id = $1", &[id, tag])?
            }
        })
    }

    /// Inserts the rows waiting in `rows`, one statement per table.
    fn flush(&self, rows: &mut Rows) -> Result<(), Error> {
        fn col(rows: &[[String; 4]], i: usize) -> Vec<&str> {
            rows.iter().map(|r| r[i].as_str()).collect()
        }
        let rows = std::mem::take(rows);
        if rows.is_empty() {
            return Ok(());
        }
        let d = &rows.deks;
        let d_c: Vec<&str> = d.iter().map(|r| r.0.as_str()).collect();
        let d_r: Vec<&str> = d.iter().map(|r| r.1.as_str()).collect();
        let d_v: Vec<i32> = d.iter().map(|r| r.2).collect();
        let d_w: Vec<&[u8]> = d.iter().map(|r| r.3.as_slice()).collect();
        let f = &rows.fields;
        let c: Vec<&str> = f.iter().map(|r| r.0.as_str()).collect();
        let r: Vec<&str> = f.iter().map(|r| r.1.as_str()).collect();
        let n: Vec<&str> = f.iter().map(|r| r.2.as_str()).collect();
        let v: Vec<i32> = f.iter().map(|r| r.3).collect();
        let e: Vec<&[u8]> = f.iter().map(|r| r.4.as_slice()).collect();
        let t: Vec<Option<&str>> = f.iter().map(|r| r.5.as_deref()).collect();
        let at: Vec<i64> = f.iter().map(|r| r.6).collect();
        let sole: Vec<bool> = rows.sole.clone();
        let wanted_sole = sole.iter().filter(|s| **s).count() as i64;
        // One statement for the whole change list: each table's rows unnested in a
        // data-modifying CTE (each runs once, whether or not it is read).
        let row = self.with(
            "WITH k AS (INSERT INTO {s}.deks (collection, record, kek_version, wrapped)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bytea[]) RETURNING 1),
             f AS (INSERT INTO {s}.fields (collection, record, field, key_version, envelope, token, stored_at)
                 SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::int[], $9::bytea[], $10::text[], $11::bigint[])
                 ON CONFLICT (collection, record, field) DO UPDATE SET key_version = EXCLUDED.key_version,
                     envelope = EXCLUDED.envelope, token = EXCLUDED.token, stored_at = EXCLUDED.stored_at RETURNING 1),
             t AS (INSERT INTO {s}.tokens (token, collection, record, field, sole)
                 SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::bool[])
                 ON CONFLICT DO NOTHING RETURNING sole),
             b AS (INSERT INTO {s}.blind (collection, field, idx, record)
                 SELECT * FROM unnest($17::text[], $18::text[], $19::text[], $20::text[]) ON CONFLICT DO NOTHING RETURNING 1)
             SELECT (SELECT count(*) FROM t WHERE sole), (SELECT count(*) FROM k) + (SELECT count(*) FROM f) + (SELECT count(*) FROM b)",
            |client, statement| {
                client.query_one(
                    statement,
                    &[
                        &d_c, &d_r, &d_v, &d_w,
                        &c, &r, &n, &v, &e, &t, &at,
                        &col(&rows.tokens, 0), &col(&rows.tokens, 1), &col(&rows.tokens, 2), &col(&rows.tokens, 3), &sole,
                        &col(&rows.blind, 0), &col(&rows.blind, 1), &col(&rows.blind, 2), &col(&rows.blind, 3),
                    ],
                )
            },
        )?;
        // A token that must lead to one field only, already taken (another node drew it at
        // the same moment: the unique index made this insert wait for that one's commit).
        if row.get::<_, i64>(0) < wanted_sole {
            return Err(Error::Conflict("that token is taken".into()));
        }
        Ok(())
    }

    fn batch_sql(&self, sql: &str) -> Result<(), Error> {
        self.conn().client.batch_execute(sql).map_err(|e| pg_err(&e))
    }
}

/// A field row: collection, record, field, key version, envelope, token, stored at.
type FieldRow = (String, String, String, i32, Vec<u8>, Option<String>, i64);

/// Inserts waiting to be sent together.
#[derive(Default)]
struct Rows {
    deks: Vec<(String, String, i32, Vec<u8>)>,
    fields: Vec<FieldRow>,
    tokens: Vec<[String; 4]>,
    /// Per token: whether it must lead to its field only.
    sole: Vec<bool>,
    blind: Vec<[String; 4]>,
}

impl Rows {
    fn is_empty(&self) -> bool {
        self.deks.is_empty()
            && self.fields.is_empty()
            && self.tokens.is_empty()
            && self.blind.is_empty()
    }

    /// Keeps `change` if it is an insert that can wait; false otherwise.
    fn take(&mut self, change: &Change) -> bool {
        match change {
            Change::PutField {
                collection,
                record,
                field,
                key_version,
                envelope,
                token,
                stored_at,
            } => {
                self.fields.push((
                    collection.clone(),
                    record.clone(),
                    field.clone(),
                    *key_version as i32,
                    envelope.clone(),
                    token.clone(),
                    *stored_at,
                ));
                true
            }
            Change::PutToken { token, collection, record, field, unique } => {
                self.tokens.push([
                    token.clone(),
                    collection.clone(),
                    record.clone(),
                    field.clone(),
                ]);
                self.sole.push(*unique);
                true
            }
            Change::PutDek { collection, record, kek_version, wrapped } => {
                self.deks.push((
                    collection.clone(),
                    record.clone(),
                    *kek_version as i32,
                    wrapped.clone(),
                ));
                true
            }
            Change::PutBlind { collection, field, idx, record } => {
                self.blind.push([collection.clone(), field.clone(), idx.clone(), record.clone()]);
                true
            }
            _ => false,
        }
    }
}

fn api_key_row(r: &postgres::Row) -> ApiKeyInfo {
    ApiKeyInfo {
        id: r.get(0),
        name: r.get(1),
        role: r.get(2),
        created_at: r.get(3),
        revoked_at: r.get(4),
    }
}

fn field_row(r: &postgres::Row) -> StoredField {
    StoredField {
        field: r.get(0),
        key_version: r.get::<_, i32>(1) as u32,
        envelope: r.get(2),
        token: r.get(3),
    }
}

impl VaultStore for PgStore {
    fn latest_kek(&self) -> Result<Option<(u32, Vec<u8>)>, Error> {
        Ok(self
            .query_opt("SELECT version, wrapped FROM {s}.keks ORDER BY version DESC LIMIT 1", &[])?
            .map(|r| (r.get::<_, i32>(0) as u32, r.get(1))))
    }

    fn kek(&self, version: u32) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .query_opt("SELECT wrapped FROM {s}.keks WHERE version = $1", &[&(version as i32)])?
            .map(|r| r.get(0)))
    }

    fn dek(&self, collection: &str, record: &str) -> Result<Option<(u32, Vec<u8>)>, Error> {
        Ok(self
            .query_opt(
                "SELECT kek_version, wrapped FROM {s}.deks WHERE collection = $1 AND record = $2",
                &[&collection, &record],
            )?
            .map(|r| (r.get::<_, i32>(0) as u32, r.get(1))))
    }

    fn deks(&self) -> Result<Vec<StoredDek>, Error> {
        Ok(self
            .query("SELECT collection, record, kek_version, wrapped FROM {s}.deks", &[])?
            .iter()
            .map(|r| StoredDek {
                collection: r.get(0),
                record: r.get(1),
                kek_version: r.get::<_, i32>(2) as u32,
                wrapped: r.get(3),
            })
            .collect())
    }

    fn fields(&self, collection: &str, record: &str) -> Result<Vec<StoredField>, Error> {
        Ok(self
            .query(
                "SELECT field, key_version, envelope, token FROM {s}.fields WHERE collection = $1 AND record = $2",
                &[&collection, &record],
            )?
            .iter()
            .map(field_row)
            .collect())
    }

    fn field(
        &self,
        collection: &str,
        record: &str,
        field: &str,
    ) -> Result<Option<StoredField>, Error> {
        Ok(self
            .query_opt(
                "SELECT field, key_version, envelope, token FROM {s}.fields WHERE collection = $1 AND record = $2 AND field = $3",
                &[&collection, &record, &field],
            )?
            .as_ref()
            .map(field_row))
    }

    fn field_values(
        &self,
        collection: &str,
        field: &str,
    ) -> Result<Vec<(String, StoredField)>, Error> {
        Ok(self
            .query(
                "SELECT field, key_version, envelope, token, record FROM {s}.fields WHERE collection = $1 AND field = $2 ORDER BY record",
                &[&collection, &field],
            )?
            .iter()
            .map(|r| (r.get(4), field_row(r)))
            .collect())
    }

    fn count_values(&self, collection: &str, field: &str) -> Result<u64, Error> {
        let row = self.query_opt(
            "SELECT COUNT(*) FROM {s}.fields WHERE collection = $1 AND field = $2",
            &[&collection, &field],
        )?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn find(&self, collection: &str, field: &str, idx: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT record FROM {s}.blind WHERE collection = $1 AND field = $2 AND idx = $3 ORDER BY record",
            &[&collection, &field, &idx],
        )
    }

    fn token_taken(&self, _token: &str) -> Result<bool, Error> {
        // Not looked up: the insert itself keeps a sole token to one row (the partial
        // unique index), and a token taken meanwhile fails the change with a conflict, on
        // which the vault draws again. A look-up first only cost a round trip per record
        // (measured: the busiest statement of a create load on a new vault).
        Ok(false)
    }

    fn token_target(&self, token: &str) -> Result<Option<(String, String, String)>, Error> {
        Ok(self
            .query_opt(
                "SELECT collection, record, field FROM {s}.tokens WHERE token = $1 ORDER BY collection, record, field LIMIT 1",
                &[&token],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    fn tokens_of(&self, collection: &str, record: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT token FROM {s}.tokens WHERE collection = $1 AND record = $2",
            &[&collection, &record],
        )
    }

    fn token_holders(&self, collection: &str, token: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT DISTINCT record FROM {s}.tokens WHERE collection = $1 AND token = $2",
            &[&collection, &token],
        )
    }

    fn stale_records(&self, collection: &str, before: i64) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT record FROM {s}.fields WHERE collection = $1 GROUP BY record HAVING MAX(stored_at) < $2",
            &[&collection, &before],
        )
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyInfo>, Error> {
        Ok(self
            .query_opt(
                "SELECT id, name, role, created_at, revoked_at FROM {s}.api_keys WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(api_key_row))
    }

    fn api_key_named(&self, name: &str) -> Result<Option<ApiKeyInfo>, Error> {
        Ok(self
            .query_opt(
                "SELECT id, name, role, created_at, revoked_at FROM {s}.api_keys WHERE name = $1",
                &[&name],
            )?
            .as_ref()
            .map(api_key_row))
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, Error> {
        Ok(self
            .query(
                "SELECT id, name, role, created_at, revoked_at FROM {s}.api_keys ORDER BY created_at, name",
                &[],
            )?
            .iter()
            .map(api_key_row)
            .collect())
    }

    fn api_key_tag(&self, id: &str) -> Result<Option<(ApiKeyInfo, Vec<u8>)>, Error> {
        Ok(self
            .query_opt(
                "SELECT id, name, role, created_at, revoked_at, tag FROM {s}.api_keys WHERE id = $1",
                &[&id],
            )?
            .map(|r| (api_key_row(&r), r.get(5))))
    }

    fn record(
        &self,
        collection: &str,
        record: &str,
    ) -> Result<Option<(super::StoredKey, Vec<StoredField>)>, Error> {
        let rows = self.query(
            "SELECT d.kek_version, d.wrapped, f.field, f.key_version, f.envelope, f.token
             FROM {s}.deks d LEFT JOIN {s}.fields f ON f.collection = d.collection AND f.record = d.record
             WHERE d.collection = $1 AND d.record = $2",
            &[&collection, &record],
        )?;
        let Some(first) = rows.first() else { return Ok(None) };
        let dek = (first.get::<_, i32>(0) as u32, first.get(1));
        let fields = rows
            .iter()
            .filter_map(|r| {
                let field: Option<String> = r.get(2);
                Some(StoredField {
                    field: field?,
                    key_version: r.get::<_, i32>(3) as u32,
                    envelope: r.get(4),
                    token: r.get(5),
                })
            })
            .collect();
        Ok(Some((dek, fields)))
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Vec<u64>, Error> {
        let in_batch = self.conn().in_batch;
        self.batch_sql(if in_batch { "SAVEPOINT apply" } else { "BEGIN" })?;
        let mut counts = Vec::with_capacity(changes.len());
        let mut rows = Rows::default();
        let mut done = Ok(());
        for change in changes {
            // Inserts of fields, tokens and index entries wait, to go in one statement per
            // table (a record is some twenty rows: one round trip each would dominate).
            if rows.take(change) {
                counts.push(1);
                continue;
            }
            let step = self.flush(&mut rows).and_then(|()| self.one_change(change));
            match step {
                Ok(n) => counts.push(n),
                Err(e) => {
                    done = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = done.and_then(|()| self.flush(&mut rows)) {
            let _ = self.batch_sql(if in_batch {
                "ROLLBACK TO SAVEPOINT apply; RELEASE SAVEPOINT apply"
            } else {
                "ROLLBACK"
            });
            return Err(e);
        }
        // PostgreSQL commits durably (synchronous_commit defaults to on).
        if let Err(e) = self.batch_sql(if in_batch { "RELEASE SAVEPOINT apply" } else { "COMMIT" })
        {
            let _ = self.batch_sql("ROLLBACK");
            return Err(e);
        }
        Ok(counts)
    }

    fn begin(&mut self) -> Result<(), Error> {
        self.batch_sql("BEGIN")?;
        self.conn().in_batch = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Error> {
        self.conn().in_batch = false;
        self.batch_sql("COMMIT").inspect_err(|_| {
            let _ = self.batch_sql("ROLLBACK");
        })
    }

    fn rollback(&mut self) {
        self.conn().in_batch = false;
        let _ = self.batch_sql("ROLLBACK");
    }

    fn count(&self, table: Table) -> Result<u64, Error> {
        let sql = format!("SELECT COUNT(*) FROM {}.{}", self.schema, table.name());
        let row = self.conn().client.query_one(&sql, &[]).map_err(|e| pg_err(&e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn rows(&self, table: Table, offset: u64, limit: u64) -> Result<Vec<Change>, Error> {
        let (offset, limit) = (offset as i64, limit as i64);
        let sql = match table {
            Table::Keks => {
                "SELECT version, wrapped FROM {s}.keks ORDER BY version LIMIT $2 OFFSET $1"
            }
            Table::Deks => {
                "SELECT collection, record, kek_version, wrapped FROM {s}.deks ORDER BY collection, record LIMIT $2 OFFSET $1"
            }
            Table::Fields => {
                "SELECT collection, record, field, key_version, envelope, token, stored_at FROM {s}.fields ORDER BY collection, record, field LIMIT $2 OFFSET $1"
            }
            Table::Tokens => {
                "SELECT token, collection, record, field FROM {s}.tokens ORDER BY token, collection, record, field LIMIT $2 OFFSET $1"
            }
            Table::Blind => {
                "SELECT collection, field, idx, record FROM {s}.blind ORDER BY collection, field, idx, record LIMIT $2 OFFSET $1"
            }
            Table::ApiKeys => {
                "SELECT id, name, role, created_at, revoked_at, tag FROM {s}.api_keys ORDER BY id LIMIT $2 OFFSET $1"
            }
        };
        let rows = self.query(sql, &[&offset, &limit])?;
        Ok(rows
            .iter()
            .map(|r| match table {
                Table::Keks => {
                    Change::PutKek { version: r.get::<_, i32>(0) as u32, wrapped: r.get(1) }
                }
                Table::Deks => Change::PutDek {
                    collection: r.get(0),
                    record: r.get(1),
                    kek_version: r.get::<_, i32>(2) as u32,
                    wrapped: r.get(3),
                },
                Table::Fields => Change::PutField {
                    collection: r.get(0),
                    record: r.get(1),
                    field: r.get(2),
                    key_version: r.get::<_, i32>(3) as u32,
                    envelope: r.get(4),
                    token: r.get(5),
                    stored_at: r.get(6),
                },
                Table::Tokens => Change::PutToken {
                    token: r.get(0),
                    collection: r.get(1),
                    record: r.get(2),
                    field: r.get(3),
                    unique: false,
                },
                Table::Blind => Change::PutBlind {
                    collection: r.get(0),
                    field: r.get(1),
                    idx: r.get(2),
                    record: r.get(3),
                },
                Table::ApiKeys => Change::PutApiKey { info: api_key_row(r), tag: r.get(5) },
            })
            .collect())
    }
}
