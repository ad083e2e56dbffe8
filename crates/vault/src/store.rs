//! The vault's store: records sealed field by field under a per-customer data key, in
//! SQLite.
//!
//! - `keks`: key-encryption keys by version, each wrapped under the root key together with
//!   the vault's purpose keys ([`custody_crypto::hierarchy::Keyring`]): blind indexes,
//!   tokens, API keys and the quarantine each derive from their own key, never the root.
//! - `deks`: one data key per record, wrapped under a KEK version. Erasing a record deletes
//!   its data key: nothing sealed under it can be opened again, from this file or any copy
//!   of it restored later without the key.
//! - `fields`: one envelope per field, sealed with the record's data key; associated data
//!   binds collection, record, field and key version.
//! - `blind`: blind indexes of searchable fields (HMAC under per-field keys).
//! - `tokens`: token → (collection, record, field), to reveal through the vault. A card
//!   token is deterministic, so customers with the same card share it: one row each.

use std::collections::BTreeMap;
use std::path::Path;

use custody_crypto::hierarchy::{
    Keyring, Purposes, WrappedKey, unwrap_dek, unwrap_kek, unwrap_keyring, wrap_dek, wrap_keyring,
};
use custody_crypto::{
    BlindIndexKey, CardTokenizer, FieldContext, Key, deterministic_token, open, random_token, seal,
    ssn_token,
};
use custody_detect::Kind;

use custody_ledger::Action;

use crate::Permit;
use crate::address::Part;
use crate::backend::{Change, Location, StoredField, VaultStore};
use crate::{Config, Error, FieldType, ReadMode, TOKENS_COLLECTION, TokenKind, normalize};

/// Now, in Unix seconds (the storage time of a value).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().cast_signed())
}

/// What a retention run removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Whole records erased.
    pub records: usize,
    /// Single values removed from records that stay.
    pub fields: usize,
}

/// One field as read: the value shown and the mode that was applied.
#[derive(Clone, PartialEq, Eq)]
pub struct ReadField {
    /// What the caller sees (plain, masked or token), absent for [`ReadMode::None`].
    pub value: Option<String>,
    /// The mode applied.
    pub mode: ReadMode,
}

impl std::fmt::Debug for ReadField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A plain value is customer data: never in Debug output.
        let shown = match self.mode {
            ReadMode::Plain => "<redacted>",
            _ => self.value.as_deref().unwrap_or("-"),
        };
        write!(f, "ReadField({shown}, {:?})", self.mode)
    }
}

/// An open, unsealed vault.
pub struct Vault {
    store: Box<dyn VaultStore>,
    config: Config,
    root: Key,
    kek_version: u32,
    kek: Key,
    /// The purpose keys, from the newest KEK row.
    purposes: Purposes,
    /// The last other KEK version unwrapped (a reader after an online rotation elsewhere).
    other_kek: std::sync::Mutex<Option<(u32, Key)>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(kek v{})", self.kek_version)
    }
}

fn crypto_err(e: &custody_crypto::Error) -> Error {
    Error::Crypto(e.to_string())
}

/// What [`Vault::rotate_root`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootRotated {
    /// Data keys re-wrapped under the new key-encryption key.
    pub rewrapped: usize,
    /// Blind-index entries rebuilt under the new index key.
    pub reindexed: usize,
    /// The new key-encryption key version.
    pub kek_version: u32,
    /// The vault was made before purpose keys: its token, API-key and quarantine keys are
    /// still the earlier root (so card tokens, API keys and quarantined files keep
    /// working), and whoever holds that root can still reverse its card tokens.
    pub legacy_keys: bool,
}

/// What [`Vault::migrate_to_address`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressMigration {
    /// Addresses moved.
    pub records: u64,
    /// Read into parts with region and country known.
    pub region_and_country: u64,
    /// Read into parts with the country known, not the region.
    pub country_only: u64,
    /// Kept whole as the street: region and country unknown.
    pub street_only: u64,
}

/// What a masked read shows of free text (`notes`, `items`): always this, so neither the
/// length of the text nor its initials or word lengths show through.
pub const FREE_TEXT_MASK: &str = "********";

/// `value` of `field` (of type `ty`) as a masked read shows it.
fn mask_value(field: &str, ty: FieldType, value: &str) -> String {
    let name_like = field.contains("name") || field.contains("address");
    if ty == FieldType::Text && !name_like {
        return FREE_TEXT_MASK.to_string();
    }
    custody_detect::mask(mask_kind(field, ty), value)
}

/// How a field's values are masked, by type and name.
fn mask_kind(field: &str, ty: FieldType) -> Kind {
    match ty {
        FieldType::Email => Kind::Email,
        FieldType::Phone => Kind::Phone,
        FieldType::CardNumber => Kind::CreditCard,
        FieldType::Ssn => Kind::UsSsn,
        FieldType::Date | FieldType::CardExpiry | FieldType::Money => Kind::DateOfBirth,
        FieldType::Street | FieldType::Unit | FieldType::City | FieldType::PostalCode => {
            Kind::StreetAddress
        }
        _ if field.contains("address") => Kind::StreetAddress,
        _ => Kind::PersonName,
    }
}

