//! The vault's configuration: collections and their fields, roles and their read rules.
//!
//! Deny by default: a role not in the file, a field the role does not list, or a purpose not
//! listed for plain reading all fall back to the most restrictive mode the rule allows, and
//! an unlisted field reads as [`ReadMode::None`]. Plain reading always needs a purpose.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

/// How a field is read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReadMode {
    /// Nothing (the field is left out).
    None,
    /// The token only.
    Token,
    /// The masked value (`j***@example.com`).
    Masked,
    /// The value itself, for a listed purpose.
    Plain,
}

impl ReadMode {
    /// Its name in the configuration and the API (`plain`, `masked`, `token`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::None => "none",
            ReadMode::Token => "token",
            ReadMode::Masked => "masked",
            ReadMode::Plain => "plain",
        }
    }
}

/// A field's data type: decides validation and normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldType {
    /// Free text.
    Text,
    /// Email, stored lower-case.
    Email,
    /// Phone, stored in E.164.
    Phone,
    /// Payment card number, Luhn-checked.
    CardNumber,
    /// Card expiry, MM/YY.
    CardExpiry,
    /// US social-security number.
    Ssn,
    /// A date, YYYY-MM-DD.
    Date,
    /// An amount, 12.50.
    Money,
    /// The id of a record in another collection.
    Reference,
    /// A postal address: in the configuration, one field that stands for six part fields
    /// named `NAME_street`, `NAME_unit`, `NAME_city`, `NAME_region`, `NAME_postal_code` and
    /// `NAME_country` (see [`crate::address`]). Role rules for `NAME` apply to every part
    /// that has no rule of its own.
    Address,
    /// House number and street (a part of an address).
    Street,
    /// Apartment, suite, floor (a part of an address).
    Unit,
    /// City or town (a part of an address).
    City,
    /// State, province or territory, ISO 3166-2 where known (a part of an address).
    Region,
    /// ZIP or postal code (a part of an address).
    PostalCode,
    /// ISO 3166-1 alpha-2 country (a part of an address).
    Country,
}

impl FieldType {
    /// The address part a field of this type holds.
    pub fn address_part(self) -> Option<crate::address::Part> {
        use crate::address::Part;
        Some(match self {
            FieldType::Street => Part::Street,
            FieldType::Unit => Part::Unit,
            FieldType::City => Part::City,
            FieldType::Region => Part::Region,
            FieldType::PostalCode => Part::PostalCode,
            FieldType::Country => Part::Country,
            _ => return None,
        })
    }

    fn of_part(part: crate::address::Part) -> Self {
        use crate::address::Part;
        match part {
            Part::Street => FieldType::Street,
            Part::Unit => FieldType::Unit,
            Part::City => FieldType::City,
            Part::Region => FieldType::Region,
            Part::PostalCode => FieldType::PostalCode,
            Part::Country => FieldType::Country,
        }
    }
}

/// How sensitive a field is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Sensitivity {
    /// Not personal.
    Internal,
    /// Identifies a person (name, email, phone, address).
    Personal,
    /// Harmful if leaked (date of birth, purchase history).
    Sensitive,
    /// Enables fraud on its own (card, SSN): tokenised, never plain for apps.
    Restricted,
}

/// Which token a field gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// No token.
    #[default]
    None,
    /// Random opaque `tok_…`.
    Random,
    /// Same value, same token.
    Deterministic,
    /// Same shape as the value (cards: FF1; SSNs: random 9xx-00 shape).
    FormatPreserving,
}

/// One field of a collection.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// How sensitive it is.
    pub sensitivity: Sensitivity,
    /// Exact-match search through a blind index.
    #[serde(default)]
    pub searchable: bool,
    /// Its token.
    #[serde(default)]
    pub token: TokenKind,
    /// Tokens that pass Luhn (legacy systems; cards only).
    #[serde(default)]
    pub luhn_valid_tokens: bool,
    /// Days to keep the value after it was stored (deleted after, by the retention run).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// A record must have it.
    #[serde(default)]
    pub required: bool,
    /// For a `reference` field: the collection whose record ids it holds. Records that
    /// refer to a record are exported and erased with it (a customer's orders).
    #[serde(default)]
    pub references: Option<String>,
    /// For an `address` field: which parts get a blind index (`region` and `country` by
    /// default, so a breach can be scoped by state).
    #[serde(default)]
    pub searchable_parts: Option<Vec<String>>,
    /// For a part field made from an `address` field: that field's name.
    #[serde(skip)]
    pub part_of: Option<String>,
}

