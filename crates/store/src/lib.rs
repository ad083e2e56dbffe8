//! custody-store: the storage plumbing every other crate builds on, depending on nothing of
//! ours.
//!
//! - [`DataDir`] is the one type that knows where custody keeps things: the configuration,
//!   the sealed keys, the vault, the ledger and its keys, the scan cache, the quarantine,
//!   the ignore list and the recovery kit. Each path carries the [`Class`] of data it holds,
//!   and [`DataDir::manifest`] lists them all (what a backup must take, and how to treat
//!   each).
//! - [`files`]: one owner-only file creation (0600), one owner-only directory (0700), one
//!   atomic replace (temporary file beside, fsync, rename, directory fsync), one directory
//!   sync, and tightening the mode of a file another library created (SQLite's).
//! - [`hex`]: the one hex codec.
//! - [`group`]: the batches a group-committing writer takes from its queue.
//! - [`sqlite`]: opening an SQLite database (owner-only, WAL, full sync) and the migrations
//!   runner on `PRAGMA user_version`.
//! - [`pg`]: PostgreSQL connections over TLS with libpq's `sslmode` and `sslrootcert`, for
//!   the scanner's sources and the ledger's store alike.

mod datadir;
pub mod files;
pub mod group;
pub mod hex;
pub mod pg;
pub mod sqlite;

pub use datadir::{Class, DataDir, Entry};
