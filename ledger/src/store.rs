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
//! Index column families built on the log live in a second database, in
//! `index/` inside the log's directory ([`open_index_db`]).

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBCompactionStyle, DBCompressionType,
    Options, DB,
};
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
/// store's flushes and compactions. (The index files built for
/// [`crate::Log::ingest_sorted`] are written by RocksDB's `SstFileWriter`,
/// which starts the write-back of each MiB it writes: see `bulk.rs`.)
const WRITE_BACK_STEP: u64 = 256 << 10;
/// Bytes per second that background writes may reach the disk at: each
/// database's flushes and compactions (RocksDB's rate limiter), and the
/// index files of span builds (paced in `bulk.rs`).
pub(crate) const BACKGROUND_WRITE_RATE: u64 = 128 << 20;
/// WAL bytes kept at most (about three `entries` memtables).
const MAX_TOTAL_WAL: u64 = 192 << 20;
pub(crate) const META_SIZE: &[u8] = b"size";
pub(crate) const META_ORIGIN: &[u8] = b"origin";

/// Column families every ledger store has.
pub(crate) const BASE_CFS: [&str; 4] = [CF_ENTRIES, CF_TILES, CF_CHECKPOINTS, CF_META];

/// The directory, inside the log's, of the second RocksDB database that
/// holds the column families of indexes built on the log.
pub(crate) const INDEX_DIR: &str = "index";

/// Opens the log's database. Column families other than [`BASE_CFS`] are
/// dropped: they are from earlier layouts and what they held can be had
/// from the leaves (the index log of sessions 1-5, and index column
/// families kept beside the log before they got their own database).
pub(crate) fn open_db(path: &Path) -> Result<DB, LedgerError> {
    open_dropping_retired(path, &BASE_CFS, |name| cf_options(name, FILTER_BITS))
}

/// Opens the index database in `path` with the column families `cfs`.
/// Its own database, so that ingesting a built span and compacting the
/// indexes never hold the log's writes: RocksDB stops a database's writes
/// while it commits an ingested file, and its compactions share the
/// database's MANIFEST and mutex with the appends (docs/performance.md,
/// session 7). It is written only by ingesting files, so it has no WAL
/// traffic; everything in it can be rebuilt from the leaves. Column
/// families other than `cfs` are from earlier layouts and are dropped.
pub(crate) fn open_index_db(path: &Path, cfs: &[&str]) -> Result<DB, LedgerError> {
    open_dropping_retired(path, cfs, index_cf_options)
}

/// Opens the database at `path` with the column families `cfs` (each
/// with `cf_opts(name)`), and drops every other one it has: RocksDB opens a
/// store only with all its column families, and those not asked for are of
/// an earlier layout, their contents derived from the leaves.
fn open_dropping_retired(
    path: &Path,
    cfs: &[&str],
    cf_opts: impl Fn(&str) -> Options,
) -> Result<DB, LedgerError> {
    let opts = db_options()?;
    let retired = other_cfs(&opts, path, cfs);
    let descriptors = cfs
        .iter()
        .copied()
        .chain(retired.iter().map(String::as_str))
        .map(|name| ColumnFamilyDescriptor::new(name, cf_opts(name)));
    let mut db = DB::open_cf_descriptors(&opts, path, descriptors)?;
    for name in &retired {
        tracing::info!("dropping column family {name} of an earlier layout in {path:?}");
        db.drop_cf(name)?;
    }
    Ok(db)
}

/// The column families of the store at `path` other than `default` and
/// `known` (none for a store not yet created): RocksDB opens a store only
/// with every column family it has.
fn other_cfs(opts: &Options, path: &Path, known: &[&str]) -> Vec<String> {
    DB::list_cf(opts, path)
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name != "default" && !known.contains(&name.as_str()))
        .collect()
}