/// A collection of records.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// Days to keep a record after its last activity.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// How one role reads one field.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The mode without an allowed purpose (never `plain`).
    pub mode: ReadMode,
    /// Purposes for which the value is read plain.
    #[serde(default)]
    pub plain_for: Vec<String>,
}

/// A role: what its keys may do.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// May create and update records.
    #[serde(default)]
    pub write: bool,
    /// May erase records.
    #[serde(default)]
    pub erase: bool,
    /// May search.
    #[serde(default)]
    pub search: bool,
    /// May read the ledger and reports.
    #[serde(default)]
    pub audit: bool,
    /// May run the vault: rotate its keys through the server.
    #[serde(default)]
    pub admin: bool,
    /// Mode for fields not listed below.
    #[serde(default = "none_mode")]
    pub default: ReadMode,
    /// Per-field rules, keyed `collection.field` (`"customers.name"`), or by the field's
    /// name alone for the collections custody ships (see [`SHIPPED_COLLECTIONS`]).
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    /// The rule for each (collection, field), resolved from `fields` when the
    /// configuration is parsed.
    #[serde(skip)]
    resolved: BTreeMap<String, BTreeMap<String, FieldRule>>,
}

/// The collections a rule keyed by a field's name alone (`name`, not `customers.name`)
/// applies to: those of the shipped configuration, and standalone tokens. A collection
/// added later is governed only by rules that name it (`"suppliers.name"`) and otherwise
/// by the role's `default`, so a rule written for customers never opens another
/// collection's field of the same name (review item 17).
pub const SHIPPED_COLLECTIONS: [&str; 3] = ["customers", "orders", TOKENS_COLLECTION];

fn none_mode() -> ReadMode {
    ReadMode::None
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Purposes a caller may state.
    pub purposes: Vec<String>,
    /// Collections by name.
    pub collections: BTreeMap<String, Collection>,
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
    /// Limits the server applies.
    #[serde(default)]
    pub limits: Limits,
    /// Where the vault and the ledger live; absent: the embedded SQLite files in the data
    /// directory.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// `[ledger]`: where its checkpoints are witnessed.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// `[tokens]`: how long standalone tokens are kept.
    #[serde(default)]
    pub tokens: TokensConfig,
}

/// `[tokens]` in `config.toml`: standalone tokens (`POST /v1/tokens`), which belong to no
/// customer record.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Days a standalone token is kept after it was made; the retention run then erases
    /// it (its value and mapping: it reveals nothing any more). Review item 6: a token
    /// that outlives every purpose is a copy of the value kept for ever.
    pub retention_days: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self { retention_days: 365 }
    }
}

/// `[ledger]` in `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// A folder outside the data directory (another disk, a network share) that receives a
    /// copy of each new checkpoint; `custody ledger verify` then checks the log against it.
    /// An absolute path.
    pub witness: Option<std::path::PathBuf>,
}

/// `[store]`: a PostgreSQL database that holds the vault and the ledger, shared by every
/// `custody serve` node whose configuration names it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A `postgres://` address or a `key=value` list, with libpq's `sslmode` and
    /// `sslrootcert` (see `custody_store::pg`).
    pub url: String,
    /// The name the schemas are made from: `NAME_vault` and `NAME_ledger` (default
    /// `custody`).
    #[serde(default = "default_schema")]
    pub schema: String,
}

fn default_schema() -> String {
    "custody".into()
}

/// The address may hold a password: never printed.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &"<not shown: it may hold a password>")
            .field("schema", &self.schema)
            .finish()
    }
}

impl StoreConfig {
    /// The vault's schema.
    pub fn vault_schema(&self) -> String {
        format!("{}_vault", self.schema)
    }

    /// The ledger's schema.
    pub fn ledger_schema(&self) -> String {
        format!("{}_ledger", self.schema)
    }

    /// The `[store]` section that names this store, for a `config.toml`.
    pub fn to_toml(&self) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        format!("[store]\nurl = {}\nschema = {}\n", quote(&self.url), quote(&self.schema))
    }
}

