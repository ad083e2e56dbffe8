//! `custody init`: the data directory, its configuration, the root key sealed under the
//! owner's passphrase and split into a recovery kit, and the ledger.

use std::fmt::Write as _;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use custody_crypto::{Argon2Params, Key, PassphraseSeal, recovery};
use custody_ledger::{Ledger, LedgerOptions};
use custody_vault::{Config, DEFAULT_CONFIG, Vault, layout};

use crate::EXIT_OK;

/// Shortest passphrase accepted.
const MIN_PASSPHRASE: usize = 12;

#[derive(Args)]
pub struct InitArgs {
    /// Read the passphrase from FILE (its first line). Or set CUSTODY_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// The passphrase from `file` (its first line) or `CUSTODY_PASSPHRASE`; at a terminal,
/// typed without echo.
pub fn read_passphrase(file: Option<&Path>) -> Result<String> {
    let raw = match file {
        Some(path) => {
            fs::read_to_string(path).with_context(|| format!("cannot read '{}'", path.display()))?
        }
        None => match std::env::var("CUSTODY_PASSPHRASE") {
            Ok(p) => p,
            Err(_) if std::io::stdin().is_terminal() => {
                rpassword::prompt_password("Passphrase: ").context("cannot read the passphrase")?
            }
            Err(_) => {
                bail!("no passphrase given: use --passphrase-file FILE or set CUSTODY_PASSPHRASE")
            }
        },
    };
    Ok(raw.lines().next().unwrap_or("").trim_end_matches('\r').to_string())
}

/// A new passphrase: from the file or environment, or typed twice at a terminal.
pub fn new_passphrase(file: Option<&Path>, env: &str) -> Result<String> {
    let pass = match file {
        Some(_) => read_passphrase(file)?,
        None => match std::env::var(env) {
            Ok(p) => p,
            Err(_) if std::io::stdin().is_terminal() => {
                let first = rpassword::prompt_password("New passphrase (12+ characters): ")?;
                check_strength(&first)?;
                let again = rpassword::prompt_password("The same again: ")?;
                if first != again {
                    bail!("the two passphrases differ; nothing was changed");
                }
                first
            }
            Err(_) => bail!("no passphrase given: use --passphrase-file FILE or set {env}"),
        },
    };
    check_strength(&pass)?;
    Ok(pass)
}

fn passphrase(args: &InitArgs) -> Result<String> {
    new_passphrase(args.passphrase_file.as_deref(), "CUSTODY_PASSPHRASE")
}

/// Recovery-kit shares pasted on standard input, one per line (blank lines skipped).
pub fn read_shares() -> Result<Vec<String>> {
    use std::io::BufRead as _;
    eprintln!("Paste two shares from the recovery kit, one per line, then press Ctrl-D:");
    let lines = std::io::stdin().lock().lines().collect::<std::io::Result<Vec<String>>>()?;
    Ok(lines.into_iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// Refuses passphrases too short to resist guessing.
pub fn check_strength(pass: &str) -> Result<()> {
    if pass.chars().count() < MIN_PASSPHRASE {
        bail!(
            "the passphrase is too short: use at least {MIN_PASSPHRASE} characters (a few unrelated words are best)"
        );
    }
    Ok(())
}

/// Writes `bytes` to a new file only the owner can read (never over an existing one).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    custody_store::files::write_private(path, bytes)
        .with_context(|| format!("cannot create '{}'", path.display()))
}

fn recovery_kit(shares: &[String]) -> String {
    let mut kit = String::from(
        "CUSTODY RECOVERY KIT\n\
         ====================\n\n\
         These three shares can unlock your customer vault if the passphrase is lost.\n\
         Any TWO of them are enough; one alone reveals nothing.\n\n\
         What to do now:\n\
         1. Print this page.\n\
         2. Cut it into three strips, one share each.\n\
         3. Keep the strips in three different places (a safe, your accountant, a family member).\n\
         4. Delete this file from the computer: `custody` does not need it.\n\n",
    );
    for (i, share) in shares.iter().enumerate() {
        let _ = write!(
            kit,
            "--- Share {} of 3 ------------------------------------------\n{share}\n\n",
            i + 1
        );
    }
    kit
}

pub fn run(data_dir: &Path, args: &InitArgs) -> Result<u8> {
    let data = custody_store::DataDir::new(data_dir);
    let config_path = data.config();
    if config_path.exists() {
        bail!(
            "'{}' is already set up (it has a config.toml); nothing was changed",
            data_dir.display()
        );
    }
    let pass = passphrase(args)?;
    let keys = data.keys();
    // Tighten only what this command creates: an existing folder the user pointed at (their
    // home, a share) keeps its permissions.
    if !data_dir.exists() {
        custody_store::files::private_dir(data_dir)
            .with_context(|| format!("cannot create '{}'", data_dir.display()))?;
    }
    custody_store::files::private_dir(&keys)
        .with_context(|| format!("cannot create '{}'", keys.display()))?;
    let root = Key::random()?;
    let seal = PassphraseSeal::seal(&root, pass.as_bytes(), Argon2Params::default())?;
    write_private(&layout::sealed_root_path(data_dir), layout::sealed_root_text(&seal).as_bytes())?;
    let kit_path = data.recovery_kit();
    write_private(&kit_path, recovery_kit(&recovery::split(&root)).as_bytes())?;
    write_private(&config_path, DEFAULT_CONFIG.as_bytes())?;
    // Files are quarantined to this public key without the passphrase; its secret half is
    // derived from the root key.
    custody_remedy::quarantine::write_sealing_key(
        data_dir,
        custody_crypto::sealed_file::OpeningKey::from_root(&root).sealing_key(),
    )?;
    let ledger = if Ledger::exists(data_dir) {
        Ledger::open(data_dir, LedgerOptions::default())?
    } else {
        Ledger::init(data_dir, LedgerOptions::default())?
    };
    // The vault and its first API key, for the owner's programs and `custody serve`.
    let vault = Vault::open(&layout::vault_path(data_dir), Config::parse(DEFAULT_CONFIG)?, root)?;
    let vault = custody_vault::AuditedVault::new(vault, ledger);
    let (_, credential) = vault.create_api_key(&crate::records::OWNER, "owner", "owner")?;
    drop(vault);
    println!("Set up {}:", data_dir.display());
    println!("  config.toml        what the vault keeps and who may read it (edit to suit)");
    println!("  keys/              the sealed root key and the ledger keys (back up offline)");
    println!(
        "  recovery-kit.txt   three recovery shares: print, store apart, then delete the file"
    );
    println!();
    println!("The owner's API key (for `custody serve`; shown only this once, so store it in a");
    println!("password manager now):");
    println!("  {credential}");
    println!();
    println!("Next step: print {} now, then delete it.", kit_path.display());
    Ok(EXIT_OK)
}
