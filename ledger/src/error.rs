//! Errors of the ledger's storage operations.

use std::sync::atomic::{AtomicU64, Ordering};

use verifier::checkpoint::CheckpointError;
use verifier::note::KeyError;
use verifier::tile::TileError;
use verifier::Hash;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// RocksDB failed.
    #[error("storage: {0}")]
    Storage(rocksdb::Error),
    /// The store is open in another process (RocksDB holds a lock on each
    /// of its databases while it is open), or in this one already.
    #[error("the store is open in another process: a running ledgerd (use its HTTP API, or stop it first) or another ledgerctl command ({0})")]
    InUse(rocksdb::Error),
    /// RocksDB found a file of one of the data dir's stores damaged (a
    /// block whose checksum does not match, a broken file): the disk gave
    /// back other bytes than were written. The error says what to do,
    /// which depends on the store.
    #[error("{}", damaged(*.store, .source))]
    Damaged {
        /// The store the damaged file belongs to.
        store: Store,
        /// What RocksDB found, with the file.
        source: rocksdb::Error,
    },
    /// A file (key, data dir) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The store holds fewer leaves than a checkpoint the log signed: its
    /// newest leaves were lost (a damaged write-ahead log, a restored old
    /// backup).
    #[error("the store holds {store} leaves, but the log signed a checkpoint of {signed} leaves (kept in {kept_in}): leaves {store}..{signed} are lost. The ledger will not sign a history that contradicts it. Restore the log from a mirror: ledgerctl restore --mirror <dir> --data <new dir> (docs/operations.md)")]
    BehindSignedCheckpoint {
        /// Leaves in the store.
        store: u64,
        /// The size of the last checkpoint signed.
        signed: u64,
        /// Where that checkpoint is kept.
        kept_in: String,
    },
    /// The signer key file may be read by others than its owner.
    #[error("{path} is readable by group or others (mode {mode:o}); a signing key must be private: chmod 600 {path}")]
    KeyExposed {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// An entry larger than a tile entry bundle can hold.
    #[error("entry {position} of the batch is {len} bytes; the limit is 65535")]
    EntryTooLarge {
        /// Position in the batch.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// A leaf index or tree size beyond the current tree.
    #[error("{what} {value} is beyond the tree size {size}")]
    OutOfRange {
        /// What was asked ("leaf index", "tree size").
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The current tree size.
        size: u64,
    },
    /// A proof was asked between sizes in the wrong order.
    #[error("old size {old} is larger than new size {new}")]
    SizeOrder {
        /// The earlier size.
        old: u64,
        /// The later size.
        new: u64,
    },
    /// No checkpoint was signed at that size.
    #[error("no checkpoint was signed at size {0}")]
    NoCheckpoint(u64),
    /// The store contradicts itself (a missing or malformed value).
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The stored tree does not reproduce a signed checkpoint's root.
    #[error(
        "stored tree at size {size} has root {computed}, but the signed checkpoint says {signed}"
    )]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The root recomputed from the store.
        computed: Hash,
        /// The root the checkpoint signed.
        signed: Hash,
    },
    /// A stored checkpoint does not verify.
    #[error("stored checkpoint at size {size}: {source}")]
    BadCheckpoint {
        /// The checkpoint's size.
        size: u64,
        /// Why it failed.
        source: CheckpointError,
    },
    /// The key does not belong to this log.
    #[error("key is for log {key:?} but the store holds log {store:?}")]
    WrongLog {
        /// The key's name.
        key: String,
        /// The origin recorded in the store.
        store: String,
    },
    /// A key file is bad.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// The data directory's key files contradict each other, or a key
    /// rotation step cannot be taken (specs/keys.md).
    #[error("{0}")]
    KeyFiles(String),
    /// A signer key that is not one of the log's keys.
    #[error("key {key} is not one of the log's keys (log.pub, log.next.pub, log.retired)")]
    UnknownKey {
        /// The key's name and ID, `<name>+<hex ID>`.
        key: String,
    },
    /// A tile request is bad.
    #[error(transparent)]
    Tile(#[from] TileError),
    /// A prepared append was built on a tree that is no longer the committed
    /// one (an earlier append failed, or another writer committed first).
    #[error(
        "append prepared at size {prepared} but the tree has {committed} leaves; nothing written"
    )]
    Stale {
        /// The size the append was prepared on.
        prepared: u64,
        /// The committed size.
        committed: u64,
    },
    /// Signing failed (the text was not signable).
    #[error("signing checkpoint: {0}")]
    Sign(CheckpointError),
    /// An index column family was asked of a log opened without its index
    /// database ([`crate::Log::open`] rather than [`crate::Log::open_with`]).
    #[error("index column family {0} asked of a log opened without indexes")]
    NoIndexes(String),
    /// Indexes rebuilt beside the ones in use were not put in their place
    /// ([`crate::Log::replace_indexes`]): retention or an erasure changed
    /// the indexes meanwhile, or a call kept the old ones in use. Nothing
    /// changed; the rebuild can be run again.
    #[error("the indexes rebuilt beside the ones in use were not put in place: {0}")]
    RebuildNotPlaced(String),
    /// The entry of a leaf below the log's retention horizon: its bytes
    /// were removed ([`crate::Log::prune`]); its hash is still in the tree.
    #[error("leaf {index} was removed by the log's retention: entries below leaf {first_kept} are kept only as their hashes")]
    Pruned {
        /// The leaf asked for.
        index: u64,
        /// The first leaf whose entry is kept.
        first_kept: u64,
    },
    /// The entry of a leaf erased inside the retention window
    /// ([`crate::Log::erase_entry`]): its hash is still in the tree, and
    /// the record at leaf `by` says who asked for the erasure and why.
    #[error("leaf {index}'s entry was erased: its hash stays in the tree; the erasure record {erasure} (leaf {by}) says who asked for it and why")]
    Erased {
        /// The leaf asked for.
        index: u64,
        /// The leaf of the erasure record.
        by: u64,
        /// The erasure record's `decision_id`.
        erasure: String,
    },
    /// Leaf hashes without entries appended where they cannot be: after a
    /// kept leaf, or not in whole entry bundles ([`crate::Log::append_pruned`]).
    #[error("{leaves} leaf hashes without entries cannot be appended at size {size} (first kept leaf {first_kept}): only to a log whose every leaf is pruned, in whole bundles of 256")]
    PrunedAppend {
        /// The tree size.
        size: u64,
        /// The first kept leaf.
        first_kept: u64,
        /// The hashes given.
        leaves: u64,
    },
    /// An export window that starts at or before the oldest kept leaf's
    /// time, in a log whose retention record naming that leaf is not in
    /// the export's checkpoint: the leaf before it, which would show that
    /// no earlier leaf belongs to the window, was removed by retention.
    #[error("the window starts at {from}, not after the oldest decision the log keeps (leaf {first_kept}, received at {oldest}), and {}", retention_record_state(*.record, *.size))]
    WindowPruned {
        /// The window's start.
        from: String,
        /// The first leaf whose entry is kept.
        first_kept: u64,
        /// When it was received.
        oldest: String,
        /// The leaf of the ledger's retention record naming it, if logged.
        record: Option<u64>,
        /// The size of the export's checkpoint.
        size: u64,
    },
    /// An export pinned to a checkpoint older than an erasure of a leaf in
    /// its range: the package could not include that erasure's record.
    #[error("leaf {index}, in the window or just outside it, was erased by the record at leaf {by}, after the checkpoint of size {size}: export against a checkpoint of size above {by}")]
    ErasedAfter {
        /// The erased leaf.
        index: u64,
        /// The erasure record's leaf.
        by: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The legal holds could not be read, so nothing is pruned
    /// ([`crate::holds`]).
    #[error("legal holds: {0}")]
    Holds(#[from] crate::holds::HoldError),
}

/// Why [`LedgerError::WindowPruned`] cannot stand on the retention record.
fn retention_record_state(record: Option<u64>, size: u64) -> String {
    match record {
        Some(by) => format!(
            "the ledger's retention record naming it (leaf {by}) is not in the checkpoint of size {size} yet: export again in a moment"
        ),
        None => "no retention record of the ledger names it yet (ledgerd logs one at its next retention pass, ledgerctl prune at its next run): older entries were removed, so the window cannot be shown complete; export again then, or start the window after that time".into(),
    }
}

/// Which of a data dir's stores a damaged file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The log's databases (`db/`, `db/checkpoints/`): entries, hash
    /// tiles, signed checkpoints. Only a copy can bring them back.
    Log,
    /// The responder indexes and the `decision_id` map (`db/index/`):
    /// derived from the leaves, so rebuilt from them.
    Indexes,
}

