//! The scan cache: what each file held the last time it was scanned, so that re-scanning
//! an unchanged tree reads almost nothing, and a scan that was interrupted picks up where
//! it stopped (results are committed every few hundred files).
//!
//! ```text
//! DATA_DIR/scan-cache.db   SQLite: one row per file, keyed by its absolute path
//! ```
//!
//! A file's results are reused when its size and modification time are unchanged, or when
//! only the time changed and its content hash (XXH3-128) is the same (a file touched or
//! copied back from a backup). Everything that changes what a scan reports is part of the
//! entry's `config` (custody's version, the kinds, the threshold, the limits, the ignore
//! list): another configuration scans again.
//!
//! **Only masked values are stored**: the cache is as safe to keep as a masked report.
//! `--reveal` (full values) and `custody fix` (which needs the values) never use it, nor
//! does a decommission check. Files that were skipped, in whole or in part, are not
//! cached: they are tried again every time and reported every time.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_detect::{Kind, Reason, SensitiveValue};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::Finding;

/// Bumped when what a scan finds changes in a way the version number does not show.
const FORMAT: u32 = 1;
/// Results are committed at least this often (files), so an interrupted scan resumes.
const BATCH: usize = 256;
const BATCH_TIME: Duration = Duration::from_secs(2);

/// Why the cache could not be used (the scan goes on without it).
#[derive(Debug, thiserror::Error)]
#[error("the scan cache '{path}' cannot be used: {reason}")]
pub struct CacheError {
    path: PathBuf,
    reason: String,
}

/// An open cache, shared by the workers (lookups) and the writer (stores).
pub struct ScanCache {
    path: PathBuf,
    read: Mutex<Connection>,
    write: Mutex<Writer>,
    config: String,
}

impl std::fmt::Debug for ScanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScanCache({})", self.path.display())
    }
}

struct Writer {
    conn: Connection,
    pending: Vec<Record>,
    last: Instant,
}

/// The identity of a file on disk as the cache compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
}

impl Stamp {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        Self { size: meta.len(), mtime_ns }
    }
}

/// One file's results, as stored.
pub(crate) struct Record {
    pub path: String,
    pub stamp: Stamp,
    pub hash: [u8; 16],
    pub bytes: u64,
    pub ignored: u64,
    pub findings: Vec<Stored>,
}

/// A finding as stored: masked, located relative to its file.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored {
    /// What follows the file's own path (`!member!C7`), empty for the file itself.
    at: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    line: u64,
    column: u64,
    offset: u64,
    length: u64,
    masked: String,
    confidence: f32,
    reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    test_card: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl Stored {
    pub(crate) fn of(finding: &Finding, top: &str) -> Self {
        Self {
            at: finding.path.strip_prefix(top).unwrap_or_default().to_string(),
            kind: finding.kind.as_str().to_string(),
            sub: finding.subkind.map(str::to_string),
            line: finding.line,
            column: finding.column,
            offset: finding.offset,
            length: finding.length,
            masked: finding.masked(),
            confidence: finding.confidence,
            reasons: finding.reasons.iter().map(ToString::to_string).collect(),
            test_card: finding.test_card,
            key: finding.key.as_deref().map(str::to_string),
        }
    }

    /// The finding again, for the file shown as `top` in this scan.
    pub(crate) fn finding(&self, top: &Arc<str>) -> Option<Finding> {
        Some(Finding {
            path: if self.at.is_empty() {
                Arc::clone(top)
            } else {
                Arc::from(format!("{top}{}", self.at))
            },
            kind: self.kind.parse::<Kind>().ok()?,
            subkind: self.sub.as_deref().map(intern),
            line: self.line,
            column: self.column,
            offset: self.offset,
            length: self.length,
            confidence: self.confidence,
            // Reasons are only ever printed: their stable strings are kept as they were.
            reasons: self.reasons.iter().map(|r| Reason::Validator(intern(r))).collect(),
            test_card: self.test_card,
            value: SensitiveValue::new(self.masked.clone()),
            premasked: true,
            key: self.key.as_deref().map(Arc::from),
            file_len: top.len(),
        })
    }
}

/// Reasons and subkinds are a small fixed vocabulary: each distinct string is leaked once.
fn intern(s: &str) -> &'static str {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = seen.iter().find(|k| **k == s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    seen.push(leaked);
    leaked
}

/// What a lookup found.
pub(crate) enum Hit {
    /// Unchanged: these are its results.
    Reuse(Record),
    /// Changed or unknown: scan it.
    Miss,
}

