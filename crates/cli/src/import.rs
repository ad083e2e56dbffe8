//! `custody import FILE.csv --collection customers`: customer records from a spreadsheet
//! export into the vault. A dry run by default: the column mapping, a masked preview and
//! every row's problems; `--apply` imports the valid rows (each row all or nothing, a bad
//! row reported and left out), then suggests shredding the source file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use custody_vault::{Config, mask_field, normalize};
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

/// Common column names for the default fields.
fn synonym(column: &str) -> Option<&'static str> {
    Some(match column {
        "full_name" | "customer" | "customer_name" | "client" | "contact" => "name",
        "e_mail" | "email_address" | "mail" => "email",
        "telephone" | "tel" | "phone_number" | "mobile" | "cell" => "phone",
        "postal_address" | "mailing_address" | "full_address" | "home_address" => "address",
        "street" | "address_1" | "address1" | "address_line_1" | "addr1" | "street_line_1"
        | "street_1" | "billing_address_1" | "shipping_address_1" => "address_street",
        "address_2" | "address2" | "address_line_2" | "addr2" | "apt" | "apartment" | "suite"
        | "unit" | "street_line_2" | "street_2" | "billing_address_2" | "shipping_address_2" => {
            "address_unit"
        }
        "city" | "town" | "billing_city" | "shipping_city" => "address_city",
        "state" | "province" | "region" | "state_province" | "state_or_province"
        | "billing_state" | "shipping_state" | "county_state" => "address_region",
        "zip" | "zip_code" | "zipcode" | "postal_code" | "postcode" | "post_code" | "postal"
        | "billing_zip" | "shipping_zip" | "billing_postcode" | "shipping_postcode" => {
            "address_postal_code"
        }
        "country" | "country_code" | "billing_country" | "shipping_country" => "address_country",
        "dob" | "birthday" | "birth_date" | "date_of_birth" => "date_of_birth",
        "social_security_number" | "ssn" | "social" => "ssn",
        "card" | "credit_card" | "card_no" | "cc_number" | "pan" => "card_number",
        "expiry" | "exp" | "expiration" | "card_exp" => "card_expiry",
        "note" | "comments" | "comment" => "notes",
        _ => return None,
    })
}

fn key(column: &str) -> String {
    column
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Column index → field name.
fn mapping(
    config: &Config,
    collection: &str,
    headers: &[String],
    maps: &[String],
) -> Result<Vec<(usize, String)>> {
    let fields: Vec<&str> = config
        .collections
        .get(collection)
        .filter(|_| !collection.starts_with('_'))
        .with_context(|| format!("there is no collection '{collection}' in config.toml"))?
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let compounds: Vec<String> =
        config.collections[collection].fields.iter().filter_map(|f| f.part_of.clone()).collect();
    let mut explicit = BTreeMap::new();
    for m in maps {
        let (column, field) =
            m.rsplit_once('=').with_context(|| format!("--map '{m}' is not COLUMN=FIELD"))?;
        if !fields.contains(&field.trim()) && !compounds.iter().any(|c| c == field.trim()) {
            bail!(
                "--map '{m}': '{}' is not a field of {collection} ({})",
                field.trim(),
                fields.join(", ")
            );
        }
        let Some(i) = headers.iter().position(|h| h.trim() == column.trim()) else {
            bail!("--map '{m}': the file has no column '{}'", column.trim());
        };
        explicit.insert(i, field.trim().to_string());
    }
    // Address fields: a column may hold the whole address (parsed into its parts), or one
    // part. "Street address" is the street when other columns hold the other parts.
    let has_parts = headers.iter().any(|h| {
        let k = key(h);
        synonym(&k).is_some_and(|s| s.starts_with("address_") && s != "address_street")
    });
    let known = |f: &str| fields.contains(&f) || compounds.iter().any(|c| c == f);
    let mut out = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let field = explicit.get(&i).cloned().or_else(|| {
            let k = key(header);
            if k == "street_address" {
                let target = if has_parts { "address_street" } else { "address" };
                return known(target).then(|| target.to_string());
            }
            fields
                .iter()
                .find(|f| **f == k)
                .map(|f| (*f).to_string())
                .or_else(|| compounds.iter().find(|c| **c == k).cloned())
                .or_else(|| synonym(&k).filter(|s| known(s)).map(str::to_string))
        });
        if let Some(field) = field {
            if out.iter().any(|(_, f)| *f == field) {
                bail!("two columns map to '{field}': choose one with --map");
            }
            out.push((i, field));
        }
    }
    if out.is_empty() {
        bail!(
            "no column matches a field of {collection} ({}); name them with --map COLUMN=FIELD",
            fields.join(", ")
        );
    }
    Ok(out)
}

fn delimiter(first_line: &str) -> u8 {
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',')
}

/// One row's values by field, or its problems (field names and rules, never values).
fn check_row(
    config: &Config,
    collection: &str,
    map: &[(usize, String)],
    record: &csv::StringRecord,
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let spec = &config.collections[collection];
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, field) in map {
        let raw = record.get(*i).unwrap_or("").trim();
        if raw.is_empty() {
            continue;
        }
        // A whole address in one column becomes its parts (as well as it can be read).
        let given = custody_vault::address::Given::Text(raw);
        let is_address = !custody_vault::address::part_fields(config, collection, field).is_empty();
        let pairs = match custody_vault::address::expand(config, collection, field, &given) {
            Ok(parts) if !parts.is_empty() => parts,
            // A cell like "," holds no address: nothing to import for it.
            _ if is_address => Vec::new(),
            _ => vec![(field.clone(), raw.to_string())],
        };
        for (field, raw) in pairs {
            let ty = spec.fields.iter().find(|f| f.name == field).expect("mapped fields exist").ty;
            match normalize(&field, ty, &raw) {
                Ok(_) => {
                    values.insert(field, raw);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    if problems.is_empty()
        && let Err(e) = custody_vault::address::check_parts(config, collection, &values)
    {
        problems.push(e.to_string());
    }
    for f in spec.fields.iter().filter(|f| f.required && !values.contains_key(&f.name)) {
        if !problems.iter().any(|p| p.contains(&format!("'{}'", f.name))) {
            problems.push(format!("field '{}': is required", f.name));
        }
    }
    if problems.is_empty() { Ok(values) } else { Err(problems) }
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
    let map = mapping(&config, &args.collection, &headers, &args.maps)?;
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
            Ok(record) => match check_row(&config, &args.collection, &map, &record) {
                Ok(values) => good.push((line, values)),
                Err(problems) => bad.push((line, problems)),
            },
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
