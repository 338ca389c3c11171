//! Indexes rebuilt beside the ones in use, then put in their place while
//! the log runs (specs/storage.md, "Decision indexes").
//!
//! The index database holds only what the leaves say, so a damaged one
//! need not stop the ledger: a second database is built from the leaves
//! in `db/index.rebuilding/` ([`Log::spare_indexes`]) while the first goes
//! on serving, and [`Log::replace_indexes`] swaps them: the calls using
//! the old one finish, it is closed and renamed `db/index.old/`, the new
//! one renamed `db/index/` and opened, the old one deleted, and only then
//! the damage mark (`db/index.damaged`). Each rename is synced with its
//! directory. A crash at any point leaves either the mark, so the next
//! open rebuilds the indexes from the leaves, or the new database in
//! place; an open deletes what a cut-short rebuild left beside it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::DB;

use crate::bulk::{bulk_file, ingest_file};
use crate::damage::{gone, sync_dir, unmark};
use crate::error::in_indexes;
use crate::families::open_index_db;
use crate::store::{cf, index_dir};
use crate::{LedgerError, Log, SortedSink};

/// Where a rebuild builds the new index database, in the log's directory.
const SPARE_DIR: &str = "index.rebuilding";
/// Where the replaced index database waits to be deleted.
const OLD_DIR: &str = "index.old";

/// How long [`Log::replace_indexes`] holds new calls back while the calls
/// using the old database finish, before it lets them in and tries again.
const DRAIN: Duration = Duration::from_millis(100);
/// How long it tries in all before it gives up.
const DRAIN_TOTAL: Duration = Duration::from_secs(60);

/// An index database built beside the one in use, with the same column
/// families, written only by ingesting sorted files. Dropped without
/// being put in place, it is closed and deleted, so that a rebuild that
/// failed (a full disk) does not keep its files.
pub struct SpareIndexes {
    /// Open until it is put in place or dropped.
    db: Option<DB>,
    path: PathBuf,
    files: AtomicU64,
}

impl Drop for SpareIndexes {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            drop(db);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl SpareIndexes {
    /// Adds the items `fill` puts (keys strictly ascending) to the column
    /// family `cf_name`, as one ingested file
    /// ([`Log::ingest_sorted_with`], into this database).
    pub fn ingest_sorted_with(
        &self,
        cf_name: &str,
        fill: impl FnOnce(&mut SortedSink<'_>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let db = self.db()?;
        let handle = cf(db, cf_name)?;
        let seq = self.files.fetch_add(1, Ordering::Relaxed);
        let file = bulk_file(&self.path, cf_name, seq);
        ingest_file(db, handle, &file, None, fill, || Ok(()), in_indexes)
    }

    /// Puts one key into the column family `cf_name` (made durable when
    /// the database is put in place).
    pub fn put(&self, cf_name: &str, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        let db = self.db()?;
        db.put_cf(cf(db, cf_name)?, key, value).map_err(in_indexes)
    }

    fn db(&self) -> Result<&DB, LedgerError> {
        self.db
            .as_ref()
            .ok_or_else(|| LedgerError::NoIndexes("a spare put in place".into()))
    }
}

/// Deletes what a rebuild cut short left in the log's directory `db`.
pub(crate) fn discard(db: &Path) -> Result<(), LedgerError> {
    let mut removed = false;
    for dir in [SPARE_DIR, OLD_DIR] {
        let path = db.join(dir);
        if path.exists() {
            gone(std::fs::remove_dir_all(&path), &path)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(db)?;
    }
    Ok(())
}

/// Renames `from` to `to`, synced with their directory `dir`.
fn rename(dir: &Path, from: &Path, to: &Path) -> Result<(), LedgerError> {
    std::fs::rename(from, to).map_err(|source| LedgerError::Io {
        path: from.display().to_string(),
        source,
    })?;
    sync_dir(dir)
}

impl Log {
    /// A new, empty index database beside the one in use
    /// (`db/index.rebuilding/`), with its column families, to be filled
    /// from the leaves and put in its place by [`Log::replace_indexes`].
    /// One left by an earlier rebuild is deleted first.
    pub fn spare_indexes(&self) -> Result<SpareIndexes, LedgerError> {
        let Some(first) = self.index_cfs.first() else {
            return Err(LedgerError::NoIndexes("any".into()));
        };
        self.index_db(first.name)?;
        discard(&self.path)?;
        let path = self.path.join(SPARE_DIR);
        let db = open_index_db(&path, &self.index_cfs)?;
        Ok(SpareIndexes {
            db: Some(db),
            path,
            files: AtomicU64::new(0),
        })
    }

    /// Puts `spare` in place of the index database in use, while the log
    /// runs: new calls wait, the calls using the old database finish
    /// (each holds it for one call), the old one is closed and the new one
    /// opened in its place (`db/index/`); then the damage mark, if any,
    /// is deleted. The caller makes sure nothing was written to the old
    /// database since `spare` was filled that `spare` lacks.
    pub fn replace_indexes(&self, spare: SpareIndexes) -> Result<(), LedgerError> {
        let mut spare = spare;
        let path = spare.path.clone();
        // Durable before it is put in place: what is in its memtable goes
        // to files, synced. Failing, the spare is dropped, and deleted.
        spare.db()?.flush().map_err(in_indexes)?;
        // Closed, and no longer deleted when dropped.
        drop(spare.db.take());
        let index = index_dir(&self.path);
        let old = self.path.join(OLD_DIR);
        let started = Instant::now();
        let mut slot = loop {
            let slot = self.index.write().unwrap_or_else(|p| p.into_inner());
            let drained = Instant::now() + DRAIN;
            while slot.as_ref().is_some_and(|db| Arc::strong_count(db) > 1)
                && Instant::now() < drained
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            if slot.as_ref().is_none_or(|db| Arc::strong_count(db) == 1) {
                break slot;
            }
            // A call holds it still (or one waits on us while holding it):
            // let the others in, and try again.
            drop(slot);
            if started.elapsed() > DRAIN_TOTAL {
                let _ = std::fs::remove_dir_all(&path);
                return Err(LedgerError::RebuildNotPlaced(format!(
                    "the index database in use was still in use after {} s",
                    DRAIN_TOTAL.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(slot.take());
        let cfs = &self.index_cfs;
        let placed = rename(&self.path, &index, &old)
            .and_then(|()| rename(&self.path, &path, &index))
            .and_then(|()| open_index_db(&index, cfs));
        match placed {
            Ok(db) => {
                self.stop_compactions_on(&db);
                *slot = Some(Arc::new(db));
            }
            Err(e) => {
                // Back to serving what is in place (the old database, if
                // the first rename was all that was done): the mark stays,
                // so the rebuild is tried again, and any open rebuilds.
                if !index.exists() && old.exists() {
                    let _ = std::fs::rename(&old, &index);
                }
                if let Ok(db) = open_index_db(&index, cfs) {
                    *slot = Some(Arc::new(db));
                }
                return Err(e);
            }
        }
        drop(slot);
        // The rebuilt families' files hold no removed keys.
        self.forget_index_compactions()?;
        discard(&self.path)?;
        unmark(&self.path)?;
        self.index_damage_marked.store(false, Ordering::Relaxed);
        Ok(())
    }
}
