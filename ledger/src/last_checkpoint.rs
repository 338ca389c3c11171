//! The last signed checkpoint, kept outside RocksDB as well
//! (`<db>/last-checkpoint`, specs/storage.md): a record of what the log
//! signed that survives a store whose write-ahead log lost its tail. A
//! store older than it (fewer leaves, or another root at its size) is
//! refused on open, so the ledger never signs a history that contradicts
//! one it signed before; the message says what was lost and how to
//! restore it.

use std::path::{Path, PathBuf};

use verifier::checkpoint;

use crate::keys::LogKeys;
use crate::{LedgerError, SignedCheckpoint};

/// The file's name in the log's directory.
pub const FILE_NAME: &str = "last-checkpoint";

/// The file of the log in `db`.
pub fn path(db: &Path) -> PathBuf {
    db.join(FILE_NAME)
}

/// The checkpoint the file holds, verified with one of `keys`; `None` if
/// there is no file yet.
pub fn read(db: &Path, keys: &LogKeys) -> Result<Option<SignedCheckpoint>, LedgerError> {
    let p = path(db);
    let text = match std::fs::read(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LedgerError::Io {
                path: p.display().to_string(),
                source,
            })
        }
    };
    let cp = checkpoint::open_any(&text, keys.all())
        .map_err(|source| LedgerError::BadCheckpoint { size: 0, source })?;
    Ok(Some(SignedCheckpoint {
        checkpoint: cp,
        text: String::from_utf8_lossy(&text).into_owned(),
        cosignatures: String::new(),
    }))
}

/// Replaces the file's checkpoint with `signed`, durably: written beside it, synced,
/// renamed over it, and the directory synced.
pub fn write(db: &Path, signed: &SignedCheckpoint) -> Result<(), LedgerError> {
    crate::stamp::replace(db, FILE_NAME, signed.text.as_bytes(), None).map_err(|(p, source)| {
        LedgerError::Io {
            path: p.display().to_string(),
            source,
        }
    })
}
