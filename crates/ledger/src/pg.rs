//! The PostgreSQL store: the same tables as SQLite, in a schema of their own, so several
//! `custody` processes (or machines) can share one ledger database.

use std::sync::Mutex;

use postgres::Client;

use crate::Error;
use crate::merkle::Hash;
use crate::store::{LogStore, StoredEvent, StoredNode, StoredRow};

/// A ledger store in a PostgreSQL schema.
pub struct PgStore {
    client: Mutex<Client>,
    schema: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: never printed.
        write!(f, "PgStore({})", self.schema)
    }
}

fn pg(e: &postgres::Error) -> Error {
    Error::Backend(e.to_string())
}

fn to_hash(bytes: Vec<u8>) -> Result<Hash, Error> {
    bytes.try_into().map_err(|_| Error::Backend("a stored hash is not 32 bytes".into()))
}

impl PgStore {
    /// Connects (`host=127.0.0.1 user=postgres dbname=test`, or a `postgres://` address) and
    /// creates the tables in `schema` if they are missing. The connection is encrypted as
    /// the address's `sslmode` asks (`require` by default off this machine; `verify-full`
    /// with `sslrootcert` checks the server), through [`custody_store::pg`]. The schema name
    /// must be a plain identifier.
    pub fn connect(params: &str, schema: &str) -> Result<Self, Error> {
        if schema.is_empty()
            || !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::Backend(
                "the schema name must be lower-case letters, digits and _".into(),
            ));
        }
        let mut client = custody_store::pg::connect(params).map_err(Error::Backend)?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS {schema}.events (idx BIGINT PRIMARY KEY, time BIGINT NOT NULL,
                     actor TEXT NOT NULL, action TEXT NOT NULL, record TEXT, leaf BYTEA NOT NULL);
                 CREATE INDEX IF NOT EXISTS events_time ON {schema}.events(time);
                 CREATE TABLE IF NOT EXISTS {schema}.nodes (done BIGINT NOT NULL, level INTEGER NOT NULL,
                     hash BYTEA NOT NULL, PRIMARY KEY (done, level));
                 CREATE TABLE IF NOT EXISTS {schema}.checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL);"
            ))
            .map_err(|e| pg(&e))?;
        Ok(Self { client: Mutex::new(client), schema: schema.to_string() })
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl LogStore for PgStore {
    fn size(&self) -> Result<u64, Error> {
        let row = self
            .client()
            .query_one(&format!("SELECT MAX(idx) FROM {}.events", self.schema), &[])
            .map_err(|e| pg(&e))?;
        let max: Option<i64> = row.get(0);
        Ok(max.map_or(0, |n| n as u64 + 1))
    }

    fn append(
        &mut self,
        first: u64,
        events: &[StoredEvent<'_>],
        nodes: &[StoredNode],
    ) -> Result<(), Error> {
        let schema = self.schema.clone();
        let mut client = self.client();
        let mut tx = client.transaction().map_err(|e| pg(&e))?;
        let insert_event = tx
            .prepare(&format!("INSERT INTO {schema}.events (idx, time, actor, action, record, leaf) VALUES ($1, $2, $3, $4, $5, $6)"))
            .map_err(|e| pg(&e))?;
        for (i, e) in events.iter().enumerate() {
            let idx = (first + i as u64) as i64;
            tx.execute(&insert_event, &[&idx, &e.time, &e.actor, &e.action, &e.record, &e.leaf])
                .map_err(|e| pg(&e))?;
        }
        let insert_node = tx
            .prepare(&format!("INSERT INTO {schema}.nodes (done, level, hash) VALUES ($1, $2, $3)"))
            .map_err(|e| pg(&e))?;
        for n in nodes {
            let (done, level) = (n.done as i64, n.level as i32);
            tx.execute(&insert_node, &[&done, &level, &n.hash.as_slice()]).map_err(|e| pg(&e))?;
        }
        // PostgreSQL commits durably (synchronous_commit defaults to on).
        tx.commit().map_err(|e| pg(&e))
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, Error> {
        let done = ((index + 1) << level) as i64;
        let row = self
            .client()
            .query_one(
                &format!("SELECT hash FROM {}.nodes WHERE done = $1 AND level = $2", self.schema),
                &[&done, &(level as i32)],
            )
            .map_err(|e| pg(&e))?;
        to_hash(row.get(0))
    }

    fn leaf(&self, index: u64) -> Result<Vec<u8>, Error> {
        let row = self
            .client()
            .query_one(
                &format!("SELECT leaf FROM {}.events WHERE idx = $1", self.schema),
                &[&(index as i64)],
            )
            .map_err(|e| pg(&e))?;
        Ok(row.get(0))
    }

    fn events_from(&self, from: u64, limit: u64) -> Result<Vec<StoredRow>, Error> {
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT idx, leaf, time, actor, action, record FROM {}.events WHERE idx >= $1 ORDER BY idx LIMIT $2",
                    self.schema
                ),
                &[&(from as i64), &(limit as i64)],
            )
            .map_err(|e| pg(&e))?;
        Ok(rows
            .iter()
            .map(|r| StoredRow {
                index: r.get::<_, i64>(0) as u64,
                leaf: r.get(1),
                time: r.get(2),
                actor: r.get(3),
                action: r.get(4),
                record: r.get(5),
            })
            .collect())
    }

    fn nodes_between(&self, first: u64, last: u64) -> Result<Vec<StoredNode>, Error> {
        let rows = self
            .client()
            .query(
                &format!("SELECT done, level, hash FROM {}.nodes WHERE done >= $1 AND done <= $2 ORDER BY done, level", self.schema),
                &[&(first as i64), &(last as i64)],
            )
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| {
                Ok(StoredNode {
                    done: r.get::<_, i64>(0) as u64,
                    level: r.get::<_, i32>(1) as u32,
                    hash: to_hash(r.get(2))?,
                })
            })
            .collect()
    }

    fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), Error> {
        self.client()
            .execute(
                &format!(
                    "INSERT INTO {}.checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note",
                    self.schema
                ),
                &[&(size as i64), &note],
            )
            .map_err(|e| pg(&e))?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, Error> {
        let rows = self
            .client()
            .query(
                &format!("SELECT size, note FROM {}.checkpoints ORDER BY size", self.schema),
                &[],
            )
            .map_err(|e| pg(&e))?;
        Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))).collect())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, Error> {
        let rows = self
            .client()
            .query(&format!("SELECT value FROM {}.meta WHERE key = $1", self.schema), &[&key])
            .map_err(|e| pg(&e))?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.client()
            .execute(
                &format!("INSERT INTO {}.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", self.schema),
                &[&key, &value],
            )
            .map_err(|e| pg(&e))?;
        Ok(())
    }
}
