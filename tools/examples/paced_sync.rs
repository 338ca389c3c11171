//! Paced synced writes against raw RocksDB, to see which options keep the
//! fsync tail short while memtables are flushed (docs/performance.md,
//! session 5). Writes one synced WriteBatch of 64 × 680-byte values every
//! 64/rate seconds for `seconds` seconds and prints the latency of each,
//! counted from when it was due.
//!
//! ```sh
//! cargo run -p tools --example paced_sync -- recycle,sync1m 15 57000
//! cargo run -p tools --example paced_sync -- ledger 15 57000
//! ```
//!
//! Options (comma-separated): `recycle` (reuse 4 WAL files), `sync1m` /
//! `sync256k` (bytes_per_sync), `limitN` (flush and compaction writes at
//! most N MiB/s, granted every 100 ms), `grant10ms` (grants every 10 ms
//! instead), `ledger` (the ledger's own `ledger::db_options`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

fn options(spec: &str) -> Result<rocksdb::Options> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let mut limit = None;
    let mut grant_us = 100_000;
    for o in spec.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ledger" => opts = ledger::db_options()?,
            "recycle" => opts.set_recycle_log_file_num(4),
            "sync1m" => opts.set_bytes_per_sync(1 << 20),
            "sync256k" => opts.set_bytes_per_sync(256 << 10),
            "grant10ms" => grant_us = 10_000,
            _ => match o.strip_prefix("limit").map(str::parse::<i64>) {
                Some(Ok(mib)) => limit = Some(mib << 20),
                _ => bail!("unknown option {o:?}"),
            },
        }
    }
    if let Some(bytes) = limit {
        opts.set_ratelimiter(bytes, grant_us, 10);
    }
    Ok(opts)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = args.first().map_or("", String::as_str);
    let seconds: f64 = args
        .get(1)
        .map_or(Ok(15.0), |s| s.parse())
        .context("seconds")?;
    let rate: f64 = args
        .get(2)
        .map_or(Ok(57_000.0), |s| s.parse())
        .context("records/s")?;
    let dir = tempfile::tempdir()?;
    let db = rocksdb::DB::open(&options(spec)?, dir.path())?;
    let mut sync = rocksdb::WriteOptions::default();
    sync.set_sync(true);
    const BATCH: usize = 64;
    let step = Duration::from_secs_f64(BATCH as f64 / rate);
    let writes = (seconds * rate / BATCH as f64) as usize;
    let mut value = vec![0x5a_u8; 680];
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(writes);
    for w in 0..writes {
        let due = start + step * w as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut batch = rocksdb::WriteBatch::default();
        for r in 0..BATCH {
            let key = ((w * BATCH + r) as u64).to_be_bytes();
            value[..8].copy_from_slice(&key);
            batch.put(key, &value);
        }
        db.write_opt(batch, &sync)?;
        latencies.push(due.elapsed());
    }
    latencies.sort();
    let ms = |q: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{spec}: {writes} synced writes of {BATCH} at {rate:.0} records/s: p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.1}",
        ms(0.5), ms(0.9), ms(0.99), ms(0.999), ms(1.0)
    );
    Ok(())
}
