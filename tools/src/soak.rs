//! `ledgerctl --url URL --token T soak`: a bounded soak of a running
//! ledgerd at a fixed rate below its peak. Records (CBOR arrays) are sent
//! on a fixed schedule; once a second the server's `/metrics` are read
//! (resident memory, queue depth, unbuilt index leaves, failures). The
//! soak passes when every request was acknowledged with nothing refused
//! (no 4xx, 5xx, 503 or 507), the schedule was held, the queue stayed
//! within its bound, every record acknowledged is in the tree, and memory
//! is flat: the last third's peak RSS within `--rss-growth` of the middle
//! third's. It exits non-zero otherwise, saying which.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::bench::{percentile, sample_record};
use crate::remote::Remote;

/// Options of `ledgerctl soak`.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Records per second to hold.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// How long to hold it (e.g. 180s, 10m).
    #[arg(long, default_value = "180s", value_parser = crate::when::duration)]
    pub duration: Duration,
    /// Records per request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Largest growth of peak RSS allowed from the middle third of the run
    /// to the last, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub rss_growth: f64,
    /// Varies the records (ids are unique per seed).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// One reading of the server's `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    at: f64,
    rss: f64,
    queue: f64,
    unbuilt: f64,
    size: f64,
    failed: f64,
}

fn sample(remote: &Remote, start: Instant) -> Result<Sample> {
    let m = remote.metrics()?;
    Ok(Sample {
        at: start.elapsed().as_secs_f64(),
        rss: m.get("process_resident_memory_bytes"),
        queue: m.get("ledger_queue_depth"),
        unbuilt: m.get("ledger_index_unbuilt_leaves"),
        size: m.get("ledger_tree_size"),
        failed: m.get("ledger_records_failed_total"),
    })
}

/// Records to send, pre-encoded: the load generator's sample records with
/// a fixed-width `decision_id` whose digits are rewritten per record.
struct Templates {
    records: Vec<(Vec<u8>, usize)>,
}

/// Digits of the id's counter.
const ID_DIGITS: usize = 12;

