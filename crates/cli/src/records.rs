//! `custody records …`: add, show and erase customer records in the vault, from the command
//! line. Every access goes through the ledger first (fail closed); values shown on the
//! terminal are masked unless `--reveal` is given.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use custody_ledger::LedgerOptions;
use custody_vault::Key;
use custody_vault::{Access, AuditedVault, Config, ReadMode, Vault, layout};

use crate::EXIT_OK;
use crate::client::{self, Remote};
use crate::init;

#[derive(Args)]
pub struct Unlock {
    /// Read the passphrase from FILE (its first line). Or set CUSTODY_PASSPHRASE.
    #[arg(long, value_name = "FILE", global = true)]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum RecordsCommand {
    /// Add a record: `custody records add customers name='Jane Doe' email=jane@example.com`.
    /// Give `-` instead of FIELD=VALUE pairs to read one pair per line from standard input
    /// (keeps values out of the shell history).
    Add {
        /// The collection, as named in config.toml.
        collection: String,
        /// FIELD=VALUE pairs, or `-` for standard input.
        #[arg(required = true, value_name = "FIELD=VALUE")]
        values: Vec<String>,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Change some fields of a record: `custody records update customers ID phone='+1 415 555 0100'`
    /// (or `-` to read FIELD=VALUE lines from standard input). All or nothing.
    Update {
        collection: String,
        /// The record id `add` printed.
        id: String,
        /// FIELD=VALUE pairs, or `-` for standard input.
        #[arg(required = true, value_name = "FIELD=VALUE")]
        values: Vec<String>,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Show a record as the role and purpose allow. Plain values are masked unless --reveal.
    Show {
        collection: String,
        /// The record id `add` printed.
        id: String,
        /// The role to read as (see config.toml).
        #[arg(long, default_value = "owner")]
        role: String,
        /// Why you are reading it (recorded in the ledger; see config.toml).
        #[arg(long)]
        purpose: Option<String>,
        /// Print plain values in full instead of masked.
        #[arg(long)]
        reveal: bool,
        /// Print one JSON object (stable: id, collection, fields with mode and value), for
        /// scripts and data-subject requests. Masked the same way unless --reveal.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Find records by a searchable field (email and phone in the default config).
    /// Give `-` as VALUE to read it from standard input.
    Find {
        collection: String,
        /// The field to search.
        field: String,
        /// The value to look for (normalised first: case, spacing, phone format), or `-`.
        value: String,
        /// The role to search as (see config.toml).
        #[arg(long, default_value = "owner")]
        role: String,
        /// Why you are searching (recorded in the ledger).
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Apply retention now: erase customers inactive longer than config.toml keeps them and
    /// delete values (card data by default) past their days. Run it daily from a scheduler.
    Expire {
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Read a record from a running server (`custody serve`) with an API key: values as the
    /// key's role and the purpose allow, masked otherwise.
    Get {
        collection: String,
        id: String,
        /// Why you need the values (a purpose in config.toml): plain only where the key's
        /// role allows it for this purpose.
        #[arg(long)]
        purpose: Option<String>,
        /// Only these fields, comma-separated.
        #[arg(long, value_name = "A,B")]
        fields: Option<String>,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Search a running server on one searchable field:
    /// `custody records search customers email jane@example.com` (`-` reads VALUE from
    /// standard input).
    Search {
        collection: String,
        field: String,
        value: String,
        /// Why you are searching: plain values only where the role allows it.
        #[arg(long)]
        purpose: Option<String>,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// A data-subject export from a running server: everything about a customer, their
    /// orders included, as JSON, for the purpose `data_subject_request` (the owner's key).
    Export {
        collection: String,
        id: String,
        /// Where to write it (created owner-only; `-` for standard output).
        #[arg(long, value_name = "FILE", default_value = "-")]
        out: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Erase a record for good: its key is destroyed, nothing of it can be read again. With
    /// an API key (--key-file or CUSTODY_API_KEY) through the running server; otherwise in
    /// the data directory, with the passphrase.
    Erase {
        collection: String,
        id: String,
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        unlock: Unlock,
    },
}

/// The person at the keyboard: the command line acts as the owner for changes.
pub const OWNER: Access<'static> =
    Access { actor: "cli:owner", role: "owner", purpose: None, request_id: None };

/// The data directory's configuration; an error with the next step if it is not set up.
pub fn config(data_dir: &Path) -> Result<Config> {
    Ok(layout::load_config(data_dir)?)
}

/// The root key, unsealed with the passphrase `unlock` names.
pub fn unseal(data_dir: &Path, unlock: &Unlock) -> Result<Key> {
    let pass = init::read_passphrase(unlock.passphrase_file.as_deref())?;
    match layout::unseal_with_passphrase(data_dir, &pass) {
        Ok(root) => Ok(root),
        Err(refused @ custody_vault::Error::Locked(_)) => {
            // A wrong passphrase is evidence too (someone guessing at this computer). When a
            // running server holds the ledger, it cannot be recorded from here.
            if custody_vault::layout::has_ledger(data_dir)
                && let Ok(ledger) =
                    custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())
            {
                let gate = custody_vault::Gate::new(std::sync::Arc::new(ledger));
                gate.auth_failed(&custody_vault::AuthFailure {
                    via: "cli",
                    reason: custody_vault::Refused::WrongPassphrase,
                    source: None,
                    presented_key: None,
                    request_id: None,
                })?;
            }
            Err(refused.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Unseals the root key and opens the vault and the ledger.
pub fn open(data_dir: &Path, unlock: &Unlock) -> Result<AuditedVault> {
    let config = config(data_dir)?;
    let root = unseal(data_dir, unlock)?;
    let location = layout::vault_location(data_dir, &config);
    let vault = Vault::open_at(&location, config, root)?;
    let ledger = custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())?;
    let vault = AuditedVault::new(vault, ledger);
    // Unlocked: the ledger's signing key is sealed (or opened) with the vault's key.
    layout::ledger_signing(data_dir, vault.ledger(), vault.ledger_key())?;
    Ok(vault)
}

/// `value`, or the first line of standard input for `-` (keeps it out of the shell history).
fn value_or_stdin(value: &str) -> Result<String> {
    if value != "-" {
        return Ok(value.to_string());
    }
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn parse_pairs(values: &[String]) -> Result<BTreeMap<String, String>> {
    let lines: Vec<String> = if values == ["-"] {
        io::stdin().lock().lines().collect::<io::Result<_>>()?
    } else {
        values.to_vec()
    };
    let mut map = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // The error names the position, never the text: it may be a customer value.
        let Some((field, value)) = line.split_once('=') else {
            bail!("value {} is not FIELD=VALUE", i + 1);
        };
        if map.insert(field.trim().to_string(), value.to_string()).is_some() {
            bail!("field '{}' is given twice", field.trim());
        }
    }
    if map.is_empty() {
        bail!("no FIELD=VALUE pairs given");
    }
    Ok(map)
}

/// The stable JSON name of a read mode.
pub fn run(data_dir: &Path, command: &RecordsCommand) -> Result<u8> {
    match command {
        RecordsCommand::Add { collection, values, unlock } => {
            let values = parse_pairs(values)?;
            let mut vault = open(data_dir, unlock)?;
            let id = vault.insert(&OWNER, collection, &values)?;
            println!("{id}");
        }
        RecordsCommand::Update { collection, id, values, unlock } => {
            let values = parse_pairs(values)?;
            let mut vault = open(data_dir, unlock)?;
            vault.update(&OWNER, collection, id, &values)?;
            println!("Updated {} field(s).", values.len());
        }
        RecordsCommand::Show { collection, id, role, purpose, reveal, json, unlock } => {
            let vault = open(data_dir, unlock)?;
            let actor = format!("cli:{role}");
            let access =
                Access { actor: &actor, role, purpose: purpose.as_deref(), request_id: None };
            let fields = vault.read(&access, collection, id)?;
            // (name, mode, what to show): plain values masked on screen unless --reveal.
            let mut shown = Vec::with_capacity(fields.len());
            for (name, field) in &fields {
                let (mode, value) = match (&field.value, field.mode) {
                    (None, _) => ("none", None),
                    (Some(v), ReadMode::Plain) if !reveal => {
                        ("masked", Some(vault.mask(collection, name, v)?))
                    }
                    (Some(v), mode) => (ReadMode::as_str(mode), Some(v.clone())),
                };
                shown.push((name, mode, value));
            }
            if *json {
                let fields: serde_json::Map<String, serde_json::Value> = shown
                    .into_iter()
                    .map(|(name, mode, value)| {
                        (name.clone(), serde_json::json!({ "mode": mode, "value": value }))
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({ "id": id, "collection": collection, "fields": fields })
                );
            } else {
                let width = shown.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
                for (name, _, value) in shown {
                    let value = value.unwrap_or_else(|| "(not allowed)".to_string());
                    println!("{name:width$}  {value}");
                }
            }
        }
        RecordsCommand::Find { collection, field, value, role, purpose, unlock } => {
            let value = value_or_stdin(value)?;
            let vault = open(data_dir, unlock)?;
            let actor = format!("cli:{role}");
            let access =
                Access { actor: &actor, role, purpose: purpose.as_deref(), request_id: None };
            let ids = vault.search(&access, collection, field, &value)?;
            if ids.is_empty() {
                eprintln!("No record matches.");
            }
            for id in ids {
                println!("{id}");
            }
        }
        RecordsCommand::Expire { unlock } => {
            let mut vault = open(data_dir, unlock)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
                .cast_signed();
            let expired = vault.expire(&OWNER, now)?;
            println!(
                "Retention applied: {} record(s) erased, {} value(s) deleted.",
                expired.records, expired.fields
            );
        }
        RecordsCommand::Get { collection, id, purpose, fields, json, remote } => {
            let query = fields.as_deref().map(|f| format!("?fields={}", client::encode(f)));
            let path = format!(
                "/v1/collections/{}/records/{}{}",
                client::encode(collection),
                client::encode(id),
                query.unwrap_or_default()
            );
            let record = remote.call("GET", &path, purpose.as_deref(), None)?;
            if *json {
                println!("{record}");
            } else {
                client::print_record(&record);
            }
        }
        RecordsCommand::Search { collection, field, value, purpose, json, remote } => {
            let value = value_or_stdin(value)?;
            let path = format!(
                "/v1/collections/{}/records?{}={}",
                client::encode(collection),
                client::encode(field),
                client::encode(&value)
            );
            let found = remote.call("GET", &path, purpose.as_deref(), None)?;
            if *json {
                println!("{found}");
            } else {
                let records = found["records"].as_array().cloned().unwrap_or_default();
                if records.is_empty() {
                    eprintln!("No record matches.");
                }
                for record in &records {
                    println!("{}", record["id"].as_str().unwrap_or(""));
                    client::print_record(record);
                }
            }
        }
        RecordsCommand::Export { collection, id, out, remote } => {
            let path = format!(
                "/v1/collections/{}/records/{}/export",
                client::encode(collection),
                client::encode(id)
            );
            let export = remote.call("GET", &path, Some(custody_vault::EXPORT_PURPOSE), None)?;
            client::write_out(out, &serde_json::to_string_pretty(&export)?)?;
            if out != Path::new("-") {
                eprintln!(
                    "Wrote {}: it holds the customer's data in plain text. Send it to them securely, then delete it.",
                    out.display()
                );
            }
        }
        RecordsCommand::Erase { collection, id, remote, .. } if remote.has_key() => {
            let path = format!(
                "/v1/collections/{}/records/{}",
                client::encode(collection),
                client::encode(id)
            );
            let erased = remote.call("DELETE", &path, None, None)?;
            println!(
                "Erased, with {} linked record(s). Nothing of it can be read again; the ledger keeps that it existed.",
                erased["linked_erased"]
            );
        }
        RecordsCommand::Erase { collection, id, unlock, .. } => {
            let mut vault = open(data_dir, unlock)?;
            vault.erase(&OWNER, collection, id)?;
            println!(
                "Erased. Nothing of this record can be read again; the ledger keeps that it existed."
            );
        }
    }
    Ok(EXIT_OK)
}
