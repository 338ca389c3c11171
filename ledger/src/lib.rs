//! # Decision Ledger storage
//!
//! [`Log`] is an RFC 9162 Merkle log on RocksDB: entries, the tlog-tiles
//! hash tiles they fill or grow and the tree size go to disk in one synced
//! WriteBatch per append; checkpoints are C2SP signed notes kept for every size ever signed.
//! All formats come from the `verifier` crate; this crate only stores them.
//! The layout is in `specs/storage.md`.

// One `unsafe` call, in `compactions` (a RocksDB C function rust-rocksdb
// does not wrap).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod append;
mod audit;
mod bulk;
mod checkpoints;
mod compactions;
mod damage;
mod edge;
mod erasure;
mod error;
mod evidence;
mod families;
pub mod holds;
pub mod keys;
pub mod last_checkpoint;
mod layout;
mod memory;
mod retention;
pub mod rotation;
mod scrub;
mod spare;
pub mod stamp;
mod store;
mod timings;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{IteratorMode, DB};
use verifier::tile::{encode_bundle, Tile, TileKind};
use verifier::tlog_proof::TlogProof;
use verifier::tree::{self, TreeError};
use verifier::Hash;

pub use append::{PreparedAppend, Tip};
pub use audit::AuditReport;
pub use bulk::SortedSink;
use checkpoints::latest_checkpoint;
pub use checkpoints::SignedCheckpoint;
pub use compactions::Owed;
pub use damage::discard_indexes;
use edge::DbReader;
pub use erasure::Erased;
use error::in_indexes;
pub use error::{damage_seen, LedgerError, Store};
pub use families::IndexFamily;
use layout::open_db;
pub use memory::{limit as limit_rocksdb_memory, MemoryUse, RocksLimits};
pub use scrub::{Scrubbed, SCRUB_RUN};
pub use spare::SpareIndexes;
use store::*;
pub use store::{db_options, index_dir};
pub use timings::{Durations, SyncedWriteTimings, BUCKET_BOUNDS_MICROS};
pub use verifier::frontier::{self, Frontier};

/// A key and its value, as read from an index column family.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One SST file of the log's database ([`Log::stored_files`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// The file's name, e.g. `/000012.sst`. RocksDB numbers files in the
    /// order it makes them, and never reuses a number: a file that keeps
    /// its name was not rewritten.
    pub name: String,
    /// The level it is in (0: as flushed from a memtable).
    pub level: i32,
    /// Its size in bytes.
    pub size: usize,
}

struct State {
    frontier: Frontier,
    edge: edge::TileEdge,
    latest: Option<SignedCheckpoint>,
}

/// The Merkle log on disk. Appends are serialised; reads run concurrently
/// and see only committed sizes.
pub struct Log {
    db: DB,
    /// The signed checkpoints' database (`checkpoints/` in the log's directory).
    checkpoints: DB,
    /// The index database (`index/` in the log's directory), if the log
    /// was opened with index column families. Shared with each reader for
    /// the length of one call, so that a rebuilt one can take its place
    /// while the log runs ([`Log::replace_indexes`]).
    index: std::sync::RwLock<Option<Arc<DB>>>,
    /// The index database's column families.
    index_cfs: Vec<IndexFamily>,
    /// The index database's directory (bulk files are staged in it).
    index_path: std::path::PathBuf,
    /// The log's directory (it holds the [`last_checkpoint`] file).
    path: std::path::PathBuf,
    bulk_files: AtomicU64,
    /// Every key of the log; more are added while it runs
    /// ([`Log::add_keys`]), none taken away.
    keys: std::sync::RwLock<keys::LogKeys>,
    state: Mutex<State>,
    /// Serialises [`Log::append`] callers.
    appending: Mutex<()>,
    /// Serialises [`Log::commit`]s.
    writing: Mutex<()>,
    signing: Mutex<()>,
    committed: AtomicU64,
    /// Entries below this leaf were removed by retention ([`Log::prune`]).
    first_kept: AtomicU64,
    /// Serialises [`Log::prune`]s.
    pruning: Mutex<()>,
    /// The indexes were marked damaged ([`Log::index_error`]).
    index_damage_marked: std::sync::atomic::AtomicBool,
    /// [`Log::stop_compactions`] was called.
    compactions_stopped: std::sync::atomic::AtomicBool,
    /// A compaction failed since [`Log::take_failed_compaction`] last
    /// said so.
    compaction_failed: std::sync::atomic::AtomicBool,
    /// The last compaction to end failed: later failures are logged
    /// quietly until one runs to its end.
    compactions_failing: std::sync::atomic::AtomicBool,
    /// How long the synced writes of [`Log::commit`] take.
    synced: timings::SyncedWrites,
}

