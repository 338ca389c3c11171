//! `ledgerctl --url … bench`: load over HTTP against a running ledgerd.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use super::{percentile, sample_record, BenchArgs};

/// Drives a running ledgerd over HTTP: `concurrency` connections, each
/// posting `batch` JSON records per request; reports records/s and latency.
pub fn run_http(remote: &crate::remote::Remote, args: &BenchArgs) -> Result<()> {
    args.check(true)?;
    let n = args.records as u64;
    let bodies: Vec<Vec<u8>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(args.batch)
        .map(|c| {
            let recs: Vec<Value> = c.iter().map(|&i| sample_record(i, args.seed)).collect();
            Value::Array(recs).to_string().into_bytes()
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let failures = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (queue, failures) = (queue.clone(), failures.clone());
                s.spawn(move || {
                    let mut lat = Vec::new();
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.next());
                        let Some(body) = next else { break };
                        let t0 = Instant::now();
                        loop {
                            match remote.post("/v1/decisions", "application/json", &body) {
                                Ok(r) if r.status == 503 || r.status == 429 => {
                                    std::thread::sleep(Duration::from_millis(5))
                                }
                                Ok(r) if r.status == 200 => break,
                                _ => {
                                    failures.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = start.elapsed();
    latencies.sort();
    if failures.load(Ordering::Relaxed) > 0 {
        bail!("{} requests failed", failures.load(Ordering::Relaxed));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "http bench: {n} records, {} connections x {} records per request: {:.0} records/s, request p50 {:.2} ms, p99 {:.2} ms",
        args.concurrency,
        args.batch,
        n as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    Ok(())
}
