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
