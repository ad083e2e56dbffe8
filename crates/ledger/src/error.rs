//! The ledger's errors. None carries an event's content or a key.

use std::path::PathBuf;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No ledger in this data directory.
    #[error("no ledger in '{}'", .0.display())]
    NotInitialised(PathBuf),
    /// `init` on a directory that already holds one.
    #[error("a ledger already exists in '{}'", .0.display())]
    AlreadyInitialised(PathBuf),
    /// Reading or writing a file (keys, directory) failed.
    #[error("{what} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database failed. Appends that return this were not recorded.
    #[error("ledger database: {0}")]
    Store(#[from] rusqlite::Error),
    /// The append (or checkpoint) could not be made durable; nothing was recorded. The
    /// message is the database's (a full disk, an I/O error).
    #[error("the event could not be recorded durably ({0}); treat the access as refused")]
    NotRecorded(String),
    /// A database other than the embedded one failed (PostgreSQL).
    #[error("ledger database: {0}")]
    Backend(String),
    /// Another process (a running `custody serve`, another command) has the ledger open for
    /// writing; two writers would fork the log, so the second is refused.
    #[error("the ledger in '{}' is in use by another custody process (is `custody serve` running? stop it, or use the server's API)", .0.display())]
    InUse(PathBuf),
    /// The writer thread is gone (the ledger was closed or crashed).
    #[error("the ledger writer has stopped; nothing more can be recorded")]
    Closed,
    /// A key file is damaged.
    #[error("key file '{}' is not a valid key", .0.display())]
    BadKey(PathBuf),
    /// An index or size outside the log.
    #[error("position {index} is outside the log of {size} events")]
    OutOfRange {
        /// The position asked for.
        index: u64,
        /// The log's size.
        size: u64,
    },
    /// A checkpoint note could not be parsed or its signature did not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An evidence bundle is malformed or does not verify.
    #[error("evidence bundle: {0}")]
    Bundle(String),
    /// An event is malformed (empty action, bad characters).
    #[error("event: {0}")]
    Event(String),
}