/// Limits the server applies to each API key and request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Plain reads and token reveals one API key may make per minute (429 past it).
    pub reveals_per_minute: u32,
    /// Searches one API key may make per minute, with or without a purpose (429 past it).
    pub searches_per_minute: u32,
    /// Records one API key may create or change per minute (429 past it).
    pub writes_per_minute: u32,
    /// Largest request body accepted, in bytes (413 past it).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            reveals_per_minute: 600,
            searches_per_minute: 300,
            writes_per_minute: 600,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// What a per-key budget counts, each in its own window of one minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Plain reads and token reveals (records read plain).
    Reveals,
    /// Searches (each search, whatever it finds).
    Searches,
    /// Records created or changed.
    Writes,
}

impl Budget {
    /// The configured limit per minute.
    pub fn per_minute(self, limits: &Limits) -> u32 {
        match self {
            Budget::Reveals => limits.reveals_per_minute,
            Budget::Searches => limits.searches_per_minute,
            Budget::Writes => limits.writes_per_minute,
        }
    }

    /// The event a refusal is recorded as.
    pub fn refusal(self) -> custody_ledger::Action {
        match self {
            Budget::Reveals => custody_ledger::Action::LimitReveal,
            Budget::Searches => custody_ledger::Action::LimitSearch,
            Budget::Writes => custody_ledger::Action::LimitWrite,
        }
    }

    /// What it counts, in words ("plain reads or reveals").
    pub fn counts(self) -> &'static str {
        match self {
            Budget::Reveals => "plain reads or reveals",
            Budget::Searches => "searches",
            Budget::Writes => "record writes",
        }
    }
}

/// The hidden collection that holds standalone tokens.
pub const TOKENS_COLLECTION: &str = "_tokens";

/// The purpose a data-subject export must state.
pub const EXPORT_PURPOSE: &str = "data_subject_request";

/// The configuration written by `custody init`: commented, with the defaults.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

