//! custody: find, lock, prove and dispose of customer data.
//!
//! The binary is thin: it parses arguments, wires the library crates together, draws
//! progress on a terminal and turns errors into a message, a next step and an exit code
//! (0 ok, 1 findings with `--fail-on-findings`, 2 error).

mod client;
mod decommission;
mod fix;
mod import;
mod init;
mod keys;
mod ledger;
mod migrate;
mod progress;
mod records;
mod scan;
mod serve;
mod status;
mod storage;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for "it worked".
const EXIT_OK: u8 = 0;
/// Exit code for "findings, and --fail-on-findings was given" or "a check failed".
const EXIT_FINDINGS: u8 = 1;
/// Exit code for any error.
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "custody",
    version,
    about = "Find, lock, prove and dispose of the customer data your business holds.",
    after_help = "Exit codes: 0 ok; 1 findings (scan --fail-on-findings, scan --decommission), a fix that\nskipped or failed a file, or a failed check (ledger verify, verify-bundle); 2 error.\nStart with: custody scan PATH"
)]
struct Cli {
    /// The data directory (ledger, keys, vault).
    #[arg(long, global = true, env = "CUSTODY_DATA_DIR", default_value = "custody-data")]
    data_dir: std::path::PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find customer data (cards, SSNs, emails, phones, bank details, keys…) in files.
    Scan(scan::ScanArgs),
    /// Act on what a scan found: quarantine, redact, shred or ignore (a dry run unless --apply).
    Fix(fix::FixArgs),
    /// The encrypted quarantine: list what is in it, restore a file.
    #[command(subcommand)]
    Quarantine(fix::QuarantineCommand),
    /// Create the data directory: configuration, sealed root key, recovery kit, ledger.
    Init(init::InitArgs),
    /// A one-screen health summary of the data directory (no passphrase needed).
    Status(status::StatusArgs),
    /// The tamper-evident log of every access to customer data.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Rotate the vault's keys, or recover the root key from the recovery kit.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Add, show and erase customer records in the encrypted vault (after `custody init`).
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// Import customer records from a CSV file (a dry run with a masked preview unless --apply).
    Import(import::ImportArgs),
    /// Apply retention now (the server does it hourly by itself).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Bring a data directory made by an earlier custody up to date: free-text addresses
    /// become their parts (street, unit, city, region, postal code, country).
    Migrate(migrate::MigrateArgs),
    /// Move the vault and the ledger into PostgreSQL, for several `custody serve` nodes.
    #[command(subcommand)]
    Store(storage::StoreCommand),
    /// Run the vault's HTTP API (default http://127.0.0.1:8731).
    Serve(serve::ServeArgs),
    /// Unseal a running server with the passphrase or two recovery shares.
    Unseal(serve::UnsealArgs),
    /// Internal: parses one document from standard input for a scan (the scan runs it).
    #[command(name = PARSER_CHILD, hide = true)]
    ParserChild {
        #[arg(long)]
        max_seconds: u64,
    },
}

/// The hidden command a scan runs to parse a PDF or legacy Excel file in a child process.
const PARSER_CHILD: &str = "internal-parse";

#[derive(Subcommand)]
enum RetentionCommand {
    /// Erase customers inactive longer than config.toml keeps them and delete values (card
    /// data by default) past their days. Same as `custody records expire`.
    Run {
        #[command(flatten)]
        unlock: records::Unlock,
    },
}