impl ScanCache {
    /// Opens (or creates) the cache in `data_dir` for scans configured as `config`.
    pub fn open(data_dir: &Path, config: &str) -> Result<Self, CacheError> {
        let path = custody_store::DataDir::new(data_dir).scan_cache();
        let fail =
            |e: &dyn std::fmt::Display| CacheError { path: path.clone(), reason: e.to_string() };
        custody_store::files::private_sqlite(&path, true).map_err(|e| fail(&e))?;
        let open = || -> rusqlite::Result<(Connection, Connection)> {
            let write = Connection::open(&path)?;
            write.pragma_update(None, "journal_mode", "WAL")?;
            write.pragma_update(None, "synchronous", "NORMAL")?;
            write.busy_timeout(Duration::from_secs(5))?;
            write.execute_batch(
                "CREATE TABLE IF NOT EXISTS files (
                    path TEXT PRIMARY KEY,
                    size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    hash BLOB NOT NULL,
                    config TEXT NOT NULL,
                    bytes INTEGER NOT NULL,
                    ignored INTEGER NOT NULL,
                    findings TEXT NOT NULL
                 )",
            )?;
            // A damaged file fails here rather than half way through a scan.
            let check: String = write.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            if check != "ok" {
                return Err(rusqlite::Error::InvalidQuery);
            }
            let read = Connection::open(&path)?;
            read.busy_timeout(Duration::from_secs(5))?;
            Ok((write, read))
        };
        let (write, read) = open().map_err(|e| fail(&e))?;
        Ok(Self {
            path,
            read: Mutex::new(read),
            write: Mutex::new(Writer { conn: write, pending: Vec::new(), last: Instant::now() }),
            config: format!("v{}.{FORMAT}|{config}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// Throws the cache away and starts a new one (after it was found damaged).
    pub fn reset(data_dir: &Path, config: &str) -> Result<Self, CacheError> {
        Self::clear(data_dir);
        Self::open(data_dir, config)
    }

    /// Deletes the cache of `data_dir` (its files name the files scanned: `custody ledger
    /// forget-path` clears it with the path book). The next scan reads every file again.
    pub fn clear(data_dir: &Path) {
        let path = custody_store::DataDir::new(data_dir).scan_cache();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// The cached results for `path` if `stamp` (or, failing that, the content) matches.
    pub(crate) fn lookup(&self, path: &str, stamp: Stamp, file: &Path) -> Hit {
        let row = {
            let conn = self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            conn.query_row(
                "SELECT size, mtime_ns, hash, bytes, ignored, findings FROM files
                 WHERE path = ?1 AND config = ?2",
                params![path, self.config],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)? as u64,
                        r.get::<_, i64>(4)? as u64,
                        r.get::<_, String>(5)?,
                    ))
                },
            )
            .optional()
            .ok()
            .flatten()
        };
        let Some((size, mtime_ns, hash, bytes, ignored, findings)) = row else {
            return Hit::Miss;
        };
        let Ok(hash) = <[u8; 16]>::try_from(hash.as_slice()) else {
            return Hit::Miss;
        };
        if size != stamp.size {
            return Hit::Miss;
        }
        if mtime_ns != stamp.mtime_ns {
            // Touched, or copied back: the same bytes need no scan.
            match hash_file(file) {
                Ok(h) if h == hash => {}
                _ => return Hit::Miss,
            }
        }
        let Ok(findings) = serde_json::from_str::<Vec<Stored>>(&findings) else {
            return Hit::Miss;
        };
        Hit::Reuse(Record { path: path.to_string(), stamp, hash, bytes, ignored, findings })
    }

    /// Queues a file's results; committed in batches (and by [`ScanCache::flush`]).
    pub(crate) fn store(&self, record: Record) {
        let mut w = self.write.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        w.pending.push(record);
        if w.pending.len() >= BATCH || w.last.elapsed() >= BATCH_TIME {
            Self::commit(&mut w, &self.config);
        }
    }

    /// Commits what is queued.
    pub fn flush(&self) {
        let mut w = self.write.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::commit(&mut w, &self.config);
    }

    fn commit(w: &mut Writer, config: &str) {
        w.last = Instant::now();
        if w.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut w.pending);
        // A cache that cannot be written only costs speed next time: never the scan.
        let _ = (|| -> rusqlite::Result<()> {
            let tx = w.conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO files (path, size, mtime_ns, hash, config, bytes, ignored, findings)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for r in &pending {
                    let findings =
                        serde_json::to_string(&r.findings).unwrap_or_else(|_| "[]".into());
                    insert.execute(params![
                        r.path,
                        r.stamp.size as i64,
                        r.stamp.mtime_ns,
                        r.hash.as_slice(),
                        config,
                        r.bytes as i64,
                        r.ignored as i64,
                        findings
                    ])?;
                }
            }
            tx.commit()
        })();
    }
}

/// XXH3-128 of a file's content.
pub(crate) fn hash_file(path: &Path) -> io::Result<[u8; 16]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = twox_hash::XxHash3_128::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
    }
    Ok(hasher.finish_128().to_le_bytes())
}

/// A reader that hashes what passes through it (the text path hashes while it scans).
pub(crate) struct Hashing<'a, R> {
    pub inner: &'a mut R,
    pub hasher: &'a mut twox_hash::XxHash3_128,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write(&buf[..n]);
        Ok(n)
    }
}
