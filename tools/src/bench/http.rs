//! `ledgerctl --url … bench`: load over HTTP against a running ledgerd,
//! next to the in-process pipeline timed in the same run.
//!
//! Phases, each with records of its own (unique per run):
//! 1. **CBOR**: arrays of `--batch` records (`application/cbor`, answers
//!    in CBOR) on `--concurrency` connections, as fast as they are
//!    acknowledged: the rate, and each request's ack latency;
//! 2. **JSON**: the same with JSON arrays (`--formats` chooses);
//! 3. **paced**: CBOR at half of phase 1's rate for `--paced-records`,
//!    each request sent on a fixed schedule: the ack latency there;
//! 4. **in-process** (unless `--no-baseline`): the ingest pipeline in a temp
//!    dir, the same records checked before timing, the same batches and
//!    submitters: what the HTTP front is measured against.
//!
//! The server's resident memory (`/metrics`) is read after each phase, and
//! sampled every half second through the full-load ones: its peak in the
//! middle and in the last third of a phase say whether it stays flat. Of a server on this machine, it is the figure to watch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use super::{percentile, sample_record, BenchArgs};
use crate::remote::Remote;

/// A body format of the HTTP bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cbor,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Cbor => "application/cbor",
            Format::Json => "application/json",
        }
    }
}

/// What one phase measured.
struct Phase {
    records: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    retries: usize,
    /// Why the first retried request was refused.
    busy: Option<String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64() * 1e3
    }
}

