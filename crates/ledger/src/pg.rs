//! The PostgreSQL store: the same tables as SQLite, in a schema of their own, so several
//! `custody` processes (or machines) can share one ledger database.

use std::sync::Mutex;

use postgres::Client;

use crate::Error;
use crate::merkle::Hash;
use crate::store::{LogStore, StoredEvent, StoredNode, StoredRow};

/// A ledger store in a PostgreSQL schema. Several writers (one per `custody serve` node)
/// may share it: [`LogStore::begin_append`] serialises their appends with a transaction
/// advisory lock, and the writer that holds the session advisory lock of the sequencer
/// role signs the checkpoints.
pub struct PgStore {
    client: Mutex<Client>,
    schema: String,
    /// A transaction holding the append lock is open.
    appending: bool,
    /// This connection holds the sequencer role.
    sequencer: bool,
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
        Ok(Self {
            client: Mutex::new(client),
            schema: schema.to_string(),
            appending: false,
            sequencer: false,
        })
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
        let own_transaction = !self.appending;
        let mut client = self.client();
        if own_transaction {
            client.batch_execute("BEGIN").map_err(|e| pg(&e))?;
        }
        // One statement per table, whatever the batch size: arrays unnested server-side.
        let idx: Vec<i64> = (0..events.len()).map(|i| (first + i as u64) as i64).collect();
        let time: Vec<i64> = events.iter().map(|e| e.time).collect();
        let actor: Vec<&str> = events.iter().map(|e| e.actor).collect();
        let action: Vec<&str> = events.iter().map(|e| e.action).collect();
        let record: Vec<Option<&str>> = events.iter().map(|e| e.record).collect();
        let leaf: Vec<&[u8]> = events.iter().map(|e| e.leaf).collect();
        let done: Vec<i64> = nodes.iter().map(|n| n.done as i64).collect();
        let level: Vec<i32> = nodes.iter().map(|n| n.level as i32).collect();
        let hash: Vec<&[u8]> = nodes.iter().map(|n| n.hash.as_slice()).collect();
        let stored = client
            .execute(
                &format!(
                    "INSERT INTO {schema}.events (idx, time, actor, action, record, leaf)
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[])"
                ),
                &[&idx, &time, &actor, &action, &record, &leaf],
            )
            .and_then(|_| {
                client.execute(
                    &format!(
                        "INSERT INTO {schema}.nodes (done, level, hash)
                         SELECT * FROM unnest($1::bigint[], $2::int[], $3::bytea[])"
                    ),
                    &[&done, &level, &hash],
                )
            });
        if own_transaction {
            // PostgreSQL commits durably (synchronous_commit defaults to on).
            let ended = match stored {
                Ok(_) => client.batch_execute("COMMIT"),
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK");
                    return Err(pg(&e));
                }
            };
            return ended.map_err(|e| pg(&e));
        }
        stored.map(|_| ()).map_err(|e| pg(&e))
    }

    fn begin_append(&mut self) -> Result<Option<u64>, Error> {
        // One round trip: open a transaction, wait for the append lock (held until it ends,
        // and released by the server if this connection dies), read the size under it.
        let sql = format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('custody-ledger-append.{0}')); SELECT MAX(idx) FROM {0}.events",
            self.schema
        );
        let messages = self.client().simple_query(&sql).map_err(|e| pg(&e))?;
        self.appending = true;
        let max = messages
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
                _ => None,
            })
            .next_back()
            .flatten();
        match max {
            None => Ok(Some(0)),
            Some(text) => text
                .parse::<u64>()
                .map(|m| Some(m + 1))
                .map_err(|_| Error::Backend("the ledger's size is not a number".into())),
        }
    }

    fn end_append(&mut self, commit: bool) -> Result<(), Error> {
        if !self.appending {
            return Ok(());
        }
        self.appending = false;
        let mut client = self.client();
        if commit {
            client.batch_execute("COMMIT").map_err(|e| {
                let _ = client.batch_execute("ROLLBACK");
                pg(&e)
            })
        } else {
            client.batch_execute("ROLLBACK").map_err(|e| pg(&e))
        }
    }

    fn sequencer(&mut self) -> Result<bool, Error> {
        if !self.sequencer {
            // A session lock: held while this connection lives, so when the node that holds
            // it stops (or is killed), the next node to ask takes the role over.
            let row = self
                .client()
                .query_one(
                    &format!(
                        "SELECT pg_try_advisory_lock(hashtext('custody-ledger-sequencer.{}'))",
                        self.schema
                    ),
                    &[],
                )
                .map_err(|e| pg(&e))?;
            self.sequencer = row.get(0);
        }
        Ok(self.sequencer)
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

    fn nodes_at(&self, wanted: &[(u32, u64)]) -> Result<Vec<Hash>, Error> {
        // One round trip (a writer catching up with another node does this under the
        // append lock).
        let done: Vec<i64> = wanted.iter().map(|&(l, i)| ((i + 1) << l) as i64).collect();
        let level: Vec<i32> = wanted.iter().map(|&(l, _)| l as i32).collect();
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT n.hash FROM unnest($1::bigint[], $2::int[]) WITH ORDINALITY AS w(done, level, ord)
                     JOIN {}.nodes n ON n.done = w.done AND n.level = w.level ORDER BY w.ord",
                    self.schema
                ),
                &[&done, &level],
            )
            .map_err(|e| pg(&e))?;
        if rows.len() != wanted.len() {
            return Err(Error::Backend("a tree node is missing from the ledger".into()));
        }
        rows.into_iter().map(|r| to_hash(r.get(0))).collect()
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
