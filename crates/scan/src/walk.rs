//! The parallel walk: which files to read, in how many threads, and where results go.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel as channel;
use custody_detect::{Detector, DetectorConfig};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::{WalkBuilder, WalkState};

use crate::error::Error;
use crate::file::{Located, scan_file};
use crate::finding::{Finding, RiskyFile, RiskyFolder, Skip, SkipReason, Summary};

/// Findings travel to the writer in batches: one channel hand-off per batch.
const BATCH: usize = 256;

/// The name of the ignore file custody reads (gitignore syntax), in any scanned directory.
pub const IGNORE_FILE: &str = ".custodyignore";

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Files and directories to scan.
    pub roots: Vec<PathBuf>,
    /// Glob patterns of paths to leave out (matched against the path below the root and
    /// against the file name).
    pub exclude: Vec<String>,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Follow symbolic links (loops are detected and reported).
    pub follow_links: bool,
    /// Bytes read per chunk.
    pub chunk_size: usize,
    /// What to detect and the confidence threshold.
    pub detector: DetectorConfig,
    /// Directories never to enter (custody's own data directory: its keys and database).
    pub skip_dirs: Vec<PathBuf>,
    /// Limits on reading inside archives and documents.
    pub limits: custody_extract::Limits,
    /// Honour `.custodyignore` files (off for a decommission check: everything is read).
    pub ignore_files: bool,
    /// Findings the owner ignored (`custody fix ignore`): not reported, only counted.
    pub ignored: Option<Arc<crate::ignore::IgnoreList>>,
    /// Results of unchanged files from earlier scans (masked values only).
    pub cache: Option<Arc<crate::cache::ScanCache>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            roots: vec![PathBuf::from(".")],
            exclude: Vec::new(),
            threads: 0,
            follow_links: false,
            chunk_size: 256 * 1024,
            detector: DetectorConfig::default(),
            skip_dirs: Vec::new(),
            limits: custody_extract::Limits::default(),
            ignore_files: true,
            ignored: None,
            cache: None,
        }
    }
}

/// The file on disk behind a path as a scan of `roots` shows it (relative to the root
/// when a single folder is scanned, as walked otherwise).
pub fn resolve(roots: &[PathBuf], shown: &str) -> PathBuf {
    match roots {
        [root] if root.is_dir() => root.join(shown),
        _ => PathBuf::from(shown),
    }
}

/// Receives results, on the caller's thread, in the order files finish.
pub trait Sink {
    /// A finding. An error stops the scan (a closed pipe, a full disk).
    fn finding(&mut self, finding: &Finding) -> std::io::Result<()>;
    /// A file that was skipped or only partly scanned.
    fn skipped(&mut self, skip: &Skip) -> std::io::Result<()>;
}

/// Progress reports, called from worker threads. Every method has a no-op default.
pub trait Progress: Sync {
    /// `bytes` more were read.
    fn bytes(&self, _bytes: u64) {}
    /// A file was scanned completely, with `findings` findings.
    fn file_done(&self, _findings: u64) {}
    /// A file was skipped.
    fn file_skipped(&self) {}
}

/// A [`Progress`] that reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// A configured scan.
pub struct Scanner {
    options: ScanOptions,
    detector: Arc<Detector>,
    exclude: GlobSet,
}

enum Message {
    /// Findings of one file, in order, in batches.
    Findings(Vec<Finding>),
    Skip(Skip),
    /// Something inside a file that was not read (a member, a part).
    MemberSkip(Skip),
    Done {
        path: String,
        bytes: u64,
        file: Option<RiskyFile>,
        /// Read to the end (a file stopped by a limit still ranks by what it showed).
        complete: bool,
        /// Findings left out because the owner ignored them.
        ignored: u64,
        /// Results reused from the scan cache.
        cached: bool,
    },
}

