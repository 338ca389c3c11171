//! The compactions the ledger asks of RocksDB itself, so that removed
//! bytes leave the disk: a prune's ([`Log::compact_pruned`]), an
//! erasure's rewritten chunks ([`Log::erase_entries`]), and an index
//! family compacted whole when a file still holds a removed range
//! ([`Log::index_delete_files`]).
//!
//! One can run for minutes on a large store (a whole postings family of
//! 4.4 GB: 45 s), and a process that exits while a thread is inside one
//! races RocksDB's own teardown and may abort. So a stopping server ends
//! them at once ([`Log::stop_compactions`]: RocksDB's
//! `DisableManualCompaction`, which makes a running one give up at its
//! next key and a new one return at once), and what one did not finish
//! stays owed: each is recorded in the log's database before it starts
//! and cleared only once it ran to its end ([`Log::compactions_owed`]).
//! A crash leaves the same record. The next start finishes what is owed
//! ([`Log::compact_owed`]).
//!
//! A compaction that fails (a full disk) stays owed too. RocksDB's C API
//! drops a manual compaction's status, so a failure is read from the
//! database's count of failed background work ([`Log::ran_to_end`]), and
//! said by [`Log::take_failed_compaction`], so that a server can try
//! again once there is room.

// `rocksdb_disable_manual_compaction` is in RocksDB's C API but not
// wrapped by rust-rocksdb.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering;

use rocksdb::{AsRawPtr, WriteOptions, DB};

use crate::families::holds_merged_groups;
use crate::{LedgerError, Log};

/// Key prefix, in the log's database, of an index column family owed a
/// whole compaction: `a` ‖ `owed-compaction:` ‖ its name → empty.
const META_OWED: &[u8] = b"aowed-compaction:";

/// Makes RocksDB end the manual compactions running on `db` at their next
/// key, and return at once from any asked for later.
fn disable_manual_compactions(db: &DB) {
    // SAFETY: `db` is open for the length of the call (it is borrowed),
    // and the C function only takes its handle; RocksDB synchronises it
    // with running compactions itself.
    unsafe { librocksdb_sys::rocksdb_disable_manual_compaction(db.as_raw_ptr()) }
}

/// `db`'s count of the flushes and compactions that failed since it was
/// opened (`rocksdb.background-errors`); `None` if it cannot be read.
fn background_errors(db: &DB) -> Option<u64> {
    db.property_int_value("rocksdb.background-errors")
        .ok()
        .flatten()
}

fn owed_key(cf_name: &str) -> Vec<u8> {
    [META_OWED, cf_name.as_bytes()].concat()
}

/// What the next start must finish ([`Log::compactions_owed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owed {
    /// A prune's compaction of the removed entries' positions.
    pub pruned: bool,
    /// An erasure's compaction of the chunks it rewrote: their first
    /// leaves, ascending.
    pub erased_chunks: Vec<u64>,
    /// Index column families to compact whole.
    pub index_families: Vec<String>,
}

impl Owed {
    /// Nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The compactions owed: one for a prune's, one for an erasure's (of
    /// any number of chunks), one for each index family
    /// (`ledger_compactions_owed`).
    pub fn count(&self) -> u64 {
        u64::from(self.pruned)
            + u64::from(!self.erased_chunks.is_empty())
            + self.index_families.len() as u64
    }
}

impl std::fmt::Display for Owed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.pruned {
            parts.push("a prune's".to_string());
        }
        if !self.erased_chunks.is_empty() {
            let n = self.erased_chunks.len();
            let chunks = if n == 1 { "chunk" } else { "chunks" };
            parts.push(format!("an erasure's, of {n} entry {chunks}"));
        }
        for name in &self.index_families {
            parts.push(format!("index family {name} whole"));
        }
        f.write_str(&parts.join(", "))
    }
}

impl Log {
    /// Ends the manual compactions running on the log's databases at their
    /// next key and makes later ones return at once, for good: what a
    /// server does when it stops, so that no thread is inside RocksDB when
    /// the process exits. A compaction cut short stays owed
    /// ([`Log::compactions_owed`]).
    pub fn stop_compactions(&self) {
        self.compactions_stopped.store(true, Ordering::Release);
        disable_manual_compactions(&self.db);
        disable_manual_compactions(&self.checkpoints);
        if let Some(index) = self.index_slot().as_ref() {
            disable_manual_compactions(index);
        }
    }

    /// Whether [`Log::stop_compactions`] was called: a compaction that
    /// returned since may have been cut short.
    pub fn compactions_stopped(&self) -> bool {
        self.compactions_stopped.load(Ordering::Acquire)
    }