/// The token of a normalised value, by the field's token kind (`None` for none).
fn make_token(
    store: &dyn VaultStore,
    key: &Key,
    kind: TokenKind,
    ty: FieldType,
    luhn_valid: bool,
    field: &str,
    value: &str,
) -> Result<Option<String>, Error> {
    Ok(match kind {
        TokenKind::None => None,
        TokenKind::Random => Some(random_token().map_err(|e| crypto_err(&e))?),
        TokenKind::Deterministic => Some(deterministic_token(key, field, value)),
        TokenKind::FormatPreserving => Some(match ty {
            FieldType::CardNumber => CardTokenizer::new(key, luhn_valid)
                .tokenize(field, value)
                .map_err(|e| crypto_err(&e))?,
            _ => unused_ssn_token(store, &value[value.len() - 4..])?,
        }),
    })
}

/// The text of a stored field, opened with its record's data key (zeroed when dropped).
fn open_text(
    dek: &Key,
    collection: &str,
    record: &str,
    stored: &StoredField,
) -> Result<zeroize::Zeroizing<String>, Error> {
    let context =
        FieldContext { collection, record, field: &stored.field, key_version: stored.key_version };
    let plain = open(dek, &context, &stored.envelope).map_err(|e| crypto_err(&e))?;
    String::from_utf8(plain)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| Error::Crypto("stored value is not text".into()))
}

/// An SSN token no record uses yet: SSN tokens are random with 4,900 per last four digits,
/// and a token must lead back to one value only.
fn unused_ssn_token(store: &dyn VaultStore, last4: &str) -> Result<String, Error> {
    for _ in 0..256 {
        let token = ssn_token(last4).map_err(|e| crypto_err(&e))?;
        if !store.token_taken(&token)? {
            return Ok(token);
        }
    }
    Err(Error::Store("no unused SSN token is left for these last four digits".into()))
}

/// `value` as a masked read of `collection.field` would show it; needs no keys (previews
/// of values not yet stored). An unknown field is masked as a name.
pub fn mask_field(config: &Config, collection: &str, field: &str, value: &str) -> String {
    let ty = config
        .collections
        .get(collection)
        .and_then(|c| c.fields.iter().find(|f| f.name == field))
        .map_or(FieldType::Text, |f| f.ty);
    mask_value(field, ty, value)
}

impl Vault {
    /// Opens (creating if needed) the vault database, unsealed with `root`.
    pub fn open(path: &Path, config: Config, root: Key) -> Result<Self, Error> {
        Self::open_at(&Location::Sqlite(path.to_path_buf()), config, root)
    }

    /// Opens (creating if needed) the vault at `location`, unsealed with `root`. A root key
    /// that is not this vault's fails with [`Error::Crypto`].
    pub fn open_at(location: &Location, config: Config, root: Key) -> Result<Self, Error> {
        let mut store = crate::backend::open(location)?;
        let (kek_version, ring) = if let Some((version, wrapped)) = store.latest_kek()? {
            (version, unwrap_keyring(&root, version, &wrapped).map_err(|e| crypto_err(&e))?)
        } else {
            let ring = Keyring {
                kek: Key::random().map_err(|e| crypto_err(&e))?,
                purposes: Purposes::random().map_err(|e| crypto_err(&e))?,
            };
            let wrapped = wrap_keyring(&root, 1, &ring).map_err(|e| crypto_err(&e))?;
            match store.apply(&[Change::PutKek { version: 1, wrapped }]) {
                Ok(_) => (1, ring),
                // Another node made the first KEK at the same moment: use that one.
                Err(e) => match store.latest_kek()? {
                    Some((version, wrapped)) => (
                        version,
                        unwrap_keyring(&root, version, &wrapped).map_err(|e| crypto_err(&e))?,
                    ),
                    None => return Err(e),
                },
            }
        };
        let Keyring { kek, purposes } = ring;
        let mut vault = Self {
            store,
            config,
            root,
            kek_version,
            kek,
            purposes,
            other_kek: std::sync::Mutex::new(None),
        };
        vault.seal_legacy_api_keys()?;
        Ok(vault)
    }

    fn field_spec(
        &self,
        collection: &str,
        field: &str,
    ) -> Result<(FieldType, TokenKind, bool, bool), Error> {
        let c = self
            .config
            .collections
            .get(collection)
            .ok_or_else(|| Error::NotFound(format!("collection '{collection}'")))?;
        let f = c.fields.iter().find(|f| f.name == field).ok_or_else(|| Error::Invalid {
            field: field.into(),
            rule: "is not a field of this collection",
        })?;
        Ok((f.ty, f.token, f.searchable, f.luhn_valid_tokens))
    }