/// Request bodies of `n` records from `first`, `batch` a body, made on
/// every core.
fn bodies(format: Format, first: u64, n: u64, batch: usize, seed: u64) -> Result<Vec<Vec<u8>>> {
    let starts: Vec<u64> = (first..first + n).step_by(batch).collect();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = starts.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<Vec<u8>>>> = std::thread::scope(|s| {
        let handles: Vec<_> = starts
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|&from| {
                            let to = (from + batch as u64).min(first + n);
                            let recs: Vec<Value> =
                                (from..to).map(|i| sample_record(i, seed)).collect();
                            Ok(match format {
                                Format::Json => serde_json::to_vec(&recs)?,
                                Format::Cbor => {
                                    let mut b = Vec::new();
                                    ciborium::into_writer(&recs, &mut b)?;
                                    b
                                }
                            })
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a generator thread panicked"))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(starts.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Sends `bodies` on `concurrency` connections, each request when it is
/// due (`interval` after the one before; `None`: as soon as a connection
/// is free), retrying a 503 or 429 after its `Retry-After` hint or 5 ms.
fn drive(
    remote: &Remote,
    format: Format,
    bodies: Vec<Vec<u8>>,
    records: usize,
    concurrency: usize,
    interval: Option<Duration>,
) -> Result<Phase> {
    let next = AtomicUsize::new(0);
    let (failures, retries) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let first_error = std::sync::Mutex::new(None::<String>);
    let first_busy = std::sync::Mutex::new(None::<String>);
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        if let Some(step) = interval {
                            let due = start + step.mul_f64(i as f64);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        let t0 = Instant::now();
                        // Backs off as a well-behaved writer does: doubling
                        // from 5 ms, never past the server's Retry-After.
                        let mut backoff = Duration::from_millis(5);
                        loop {
                            let ct = format.content_type();
                            match remote.post_accepting("/v1/decisions", ct, ct, body) {
                                Ok(r) if r.status == 503 || r.status == 429 => {
                                    if retries.fetch_add(1, Ordering::Relaxed) == 0 {
                                        if let Ok(mut w) = first_busy.lock() {
                                            *w = Some(r.text());
                                        }
                                    }
                                    let hint = Duration::from_secs(r.retry_after.unwrap_or(1));
                                    std::thread::sleep(backoff.min(hint));
                                    backoff *= 2;
                                }
                                Ok(r) if r.status == 200 => break,
                                other => {
                                    failures.fetch_add(1, Ordering::Relaxed);
                                    let why = match other {
                                        Ok(r) => format!("{}: {}", r.status, r.text()),
                                        Err(e) => e.to_string(),
                                    };
                                    if let Ok(mut f) = first_error.lock() {
                                        f.get_or_insert(why);
                                    }
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
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        let why = first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        bail!("{failed} requests failed; the first: {why}");
    }
    Ok(Phase {
        records,
        elapsed,
        latencies,
        retries: retries.load(Ordering::Relaxed),
        busy: first_busy.lock().ok().and_then(|b| b.clone()),
    })
}

/// The server's resident memory now and at its peak, in MiB, from
/// `/metrics` (NaN where it does not say).
fn server_rss(remote: &Remote) -> (f64, f64) {
    let mib = |b: f64| b / 1048576.0;
    match remote.metrics() {
        Ok(m) => (
            mib(m.get("process_resident_memory_bytes")),
            mib(m.get("ledger_process_peak_resident_memory_bytes")),
        ),
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// The server's resident memory in MiB, sampled every half second while
/// `work` runs, with what `work` returned.
fn sampling_rss<T>(remote: &Remote, work: impl FnOnce() -> T) -> (T, Vec<f64>) {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let (now, _) = server_rss(remote);
                if now.is_finite() {
                    samples.push(now);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            samples
        });
        let out = work();
        done.store(true, Ordering::Relaxed);
        (out, sampler.join().unwrap_or_default())
    })
}

/// The peaks of the middle and of the last third of `samples` (in time
/// order), once there are three.
fn thirds(samples: &[f64]) -> Option<(f64, f64)> {
    let third = samples.len() / 3;
    let peak = |s: &[f64]| s.iter().copied().fold(f64::MIN, f64::max);
    (third > 0).then(|| {
        (
            peak(&samples[third..2 * third]),
            peak(&samples[2 * third..]),
        )
    })
}

/// Waits, a minute at most, until the server has caught up with what the
/// phase before left it (nothing queued, index builds at most one span
/// behind), so that each phase starts from a steady state and the paced
/// phase measures half the peak rate rather than the recovery from it.
/// Says so when it waited.
fn settle(remote: &Remote) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        match remote.metrics() {
            Ok(m)
                if m.get("ledger_queue_depth") == 0.0
                    && m.get("ledger_index_unbuilt_leaves") <= ingest::index::SPAN as f64 =>
            {
                break
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break,
        }
    }
    if start.elapsed() >= Duration::from_millis(200) {
        let waited = start.elapsed().as_secs_f64();
        println!("  (waited {waited:.1} s for the server to catch up)");
    }
}

/// Drives a running ledgerd over HTTP and prints the figures.
pub fn run_http(remote: &Remote, args: &BenchArgs) -> Result<()> {
    args.check(true)?;
    let formats = args.formats()?;
    remote.get("/healthz")?;
    let n = args.records as u64;
    let paced_n = args.paced_records.unwrap_or(args.records / 2).max(1) as u64;
    // Ids unique to this run, so that a server reused between runs
    // appends every record instead of answering duplicates.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let seed = args.seed ^ run.rotate_left(20);
    let (rss0, _) = server_rss(remote);
    println!(
        "http bench: {n} records a phase, {} connections x {} records per request; server RSS {rss0:.0} MiB at the start",
        args.concurrency, args.batch
    );
    let mut results: Vec<(Format, Phase)> = Vec::new();
    let mut flat = None;
    for (k, &format) in formats.iter().enumerate() {
        let b = bodies(format, k as u64 * n, n, args.batch, seed)?;
        settle(remote);
        let (p, samples) = sampling_rss(remote, || {
            drive(remote, format, b, n as usize, args.concurrency, None)
        });
        let p = p?;
        let (rss, peak) = server_rss(remote);
        println!(
            "  {format:?}: {:.0} records/s, ack p50 {:.2} ms, p99 {:.2} ms ({} retries after 503); server RSS {rss:.0} MiB, peak {peak:.0} MiB",
            p.rate(),
            p.ms(0.5),
            p.ms(0.99),
            p.retries
        );
        if let Some(why) = &p.busy {
            println!("    the first 503: {why}");
        }
        if let Some((middle, last)) = thirds(&samples) {
            println!(
                "    server RSS through the phase ({} samples): middle third's peak {middle:.0} MiB, last third's {last:.0} MiB ({:+.1}%)",
                samples.len(),
                100.0 * (last / middle - 1.0)
            );
            flat = flat.or(Some((format, last / middle - 1.0)));
        }
        results.push((format, p));
    }
    let peak = results[0].1.rate();
    let half = peak / 2.0;
    let b = bodies(formats[0], 2 * n, paced_n, args.batch, seed)?;
    let interval = Duration::from_secs_f64(args.batch as f64 / half);
    settle(remote);
    let paced = drive(
        remote,
        formats[0],
        b,
        paced_n as usize,
        args.concurrency,
        Some(interval),
    )?;
    let (rss, peak_rss) = server_rss(remote);
    println!(
        "  paced at half of the {:?} peak ({half:.0} records/s, {paced_n} records): held {:.0}/s, ack p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; server RSS {rss:.0} MiB, peak {peak_rss:.0} MiB",
        formats[0],
        paced.rate(),
        paced.ms(0.5),
        paced.ms(0.99),
        paced.ms(0.999)
    );
    let baseline = if args.no_baseline {
        None
    } else {
        println!("  in-process pipeline, same records, batches and submitters (temp dir):");
        Some(super::in_process_rate(args, n, seed ^ 0x5eed)?)
    };
    println!("http bench summary:");
    for (format, p) in &results {
        let mut line = format!("  {format:?} {:.0} records/s", p.rate());
        if let Some(b) = baseline {
            line += &format!(" = {:.2}x the in-process pipeline ({b:.0}/s)", p.rate() / b);
        }
        if *format != results[0].0 {
            line += &format!(
                ", {:.2}x {:?}",
                p.rate() / results[0].1.rate(),
                results[0].0
            );
        }
        println!("{line}");
    }
    let flat = flat.map_or(String::new(), |(format, by)| {
        format!(
            ", its last third of the {format:?} phase {:+.1}% on the middle",
            100.0 * by
        )
    });
    println!(
        "  ack p99 at half the peak: {:.2} ms; server peak RSS {peak_rss:.0} MiB{flat}",
        paced.ms(0.99)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::thirds;

    #[test]
    fn thirds_are_the_peaks_of_the_middle_and_last_samples() {
        assert_eq!(thirds(&[1.0, 2.0]), None);
        assert_eq!(thirds(&[9.0, 2.0, 3.0]), Some((2.0, 3.0)));
        // Seven samples: thirds of two, the last taking the rest.
        let s = [100.0, 500.0, 300.0, 310.0, 320.0, 290.0, 330.0];
        assert_eq!(thirds(&s), Some((310.0, 330.0)));
    }
}
