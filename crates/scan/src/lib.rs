//! custody-scan: finds customer data in files.
//!
//! This crate owns the sources (for now: directory trees), the parallel pipeline that reads
//! them in bounded chunks and runs [`custody_detect`] over each, the [`Finding`] record that
//! leaves the pipeline, and the [`Summary`] of a scan. It never prints: results go to a
//! [`Sink`], progress to a [`Progress`] implementation, both supplied by the caller.
//!
//! Files are read in chunks of [`ScanOptions::chunk_size`] with an overlap of
//! [`custody_detect::Detector::overlap`] bytes, split at line ends where possible, so a
//! value that straddles a chunk boundary is found exactly once and a multi-gigabyte file
//! never needs more than two chunks of memory.

pub mod cache;
mod database;
mod error;
mod file;
mod finding;
mod html;
pub mod ignore;
mod job;
pub mod report;
pub mod risk;
mod walk;

/// What a scan reads inside files is custody-extract's: its limits, where parsers run, and
/// the parser child's entry point (the binary's hidden `internal-parse` command).
pub use custody_extract::{Isolation, Limits as ExtractLimits, child_main as parser_child_main};
pub use database::{ColumnReport, DatabaseOptions, display_url, is_database_url, scan_database};
pub use error::Error;
pub use finding::{Finding, RiskyFile, RiskyFolder, Skip, SkipReason, Summary};
pub use html::escape as html_escape;
pub use job::{Job, Ran};
pub use report::{FindingRecord, Format, Report};
pub use walk::{IGNORE_FILE, NoProgress, Progress, ScanOptions, Scanner, Sink, resolve};
