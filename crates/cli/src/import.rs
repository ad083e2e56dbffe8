//! `custody import FILE.csv --collection customers`: customer records from a spreadsheet
//! export into the vault. A dry run by default: the column mapping, a masked preview and
//! every row's problems; `--apply` imports the valid rows (each row all or nothing, a bad
//! row reported and left out), then suggests shredding the source file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use custody_vault::import::{check_row, map_columns};
use custody_vault::mask_field;
use indicatif::{ProgressBar, ProgressStyle};

use crate::EXIT_OK;
use crate::records::{self, OWNER, Unlock};

/// Rows inserted per commit.
const BATCH: usize = 500;
/// Rows shown in the preview.
const PREVIEW: usize = 5;
/// Row problems printed before "and N more".
const SHOW_PROBLEMS: usize = 50;

#[derive(Args)]
pub struct ImportArgs {
    /// The CSV file (first line: column names). Tabs or semicolons are detected too.
    file: PathBuf,
    /// The collection to import into (as named in config.toml).
    #[arg(long, default_value = "customers")]
    collection: String,
    /// Map a column to a field: `--map "E-mail address=email"`. Columns named like a field
    /// (or a common synonym) are mapped without it; other columns are left out.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    maps: Vec<String>,
    /// Import. Without it, nothing is written: you see the mapping, a masked preview and
    /// every row's problems.
    #[arg(long)]
    apply: bool,
    #[command(flatten)]
    unlock: Unlock,
}

fn delimiter(first_line: &str) -> u8 {
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',')
}

pub fn run(data_dir: &Path, args: &ImportArgs) -> Result<u8> {
    let config = records::config(data_dir)?;
    let text = std::fs::read(&args.file)
        .with_context(|| format!("cannot read '{}'", args.file.display()))?;
    let first_line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(&String::from_utf8_lossy(first_line)))
        .flexible(true)
        .from_reader(text.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .context("the first line must name the columns")?
        .iter()
        .map(str::to_string)
        .collect();
    // A file without a header line would show its first customer as column names.
    if headers
        .iter()
        .any(|h| h.contains('@') || h.chars().filter(char::is_ascii_digit).count() >= 6)
    {
        bail!(
            "the first line of '{}' looks like customer data, not column names; add a first line naming the columns (for example: name,email,phone)",
            args.file.display()
        );
    }
    let map = map_columns(&config, &args.collection, &headers, &args.maps)?;
    println!("Columns of {} → fields of {}:", args.file.display(), args.collection);
    for (i, header) in headers.iter().enumerate() {
        match map.iter().find(|(c, _)| *c == i) {
            Some((_, field)) => println!("  {header:<24} → {field}"),
            None => println!("  {header:<24}   (left out: not a field; keep only what you need)"),
        }
    }

    // Read and check every row first: nothing is written before the whole file is read.
    let mut good: Vec<(usize, BTreeMap<String, String>)> = Vec::new();
    let mut bad: Vec<(usize, Vec<String>)> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2; // the header is line 1
        match record {
            Ok(record) => {
                match check_row(&config, &args.collection, &map, &record.iter().collect::<Vec<_>>())
                {
                    Ok(values) => good.push((line, values)),
                    Err(problems) => bad.push((line, problems)),
                }
            }
            // The parser's message can quote the row: give the position only.
            Err(_) => {
                bad.push((line, vec!["the row is not valid CSV (an unclosed quote?)".into()]));
            }
        }
    }

    println!(
        "\nPreview (masked), first {} of {} valid row(s):",
        PREVIEW.min(good.len()),
        good.len()
    );
    for (line, values) in good.iter().take(PREVIEW) {
        let shown: Vec<String> = values
            .iter()
            .map(|(f, v)| format!("{f}={}", mask_field(&config, &args.collection, f, v)))
            .collect();
        println!("  line {line}: {}", shown.join("  "));
    }
    if !bad.is_empty() {
        println!("\n{} row(s) cannot be imported as they are:", bad.len());
        for (line, problems) in bad.iter().take(SHOW_PROBLEMS) {
            println!("  line {line}: {}", problems.join("; "));
        }
        if bad.len() > SHOW_PROBLEMS {
            println!("  … and {} more", bad.len() - SHOW_PROBLEMS);
        }
    }
    if !args.apply {
        println!(
            "\nNothing was imported (dry run). To import the {} valid row(s), run the same command with --apply.",
            good.len()
        );
        return Ok(EXIT_OK);
    }

    let mut vault = records::open(data_dir, &args.unlock)?;
    let bar = ProgressBar::new(good.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, {eta} left)")
            .expect("the progress template is a fixed, valid string"),
    );
    let mut imported = 0usize;
    let mut failed: Vec<(usize, String)> = Vec::new();
    for chunk in good.chunks(BATCH) {
        let rows: Vec<BTreeMap<String, String>> = chunk.iter().map(|(_, v)| v.clone()).collect();
        let results = vault.insert_many(&OWNER, &args.collection, &rows)?;
        for ((line, _), result) in chunk.iter().zip(results) {
            match result {
                Ok(_) => imported += 1,
                Err(e) => failed.push((*line, e.to_string())),
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for (line, problem) in &failed {
        println!("  line {line}: {problem}");
    }
    println!(
        "\nImported {imported} record(s) into {}; {} row(s) left out (listed above).",
        args.collection,
        bad.len() + failed.len()
    );
    println!(
        "{} still holds this data in plain text. Once you have checked the import, destroy it:\n  shred -u '{}'\n(on SSDs and cloud-synced folders old copies can survive: also empty the trash and the sync history)",
        args.file.display(),
        args.file.display()
    );
    Ok(EXIT_OK)
}