    /// Whether a compaction failed (a full disk) since the last call: what
    /// it was to do stays owed, for [`Log::compact_owed`] to do again once
    /// there is room.
    pub fn take_failed_compaction(&self) -> bool {
        self.compaction_failed.swap(false, Ordering::AcqRel)
    }

    /// Disables manual compactions on an index database put in place
    /// after [`Log::stop_compactions`].
    pub(crate) fn stop_compactions_on(&self, index: &DB) {
        if self.compactions_stopped() {
            disable_manual_compactions(index);
        }
    }

    /// The compactions a stop or a crash cut short, which
    /// [`Log::compact_owed`] finishes.
    pub fn compactions_owed(&self) -> Result<Owed, LedgerError> {
        let mut index_families = Vec::new();
        for family in &self.index_cfs {
            if self.db.get(owed_key(family.name))?.is_some() {
                index_families.push(family.name.to_string());
            }
        }
        Ok(Owed {
            pruned: self.pruned_owed()?,
            erased_chunks: self.erased_owed()?,
            index_families,
        })
    }

    /// Finishes the compactions [`Log::compactions_owed`] names; what a
    /// stop cuts short again stays owed.
    pub fn compact_owed(&self) -> Result<(), LedgerError> {
        self.compact_erased()?;
        self.compact_pruned()?;
        for family in &self.index_cfs {
            if self.db.get(owed_key(family.name))?.is_some() {
                let db = self.index_db(family.name)?;
                let cf = crate::store::cf(&db, family.name)?;
                self.compact_index_whole(&db, cf, family.name)?;
            }
        }
        Ok(())
    }

    /// Runs `compact`, manual compactions of `db` that `what` names, and
    /// says whether they ran to their end. RocksDB's C API drops a manual
    /// compaction's status, so a failure (a full disk) is seen in `db`'s
    /// count of failed flushes and compactions, which any that failed
    /// meanwhile raised (one RocksDB ran of its own too: then the
    /// compaction is done again, which is harmless); a stop is seen by
    /// [`Log::compactions_stopped`].
    pub(crate) fn ran_to_end(&self, db: &DB, what: &str, compact: impl FnOnce()) -> bool {
        let before = background_errors(db);
        compact();
        if self.compactions_stopped() {
            tracing::info!("{what} was cut short by the stop; the next start finishes it");
            return false;
        }
        if before.is_none() || background_errors(db) != before {
            self.compaction_failed_at(what);
            return false;
        }
        if self.compactions_failing.swap(false, Ordering::AcqRel) {
            tracing::info!("{what} ran to its end: compactions complete again");
        }
        true
    }

    /// Says that the compaction `what` failed; it stays owed. Said once
    /// as a warning while they keep failing (a server tries again every few
    /// seconds while the disk is full).
    fn compaction_failed_at(&self, what: &str) {
        if self.compactions_failing.swap(true, Ordering::AcqRel) {
            tracing::debug!("{what} did not complete either; it stays owed");
        } else {
            tracing::warn!("{what} did not complete (a full disk? see RocksDB's LOG); it stays owed and is done again later");
        }
        self.compaction_failed.store(true, Ordering::Release);
    }

    /// Compacts the index column family `cf_name` (`cf` of `db`) whole, to
    /// its last level, recorded as owed until it ran to its end.
    pub(crate) fn compact_index_whole(
        &self,
        db: &DB,
        cf: &rocksdb::ColumnFamily,
        cf_name: &str,
    ) -> Result<(), LedgerError> {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db.put_opt(owed_key(cf_name), [], &sync)?;
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        let what = format!("the whole compaction of {cf_name}");
        if !self.ran_to_end(db, &what, || {
            db.compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &opts)
        }) {
            return Ok(());
        }
        // A failure the count of background errors missed (the database
        // had stopped before: it refused at once) is seen by what it left:
        // a grouped family compacted whole holds no file of two groups.
        let grouped = self.index_cfs.iter().find(|f| f.name == cf_name);
        if let Some(prefix) = grouped.and_then(|f| f.grouped_by) {
            if holds_merged_groups(db, cf_name, prefix).map_err(|e| self.index_error(e))? {
                self.compaction_failed_at(&what);
                return Ok(());
            }
        }
        Ok(self.db.delete_opt(owed_key(cf_name), &sync)?)
    }

    /// Forgets the whole compactions owed to the index families: their
    /// database was replaced by one rebuilt from the leaves.
    pub(crate) fn forget_index_compactions(&self) -> Result<(), LedgerError> {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        for family in &self.index_cfs {
            self.db.delete_opt(owed_key(family.name), &sync)?;
        }
        Ok(())
    }
}
