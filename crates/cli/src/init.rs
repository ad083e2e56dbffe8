//! `custody init`: the data directory, its configuration, the root key sealed under the
//! owner's passphrase and split into a recovery kit, and the ledger.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use custody_vault::Argon2Params;
use custody_vault::layout;

use custody_vault::layout::MIN_PASSPHRASE;

use crate::EXIT_OK;

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
    /// Write the recovery kit to FILE (a USB stick, a folder you print from), never inside
    /// the data directory. Without it, the kit is printed here, to copy or print.
    #[arg(long, value_name = "FILE")]
    kit: Option<PathBuf>,
}

/// Refuses a kit path inside the data directory (where any copy of the directory would
/// carry it), or one that exists.
pub(crate) fn check_kit_path(kit: &Path, data_dir: &Path) -> Result<()> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // Resolve what exists (symbolic links included), then add what does not yet.
    let resolve = |p: &Path| {
        let p = absolute(p);
        let mut existing = p.as_path();
        let mut rest = Vec::new();
        while !existing.exists() {
            let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                break;
            };
            rest.push(name.to_owned());
            existing = parent;
        }
        let mut real = fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
        real.extend(rest.iter().rev());
        real
    };
    if resolve(kit).starts_with(resolve(data_dir)) {
        bail!(
            "the recovery kit must not be kept in the data directory ('{}'): anyone with a \
             copy of the directory could open the vault with it. Give --kit a path outside \
             it (a USB stick), or leave --kit out to have it printed here. Nothing was changed.",
            data_dir.display()
        );
    }
    if fs::symlink_metadata(kit).is_ok() {
        bail!("'{}' exists; custody never overwrites it. Nothing was changed.", kit.display());
    }
    Ok(())
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

/// Writes the recovery kit to `kit` (checked with [`check_kit_path`] beforehand) or, without
/// one or when writing fails, prints it; then the next step.
pub(crate) fn hand_over_kit(kit: Option<&Path>, text: &str) {
    let written = kit.and_then(|path| match write_private(path, text.as_bytes()) {
        Ok(()) => Some(path),
        Err(e) => {
            // The keys exist now: the kit must not be lost with the error.
            eprintln!("{e:#}; the recovery kit is printed below instead.");
            None
        }
    });
    if let Some(path) = written {
        println!("The recovery kit (three shares, any two open the vault) is in");
        println!("  {}", path.display());
        println!();
        println!("Next step: print it, keep the three shares in three places, then delete");
        println!("that file.");
    } else {
        println!("{}", text.trim_end());
        println!();
        println!("Next step: print or copy the three shares above now and keep them in");
        println!("three places; they are not stored anywhere, and this is the only time");
        println!("they are shown.");
    }
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
    if let Some(kit) = &args.kit {
        check_kit_path(kit, data_dir)?;
    }
    let pass = passphrase(args)?;
    let store = args
        .store
        .as_ref()
        .map(|url| custody_vault::StoreConfig { url: url.clone(), schema: args.schema.clone() });
    let done = layout::init(data_dir, &pass, Argon2Params::default(), store.as_ref())?;
    // Files are quarantined to this public key without the passphrase; its secret half is
    // derived from the vault's quarantine key.
    custody_remedy::quarantine::set_up(data_dir, &done.quarantine)?;
    println!("Set up {}:", data_dir.display());
    println!("  config.toml        what the vault keeps and who may read it (edit to suit)");
    println!("  keys/              the sealed root key and the ledger keys (back up offline)");
    println!();
    println!("The owner's API key (for `custody serve`; shown only this once, so store it in a");
    println!("password manager now):");
    println!("  {}", done.owner_key);
    println!();
    hand_over_kit(args.kit.as_deref(), &done.kit);
    drop(done);
    Ok(EXIT_OK)
}
