//! Where the vault's rows live. The vault ([`crate::Vault`]) does the cryptography and the
//! policy; a [`VaultStore`] keeps what it sealed, in the shape of the ledger's `LogStore`:
//! reads by key, and [`Change`]s applied all or nothing. Two backends: the embedded SQLite
//! file (the default) and a PostgreSQL schema, which several `custody serve` nodes share.
//!
//! The store is crate-private: nothing outside the vault reaches the rows, so nothing can
//! skip the gate (`crates/cli/tests/architecture.rs` holds the crate edges).
//!
//! Every value a store holds is already sealed (envelopes, wrapped keys) or keyed (blind
//! indexes, tokens, API-key tags): a store never sees a customer's value.

pub(crate) mod pg;
pub(crate) mod sqlite;

use crate::{ApiKeyInfo, Error};

/// One stored field: its envelope and token.
#[derive(Clone)]
pub(crate) struct StoredField {
    pub field: String,
    pub key_version: u32,
    pub envelope: Vec<u8>,
    pub token: Option<String>,
}

/// A wrapped key as stored: its KEK version and the envelope.
pub(crate) type StoredKey = (u32, Vec<u8>);

/// A wrapped data key row.
pub(crate) struct StoredDek {
    pub collection: String,
    pub record: String,
    pub kek_version: u32,
    pub wrapped: Vec<u8>,
}

/// One change to the rows. [`VaultStore::apply`] applies a list of them all or nothing.
#[derive(Clone)]
pub(crate) enum Change {
    /// A new key-encryption key version.
    PutKek { version: u32, wrapped: Vec<u8> },
    /// Key-encryption keys older than `below` that no data key refers to go.
    DropUnusedKeks { below: u32 },
    /// A new record's data key.
    PutDek { collection: String, record: String, kek_version: u32, wrapped: Vec<u8> },
    /// A data key re-wrapped under another KEK version.
    Rewrap { collection: String, record: String, kek_version: u32, wrapped: Vec<u8> },
    /// A field's envelope (replacing the one stored), stored at `stored_at` (Unix seconds).
    PutField {
        collection: String,
        record: String,
        field: String,
        key_version: u32,
        envelope: Vec<u8>,
        token: Option<String>,
        stored_at: i64,
    },
    /// A token leads to a field (kept if it already does). A `unique` token (an SSN token,
    /// random within the last four digits) must lead to this field only: if any other row
    /// has it, the list fails with [`Error::Conflict`] — checked under a lock on the token,
    /// so two nodes cannot both take it.
    PutToken { token: String, collection: String, record: String, field: String, unique: bool },
    /// A blind index entry.
    PutBlind { collection: String, field: String, idx: String, record: String },
    /// Every blind index entry goes (a root rotation, before the indexes under the new
    /// index key are put).
    ClearBlind,
    /// A field's token and index entries go (before new ones are put).
    ClearIndexes { collection: String, record: String, field: String },
    /// A field goes: envelope, token and index entries.
    ClearField { collection: String, record: String, field: String },
    /// A record goes whole: data key, fields, tokens, indexes. With `must_exist`, a record
    /// that has no data key fails the whole list with [`Error::NotFound`].
    DeleteRecord { collection: String, record: String, must_exist: bool },
    /// Values of a field stored before `before` go, with their tokens and indexes.
    ExpireField { collection: String, field: String, before: i64 },
    /// A new API key (a name already used fails the list with [`Error::Conflict`]). `tag`
    /// is the credential's keyed hash followed by the row's seal.
    PutApiKey { info: ApiKeyInfo, tag: Vec<u8> },
    /// An API key is revoked at `at` (if it is not already), with its row sealed anew.
    RevokeApiKey { id: String, at: i64, tag: Vec<u8> },
    /// An API key's row gets its seal (rows of a vault made before rows were sealed).
    SealApiKey { id: String, tag: Vec<u8> },
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ids and sealed bytes only, but a change is never worth printing whole.
        let name = match self {
            Change::PutKek { .. } => "PutKek",
            Change::DropUnusedKeks { .. } => "DropUnusedKeks",
            Change::PutDek { .. } => "PutDek",
            Change::Rewrap { .. } => "Rewrap",
            Change::PutField { .. } => "PutField",
            Change::PutToken { .. } => "PutToken",
            Change::PutBlind { .. } => "PutBlind",
            Change::ClearBlind => "ClearBlind",
            Change::ClearIndexes { .. } => "ClearIndexes",
            Change::ClearField { .. } => "ClearField",
            Change::DeleteRecord { .. } => "DeleteRecord",
            Change::ExpireField { .. } => "ExpireField",
            Change::PutApiKey { .. } => "PutApiKey",
            Change::RevokeApiKey { .. } => "RevokeApiKey",
            Change::SealApiKey { .. } => "SealApiKey",
        };
        f.write_str(name)
    }
}

