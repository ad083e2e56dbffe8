//! `custody init`: the data directory, its configuration, the root key sealed under the
//! owner's passphrase and split into a recovery kit, and the ledger.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use custody_crypto::{Argon2Params, Key, PassphraseSeal, recovery};
use custody_ledger::{Ledger, LedgerOptions};
use custody_vault::DEFAULT_CONFIG;

use crate::EXIT_OK;

/// Shortest passphrase accepted.
const MIN_PASSPHRASE: usize = 12;

#[derive(Args)]
pub struct InitArgs {
    /// Read the passphrase from FILE (its first line). Or set CUSTODY_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// The passphrase from `file` (its first line) or `CUSTODY_PASSPHRASE`.
pub fn read_passphrase(file: Option<&Path>) -> Result<String> {
    let raw = match file {
        Some(path) => {
            fs::read_to_string(path).with_context(|| format!("cannot read '{}'", path.display()))?
        }
        None => match std::env::var("CUSTODY_PASSPHRASE") {
            Ok(p) => p,
            Err(_) => {
                bail!("no passphrase given: use --passphrase-file FILE or set CUSTODY_PASSPHRASE")
            }
        },
    };
    Ok(raw.lines().next().unwrap_or("").trim_end_matches('\r').to_string())
}

fn passphrase(args: &InitArgs) -> Result<String> {
    let pass = read_passphrase(args.passphrase_file.as_deref())?;
    check_strength(&pass)?;
    Ok(pass)
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

/// Writes `bytes` to a new file only the owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f =
        options.open(path).with_context(|| format!("cannot create '{}'", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    custody_ledger::hex(bytes)
}

/// Where the sealed root key lives in a data directory.
pub fn sealed_root_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("root.sealed")
}

/// The sealed root key as a small text file: parameters, salt and envelope.
pub fn sealed_root_text(seal: &PassphraseSeal) -> String {
    format!(
        "custody-root-seal v1\nargon2id m={} t={} p={}\nsalt {}\nsealed {}\n",
        seal.params.memory_kib,
        seal.params.iterations,
        seal.params.parallelism,
        hex(&seal.salt),
        hex(&seal.sealed)
    )
}

/// Reads the file [`sealed_root_text`] writes.
pub fn read_sealed_root(path: &Path) -> Result<PassphraseSeal> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let broken = || {
        anyhow::anyhow!(
            "'{}' is damaged: restore it from a backup or use the recovery kit",
            path.display()
        )
    };
    let mut lines = text.lines();
    if lines.next() != Some("custody-root-seal v1") {
        return Err(broken());
    }
    let mut params = Argon2Params::default();
    let argon = lines.next().and_then(|l| l.strip_prefix("argon2id ")).ok_or_else(broken)?;
    for part in argon.split(' ') {
        let (name, value) = part.split_once('=').ok_or_else(broken)?;
        let value: u32 = value.parse().map_err(|_| broken())?;
        match name {
            "m" => params.memory_kib = value,
            "t" => params.iterations = value,
            "p" => params.parallelism = value,
            _ => return Err(broken()),
        }
    }
    let mut field = |name: &str| -> Result<Vec<u8>> {
        let h = lines.next().and_then(|l| l.strip_prefix(name)).ok_or_else(broken)?;
        custody_ledger::unhex(h.trim()).ok_or_else(broken)
    };
    let salt = field("salt ")?.try_into().map_err(|_| broken())?;
    let sealed = field("sealed ")?;
    Ok(PassphraseSeal { params, salt, sealed })
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
    let config_path = data_dir.join("config.toml");
    if config_path.exists() {
        bail!(
            "'{}' is already set up (it has a config.toml); nothing was changed",
            data_dir.display()
        );
    }
    let pass = passphrase(args)?;
    let keys = data_dir.join("keys");
    // Tighten only what this command creates: an existing folder the user pointed at (their
    // home, a share) keeps its permissions.
    let created_data_dir = !data_dir.exists();
    fs::create_dir_all(&keys).with_context(|| format!("cannot create '{}'", keys.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if created_data_dir {
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))?;
        }
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700))?;
    }
    let root = Key::random()?;
    let seal = PassphraseSeal::seal(&root, pass.as_bytes(), Argon2Params::default())?;
    write_private(&sealed_root_path(data_dir), sealed_root_text(&seal).as_bytes())?;
    let kit_path = data_dir.join("recovery-kit.txt");
    write_private(&kit_path, recovery_kit(&recovery::split(&root)).as_bytes())?;
    write_private(&config_path, DEFAULT_CONFIG.as_bytes())?;
    if !Ledger::exists(data_dir) {
        Ledger::init(data_dir, LedgerOptions::default())?.close();
    }
    println!("Set up {}:", data_dir.display());
    println!("  config.toml        what the vault keeps and who may read it (edit to suit)");
    println!("  keys/              the sealed root key and the ledger keys (back up offline)");
    println!(
        "  recovery-kit.txt   three recovery shares: print, store apart, then delete the file"
    );
    println!("Next step: print {} now, then delete it.", kit_path.display());
    Ok(EXIT_OK)
}