impl Config {
    /// Parses and checks a configuration.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| Error::Config(e.message().to_string()))?;
        config.expand_addresses()?;
        config.check()?;
        // Standalone tokens (`POST /v1/tokens`) live in a hidden collection with one field
        // per tokenised field name, so they follow the same validation, policy, reveal,
        // retention and erasure as tokens inside records.
        let mut token_fields: Vec<Field> = Vec::new();
        for f in config.collections.values().flat_map(|c| &c.fields) {
            if f.token != TokenKind::None && !token_fields.iter().any(|t| t.name == f.name) {
                token_fields.push(Field {
                    required: false,
                    searchable: false,
                    references: None,
                    ..f.clone()
                });
            }
        }
        config.collections.insert(
            TOKENS_COLLECTION.into(),
            Collection { retention_days: Some(config.tokens.retention_days), fields: token_fields },
        );
        config.resolve_rules()?;
        Ok(config)
    }

    /// Resolves each role's rules to (collection, field): a rule naming the collection
    /// (`customers.address_city`, then `customers.address` for an address part) wins; a
    /// rule by field name alone applies in [`SHIPPED_COLLECTIONS`] only. A rule naming a
    /// collection or field that does not exist is an error (a typo would otherwise leave
    /// the field at the role's default without a word).
    fn resolve_rules(&mut self) -> Result<(), Error> {
        for (role_name, role) in &mut self.roles {
            for key in role.fields.keys() {
                let Some((collection, field)) = key.split_once('.') else { continue };
                let known = self.collections.get(collection).is_some_and(|c| {
                    c.fields.iter().any(|f| f.name == field || f.part_of.as_deref() == Some(field))
                });
                if !known {
                    return Err(Error::Config(format!(
                        "role '{role_name}', field '{key}': there is no field '{field}' in a collection '{collection}'"
                    )));
                }
            }
            let mut resolved = BTreeMap::new();
            for (cname, collection) in &self.collections {
                let shipped = SHIPPED_COLLECTIONS.contains(&cname.as_str());
                let mut rules = BTreeMap::new();
                for f in &collection.fields {
                    let qualified = |name: &str| role.fields.get(&format!("{cname}.{name}"));
                    let bare = |name: &str| shipped.then(|| role.fields.get(name)).flatten();
                    let compound = f.part_of.as_deref();
                    let rule = qualified(&f.name)
                        .or_else(|| compound.and_then(qualified))
                        .or_else(|| bare(&f.name))
                        .or_else(|| compound.and_then(bare));
                    if let Some(rule) = rule {
                        rules.insert(f.name.clone(), rule.clone());
                    }
                }
                resolved.insert(cname.clone(), rules);
            }
            role.resolved = resolved;
        }
        Ok(())
    }

    /// Rules by field name alone that do not apply to a collection outside the shipped
    /// ones although it has a field of that name: (role, field, collection). `custody
    /// status` shows them, with the key to write instead (`"collection.field"`).
    pub fn unapplied_rules(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (role_name, role) in &self.roles {
            for key in role.fields.keys().filter(|k| !k.contains('.')) {
                for (cname, c) in &self.collections {
                    if SHIPPED_COLLECTIONS.contains(&cname.as_str())
                        || !c.fields.iter().any(|f| &f.name == key)
                    {
                        continue;
                    }
                    out.push((role_name.clone(), key.clone(), cname.clone()));
                }
            }
        }
        out
    }

    /// The default configuration.
    pub fn default_config() -> Self {
        Self::parse(DEFAULT_CONFIG).expect("the shipped configuration is valid (tested)")
    }

    /// Replaces each `address` field by its six part fields, and gives each part the rules
    /// roles have for the address (unless they name the part themselves).
    fn expand_addresses(&mut self) -> Result<(), Error> {
        use crate::address::Part;
        let mut compounds = Vec::new();
        for (cname, collection) in &mut self.collections {
            let mut fields = Vec::with_capacity(collection.fields.len() + 5);
            for field in std::mem::take(&mut collection.fields) {
                if field.ty != FieldType::Address {
                    if field.searchable_parts.is_some() {
                        return Err(Error::Config(format!(
                            "collection '{cname}', field '{}': searchable_parts is for type = \"address\"",
                            field.name
                        )));
                    }
                    fields.push(field);
                    continue;
                }
                if field.searchable || field.token != TokenKind::None || field.references.is_some()
                {
                    return Err(Error::Config(format!(
                        "collection '{cname}', field '{}': an address is searched by its parts (searchable_parts) and has no token",
                        field.name
                    )));
                }
                let searchable: Vec<Part> = match &field.searchable_parts {
                    None => Part::ALL.into_iter().filter(|p| p.searchable_by_default()).collect(),
                    Some(names) => names
                        .iter()
                        .map(|n| {
                            Part::from_name(n).ok_or_else(|| {
                                Error::Config(format!(
                                    "collection '{cname}', field '{}': unknown address part '{n}' (street, unit, city, region, postal_code, country)",
                                    field.name
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                };
                for part in Part::ALL {
                    fields.push(Field {
                        name: format!("{}_{}", field.name, part.as_str()),
                        ty: FieldType::of_part(part),
                        searchable: searchable.contains(&part),
                        required: false,
                        searchable_parts: None,
                        part_of: Some(field.name.clone()),
                        ..field.clone()
                    });
                }
                compounds.push(field.name.clone());
            }
            // One address per collection: the API's `address` object names its parts.
            let mut parts: Vec<Part> = fields.iter().filter_map(|f| f.ty.address_part()).collect();
            let count = parts.len();
            parts.sort();
            parts.dedup();
            if parts.len() != count {
                return Err(Error::Config(format!(
                    "collection '{cname}': more than one field holds the same address part"
                )));
            }
            collection.fields = fields;
        }
        for role in self.roles.values_mut() {
            for compound in &compounds {
                if let Some(rule) = role.fields.get(compound).cloned() {
                    for part in Part::ALL {
                        role.fields
                            .entry(format!("{compound}_{}", part.as_str()))
                            .or_insert_with(|| rule.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// The fields of `collection` that hold address parts, as (part, field name).
    pub fn address_fields(&self, collection: &str) -> Vec<(crate::address::Part, &str)> {
        self.collections
            .get(collection)
            .map(|c| {
                c.fields
                    .iter()
                    .filter_map(|f| f.ty.address_part().map(|p| (p, f.name.as_str())))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn check(&self) -> Result<(), Error> {
        if let Some(name) = self.collections.keys().find(|n| n.starts_with('_')) {
            return Err(Error::Config(format!(
                "collection '{name}': names starting with '_' are reserved"
            )));
        }
        if let Some(w) = &self.ledger.witness
            && !w.is_absolute()
        {
            return Err(Error::Config(format!(
                "[ledger] witness = '{}': give an absolute path (a folder outside the data directory)",
                w.display()
            )));
        }
        for (role_name, role) in &self.roles {
            if role.default == ReadMode::Plain {
                return Err(Error::Config(format!(
                    "role '{role_name}': the default mode cannot be plain (plain needs a purpose)"
                )));
            }
            for (field, rule) in &role.fields {
                if rule.mode == ReadMode::Plain {
                    return Err(Error::Config(format!(
                        "role '{role_name}', field '{field}': mode cannot be plain; list purposes in plain_for"
                    )));
                }
                if let Some(p) = rule.plain_for.iter().find(|p| !self.purposes.contains(p)) {
                    return Err(Error::Config(format!(
                        "role '{role_name}', field '{field}': unknown purpose '{p}'"
                    )));
                }
            }
        }
        for (name, collection) in &self.collections {
            for field in &collection.fields {
                if let Some(target) = &field.references {
                    if field.ty != FieldType::Reference || !field.searchable {
                        return Err(Error::Config(format!(
                            "collection '{name}', field '{}': `references` needs type = \"reference\" and searchable = true",
                            field.name
                        )));
                    }
                    if !self.collections.contains_key(target) {
                        return Err(Error::Config(format!(
                            "collection '{name}', field '{}': references unknown collection '{target}'",
                            field.name
                        )));
                    }
                }
                if field.token == TokenKind::FormatPreserving
                    && !matches!(field.ty, FieldType::CardNumber | FieldType::Ssn)
                {
                    return Err(Error::Config(format!(
                        "collection '{name}', field '{}': format-preserving tokens are for cards and SSNs",
                        field.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The fields of other collections that refer to records of `collection`, as
    /// (collection, field) pairs.
    pub fn referrers(&self, collection: &str) -> Vec<(String, String)> {
        self.collections
            .iter()
            .flat_map(|(name, c)| {
                c.fields
                    .iter()
                    .filter(|f| f.references.as_deref() == Some(collection))
                    .map(move |f| (name.clone(), f.name.clone()))
            })
            .collect()
    }

    /// May `role` make a token for a value of `field` it supplies, with `purpose`? Only a
    /// role that writes and reads the field plain for the purpose: otherwise a token handed
    /// back would let it test guessed values against tokens it holds (deterministic tokens
    /// give the same token for the same value).
    pub fn may_tokenize(
        &self,
        role: &str,
        collection: &str,
        field: &str,
        purpose: Option<&str>,
    ) -> bool {
        self.roles.get(role).is_some_and(|r| r.write)
            && self.decide(role, collection, field, purpose) == ReadMode::Plain
    }

    /// How `role` reads `field` of `collection` for `purpose`. Deny by default: an unknown
    /// role or a field without a rule reads as [`ReadMode::None`] (or the role's default);
    /// plain only for a listed purpose.
    pub fn decide(
        &self,
        role: &str,
        collection: &str,
        field: &str,
        purpose: Option<&str>,
    ) -> ReadMode {
        let Some(role) = self.roles.get(role) else { return ReadMode::None };
        match role.resolved.get(collection).and_then(|rules| rules.get(field)) {
            Some(rule) => match purpose {
                Some(p) if rule.plain_for.iter().any(|allowed| allowed == p) => ReadMode::Plain,
                _ => rule.mode,
            },
            None => role.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_parses() {
        let c = Config::default_config();
        assert!(c.collections.contains_key("customers") && c.collections.contains_key("orders"));
        for role in ["owner", "staff", "app", "auditor"] {
            assert!(c.roles.contains_key(role), "{role}");
        }
    }

    /// Every cell of the role × field × purpose matrix for the default configuration.
    #[test]
    fn access_matrix_of_the_default_roles() {
        use ReadMode::{Masked, None as Deny, Plain, Token};
        let c = Config::default_config();
        let fields = [
            "name",
            "email",
            "phone",
            "address_city",
            "date_of_birth",
            "ssn",
            "card_number",
            "card_expiry",
            "notes",
        ];
        let purposes = [
            None,
            Some("order_fulfillment"),
            Some("customer_support"),
            Some("billing"),
            Some("data_subject_request"),
            Some("curiosity"),
        ];
        for role in ["owner", "staff", "app", "auditor", "intruder"] {
            for field in fields {
                for purpose in purposes {
                    let got = c.decide(role, "customers", field, purpose);
                    let known = purpose.is_some_and(|p| p != "curiosity");
                    let want = match role {
                        "owner" => {
                            if known {
                                Plain
                            } else if matches!(field, "ssn" | "card_number") {
                                Token
                            } else {
                                Masked
                            }
                        }
                        "staff" => match (field, purpose) {
                            (
                                "name" | "phone" | "address_city",
                                Some("order_fulfillment" | "customer_support"),
                            ) => Plain,
                            ("ssn" | "card_number", _) => Token,
                            _ => Masked,
                        },
                        "app" => match field {
                            "ssn" | "card_number" => Token,
                            "name" | "email" | "phone" | "address_city" => {
                                if purpose == Some("order_fulfillment") { Plain } else { Masked }
                            }
                            _ => Deny,
                        },
                        _ => Deny,
                    };
                    assert_eq!(got, want, "{role} / {field} / {purpose:?}");
                }
            }
        }
        // Never plain without a purpose, for anyone.
        for role in c.roles.keys() {
            for field in fields {
                assert_ne!(c.decide(role, "customers", field, None), Plain, "{role}/{field}");
            }
        }
    }

    #[test]
    fn bad_configurations_are_refused_with_a_reason() {
        let base = DEFAULT_CONFIG.replace(
            "mode = \"masked\"\nplain_for = [\"order_fulfillment\", \"customer_support\"]",
            "mode = \"plain\"",
        );
        let err = Config::parse(&base).unwrap_err().to_string();
        assert!(err.contains("cannot be plain"), "{err}");
        let err =
            Config::parse(&DEFAULT_CONFIG.replace("\"billing\",", "")).unwrap_err().to_string();
        assert!(err.contains("unknown purpose 'billing'"), "{err}");
        assert!(Config::parse("nonsense = [").is_err());
    }

    /// Review item 17: a rule keyed by a field's name alone governs the shipped
    /// collections only. A collection added later with a field of the same name gets the
    /// role's default, unless a rule names it (`"suppliers.name"`); a rule naming a
    /// collection or field that does not exist is refused.
    #[test]
    fn review_17_rules_are_keyed_by_collection_and_field() {
        use ReadMode::{Masked, Plain};
        let suppliers = "\n[collections.suppliers]\nfields = [\n  { name = \"name\", type = \"text\", sensitivity = \"personal\" },\n  { name = \"phone\", type = \"phone\", sensitivity = \"personal\" },\n]\n";
        let c = Config::parse(&format!("{DEFAULT_CONFIG}{suppliers}")).unwrap();
        // staff reads a customer's name plain for support; a supplier's name it does not.
        assert_eq!(c.decide("staff", "customers", "name", Some("customer_support")), Plain);
        assert_eq!(c.decide("staff", "suppliers", "name", Some("customer_support")), Masked);
        assert_eq!(c.decide("app", "suppliers", "name", Some("order_fulfillment")), ReadMode::None);
        assert_eq!(
            c.unapplied_rules().iter().filter(|(_, f, c)| f == "name" && c == "suppliers").count(),
            3
        );
        // A rule that names the collection applies there.
        let named = DEFAULT_CONFIG.replace(
            "[roles.staff.fields.name]",
            "[roles.staff.fields.\"suppliers.name\"]\nmode = \"masked\"\nplain_for = [\"billing\"]\n\n[roles.staff.fields.name]",
        );
        let c = Config::parse(&format!("{named}{suppliers}")).unwrap();
        assert_eq!(c.decide("staff", "suppliers", "name", Some("billing")), Plain);
        assert_eq!(c.decide("staff", "suppliers", "name", Some("customer_support")), Masked);
        assert_eq!(c.decide("staff", "customers", "name", Some("billing")), Masked);
        // A qualified rule for an address names the compound field and covers its parts.
        let city = DEFAULT_CONFIG.replace(
            "[roles.staff.fields.name]",
            "[roles.staff.fields.\"customers.address\"]\nmode = \"masked\"\nplain_for = [\"billing\"]\n\n[roles.staff.fields.name]",
        );
        let c = Config::parse(&city).unwrap();
        assert_eq!(c.decide("staff", "customers", "address_city", Some("billing")), Plain);
        // A typo is an error, not a silent default.
        let typo = named.replace("suppliers.name", "suppliers.nmae");
        let err = Config::parse(&format!("{typo}{suppliers}")).unwrap_err().to_string();
        assert!(err.contains("no field 'nmae'"), "{err}");
    }
}
