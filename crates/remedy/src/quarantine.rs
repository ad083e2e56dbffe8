//! The quarantine: files sealed to the installation's public key, in the data directory.
//!
//! ```text
//! DATA_DIR/keys/quarantine.pub        the public key (hex): quarantining needs nothing else
//! DATA_DIR/quarantine/ID.sealed       the file, sealed (custody_crypto::sealed_file)
//! DATA_DIR/quarantine/ID.json         where it came from: path, size, SHA-256, mode, time
//! ```
//!
//! A copy is complete before anything else happens: the sealed file and its record are
//! written under temporary names, flushed to disk and renamed into place, and only then
//! may the caller remove or replace the original. A process killed at any point leaves the
//! original where it was, or a complete quarantined copy (or both).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use custody_crypto::sealed_file::{self, OpeningKey, SealingKey};
use custody_store::DataDir;
use custody_store::files::{
    TEMP_PREFIX, create_private, private_dir as create_private_dir, set_mode, temp_beside,
};
use custody_store::hex::{decode as unhex, encode as hex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::FixError;

/// The quarantine folder of a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).quarantine()
}

/// Where the public key is kept.
pub fn sealing_key_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).quarantine_public_key()
}

/// Writes the public key (at `custody init`, or when it is first needed).
pub fn write_sealing_key(data_dir: &Path, key: SealingKey) -> io::Result<()> {
    let path = sealing_key_path(data_dir);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let bytes = key.to_bytes();
    let text = format!("custody-quarantine-key v1\n{}\ncheck {}\n", hex(&bytes), key_check(&bytes));
    custody_store::files::replace(&path, text.as_bytes(), 0o644)
}

/// Writes the public key derived from the vault's quarantine key (at `custody init`, or
/// `custody quarantine setup`): files can then be quarantined without the passphrase.
/// `key` is `custody_vault::Vault::quarantine_key` (its own purpose key, not the root: a
/// root rotation keeps it, so quarantined files stay openable).
pub fn set_up(data_dir: &Path, key: &custody_crypto::Key) -> io::Result<()> {
    write_sealing_key(data_dir, OpeningKey::from_root(key).sealing_key())
}

/// Reads the public key; [`FixError::NoQuarantineKey`] when it was never written.
pub fn read_sealing_key(data_dir: &Path) -> Result<SealingKey, FixError> {
    let path = sealing_key_path(data_dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FixError::NoQuarantineKey),
        Err(e) => return Err(FixError::Io { path, source: e }),
    };
    // A key damaged by one digit would seal files that nobody can open, and quarantining
    // removes the original: the check line refuses it first.
    let mut lines = text.lines();
    let bytes = (lines.next() == Some("custody-quarantine-key v1"))
        .then(|| lines.next().and_then(|l| unhex(l.trim())))
        .flatten()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|b| lines.next().and_then(|l| l.strip_prefix("check ")) == Some(&key_check(b)))
        .ok_or(FixError::Damaged { path })?;
    Ok(SealingKey::from_bytes(bytes))
}

/// The first 8 bytes of SHA-256 over the key, in hex.
fn key_check(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"custody-quarantine-key-check");
    h.update(key);
    hex(&h.finalize()[..8])
}

/// What the quarantine knows about one file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Its id (`custody quarantine restore ID`).
    pub id: String,
    /// Where it was (absolute).
    pub original: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of its content (checked on restore).
    pub sha256: String,
    /// Unix permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// When it was quarantined (UTC, RFC 3339).
    pub quarantined_at: String,
    /// Why: `quarantine` (moved here) or `redact` (the original, kept before redacting).
    pub reason: String,
    /// What the scan found in it, by kind.
    pub findings: std::collections::BTreeMap<String, u64>,
    /// The original as it was when sealed (to notice a save before it is removed).
    #[serde(skip)]
    pub seen: Seen,
}

/// What a file looked like at one moment: size, modification time and inode. Two looks
/// that differ mean it was saved (or replaced) in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    size: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Seen {
    /// From metadata already read.
    pub fn from_meta(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Self { size: meta.len(), modified: meta.modified().ok(), inode }
    }

    /// The file at `path` now (a symbolic link itself, not what it points to).
    pub fn of(path: &Path) -> io::Result<Self> {
        fs::symlink_metadata(path).map(|m| Self::from_meta(&m))
    }
}

/// The quarantine of one data directory.
pub struct Quarantine {
    dir: PathBuf,
}

