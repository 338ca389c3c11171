//! The raw RocksDB baselines `ledgerctl bench` measures the ledger
//! against, and `ledgerctl paced-sync` (docs/performance.md).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::percentile;

/// Writes `n` records in synced batches of `per_commit`, `put` adding each
/// record's keys; returns records per second.
pub(super) fn synced_batches(
    db: &rocksdb::DB,
    n: usize,
    per_commit: usize,
    put: impl Fn(&mut rocksdb::WriteBatch, u64) -> Result<()>,
) -> Result<f64> {
    let mut sync = rocksdb::WriteOptions::default();
    sync.set_sync(true);
    let t0 = Instant::now();
    for start in (0..n).step_by(per_commit) {
        let mut wb = rocksdb::WriteBatch::default();
        for index in start..(start + per_commit).min(n) {
            put(&mut wb, index as u64)?;
        }
        db.write_opt(wb, &sync)?;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// Raw RocksDB writing the keys the ledger writes for `leaves`, after
/// `warmup` leaves written the same way (untimed; the leaves cycled) at
/// the positions before them; returns records per second.
pub(super) fn same_keys_baseline(
    dir: &Path,
    leaves: &[Vec<u8>],
    per_commit: usize,
    warmup: usize,
) -> Result<f64> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, dir)?;
    let mut sync = rocksdb::WriteOptions::default();
    sync.set_sync(true);
    let leaf = |p: usize| leaves[p % leaves.len()].as_slice();
    // Positions `from..to` of the log, in group commits of `per_commit`.
    let write = |from: usize, to: usize| -> Result<()> {
        for start in (from..to).step_by(per_commit) {
            let end = (start + per_commit).min(to);
            let mut wb = rocksdb::WriteBatch::default();
            // Entries in chunks of 16.
            for chunk_start in (start..end).step_by(16) {
                let chunk_end = (chunk_start + 16).min(end);
                let chunk = verifier::tile::encode_bundle((chunk_start..chunk_end).map(leaf))?;
                wb.put(position_key(chunk_start as u64, 0xff), chunk);
            }
            // The hash tiles an append fills: each level-0 tile (8 KiB)
            // under the leaf it ends at, and one level up likewise.
            for level in 0..2u32 {
                let width = 256usize.pow(level + 1);
                for t in (start / width + 1)..=(end / width) {
                    wb.put(position_key((t * width) as u64, level as u8), [7u8; 8192]);
                }
            }
            db.write_opt(wb, &sync)?;
        }
        Ok(())
    };
    if warmup > 0 {
        write(0, warmup)?;
        db.wait_for_compact(&rocksdb::WaitForCompactOptions::default())?;
    }
    let t0 = Instant::now();
    write(warmup, warmup + leaves.len())?;
    Ok(leaves.len() as f64 / t0.elapsed().as_secs_f64())
}

/// The key of a record the ledger keeps by position (specs/storage.md):
/// `p` ‖ leaf (8 BE) ‖ kind (0xff an entry chunk, L a level-L hash tile).
fn position_key(position: u64, kind: u8) -> [u8; 10] {
    let mut k = [b'p'; 10];
    k[1..9].copy_from_slice(&position.to_be_bytes());
    k[9] = kind;
    k
}

/// Writes `records` records (values taken from `leaves` in turn) as
/// requests of `batch`, one due every `batch / rate` seconds, each write
/// one synced WriteBatch: of one request, or with `group` of every request
/// due by the time the write starts (group commit, as the ledger does).
/// Returns each request's latency counted from when it was due (so a
/// stalled write also delays the ones queued behind it), sorted.
pub(super) fn paced_raw(
    dir: &Path,
    opts: rocksdb::Options,
    leaves: &[Vec<u8>],
    records: usize,
    batch: usize,
    rate: f64,
    group: bool,
) -> Result<Vec<Duration>> {
    if leaves.is_empty() {
        bail!("no values to write");
    }
    let db = rocksdb::DB::open(&opts, dir)?;
    let mut sync = rocksdb::WriteOptions::default();
    sync.set_sync(true);
    let batch = batch.max(1);
    let step = Duration::from_secs_f64(batch as f64 / rate);
    let start = Instant::now();
    let due = |n: usize| start + step * n as u32;
    let requests = records.div_ceil(batch);
    let mut latencies = Vec::with_capacity(requests);
    let mut next = 0;
    while next < requests {
        std::thread::sleep(due(next).saturating_duration_since(Instant::now()));
        let mut end = next + 1;
        if group {
            let now = Instant::now();
            while end < requests && due(end) <= now {
                end += 1;
            }
        }
        let mut wb = rocksdb::WriteBatch::default();
        for i in next * batch..(end * batch).min(records) {
            wb.put((i as u64).to_be_bytes(), &leaves[i % leaves.len()]);
        }
        db.write_opt(wb, &sync)?;
        latencies.extend((next..end).map(|n| due(n).elapsed()));
        next = end;
    }
    latencies.sort();
    Ok(latencies)
}

/// RocksDB options from a comma-separated list: `recycle` (reuse 4 WAL
/// files), `sync1m` / `sync256k` (bytes_per_sync), `limitN` (flushes and
/// compactions write at most N MiB/s, granted every 100 ms), `grant10ms`
/// (grants every 10 ms instead), `ledger` (`ledger::db_options`).
fn raw_options(spec: &str) -> Result<rocksdb::Options> {
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
                Some(Ok(mib)) if mib > 0 => limit = Some(mib << 20),
                _ => bail!("unknown RocksDB option {o:?} (see ledgerctl paced-sync --help)"),
            },
        }
    }
    if let Some(bytes) = limit {
        opts.set_ratelimiter(bytes, grant_us, 10);
    }
    Ok(opts)
}

/// `ledgerctl paced-sync`: raw RocksDB in a temp dir, one synced WriteBatch
/// of `batch` 680-byte values every `batch / rate` seconds for `seconds`,
/// with the RocksDB options `spec` names; prints the latency percentiles.
pub fn paced_sync(spec: &str, seconds: f64, rate: f64, batch: usize) -> Result<()> {
    if !(seconds > 0.0 && rate > 0.0) || batch == 0 {
        bail!("--seconds, --rate and --batch must be above 0");
    }
    let opts = raw_options(spec)?;
    let dir = tempfile::tempdir()?;
    let records = (seconds * rate) as usize;
    let lat = paced_raw(
        dir.path(),
        opts,
        &[vec![0x5a; 680]],
        records,
        batch,
        rate,
        false,
    )?;
    let ms = |p: f64| percentile(&lat, p).as_secs_f64() * 1e3;
    println!(
        "{spec}: {} synced writes of {batch} at {rate:.0} records/s: p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.1}",
        lat.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        ms(1.0)
    );
    Ok(())
}
