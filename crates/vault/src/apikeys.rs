//! API keys: who may call the server, with which role. A key is random and shown once; the
//! vault keeps only its keyed hash (custody-crypto's [`ApiKeyMac`], under a key derived from
//! the root), so keys can be checked only while the vault is unsealed, and a copy of the
//! database neither reveals one nor accepts a forged one. Revocation takes effect on the
//! next request: every request reads the key's row.

use custody_crypto::ApiKeyMac;
use rusqlite::{OptionalExtension, params};

use custody_ledger::Action;

use crate::{Error, Permit, Vault};

/// The collection name API-key permits are for.
pub(crate) const API_KEYS: &str = "api_keys";

pub(crate) const API_KEYS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, tag BLOB NOT NULL, created_at INTEGER NOT NULL,
    revoked_at INTEGER) WITHOUT ROWID;";

/// An API key as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Its public id (the part after `ck_`).
    pub id: String,
    /// The name it was given.
    pub name: String,
    /// Its role.
    pub role: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl ApiKeyInfo {
    /// From a row of `SELECT id, name, role, created_at, revoked_at`.
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            created_at: r.get(3)?,
            revoked_at: r.get(4)?,
        })
    }
}

/// Why a presented credential was refused. Recorded in `auth.failed` events by its stable
/// name; the caller is told only "unauthorized", whatever the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// No credential was sent.
    Missing,
    /// Something was sent that is not an API key (`Authorization` not `Bearer ck_…`).
    Malformed,
    /// An API key whose id no key has.
    Unknown,
    /// A key that was revoked.
    Revoked,
    /// A key with a known id whose secret part is wrong (a forgery or a typo).
    WrongSecret,
    /// A wrong unseal passphrase.
    WrongPassphrase,
    /// Recovery shares that do not rebuild this installation's root key.
    WrongShares,
}

impl Refused {
    /// The stable name recorded in the event's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Missing => "missing",
            Refused::Malformed => "malformed",
            Refused::Unknown => "unknown_key",
            Refused::Revoked => "revoked_key",
            Refused::WrongSecret => "wrong_secret",
            Refused::WrongPassphrase => "wrong_passphrase",
            Refused::WrongShares => "wrong_shares",
        }
    }
}

/// What a key argument refers to: the public id when a whole credential (`ck_ID_SECRET`)
/// was pasted, so the secret is never looked up, recorded or echoed; the argument otherwise.
pub fn key_ref(arg: &str) -> &str {
    ApiKeyMac::id_of(arg.trim()).unwrap_or(arg)
}

fn store_err(e: &rusqlite::Error) -> Error {
    Error::Store(e.to_string())
}