/// Options of an index column family: universal compaction. A column
/// family whose spans' files each cover the whole key range (ingest's
/// `decisions`: `decision_id`s are spread evenly) has them merged by
/// compactions; one whose files lie beside each other (ingest's
/// `span_postings`, keyed by span first) has them added to the last level
/// and never merged. For the first kind, under leveled compaction each level-0
/// compaction merged with the whole level below, which with RocksDB's 256
/// MB level base was the whole index until it reached millions of records:
/// 1.5-3.3 s of CPU per compaction at 1.5-3 M records, once every four
/// spans. Universal compaction merges sorted runs of similar size, so a
/// record is rewritten about log2(runs) times: over a 3 M-record bench the
/// index compactions took 11.7 s of CPU, against 21.2 s leveled (16.0 s with
/// a 32 MB level base) (docs/performance.md, session 7). Letting eight
/// spans' files pile up before they are merged (not RocksDB's four) took
/// that to 7.3 s. Lookups check each run's filter; there are about a dozen
/// at most.
pub(crate) fn index_cf_options(name: &str) -> Options {
    let mut opts = cf_options(name, INDEX_FILTER_BITS);
    opts.set_compaction_style(DBCompactionStyle::Universal);
    opts.set_level_zero_file_num_compaction_trigger(INDEX_RUNS_BEFORE_MERGE);
    opts.set_num_levels(i32::from(INDEX_LEVELS));
    // Index files are not compressed: their keys and values (ids, digests,
    // delta-coded leaf lists) compress little, and without LZ4 span builds
    // took ~11% less CPU (perf samples over a 100 k-record bench: 1,271 and
    // 1,381 against 1,428 and 1,568) and index compactions 10.6 s against
    // 11.7 s of CPU over 3 M records (docs/performance.md, session 7).
    opts.set_compression_type(DBCompressionType::None);
    opts
}

/// Levels of an index column family (RocksDB's default, set so that
/// [`crate::Log::index_sorted_runs`] reads them all).
pub(crate) const INDEX_LEVELS: u8 = 7;

/// Sorted runs (ingested spans' files, and merged runs) the index
/// database lets pile up before it merges them; RocksDB's write slowdown
/// starts at 20.
const INDEX_RUNS_BEFORE_MERGE: i32 = 8;

/// The database-wide RocksDB options a ledger store is opened with (public
/// so that benchmarks can give raw RocksDB the same ones).
pub fn db_options() -> Result<Options, LedgerError> {
    // No file is preallocated. RocksDB reserves an SST file's expected
    // size (e.g. 70 MB for a 9 MB flush output) and frees the rest when
    // the file is closed; on a file system mounted with `discard`, that
    // free is a discard of tens of megabytes, which the next synced WAL
    // writes wait behind (docs/performance.md, session 7). WAL files are
    // reused (below), so they are already allocated.
    let mut opts = Options::default().get_options_from_string("allow_fallocate=false")?;
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
    opts.set_ratelimiter(BACKGROUND_WRITE_RATE as i64, 10_000, 10);
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

/// Bloom filter bits per key in the log's column families.
const FILTER_BITS: f64 = 10.0;
/// Bloom filter bits per key in the index database. Nearly every lookup
/// there is of an absent key (a new `decision_id`, asked at submission)
/// and passes through every file of the level-0 pile and each level: at
/// 10 bits (~1% false positives per file) a 64-record request read about
/// three data blocks, from disk when their file was just ingested, and a
/// request stalled on such a read now and then; 20 bits (~0.02%) cost 2.5
/// bytes of memory per indexed key (docs/performance.md, session 7).
pub(crate) const INDEX_FILTER_BITS: f64 = 20.0;

/// Options of the column family `name`, and of the SST files built for it
/// by [`crate::Log::ingest_sorted`]: a bloom filter (`filter_bits` per key)
/// makes point lookups of absent keys cheap.
pub(crate) fn cf_options(name: &str, filter_bits: f64) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(filter_bits, false);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    // SST files are LZ4-compressed, except hash tiles (SHA-256 output does
    // not compress) and the index database's ([`index_cf_options`]).
    // Decision records repeat their field names and most of their values,
    // and the leaves are written twice (WAL, then a flush): a compressed
    // flush writes a fraction of the bytes, so it competes less with the
    // synced WAL writes of appends, and the store takes less disk
    // (docs/performance.md, session 7). The WAL itself is not compressed.
    opts.set_compression_type(if name == CF_TILES {
        DBCompressionType::None
    } else {
        DBCompressionType::Lz4
    });
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
