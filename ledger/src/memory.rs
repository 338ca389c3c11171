//! What RocksDB holds in memory for a log: memtables (written, not yet
//! flushed), table readers (the index and bloom filter blocks of every
//! open SST file) and cached data blocks, summed over the log's three
//! databases and their column families.

use rocksdb::properties::{CUR_SIZE_ALL_MEM_TABLES, ESTIMATE_TABLE_READERS_MEM};
use rocksdb::DB;

/// Bytes RocksDB holds in memory for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Memtables, active and waiting to be flushed.
    pub memtables: u64,
    /// Index and filter blocks of the open SST files.
    pub table_readers: u64,
    /// Data blocks in the block cache.
    pub block_cache: u64,
}

impl MemoryUse {
    /// Everything above.
    pub fn total(&self) -> u64 {
        self.memtables + self.table_readers + self.block_cache
    }
}

/// Adds `db`'s use to `m`: its default column family and `cfs`.
pub(crate) fn add(m: &mut MemoryUse, db: &DB, cfs: &[crate::IndexFamily]) {
    let get = |name| -> u64 {
        let default = db.property_int_value(name).ok().flatten().unwrap_or(0);
        cfs.iter()
            .filter_map(|cf| db.cf_handle(cf.name))
            .map(|h| {
                db.property_int_value_cf(&h, name)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            })
            .sum::<u64>()
            + default
    };
    m.memtables += get(CUR_SIZE_ALL_MEM_TABLES);
    m.table_readers += get(ESTIMATE_TABLE_READERS_MEM);
}

/// The shared block cache's use (one cache serves every database).
pub(crate) fn cache_use() -> u64 {
    shared().cache.get_usage() as u64
}

/// How much memory RocksDB may use for memtables and cached blocks,
/// across every log this process opens: RocksDB shares one write buffer
/// manager and one block cache between databases, so the limit is the
/// process's. Set it with [`limit`] before the first log is opened; until
/// then [`RocksLimits::default`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RocksLimits {
    /// Memtables of every column family, active and waiting to be flushed:
    /// past it RocksDB flushes the largest at once.
    pub memtables: usize,
    /// Data blocks cached for reads (proofs, lookups, exports).
    pub block_cache: usize,
}

impl Default for RocksLimits {
    /// The share of `ledgerd`'s default 512 MiB budget.
    fn default() -> Self {
        RocksLimits {
            memtables: 32 << 20,
            block_cache: 64 << 20,
        }
    }
}

/// The write buffer manager and block cache every database shares.
pub(crate) struct Shared {
    pub(crate) write_buffers: rocksdb::WriteBufferManager,
    pub(crate) cache: rocksdb::Cache,
    pub(crate) limits: RocksLimits,
}

static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();

/// Sets the process's RocksDB memory limits; `false` if they were set
/// already (by an earlier call, or by opening a log), and are kept.
pub fn limit(limits: RocksLimits) -> bool {
    let mut set = false;
    SHARED.get_or_init(|| {
        set = true;
        make(limits)
    });
    set
}

fn make(limits: RocksLimits) -> Shared {
    Shared {
        // No stall: past the limit RocksDB flushes; the ingest pipeline's
        // bounded queue is what holds writers back.
        write_buffers: rocksdb::WriteBufferManager::new_write_buffer_manager(
            limits.memtables,
            false,
        ),
        cache: rocksdb::Cache::new_lru_cache(limits.block_cache),
        limits,
    }
}

/// The shared objects, made with the default limits if none were set.
pub(crate) fn shared() -> &'static Shared {
    SHARED.get_or_init(|| make(RocksLimits::default()))
}
