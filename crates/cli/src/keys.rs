//! `custody keys …`: rotate the vault's key-encryption key, change the passphrase, and
//! recover the root key from the recovery kit when the passphrase is lost.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use custody_ledger::{Action, Event, LedgerOptions, Outcome};
use custody_vault::Key;
use custody_vault::{ApiKeyInfo, AuditedVault, layout};

use crate::client::{self, Remote};
use crate::records::{self, Unlock};
use crate::serve::DEFAULT_URL;
use crate::{EXIT_OK, init};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make an API key for a program or person: `custody keys create --name shop-site --role app`.
    /// The key is shown once; the vault keeps only a keyed hash of it.
    Create {
        /// A name to recognise it by (unique).
        #[arg(long)]
        name: String,
        /// Its role, as named in config.toml (owner, staff, app, auditor).
        #[arg(long)]
        role: String,
        #[command(flatten)]
        unlock: Unlock,
        #[command(flatten)]
        server: ServerKey,
    },
    /// List the API keys (names, roles, dates; never the keys themselves).
    List {
        #[command(flatten)]
        unlock: Unlock,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerKey,
    },
    /// Revoke an API key by name or id: it stops working at once.
    Revoke {
        /// The key's name (or id).
        name: String,
        #[command(flatten)]
        unlock: Unlock,
        #[command(flatten)]
        server: ServerKey,
    },
    /// Replace the key that wraps every customer's data key (do it yearly). Alone, this
    /// does not shut out someone who knew the passphrase or holds two kit shares: the root
    /// key above it stays the same. With --root it does: see below.
    ///
    /// With --root (when someone who knew the passphrase or held kit shares leaves, or a
    /// copy of keys/root.sealed or of a kit may be out): a new root key, sealed under a new
    /// passphrase, and a new recovery kit; every key row re-wrapped under it and the
    /// search indexes rebuilt under a new key. Afterwards the old passphrase with any copy
    /// of the old keys/root.sealed, and two shares of any old kit, open nothing in this
    /// vault. What it does not do: customer data is not re-encrypted, and card tokens, API
    /// keys and quarantined files keep their keys (they keep working), so a copy of the
    /// vault taken before, together with the old passphrase, still opens what that copy
    /// held. Stop `custody serve` first, or use --server.
    Rotate {
        #[command(flatten)]
        unlock: Unlock,
        /// Replace the root key itself (and the passphrase and the recovery kit).
        #[arg(long)]
        root: bool,
        /// With --root: read the NEW passphrase from FILE (its first line). Or set
        /// CUSTODY_NEW_PASSPHRASE.
        #[arg(long, value_name = "FILE", requires = "root")]
        new_passphrase_file: Option<PathBuf>,
        /// With --root: write the new recovery kit to FILE, never inside the data
        /// directory. Without it, the kit is printed here.
        #[arg(long, value_name = "FILE", requires = "root")]
        kit: Option<PathBuf>,
        #[command(flatten)]
        server: ServerKey,
    },
    /// Change the passphrase (you need the current one; if it is lost, use `recover`).
    Passphrase {
        #[command(flatten)]
        unlock: Unlock,
        /// Read the NEW passphrase from FILE (its first line). Or set CUSTODY_NEW_PASSPHRASE.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// The passphrase is lost: rebuild the root key from two shares of the recovery kit
    /// (read from standard input, one per line) and seal it under a new passphrase.
    Recover {
        /// Read the NEW passphrase from FILE (its first line). Or set CUSTODY_NEW_PASSPHRASE.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
}

/// Manage keys through a running server instead of the data directory (needed while
/// `custody serve` holds it): `--server URL` with an owner key.
#[derive(Args)]
pub struct ServerKey {
    /// The running server's address (`http://127.0.0.1:8731`): act through its API with an
    /// owner key instead of opening the data directory.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// With --server: read the owner's API key from FILE (its first line). Or set
    /// CUSTODY_API_KEY.
    #[arg(long, value_name = "FILE", requires = "server")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    tls: client::Tls,
}

impl ServerKey {
    fn remote(&self) -> Option<Remote> {
        self.server.as_ref().map(|url| Remote {
            url: url.clone(),
            key_file: self.key_file.clone(),
            tls: self.tls.clone(),
        })
    }
}

/// The vault and ledger of the data directory, or, when a running server holds them, an
/// error that says the command to run instead.
fn open_locally(data_dir: &Path, unlock: &Unlock, instead: &str) -> Result<AuditedVault> {
    records::open(data_dir, unlock).map_err(|e| {
        if matches!(e.downcast_ref::<custody_ledger::Error>(), Some(custody_ledger::Error::InUse(_))) {
            anyhow::anyhow!(
                "a running `custody serve` holds this data directory, so keys are managed through it:\n  custody {instead} --server {DEFAULT_URL} --key-file OWNER_KEY_FILE\n(use the server's address if it is not the default; the key must have the owner role)"
            )
        } else {
            e
        }
    })
}

fn print_keys(keys: &[ApiKeyInfo], json: bool) {
    for k in keys {
        if json {
            let line = serde_json::json!({"id": k.id, "name": k.name, "role": k.role,
                "created_at": k.created_at, "revoked_at": k.revoked_at});
            println!("{line}");
        } else {
            let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
            println!("{:<20} {:<8} {:<8} ck_{}_…", k.name, k.role, state, k.id);
        }
    }
    if keys.is_empty() && !json {
        println!("No API keys. Make one with `custody keys create --name NAME --role ROLE`.");
    }
}

/// An API key as the server lists it.
fn key_from_json(v: &serde_json::Value) -> ApiKeyInfo {
    ApiKeyInfo {
        id: v["id"].as_str().unwrap_or_default().to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        role: v["role"].as_str().unwrap_or_default().to_string(),
        created_at: v["created_at"].as_i64().unwrap_or_default(),
        revoked_at: v["revoked_at"].as_i64(),
    }
}

fn new_passphrase(file: Option<&Path>) -> Result<String> {
    init::new_passphrase(file, "CUSTODY_NEW_PASSPHRASE")
}

/// Records `action`, then seals `root` under `pass`: the new seal is written beside the old
/// one and renamed over it, so a crash leaves one or the other, never neither.
fn reseal(data_dir: &Path, root: &Key, pass: &str, action: Action) -> Result<()> {
    // Recorded before it happens, like every other access.
    if custody_vault::layout::has_ledger(data_dir) {
        let ledger = custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())?;
        ledger.append(&Event::new(records::OWNER.actor, action, Outcome::Ok))?;
        ledger.close();
    }
    layout::reseal(data_dir, root, pass)?;
    Ok(())
}

