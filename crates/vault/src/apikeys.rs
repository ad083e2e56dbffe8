//! API keys: who may call the server, with which role. A key is random and shown once; the
//! vault keeps only its keyed hash (custody-crypto's [`ApiKeyMac`], under a key derived from
//! the root), so keys can be checked only while the vault is unsealed, and a copy of the
//! database neither reveals one nor accepts a forged one. Revocation takes effect on the
//! next request: every request reads the key's row.

use custody_crypto::{ApiKeyMac, ApiKeyRowSeal};

use custody_ledger::Action;

use crate::backend::Change;
use crate::{Error, Permit, Vault};

/// The collection name API-key permits are for.
pub(crate) const API_KEYS: &str = "api_keys";

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
    /// A valid key whose stored row was changed without the root key (its role, name,
    /// dates or revocation edited in the database).
    Tampered,
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
            Refused::Tampered => "tampered_key",
        }
    }
}

/// What a key argument refers to: the public id when a whole credential (`ck_ID_SECRET`)
/// was pasted, so the secret is never looked up, recorded or echoed; the argument otherwise.
pub fn key_ref(arg: &str) -> &str {
    ApiKeyMac::id_of(arg.trim()).unwrap_or(arg)
}

/// The length of the credential's keyed hash at the start of a stored tag.
const CREDENTIAL_TAG: usize = 32;

/// What a row's seal covers, in order.
fn row_parts(info: &ApiKeyInfo, credential_tag: &[u8]) -> [Vec<u8>; 6] {
    let revoked = info.revoked_at.map_or_else(Vec::new, |at| at.to_be_bytes().to_vec());
    [
        info.id.as_bytes().to_vec(),
        info.name.as_bytes().to_vec(),
        info.role.as_bytes().to_vec(),
        info.created_at.to_be_bytes().to_vec(),
        revoked,
        credential_tag.to_vec(),
    ]
}

impl Vault {
    /// The stored tag for a key's row: the credential's keyed hash, then the row's seal.
    fn sealed_tag(&self, info: &ApiKeyInfo, credential_tag: &[u8]) -> Vec<u8> {
        let parts = row_parts(info, credential_tag);
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let seal = ApiKeyRowSeal::derive(self.api_keys_key()).seal(&parts);
        [credential_tag, &seal].concat()
    }

    /// Whether a stored row is as custody sealed it.
    fn row_intact(&self, info: &ApiKeyInfo, tag: &[u8]) -> bool {
        if tag.len() != 2 * CREDENTIAL_TAG {
            return false;
        }
        let (credential_tag, seal) = tag.split_at(CREDENTIAL_TAG);
        let parts = row_parts(info, credential_tag);
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        ApiKeyRowSeal::derive(self.api_keys_key()).verify(&parts, seal)
    }

    /// Seals the API-key rows of a vault made before rows were sealed. Only when no row is
    /// sealed yet: once one is, a row without a seal is a tampered row, refused, never
    /// sealed.
    pub(crate) fn seal_legacy_api_keys(&mut self) -> Result<(), Error> {
        let mut legacy = Vec::new();
        for info in self.store().api_keys()? {
            let Some((info, tag)) = self.store().api_key_tag(&info.id)? else { continue };
            if tag.len() != CREDENTIAL_TAG {
                return Ok(());
            }
            legacy.push(Change::SealApiKey { tag: self.sealed_tag(&info, &tag), id: info.id });
        }
        if legacy.is_empty() {
            return Ok(());
        }
        self.store_mut().apply(&legacy).map(|_| ())
    }

    /// Makes a new API key for `role`; returns the credential, to show once.
    pub fn create_api_key(
        &mut self,
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
        let key = ApiKeyMac::derive(self.api_keys_key())
            .generate()
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let info = ApiKeyInfo {
            id: key.id.clone(),
            name: name.to_string(),
            role: role.to_string(),
            created_at: crate::store::unix_now(),
            revoked_at: None,
        };
        let tag = self.sealed_tag(&info, &key.tag);
        self.store_mut().apply(&[Change::PutApiKey { info: info.clone(), tag }])?;
        Ok((info, key.credential.clone()))
    }

