//! One memory budget for `ledgerd` (`--memory-budget`), split between what
//! grows with load:
//!
//! | part | share | at 512 MiB |
//! |---|---|---|
//! | span indexes: leaves acknowledged but not yet in the built indexes, spare spans paged in ahead, and the span a rebuild beside holds | 2/5 | 4 spans of ~48 MiB: 3 unbuilt (2 while a rebuild holds one no spare gave it), 1 spare |
//! | RocksDB memtables, every database | 1/16 | 32 MiB |
//! | RocksDB block cache, shared: data blocks, and the index and bloom filter blocks of every SST file (partitioned) | 1/8 | 64 MiB |
//! | the rest: requests in flight, the allocators' free lists, the process itself | 7/16 | |
//!
//! RocksDB's index and bloom filter blocks are kept in the block cache
//! (partitioned, the top level of each file pinned), so they are inside it
//! rather than growing with the log.

use ledger::RocksLimits;

/// Memory one span's index takes when full, about (leaves, decisions,
/// terms and their spellings of [`crate::index::SPAN`] records): under
/// full load, ledgerd's RSS moves by ~45 MiB per unbuilt span
/// (docs/performance.md, "Memory").
pub const SPAN_MEMORY: usize = 48 << 20;

/// The smallest budget accepted.
pub const MIN_BUDGET: usize = 192 << 20;

/// The default budget.
pub const DEFAULT_BUDGET: usize = 512 << 20;

/// A budget split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// RocksDB's memtables and block cache.
    pub rocks: RocksLimits,
    /// Span indexes kept paged in ahead of use.
    pub spares: usize,
    /// Leaves held unbuilt at most ([`crate::PipelineConfig::max_unbuilt`]).
    pub max_unbuilt: u64,
}

impl Budget {
    /// Splits `bytes` (at least [`MIN_BUDGET`]).
    pub fn split(bytes: usize) -> Budget {
        let bytes = bytes.max(MIN_BUDGET);
        let spans = (bytes * 2 / 5 / SPAN_MEMORY).max(3);
        let spares = (spans / 4).clamp(1, 3);
        Budget {
            rocks: RocksLimits {
                memtables: bytes / 16,
                block_cache: bytes / 8,
            },
            spares,
            max_unbuilt: (spans - spares) as u64 * crate::index::SPAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_keeps_todays_defaults() {
        let b = Budget::split(DEFAULT_BUDGET);
        assert_eq!(b.rocks, RocksLimits::default());
        assert_eq!(b.max_unbuilt, crate::PipelineConfig::default().max_unbuilt);
        assert_eq!(b.spares, crate::index::indexes::SPARES);
    }

    #[test]
    fn parts_stay_within_the_budget_and_grow_with_it() {
        let mut last = Budget::split(MIN_BUDGET);
        for mb in [192usize, 256, 512, 1024, 4096] {
            let bytes = mb << 20;
            let b = Budget::split(bytes);
            let spans = b.spares + (b.max_unbuilt / crate::index::SPAN) as usize;
            let parts = spans * SPAN_MEMORY + b.rocks.memtables + b.rocks.block_cache;
            assert!(parts <= bytes * 3 / 4 || mb == 192, "{mb} MiB: {parts}");
            assert!(b.max_unbuilt >= last.max_unbuilt);
            last = b;
        }
    }
}