/// The tables, in the order a copy writes them (keys before what they wrap).
pub(crate) const TABLES: [Table; 6] =
    [Table::Keks, Table::Deks, Table::Fields, Table::Tokens, Table::Blind, Table::ApiKeys];

/// One of the vault's tables (for counts and copies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Table {
    Keks,
    Deks,
    Fields,
    Tokens,
    Blind,
    ApiKeys,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Keks => "keks",
            Table::Deks => "deks",
            Table::Fields => "fields",
            Table::Tokens => "tokens",
            Table::Blind => "blind",
            Table::ApiKeys => "api_keys",
        }
    }
}

/// What the vault needs from a database. `apply` is atomic: when it returns `Ok` inside no
/// batch, the changes are durable; when it returns `Err`, none of them were made. Inside a
/// batch ([`VaultStore::begin`] … [`VaultStore::commit`]) each `apply` is its own
/// all-or-nothing step and the commit makes them durable together. Reads see the writes of
/// the open batch.
pub(crate) trait VaultStore: Send {
    /// The newest key-encryption key: version and wrapped key.
    fn latest_kek(&self) -> Result<Option<(u32, Vec<u8>)>, Error>;
    /// A key-encryption key by version.
    fn kek(&self, version: u32) -> Result<Option<Vec<u8>>, Error>;
    /// A record's wrapped data key.
    fn dek(&self, collection: &str, record: &str) -> Result<Option<(u32, Vec<u8>)>, Error>;
    /// Every data key (for a rotation).
    fn deks(&self) -> Result<Vec<StoredDek>, Error>;
    /// A record's fields.
    fn fields(&self, collection: &str, record: &str) -> Result<Vec<StoredField>, Error>;
    /// A record's wrapped data key and its fields, `None` if it has no data key (one round
    /// trip where the database allows).
    fn record(
        &self,
        collection: &str,
        record: &str,
    ) -> Result<Option<(StoredKey, Vec<StoredField>)>, Error> {
        match self.dek(collection, record)? {
            Some(dek) => Ok(Some((dek, self.fields(collection, record)?))),
            None => Ok(None),
        }
    }
    /// One field of a record.
    fn field(
        &self,
        collection: &str,
        record: &str,
        field: &str,
    ) -> Result<Option<StoredField>, Error>;
    /// Every record's value of one field, by record (for a migration).
    fn field_values(
        &self,
        collection: &str,
        field: &str,
    ) -> Result<Vec<(String, StoredField)>, Error>;
    /// How many records hold a value of `field`.
    fn count_values(&self, collection: &str, field: &str) -> Result<u64, Error>;
    /// Records whose blind index of `field` is `idx`, in id order.
    fn find(&self, collection: &str, field: &str, idx: &str) -> Result<Vec<String>, Error>;
    /// Whether any field has this token.
    fn token_taken(&self, token: &str) -> Result<bool, Error>;
    /// Where a token leads: (collection, record, field).
    fn token_target(&self, token: &str) -> Result<Option<(String, String, String)>, Error>;
    /// The tokens of a record's fields.
    fn tokens_of(&self, collection: &str, record: &str) -> Result<Vec<String>, Error>;
    /// The records of `collection` that hold `token`.
    fn token_holders(&self, collection: &str, token: &str) -> Result<Vec<String>, Error>;
    /// Records of `collection` whose newest value was stored before `before`.
    fn stale_records(&self, collection: &str, before: i64) -> Result<Vec<String>, Error>;
    /// An API key by id.
    fn api_key(&self, id: &str) -> Result<Option<ApiKeyInfo>, Error>;
    /// An API key by name.
    fn api_key_named(&self, name: &str) -> Result<Option<ApiKeyInfo>, Error>;
    /// Every API key, oldest first.
    fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, Error>;
    /// An API key and its keyed tag.
    fn api_key_tag(&self, id: &str) -> Result<Option<(ApiKeyInfo, Vec<u8>)>, Error>;

