//! Which version of a file was read: its modification time, inode and
//! length. Files that a running server reads again when they change (key
//! files, the token file, TLS certificates) are replaced by renaming a new
//! file into place, so a change is a new inode even where two land within
//! the clock's resolution.

use std::io::Write;
use std::path::{Path, PathBuf};
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

/// Replaces `dir/name` with `bytes` durably: written to `name.tmp` beside
/// it (created with permissions `mode`, if given), synced, renamed over
/// it, and `dir` synced. A reader sees the old file or the new one, never
/// half of one, and the change is on disk once this returns. An error
/// comes with the file it concerns.
pub fn replace(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: Option<u32>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let (path, tmp) = (dir.join(name), dir.join(format!("{name}.tmp")));
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    }
    let mut f = opts.open(&tmp).map_err(at(&tmp))?;
    // A file left by an earlier attempt keeps its mode: set it again.
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(at(&tmp))?;
    }
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(at(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(at(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir))
}
