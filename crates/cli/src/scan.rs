//! `custody scan`: arguments, output wiring and exit codes.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use custody_detect::{DEFAULT_MIN_CONFIDENCE, DetectorConfig, Kind};
use custody_scan::ExtractLimits as Limits;
use custody_scan::{Finding, Format, Job, Report, Sink, Skip};

use crate::progress::Bar;
use crate::{EXIT_FINDINGS, EXIT_OK};

#[derive(Args)]
pub struct ScanArgs {
    /// Files and folders to scan, and databases: postgres://user@host/db,
    /// mysql://user@host/db (MySQL and MariaDB), sqlite:PATH.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,

    /// Databases: rows read per table (the first N).
    #[arg(long, value_name = "ROWS", default_value_t = 10_000)]
    sample: u64,

    /// Databases: read every row of every table instead of a sample.
    #[arg(long)]
    full: bool,

    /// Output format: table or html (for people: html is a report for the owner, best with
    /// -o report.html), jsonl, json, csv or sarif (for scripts).
    #[arg(long, default_value = "table", value_parser = parse_format)]
    format: Format,

    /// Write results to FILE instead of the screen (created readable by you only).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Show values in full instead of masked. Anyone who sees the output sees the data.
    #[arg(long)]
    reveal: bool,

    /// Only these kinds, comma-separated (e.g. `credit_card,us_ssn,email`).
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kinds: Vec<Kind>,

    /// Hide findings less certain than this (0–1). Test cards are reported at 0.35.
    #[arg(long, default_value_t = DEFAULT_MIN_CONFIDENCE, value_parser = parse_confidence)]
    min_confidence: f32,

    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,

    /// Leave out paths matching this glob (repeatable), e.g. --exclude '*.log'.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,

    /// Follow symbolic links (loops are detected and reported).
    #[arg(long)]
    follow_links: bool,

    /// Read every file again, even those unchanged since the last scan (the cache in the
    /// data directory is not used or updated).
    #[arg(long)]
    no_cache: bool,

    /// Exit with code 1 when anything is found (for scripts and CI).
    #[arg(long)]
    fail_on_findings: bool,

    /// The check before a computer or disk is given away: scan everything (every kind, no
    /// ignore files, no exclusions), record it in the ledger and write a signed certificate.
    #[arg(long)]
    decommission: bool,

    /// With --decommission: where to write the certificate (default
    /// custody-decommission-DATE.html in the current folder).
    #[arg(long, value_name = "FILE", requires = "decommission")]
    certificate: Option<PathBuf>,
    /// With --decommission, when the ledger's signing key is sealed under the vault: read
    /// the passphrase that signs the certificate from FILE. Or set CUSTODY_PASSPHRASE.
    #[arg(long, value_name = "FILE", requires = "decommission")]
    passphrase_file: Option<PathBuf>,

    /// Inside archives: containers nested deeper than this are reported, not opened.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_depth)]
    max_depth: u32,

    /// Inside archives: files in one archive (all levels together) before it is refused.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_members)]
    max_members: u64,

    /// Inside archives: megabytes one member may unpack to when it must be read whole
    /// (documents, nested archives), and 64 times that for a whole archive.
    #[arg(long, value_name = "MB", default_value_t = Limits::default().max_unpacked >> 20)]
    max_unpacked: u64,

    /// Seconds one file may take to read (a PDF or archive that takes longer is reported).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().max_time.as_secs())]
    max_seconds: u64,
}

impl ScanArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_depth,
            max_members: self.max_members,
            max_unpacked: self.max_unpacked << 20,
            max_total: (self.max_unpacked << 20).saturating_mul(64),
            max_time: std::time::Duration::from_secs(self.max_seconds.max(1)),
            isolation: isolation(),
            ..Limits::default()
        }
    }
}

/// PDFs and legacy Excel files are parsed in a child process of this very binary
/// (`custody internal-parse`), killed at the time limit and held to a memory limit.
pub(crate) fn isolation() -> custody_scan::Isolation {
    // /proc/self/exe still runs this very binary after an upgrade replaced its file.
    let this = std::path::Path::new("/proc/self/exe");
    let program = if this.exists() { Ok(this.to_path_buf()) } else { std::env::current_exe() };
    program.map_or(custody_scan::Isolation::Thread, |program| custody_scan::Isolation::Child {
        program,
        args: vec![crate::PARSER_CHILD.into()],
    })
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

pub(crate) fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse().map_err(|e: custody_detect::UnknownKind| e.to_string())
}

