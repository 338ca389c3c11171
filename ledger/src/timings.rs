//! How long the log's synced writes take, and how much of that is the
//! write-ahead log's own write and `fdatasync`.
//!
//! An acknowledgement waits for one synced write, so these are the figures
//! that bound ack latency. Splitting off the WAL part tells a slow disk
//! (the WAL write and sync are slow) from a stall inside RocksDB (the write
//! waits before it reaches the WAL: a write stall, a memtable switch, the
//! closing of older WAL files).
//!
//! The WAL part is read from RocksDB's perf context on the writing thread
//! (`write_wal_time`, which covers `WriteGroupToWAL`: the append and, for a
//! synced write, the sync).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rocksdb::perf::{PerfContext, PerfMetric, PerfStatsLevel};

/// Upper bounds of the histogram buckets, in microseconds (the last bucket,
/// above the last bound, is unbounded).
pub const BUCKET_BOUNDS_MICROS: [u64; 10] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
];

/// A histogram of durations, updated without locks.
#[derive(Debug, Default)]
struct Histogram {
    /// Counts per bucket: `buckets[i]` counts durations at most
    /// `BUCKET_BOUNDS_MICROS[i]` and above the bound before; the last counts
    /// the rest.
    buckets: [AtomicU64; BUCKET_BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

impl Histogram {
    fn record(&self, micros: u64) {
        let bucket = BUCKET_BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKET_BOUNDS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Durations {
        Durations {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            max_micros: self.max_micros.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of one histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durations {
    /// Counts per bucket (bounds in [`BUCKET_BOUNDS_MICROS`], not cumulative).
    pub buckets: [u64; BUCKET_BOUNDS_MICROS.len() + 1],
    /// The sum of the durations, microseconds.
    pub sum_micros: u64,
    /// The longest duration since the log was opened, microseconds.
    pub max_micros: u64,
}

impl Durations {
    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// How many were over `bound_micros`, which must be one of
    /// [`BUCKET_BOUNDS_MICROS`] (else `None`).
    pub fn over(&self, bound_micros: u64) -> Option<u64> {
        let i = BUCKET_BOUNDS_MICROS
            .iter()
            .position(|&b| b == bound_micros)?;
        Some(self.buckets[i + 1..].iter().sum())
    }

    /// The counts recorded since `earlier` (the maximum is kept as it is:
    /// it cannot be taken apart).
    pub fn since(&self, earlier: &Durations) -> Durations {
        Durations {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_micros: self.sum_micros.saturating_sub(earlier.sum_micros),
            max_micros: self.max_micros,
        }
    }
}

/// The synced writes' timings, as recorded by the log.
#[derive(Debug, Default)]
pub(crate) struct SyncedWrites {
    total: Histogram,
    wal: Histogram,
}

/// A snapshot of the synced-write timings: see [`crate::Log::synced_writes`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncedWriteTimings {
    /// Each synced write, from the call into RocksDB to its return.
    pub total: Durations,
    /// The part of each spent writing and syncing the write-ahead log.
    pub wal: Durations,
}

impl SyncedWriteTimings {
    /// The timings recorded since `earlier`.
    pub fn since(&self, earlier: &SyncedWriteTimings) -> SyncedWriteTimings {
        SyncedWriteTimings {
            total: self.total.since(&earlier.total),
            wal: self.wal.since(&earlier.wal),
        }
    }
}

impl SyncedWrites {
    /// Runs `write` (a synced RocksDB write on this thread) and records
    /// how long it took and its WAL part.
    pub(crate) fn time<T>(&self, write: impl FnOnce() -> T) -> T {
        // Per thread in RocksDB: set on every call, as the writing thread
        // is the caller's. The crate's level numbers are one behind
        // RocksDB 11's (which added `kEnableWait` = 3): this one is passed
        // as 4, `kEnableTimeExceptForMutex`, the level that times the WAL
        // write (checked by the tests: with the crate's
        // `EnableTimeExceptForMutex` the WAL part reads 0).
        rocksdb::perf::set_perf_stats(PerfStatsLevel::EnableTimeAndCPUTimeExceptForMutex);
        let mut context = PerfContext::default();
        context.reset();
        let started = std::time::Instant::now();
        let out = write();
        let total = micros(started.elapsed());
        let wal = context.metric(PerfMetric::WriteWalTime) / 1_000;
        self.total.record(total);
        self.wal.record(wal.min(total));
        out
    }

    pub(crate) fn snapshot(&self) -> SyncedWriteTimings {
        SyncedWriteTimings {
            total: self.total.snapshot(),
            wal: self.wal.snapshot(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_each_duration_once_at_its_bound() {
        let h = Histogram::default();
        for us in [0, 1_000, 1_001, 10_000, 10_001, 2_000_000] {
            h.record(us);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 6);
        assert_eq!(s.buckets[0], 2, "0 and 1 ms are in the first bucket");
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[3], 1, "10 ms is at most 10 ms");
        assert_eq!(s.buckets[4], 1);
        assert_eq!(s.buckets[BUCKET_BOUNDS_MICROS.len()], 1);
        assert_eq!(s.over(10_000), Some(2));
        assert_eq!(s.over(1_000), Some(4));
        assert_eq!(s.over(3_000), None, "not a bucket bound");
        assert_eq!(s.max_micros, 2_000_000);
        assert_eq!(s.sum_micros, 2_022_002);
        let later = {
            h.record(30_000);
            h.snapshot()
        };
        let d = later.since(&s);
        assert_eq!(d.count(), 1);
        assert_eq!(d.over(20_000), Some(1));
        assert_eq!(d.sum_micros, 30_000);
    }
}
