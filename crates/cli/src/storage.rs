//! `custody store migrate --to postgres://…`: moves an installation from the embedded
//! SQLite files into PostgreSQL, so several `custody serve` nodes can share it.
//!
//! The move is recorded first (`vault.migrate`, to `postgresql`), then the vault's rows are
//! copied sealed as they are (no value is opened) in one transaction, and the ledger event
//! by event with its tree and checkpoints. The copy is checked (rows per table, the ledger
//! verified with the same checkpoints, the root key opening the copied vault) before
//! `config.toml` is switched to it. `vault.db` and `ledger.db` are left untouched.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use custody_ledger::{Action, Event, LedgerOptions, LogStore, Outcome, PgStore, SqliteStore};
use custody_vault::{Location, StoreConfig, Vault, layout};

use crate::EXIT_OK;
use crate::records::{self, Unlock};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy the vault and the ledger into PostgreSQL and switch config.toml to it (the
    /// SQLite files stay as they are).
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database (`postgres://USER@HOST/DB?sslmode=verify-full&sslrootcert=CA.pem`).
    #[arg(long, value_name = "URL")]
    to: String,
    /// The name of the schemas to make there (NAME_vault, NAME_ledger).
    #[arg(long, value_name = "NAME", default_value = "custody")]
    schema: String,
    #[command(flatten)]
    unlock: Unlock,
}

pub fn run(data_dir: &Path, command: &StoreCommand) -> Result<u8> {
    let StoreCommand::Migrate(args) = command;
    let config = layout::load_config(data_dir)?;
    if config.store.is_some() {
        bail!(
            "this installation already keeps its data in PostgreSQL (see [store] in config.toml); nothing was changed"
        );
    }
    let store = StoreConfig { url: args.to.clone(), schema: args.schema.clone() };
    let root = records::unseal(data_dir, &args.unlock)?;
    let data = custody_store::DataDir::new(data_dir);

    // Holding the ledger also keeps a server (or another command) from writing meanwhile.
    let ledger = custody_ledger::Ledger::open(data_dir, LedgerOptions::default())
        .context("the ledger is in use: stop `custody serve` first, then run this again")?;
    let source_vault = Location::Sqlite(data.vault_db());
    let source = Vault::open_at(&source_vault, config.clone(), root.clone())?;
    let records = source.record_count()?;
    custody_vault::layout::ledger_signing(data_dir, &ledger, source.ledger_key())?;
    drop(source);
    let mut event = Event::new(records::OWNER.actor, Action::VaultMigrate, Outcome::Ok);
    event.target = Some(custody_ledger::Target { collection: "vault".into(), record: None });
    event
        .set_details(&custody_ledger::details::VaultMigrate { to: "postgresql".into(), records })?;
    ledger.append(&event)?;
    let source_checkpoint = ledger.checkpoint()?;

    let target_vault = Location::Postgres { url: store.url.clone(), schema: store.vault_schema() };
    let copied = (|| -> Result<_> {
        let tables = custody_vault::copy_store(&source_vault, &target_vault)
            .context("copying the vault to PostgreSQL (nothing was switched)")?;
        let mut target_log = PgStore::connect(&store.url, &store.ledger_schema())?;
        let source_log = SqliteStore::open(&data.ledger_db(), false)?;
        let events = custody_ledger::copy_log(&source_log, &mut target_log)
            .context("copying the ledger to PostgreSQL (nothing was switched)")?;
        Ok((tables, events, target_log))
    })();
    let (tables, events, target_log) = match copied {
        Ok(done) => done,
        Err(e) => {
            // The move was recorded before it began: record that it did not happen.
            let mut failed = Event::new(records::OWNER.actor, Action::VaultMigrate, Outcome::Error);
            failed.target.clone_from(&event.target);
            failed.details.clone_from(&event.details);
            let _ = ledger.append(&failed);
            ledger.close();
            return Err(e);
        }
    };
    ledger.close();

    // Check the copies before switching: the ledger verifies with the same latest
    // checkpoint, and the root key opens the vault.
    let reader: Box<dyn LogStore> = Box::new(target_log);
    let writer: Box<dyn LogStore> = Box::new(PgStore::connect(&store.url, &store.ledger_schema())?);
    let copied = custody_ledger::Ledger::open_with_stores(
        data_dir,
        LedgerOptions::default(),
        reader,
        writer,
    )?;
    let report = copied.verify()?;
    let latest = copied.latest_checkpoint()?;
    copied.close();
    if let Some(problem) = report.problem {
        bail!(
            "the copied ledger does not verify at position {}: config.toml was not switched",
            problem.position
        );
    }
    if report.events != events || latest.map(|c| c.root) != Some(source_checkpoint.root) {
        bail!("the copied ledger differs from the original: config.toml was not switched");
    }
    let copied_records = Vault::open_at(&target_vault, config, root)?.record_count()?;
    if copied_records != records {
        bail!(
            "the copied vault holds {copied_records} records, the original {records}: config.toml was not switched"
        );
    }

    let path = data.config();
    let text = std::fs::read_to_string(&path)?;
    let switched = format!("{}\n{}", text.trim_end(), store.to_toml());
    custody_vault::Config::parse(&switched).context("the switched configuration is not valid")?;
    custody_store::files::replace(&path, switched.as_bytes(), 0o600)
        .with_context(|| format!("cannot write '{}'", path.display()))?;
    println!(
        "Copied {records} records ({} rows) and {events} ledger events to PostgreSQL (schemas {} and {}); both copies checked.",
        tables.iter().map(|(_, n)| n).sum::<u64>(),
        store.vault_schema(),
        store.ledger_schema()
    );
    println!("config.toml now uses PostgreSQL. vault.db and ledger.db were left as they were:");
    println!("keep them only until you have checked the new setup, then delete them (an erasure");
    println!("from now on does not reach them).");
    Ok(EXIT_OK)
}
