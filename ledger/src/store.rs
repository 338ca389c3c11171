//! The RocksDB layout (specs/storage.md).
//!
//! | column family | key | value |
//! |---|---|---|
//! | `entries` | first leaf index of a chunk, u64 big-endian | up to 16 consecutive entries of one append, each as u16 BE length ‖ bytes (the entry-bundle encoding); chunks never cross a multiple of 16 |
//! | `tiles` | tile level u8 ‖ tile index u64 big-endian | the hashes of tree level 8·L, nodes 256·N.., 32 bytes each (a tlog-tiles hash tile; the right-edge one partial) |
//! | `checkpoints` | tree size, u64 big-endian | signed checkpoint note |
//! | `meta` | `size` / `origin` | u64 big-endian / UTF-8 |
//!
//! One append is one WriteBatch (entries, the hash tiles it changed, new size)
//! written with the WAL synced. Big-endian keys keep RocksDB's order equal to
//! log order. Nodes between tile levels are computed from the tile below.

use std::path::Path;

use rocksdb::{BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, Options, DB};
use verifier::tile::{node_from_tile, tile_of};
use verifier::tree::{HashReader, NodeId};
use verifier::Hash;

use crate::LedgerError;

pub(crate) const CF_ENTRIES: &str = "entries";
pub(crate) const CF_TILES: &str = "tiles";
pub(crate) const CF_CHECKPOINTS: &str = "checkpoints";
pub(crate) const CF_META: &str = "meta";
/// Entries per stored chunk at most; chunks start at a multiple of it unless
/// an append starts inside one.
pub(crate) const CHUNK: u64 = 16;
/// Bytes a file is written back in (RocksDB's `bytes_per_sync`), for the
/// store's flushes and compactions and for the index files built for
/// [`crate::Log::ingest_sorted`].
const WRITE_BACK_STEP: u64 = 256 << 10;
/// WAL bytes kept at most (about three `entries` memtables).
const MAX_TOTAL_WAL: u64 = 192 << 20;
pub(crate) const META_SIZE: &[u8] = b"size";
pub(crate) const META_ORIGIN: &[u8] = b"origin";

/// Column families every ledger store has; later layers add theirs.
pub(crate) const BASE_CFS: [&str; 4] = [CF_ENTRIES, CF_TILES, CF_CHECKPOINTS, CF_META];

/// Column families of earlier layouts, dropped when a store is opened:
/// what they held can be had from the rest (the index log of sessions 1-5:
/// from the leaves).
const RETIRED_CFS: [&str; 1] = ["ilog"];

pub(crate) fn open_db(path: &Path, extra_cfs: &[&str]) -> Result<DB, LedgerError> {
    let opts = db_options()?;
    // A column family that exists must be opened; absent store: none.
    let existing = DB::list_cf(&opts, path).unwrap_or_default();
    let retired: Vec<&str> = RETIRED_CFS
        .into_iter()
        .filter(|name| existing.iter().any(|e| e == name))
        .collect();
    let cfs = BASE_CFS
        .iter()
        .chain(extra_cfs)
        .chain(&retired)
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options()));
    let mut db = DB::open_cf_descriptors(&opts, path, cfs)?;
    for name in retired {
        db.drop_cf(name)?;
    }
    Ok(db)
}

/// The database-wide RocksDB options a ledger store is opened with (public
/// so that benchmarks can give raw RocksDB the same ones).
pub fn db_options() -> Result<Options, LedgerError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.increase_parallelism(2);
    // One writer thread commits every batch, so the lock-free (CAS) memtable
    // insert path only costs time.
    opts.set_allow_concurrent_memtable_write(false);
    // Compactions yield the CPU to appends and their acknowledgements (their
    // pool runs at the lowest priority); flushes keep the normal one, so
    // memtables never pile up into a write stall.
    let mut env = rocksdb::Env::new()?;
    env.lower_thread_pool_cpu_priority();
    opts.set_env(&env);
    // Flushes and compactions write their files back in small steps (256
    // KiB) and at most 128 MiB/s, granted every 10 ms: the synced WAL
    // writes of appends then never queue behind tens of megabytes of SST
    // data. Paced synced writes at ~57k records/s had p99 86-159 ms with
    // 1 MiB steps and no limit, 6-21 ms in most runs with these
    // (`ledgerctl paced-sync`, docs/performance.md, session 5). At the bench's peak the memtables take ~110 MB/s, close
    // to the limit: the four memtables per column family absorb a burst,
    // and past that RocksDB slows the writes, which reaches enforcers as
    // back-off from the bounded queue.
    opts.set_bytes_per_sync(WRITE_BACK_STEP);
    opts.set_ratelimiter(128 << 20, 10_000, 10);
    // Reuse WAL files instead of deleting and creating them: a deleted file
    // frees blocks, which on a file system mounted with `discard` stalls the
    // synced writes that follow, and a new file's first syncs also write
    // its allocation (docs/performance.md, session 4).
    opts.set_recycle_log_file_num(4);
    // A WAL file can be reused only once every column family with data in
    // it has flushed; `tiles` and `meta` take ~40 bytes per record and
    // would hold old WAL files for millions of records, so each `entries`
    // memtable would get a new, unwritten file, whose every synced write
    // also commits the file system's journal. Past this total, RocksDB
    // flushes the column families holding the oldest WAL file, which is
    // then reused. It also bounds the WAL replayed after a crash.
    opts.set_max_total_wal_size(MAX_TOTAL_WAL);
    Ok(opts)
}

/// Options of every column family, and of the SST files built for
/// [`crate::Log::ingest_sorted`]: a bloom filter makes point lookups of
/// absent keys (a new `decision_id`) cheap.
pub(crate) fn cf_options() -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    // Room for two memtables waiting to be flushed, so a slow flush on a
    // busy machine does not stall appends.
    opts.set_max_write_buffer_number(4);
    opts.set_bytes_per_sync(WRITE_BACK_STEP);
    opts
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, LedgerError> {
    db.cf_handle(name)
        .ok_or_else(|| LedgerError::Corrupt(format!("column family {name} is missing")))
}

pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn tile_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, LedgerError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| LedgerError::Corrupt(format!("{what} is not 8 bytes")))
}

/// Reads node hashes from the stored hash tiles (`verifier::tile::tile_of`).
pub(crate) struct DbReader<'a> {
    pub(crate) db: &'a DB,
    pub(crate) tiles: &'a ColumnFamily,
}

impl DbReader<'_> {
    /// The stored bytes of one hash tile (empty if absent).
    pub(crate) fn tile(&self, level: u8, index: u64) -> Result<Vec<u8>, LedgerError> {
        Ok(self
            .db
            .get_cf(self.tiles, tile_key(level, index))?
            .unwrap_or_default())
    }
}

impl HashReader for DbReader<'_> {
    type Error = LedgerError;
    fn node(&self, id: NodeId) -> Result<Hash, LedgerError> {
        let missing = || {
            LedgerError::Corrupt(format!(
                "node level {} index {} is missing or malformed",
                id.level, id.index
            ))
        };
        let (level, index) = tile_of(id).ok_or_else(missing)?;
        let tile = self
            .db
            .get_pinned_cf(self.tiles, tile_key(level, index))?
            .ok_or_else(missing)?;
        node_from_tile(&tile, id).ok_or_else(missing)
    }
}
