//! Acting only on the file that was scanned (review item 1). A fix scans first and acts
//! afterwards; in between, someone who owns a folder inside the scanned tree could swap it
//! for a symbolic link to another folder (custody's own data directory, say), and a fix
//! that re-resolves the path by name would then zero, move or rewrite a file outside the
//! tree.
//!
//! So before acting, the target's folder is opened from the folder that was scanned one
//! component at a time with `O_DIRECTORY | O_NOFOLLOW` (a symbolic link on the way is
//! refused), the file itself is looked at without following a link, and its inode, size
//! and modification time must be those the scan saw. The action then goes through
//! `/proc/self/fd/N/NAME`: the kernel resolves that through the open folder handle, never
//! through the path again, so swapping a folder afterwards changes nothing. Files are
//! opened with `O_NOFOLLOW` ([`open_no_follow`]), so a file swapped for a link is refused.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags, openat};

use crate::quarantine::Seen;

/// A target's folder, held open, and the path that reaches the file through it.
pub(crate) struct Held {
    _dir: OwnedFd,
    path: PathBuf,
}

impl Held {
    /// The file, reached through the held folder.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens `target`'s folder beneath whichever of `bases` (the folders or files that were
/// scanned) holds it, without following a symbolic link below the base, and checks the file
/// is still the one the scan saw (`seen`). The error is a plain sentence.
pub(crate) fn hold(bases: &[PathBuf], target: &Path, seen: Option<Seen>) -> Result<Held, String> {
    let base = bases
        .iter()
        .filter(|b| target == b.as_path() || target.starts_with(b))
        .max_by_key(|b| b.components().count())
        .ok_or("it is outside the folders that were scanned")?;
    let (start, parts): (PathBuf, Vec<OsString>) = if target == base {
        let parent = base.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = base.file_name().ok_or("it has no file name")?;
        (parent.to_path_buf(), vec![name.to_os_string()])
    } else {
        let rel = target.strip_prefix(base).map_err(|_| "it is outside the folders scanned")?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_os_string()),
                Component::CurDir => {}
                _ => return Err("its path leaves the folder that was scanned".into()),
            }
        }
        (base.clone(), parts)
    };
    let (name, folders) = parts.split_last().ok_or("it has no file name")?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    // The base is what the person asked to scan: a link there is their choice.
    let mut dir = openat(CWD, &start, flags, Mode::empty())
        .map_err(|e| format!("the folder it is in cannot be opened ({e})"))?;
    for folder in folders {
        dir = openat(&dir, folder.as_os_str(), flags | OFlags::NOFOLLOW, Mode::empty()).map_err(
            |e| match e {
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => format!(
                    "the folder '{}' on its way was replaced by a link or a file since the scan",
                    folder.to_string_lossy()
                ),
                e => format!("the folder '{}' cannot be opened ({e})", folder.to_string_lossy()),
            },
        )?;
    }
    let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    let meta = fs::symlink_metadata(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound if !Path::new("/proc/self/fd").is_dir() => {
            "/proc is not mounted, so custody cannot make sure it acts on the scanned file".into()
        }
        _ => format!("it cannot be read ({e})"),
    })?;
    if !meta.is_file() {
        return Err("it is no longer a regular file (a link or a folder now stands there)".into());
    }
    if seen.is_none_or(|s| s != Seen::from_meta(&meta)) {
        return Err("it was changed, moved or replaced since the scan: scan again".into());
    }
    Ok(Held { _dir: dir, path })
}

/// Opens `path` for reading (or, with `write`, for writing), refusing a symbolic link.
pub(crate) fn open_no_follow(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}