/// What a damaged store means, and what to do.
fn damaged(store: Store, source: &rocksdb::Error) -> String {
    match store {
        Store::Log => format!(
            "the log's store is damaged ({source}); it cannot be rebuilt from itself: \
             restore it from a mirror into a new data dir, `ledgerctl --data <new dir> restore \
             --mirror <mirror>` (docs/operations.md, \"When the store is damaged\")"
        ),
        Store::Indexes => format!(
            "the indexes (db/index) are damaged ({source}); they hold only what the log's \
             leaves say, and are rebuilt from them: a running ledgerd does it beside the ones \
             in use (ledger_indexes_rebuilding), any open of the store does it first, and on \
             a stopped store `ledgerctl --data <dir> reindex` does it \
             (docs/operations.md, \"When the store is damaged\")"
        ),
    }
}

/// Damaged data RocksDB has reported since the process started, in any
/// store (`ledger_storage_damaged_total`).
static DAMAGE_SEEN: AtomicU64 = AtomicU64::new(0);

/// How many times RocksDB has reported damaged data (of any store) since
/// the process started: each [`LedgerError::Damaged`] made counts once, and
/// so does each open that rebuilds indexes marked damaged before.
pub fn damage_seen() -> u64 {
    DAMAGE_SEEN.load(Ordering::Relaxed)
}

