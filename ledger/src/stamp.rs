//! Which version of a file was read: its modification time, inode and
//! length. Files that a running server reads again when they change (key
//! files, the token file, TLS certificates) are replaced by renaming a new
//! file into place, so a change is a new inode even where two land within
//! the clock's resolution.

use std::path::Path;
use std::time::SystemTime;

/// A file's version; `None` if it does not exist (or cannot be read).
pub type Stamp = Option<(Option<SystemTime>, u64, u64)>;

/// The version of the file at `path` now.
pub fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.ino(), m.len()))
}

/// Holds an exclusive `flock` on `lock` (created if missing) until the
/// returned file closes: programs changing one of these files take it
/// first, so that two changes made at once both land.
pub fn lock(lock: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)?;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