fn main() -> ExitCode {
    // A panic's message can quote what the code was looking at — here, customer data
    // (third-party parsers format the bytes they choke on). Say where, never what.
    std::panic::set_hook(Box::new(|info| {
        let at =
            info.location().map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!(
            "custody: internal error{at} (details withheld: they could contain customer data). \
             A file being read when this happens is reported as skipped."
        );
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan::run(&args, &cli.data_dir),
        Command::Fix(args) => fix::run(&cli.data_dir, &args),
        Command::Quarantine(command) => fix::quarantine(&cli.data_dir, &command),
        Command::Init(args) => init::run(&cli.data_dir, &args),
        Command::Status(args) => Ok(status::run(&cli.data_dir, &args)),
        Command::Ledger(command) => ledger::run(&cli.data_dir, &command),
        Command::Records(command) => records::run(&cli.data_dir, &command),
        Command::Keys(command) => keys::run(&cli.data_dir, &command),
        Command::Serve(args) => serve::serve(&cli.data_dir, &args),
        Command::Import(args) => import::run(&cli.data_dir, &args),
        Command::Migrate(args) => migrate::run(&cli.data_dir, &args),
        Command::Store(command) => storage::run(&cli.data_dir, &command),
        Command::Retention(RetentionCommand::Run { unlock }) => {
            records::run(&cli.data_dir, &records::RecordsCommand::Expire { unlock })
        }
        Command::Unseal(args) => serve::unseal(&args),
        Command::ParserChild { max_seconds } => custody_scan::parser_child_main(
            io::stdin().lock(),
            io::stdout().lock(),
            std::time::Duration::from_secs(max_seconds),
        )
        .map(|()| EXIT_OK)
        .map_err(Into::into),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`custody scan | head`) is the reader's choice, not an error.
            if err.chain().any(|e| {
                e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if let Some(hint) = next_step(&err) {
                eprintln!("what to do: {hint}");
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A recommendation for the errors people hit most.
fn next_step(err: &anyhow::Error) -> Option<&'static str> {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<custody_scan::Error>() {
            return Some(match e {
                custody_scan::Error::Root { .. } => {
                    "check the path exists and is spelled as on disk; `custody scan .` scans the current folder"
                }
                custody_scan::Error::Exclude { .. } => {
                    "use gitignore-style globs such as '*.log' or 'backups/**'"
                }
                custody_scan::Error::Source { .. } => {
                    "check the database is running and the URL, user and password are right"
                }
                custody_scan::Error::Ignore { .. } => {
                    "restore ignored.jsonl in the data directory from a backup, or move it away to start a new list"
                }
                _ => "check there is free disk space where the output goes",
            });
        }
        if let Some(e) = cause.downcast_ref::<custody_remedy::FixError>() {
            use custody_remedy::FixError;
            match e {
                FixError::Exists { .. } => {
                    return Some(
                        "restore it elsewhere with --to PATH, or move the file in the way",
                    );
                }
                FixError::NotInQuarantine { .. } => {
                    return Some("`custody quarantine list` shows the ids");
                }
                FixError::WrongKey => {
                    return Some("use the data directory (and passphrase) that quarantined it");
                }
                FixError::Changed { .. } => {
                    return Some("close the program using the file and run this again");
                }
                _ => {}
            }
        }
        if let Some(e) = cause.downcast_ref::<io::Error>()
            && e.kind() == io::ErrorKind::StorageFull
        {
            return Some("free some disk space and run the scan again");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    /// Splits a shell line into words: single and double quotes, no expansion.
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if any || !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                (_, c) => word.push(c),
            }
        }
        if any || !word.is_empty() {
            out.push(word);
        }
        out
    }

    /// Every `$ custody …` example in the README and the guide parses with today's
    /// arguments: a renamed flag or command fails here, not in a reader's terminal.
    #[test]
    fn every_command_in_the_docs_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("README.md")];
        for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
        let mut checked = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let Some(command) = line.strip_prefix("$ ") else { continue };
                if !command.starts_with("custody ") {
                    continue;
                }
                if let Err(e) = Cli::try_parse_from(words(command)) {
                    panic!("{}:{}: `{command}` does not parse:\n{e}", file.display(), n + 1);
                }
                checked += 1;
            }
        }
        assert!(checked >= 40, "only {checked} examples found: is the guide there?");
    }

    #[test]
    fn shell_words() {
        assert_eq!(words("custody a 'b c' \"d\" ''"), ["custody", "a", "b c", "d", ""]);
    }
}
