//! The RocksDB layout (specs/storage.md).
//!
//! The log's database keeps everything in RocksDB's default column family,
//! keyed by position in the log, so that every write lands at the end of
//! the key space and is never rewritten:
//!
//! | key | value |
//! |---|---|
//! | `p` ‖ P (u64 BE) ‖ `0xff` | the chunk of entries from leaf P: up to 16 consecutive entries of one append, each as u16 BE length ‖ bytes (the entry-bundle encoding); chunks never cross a multiple of 16 |
//! | `p` ‖ E (u64 BE) ‖ L | the full hash tile of level L that ends at leaf E: the 256 hashes of tree level 8·L, nodes 256·N … 256·N+255 where E = (N+1)·256^(L+1), 32 bytes each |
//! | `a` ‖ `origin` / `layout` | UTF-8 / u64 BE (2) |
//! | `a` ‖ `pruned` | u64 BE: the first leaf whose entry is kept (`retention.rs`) |
//! | `a` ‖ `retained` | u64 BE ‖ u64 BE: the first kept leaf and the leaf of the ledger's retention record naming it (`retention.rs`) |
//!
//! One append is one WriteBatch (its entry chunks and the hash tiles it
//! filled) written with the WAL synced. The tree size is where the last
//! chunk ends, and the partial right-edge tile of each level is computed
//! from the entries and full tiles below it when the log is opened, then
//! kept in memory (`edge.rs`). Nodes between tile levels are computed from
//! the tile below. Signed checkpoints live in a database of their own
//! (`checkpoints/` in the log's directory), and index column families
//! built on the log in another (`index/`, `families.rs`).
//!
//! Why: keys written in one place are flushed into files that lie beside
//! the older ones, which RocksDB moves down the levels without rewriting
//! them. Layout 1 (`layout.rs` converts it on open) had a column family per
//! kind of record, and rewrote the partial tiles and the size on every
//! append. When a database with more than one column family flushes a
//! memtable, RocksDB first syncs the WAL files written before it and,
//! since it reuses WAL files, closes them, which truncates each to its
//! length; on a file system mounted with `discard` that truncate took
//! 11-20 ms, and every synced write waited for it. Raw RocksDB paced at
//! 150 k records/s, 64 per synced write, had p99 1.6-3.3 ms with one column
//! family and 35-131 ms with a second one written beside it. In one column
//! family, keys rewritten at the end of the key space made every flushed
//! file overlap all the tiles before it, and each compaction rewrote the
//! whole log.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rocksdb::{BlockBasedOptions, ColumnFamily, DBCompressionType, Options, ReadOptions, DB};
use verifier::tile::decode_bundle;

use crate::LedgerError;

/// Key prefix of the records kept by position (entry chunks, full tiles).
pub(crate) const POSITION: u8 = b'p';
/// Kind byte of an entry chunk's key; a level-L hash tile's is L. Where a
/// tile ends and a chunk starts at the same leaf, the tile was written
/// first (by the append that wrote the leaf before), so it sorts first:
/// then each flushed file starts past the last key of the one before, and
/// RocksDB moves it down the levels without merging (with the chunk first,
/// such files overlapped by one key and were compacted).
pub(crate) const CHUNK_KIND: u8 = 0xff;
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
/// WAL bytes kept at most (about three memtables).
const MAX_TOTAL_WAL: u64 = 192 << 20;
pub(crate) const META_ORIGIN: &[u8] = b"aorigin";
/// The store's layout: [`LAYOUT`], written when a store is created or
/// converted from layout 1.
pub(crate) const META_LAYOUT: &[u8] = b"alayout";
/// The layout this code writes.
pub(crate) const LAYOUT: u64 = 2;
/// The directory, inside the log's, of the database of signed checkpoints.
pub(crate) const CHECKPOINTS_DIR: &str = "checkpoints";

/// The directory, inside the log's, of the second RocksDB database that
/// holds the column families of indexes built on the log.
pub(crate) const INDEX_DIR: &str = "index";

/// The index database's directory in the log's directory `db` (what
/// [`Log::open_with`](crate::Log::open_with) opens beside the log). It
/// is derived from the leaves: deleted, it is built again on open.
pub fn index_dir(db: &Path) -> std::path::PathBuf {
    db.join(INDEX_DIR)
}