impl Templates {
    fn new(seed: u64) -> Result<Templates> {
        let records = (0..1000u64)
            .map(|j| {
                let mut r = sample_record(j, seed);
                let placeholder = format!("soak-{seed:016x}-{}", "0".repeat(ID_DIGITS));
                r["decision_id"] = serde_json::Value::String(placeholder.clone());
                let mut b = Vec::new();
                ciborium::into_writer(&r, &mut b)?;
                let at = b
                    .windows(placeholder.len())
                    .position(|w| w == placeholder.as_bytes())
                    .ok_or_else(|| anyhow::anyhow!("no id in a template"))?;
                Ok((b, at + placeholder.len() - ID_DIGITS))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Templates { records })
    }

    /// Appends record number `id` (unique per soak) to `out`.
    fn write(&self, id: u64, out: &mut Vec<u8>) {
        let (bytes, digits) = &self.records[(id % self.records.len() as u64) as usize];
        let start = out.len();
        out.extend_from_slice(bytes);
        let mut n = id;
        for d in out[start + digits..start + digits + ID_DIGITS]
            .iter_mut()
            .rev()
        {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
}

/// Counts of what the requests got.
#[derive(Default)]
struct Tally {
    acked: AtomicU64,
    refused: AtomicU64,
    late: AtomicU64,
}

/// Runs the soak and prints its figures; an error names the criterion
/// that failed.
pub fn run(remote: &Remote, args: &SoakArgs) -> Result<()> {
    if args.rate == 0 || args.batch == 0 || args.concurrency == 0 {
        bail!("--rate, --batch and --concurrency must be at least 1");
    }
    let requests =
        (args.rate as f64 * args.duration.as_secs_f64() / args.batch as f64).ceil() as u64;
    let interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let first = sample(remote, Instant::now())?;
    if first.rss.is_nan() {
        bail!("the server's /metrics has no process_resident_memory_bytes");
    }
    println!(
        "soak: {} records/s for {:?} ({requests} requests of {}, {} connections); tree size {} at the start",
        args.rate, args.duration, args.batch, args.concurrency, first.size
    );
    let templates = Templates::new(args.seed ^ (first.size as u64).rotate_left(32))?;
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests as usize)));
    // The schedule's requests, taken by whichever connection is free.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Instant, Vec<u8>)>(args.concurrency * 2);
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now();
    let samples = std::thread::scope(|s| -> Result<Vec<Sample>> {
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (rx, tally, latencies) = (rx.clone(), tally.clone(), latencies.clone());
                s.spawn(move || loop {
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some((due, body)) = next else { break };
                    {
                        let t0 = Instant::now().max(due);
                        match remote.post("/v1/decisions", "application/cbor", &body) {
                            Ok(r) if r.status == 200 => {
                                tally.acked.fetch_add(args.batch as u64, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                                eprintln!("soak: a request got {}: {}", r.status, r.text());
                            }
                            Err(e) => {
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                                eprintln!("soak: a request failed: {e}");
                            }
                        }
                        if let Ok(mut l) = latencies.lock() {
                            l.push(t0.elapsed());
                        }
                    }
                })
            })
            .collect();
        // The sampler: once a second, a line every ten.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            let tally = tally.clone();
            s.spawn(move || {
                let mut out = Vec::new();
                let mut next = 1.0;
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if start.elapsed().as_secs_f64() < next {
                        continue;
                    }
                    next += 1.0;
                    if let Ok(x) = sample(remote, start) {
                        if out.len() % 10 == 9 {
                            println!(
                                "  {:>5.0} s  acked {:>9}  RSS {:>7.1} MiB  queue {:>6}  unbuilt {:>7}",
                                x.at,
                                tally.acked.load(Ordering::Relaxed),
                                x.rss / 1048576.0,
                                x.queue,
                                x.unbuilt
                            );
                        }
                        out.push(x);
                    }
                }
                out
            })
        };
        // The schedule: request i is due at start + i * interval. Bodies
        // are made from pre-encoded records with a fresh id patched in, so
        // making them costs the client little of the cores it shares.
        let mut id = 0u64;
        for i in 0..requests {
            let due = start + interval.mul_f64(i as f64);
            let mut body = Vec::with_capacity(args.batch * 700);
            verifier::cbor::head(4, args.batch as u64, &mut body);
            for _ in 0..args.batch {
                id += 1;
                templates.write(id, &mut body);
            }
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            } else if now - due > Duration::from_millis(100) {
                tally.late.fetch_add(1, Ordering::Relaxed);
            }
            if tx.send((due, body)).is_err() {
                break;
            }
        }
        drop(tx);
        for w in workers {
            let _ = w.join();
        }
        done.store(true, Ordering::Relaxed);
        Ok(sampler.join().unwrap_or_default())
    })?;
    let elapsed = start.elapsed();
    let last = sample(remote, start)?;
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort();
    let acked = tally.acked.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);
    let late = tally.late.load(Ordering::Relaxed);
    let third = samples.len() / 3;
    let peak = |s: &[Sample]| s.iter().map(|x| x.rss).fold(0.0, f64::max);
    let (middle, end) = if third > 0 {
        (
            peak(&samples[third..2 * third]),
            peak(&samples[2 * third..]),
        )
    } else {
        (f64::NAN, f64::NAN)
    };
    let growth = (end / middle - 1.0) * 100.0;
    let queue_max = samples.iter().map(|x| x.queue).fold(0.0, f64::max);
    let unbuilt_max = samples.iter().map(|x| x.unbuilt).fold(0.0, f64::max);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "soak: {acked} records acknowledged in {:.1} s ({:.0}/s); requests refused {refused}, sent late {late}; ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
    println!(
        "soak: RSS {:.1} MiB at the start, peak {:.1} MiB in the middle third, {:.1} MiB in the last ({growth:+.1}%), {:.1} MiB at the end; queue at most {queue_max}, unbuilt index leaves at most {unbuilt_max}",
        first.rss / 1048576.0,
        middle / 1048576.0,
        end / 1048576.0,
        last.rss / 1048576.0,
    );
    let mut wrong = Vec::new();
    if refused > 0 {
        wrong.push(format!("{refused} requests were not acknowledged"));
    }
    if last.failed > first.failed {
        wrong.push(format!(
            "the server counted {} failed records",
            last.failed - first.failed
        ));
    }
    if late * 20 > requests {
        wrong.push(format!("{late} of {requests} requests were sent over 100 ms late: the client could not hold the rate"));
    }
    if last.size < first.size + acked as f64 {
        wrong.push(format!(
            "the tree grew by {}, but {acked} records were acknowledged",
            last.size - first.size
        ));
    }
    if third >= 10 && growth > args.rss_growth {
        wrong.push(format!(
            "RSS grew {growth:.1}% from the middle third to the last (at most {}%)",
            args.rss_growth
        ));
    }
    if !wrong.is_empty() {
        bail!("soak failed: {}", wrong.join("; "));
    }
    println!(
        "soak: passed{}",
        if third >= 10 {
            ""
        } else {
            " (too short to judge RSS flatness: at least 30 s)"
        }
    );
    Ok(())
}