impl Quarantine {
    /// Opens (and creates, readable by the owner only) the quarantine folder.
    pub fn open(data_dir: &Path) -> Result<Self, FixError> {
        let dir = dir(data_dir);
        create_private_dir(&dir).map_err(|source| FixError::Io { path: dir.clone(), source })?;
        Ok(Self { dir })
    }

    /// Seals a copy of `path` into the quarantine. The original is not touched.
    pub fn put(
        &self,
        to: SealingKey,
        path: &Path,
        reason: &str,
        when: &str,
        findings: std::collections::BTreeMap<String, u64>,
        expect: Option<Seen>,
    ) -> Result<Entry, FixError> {
        self.put_from(to, path, path, reason, when, findings, expect)
    }

    /// As [`Quarantine::put`], reading the file at `source` (a path through a held folder
    /// handle) and recording it as `original` (where it is restored to).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put_from(
        &self,
        to: SealingKey,
        source: &Path,
        original: &Path,
        reason: &str,
        when: &str,
        findings: std::collections::BTreeMap<String, u64>,
        expect: Option<Seen>,
    ) -> Result<Entry, FixError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FixError::Io { path, source }
        };
        let original = std::path::absolute(original).map_err(io_err(original))?;
        let before = fs::symlink_metadata(source).map_err(io_err(&original))?;
        if !before.is_file() {
            return Err(FixError::Changed { path: original });
        }
        // Not the file the caller read: it was saved again in between.
        if expect.is_some_and(|e| e != Seen::from_meta(&before)) {
            return Err(FixError::Changed { path: original });
        }
        let id = new_id().map_err(io_err(&self.dir))?;
        let sealed_path = self.dir.join(format!("{id}.sealed"));
        let sealed_tmp = self.dir.join(format!(".{id}.sealed.tmp"));
        let mut hasher = HashingReader {
            inner: BufReader::new(
                crate::confine::open_no_follow(source, false).map_err(io_err(&original))?,
            ),
            hash: Sha256::new(),
        };
        let result = (|| {
            let file = create_private(&sealed_tmp)?;
            let mut out = BufWriter::new(file);
            let size = sealed_file::seal(to, &mut hasher, &mut out).map_err(|e| match e {
                sealed_file::FileError::Io(e) => e,
                sealed_file::FileError::Crypto(e) => io::Error::other(e),
            })?;
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            Ok::<u64, io::Error>(size)
        })();
        let size = match result {
            Ok(size) => size,
            Err(source) => {
                let _ = fs::remove_file(&sealed_tmp);
                return Err(FixError::Io { path: original, source });
            }
        };
        // A file that changed while it was read is not what the scan saw: refuse.
        let after = fs::symlink_metadata(source).map_err(io_err(&original))?;
        let seen = Seen::from_meta(&after);
        if after.len() != size || seen != Seen::from_meta(&before) {
            let _ = fs::remove_file(&sealed_tmp);
            return Err(FixError::Changed { path: original });
        }
        let entry = Entry {
            id: id.clone(),
            original,
            size,
            sha256: hex(&hasher.hash.finalize()),
            mode: mode_of(&before),
            quarantined_at: when.to_string(),
            reason: reason.to_string(),
            findings,
            seen,
        };
        let record = serde_json::to_vec_pretty(&entry).expect("an entry serialises");
        let record_path = self.dir.join(format!("{id}.json"));
        let done = custody_store::files::replace(&record_path, &record, 0o600)
            .and_then(|()| fs::rename(&sealed_tmp, &sealed_path))
            .and_then(|()| File::open(&self.dir)?.sync_all());
        if let Err(source) = done {
            let _ = fs::remove_file(&sealed_tmp);
            let _ = fs::remove_file(&record_path);
            return Err(FixError::Io { path: self.dir.clone(), source });
        }
        Ok(entry)
    }

    /// Every complete entry, oldest first (leftovers of an interrupted run are ignored).
    pub fn list(&self) -> Result<Vec<Entry>, FixError> {
        let io_err = |source| FixError::Io { path: self.dir.clone(), source };
        let mut entries = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(io_err)? {
            let path = item.map_err(io_err)?.path();
            if path.extension().is_none_or(|e| e != "json")
                || path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let entry: Entry = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| FixError::Damaged { path: path.clone() })?;
            if self.dir.join(format!("{}.sealed", entry.id)).exists() {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.quarantined_at.cmp(&b.quarantined_at).then(a.id.cmp(&b.id)));
        Ok(entries)
    }

    /// One entry by id.
    pub fn entry(&self, id: &str) -> Result<Entry, FixError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(FixError::NotInQuarantine { id: id.to_string() });
        }
        self.list()?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| FixError::NotInQuarantine { id: id.to_string() })
    }

    /// Opens entry `id` and writes it to `to` (default: where it came from). Refuses to
    /// overwrite an existing file. The content is checked against its SHA-256 before it
    /// appears at `to`; the quarantined copy is removed only after that.
    /// `key` is the vault's quarantine key (see [`set_up`]).
    pub fn restore_with_key(
        &self,
        key: &custody_crypto::Key,
        id: &str,
        to: Option<&Path>,
    ) -> Result<Entry, FixError> {
        self.restore(&OpeningKey::from_root(key), id, to)
    }

    /// As [`Quarantine::restore_with_key`], with the quarantine's opening key.
    pub fn restore(
        &self,
        key: &OpeningKey,
        id: &str,
        to: Option<&Path>,
    ) -> Result<Entry, FixError> {
        let entry = self.entry(id)?;
        let target = to.map_or_else(|| entry.original.clone(), Path::to_path_buf);
        if fs::symlink_metadata(&target).is_ok() {
            return Err(FixError::Exists { path: target });
        }
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FixError::Io { path, source }
        };
        let parent =
            target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        let tmp = temp_beside(&target).map_err(io_err(&target))?;
        let sealed_path = self.dir.join(format!("{id}.sealed"));
        let result = (|| {
            let mut input =
                BufReader::new(File::open(&sealed_path).map_err(FixError::from_io(&sealed_path))?);
            let file = create_private(&tmp).map_err(FixError::from_io(&tmp))?;
            let mut out = HashingWriter { inner: BufWriter::new(file), hash: Sha256::new() };
            sealed_file::open(key, &mut input, &mut out).map_err(|e| match e {
                sealed_file::FileError::Io(source) => FixError::Io { path: tmp.clone(), source },
                sealed_file::FileError::Crypto(custody_crypto::Error::Open) => FixError::WrongKey,
                sealed_file::FileError::Crypto(_) => {
                    FixError::Damaged { path: sealed_path.clone() }
                }
            })?;
            if hex(&out.hash.clone().finalize()) != entry.sha256 {
                return Err(FixError::Damaged { path: sealed_path.clone() });
            }
            let file = out
                .inner
                .into_inner()
                .map_err(|e| FixError::Io { path: tmp.clone(), source: e.into_error() })?;
            // Permission bits only: never set-user-id, set-group-id or sticky, whatever
            // the record says.
            if let Some(mode) = entry.mode {
                set_mode(&file, mode & 0o777).map_err(FixError::from_io(&tmp))?;
            }
            file.sync_all().map_err(FixError::from_io(&tmp))?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Not over a file that appeared meanwhile: link (fails if the name exists), then
        // drop the temporary name.
        match fs::hard_link(&tmp, &target) {
            Ok(()) => {
                let _ = fs::remove_file(&tmp);
            }
            Err(source) if source.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&tmp);
                return Err(FixError::Exists { path: target });
            }
            // Filesystems without hard links (FAT, some network shares): look, then rename.
            Err(_) if fs::symlink_metadata(&target).is_err() => {
                if let Err(source) = fs::rename(&tmp, &target) {
                    let _ = fs::remove_file(&tmp);
                    return Err(FixError::Io { path: target, source });
                }
            }
            Err(_) => {
                let _ = fs::remove_file(&tmp);
                return Err(FixError::Exists { path: target });
            }
        }
        super::sync_dir_of(&target);
        let _ = fs::remove_file(&sealed_path);
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
        Ok(entry)
    }
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A fresh id: the date-free random part is enough (ids are only ever looked up).
fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(format!("q-{}", hex(&bytes)))
}

/// Removes what an interrupted run left beside `path`: temporary files named as
/// [`temp_beside`](custody_store::files::temp_beside) names them for this file (a redacted copy never renamed into place).
/// Nothing is lost by it: a temporary file never holds the only copy of anything, and a
/// run still using one fails its rename and leaves the original as it was.
pub(super) fn clear_leftovers(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })
    else {
        return;
    };
    let name = name.to_string_lossy();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let leftover = file
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(id, rest)| {
                id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) && rest == name
            });
        if leftover && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

// `None` only where there are no Unix permissions.
#[allow(clippy::unnecessary_wraps)]
pub(super) fn mode_of(meta: &fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}
