//! SQLite, the embedded store: one way to open a database (owner-only, WAL, a full sync on
//! every commit) and one migrations runner, on `PRAGMA user_version`.
//!
//! A migration is a numbered step; the database records the last one applied in its
//! header (`user_version`), each step runs in its own transaction with the version it
//! brings, so a crash leaves the database before or after a step, never half way. A
//! database from a newer custody (a higher version than this build knows) is refused, not
//! "migrated" backwards.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// One step of a schema's history.
pub struct Migration {
    /// The version the database is at once it has run (1, 2, 3…, in order).
    pub version: u32,
    /// What it does, in a few words (for errors).
    pub what: &'static str,
    /// The step: SQL, or code for what SQL alone cannot decide (a table made by an older
    /// release in another shape).
    pub step: Step,
}

/// What a migration runs.
pub enum Step {
    /// Statements, run as a batch.
    Sql(&'static str),
    /// Code, run inside the migration's transaction.
    Code(fn(&Connection) -> rusqlite::Result<()>),
}

/// Why a database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file could not be made owner-only.
    #[error("cannot protect the database file: {0}")]
    Io(#[from] std::io::Error),
    /// Made by a newer custody: this build does not know its schema.
    #[error(
        "this database is at schema version {found}, newer than this custody knows ({known}): use the custody that made it, or a newer one"
    )]
    Newer {
        /// Its version.
        found: u32,
        /// The newest this build knows.
        known: u32,
    },
    /// A migration step failed (the database stays at the version before it).
    #[error("upgrading the database to version {version} ({what}) failed: {source}")]
    Step {
        /// The step's version.
        version: u32,
        /// What it does.
        what: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
}

/// Opens (creating it owner-only if asked) a database in WAL mode with `synchronous=FULL`:
/// a commit that returns is on disk.
pub fn open(path: &Path, create: bool) -> Result<Connection, SqliteError> {
    crate::files::private_sqlite(path, create)?;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    // Connections of one process (a pool, a writer) open and migrate at the same time.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// The schema version a database is at.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Runs the migrations the database has not had, in order, each in its own transaction;
/// returns the version it is at afterwards. `migrations` must be numbered 1, 2, 3… in
/// order (checked).
pub fn migrate(conn: &Connection, migrations: &[Migration]) -> Result<u32, SqliteError> {
    for (i, m) in migrations.iter().enumerate() {
        assert_eq!(m.version as usize, i + 1, "migrations are numbered 1, 2, 3… in order");
    }
    let known = migrations.len() as u32;
    let found = version(conn)?;
    if found > known {
        return Err(SqliteError::Newer { found, known });
    }
    for m in &migrations[found as usize..] {
        let step = |conn: &Connection| -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            // Another connection may have run it while this one waited for the lock.
            let ran = if version(conn)? >= m.version {
                Ok(())
            } else {
                match &m.step {
                    Step::Sql(sql) => conn.execute_batch(sql),
                    Step::Code(f) => f(conn),
                }
                .and_then(|()| conn.pragma_update(None, "user_version", m.version))
            };
            match ran {
                Ok(()) => conn.execute_batch("COMMIT"),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        };
        step(conn).map_err(|source| SqliteError::Step {
            version: m.version,
            what: m.what,
            source,
        })?;
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Migration] = &[
        Migration { version: 1, what: "a table", step: Step::Sql("CREATE TABLE t (a INTEGER)") },
        Migration {
            version: 2,
            what: "a column, filled",
            step: Step::Code(|c| {
                c.execute_batch("ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 0")?;
                c.execute("UPDATE t SET b = a * 2", []).map(|_| ())
            }),
        },
    ];

    #[test]
    fn steps_run_once_in_order_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let conn = open(&path, true).unwrap();
        assert_eq!(migrate(&conn, &STEPS[..1]).unwrap(), 1);
        conn.execute("INSERT INTO t (a) VALUES (21)", []).unwrap();
        assert_eq!(migrate(&conn, STEPS).unwrap(), 2);
        assert_eq!(conn.query_row("SELECT b FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 42);
        // Again: nothing runs (the ALTER would fail if it did).
        assert_eq!(migrate(&conn, STEPS).unwrap(), 2);
        // An older build meets it.
        let err = migrate(&conn, &STEPS[..1]).unwrap_err();
        assert!(matches!(err, SqliteError::Newer { found: 2, known: 1 }), "{err}");
    }

    #[test]
    fn a_failed_step_leaves_the_version_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("y.db"), true).unwrap();
        let broken = [
            Migration { version: 1, what: "a table", step: Step::Sql("CREATE TABLE t (a)") },
            Migration { version: 2, what: "bad", step: Step::Sql("CREATE TABLE u (a); NOT SQL") },
        ];
        let err = migrate(&conn, &broken).unwrap_err();
        assert!(matches!(err, SqliteError::Step { version: 2, .. }), "{err}");
        assert_eq!(version(&conn).unwrap(), 1);
        let u: Option<String> = conn
            .query_row("SELECT name FROM sqlite_master WHERE name = 'u'", [], |r| r.get(0))
            .ok();
        assert_eq!(u, None, "the failed step's table was rolled back");
    }
}