impl Scanner {
    /// Validates options and builds the detector.
    pub fn new(options: ScanOptions) -> Result<Self, Error> {
        let mut set = GlobSetBuilder::new();
        for glob in &options.exclude {
            let g = GlobBuilder::new(glob)
                .literal_separator(false)
                .build()
                .map_err(|source| Error::Exclude { glob: glob.clone(), source })?;
            set.add(g);
        }
        let exclude = set
            .build()
            .map_err(|source| Error::Exclude { glob: options.exclude.join(" "), source })?;
        for root in &options.roots {
            std::fs::symlink_metadata(root)
                .map_err(|source| Error::Root { path: root.clone(), source })?;
        }
        let detector = Arc::new(Detector::new(options.detector.clone()));
        Ok(Self { options, detector, exclude })
    }

    /// Runs the scan, sending results to `sink` and progress to `progress`.
    pub fn run(&self, sink: &mut dyn Sink, progress: &dyn Progress) -> Result<Summary, Error> {
        let started = Instant::now();
        let (tx, rx) = channel::bounded::<Message>(4096);
        let stop_flag = AtomicBool::new(false);
        let stop = &stop_flag;
        let threads = if self.options.threads == 0 {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        } else {
            self.options.threads
        };
        let mut summary = Summary::default();
        // Per folder: score, files with findings, findings.
        let mut folders: std::collections::BTreeMap<String, (f64, u64, u64)> =
            std::collections::BTreeMap::new();
        let mut failure = None;
        std::thread::scope(|scope| {
            // The walker owns the sender: when it finishes, the channel closes.
            let walker = scope.spawn(move || self.walk(threads, &tx, stop, progress));
            for message in &rx {
                if failure.is_some() {
                    continue; // drain so workers can finish
                }
                let result = match message {
                    Message::Findings(batch) => batch.iter().try_for_each(|f| {
                        *summary.findings_by_kind.entry(f.kind).or_insert(0) += 1;
                        sink.finding(f)
                    }),
                    Message::Skip(s) => {
                        *summary.files_skipped.entry(s.reason.code()).or_insert(0) += 1;
                        sink.skipped(&s)
                    }
                    Message::MemberSkip(s) => {
                        *summary.members_skipped.entry(s.reason.code()).or_insert(0) += 1;
                        sink.skipped(&s)
                    }
                    Message::Done { path, bytes, file, complete, ignored, cached } => {
                        summary.findings_ignored += ignored;
                        summary.files_cached += u64::from(cached);
                        if complete {
                            summary.files_scanned += 1;
                        }
                        summary.bytes_scanned += bytes;
                        if let Some(file) = file {
                            let folder = path.rsplit_once('/').map_or(".", |(dir, _)| dir);
                            let f = folders.entry(folder.to_string()).or_insert((0.0, 0, 0));
                            f.0 += file.score;
                            f.1 += 1;
                            f.2 += file.findings;
                            summary.offer_risky(file);
                        }
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    stop.store(true, Ordering::Relaxed);
                    failure = Some(Error::Output(e));
                }
            }
            let _ = walker.join();
        });
        if let Some(cache) = &self.options.cache {
            cache.flush();
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut ranked: Vec<RiskyFolder> = folders
            .into_iter()
            .map(|(path, (score, files, findings))| RiskyFolder { path, score, files, findings })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(10);
        summary.riskiest_folders = ranked;
        summary.duration = started.elapsed();
        Ok(summary)
    }

    fn walk(
        &self,
        threads: usize,
        tx: &channel::Sender<Message>,
        stop: &AtomicBool,
        progress: &dyn Progress,
    ) {
        let roots = &self.options.roots;
        let mut builder = WalkBuilder::new(&roots[0]);
        for root in &roots[1..] {
            builder.add(root);
        }
        // Customer data hides in dot-files and git-ignored exports: read everything except
        // what .custodyignore and --exclude leave out.
        builder.standard_filters(false).follow_links(self.options.follow_links).threads(threads);
        if self.options.ignore_files {
            builder.add_custom_ignore_filename(IGNORE_FILE);
        }
        let exclude = self.exclude.clone();
        let single_root = (roots.len() == 1).then(|| roots[0].clone());
        let strip: Option<PathBuf> = single_root.filter(|r| r.is_dir());
        let strip_for_filter = strip.clone();
        // Compared by canonical path, looked up only for directories with a matching name.
        let skip_dirs: Vec<PathBuf> =
            self.options.skip_dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
        builder.filter_entry(move |entry| {
            if !skip_dirs.is_empty()
                && entry.file_type().is_some_and(|t| t.is_dir())
                && skip_dirs.iter().any(|d| d.file_name() == Some(entry.file_name()))
                && entry.path().canonicalize().is_ok_and(|p| skip_dirs.contains(&p))
            {
                return false;
            }
            if exclude.is_empty() || entry.depth() == 0 {
                return true;
            }
            let rel = strip_for_filter
                .as_ref()
                .and_then(|r| entry.path().strip_prefix(r).ok())
                .unwrap_or(entry.path());
            !(exclude.is_match(rel) || exclude.is_match(entry.file_name()))
        });
        let display = move |path: &Path| -> String {
            let rel = strip
                .as_ref()
                .and_then(|r| path.strip_prefix(r).ok())
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(path);
            rel.to_string_lossy().into_owned()
        };
        let display = &display;
        builder.build_parallel().run(|| {
            let tx = tx.clone();
            let detector = Arc::clone(&self.detector);
            Box::new(move |result| {
                if stop.load(Ordering::Relaxed) {
                    return WalkState::Quit;
                }
                let entry = match result {
                    Ok(entry) => entry,
                    Err(err) => {
                        let (path, reason) = walk_error(&err);
                        progress.file_skipped();
                        let _ = tx.send(Message::Skip(Skip {
                            path: path.map_or_else(|| "?".into(), |p| display(&p)),
                            reason,
                        }));
                        return WalkState::Continue;
                    }
                };
                let Some(file_type) = entry.file_type() else {
                    return WalkState::Continue; // stdin, never walked here
                };
                if file_type.is_dir() {
                    return WalkState::Continue;
                }
                let path = display(entry.path());
                if file_type.is_symlink() {
                    progress.file_skipped();
                    let _ = tx.send(Message::Skip(Skip { path, reason: SkipReason::Symlink }));
                    return WalkState::Continue;
                }
                if !file_type.is_file() {
                    progress.file_skipped();
                    let _ = tx.send(Message::Skip(Skip { path, reason: SkipReason::NotAFile }));
                    return WalkState::Continue;
                }
                if entry.file_name() == IGNORE_FILE {
                    return WalkState::Continue;
                }
                self.scan_one(&detector, entry.path(), path, &tx, progress);
                WalkState::Continue
            })
        });
    }

    fn scan_one(
        &self,
        detector: &Detector,
        file_path: &Path,
        path: String,
        tx: &channel::Sender<Message>,
        progress: &dyn Progress,
    ) {
        let skip = |path: String, reason: SkipReason| {
            progress.file_skipped();
            let _ = tx.send(Message::Skip(Skip { path, reason }));
        };
        let mut file = match File::open(file_path) {
            Ok(f) => f,
            Err(e) => return skip(path, SkipReason::Unreadable(e.to_string())),
        };
        let name = file_path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let format = match custody_extract::head(&mut file) {
            Ok(head) => custody_extract::sniff(&name, &head),
            Err(e) => return skip(path, SkipReason::Unreadable(e.to_string())),
        };
        let shared_path: Arc<str> = Arc::from(path.as_str());
        // Unchanged since an earlier scan: its results again, without reading it.
        let cached = self.options.cache.as_deref().and_then(|cache| {
            let stamp = crate::cache::Stamp::of(&file.metadata().ok()?);
            let key = std::path::absolute(file_path).ok()?.to_string_lossy().into_owned();
            Some((cache, key, stamp))
        });
        if let Some((cache, key, stamp)) = &cached
            && let crate::cache::Hit::Reuse(record) = cache.lookup(key, *stamp, file_path)
        {
            return replay(&record, &shared_path, file_path, tx, progress);
        }
        let mut results = Results::new(tx);
        results.top_len = shared_path.len();
        if cached.is_some() {
            results.stored = Some(Vec::new());
        }
        let mut hasher = twox_hash::XxHash3_128::new();
        let as_text = format.is_plain()
            || matches!(format, custody_extract::Format::Json | custody_extract::Format::Ndjson);
        // Containers are hashed before they are read, so a file replaced while it is read
        // is stored under its old hash (and scanned again next time), never the reverse.
        let hashed_before = if cached.is_some() && !as_text {
            crate::cache::hash_file(file_path).ok()
        } else {
            None
        };
        // Ignored findings are looked up by canonical path, only for files that have some.
        results.ignore = self.options.ignored.as_deref().filter(|l| !l.is_empty()).and_then(|l| {
            let canonical = file_path.canonicalize().ok()?;
            l.covers(&canonical).then_some((l, canonical))
        });
        // A bug in a matcher or a parser must cost one file, not the scan: the file is
        // reported as skipped and the walk goes on. (The panic message names code, never
        // data.)
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // JSON files on disk are scanned as written, on the fast path: their keys sit
            // right before their values as context, and labelling every value with its
            // key path cost a quarter of the scan's throughput on the benchmark corpus.
            // (JSON inside archives and mail is labelled by custody-extract.)
            if as_text {
                let mut on_bytes = |n: u64| progress.bytes(n);
                // Hashed as it is read only when the cache will keep it.
                let mut hashing;
                let reader: &mut dyn std::io::Read = if cached.is_some() {
                    hashing = crate::cache::Hashing { inner: &mut file, hasher: &mut hasher };
                    &mut hashing
                } else {
                    &mut file
                };
                scan_file(
                    reader,
                    detector,
                    self.options.chunk_size,
                    format == custody_extract::Format::Delimited,
                    true,
                    &mut on_bytes,
                    &mut |l| results.push(&shared_path, None, l),
                )
            } else {
                drop(file);
                let mut inside = Inside {
                    top: &shared_path,
                    detector,
                    chunk_size: self.options.chunk_size,
                    progress,
                    results: &mut results,
                    bytes: 0,
                };
                let outcome = custody_extract::extract_file(
                    file_path,
                    format,
                    &self.options.limits,
                    &mut inside,
                );
                let bytes = inside.bytes;
                outcome.map(|()| bytes).map_err(SkipReason::Extract)
            }
        }))
        .unwrap_or(Err(SkipReason::Internal));
        let ignored = results.ignored;
        let partial = results.skipped;
        let stored = results.stored.take();
        let (findings, score, kinds) = results.finish();
        // Remember it, unless any of it was skipped (then it is tried again next time).
        if let (Some((cache, key, stamp)), Some(stored), Ok(bytes)) = (cached, stored, &result)
            && !partial
        {
            let hashed =
                if as_text { Some(hasher.finish_128().to_le_bytes()) } else { hashed_before };
            // Changed while it was read: what was found may match neither version.
            let unchanged =
                std::fs::metadata(file_path).is_ok_and(|m| crate::cache::Stamp::of(&m) == stamp);
            if let Some(hash) = hashed.filter(|_| unchanged) {
                cache.store(crate::cache::Record {
                    path: key,
                    stamp,
                    hash,
                    bytes: *bytes,
                    ignored,
                    findings: stored,
                });
            }
        }
        let file = risky_file(&path, file_path, findings, score, kinds);
        match result {
            Ok(bytes) => {
                progress.file_done(findings);
                let _ = tx.send(Message::Done {
                    path,
                    bytes,
                    file,
                    complete: true,
                    ignored,
                    cached: false,
                });
            }
            Err(reason) => {
                // What a file showed before a limit stopped it still counts in the risk.
                if file.is_some() {
                    let _ = tx.send(Message::Done {
                        path: path.clone(),
                        bytes: 0,
                        file,
                        complete: false,
                        ignored,
                        cached: false,
                    });
                }
                skip(path, reason);
            }
        }
    }
}