/// Opens the database of signed checkpoints in `path`.
pub(crate) fn open_checkpoints_db(path: &Path) -> Result<DB, LedgerError> {
    Ok(DB::open(&checkpoints_options()?, path)?)
}

/// Drops the column families `names` of an earlier layout from `db` (at
/// `path`): what they held is elsewhere or can be had from the leaves.
pub(crate) fn drop_retired(db: &mut DB, path: &Path, names: &[String]) -> Result<(), LedgerError> {
    for name in names {
        tracing::info!("dropping column family {name} of an earlier layout in {path:?}");
        db.drop_cf(name)?;
    }
    Ok(())
}

/// The column families of the store at `path` other than `default` and
/// `known` (none for a store not yet created): RocksDB opens a store only
/// with every column family it has.
pub(crate) fn other_cfs(opts: &Options, path: &Path, known: &[&str]) -> Vec<String> {
    DB::list_cf(opts, path)
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name != "default" && !known.contains(&name.as_str()))
        .collect()
}

/// The database-wide RocksDB options a ledger store is opened with (public
/// so that benchmarks can give raw RocksDB the same ones).
pub fn db_options() -> Result<Options, LedgerError> {
    // No file is preallocated. RocksDB reserves an SST file's expected
    // size (e.g. 70 MB for a 9 MB flush output) and frees the rest when
    // the file is closed; on a file system mounted with `discard`, that
    // free is a discard of tens of megabytes, which the next synced WAL
    // writes wait behind. WAL files are reused (below), so they are
    // already allocated.
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
    // (`ledgerctl paced-sync`). At the bench's peak the memtables take
    // ~110 MB/s, close to the limit: the four memtables per column family
    // absorb a burst, and past that RocksDB slows the writes, which reaches
    // enforcers as back-off from the bounded queue.
    opts.set_bytes_per_sync(WRITE_BACK_STEP);
    opts.set_ratelimiter(BACKGROUND_WRITE_RATE as i64, 10_000, 10);
    // Reuse WAL files instead of deleting and creating them: a deleted file
    // frees blocks, which on a file system mounted with `discard` stalls the
    // synced writes that follow, and a new file's first syncs also write
    // its allocation.
    opts.set_recycle_log_file_num(4);
    // A WAL file is reused once the memtable it holds is flushed. Past
    // this total (flushes fallen behind), RocksDB flushes at once; it
    // bounds the WAL replayed after a crash. (With a column family per
    // kind of record, layout 1, it also made the small ones flush, so
    // that they did not hold old WAL files for millions of records.)
    opts.set_max_total_wal_size(MAX_TOTAL_WAL);
    // Memtables of every database count against one limit
    // (crate::memory::RocksLimits).
    opts.set_write_buffer_manager(&crate::memory::shared().write_buffers);
    Ok(opts)
}

/// Bloom filter bits per key in the log's and the checkpoints' databases.
const FILTER_BITS: f64 = 10.0;
/// Bloom filter bits per key in the index database. Nearly every lookup
/// there is of an absent key (a new `decision_id`, asked at submission)
/// and passes through every file of the level-0 pile and each level: at
/// 10 bits (~1% false positives per file) a 64-record request read about
/// three data blocks, from disk when their file was just ingested, and a
/// request stalled on such a read now and then; 20 bits (~0.02%) cost 2.5
/// bytes of memory per indexed key.
pub(crate) const INDEX_FILTER_BITS: f64 = 20.0;

/// Options of the log's column family: LZ4-compressed SST files. Decision
/// records repeat their field names and most of their values, and the
/// leaves are written twice (WAL, then a flush): a compressed flush writes
/// a fraction of the bytes, so it competes less with the synced WAL writes
/// of appends, and the store takes less disk (docs/performance.md). The
/// WAL itself is not compressed. Hash tiles (SHA-256 output) do
/// not compress; RocksDB keeps such blocks as they are.
pub(crate) fn log_options() -> Options {
    let mut opts = table_options(FILTER_BITS);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts
}

/// The options of the checkpoints' database: [`db_options`] and
/// [`log_options`].
fn checkpoints_options() -> Result<Options, LedgerError> {
    let mut opts = db_options()?;
    opts.set_compression_type(DBCompressionType::Lz4);
    set_bloom_filter(&mut opts, FILTER_BITS);
    Ok(opts)
}