/// Counts damage found before, in [`damage_seen`].
pub(crate) fn count_damage() {
    DAMAGE_SEEN.fetch_add(1, Ordering::Relaxed);
}

impl From<rocksdb::Error> for LedgerError {
    /// A RocksDB error of the log's databases: [`LedgerError::Damaged`]
    /// when it found damaged data, [`LedgerError::InUse`] when another
    /// process holds the database, [`LedgerError::Storage`] otherwise.
    fn from(e: rocksdb::Error) -> LedgerError {
        if e.kind() == rocksdb::ErrorKind::IOError && held_by_another(e.as_ref()) {
            LedgerError::InUse(e)
        } else if e.kind() == rocksdb::ErrorKind::Corruption {
            count_damage();
            LedgerError::Damaged {
                store: Store::Log,
                source: e,
            }
        } else {
            LedgerError::Storage(e)
        }
    }
}

/// Whether a RocksDB I/O error says its database's `LOCK` file is held:
/// by another process (`While lock file: …/LOCK: Resource temporarily
/// unavailable`) or by this one (`lock hold by current process …`).
fn held_by_another(message: &str) -> bool {
    message.contains("LOCK")
        && (message.contains("While lock file") || message.contains("lock hold by current process"))
}

/// A RocksDB error of the index database (`db/index/`): as `From`, with
/// damage said of [`Store::Indexes`].
pub(crate) fn in_indexes(e: rocksdb::Error) -> LedgerError {
    match LedgerError::from(e) {
        LedgerError::Damaged { source, .. } => LedgerError::Damaged {
            store: Store::Indexes,
            source,
        },
        other => other,
    }
}
