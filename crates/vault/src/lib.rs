//! custody-vault: what the vault holds and who may read it.
//!
//! This first part is the pure core: the configuration ([`Config`], with the default
//! `customers` and `orders` collections and the `owner`, `staff`, `app` and `auditor` roles),
//! field validation and normalisation ([`normalize`]: email lower-case, phone E.164, card
//! Luhn, SSN rules, reusing custody-detect's validators), and the access decision
//! ([`Config::decide`]: a read mode per role, field and purpose, deny by default). Storage,
//! encryption (custody-crypto), retention and erasure build on it.

pub mod address;
mod apikeys;
mod audited;
mod backend;
mod config;
mod error;
pub mod import;
pub mod layout;
mod normalize;
mod permit;
mod pool;
mod service;
mod store;

pub use apikeys::{ApiKeyInfo, Refused, key_ref};
pub use audited::{Access, AuditedVault, AuthFailure, Export, Gate};
pub use backend::{Location, copy as copy_store};
pub use config::{
    Budget, Collection, Config, DEFAULT_CONFIG, EXPORT_PURPOSE, Field, FieldRule, FieldType,
    LedgerConfig, Limits, ReadMode, Role, Sensitivity, StoreConfig, TOKENS_COLLECTION, TokenKind,
};
/// The root key and the passphrase-hashing parameters, as the vault's API takes them.
pub use custody_crypto::{Argon2Params, Key};
pub use error::Error;
pub use normalize::normalize;
pub use permit::Permit;
pub use pool::{Done, Op, Pool};
pub use service::{Secret, Service};
pub use store::{AddressMigration, Expired, ReadField, RootRotated, Vault, mask_field};