/// How [`Log::open_inner`] opens a store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Checked; indexes marked damaged are rebuilt from the leaves.
    Rebuilding,
    /// Checked; indexes marked damaged are opened as they are.
    KeepingMarked,
    /// Unchecked, to say what is wrong; nothing is rebuilt.
    Audit,
}

impl Log {
    /// Opens (creating if needed) the log in `path`, owned by the origin
    /// of `keys` (one key, or a [`keys::LogKeys`]: the current key and
    /// those the log signed with before).
    ///
    /// Refuses to open a store of another log, one whose tree does not
    /// reproduce the root of its last signed checkpoint, or one whose
    /// checkpoints are not signed by one of `keys`.
    pub fn open(path: &Path, keys: &impl keys::ToLogKeys) -> Result<Log, LedgerError> {
        Log::open_with(path, keys, &[])
    }

    /// [`Log::open`], also opening (creating if needed) the index database
    /// beside the log, with the column families `extra_cfs` ([`IndexFamily`]),
    /// for indexes built on the log ([`Log::ingest_sorted`]).
    pub fn open_with(
        path: &Path,
        keys: &impl keys::ToLogKeys,
        extra_cfs: &[IndexFamily],
    ) -> Result<Log, LedgerError> {
        Log::open_inner(path, keys.to_log_keys(), extra_cfs, Opening::Rebuilding)
    }

    /// [`Log::open_with`], but indexes marked damaged while the store last
    /// ran are opened as they are rather than rebuilt first: the mark
    /// stays, [`Log::indexes_marked_damaged`] says so, and the caller
    /// rebuilds them beside the ones in use while it serves
    /// (`ingest::Indexes::rebuild_beside`; lookups that meet the damage
    /// fail until then, and none is answered wrongly). What ledgerd does,
    /// so that a restart on damaged indexes does not wait for a rebuild
    /// that reads every leaf. Indexes that cannot be opened are refused as
    /// by [`Log::open_with`].
    pub fn open_keeping_marked(
        path: &Path,
        keys: &impl keys::ToLogKeys,
        extra_cfs: &[IndexFamily],
    ) -> Result<Log, LedgerError> {
        Log::open_inner(path, keys.to_log_keys(), extra_cfs, Opening::KeepingMarked)
    }

    /// Opens without checking the last checkpoint's root, so that
    /// [`Log::audit`] can say what is wrong with a store `open` refuses.
    /// Use only to audit.
    pub fn open_for_audit(
        path: &Path,
        keys: &impl keys::ToLogKeys,
        extra_cfs: &[IndexFamily],
    ) -> Result<Log, LedgerError> {
        Log::open_inner(path, keys.to_log_keys(), extra_cfs, Opening::Audit)
    }

