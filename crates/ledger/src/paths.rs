//! The path book (review item 18): file paths are customer data too ("Jane Doe SSN.pdf"),
//! and the ledger is immutable. So an event names a file by a keyed pseudonym of its path,
//! `path:HEX`, and the clear path lives beside the log in `ledger-paths.db`, one row per
//! pseudonym, where it can be forgotten (`custody ledger forget-path`). Forgetting a path
//! changes no event: the log still verifies, and whoever holds the pseudonym key can still
//! confirm a guessed path (`custody ledger hash`), as for every other pseudonym.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

/// How a path reference starts.
pub const PATH_REF_PREFIX: &str = "path:";

/// The book at `db`, created if needed (owner-only; freed pages zeroed).
pub(crate) fn open(db: &Path) -> Result<Connection, Error> {
    custody_store::files::private_sqlite(db, true).map_err(|source| Error::Io {
        what: "creating",
        path: db.to_path_buf(),
        source,
    })?;
    let conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
         CREATE TABLE IF NOT EXISTS paths (pseudonym TEXT PRIMARY KEY, path TEXT NOT NULL);",
    )?;
    Ok(conn)
}

/// Keeps `path` under `pseudonym` (kept if there already).
pub(crate) fn put(db: &Path, pseudonym: &str, path: &str) -> Result<(), Error> {
    open(db)?.execute(
        "INSERT OR IGNORE INTO paths (pseudonym, path) VALUES (?1, ?2)",
        params![pseudonym, path],
    )?;
    Ok(())
}

/// The path kept under `pseudonym`, if it was not forgotten.
pub(crate) fn get(db: &Path, pseudonym: &str) -> Result<Option<String>, Error> {
    if !db.exists() {
        return Ok(None);
    }
    Ok(open(db)?
        .query_row("SELECT path FROM paths WHERE pseudonym = ?1", [pseudonym], |r| r.get(0))
        .optional()?)
}

/// Forgets the path under `pseudonym`: the row goes, its page is zeroed, and the
/// write-ahead log, if any, is cut to nothing. True if there was one.
pub(crate) fn forget(db: &Path, pseudonym: &str) -> Result<bool, Error> {
    if !db.exists() {
        return Ok(false);
    }
    let conn = open(db)?;
    let gone = conn.execute("DELETE FROM paths WHERE pseudonym = ?1", [pseudonym])? > 0;
    conn.execute_batch("VACUUM;")?;
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(gone)
}
