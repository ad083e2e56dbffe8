//! The SQLite store behind the ledger: events, complete subtree hashes, checkpoints.
//!
//! Node rows are keyed by `(done, level)`, where `done` is the number of leaves at which
//! the node became complete: `(index + 1) << level`. Appending leaf `i` completes nodes with
//! `done = i + 1` in increasing level, so the table read in key order is exactly the order
//! in which a verifier recomputes them: a full verification is two sequential scans.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::merkle::{Hash, Nodes};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    idx INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    record TEXT,
    leaf BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE TABLE IF NOT EXISTS nodes (
    done INTEGER NOT NULL,
    level INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (done, level)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
";

/// Opens (creating if asked) the database with the settings durability depends on: WAL,
/// and a full sync of the log on every commit.
pub(crate) fn open(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Nodes read from a connection.
pub(crate) struct DbNodes<'c>(pub &'c Connection);

impl Nodes for DbNodes<'_> {
    type Error = rusqlite::Error;

    fn node(&self, level: u32, index: u64) -> rusqlite::Result<Hash> {
        let done = (index + 1) << level;
        let mut stmt =
            self.0.prepare_cached("SELECT hash FROM nodes WHERE done = ?1 AND level = ?2")?;
        let hash: Vec<u8> = stmt.query_row(params![done as i64, level], |r| r.get(0))?;
        hash.try_into().map_err(|_| {
            rusqlite::Error::InvalidColumnType(0, "hash".into(), rusqlite::types::Type::Blob)
        })
    }
}

/// Number of events stored.
pub(crate) fn size(conn: &Connection) -> rusqlite::Result<u64> {
    let n: Option<i64> = conn.query_row("SELECT MAX(idx) FROM events", [], |r| r.get(0))?;
    Ok(n.map_or(0, |n| n as u64 + 1))
}

pub(crate) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
    Ok(())
}