    fn open_inner(
        path: &Path,
        keys: keys::LogKeys,
        extra_cfs: &[IndexFamily],
        how: Opening,
    ) -> Result<Log, LedgerError> {
        let check_root = how != Opening::Audit;
        let mut marked = false;
        let key = keys.current();
        let checkpoints = open_checkpoints_db(&path.join(CHECKPOINTS_DIR))?;
        let db = open_db(path, &checkpoints)?;
        let index_path = index_dir(path);
        let index = if extra_cfs.is_empty() {
            None
        } else {
            // Damage met earlier; an audit only reports it.
            match damage::marked(path) {
                Some(why) if how == Opening::Rebuilding => {
                    tracing::warn!(
                        "the indexes in {} were found damaged ({why}): rebuilding them from the log's leaves",
                        index_path.display()
                    );
                    error::count_damage();
                    damage::discard_indexes(path)?;
                }
                // Gone (a rebuild cut short between its renames): built
                // anew from the leaves on open, whole.
                Some(_) if how == Opening::KeepingMarked && !index_path.exists() => {
                    damage::unmark(path)?;
                }
                Some(why) if how == Opening::KeepingMarked => {
                    tracing::warn!(
                        "the indexes in {} were found damaged ({why}): serving with them while they are rebuilt from the log's leaves beside",
                        index_path.display()
                    );
                    error::count_damage();
                    marked = true;
                }
                _ => {}
            }
            // What a rebuild beside the indexes left when it was cut short.
            spare::discard(path)?;
            match families::open_index_db(&index_path, extra_cfs) {
                Ok(index) => Some(Arc::new(index)),
                Err(e) => return Err(Log::marked_if_damaged(path, e)),
            }
        };
        match db.get(META_ORIGIN)? {
            Some(origin) if origin != key.name().as_bytes() => {
                return Err(LedgerError::WrongLog {
                    key: key.name().into(),
                    store: String::from_utf8_lossy(&origin).into(),
                })
            }
            Some(_) => {}
            None => {
                let mut batch = rocksdb::WriteBatch::default();
                batch.put(META_ORIGIN, key.name());
                batch.put(META_LAYOUT, LAYOUT.to_be_bytes());
                db.write(batch)?;
            }
        }
        // Where the last chunk ends, or, in a log whose every leaf is
        // pruned (restored so far from hashes alone), the first kept leaf.
        let first_kept = retention::stored_first_kept(&db)?;
        let size = stored_size(&db)?.max(first_kept);
        let edge = edge::TileEdge::load(&db, size)?;
        let reader = DbReader {
            db: &db,
            edge: std::borrow::Cow::Borrowed(&edge),
        };
        let last = Frontier::nodes_for(size)
            .map(|id| tree::HashReader::node(&reader, id))
            .collect::<Result<Vec<_>, _>>()?;
        let frontier = Frontier::from_nodes(size, last)
            .ok_or_else(|| LedgerError::Corrupt("frontier does not match size".into()))?;
        let mut latest = latest_checkpoint(&checkpoints, &keys)?;
        // The last checkpoint kept outside RocksDB: a store behind it lost leaves the
        // log signed, and is refused (audits still open it to say so).
        if let Some(w) = last_checkpoint::read(path, &keys)? {
            if w.checkpoint.size > size && check_root {
                return Err(LedgerError::BehindSignedCheckpoint {
                    store: size,
                    signed: w.checkpoint.size,
                    kept_in: last_checkpoint::path(path).display().to_string(),
                });
            }
            if latest
                .as_ref()
                .is_none_or(|l| l.checkpoint.size < w.checkpoint.size)
                && w.checkpoint.size <= size
            {
                latest = Some(w);
            }
        }
        if let Some(latest) = latest.as_ref().filter(|_| check_root) {
            let cp = &latest.checkpoint;
            if cp.size > size {
                return Err(LedgerError::Corrupt(format!(
                    "last checkpoint is for size {} but the tree has only {size} leaves",
                    cp.size
                )));
            }
            let computed = tree::root(&reader, cp.size)?;
            if computed != cp.root {
                return Err(LedgerError::RootMismatch {
                    size: cp.size,
                    computed,
                    signed: cp.root,
                });
            }
        }
        Ok(Log {
            keys: std::sync::RwLock::new(keys),
            state: Mutex::new(State {
                frontier,
                edge,
                latest,
            }),
            appending: Mutex::new(()),
            writing: Mutex::new(()),
            signing: Mutex::new(()),
            committed: AtomicU64::new(size),
            first_kept: AtomicU64::new(first_kept),
            pruning: Mutex::new(()),
            index_damage_marked: std::sync::atomic::AtomicBool::new(marked),
            compactions_stopped: std::sync::atomic::AtomicBool::new(false),
            compaction_failed: std::sync::atomic::AtomicBool::new(false),
            compactions_failing: std::sync::atomic::AtomicBool::new(false),
            synced: timings::SyncedWrites::default(),
            db,
            checkpoints,
            index: std::sync::RwLock::new(index),
            index_cfs: extra_cfs.to_vec(),
            index_path,
            path: path.to_path_buf(),
            bulk_files: AtomicU64::new(0),
        })
    }