/// A file's place in the risk ranking, when it has findings. Exposure is looked up only
/// for those (a stat, no reading).
fn risky_file(
    path: &str,
    file_path: &Path,
    findings: u64,
    score: f64,
    kinds: std::collections::BTreeMap<custody_detect::Kind, u64>,
) -> Option<RiskyFile> {
    (findings > 0).then(|| {
        let exposure = crate::risk::Exposure::of(file_path);
        RiskyFile {
            path: path.to_string(),
            score: score * exposure.factor(),
            findings,
            kinds,
            exposure,
        }
    })
}

/// Sends a cached file's results as if it had just been scanned.
fn replay(
    record: &crate::cache::Record,
    path: &Arc<str>,
    file_path: &Path,
    tx: &channel::Sender<Message>,
    progress: &dyn Progress,
) {
    let mut results = Results::new(tx);
    for stored in &record.findings {
        if let Some(f) = stored.finding(path) {
            results.add(f);
        }
    }
    let (findings, score, kinds) = results.finish();
    let file = risky_file(path, file_path, findings, score, kinds);
    progress.bytes(record.bytes);
    progress.file_done(findings);
    let _ = tx.send(Message::Done {
        path: path.to_string(),
        bytes: record.bytes,
        file,
        complete: true,
        ignored: record.ignored,
        cached: true,
    });
}

