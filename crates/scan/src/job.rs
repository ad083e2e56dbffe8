//! One scan, from what to read to its summary: the files and folders through the parallel
//! [`Scanner`], the databases one after another, the ignore list and the scan cache of a data
//! directory. `custody scan` runs one; scheduled scans will run the same [`Job`].
//!
//! A job never prints and never records: results go to the caller's [`Sink`], progress to
//! its [`Progress`], and what the caller should tell the person running it (a damaged cache
//! replaced) comes back in [`Ran::notes`]. Recording the run in the ledger is the caller's
//! (this crate depends on no ledger).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use custody_detect::DetectorConfig;

use crate::cache::ScanCache;
use crate::database::{DatabaseOptions, display_url, is_database_url, scan_database};
use crate::ignore::IgnoreList;
use crate::{Error, Progress, ScanOptions, Scanner, Sink, Summary};

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct Job {
    /// Files, folders and database URLs (`postgres://…`, `mysql://…`, `sqlite:PATH`).
    pub targets: Vec<PathBuf>,
    /// What to detect and the confidence threshold.
    pub detector: DetectorConfig,
    /// Limits on reading inside archives and documents.
    pub limits: custody_extract::Limits,
    /// Glob patterns of paths to leave out.
    pub exclude: Vec<String>,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Follow symbolic links.
    pub follow_links: bool,
    /// Databases: rows read per table; `None` reads every row.
    pub sample: Option<u64>,
    /// The data directory whose ignore list and scan cache the job uses, and which the
    /// scan never enters (its keys and databases are not customer data to find).
    pub data_dir: Option<PathBuf>,
    /// Read everything: no `.custodyignore` files, no ignore list, no cache (the check
    /// before a computer is given away).
    pub everything: bool,
    /// Use the scan cache of the data directory (results of files unchanged since the last
    /// scan). Off for a full read, and whenever values are shown unmasked: the cache holds
    /// masked values only.
    pub cache: bool,
}

impl Default for Job {
    fn default() -> Self {
        Self {
            targets: vec![PathBuf::from(".")],
            detector: DetectorConfig::default(),
            limits: custody_extract::Limits::default(),
            exclude: Vec::new(),
            threads: 0,
            follow_links: false,
            sample: DatabaseOptions::default().sample,
            data_dir: None,
            everything: false,
            cache: true,
        }
    }
}

/// What a job did.
#[derive(Debug, Default)]
pub struct Ran {
    /// Counts, risky files and folders, duration: files and databases together.
    pub summary: Summary,
    /// The targets as they may be shown and recorded: database URLs without credentials.
    pub targets: Vec<String>,
    /// Things to tell the person running the scan (for example, that a damaged cache was
    /// replaced and every file is read again). Never a customer value.
    pub notes: Vec<String>,
}

impl Job {
    /// The targets as they may be shown and recorded: database URLs without credentials.
    pub fn shown_targets(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|p| {
                let s = p.to_string_lossy();
                if is_database_url(&s) { display_url(&s) } else { s.into_owned() }
            })
            .collect()
    }

    /// Runs the scan: the files and folders first (in parallel), then each database.
    /// Fails on a bad exclude pattern, an unreadable root, an unreachable database, a
    /// damaged ignore list or a sink that cannot be written.
    pub fn run(&self, sink: &mut dyn Sink, progress: &dyn Progress) -> Result<Ran, Error> {
        let (databases, files): (Vec<&PathBuf>, Vec<&PathBuf>) =
            self.targets.iter().partition(|p| is_database_url(&p.to_string_lossy()));
        let mut notes = Vec::new();
        let mut summary = Summary::default();
        if !files.is_empty() {
            let ignored = match (&self.data_dir, self.everything) {
                (Some(dir), false) => IgnoreList::load(dir, false)?.map(Arc::new),
                _ => None,
            };
            let cache = self.open_cache(ignored.as_deref(), &mut notes);
            let options = ScanOptions {
                roots: files.into_iter().cloned().collect(),
                exclude: self.exclude.clone(),
                threads: self.threads,
                follow_links: self.follow_links,
                detector: self.detector.clone(),
                skip_dirs: self.data_dir.iter().cloned().collect(),
                limits: self.limits.clone(),
                ignore_files: !self.everything,
                ignored,
                cache,
                ..ScanOptions::default()
            };
            summary = Scanner::new(options)?.run(sink, progress)?;
        }
        let database_options =
            DatabaseOptions { sample: self.sample, detector: self.detector.clone() };
        for url in databases {
            summary.merge(scan_database(&url.to_string_lossy(), &database_options, sink)?);
        }
        Ok(Ran { summary, targets: self.shown_targets(), notes })
    }

    /// The key under which results are cached: everything that changes what is reported.
    /// Another configuration scans again. (The detector's settings include the current
    /// year, which dates of birth depend on.)
    pub fn cache_key(&self, ignored: Option<&IgnoreList>) -> String {
        format!(
            "detector={}|limits={}|ignored={}",
            self.detector.fingerprint(),
            self.limits.fingerprint(),
            ignored.map_or_else(String::new, IgnoreList::digest)
        )
    }

    /// The scan cache, when there is a data directory to keep it in and the job wants it.
    /// A damaged cache is replaced, with a note; one that cannot be made is done without.
    fn open_cache(
        &self,
        ignored: Option<&IgnoreList>,
        notes: &mut Vec<String>,
    ) -> Option<Arc<ScanCache>> {
        let dir: &Path = self.data_dir.as_deref()?;
        if !self.cache || self.everything || !dir.is_dir() {
            return None;
        }
        let key = self.cache_key(ignored);
        let cache = ScanCache::open(dir, &key).or_else(|e| {
            notes.push(format!("{e}; starting a new one (this scan reads every file)."));
            ScanCache::reset(dir, &key)
        });
        match cache {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                notes.push(format!("{e}; scanning without it."));
                None
            }
        }
    }
}