    /// The log's keys: the current one first.
    pub fn keys(&self) -> keys::LogKeys {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds `more` to the keys the log knows (a rotation begun or ended
    /// while it runs); `more`'s first key becomes the current one. Keys
    /// are never taken away: checkpoints signed by a retired key are
    /// still read. Refuses keys of another origin ([`keys::LogKeys::new`]
    /// refuses keys named otherwise than the first).
    pub fn add_keys(&self, more: &keys::LogKeys) -> Result<(), LedgerError> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        *keys = keys::LogKeys::new(
            more.current().clone(),
            more.all().iter().chain(keys.all()).cloned().collect(),
        )?;
        Ok(())
    }

    /// What RocksDB holds in memory for the log, over its databases.
    pub fn memory(&self) -> MemoryUse {
        let mut m = MemoryUse::default();
        memory::add(&mut m, &self.db, &[]);
        memory::add(&mut m, &self.checkpoints, &[]);
        if let Some(index) = self.index_slot().as_ref() {
            memory::add(&mut m, index, &self.index_cfs);
        }
        m.block_cache = memory::cache_use();
        m
    }

    /// How long the synced writes of [`Log::commit`] have taken since the
    /// log was opened, and their write-ahead-log part (write and sync).
    pub fn synced_writes(&self) -> SyncedWriteTimings {
        self.synced.snapshot()
    }

    /// Number of committed entries.
    pub fn size(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written
        // (it is replaced only after a successful commit), so poisoning is moot.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index database, to read or write its column family `cf_name`
    /// (held for one call: a rebuild swaps it only when no call holds it).
    pub(crate) fn index_db(&self, cf_name: &str) -> Result<Arc<DB>, LedgerError> {
        self.index_slot()
            .clone()
            .ok_or_else(|| LedgerError::NoIndexes(cf_name.into()))
    }

    fn index_slot(&self) -> std::sync::RwLockReadGuard<'_, Option<Arc<DB>>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the indexes are marked damaged: found so while the log was
    /// open, or before it was opened with [`Log::open_keeping_marked`].
    /// [`Log::replace_indexes`] clears it; otherwise the next open with
    /// [`Log::open_with`] rebuilds them from the leaves.
    pub fn indexes_marked_damaged(&self) -> bool {
        self.index_damage_marked.load(Ordering::Relaxed)
    }

    /// A RocksDB error of the index database, said of [`Store::Indexes`]:
    /// damage found there marks the indexes (once), so that they are
    /// rebuilt from the leaves (`damage.rs`, `spare.rs`).
    pub(crate) fn index_error(&self, e: rocksdb::Error) -> LedgerError {
        let e = in_indexes(e);
        if matches!(e, LedgerError::Damaged { .. })
            && !self.index_damage_marked.swap(true, Ordering::Relaxed)
        {
            return Log::marked_if_damaged(&self.path, e);
        }
        e
    }

    /// `e`, having marked the indexes of the log in `path` damaged if it
    /// says they are.
    fn marked_if_damaged(path: &Path, e: LedgerError) -> LedgerError {
        if matches!(
            e,
            LedgerError::Damaged {
                store: Store::Indexes,
                ..
            }
        ) {
            if let Err(m) = damage::mark_damaged(path, &e.to_string()) {
                tracing::error!("the indexes are damaged, and marking them so failed: {m}");
            }
        }
        e
    }

    /// Reads a point value from an index column family.
    pub fn index_get(&self, cf_name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        db.get_cf(cf, key).map_err(|e| self.index_error(e))
    }

    /// Waits (up to `timeout`) until RocksDB has no flush or compaction
    /// running or pending, without forcing a flush: a benchmark settles
    /// the store between phases with it, so one phase's background writes
    /// are not measured in the next.
    pub fn wait_for_background_work(
        &self,
        timeout: std::time::Duration,
    ) -> Result<(), LedgerError> {
        let mut opts = rocksdb::WaitForCompactOptions::default();
        opts.set_timeout(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX));
        self.db.wait_for_compact(&opts)?;
        if let Some(index) = self.index_slot().clone() {
            index.wait_for_compact(&opts)?;
        }
        Ok(())
    }

    /// Writes the log's memtable to an SST file now, rather than when it
    /// fills (the entries are already durable in the WAL): before copying
    /// the store's files, or to see how flushed files are laid out.
    pub fn flush(&self) -> Result<(), LedgerError> {
        Ok(self.db.flush()?)
    }

    /// The SST files of the log's database (entry chunks and full hash
    /// tiles; not the checkpoints' or the indexes'), in no set order.
    /// Flushed files lie beside the older ones and are moved down the
    /// levels whole, never merged (specs/storage.md).
    pub fn stored_files(&self) -> Result<Vec<StoredFile>, LedgerError> {
        Ok(self
            .db
            .live_files()?
            .into_iter()
            .map(|f| StoredFile {
                name: f.name,
                level: f.level,
                size: f.size,
            })
            .collect())
    }

    /// Point values of many keys of an index column family, in order.
    pub fn index_multi_get(
        &self,
        cf_name: &str,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        // The batched form takes the keys in place and pins the values
        // (no copy of either on the way in).
        db.batched_multi_get_cf(cf, keys.iter().copied(), false)
            .into_iter()
            .map(|r| {
                r.map(|v| v.map(|v| v.to_vec()))
                    .map_err(|e| self.index_error(e))
            })
            .collect()
    }

    /// For each `(prefix, start)` of `ranges` in turn, the key/value pairs
    /// of an index column family whose keys start with `prefix`, from
    /// `start` (inclusive, at least `prefix`) on, given to `visit` in key
    /// order until it returns `false` (on to the next range) or an error
    /// (the end). One iterator serves every range: a seek each, not a new
    /// iterator (a time range reads one range per built span).
    pub fn index_scan_ranges<E: From<LedgerError>>(
        &self,
        cf_name: &str,
        ranges: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        let mut iter = db.raw_iterator_cf(cf);
        for (prefix, start) in ranges {
            iter.seek(if start < prefix { &prefix } else { &start });
            while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
                if !key.starts_with(&prefix) || !visit(key, value)? {
                    break;
                }
                iter.next();
            }
            iter.status().map_err(|e| self.index_error(e))?;
        }
        Ok(())
    }