/// The findings of one file on their way to the writer, in batches, and its tallies.
struct Results<'t> {
    tx: &'t channel::Sender<Message>,
    /// The owner's ignore list and this file's canonical path, when it has ignores.
    ignore: Option<(&'t crate::ignore::IgnoreList, PathBuf)>,
    ignored: u64,
    /// Anything in the file was skipped (a member, a part).
    skipped: bool,
    /// The findings as the scan cache keeps them, when it is on.
    stored: Option<Vec<crate::cache::Stored>>,
    /// The length of the file's own path as shown (what follows is a member's location).
    top_len: usize,
    batch: Vec<Finding>,
    findings: u64,
    score: f64,
    kinds: std::collections::BTreeMap<custody_detect::Kind, u64>,
}

impl<'t> Results<'t> {
    fn new(tx: &'t channel::Sender<Message>) -> Self {
        Self {
            tx,
            ignore: None,
            ignored: 0,
            skipped: false,
            stored: None,
            top_len: 0,
            batch: Vec::new(),
            findings: 0,
            score: 0.0,
            kinds: std::collections::BTreeMap::new(),
        }
    }

    fn push(&mut self, path: &Arc<str>, key: Option<&Arc<str>>, l: Located) {
        if let Some((list, file)) = &self.ignore
            && list.contains(file, l.detection.kind, &l.detection.value)
        {
            self.ignored += 1;
            return;
        }
        let d = l.detection;
        self.add(Finding {
            path: Arc::clone(path),
            file_len: self.top_len.min(path.len()),
            kind: d.kind,
            subkind: d.subkind,
            line: l.line,
            column: l.column,
            offset: l.offset,
            length: l.length,
            // Two decimals, as reported (and as the cache replays it).
            confidence: (d.confidence * 100.0).round() / 100.0,
            reasons: d.reasons,
            test_card: d.test_card,
            value: d.value,
            premasked: false,
            key: key.cloned(),
        });
    }