/// Options of a column family, and of the SST files built for it by
/// [`crate::Log::ingest_sorted`]: a bloom filter (`filter_bits` per key)
/// makes point lookups of absent keys cheap.
pub(crate) fn table_options(filter_bits: f64) -> Options {
    let mut opts = Options::default();
    table_options_on(&mut opts, filter_bits);
    opts
}

/// Sets what [`table_options`] sets on `opts`.
pub(crate) fn table_options_on(opts: &mut Options, filter_bits: f64) {
    set_bloom_filter(opts, filter_bits);
    // Room for memtables waiting to be flushed, so a slow flush on a busy
    // machine does not stall appends; each half of the memtable limit, so
    // that one is flushed while the next fills.
    opts.set_max_write_buffer_number(4);
    opts.set_write_buffer_size(crate::memory::shared().limits.memtables / 2);
    opts.set_bytes_per_sync(WRITE_BACK_STEP);
}

/// A bloom filter of `bits` per key in the SST files.
fn set_bloom_filter(opts: &mut Options, bits: f64) {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(bits, false);
    table.set_block_cache(&crate::memory::shared().cache);
    // Index and filter blocks live in the block cache too, partitioned,
    // so that what they take in memory is bounded by the cache instead of
    // growing with the log (~13 MiB per 10^6 decisions when each open file
    // kept its own): only the top level of each file's index and filter,
    // and level 0's blocks, stay pinned; partitions are read as lookups
    // need them.
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_metadata_block_size(4096);
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    opts.set_block_based_table_factory(&table);
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, LedgerError> {
    db.cf_handle(name)
        .ok_or_else(|| LedgerError::Corrupt(format!("column family {name} is missing")))
}

/// The key of the entry chunk that starts at leaf `first`.
pub(crate) fn chunk_key(first: u64) -> [u8; 10] {
    position_key(first, CHUNK_KIND)
}

/// The key of the full hash tile `index` of tile level `level`; `None` if
/// the leaf it ends at is past the u64 range (no tree gets there).
pub(crate) fn tile_key(level: u8, index: u64) -> Option<[u8; 10]> {
    let leaves = 1u64.checked_shl(8 * (u32::from(level) + 1))?;
    let end = index.checked_add(1)?.checked_mul(leaves)?;
    (level < CHUNK_KIND).then(|| position_key(end, level))
}

fn position_key(position: u64, kind: u8) -> [u8; 10] {
    let mut k = [POSITION; 10];
    k[1..9].copy_from_slice(&position.to_be_bytes());
    k[9] = kind;
    k
}

/// The position and kind of a key of [`POSITION`].
pub(crate) fn decode_position(key: &[u8]) -> Result<(u64, u8), LedgerError> {
    match key {
        [POSITION, position @ .., kind] if position.len() == 8 => {
            Ok((decode_u64(position, "key position")?, *kind))
        }
        _ => Err(LedgerError::Corrupt(format!(
            "key {key:02x?} is not a log position"
        ))),
    }
}

/// Read options of an iterator over the records kept by position only.
pub(crate) fn position_reads() -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(vec![POSITION]);
    ro.set_iterate_upper_bound(vec![POSITION + 1]);
    ro
}

/// The tree size: where the last entry chunk ends (0 if there is none).
pub(crate) fn stored_size(db: &DB) -> Result<u64, LedgerError> {
    let mut iter = db.raw_iterator_opt(position_reads());
    iter.seek_to_last();
    // Past the last chunk there are at most the tiles its append filled.
    while let Some(key) = iter.key() {
        let (position, kind) = decode_position(key)?;
        if kind == CHUNK_KIND {
            let chunk = iter.value().unwrap_or_default();
            let entries = decode_bundle(chunk)
                .map_err(|e| LedgerError::Corrupt(format!("entry chunk at {position}: {e}")))?;
            return position.checked_add(entries.len() as u64).ok_or_else(|| {
                LedgerError::Corrupt(format!("entry chunk at {position} ends past u64"))
            });
        }
        iter.prev();
    }
    iter.status()?;
    Ok(0)
}

/// How long a scan of the entries reads through one view of the log's
/// database before it takes the current one ([`scan_entries`]). An
/// iterator holds every memtable that existed when it was made until it is
/// dropped or refreshed, flushed or not: a scan of a whole span by a
/// rebuild beside full-rate ingest (over a second) held up to four flushed
/// 16 MiB memtables besides the four live ones, 137 MB of memtables at the
/// peak against 70 MB without the scan (heaptrack).
const ITERATOR_REFRESH: Duration = Duration::from_millis(50);

