//! Damaged indexes, found while the store runs, rebuilt when it is next
//! opened (specs/storage.md, "Decision indexes").
//!
//! The index database (`db/index/`) holds only what the leaves say. When
//! RocksDB finds one of its blocks damaged, the log writes the mark
//! `db/index.damaged` (synced) beside it, naming what was found; the next
//! [`Log::open_with`](crate::Log::open_with) that finds the mark deletes
//! the index database and then the mark, and the indexes are built again
//! from the leaves ([`discard_indexes`]). A crash in between leaves the
//! mark, so the next open deletes again what is left.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::store::index_dir;
use crate::LedgerError;

/// The mark's file name, in the log's directory.
const MARK: &str = "index.damaged";

/// The mark of the log in `db`.
fn mark(db: &Path) -> PathBuf {
    db.join(MARK)
}

/// What the mark of the log in `db` says, if the indexes are marked
/// damaged.
pub(crate) fn marked(db: &Path) -> Option<String> {
    match std::fs::read(mark(db)) {
        Ok(why) => Some(String::from_utf8_lossy(&why).into_owned()),
        Err(_) => None,
    }
}

/// Marks the indexes of the log in `db` damaged, saying `why` (synced,
/// the directory too).
pub(crate) fn mark_damaged(db: &Path, why: &str) -> Result<(), LedgerError> {
    let path = mark(db);
    let io = |source| LedgerError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::create(&path).map_err(io)?;
    file.write_all(why.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    sync_dir(db)
}

/// Deletes the index database of the log in `db` (`db/index/`), then its
/// damage mark: opened next, the indexes are rebuilt from the leaves. Only
/// on a store this process holds, or a stopped one.
pub fn discard_indexes(db: &Path) -> Result<(), LedgerError> {
    let index = index_dir(db);
    gone(std::fs::remove_dir_all(&index), &index)?;
    // The database is gone for good before the mark that asks for it.
    sync_dir(db)?;
    let path = mark(db);
    gone(std::fs::remove_file(&path), &path)?;
    sync_dir(db)
}

/// Deletes the damage mark of the log in `db`, synced: the indexes in
/// `db/index/` were rebuilt while the log ran ([`crate::Log::replace_indexes`]).
pub(crate) fn unmark(db: &Path) -> Result<(), LedgerError> {
    let path = mark(db);
    gone(std::fs::remove_file(&path), &path)?;
    sync_dir(db)
}

/// A removal's result, where a file already gone is removed.
pub(crate) fn gone(removed: std::io::Result<()>, path: &Path) -> Result<(), LedgerError> {
    match removed {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LedgerError::Io {
            path: path.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Syncs the directory `dir`, so that the names made or removed in it last.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| LedgerError::Io {
            path: dir.display().to_string(),
            source,
        })
}