    fn kek_for(&self, version: u32) -> Result<Key, Error> {
        if version == self.kek_version {
            return Ok(self.kek.clone());
        }
        let mut other = self.other_kek.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((v, key)) = other.as_ref()
            && *v == version
        {
            return Ok(key.clone());
        }
        let wrapped = self.store.kek(version)?.ok_or_else(|| {
            Error::Store(format!("key-encryption key version {version} is missing"))
        })?;
        let key = unwrap_kek(&self.root, version, &wrapped).map_err(|e| crypto_err(&e))?;
        *other = Some((version, key.clone()));
        Ok(key)
    }

    fn data_key(&self, collection: &str, record: &str) -> Result<Key, Error> {
        let row = self.store.dek(collection, record)?;
        let stored = row.ok_or_else(|| Error::NotFound(format!("record in '{collection}'")))?;
        self.unwrap_data_key(collection, record, stored)
    }

    fn unwrap_data_key(
        &self,
        collection: &str,
        record: &str,
        (kek_version, envelope): crate::backend::StoredKey,
    ) -> Result<Key, Error> {
        let wrapped = WrappedKey { kek_version, envelope };
        unwrap_dek(&self.kek_for(kek_version)?, &wrapped, collection, record)
            .map_err(|e| crypto_err(&e))
    }

    /// Validates and stores a new record; returns its id (and sets it on the permit, which
    /// then reads the record back as its role sees it without a purpose).
    pub fn insert(
        &mut self,
        permit: &mut Permit,
        collection: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        permit.check(&[Action::RecordCreate, Action::TokenCreate], collection, None)?;
        if permit.record.is_some() {
            return Err(Error::Forbidden("a permit creates one record".into()));
        }
        // An SSN token another node took at the same moment: drawn again. A store error
        // once: another node may have rotated the keys, deleting the KEK version this one
        // wrapped the new data key under (the PostgreSQL store refuses that): reload the
        // newest KEK and try again.
        let (mut tries, mut reloaded) = (0, false);
        let id = loop {
            match self.insert_raw(collection, values) {
                Err(Error::Conflict(_)) if tries < 3 => tries += 1,
                Err(Error::Store(_)) if !reloaded => {
                    reloaded = true;
                    self.reload_kek()?;
                }
                done => break done?,
            }
        };
        permit.record = Some(id.clone());
        Ok(id)
    }

    fn insert_raw(
        &mut self,
        collection: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let spec = self
            .config
            .collections
            .get(collection)
            .ok_or_else(|| Error::NotFound(format!("collection '{collection}'")))?
            .clone();
        let values = crate::address::drop_cleared(
            &self.config,
            collection,
            crate::address::expand_values(&self.config, collection, values)?,
        );
        let values = &values;
        for f in spec.fields.iter().filter(|f| f.required) {
            if !values.contains_key(&f.name) {
                return Err(Error::Invalid { field: f.name.clone(), rule: "is required" });
            }
        }
        let mut normalised = BTreeMap::new();
        for (field, raw) in values {
            let (ty, ..) = self.field_spec(collection, field)?;
            normalised.insert(field.clone(), normalize(field, ty, raw)?);
        }
        crate::address::normalize_parts(
            &self.config.address_fields(collection),
            &mut normalised,
            None,
        )?;
        let record = custody_crypto::record_id().map_err(|e| crypto_err(&e))?;
        let dek = Key::random().map_err(|e| crypto_err(&e))?;
        let wrapped = wrap_dek(&self.kek, self.kek_version, collection, &record, &dek)
            .map_err(|e| crypto_err(&e))?;
        let mut changes = vec![Change::PutDek {
            collection: collection.into(),
            record: record.clone(),
            kek_version: wrapped.kek_version,
            wrapped: wrapped.envelope,
        }];
        let stored_at = unix_now();
        for (field, value) in &normalised {
            let f = spec.fields.iter().find(|f| &f.name == field).expect("checked above");
            let context = FieldContext { collection, record: &record, field, key_version: 1 };
            let envelope = seal(&dek, &context, value.as_bytes()).map_err(|e| crypto_err(&e))?;
            let token = make_token(
                self.store.as_ref(),
                self.purposes.tokens(),
                f.token,
                f.ty,
                f.luhn_valid_tokens,
                field,
                value,
            )?;
            self.put_field(&mut changes, collection, &record, field, envelope, token, stored_at);
            if f.searchable {
                let idx =
                    BlindIndexKey::derive(self.purposes.index(), collection, field).index(value);
                changes.push(Change::PutBlind {
                    collection: collection.into(),
                    field: field.clone(),
                    idx,
                    record: record.clone(),
                });
            }
        }
        self.store.apply(&changes)?;
        Ok(record)
    }