    /// Every API key, oldest first (a permit to list keys, or to revoke one).
    pub fn list_api_keys(&self, permit: &Permit) -> Result<Vec<ApiKeyInfo>, Error> {
        permit.check(&[Action::ApiKeyList, Action::ApiKeyRevoke], API_KEYS, None)?;
        self.store().api_keys()
    }

    /// Revokes the key named `name` (or with that id, or the key itself pasted whole): it
    /// stops working at once.
    pub fn revoke_api_key(&mut self, permit: &Permit, name: &str) -> Result<ApiKeyInfo, Error> {
        let name = key_ref(name);
        let key = match self.store().api_key_named(name)? {
            Some(k) => k,
            None => self
                .store()
                .api_key(name)?
                .ok_or_else(|| Error::NotFound(format!("API key '{name}'")))?,
        };
        self.revoke_api_key_by_id(permit, &key.id, false)
    }

    /// Revokes the key with this id. With `keep_last_admin`, the last working key of an
    /// admin role is refused ([`Error::Conflict`]): checked here, in the one writer, so two
    /// revocations at once cannot both pass.
    pub fn revoke_api_key_by_id(
        &mut self,
        permit: &Permit,
        id: &str,
        keep_last_admin: bool,
    ) -> Result<ApiKeyInfo, Error> {
        permit.check(&[Action::ApiKeyRevoke], API_KEYS, None)?;
        let (key, tag) =
            self.store().api_key_tag(id)?.ok_or_else(|| Error::NotFound("API key".into()))?;
        if keep_last_admin {
            // Only rows as custody sealed them count: an edited row is no working key.
            let admin = |k: &ApiKeyInfo, tag: &[u8]| {
                k.revoked_at.is_none()
                    && self.config().roles.get(&k.role).is_some_and(|r| r.admin)
                    && self.row_intact(k, tag)
            };
            let mut working = 0;
            for k in self.store().api_keys()? {
                if let Some((k, t)) = self.store().api_key_tag(&k.id)?
                    && admin(&k, &t)
                {
                    working += 1;
                }
            }
            if admin(&key, &tag) && working == 1 {
                return Err(Error::Conflict(
                    "this is the last working owner key: create another owner key first".into(),
                ));
            }
        }
        let at = crate::store::unix_now();
        let revoked = ApiKeyInfo { revoked_at: Some(at), ..key.clone() };
        let credential_tag = &tag[..CREDENTIAL_TAG.min(tag.len())];
        let tag = self.sealed_tag(&revoked, credential_tag);
        self.store_mut().apply(&[Change::RevokeApiKey { id: key.id.clone(), at, tag }])?;
        self.store().api_key(&key.id)?.ok_or_else(|| Error::NotFound("API key".into()))
    }

    /// The key a presented credential belongs to if it is valid and not revoked, or why
    /// it was refused.
    pub fn authenticate(&self, credential: &str) -> Result<Result<ApiKeyInfo, Refused>, Error> {
        let Some(id) = ApiKeyMac::id_of(credential) else { return Ok(Err(Refused::Malformed)) };
        let Some((info, tag)) = self.store().api_key_tag(id)? else {
            return Ok(Err(Refused::Unknown));
        };
        // The secret is checked first, so "revoked" or "tampered" is said only to a holder
        // of the key.
        let credential_tag = &tag[..CREDENTIAL_TAG.min(tag.len())];
        if !ApiKeyMac::derive(self.api_keys_key()).verify(credential, credential_tag) {
            return Ok(Err(Refused::WrongSecret));
        }
        if !self.row_intact(&info, &tag) {
            return Ok(Err(Refused::Tampered));
        }
        if info.revoked_at.is_some() {
            return Ok(Err(Refused::Revoked));
        }
        Ok(Ok(info))
    }
}
