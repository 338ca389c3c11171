//! Exclusive `flock`s that programs working on the same files take, so
//! that a second one stops at once instead of writing beside the first.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Takes an exclusive lock on `path` (created if missing), held while the
/// returned file is open; if another holds it, fails with `busy()`.
pub(crate) fn exclusive(path: &Path, busy: impl FnOnce() -> String) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    use rustix::fs::{flock, FlockOperation};
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!("{}", busy()),
        Err(e) => {
            Err(std::io::Error::from(e)).with_context(|| format!("locking {}", path.display()))
        }
    }
}
