//! custody-ledger: a tamper-evident log of every access to customer data.
//!
//! Every event (who touched which record, for what purpose, with what outcome) is a leaf of
//! an RFC 6962 Merkle tree stored in SQLite in the data directory. Signed checkpoints (C2SP
//! signed notes, Ed25519) commit to the tree; inclusion proofs show an event is in it,
//! consistency proofs that a later tree extends an earlier one. Identifiers that could
//! re-identify a customer are stored as keyed pseudonyms, so the log can be handed over.
//!
//! See [`manual`] for what the ledger proves and what it does not.

pub mod action;
pub mod details;
mod error;
pub mod event;
mod ledger;
pub mod manual;
pub mod merkle;
pub mod note;
pub mod paths;
mod pg;
pub mod store;

pub use action::Action;
pub use error::Error;
pub use event::{Event, Outcome, Pseudonym, PseudonymKey, Target};
pub use ledger::{
    BUNDLE_FORMAT, Bundle, BundleEvent, BundleReport, Events, ExportFilter, Ledger, LedgerOptions,
    Problem, VerifyReport, Witnessed, verify_bundle,
};
pub use note::{Checkpoint, NoteSigner, NoteVerifier};
pub use pg::PgStore;
pub use store::{Checkpointer, LogStore, SqliteStore, copy_log};

pub(crate) use custody_store::hex::{decode as unhex, encode as hex};