    /// Tallies a finding (found now, or replayed from the cache) and queues it.
    fn add(&mut self, finding: Finding) {
        self.findings += 1;
        self.score += finding.kind.risk_weight() * f64::from(finding.confidence);
        *self.kinds.entry(finding.kind).or_insert(0) += 1;
        if let Some(stored) = &mut self.stored {
            let top = self.top_len.min(finding.path.len());
            stored.push(crate::cache::Stored::of(&finding, &finding.path[..top]));
        }
        self.batch.push(finding);
        if self.batch.len() == BATCH {
            let _ = self.tx.send(Message::Findings(std::mem::take(&mut self.batch)));
        }
    }

    fn skip(&mut self, skip: Skip) {
        self.skipped = true;
        // Something inside the file (a member, a part) or the file's own content.
        let _ = self.tx.send(if skip.path.len() > self.top_len {
            Message::MemberSkip(skip)
        } else {
            Message::Skip(skip)
        });
    }

    /// Sends what is left; returns the file's finding count, risk score and kinds.
    fn finish(mut self) -> (u64, f64, std::collections::BTreeMap<custody_detect::Kind, u64>) {
        if !self.batch.is_empty() {
            let _ = self.tx.send(Message::Findings(std::mem::take(&mut self.batch)));
        }
        (self.findings, self.score, self.kinds)
    }
}