impl Vault {
    /// Makes a new API key for `role`; returns the credential, to show once.
    pub fn create_api_key(
        &self,
        permit: &Permit,
        name: &str,
        role: &str,
    ) -> Result<(ApiKeyInfo, String), Error> {
        permit.check(&[Action::ApiKeyCreate], API_KEYS, None)?;
        if !self.config().roles.contains_key(role) {
            return Err(Error::Invalid {
                field: "role".into(),
                rule: "is not a role in config.toml",
            });
        }
        if name.trim().is_empty() || name.len() > 100 {
            return Err(Error::Invalid {
                field: "name".into(),
                rule: "must be 1 to 100 characters",
            });
        }
        let key = ApiKeyMac::derive(self.root_key())
            .generate()
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let created = self
            .conn()
            .execute(
                "INSERT INTO api_keys (id, name, role, tag, created_at) VALUES (?1, ?2, ?3, ?4, CAST(strftime('%s','now') AS INTEGER))",
                params![key.id, name, role, key.tag.as_slice()],
            );
        match created {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(Error::Conflict(format!("an API key named '{name}' exists")));
            }
            Err(e) => return Err(store_err(&e)),
        }
        let info = self.api_key_by("id", &key.id)?.expect("just inserted");
        Ok((info, key.credential.clone()))
    }

    fn api_key_by(&self, column: &str, value: &str) -> Result<Option<ApiKeyInfo>, Error> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT id, name, role, created_at, revoked_at FROM api_keys WHERE {column} = ?1"
            ))
            .and_then(|mut s| s.query_row([value], ApiKeyInfo::from_row).optional())
            .map_err(|e| store_err(&e))
    }

    /// Every API key, oldest first (a permit to list keys, or to revoke one).
    pub fn list_api_keys(&self, permit: &Permit) -> Result<Vec<ApiKeyInfo>, Error> {
        permit.check(&[Action::ApiKeyList, Action::ApiKeyRevoke], API_KEYS, None)?;
        self.list_api_keys_raw()
    }

    fn list_api_keys_raw(&self) -> Result<Vec<ApiKeyInfo>, Error> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, name")
            .map_err(|e| store_err(&e))?;
        let rows = stmt.query_map([], ApiKeyInfo::from_row).map_err(|e| store_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| store_err(&e))
    }

    /// Revokes the key named `name` (or with that id, or the key itself pasted whole): it
    /// stops working at once.
    pub fn revoke_api_key(&self, permit: &Permit, name: &str) -> Result<ApiKeyInfo, Error> {
        let name = key_ref(name);
        let key = match self.api_key_by("name", name)? {
            Some(k) => k,
            None => self
                .api_key_by("id", name)?
                .ok_or_else(|| Error::NotFound(format!("API key '{name}'")))?,
        };
        self.revoke_api_key_by_id(permit, &key.id, false)
    }

    /// Revokes the key with this id. With `keep_last_admin`, the last working key of an
    /// admin role is refused ([`Error::Conflict`]): checked here, in the one writer, so two
    /// revocations at once cannot both pass.
    pub fn revoke_api_key_by_id(
        &self,
        permit: &Permit,
        id: &str,
        keep_last_admin: bool,
    ) -> Result<ApiKeyInfo, Error> {
        permit.check(&[Action::ApiKeyRevoke], API_KEYS, None)?;
        let key = self.api_key_by("id", id)?.ok_or_else(|| Error::NotFound("API key".into()))?;
        if keep_last_admin {
            let admin = |k: &ApiKeyInfo| {
                k.revoked_at.is_none() && self.config().roles.get(&k.role).is_some_and(|r| r.admin)
            };
            let keys = self.list_api_keys_raw()?;
            if admin(&key) && keys.iter().filter(|k| admin(k)).count() == 1 {
                return Err(Error::Conflict(
                    "this is the last working owner key: create another owner key first".into(),
                ));
            }
        }
        self.conn()
            .execute(
                "UPDATE api_keys SET revoked_at = CAST(strftime('%s','now') AS INTEGER) WHERE id = ?1 AND revoked_at IS NULL",
                [&key.id],
            )
            .map_err(|e| store_err(&e))?;
        self.api_key_by("id", &key.id).map(|k| k.expect("exists"))
    }

    /// The key a presented credential belongs to if it is valid and not revoked, or why
    /// it was refused.
    pub fn authenticate(&self, credential: &str) -> Result<Result<ApiKeyInfo, Refused>, Error> {
        let Some(id) = ApiKeyMac::id_of(credential) else { return Ok(Err(Refused::Malformed)) };
        let row: Option<(Vec<u8>, Option<i64>)> = self
            .conn()
            .prepare_cached("SELECT tag, revoked_at FROM api_keys WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(|e| store_err(&e))?;
        let Some((tag, revoked)) = row else { return Ok(Err(Refused::Unknown)) };
        // The secret is checked first, so "revoked" is said only to a holder of the key.
        if !ApiKeyMac::derive(self.root_key()).verify(credential, &tag) {
            return Ok(Err(Refused::WrongSecret));
        }
        if revoked.is_some() {
            return Ok(Err(Refused::Revoked));
        }
        Ok(self.api_key_by("id", id)?.ok_or(Refused::Unknown))
    }
}