    /// Reads a record with the permit's role and purpose: every field with the mode applied.
    /// A permit to create or change the record reads it without a purpose (never plain).
    pub fn read(
        &self,
        permit: &Permit,
        collection: &str,
        record: &str,
    ) -> Result<BTreeMap<String, ReadField>, Error> {
        permit.check(&[Action::RecordRead], collection, Some(record)).or_else(|_| {
            permit.check(&[Action::RecordCreate, Action::RecordUpdate], collection, Some(record))
        })?;
        let purpose =
            if permit.action == Action::RecordRead { permit.purpose.as_deref() } else { None };
        self.read_raw(collection, record, &permit.role, purpose)
    }

    fn read_raw(
        &self,
        collection: &str,
        record: &str,
        role: &str,
        purpose: Option<&str>,
    ) -> Result<BTreeMap<String, ReadField>, Error> {
        let (stored, fields) = self
            .store
            .record(collection, record)?
            .ok_or_else(|| Error::NotFound(format!("record in '{collection}'")))?;
        let dek = self.unwrap_data_key(collection, record, stored)?;
        let mut out = BTreeMap::new();
        for row in fields {
            let StoredField { field, key_version, envelope, token } = row;
            let (ty, ..) = self.field_spec(collection, &field)?;
            let mode = self.config.decide(role, collection, &field, purpose);
            let value = match mode {
                ReadMode::None => None,
                ReadMode::Token => Some(token.unwrap_or_else(|| "(no token)".into())),
                ReadMode::Masked | ReadMode::Plain => {
                    let context = FieldContext { collection, record, field: &field, key_version };
                    let plain = open(&dek, &context, &envelope).map_err(|e| crypto_err(&e))?;
                    let plain = String::from_utf8(plain)
                        .map_err(|_| Error::Crypto("stored value is not text".into()))?;
                    Some(if mode == ReadMode::Plain {
                        plain
                    } else {
                        mask_value(&field, ty, &plain)
                    })
                }
            };
            out.insert(field, ReadField { value, mode });
        }
        Ok(out)
    }

