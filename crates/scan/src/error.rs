//! Errors that stop a scan. Problems with single files are not errors: they are
//! [`Skip`](crate::Skip)s, reported and counted.

use std::io;
use std::path::PathBuf;

/// Why a scan could not run or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path given to scan does not exist or cannot be read.
    #[error("cannot scan '{}': {source}", path.display())]
    Root {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// An `--exclude` pattern is not a valid glob.
    #[error("invalid exclude pattern '{glob}': {source}")]
    Exclude {
        /// The pattern as given.
        glob: String,
        /// What is wrong with it.
        source: globset::Error,
    },
    /// A database could not be reached or read (shown without credentials).
    #[error("cannot scan {source_name}: {why}")]
    Source {
        /// The database, without user name or password.
        source_name: String,
        /// What went wrong, in words that hold no data from it.
        why: String,
    },
    /// Writing results failed (a full disk, a closed pipe).
    #[error("writing results failed: {0}")]
    Output(#[source] io::Error),
    /// The data directory's list of ignored findings cannot be read.
    #[error("the list of ignored findings cannot be read: {0}")]
    Ignore(#[from] crate::ignore::IgnoreError),
}