pub fn run(data_dir: &Path, command: &KeysCommand) -> Result<u8> {
    match command {
        KeysCommand::Create { name, role, server, .. } if server.server.is_some() => {
            let remote = server.remote().expect("checked");
            let body = serde_json::json!({"name": name, "role": role});
            let made = remote.call("POST", "/v1/sys/keys", None, Some(&body))?;
            println!(
                "API key '{}' (role {}), shown only this once:",
                made["name"].as_str().unwrap_or(name),
                made["role"].as_str().unwrap_or(role)
            );
            println!("{}", made["key"].as_str().unwrap_or_default());
        }
        KeysCommand::Create { name, role, unlock, .. } => {
            let mut vault = open_locally(
                data_dir,
                unlock,
                &format!("keys create --name {name} --role {role}"),
            )?;
            let (info, credential) = vault.create_api_key(&records::OWNER, name, role)?;
            println!("API key '{}' (role {}), shown only this once:", info.name, info.role);
            println!("{credential}");
        }
        KeysCommand::List { json, server, .. } if server.server.is_some() => {
            let remote = server.remote().expect("checked");
            let answer = remote.call("GET", "/v1/sys/keys", None, None)?;
            let keys: Vec<ApiKeyInfo> = answer["keys"]
                .as_array()
                .map(|a| a.iter().map(key_from_json).collect())
                .unwrap_or_default();
            print_keys(&keys, *json);
        }
        KeysCommand::List { unlock, json, .. } => {
            let vault = open_locally(data_dir, unlock, "keys list")?;
            print_keys(&vault.list_api_keys(&records::OWNER)?, *json);
        }
        KeysCommand::Revoke { name, server, .. } if server.server.is_some() => {
            let remote = server.remote().expect("checked");
            let info = key_from_json(&remote.call(
                "DELETE",
                &format!("/v1/sys/keys/{}", client::encode(name)),
                None,
                None,
            )?);
            println!("Revoked API key '{}' (role {}); it no longer works.", info.name, info.role);
        }
        KeysCommand::Revoke { name, unlock, .. } => {
            let mut vault = open_locally(data_dir, unlock, &format!("keys revoke {name}"))?;
            let info = vault.revoke_api_key(&records::OWNER, name)?;
            println!("Revoked API key '{}' (role {}); it no longer works.", info.name, info.role);
        }
        KeysCommand::Rotate { root, new_passphrase_file, kit, server, .. }
            if server.server.is_some() =>
        {
            let remote = server.remote().expect("checked");
            if let Some(kit) = kit {
                init::check_kit_path(kit, data_dir)?;
            }
            if !*root {
                let done = remote.call("POST", "/v1/sys/rotate", None, None)?;
                println!(
                    "Rotated: {} customer key(s) re-wrapped under a new key (version {}).",
                    done["rewrapped"], done["kek_version"]
                );
                return Ok(EXIT_OK);
            }
            let pass = new_passphrase(new_passphrase_file.as_deref())?;
            let body = serde_json::json!({"new_passphrase": pass});
            let done = remote.call("POST", "/v1/sys/rotate-root", None, Some(&body))?;
            let shares: Vec<&str> = done["recovery_shares"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            println!(
                "Replaced the root key of the running server: {} customer key(s) re-wrapped \
                 (version {}), {} search index entries rebuilt. It now unseals with the new \
                 passphrase and the new recovery kit below. Other servers sharing its \
                 PostgreSQL vault must be restarted and unsealed.",
                done["rewrapped"], done["kek_version"], done["reindexed"]
            );
            println!();
            init::hand_over_kit(kit.as_deref(), &layout::kit_text(&shares));
        }
        KeysCommand::Rotate { unlock, root: true, new_passphrase_file, kit, .. } => {
            if let Some(kit) = kit {
                init::check_kit_path(kit, data_dir)?;
            }
            let mut vault = records::open(data_dir, unlock)?;
            let pass = new_passphrase(new_passphrase_file.as_deref())?;
            let done = layout::rotate_root(
                data_dir,
                &mut vault,
                &records::OWNER,
                &pass,
                custody_vault::Argon2Params::default(),
            )?;
            println!(
                "Replaced the root key: {} customer key(s) re-wrapped (version {}), {} search \
                 index entries rebuilt. The vault now opens with the new passphrase and the \
                 new recovery kit below; the old passphrase, old copies of keys/root.sealed \
                 and old kits open nothing in it.",
                done.vault.rewrapped, done.vault.kek_version, done.vault.reindexed
            );
            if done.vault.legacy_keys {
                println!(
                    "Note: this vault was made before custody kept a key per purpose, so its \
                     card tokens, API keys and quarantine are still keyed by the old root key: \
                     whoever holds that root can still reverse card tokens and, with write \
                     access to the database, alter API keys. To end that, export the records \
                     into a vault made by this release (`custody init`, then `custody import`)."
                );
            }
            println!();
            init::hand_over_kit(kit.as_deref(), &done.kit);
        }
        KeysCommand::Rotate { unlock, .. } => {
            let mut vault = records::open(data_dir, unlock)?;
            let rewrapped = vault.rotate_keys(&records::OWNER)?;
            println!(
                "Rotated: {rewrapped} customer key(s) re-wrapped under a new key (version {}).",
                vault.kek_version()
            );
        }
        KeysCommand::Passphrase { unlock, new_passphrase_file } => {
            let root = records::unseal(data_dir, unlock)?;
            let pass = new_passphrase(new_passphrase_file.as_deref())?;
            reseal(data_dir, &root, &pass, Action::KeysPassphrase)?;
            println!(
                "Changed. The vault now opens with the new passphrase; the old one no longer works."
            );
        }
        KeysCommand::Recover { new_passphrase_file } => {
            records::config(data_dir)?;
            if !layout::sealed_root_path(data_dir).exists() {
                bail!("'{}' has no sealed root key: nothing to recover", data_dir.display());
            }
            let pass = new_passphrase(new_passphrase_file.as_deref())?;
            let lines = init::read_shares()?;
            let shares: Vec<&str> = lines.iter().map(String::as_str).collect();
            let root = layout::unseal_with_shares(data_dir, &shares)?;
            reseal(data_dir, &root, &pass, Action::KeysRecover)?;
            println!(
                "Recovered. The vault now opens with the new passphrase; the old one no longer works."
            );
        }
    }
    Ok(EXIT_OK)
}
