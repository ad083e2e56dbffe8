//! `custody status`: a one-screen health summary of a data directory, without the
//! passphrase. Each check says OK, or a WARNING with the one next step; `--json` prints the
//! same as one JSON object for scripts. Exit code 0 when all is well, 1 with a warning,
//! 2 when the directory is not set up.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;
use custody_ledger::{Error as LedgerError, LedgerOptions};
use custody_store::DataDir;
use serde::Serialize;

use crate::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};

#[derive(Args)]
pub struct StatusArgs {
    /// Print one JSON object (`data_dir`, `ok`, `checks`: name, status, message).
    #[arg(long)]
    json: bool,
}

/// One line of the summary.
#[derive(Serialize)]
struct Check {
    /// A stable name (`setup`, `permissions`, `recovery_kit`, `store`, `policy`, `ledger`,
    /// `quarantine`).
    name: &'static str,
    /// `ok`, `warning` or `error`.
    status: &'static str,
    /// In plain words, with the next step when something needs doing.
    message: String,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, status: "ok", message: message.into() }
    }
    fn warning(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, status: "warning", message: message.into() }
    }
    fn error(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, status: "error", message: message.into() }
    }
}

/// The first line that starts a recovery share, in the first 64 KiB of a file.
fn holds_a_share(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    let mut head = Vec::new();
    if file.take(64 * 1024).read_to_end(&mut head).is_err() {
        return false;
    }
    String::from_utf8_lossy(&head).lines().any(|l| l.trim_start().starts_with("custody-share"))
}