    /// Applies `changes` all or nothing; returns, per change, the rows it removed or
    /// changed (for `ExpireField`: the values that went).
    fn apply(&mut self, changes: &[Change]) -> Result<Vec<u64>, Error>;
    /// Opens a batch: the applies until [`VaultStore::commit`] become durable together.
    fn begin(&mut self) -> Result<(), Error>;
    /// Makes the batch durable; on an error nothing of it happened.
    fn commit(&mut self) -> Result<(), Error>;
    /// Abandons the batch.
    fn rollback(&mut self);

    /// Rows per table.
    fn count(&self, table: Table) -> Result<u64, Error>;
    /// Up to `limit` rows of `table` from row `offset` (in key order), as the changes that
    /// put them (for a copy into another store).
    fn rows(&self, table: Table, offset: u64, limit: u64) -> Result<Vec<Change>, Error>;

    /// Moves housekeeping (SQLite's WAL checkpoints) off the writer's path.
    fn background_housekeeping(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// After values were erased or expired: leave no earlier copy of their pages in the
    /// store's files (SQLite: checkpoint the WAL and truncate it; freed pages are already
    /// zeroed by `secure_delete`). Best effort: an error is reported, the erasure stands.
    fn scrub_after_erase(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Where a vault's rows live.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded SQLite file.
    Sqlite(std::path::PathBuf),
    /// A schema in a PostgreSQL database (`url` a `postgres://` address or `key=value`
    /// list; [`custody_store::pg`] applies its `sslmode`).
    Postgres {
        /// The address (it may hold a password: never printed).
        url: String,
        /// The schema (lower-case letters, digits, `_`).
        schema: String,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Location::Postgres { schema, .. } => {
                write!(f, "Postgres(<address not shown>, {schema})")
            }
        }
    }
}

/// Opens the store at `location` (creating its tables if needed).
pub(crate) fn open(location: &Location) -> Result<Box<dyn VaultStore>, Error> {
    Ok(match location {
        Location::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path)?),
        Location::Postgres { url, schema } => Box::new(pg::PgStore::connect(url, schema)?),
    })
}

/// Rows copied per step of [`copy`].
const COPY_PAGE: u64 = 2_000;

/// Copies every row of the vault at `from` into the empty vault at `to`, in one transaction
/// there (all of it or nothing), and checks that each table then holds as many rows in
/// both. Rows are copied sealed as they are: no key is needed, and no value is opened.
/// `from` is only read. Returns the rows per table.
pub fn copy(from: &Location, to: &Location) -> Result<Vec<(&'static str, u64)>, Error> {
    let source = open(from)?;
    let mut target = open(to)?;
    if target.count(Table::Keks)? > 0 {
        return Err(Error::Conflict(
            "the destination already holds a custody vault; nothing was copied".into(),
        ));
    }
    target.begin()?;
    let copied = (|| {
        let mut counts = Vec::new();
        for table in TABLES {
            let mut offset = 0;
            loop {
                let rows = source.rows(table, offset, COPY_PAGE)?;
                if rows.is_empty() {
                    break;
                }
                offset += rows.len() as u64;
                target.apply(&rows)?;
            }
            counts.push((table.name(), offset));
        }
        Ok::<_, Error>(counts)
    })();
    match copied {
        Ok(counts) => {
            target.commit()?;
            for (table, (name, n)) in TABLES.iter().zip(&counts) {
                let (there, here) = (target.count(*table)?, source.count(*table)?);
                if there != *n || here != *n {
                    return Err(Error::Store(format!(
                        "the copy of '{name}' holds {there} rows, the source {here}: do not switch to the copy"
                    )));
                }
            }
            Ok(counts)
        }
        Err(e) => {
            target.rollback();
            Err(e)
        }
    }
}