    /// The last key/value pair of an index column family, if it has any.
    pub fn index_last(&self, cf_name: &str) -> Result<Option<KeyValue>, LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        let last = db.iterator_cf(cf, IteratorMode::End).next();
        match last {
            Some(item) => {
                let (k, v) = item.map_err(|e| self.index_error(e))?;
                Ok(Some((k.into_vec(), v.into_vec())))
            }
            None => Ok(None),
        }
    }

    /// Sorted runs of an index column family (RocksDB's
    /// `num-files-at-levelN`): each file in level 0 and each non-empty
    /// level below it. Files whose keys overlap are added as runs of their
    /// own, which compactions merge; files that lie beside the others join
    /// the last level's run.
    pub fn index_sorted_runs(&self, cf_name: &str) -> Result<u64, LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        let mut runs = 0;
        for level in 0..families::INDEX_LEVELS {
            let files = db
                .property_int_value_cf(cf, format!("rocksdb.num-files-at-level{level}").as_str())?
                .unwrap_or(0);
            runs += if level == 0 {
                files
            } else {
                u64::from(files > 0)
            };
        }
        Ok(runs)
    }

    fn check_size(
        &self,
        what: &'static str,
        value: u64,
        inclusive: bool,
    ) -> Result<(), LedgerError> {
        let size = self.size();
        if value > size || (!inclusive && value == size) {
            return Err(LedgerError::OutOfRange { what, value, size });
        }
        Ok(())
    }

    /// Reads nodes of the committed tree (of any size up to it).
    fn reader(&self) -> Result<DbReader<'_>, LedgerError> {
        Ok(DbReader {
            db: &self.db,
            edge: std::borrow::Cow::Owned(self.state().edge.clone()),
        })
    }

    /// The entry at `index`; [`LedgerError::Erased`] if it was erased.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LedgerError> {
        // Checked first, so that `index + 1` cannot overflow.
        self.check_size("leaf index", index, false)?;
        let mut out = Vec::new();
        self.scan_entries(index, index + 1, |_, e| {
            out = e.to_vec();
            Ok::<(), LedgerError>(())
        })?;
        if out.is_empty() {
            if let Some(e) = self.erased(index)? {
                return Err(LedgerError::Erased {
                    index,
                    by: e.by,
                    erasure: verifier::erasure::decision_id(index),
                });
            }
        }
        Ok(out)
    }

    /// Calls `f(index, entry)` for every entry in `from..to`, in order, in
    /// one scan of the stored chunks from the one holding `from`. An entry
    /// below [`Log::first_kept`] is [`LedgerError::Pruned`]; an erased one
    /// is empty ([`Log::erased`]).
    pub fn scan_entries<E: From<LedgerError>>(
        &self,
        from: u64,
        to: u64,
        f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if from >= to {
            return Ok(());
        }
        self.check_size("leaf index", to - 1, false)?;
        let first_kept = self.first_kept();
        if from < first_kept {
            return Err(LedgerError::Pruned {
                index: from,
                first_kept,
            }
            .into());
        }
        scan_entries(&self.db, from, to, Some(&self.first_kept), f)
    }

    /// The leaf hash of entry `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, LedgerError> {
        self.check_size("leaf index", index, false)?;
        tree::HashReader::node(&self.reader()?, tree::NodeId::leaf(index))
    }

    /// The root of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash, LedgerError> {
        self.check_size("tree size", size, true)?;
        tree::root(&self.reader()?, size)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size("tree size", size, true)?;
        tree::inclusion_proof(&self.reader()?, index, size).map_err(tree_error)
    }

    /// The consistency proof from `old` to `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size("tree size", new, true)?;
        tree::consistency_proof(&self.reader()?, old, new).map_err(tree_error)
    }

    /// A C2SP tlog-proof of entry `index` against the checkpoint signed at
    /// `size` (the latest checkpoint if `None`).
    pub fn tlog_proof(&self, index: u64, size: Option<u64>) -> Result<TlogProof, LedgerError> {
        let signed = self.signed_checkpoint(size)?;
        let size = signed.checkpoint.size;
        if index >= size {
            return Err(LedgerError::OutOfRange {
                what: "leaf index",
                value: index,
                size,
            });
        }
        Ok(TlogProof {
            extra: None,
            index,
            proof: self.inclusion_proof(index, size)?,
            checkpoint: signed.cosigned(),
        })
    }

    /// The bytes of a tlog-tiles hash tile or entry bundle.
    pub fn tile(&self, tile: &Tile) -> Result<Vec<u8>, LedgerError> {
        tile.check_in_tree(self.size())?;
        let start = tile.index * verifier::tile::TILE_WIDTH;
        let width = usize::from(tile.width);
        match tile.kind {
            TileKind::Hashes(level) => {
                let mut data = self.reader()?.tile(level, tile.index)?;
                if data.len() < width * verifier::hash::HASH_SIZE {
                    return Err(LedgerError::Corrupt(format!(
                        "hash tile {} is short",
                        tile.path()
                    )));
                }
                data.truncate(width * verifier::hash::HASH_SIZE);
                Ok(data)
            }
            TileKind::Entries => self.entry_bundle(start, width),
        }
    }

    /// The entry bundle of the `width` entries from `start` (a multiple of
    /// 256), read with [`Log::scan_entries`].
    fn entry_bundle(&self, start: u64, width: usize) -> Result<Vec<u8>, LedgerError> {
        let mut out = Vec::new();
        self.scan_entries(start, start + width as u64, |_, entry| {
            out.extend(encode_bundle(std::iter::once(entry))?);
            Ok::<(), LedgerError>(())
        })?;
        Ok(out)
    }
}

fn tree_error(e: TreeError<LedgerError>) -> LedgerError {
    match e {
        TreeError::IndexOutOfRange { index, size } => LedgerError::OutOfRange {
            what: "leaf index",
            value: index,
            size,
        },
        TreeError::SizeOrder { old_size, new_size } => LedgerError::SizeOrder {
            old: old_size,
            new: new_size,
        },
        TreeError::Read(e) => e,
    }
}
