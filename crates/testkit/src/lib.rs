//! Ground-truth corpora for testing custody's detectors.
//!
//! [`generate`] writes the files of a fictional small shop, Brightleaf Goods — customer CSV
//! exports, orders as CSV/JSON/NDJSON, staff notes, mails, logs, invoices, payroll and supplier
//! sheets, config files with secrets, a hidden `.backup/` folder — with customer data planted in
//! them, and records every planted value in `DIR/truth.jsonl`:
//!
//! ```json
//! {"path":"customers/export_2023.csv","kind":"credit_card","offset":1234,"length":19,"value":"4111 1111 1111 1111","test_card":false}
//! ```
//!
//! - `path` is relative to `DIR`, `/`-separated (hidden paths such as `.backup/` and
//!   `config/.env` are included, so a scanner must not skip dot files).
//! - `offset` is the byte offset where the value starts and `length` its byte length exactly as
//!   written, so `file[offset..offset + length] == value`: separators, parentheses and a
//!   leading `+` are part of a phone span; CSV/JSON quotes are not part of a name span; for a
//!   password inside a URL only the password is the span; for a PEM key, the
//!   `-----BEGIN RSA PRIVATE KEY-----` line.
//! - `test_card` is `true` only for well-known processor test card numbers; every record has it.
//!
//! Hard negatives (values a naive detector would report) go to `DIR/negatives.jsonl` in the same
//! shape plus a `category` field (see [`NegativeCategory`]); their `kind` is the kind they could
//! be mistaken for. A `DIR/.ignore` file lists both answer files so gitignore-style walkers skip
//! them; any scanner run over `DIR` must exclude them.
//!
//! Value construction (Luhn, IBAN mod 97, ABA checksums, SSN rules) lives in [`checks`], written
//! from the specifications and never shared with the detector. Output is a pure function of the
//! options: the same seed gives byte-identical files.

// Generator code names its three ever-present handles by one letter — `d` the file being written,
// `r` the random stream, `l` the ledger — alongside `p` for a person; spelling them out on every
// one of hundreds of template lines would hide the templates.
#![allow(clippy::many_single_char_names)]

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

mod accuracy;
pub mod checks;
mod doc;
pub mod formats;
mod kind;
mod plant;
mod prose;
mod rng;
mod throughput;
mod values;
mod words;

pub use kind::{Kind, NegativeCategory};

/// Which corpus to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// A dense corpus of a few hundred small files (about 1 MB), with hundreds of planted
    /// values per measured kind and more hard negatives than positives.
    Accuracy,
    /// A large, sparse corpus of `size_mb` MiB (a few 50–100 MiB logs and many small files)
    /// for speed tests; truth is still written.
    Throughput,
}

impl Profile {
    /// The profile's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Accuracy => "accuracy",
            Profile::Throughput => "throughput",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a profile name that is not `accuracy` or `throughput`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown profile '{}'; expected 'accuracy' or 'throughput'", self.0)
    }
}

impl std::error::Error for UnknownProfile {}

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accuracy" => Ok(Profile::Accuracy),
            "throughput" => Ok(Profile::Throughput),
            _ => Err(UnknownProfile(s.to_string())),
        }
    }
}

/// What to generate and where.
#[derive(Clone, Debug)]
pub struct Options {
    /// The corpus shape.
    pub profile: Profile,
    /// The output directory. It must be absent, empty, or (with [`Options::overwrite`]) a
    /// previous corpus, recognised by its `truth.jsonl`.
    pub out: PathBuf,
    /// The seed; the same seed and options give byte-identical output.
    pub seed: u64,
    /// Total size in MiB for [`Profile::Throughput`]; ignored by [`Profile::Accuracy`].
    pub size_mb: u64,
    /// Replace `out` if it holds a previous corpus.
    pub overwrite: bool,
}

impl Options {
    /// The default seed.
    pub const DEFAULT_SEED: u64 = 42;
    /// The default throughput size in MiB.
    pub const DEFAULT_SIZE_MB: u64 = 512;

    /// Options for `profile` into `out`, with the default seed and size.
    pub fn new(profile: Profile, out: impl Into<PathBuf>) -> Options {
        Options {
            profile,
            out: out.into(),
            seed: Options::DEFAULT_SEED,
            size_mb: Options::DEFAULT_SIZE_MB,
            overwrite: false,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The profile generated.
    pub profile: Profile,
    /// The seed used.
    pub seed: u64,
    /// The output directory.
    pub out: PathBuf,
    /// Corpus files written (not counting `truth.jsonl`, `negatives.jsonl` and `.ignore`).
    pub files: u64,
    /// Bytes in those files.
    pub bytes: u64,
    /// Planted values per kind, in [`Kind::ALL`] order.
    pub positives: Vec<(Kind, u64)>,
    /// Hard negatives per category, in [`NegativeCategory::ALL`] order.
    pub negatives: Vec<(NegativeCategory, u64)>,
    /// Wall-clock generation time.
    pub elapsed: Duration,
}

impl Summary {
    /// Planted values of `kind`.
    pub fn positives_of(&self, kind: Kind) -> u64 {
        self.positives.iter().find(|(k, _)| *k == kind).map_or(0, |&(_, n)| n)
    }

    /// All planted values.
    pub fn total_positives(&self) -> u64 {
        self.positives.iter().map(|&(_, n)| n).sum()
    }

    /// All hard negatives.
    pub fn total_negatives(&self) -> u64 {
        self.negatives.iter().map(|&(_, n)| n).sum()
    }

    /// Generation speed in MB/s (10^6 bytes per second).
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seed={}: {} files, {:.1} MB, {} positives (",
            self.profile,
            self.seed,
            self.files,
            self.bytes as f64 / 1e6,
            self.total_positives()
        )?;
        for (i, (k, n)) in self.positives.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={n}")?;
        }
        write!(
            f,
            "), {} negatives, {:.2}s ({:.0} MB/s) -> {}",
            self.total_negatives(),
            self.elapsed.as_secs_f64(),
            self.mb_per_sec(),
            self.out.display()
        )
    }
}

/// Prepares the output directory: absent, empty, or a previous corpus when overwriting.
fn prepare(opts: &Options) -> io::Result<()> {
    let out = &opts.out;
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", out.display()),
        ));
    }
    if out.read_dir()?.next().is_none() {
        return Ok(());
    }
    if opts.overwrite && out.join("truth.jsonl").is_file() {
        return std::fs::remove_dir_all(out);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} is not empty; choose a new directory{}",
            out.display(),
            if out.join("truth.jsonl").is_file() {
                " or pass --force to replace the previous corpus"
            } else {
                ""
            }
        ),
    ))
}

/// Generates the corpus described by `opts` and returns what was written.
pub fn generate(opts: &Options) -> io::Result<Summary> {
    let start = Instant::now();
    prepare(opts)?;
    let mut ledger = doc::Ledger::create(&opts.out)?;
    match opts.profile {
        Profile::Accuracy => accuracy::generate(&mut ledger, opts.seed)?,
        Profile::Throughput => throughput::generate(&mut ledger, opts.seed, opts.size_mb)?,
    }
    ledger.finish()?;
    Ok(Summary {
        profile: opts.profile,
        seed: opts.seed,
        out: opts.out.clone(),
        files: ledger.files,
        bytes: ledger.bytes,
        positives: Kind::ALL.iter().map(|&k| (k, ledger.positives[k.index()])).collect(),
        negatives: NegativeCategory::ALL.iter().map(|&c| (c, ledger.negs[c.index()])).collect(),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests;