/// Receives the text inside a container or document and scans each part like a file;
/// findings are located as `file!member!…` with the part's finer label (a cell, a page).
struct Inside<'a, 't> {
    top: &'a Arc<str>,
    detector: &'a Detector,
    chunk_size: usize,
    progress: &'a dyn Progress,
    results: &'a mut Results<'t>,
    bytes: u64,
}

impl Inside<'_, '_> {
    fn path(&self, location: &str) -> String {
        if location.is_empty() { self.top.to_string() } else { format!("{}!{location}", self.top) }
    }
}

impl custody_extract::Visitor for Inside<'_, '_> {
    fn part(&mut self, part: custody_extract::Part<'_>) -> std::io::Result<()> {
        let base: Arc<str> = if part.location.is_empty() {
            Arc::clone(self.top)
        } else {
            Arc::from(self.path(part.location))
        };
        // The last label's path, reused while findings stay in it (a row of cells).
        let mut labelled: Option<(u64, Arc<str>)> = None;
        let labels = part.labels;
        let results = &mut *self.results;
        let progress = self.progress;
        let mut bytes = 0;
        let mut on_bytes = |n: u64| {
            bytes += n;
            progress.bytes(n);
        };
        let keys = part.keys;
        let mut found = |l: Located| {
            let labelled = match custody_extract::Label::find(labels, l.offset) {
                None => None,
                Some(label) => match &labelled {
                    Some((start, p)) if *start == label.start => Some(Arc::clone(p)),
                    _ => {
                        let p: Arc<str> = if keys {
                            Arc::from(label.name.as_str())
                        } else {
                            Arc::from(format!("{base}!{}", label.name))
                        };
                        labelled = Some((label.start, Arc::clone(&p)));
                        Some(p)
                    }
                },
            };
            match labelled {
                Some(key) if keys => results.push(&base, Some(&key), l),
                Some(path) => results.push(&path, None, l),
                None => results.push(&base, None, l),
            }
        };
        let scanned = scan_file(
            part.text,
            self.detector,
            self.chunk_size,
            part.header,
            part.raw,
            &mut on_bytes,
            &mut found,
        );
        self.bytes += bytes;
        match scanned {
            Ok(_) => Ok(()),
            Err(SkipReason::Binary) => {
                self.progress.file_skipped();
                self.results.skip(Skip { path: base.to_string(), reason: SkipReason::Binary });
                Ok(())
            }
            Err(other) => Err(std::io::Error::other(other.to_string())),
        }
    }

    fn skipped(&mut self, location: &str, why: custody_extract::Skipped) {
        self.progress.file_skipped();
        self.results.skip(Skip { path: self.path(location), reason: SkipReason::Extract(why) });
    }
}

fn walk_error(err: &ignore::Error) -> (Option<PathBuf>, SkipReason) {
    match err {
        ignore::Error::WithPath { path, err } => (Some(path.clone()), walk_error(err).1),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error(err)
        }
        ignore::Error::Loop { child, .. } => (Some(child.clone()), SkipReason::SymlinkLoop),
        ignore::Error::Io(e) => (None, SkipReason::Unreadable(e.to_string())),
        other => (None, SkipReason::Unreadable(other.to_string())),
    }
}