pub(crate) fn parse_confidence(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("{v} is not between 0 and 1")) }
}

/// Where findings go: a report, with the progress bar hidden while writing to a terminal.
struct Output<'a, W: Write> {
    report: Report<W>,
    bar: &'a Bar,
    to_terminal: bool,
}

impl<W: Write> Sink for Output<'_, W> {
    fn finding(&mut self, finding: &Finding) -> io::Result<()> {
        if self.to_terminal {
            let report = &mut self.report;
            self.bar.suspend(|| report.finding(finding))
        } else {
            self.report.finding(finding)
        }
    }

    fn skipped(&mut self, skip: &Skip) -> io::Result<()> {
        self.report.skipped(skip)
    }
}

pub fn run(args: &ScanArgs, data_dir: &std::path::Path) -> Result<u8> {
    let started = crate::ledger::now_utc();
    if args.decommission {
        if !args.kinds.is_empty() || !args.exclude.is_empty() {
            anyhow::bail!(
                "--decommission scans everything: leave out --kinds and --exclude.\n\
                 Next step: run the same command without them."
            );
        }
        crate::decommission::check_ready(data_dir)?;
    }
    let mut detector = DetectorConfig::default().with_kinds(&args.kinds);
    detector.min_confidence = args.min_confidence;
    let job = Job {
        targets: args.paths.clone(),
        detector,
        limits: args.limits(),
        exclude: args.exclude.clone(),
        threads: args.threads,
        follow_links: args.follow_links,
        sample: (!args.full).then_some(args.sample),
        data_dir: Some(data_dir.to_path_buf()),
        // Findings the owner accepted (`custody fix ignore`) and `.custodyignore` files
        // hide findings; a decommission check shows all.
        everything: args.decommission,
        // The cache holds masked values only.
        cache: !args.no_cache && !args.reveal,
    };
    if args.reveal {
        eprintln!(
            "warning: --reveal prints customer data in full; do not share or keep this output."
        );
    }
    let stdout_tty = args.output.is_none() && io::stdout().is_terminal();
    let bar = Bar::new(io::stderr().is_terminal());
    // The buffer sits outside the trait object: the serialiser's many small writes stay
    // inlined, and only whole buffers cross the dynamic call.
    let target: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(create_private(path)?),
        None => Box::new(io::stdout().lock()),
    };
    let writer = BufWriter::with_capacity(64 * 1024, target);
    let report = Report::new(writer, args.format, args.reveal)?;
    let mut output = Output { report, bar: &bar, to_terminal: stdout_tty };
    let result = job.run(&mut output, &bar);
    bar.finish();
    let ran = result?;
    for note in &ran.notes {
        eprintln!("note: {note}");
    }
    let summary = ran.summary;
    let mut out = output.report.finish(&summary)?;
    out.flush()?;
    // The run (roots, counts, duration: never values) goes into the ledger when there is one.
    // Databases are recorded without their credentials.
    let roots: Vec<PathBuf> = ran.targets.iter().map(PathBuf::from).collect();
    let summary_json = custody_scan::report::summary_json(&summary);
    if args.decommission {
        let certificate = crate::decommission::certify(
            data_dir,
            &roots,
            &summary,
            &summary_json,
            &started,
            args.certificate.as_deref(),
            &crate::records::Unlock { passphrase_file: args.passphrase_file.clone() },
        )?;
        eprintln!(
            "{} Certificate: {} (signed by your ledger).",
            if summary.total_findings() == 0 {
                "Decommission check: no customer data found."
            } else {
                "Decommission check: customer data found — NOT ready to give away."
            },
            certificate.display()
        );
    } else {
        crate::ledger::record_scan(data_dir, &roots, &summary_json)?;
    }
    if let Some(path) = &args.output {
        eprintln!(
            "Wrote {} finding{} to {}.",
            summary.total_findings(),
            if summary.total_findings() == 1 { "" } else { "s" },
            path.display()
        );
    }
    let fail = args.fail_on_findings || args.decommission;
    Ok(if fail && summary.total_findings() > 0 { EXIT_FINDINGS } else { EXIT_OK })
}

/// Creates (or truncates) an output file that only the owner can read: findings are
/// masked by default, but paths and counts are still nobody else's business.
fn create_private(path: &Path) -> Result<File> {
    custody_store::files::create_private_truncating(path)
        .with_context(|| format!("cannot create output file '{}'", path.display()))
}
