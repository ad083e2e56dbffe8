//! Files only the owner can read, written so that a crash leaves the old content or the new,
//! never a mixture and never a file someone else could read first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Mode of every file custody creates in its data directory.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory custody creates there.
pub const DIR_MODE: u32 = 0o700;

/// Creates a new file readable and writable by the owner only (0600 from the first byte,
/// whatever the umask). Fails if it exists: nothing is ever overwritten by accident.
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options.open(path)
}

/// Opens a file for appending, creating it owner-only if it is missing.
pub fn append_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options.open(path)
}

/// Creates (or truncates) an output file readable by the owner only: a report of masked
/// findings still names files nobody else should see.
pub fn create_private_truncating(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let file = options.open(path)?;
    // An existing file keeps its mode through `open`: tightened here.
    set_mode(&file, FILE_MODE)?;
    Ok(file)
}

/// Writes `bytes` to a new owner-only file and syncs it (and its directory) to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_parent(path)
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it (owner-only, then
/// set to `mode`), synced, renamed over it, the directory synced. A crash leaves the old
/// file or the new one; a failure removes the temporary file.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temp_beside(path)?;
    let result = (|| {
        let mut file = create_private(&tmp)?;
        file.write_all(bytes)?;
        set_mode(&file, mode)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // The new content is in place: a failed directory sync now is not a failed replace
    // (telling the caller so would make it undo what is done). The rename is as durable as
    // the file system makes it.
    let _ = sync_parent(path);
    Ok(())
}

/// The prefix of every temporary file custody writes beside another: the clean-up that
/// follows a killed process looks for it.
pub const TEMP_PREFIX: &str = ".custody-tmp-";

/// A new, unused name beside `path` (in the same folder, so a rename replaces atomically):
/// `.custody-tmp-XXXXXXXX-NAME`, 8 random hex digits, ending with the file's own name so its
/// format is still recognised by name.
pub fn temp_beside(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a path with no file name"))?
        .to_string_lossy();
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(path.with_file_name(format!("{TEMP_PREFIX}{}-{name}", crate::hex::encode(&random))))
}

/// Sets the permission bits of an open file (where the platform has them).
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Tightens a file another library created (SQLite's database, its `-wal` and `-shm`) to
/// owner-only. Missing files are fine (SQLite makes its side files when it needs them).
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Makes an SQLite database owner-only: an empty owner-only file is created first when
/// `create` and it is missing (SQLite takes an empty file as an empty database, and gives its
/// `-wal` and `-shm` files the database's mode), and an existing database and its side
/// files are tightened. Call before opening it.
pub fn private_sqlite(path: &Path, create: bool) -> io::Result<()> {
    if create && !path.exists() {
        match create_private(path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match restrict(Path::new(&side)) {
            // Another user's file (a data directory shared with an auditor's account): it is
            // read as it is, not refused.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            other => other?,
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) and makes it owner-only.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Syncs a directory, so a file created or renamed in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn private_files_are_owner_only_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(write_private(&path, b"two").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
    }

    #[test]
    fn replace_swaps_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        replace(&path, b"first", 0o644).unwrap();
        replace(&path, b"second", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["config"]);
        // A directory in the way: the error is returned and nothing is left behind.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        assert!(replace(&blocked, b"x", 0o600).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn temporary_names_carry_the_prefix_and_differ() {
        let a = temp_beside(Path::new("/x/report.csv")).unwrap();
        let b = temp_beside(Path::new("/x/report.csv")).unwrap();
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(TEMP_PREFIX) && name.ends_with("-report.csv"), "{name}");
        assert_eq!(name.len(), TEMP_PREFIX.len() + 8 + "-report.csv".len());
        assert_eq!(a.parent(), Some(Path::new("/x")));
        assert_ne!(a, b);
        assert!(temp_beside(Path::new("/")).is_err());
    }

    #[test]
    fn directories_are_owner_only_and_restrict_tightens() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        private_dir(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        let loose = dir.path().join("loose.db");
        fs::write(&loose, b"").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
        restrict(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
        restrict(&dir.path().join("missing-wal")).unwrap();
        let db = dir.path().join("new.db");
        private_sqlite(&db, true).unwrap();
        assert_eq!((mode(&db), fs::metadata(&db).unwrap().len()), (0o600, 0));
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(dir.path().join("new.db-wal"), b"").unwrap();
        private_sqlite(&db, false).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.path().join("new.db-wal")), 0o600);
    }
}
