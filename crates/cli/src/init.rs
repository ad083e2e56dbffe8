//! `custody init`: the data directory, its configuration, the root key sealed under the
//! owner's passphrase and split into a recovery kit, and the ledger.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use custody_vault::Argon2Params;
use custody_vault::layout;

use crate::EXIT_OK;

/// Shortest passphrase accepted.
const MIN_PASSPHRASE: usize = 12;

#[derive(Args)]
pub struct InitArgs {
    /// Read the passphrase from FILE (its first line). Or set CUSTODY_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Keep the vault and the ledger in this PostgreSQL database instead of files in the
    /// data directory (`postgres://USER@HOST/DB?sslmode=verify-full&sslrootcert=CA.pem`),
    /// so several `custody serve` nodes can share them.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The name of the PostgreSQL schemas (NAME_vault, NAME_ledger), with --store.
    #[arg(long, value_name = "NAME", default_value = "custody", requires = "store")]
    schema: String,
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

pub fn run(data_dir: &Path, args: &InitArgs) -> Result<u8> {
    if custody_store::DataDir::new(data_dir).config().exists() {
        bail!(
            "'{}' is already set up (it has a config.toml); nothing was changed",
            data_dir.display()
        );
    }
    let pass = passphrase(args)?;
    let store = args
        .store
        .as_ref()
        .map(|url| custody_vault::StoreConfig { url: url.clone(), schema: args.schema.clone() });
    let done = layout::init(data_dir, &pass, Argon2Params::default(), store.as_ref())?;
    // Files are quarantined to this public key without the passphrase; its secret half is
    // derived from the root key.
    custody_remedy::quarantine::set_up(data_dir, &done.root)?;
    let (credential, kit_path) = (done.owner_key.clone(), done.kit.clone());
    drop(done);
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
