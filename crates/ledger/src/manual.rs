//! # Security notes: what the ledger proves, and what it does not
//!
//! ## What it proves
//!
//! - **Order and integrity.** Each event is a leaf of an RFC 6962 Merkle tree. A signed
//!   checkpoint commits to the first *n* events; changing, removing, reordering or inserting
//!   any of them changes the root, so `custody ledger verify` (which recomputes the whole tree
//!   from the stored events) reports the first position where the log and its checkpoints
//!   disagree.
//! - **Append-only since a witness.** A checkpoint handed to someone outside the business
//!   (`custody ledger checkpoint --out FILE`) pins the log's history up to its size.
//!   `custody ledger verify --against FILE` proves with a consistency proof that today's log
//!   extends it; rewriting anything before that point is detected, even by someone who holds
//!   the signing key.
//! - **Membership, offline.** An evidence bundle carries events, their inclusion proofs and a
//!   signed checkpoint; anyone with the business's public key verifies it without the data
//!   directory (`custody ledger verify-bundle`).
//!
//! ## What it does not prove
//!
//! - **Time.** Event times are written by the machine that records them. Only checkpoints
//!   witnessed by outsiders (or time-stamped by a third party) bound *when* something was
//!   recorded.
//! - **That nothing was left out.** The ledger proves what was recorded was not altered; it
//!   cannot prove that every access was recorded. custody's own components append before they
//!   act and fail closed when the append fails.
//! - **Against a key holder before witnessing.** Whoever holds the signing key can build and
//!   sign a different history (a fork). Two checkpoints of the same size with different roots,
//!   or a witnessed checkpoint the current log does not extend, expose it. Witness often.
//!
//! ## Keys
//!
//! `custody ledger init` draws two 256-bit keys from the operating system's random source and
//! stores them, hex-encoded, in `keys/` inside the data directory (directory mode 0700, files
//! 0600), apart from the database: the Ed25519 **signing key** for checkpoints and the HMAC
//! **pseudonym key** for identifiers. The public key (`custody ledger public-key`) is safe to
//! publish and is what auditors verify with. Keep a copy of `keys/` offline: without the
//! pseudonym key nobody can look up a customer's events; without the signing key no new
//! checkpoints can be made (existing ones stay verifiable).
//!
//! ## Durability
//!
//! SQLite in WAL mode with `synchronous=FULL`: an append returns only after its transaction is
//! on disk. Concurrent appends share one transaction and one sync (group commit). An append
//! that cannot be made durable returns an error, which callers treat as "no access".