/// Files at the top of the data directory (and in `keys/`) that hold recovery shares:
/// the kit as an earlier release left it, or a copy under another name.
fn kits_in(data: &DataDir) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [data.root().to_path_buf(), data.keys()] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let small_file =
                entry.metadata().is_ok_and(|m| m.is_file() && m.len() < 16 * 1024 * 1024);
            if small_file && holds_a_share(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn checks(data_dir: &Path) -> Vec<Check> {
    let data = DataDir::new(data_dir);
    let mut out = Vec::new();
    if !data.config().exists() {
        out.push(Check::error(
            "setup",
            format!(
                "'{}' is not set up. Next step: run `custody init` (or pass --data-dir).",
                data_dir.display()
            ),
        ));
        return out;
    }
    out.push(if data.sealed_root().exists() {
        Check::ok("setup", "set up; the root key is sealed under the passphrase")
    } else {
        Check::error(
            "setup",
            format!(
                "keys/root.sealed is missing: the vault cannot be opened with the passphrase. \
                 Next step: restore '{}' from your offline copy of keys/, or run \
                 `custody keys recover` with two recovery shares.",
                data.sealed_root().display()
            ),
        )
    });

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open: Vec<String> = [data.root().to_path_buf(), data.keys()]
            .iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o077 != 0))
            .map(|p| p.display().to_string())
            .collect();
        out.push(if open.is_empty() {
            Check::ok("permissions", "only this account can open the data directory")
        } else {
            Check::warning(
                "permissions",
                format!(
                    "other accounts on this computer can look into {}. Next step: `chmod 700 {}`.",
                    open.join(" and "),
                    open.join(" ")
                ),
            )
        });
    }

    let kits = kits_in(&data);
    out.push(if kits.is_empty() {
        Check::ok("recovery_kit", "no recovery kit is kept in the data directory")
    } else {
        let list: Vec<String> = kits.iter().map(|p| p.display().to_string()).collect();
        Check::warning(
            "recovery_kit",
            format!(
                "a recovery kit is in the data directory ({}): anyone with a copy of the \
                 directory, such as a backup, can open the vault with it. Next step: print it, \
                 keep the shares in three places, then delete it: `shred -u {}`.",
                list.join(", "),
                list.join(" ")
            ),
        )
    });

    match custody_vault::layout::load_config(data_dir) {
        Ok(config) => {
            out.push(Check::ok(
                "store",
                match &config.store {
                    Some(store) => format!(
                        "the vault and the ledger are in PostgreSQL (schema '{}')",
                        store.schema
                    ),
                    None => "the vault and the ledger are files in the data directory".to_string(),
                },
            ));
            let unapplied = config.unapplied_rules();
            out.push(if unapplied.is_empty() {
                Check::ok("policy", "every role rule applies where it is meant to")
            } else {
                let list: Vec<String> = unapplied
                    .iter()
                    .map(|(role, field, c)| {
                        format!("[roles.{role}.fields] {field} → \"{c}.{field}\"")
                    })
                    .collect();
                Check::warning(
                    "policy",
                    format!(
                        "role rules by field name alone apply to customers and orders only, so \
                         these fields of your own collections read as the role's default. Next \
                         step: if they should follow the rule, add it under the collection's \
                         name in config.toml: {}.",
                        list.join("; ")
                    ),
                )
            });
        }
        Err(e) => out.push(Check::error("store", format!("config.toml cannot be used: {e}"))),
    }

    match custody_vault::layout::open_ledger(data_dir, LedgerOptions::default()) {
        Ok(ledger) => {
            let size = ledger.size().unwrap_or(0);
            let checkpoint = ledger.latest_checkpoint().ok().flatten();
            let witnessed = ledger.witnessed().is_some();
            ledger.close();
            let data = custody_store::DataDir::new(data_dir);
            // Review item 12: with a vault, the signing key is sealed under it.
            let signing = if data.ledger_signing_key().exists() {
                if data.vault_db().exists() || custody_vault::layout::load_config(data_dir).is_ok()
                {
                    " (its signing key is still in clear: unlock once, e.g. `custody keys list`, to seal it)"
                } else {
                    ""
                }
            } else {
                " (its signing key is sealed under the vault)"
            };
            out.push(Check::ok(
                "ledger",
                format!(
                    "{size} event(s) recorded{}{signing}; run `custody ledger verify` to check them all{}",
                    if checkpoint.is_some() { ", with a signed checkpoint" } else { "" },
                    if witnessed {
                        " (checkpoints are also kept in the witness folder)"
                    } else {
                        ". Tip: set [ledger] witness in config.toml to a folder on another disk, \
                         so a shortened log is noticed"
                    }
                ),
            ));
        }
        Err(LedgerError::InUse(_)) => out.push(Check::ok(
            "ledger",
            "in use by a running `custody serve` (ask it: GET /v1/health)",
        )),
        Err(e) => out.push(Check::error(
            "ledger",
            format!("the ledger cannot be opened: {e}. Next step: `custody ledger verify`."),
        )),
    }

    match custody_remedy::quarantine::Quarantine::open(data_dir).and_then(|q| q.list()) {
        Ok(entries) => out.push(Check::ok(
            "quarantine",
            format!("{} file(s) in the quarantine (`custody quarantine list`)", entries.len()),
        )),
        Err(e) => out.push(Check::warning("quarantine", format!("the quarantine: {e}"))),
    }
    out
}

pub fn run(data_dir: &Path, args: &StatusArgs) -> u8 {
    let checks = checks(data_dir);
    let code = if checks.iter().any(|c| c.status == "error") {
        EXIT_ERROR
    } else if checks.iter().any(|c| c.status == "warning") {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    if args.json {
        let doc = serde_json::json!({
            "data_dir": data_dir.display().to_string(),
            "ok": code == EXIT_OK,
            "checks": checks,
        });
        println!("{doc}");
    } else {
        println!("custody status of {}", data_dir.display());
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &checks {
            let mark = match c.status {
                "ok" => "OK     ",
                "warning" => "WARNING",
                _ => "ERROR  ",
            };
            println!("  {mark}  {:width$}  {}", c.name, c.message);
        }
        if code == EXIT_OK {
            println!("All is well.");
        }
    }
    code
}