/// Calls `f(index, entry)` for every entry in `from..to` (`from < to`, all
/// stored), in order, in one scan of the stored chunks from the one holding
/// `from`. An entry missing below `first_kept` (read again when one is
/// found missing: a prune may have begun after the caller looked) is
/// [`LedgerError::Pruned`], any other [`LedgerError::Corrupt`].
pub(crate) fn scan_entries<E: From<LedgerError>>(
    db: &DB,
    from: u64,
    to: u64,
    first_kept: Option<&AtomicU64>,
    f: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    scan_entries_with(db, from, to, first_kept, ITERATOR_REFRESH, f)
}

/// [`scan_entries`], taking a new view every `refresh`.
fn scan_entries_with<E: From<LedgerError>>(
    db: &DB,
    from: u64,
    to: u64,
    first_kept: Option<&AtomicU64>,
    refresh: Duration,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let missing = |i: u64| match first_kept.map(|k| k.load(Ordering::Acquire)) {
        Some(first_kept) if i < first_kept => LedgerError::Pruned {
            index: i,
            first_kept,
        },
        _ => LedgerError::Corrupt(format!("entry {i} is missing")),
    };
    let mut iter = db.raw_iterator_opt(position_reads());
    seek_chunk(&mut iter, from)?;
    let mut next = from;
    let mut since = Instant::now();
    while next < to {
        if since.elapsed() >= refresh {
            iter.refresh().map_err(LedgerError::from)?;
            seek_chunk(&mut iter, next)?;
            since = Instant::now();
        }
        let (Some(key), Some(chunk)) = (iter.key(), iter.value()) else {
            iter.status().map_err(LedgerError::from)?;
            return Err(missing(next).into());
        };
        let (at, kind) = decode_position(key)?;
        if kind != CHUNK_KIND {
            iter.next();
            continue;
        }
        let entries = decode_bundle(chunk).map_err(|_| missing(next))?;
        if at > next || at + entries.len() as u64 <= next {
            return Err(missing(next).into());
        }
        for (i, e) in (at..).zip(entries) {
            if i >= next && i < to {
                f(i, e)?;
                next = i + 1;
            }
        }
        iter.next();
    }
    Ok(())
}

/// Puts `iter` (over [`position_reads`]) on the chunk that holds leaf
/// `index` if it is stored: the one with the greatest key at or below it
/// (tiles that end at `index` or before lie between).
pub(crate) fn seek_chunk(
    iter: &mut rocksdb::DBRawIterator<'_>,
    index: u64,
) -> Result<(), LedgerError> {
    iter.seek_for_prev(chunk_key(index));
    while let Some(key) = iter.key() {
        if decode_position(key)?.1 == CHUNK_KIND {
            break;
        }
        iter.prev();
    }
    Ok(())
}

pub(crate) fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, LedgerError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| LedgerError::Corrupt(format!("{what} is not 8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Log;

    #[test]
    fn a_scan_taking_a_new_view_before_each_chunk_reads_every_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = verifier::SignerKey::from_seed("scan.example/log", &[1; 32]).unwrap();
        let log = Log::open(dir.path(), &key.verifier()).unwrap();
        // Appends of odd sizes, so that chunks start off multiples of 16;
        // the first ones flushed, the others in the memtable.
        let mut n = 0u64;
        for (i, len) in [5u64, 40, 3, 17, 60].into_iter().enumerate() {
            let entries: Vec<[u8; 8]> = (n..n + len).map(u64::to_be_bytes).collect();
            log.append(&entries).unwrap();
            n += len;
            if i == 2 {
                log.flush().unwrap();
            }
        }
        for (from, to) in [(0, n), (7, n - 3), (21, 22), (47, 49)] {
            let mut seen = Vec::new();
            scan_entries_with(&log.db, from, to, None, Duration::ZERO, |i, e| {
                seen.push((i, e.to_vec()));
                Ok::<(), LedgerError>(())
            })
            .unwrap();
            let want: Vec<_> = (from..to).map(|j| (j, j.to_be_bytes().to_vec())).collect();
            assert_eq!(seen, want, "{from}..{to}");
        }
    }
}