    /// Records whose searchable `field` equals `value` (after normalisation).
    pub fn search(
        &self,
        permit: &Permit,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<String>, Error> {
        permit.check(&[Action::RecordSearch], collection, None)?;
        permit.check_field(field)?;
        self.search_raw(collection, field, value)
    }

    fn search_raw(&self, collection: &str, field: &str, value: &str) -> Result<Vec<String>, Error> {
        let (ty, _, searchable, _) = self.field_spec(collection, field)?;
        if !searchable {
            return Err(Error::Invalid { field: field.into(), rule: "is not searchable" });
        }
        // Stored regions are full ISO 3166-2 codes: a code that several countries use (WA is
        // Washington and Western Australia) would silently find nobody.
        if ty == FieldType::Region && crate::address::ambiguous_region(value) {
            return Err(Error::Invalid {
                field: field.into(),
                rule: "is a region code of more than one country: search with its ISO 3166-2 code (US-WA, AU-WA)",
            });
        }
        let idx = BlindIndexKey::derive(self.purposes.index(), collection, field)
            .index(&normalize(field, ty, value)?);
        self.store.find(collection, field, &idx)
    }

    /// The plain value of one field, for the permit's role and purpose if they may read it
    /// plain (a `token.reveal` permit for this record and field).
    pub fn reveal_field(
        &self,
        permit: &Permit,
        collection: &str,
        record: &str,
        field: &str,
    ) -> Result<String, Error> {
        permit.check(&[Action::TokenReveal], collection, Some(record))?;
        permit.check_field(field)?;
        let (role, purpose) = (permit.role.as_str(), permit.purpose.as_deref());
        if self.config.decide(role, collection, field, purpose) != ReadMode::Plain {
            return Err(Error::Forbidden(format!(
                "revealing '{field}' needs a role and purpose allowed to read it plain"
            )));
        }
        let read = self.read_raw(collection, record, role, purpose)?;
        read.get(field).and_then(|f| f.value.clone()).ok_or_else(|| Error::NotFound("token".into()))
    }

    /// The records of other collections that refer to this one (a customer's orders), as
    /// (collection, record) pairs.
    pub(crate) fn linked(
        &self,
        collection: &str,
        record: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for (c, field) in self.config.referrers(collection) {
            for r in self.search_raw(&c, &field, record)? {
                out.push((c.clone(), r));
            }
        }
        Ok(out)
    }

    /// Erases a record and the records that refer to it (a customer's orders): data keys,
    /// blind indexes, tokens and sealed fields, all or nothing. Afterwards nothing of them
    /// can be decrypted, searched or revealed. Returns how many linked records went too.
    pub fn erase(
        &mut self,
        permit: &Permit,
        collection: &str,
        record: &str,
    ) -> Result<usize, Error> {
        permit.check(&[Action::RecordErase], collection, Some(record))?;
        self.erase_raw(collection, record)
    }

    fn erase_raw(&mut self, collection: &str, record: &str) -> Result<usize, Error> {
        let linked = self.linked(collection, record)?;
        let mut targets: Vec<(String, String)> =
            std::iter::once((collection.into(), record.into()))
                .chain(linked.iter().cloned())
                .collect();
        // Standalone tokens (`POST /v1/tokens`) of the same values: a deterministic token
        // made there is the customer's token too, and must not outlive them.
        let mut standalone = Vec::new();
        for (c, r) in &targets {
            for token in self.store.tokens_of(c, r)? {
                standalone.extend(self.store.token_holders(TOKENS_COLLECTION, &token)?);
            }
        }
        standalone.sort();
        standalone.dedup();
        targets.extend(standalone.into_iter().map(|r| (TOKENS_COLLECTION.to_string(), r)));
        let changes: Vec<Change> = targets
            .iter()
            .enumerate()
            .map(|(i, (c, r))| Change::DeleteRecord {
                collection: c.clone(),
                record: r.clone(),
                must_exist: i == 0,
            })
            .collect();
        self.store.apply(&changes)?;
        self.scrub();
        Ok(linked.len())
    }

    /// Leaves no earlier copy of erased values' pages in the store's files (review item
    /// 6). The erasure itself is done and durable: a failure here is said on standard
    /// error and retried with the next erasure.
    fn scrub(&mut self) {
        if let Err(e) = self.store.scrub_after_erase() {
            eprintln!("custody: {e}");
        }
    }

    /// The token stored for one field of a record just made with this permit.
    pub fn token_of(
        &self,
        permit: &Permit,
        collection: &str,
        record: &str,
        field: &str,
    ) -> Result<String, Error> {
        permit.check(
            &[Action::TokenCreate, Action::RecordCreate, Action::RecordUpdate],
            collection,
            Some(record),
        )?;
        self.store
            .field(collection, record, field)?
            .and_then(|f| f.token)
            .ok_or_else(|| Error::NotFound("token".into()))
    }

    /// Where a token leads: (collection, record, field), if it exists.
    pub fn token_target(&self, token: &str) -> Result<Option<(String, String, String)>, Error> {
        self.store.token_target(token)
    }

    /// A record and the records that refer to it, read with the permit's role and purpose
    /// (a `record.export` permit for this record).
    pub fn export(
        &self,
        permit: &Permit,
        collection: &str,
        record: &str,
    ) -> Result<crate::audited::Export, Error> {
        permit.check(&[Action::RecordExport], collection, Some(record))?;
        let (role, purpose) = (permit.role.as_str(), permit.purpose.as_deref());
        let main = self.read_raw(collection, record, role, purpose)?;
        let mut linked = Vec::new();
        for (c, r) in self.linked(collection, record)? {
            let fields = self.read_raw(&c, &r, role, purpose)?;
            linked.push((c, r, fields));
        }
        Ok((main, linked))
    }

    /// Runs `work` in one transaction: the operations inside keep their own all-or-nothing
    /// savepoints, and are made durable together by one commit (group commit). If the
    /// commit fails, none of them happened.
    pub fn batch<T>(&mut self, work: impl FnOnce(&mut Self) -> T) -> Result<T, Error> {
        self.store.begin()?;
        let out = work(self);
        self.store.commit()?;
        Ok(out)
    }

    /// Runs `work` in one transaction that is committed only if it succeeds: all of it or
    /// none (a migration).
    fn batch_all(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.store.begin()?;
        if let Err(e) = work(self) {
            self.store.rollback();
            return Err(e);
        }
        self.store.commit()
    }

    /// Applies the configured retention as of `now` (Unix seconds): records of a collection
    /// with `retention_days` whose newest value is older are erased whole (data key
    /// destroyed); fields with `retention_days` lose values stored before the cut-off (their
    /// envelope, token and index are deleted; `secure_delete` zeroes the freed pages). One
    /// transaction per record erased, one for all fields. Returns what was removed.
    pub fn expire(&mut self, permit: &Permit, now: i64) -> Result<Expired, Error> {
        permit.check(&[Action::RetentionRun], "vault", None)?;
        self.expire_raw(now)
    }

    fn expire_raw(&mut self, now: i64) -> Result<Expired, Error> {
        let mut expired = Expired::default();
        // A copy, so erasing (which borrows the vault mutably) can run inside the loop.
        let collections = self.config.collections.clone();
        let cutoff = |days: u32| now - i64::from(days) * 86_400;
        for (collection, c) in &collections {
            let Some(days) = c.retention_days else { continue };
            let stale = self.store.stale_records(collection, cutoff(days))?;
            for record in stale {
                // A linked record may already have gone with its customer.
                match self.erase_raw(collection, &record) {
                    Ok(linked) => expired.records += 1 + linked,
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut changes = Vec::new();
        for (collection, c) in &collections {
            for f in &c.fields {
                let Some(days) = f.retention_days else { continue };
                changes.push(Change::ExpireField {
                    collection: collection.clone(),
                    field: f.name.clone(),
                    before: cutoff(days),
                });
            }
        }
        expired.fields += self.store.apply(&changes)?.iter().sum::<u64>() as usize;
        if expired.fields > 0 {
            self.scrub();
        }
        Ok(expired)
    }

    /// Replaces the values of some fields of a record (validated first; all or nothing).
    pub fn update(
        &mut self,
        permit: &Permit,
        collection: &str,
        record: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        permit.check(&[Action::RecordUpdate], collection, Some(record))?;
        let mut tries = 0;
        loop {
            match self.update_raw(collection, record, values) {
                Err(Error::Conflict(_)) if tries < 3 => tries += 1,
                done => return done,
            }
        }
    }

    fn update_raw(
        &mut self,
        collection: &str,
        record: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let dek = self.data_key(collection, record)?;
        let values = &crate::address::expand_values(&self.config, collection, values)?;
        let parts = self.config.address_fields(collection);
        let is_part = |field: &str| parts.iter().any(|(_, n)| *n == field);
        // An address part given empty is deleted (an address given whole replaces the old).
        let cleared: Vec<String> = values
            .iter()
            .filter(|(k, v)| v.trim().is_empty() && is_part(k))
            .map(|(k, _)| k.clone())
            .collect();
        let mut normalised = BTreeMap::new();
        for (field, raw) in values {
            if cleared.contains(field) {
                continue;
            }
            let (ty, ..) = self.field_spec(collection, field)?;
            normalised.insert(field.clone(), normalize(field, ty, raw)?);
        }
        let country_field = parts.iter().find(|(p, _)| *p == Part::Country).map(|(_, n)| *n);
        let touches_address = parts.iter().any(|(_, n)| normalised.contains_key(*n));
        // An update of the region or postal code alone is checked against the stored country.
        let stored_country = match country_field {
            Some(c) if touches_address && !values.contains_key(c) => {
                self.stored_plain(&dek, collection, record, c)?
            }
            _ => None,
        };
        crate::address::normalize_parts(&parts, &mut normalised, stored_country.as_deref())?;
        let mut prepared = Vec::new();
        for (field, value) in &normalised {
            let (ty, token_kind, searchable, luhn_valid) = self.field_spec(collection, field)?;
            let value = value.clone();
            let context = FieldContext { collection, record, field, key_version: 1 };
            let envelope = seal(&dek, &context, value.as_bytes()).map_err(|e| crypto_err(&e))?;
            let token = make_token(
                self.store.as_ref(),
                self.purposes.tokens(),
                token_kind,
                ty,
                luhn_valid,
                field,
                &value,
            )?;
            let index = searchable.then(|| {
                BlindIndexKey::derive(self.purposes.index(), collection, field).index(&value)
            });
            prepared.push((field.clone(), envelope, token, index));
        }
        let mut changes: Vec<Change> = cleared
            .iter()
            .map(|field| Change::ClearField {
                collection: collection.into(),
                record: record.into(),
                field: field.clone(),
            })
            .collect();
        let stored_at = unix_now();
        for (field, envelope, token, index) in prepared {
            changes.push(Change::ClearIndexes {
                collection: collection.into(),
                record: record.into(),
                field: field.clone(),
            });
            self.put_field(&mut changes, collection, record, &field, envelope, token, stored_at);
            if let Some(idx) = index {
                changes.push(Change::PutBlind {
                    collection: collection.into(),
                    field,
                    idx,
                    record: record.into(),
                });
            }
        }
        self.store.apply(&changes).map(|_| ())
    }

    /// Whether the tokens of a field must each lead to one value: SSN tokens, drawn at
    /// random among 4,900 per last four digits (card tokens are deterministic and shared by
    /// customers with the same card; random tokens are 128 bits).
    fn unique_token(&self, collection: &str, field: &str) -> bool {
        self.field_spec(collection, field).is_ok_and(|(ty, kind, ..)| {
            kind == TokenKind::FormatPreserving && ty != FieldType::CardNumber
        })
    }

    /// The changes that store one sealed field and its token.
    #[allow(clippy::too_many_arguments)]
    fn put_field(
        &self,
        changes: &mut Vec<Change>,
        collection: &str,
        record: &str,
        field: &str,
        envelope: Vec<u8>,
        token: Option<String>,
        stored_at: i64,
    ) {
        if let Some(t) = &token {
            changes.push(Change::PutToken {
                token: t.clone(),
                collection: collection.into(),
                record: record.into(),
                field: field.into(),
                unique: self.unique_token(collection, field),
            });
        }
        changes.push(Change::PutField {
            collection: collection.into(),
            record: record.into(),
            field: field.into(),
            key_version: 1,
            envelope,
            token,
            stored_at,
        });
    }

    /// Moves the values of a free-text field `old` (an address kept as one line by an
    /// earlier configuration) into the parts of the address field `address`: each is read
    /// into parts where it can be ([`crate::address::parse`]), otherwise kept whole as the
    /// street with region and country unknown; the old value is then deleted. One
    /// transaction: all of it or nothing. The configuration must already have the parts.
    pub fn migrate_to_address(
        &mut self,
        permit: &Permit,
        collection: &str,
        old: &str,
        address: &str,
    ) -> Result<AddressMigration, Error> {
        permit.check(&[Action::VaultMigrate], collection, None)?;
        let parts = crate::address::part_fields(&self.config, collection, address);
        let street =
            parts.iter().find(|(p, _)| *p == Part::Street).map(|(_, n)| n.clone()).ok_or_else(
                || Error::Config(format!("'{address}' is not an address field of '{collection}'")),
            )?;
        let rows = self.store.field_values(collection, old)?;
        let mut report = AddressMigration::default();
        let config = self.config.clone();
        self.batch_all(|v| -> Result<(), Error> {
            for (record, stored) in &rows {
                let dek = v.data_key(collection, record)?;
                let context = FieldContext {
                    collection,
                    record,
                    field: old,
                    key_version: stored.key_version,
                };
                let plain = open(&dek, &context, &stored.envelope).map_err(|e| crypto_err(&e))?;
                let text = String::from_utf8(plain)
                    .map_err(|_| Error::Crypto("stored value is not text".into()))?;
                let given = crate::address::Given::Text(&text);
                let mut values: BTreeMap<String, String> =
                    crate::address::expand(&config, collection, address, &given)?
                        .into_iter()
                        .collect();
                let read = crate::address::check_parts(&config, collection, &values).is_ok()
                    && !values.is_empty();
                if !read {
                    values = BTreeMap::from([(street.clone(), text.clone())]);
                }
                let has =
                    |part: Part| parts.iter().any(|(p, n)| *p == part && values.contains_key(n));
                report.records += 1;
                if has(Part::Region) && has(Part::Country) {
                    report.region_and_country += 1;
                } else if has(Part::Country) {
                    report.country_only += 1;
                } else {
                    report.street_only += 1;
                }
                v.update_raw(collection, record, &values)?;
                v.store.apply(&[Change::ClearField {
                    collection: collection.into(),
                    record: record.clone(),
                    field: old.into(),
                }])?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// How many records the vault holds, in every collection (a count, no data).
    pub fn record_count(&self) -> Result<u64, Error> {
        self.store.count(crate::backend::Table::Deks)
    }

    /// How many records hold a value of `field` (stored, whether or not the configuration
    /// still has the field).
    pub fn count_values(&self, collection: &str, field: &str) -> Result<u64, Error> {
        self.store.count_values(collection, field)
    }

    /// The stored value of one field, decrypted (for checks inside the vault, never
    /// returned to a caller).
    fn stored_plain(
        &self,
        dek: &Key,
        collection: &str,
        record: &str,
        field: &str,
    ) -> Result<Option<String>, Error> {
        match self.store.field(collection, record, field)? {
            Some(stored) => open_text(dek, collection, record, &stored)
                .map(|mut v| Some(std::mem::take(&mut *v))),
            None => Ok(None),
        }
    }

    /// Moves the store's housekeeping (SQLite's WAL checkpoints) of this writing vault to
    /// a background thread, so a commit never waits for it (a long-running writer such as
    /// the server's).
    pub fn checkpoint_in_background(&mut self) -> Result<(), Error> {
        self.store.background_housekeeping()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn store(&self) -> &dyn VaultStore {
        self.store.as_ref()
    }

    pub(crate) fn store_mut(&mut self) -> &mut dyn VaultStore {
        self.store.as_mut()
    }

    /// The key API-key hashes and row seals derive from.
    pub(crate) fn api_keys_key(&self) -> &Key {
        self.purposes.api_keys()
    }

    /// The key the quarantine's opening key derives from (to set up and open the
    /// quarantine: `custody_crypto::sealed_file::OpeningKey::from_root`).
    pub fn quarantine_key(&self) -> &Key {
        self.purposes.quarantine()
    }

    /// The key the ledger's signing key is sealed under ([`crate::layout::seal_ledger_signing`]).
    pub fn ledger_key(&self) -> &Key {
        self.purposes.ledger()
    }

    /// `value` as a masked read of `field` would show it (for front ends that mask plain
    /// values on screen until asked).
    pub fn mask(&self, collection: &str, field: &str, value: &str) -> Result<String, Error> {
        let (ty, ..) = self.field_spec(collection, field)?;
        Ok(mask_value(field, ty, value))
    }

    /// Reloads the newest key-encryption key from the database (after a batch whose commit
    /// failed, so a rotation that did not happen is not kept in memory).
    pub fn reload_kek(&mut self) -> Result<(), Error> {
        let (version, wrapped) = self
            .store
            .latest_kek()?
            .ok_or_else(|| Error::Store("the vault has no key-encryption key".into()))?;
        let ring = unwrap_keyring(&self.root, version, &wrapped).map_err(|e| crypto_err(&e))?;
        self.kek = ring.kek;
        self.purposes = ring.purposes;
        self.kek_version = version;
        Ok(())
    }

    /// The KEK version new data keys are wrapped with.
    pub fn kek_version(&self) -> u32 {
        self.kek_version
    }

    /// Key rotation: a new KEK version wraps every data key; versions nothing refers to any
    /// more are deleted. Returns how many data keys were re-wrapped. The sealed fields are
    /// untouched: their data keys do not change.
    pub fn rotate_keys(&mut self, permit: &Permit) -> Result<usize, Error> {
        permit.check(&[Action::KeysRotate], "keys", None)?;
        let ring = Keyring {
            kek: Key::random().map_err(|e| crypto_err(&e))?,
            purposes: self.purposes.clone(),
        };
        let root = self.root.clone();
        let (changes, rewrapped) = self.rewrap_all(&root, &ring, |_, _, _| Ok(()))?;
        self.store.apply(&changes)?;
        self.kek_version += 1;
        self.kek = ring.kek;
        Ok(rewrapped)
    }

    /// The changes that put `ring` as the next KEK version, wrapped under `root`, re-wrap
    /// every data key under its KEK and drop the KEK versions nothing refers to any more;
    /// and how many data keys were re-wrapped. `each` sees every record's data key on
    /// the way (a root rotation rebuilds the blind indexes with it).
    fn rewrap_all(
        &self,
        root: &Key,
        ring: &Keyring,
        mut each: impl FnMut(&str, &str, &Key) -> Result<(), Error>,
    ) -> Result<(Vec<Change>, usize), Error> {
        let new_version = self.kek_version + 1;
        let wrapped = wrap_keyring(root, new_version, ring).map_err(|e| crypto_err(&e))?;
        let mut changes = vec![Change::PutKek { version: new_version, wrapped }];
        for dek in self.store.deks()? {
            let old = WrappedKey { kek_version: dek.kek_version, envelope: dek.wrapped };
            let data_key =
                unwrap_dek(&self.kek_for(dek.kek_version)?, &old, &dek.collection, &dek.record)
                    .map_err(|e| crypto_err(&e))?;
            each(&dek.collection, &dek.record, &data_key)?;
            let new = wrap_dek(&ring.kek, new_version, &dek.collection, &dek.record, &data_key)
                .map_err(|e| crypto_err(&e))?;
            changes.push(Change::Rewrap {
                collection: dek.collection,
                record: dek.record,
                kek_version: new.kek_version,
                wrapped: new.envelope,
            });
        }
        let rewrapped = changes.len() - 1;
        changes.push(Change::DropUnusedKeks { below: new_version });
        Ok((changes, rewrapped))
    }

    /// Replaces the root key with `new_root`, in one transaction: a new key-encryption key
    /// version wrapped under `new_root` with the purpose keys and a new blind-index key;
    /// every data key re-wrapped under it; older KEK versions deleted; every blind index
    /// rebuilt under the new index key. Afterwards the old root opens nothing in this
    /// database. Sealing `new_root` (passphrase, recovery kit) is the caller's: see
    /// [`crate::layout::rotate_root`]. The sealed fields and their data keys do not change,
    /// so a copy of the vault taken before, with the old root, still opens what it held.
    pub fn rotate_root(&mut self, permit: &Permit, new_root: Key) -> Result<RootRotated, Error> {
        permit.check(&[Action::KeysRotateRoot], "keys", None)?;
        let ring = Keyring {
            kek: Key::random().map_err(|e| crypto_err(&e))?,
            purposes: self.purposes.with_new_index().map_err(|e| crypto_err(&e))?,
        };
        let mut blind = vec![Change::ClearBlind];
        let (mut changes, rewrapped) =
            self.rewrap_all(&new_root, &ring, |collection, record, data_key| {
                for stored in self.store.fields(collection, record)? {
                    let field = stored.field.as_str();
                    if !self
                        .field_spec(collection, field)
                        .is_ok_and(|(_, _, searchable, _)| searchable)
                    {
                        continue;
                    }
                    let value = open_text(data_key, collection, record, &stored)?;
                    blind.push(Change::PutBlind {
                        collection: collection.into(),
                        field: field.into(),
                        idx: BlindIndexKey::derive(ring.purposes.index(), collection, field)
                            .index(&value),
                        record: record.into(),
                    });
                }
                Ok(())
            })?;
        let reindexed = blind.len() - 1;
        let new_version = self.kek_version + 1;
        changes.extend(blind);
        self.store.apply(&changes)?;
        self.scrub();
        let legacy_keys = ring.purposes.legacy();
        self.root = new_root;
        self.kek_version = new_version;
        self.kek = ring.kek;
        self.purposes = ring.purposes;
        *self.other_kek.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(RootRotated { rewrapped, reindexed, kek_version: new_version, legacy_keys })
    }
}
