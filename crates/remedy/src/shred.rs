//! Shredding: overwrite a file's bytes, flush them to the disk, then truncate, rename and
//! unlink it. Best effort only: solid-state drives remap blocks, and copy-on-write or
//! journaling filesystems (btrfs, ZFS, APFS, ext4 with data journaling), snapshots and
//! backups can keep the old content. Only data that was never written in the clear is
//! reliably gone: keep customer data encrypted (the vault), and retire disks by
//! destroying their full-disk-encryption key or with the drive's secure erase.

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

/// What every shred prints and the docs repeat.
pub const CAVEAT: &str = "overwriting is best effort: SSDs, copy-on-write filesystems, snapshots \
     and backups can keep old copies. What is never written in the clear cannot linger: keep \
     customer data in the vault, and when a disk is retired use its full-disk encryption \
     (destroy the key) or the drive's own secure erase.";

/// Renames `path` to a hidden name (the name can say what the file held, and a folder
/// that forbids the rename fails here, before any byte changes), then overwrites it with
/// zeros, syncs, truncates and removes it. Returns the bytes overwritten.
pub fn shred(path: &Path) -> io::Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let len = meta.len();
    let hidden = custody_store::files::temp_beside(&path.with_file_name("x"))?;
    fs::rename(path, &hidden)?;
    let original = path;
    let path = hidden.as_path();
    // Opened without following a link, and only if it is still the file looked at above
    // (a link or another file put in its place between the look and the rename is left).
    let mut file = super::confine::open_no_follow(path, true)?;
    {
        use std::os::unix::fs::MetadataExt;
        let now = file.metadata()?;
        if now.ino() != meta.ino() || now.dev() != meta.dev() {
            // Put back whatever now stands there, untouched.
            let _ = fs::rename(path, original);
            return Err(io::Error::other("the file was replaced while it was being shredded"));
        }
    }
    file.seek(SeekFrom::Start(0))?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    file.set_len(0)?;
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)?;
    super::sync_dir_of(path);
    Ok(len)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_is_gone_and_other_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("cards.csv");
        std::fs::write(&target, b"4539 1488 0343 6467\n".repeat(100_000)).unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"keep").unwrap();
        assert_eq!(super::shred(&target).unwrap(), 2_000_000);
        assert!(!target.exists());
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("keep.txt")]);
        assert!(super::shred(dir.path()).is_err(), "a folder is refused");
    }
}
