//! `ledgerctl bench`: an in-process load generator against the ingest
//! pipeline, next to raw RocksDB WriteBatch+sync of the same leaf bytes in
//! the same run (docs/performance.md).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ingest::index::INGEST_CFS;
use ingest::{Indexes, Outcome, Pipeline, PipelineConfig, Submission};
use ledger::Log;
use serde_json::{json, Value};

/// Options of one bench run.
pub struct BenchArgs {
    pub records: usize,
    pub concurrency: usize,
    pub batch: usize,
    /// Records per group commit at most.
    pub group: usize,
    pub seed: u64,
    /// Records per second offered in the paced phase; `None`: half the
    /// peak just measured. A fixed pace compares two builds at the same
    /// load (a faster peak otherwise paces its half-peak phase faster).
    pub paced: Option<f64>,
    /// Records offered in the paced phase (and written by the raw paced
    /// baselines); `None`: as many as `records`.
    pub paced_records: Option<usize>,
    /// Records appended through the same pipeline before the peak is
    /// timed (not counted), and written to each raw baseline's store
    /// before it is timed: 0 times a cold process, as a server just
    /// started; more times one whose memory is already paged in.
    pub warmup: usize,
}

/// Where the raw baseline's warm-up keys start: above every timed key.
const WARMUP_KEYS: u64 = 1 << 40;

const KINDS: [&str; 5] = ["human", "service_account", "workload", "agent", "device"];
const ENFORCERS: [&str; 4] = ["gateway", "service_mesh", "policy_engine", "agent_gateway"];

/// A realistic record of about 512 bytes of deterministic CBOR, varied in
/// identity kind and delegation chain length.
pub fn sample_record(i: u64, seed: u64) -> Value {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
    let kind = KINDS[(x % 5) as usize];
    let chain: Vec<Value> = (0..(x >> 8) % 4)
        .map(|h| {
            json!({"identity_kind": KINDS[((x >> (12 + h)) % 5) as usize], "id": format!("actor-{}", (x >> (16 + h)) % 500),
                   "scope": "orders:write"})
        })
        .collect();
    json!({
        "decision_id": format!("bench-{seed}-{i}"),
        "time": "2026-11-23T07:00:00.123Z",
        "enforcer": {"id": format!("enf-{}", x % 16), "kind": ENFORCERS[(x % 4) as usize]},
        "subject": {"type": "principal", "id": format!("user-{}", x % 10_000), "identity_kind": kind,
                    "owner": format!("owner-{}", x % 100)},
        "delegation": chain,
        "action": {"name": if x % 3 == 0 { "GET /v1/orders" } else { "POST /v1/orders" }},
        "resource": {"type": "api", "id": format!("orders-{}", x % 50)},
        "context": {"request_id": format!("req-{i}"), "trace_id": format!("{x:016x}")},
        "policy": {"engine": "opa", "id": "orders.authz", "version": format!("2026.11.{}", x % 7)},
        "decision": if x % 10 == 0 { "deny" } else { "allow" },
        "credential": {"kind": "token", "id_hash": format!("sha256:{:016x}{:016x}", x, x.rotate_left(7)),
                       "issued_at": "2026-11-23T06:59:00Z", "expires_at": "2026-11-23T07:04:00Z", "ttl_s": 300}
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Phase {
    elapsed: Duration,
    latencies: Vec<Duration>,
    commits: usize,
}

/// Drives `subs` through `pipeline` with `concurrency` submitters (tasks on
/// one thread), each sending `batch` records per submission and waiting for
/// the acks; `rate` (records/s) paces them.
fn drive(
    runtime: &tokio::runtime::Runtime,
    pipeline: &Arc<Pipeline>,
    log: &Log,
    subs: Vec<Submission>,
    args: &BenchArgs,
    rate: Option<f64>,
) -> Result<Phase> {
    let st = pipeline.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let before = (
        st.commits.load(Ordering::Relaxed),
        load(&st.prepare_micros),
        load(&st.write_micros),
        load(&st.commit_micros),
    );
    let mut chunks: Vec<Vec<Submission>> = Vec::new();
    let mut subs = subs.into_iter().peekable();
    while subs.peek().is_some() {
        chunks.push(subs.by_ref().take(args.batch).collect());
    }
    let chunks = std::sync::Mutex::new(chunks.into_iter().enumerate());
    let failures = AtomicUsize::new(0);
    let synced_before = log.synced_writes();
    let cpu_before = cpu_seconds();
    let threads_before = cpu_by_thread();
    let start = Instant::now();
    let per_chunk = rate.map(|r| Duration::from_secs_f64(args.batch as f64 / r));
    // The submitters are tasks on one thread: waiting for an ack costs no
    // thread of its own, so the generator leaves the CPUs to the pipeline.
    // They call `Pipeline::submit` on the blocking pool, as ledgerd's
    // handlers do: it looks the ids up in RocksDB, and a lookup that waits
    // for the disk must not hold up every other submitter's acks.
    let submitter = || async {
        let mut lat = Vec::new();
        loop {
            let next = chunks.lock().ok().and_then(|mut c| c.next());
            let Some((n, chunk)) = next else { break };
            if let Some(step) = per_chunk {
                tokio::time::sleep_until((start + step * n as u32).into()).await;
            }
            let t0 = Instant::now();
            let len = chunk.len();
            let mut pending = chunk;
            loop {
                let p = pipeline.clone();
                let Ok(submitted) = tokio::task::spawn_blocking(move || p.submit(pending)).await
                else {
                    failures.fetch_add(len, Ordering::Relaxed);
                    break;
                };
                match submitted {
                    Ok(rx) => {
                        let out = rx.await.unwrap_or_default();
                        let ok = out
                            .iter()
                            .filter(|o| matches!(o, Outcome::Appended { .. }))
                            .count();
                        if ok != len {
                            failures.fetch_add(len - ok, Ordering::Relaxed);
                        }
                        break;
                    }
                    Err(busy) => {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                        pending = busy.subs;
                    }
                }
            }
            lat.push(t0.elapsed());
        }
        lat
    };
    let mut latencies: Vec<Duration> = runtime
        .block_on(futures_util::future::join_all(
            (0..args.concurrency).map(|_| submitter()),
        ))
        .into_iter()
        .flatten()
        .collect();
    let elapsed = start.elapsed();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / elapsed.as_secs_f64());
    latencies.sort();
    let commits = st.commits.load(Ordering::Relaxed) - before.0;
    let busy = |us: &std::sync::atomic::AtomicU64, before: u64| {
        (load(us) - before) as f64 / 1e6 / elapsed.as_secs_f64() * 100.0
    };
    println!(
        "  stages busy: batcher {:.0}%, committer (synced write) {:.0}%, acknowledger {:.0}%; process CPU {:.2} of {} cores",
        busy(&st.prepare_micros, before.1),
        busy(&st.write_micros, before.2),
        busy(&st.commit_micros, before.3),
        cpu.unwrap_or(f64::NAN),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Where the CPU went, by thread (cores over the phase), largest first.
    let mut threads: Vec<(String, f64)> = cpu_by_thread()
        .into_iter()
        .map(|(name, s)| {
            let before = threads_before.get(&name).copied().unwrap_or(0.0);
            (name, (s - before) / elapsed.as_secs_f64())
        })
        .filter(|(_, cores)| *cores >= 0.01)
        .collect();
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "  CPU by thread (cores): {}",
        threads
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // What the slow acks waited for: a synced write over 10 ms whose WAL
    // write and sync were also over 10 ms is the disk; one whose WAL part
    // was short waited inside RocksDB before reaching the WAL.
    let synced = log.synced_writes().since(&synced_before);
    let over = |d: &ledger::Durations, ms: u64| d.over(ms * 1_000).unwrap_or(0);
    println!(
        "  acks over 10 ms: {}; synced writes: {}, over 10 ms: {} (WAL write+sync over 10 ms: {}), over 50 ms: {} ({})",
        latencies.len() - latencies.partition_point(|l| *l <= Duration::from_millis(10)),
        synced.total.count(),
        over(&synced.total, 10),
        over(&synced.wal, 10),
        over(&synced.total, 50),
        over(&synced.wal, 50),
    );
    if failures.load(Ordering::Relaxed) > 0 {
        bail!(
            "{} records were not appended",
            failures.load(Ordering::Relaxed)
        );
    }
    Ok(Phase {
        elapsed,
        latencies,
        commits,
    })
}

fn subs_for(range: std::ops::Range<u64>, seed: u64) -> Result<Vec<Submission>> {
    // One per request in ledgerd; one for the whole run here.
    let by: Arc<str> = "bench-gw".into();
    range
        .map(|i| {
            let v = ingest::record::from_json(&sample_record(i, seed));
            let record = ingest::input::check_record(&v, 0, "bench-gw")?;
            Ok(Submission {
                record,
                submitted_by: by.clone(),
            })
        })
        .collect()
}

pub fn run(args: BenchArgs) -> Result<()> {
    let n = args.records as u64;
    // Ids: the peak's below n, the paced phase's from n, the warm-up's
    // above both.
    let p = args.paced_records.unwrap_or(args.records) as u64;
    let signer = verifier::SignerKey::from_seed("bench.localhost/log", &[1; 32])?;
    let dir = tempfile::tempdir()?;
    let log = Arc::new(Log::open_with(
        &dir.path().join("db"),
        &signer.verifier(),
        INGEST_CFS,
    )?);
    let indexes = Indexes::open(log.clone())?;
    let subs = subs_for(0..n, args.seed)?;
    let avg_leaf = subs
        .iter()
        .map(|s| s.record.cbor().len() + 72 + 8)
        .sum::<usize>()
        / subs.len().max(1);
    let leaves: Vec<Vec<u8>> = subs
        .iter()
        .map(|s| {
            verifier::envelope::encode_parts(
                s.record.cbor(),
                "2026-11-23T07:00:00.123Z",
                "bench-gw",
            )
        })
        .collect();

    println!(
        "bench: {n} records (~{avg_leaf} B leaves), {} submitters x {} records per request",
        args.concurrency, args.batch
    );
    // The submitters run on this thread (`block_on`).
    ingest::sched::latency_sensitive();
    // One runtime for both phases, its blocking threads kept between them
    // as a server keeps its own: else the paced phase would start by
    // creating them, and time that instead of the ledger.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .thread_keep_alive(Duration::from_secs(600))
        // As ledgerd's handler threads (ingest::sched).
        .on_thread_start(ingest::sched::latency_sensitive)
        // As many blocking threads as ledgerd's handlers have.
        .max_blocking_threads(ingest::BLOCKING_THREADS)
        .build()?;
    let config = PipelineConfig {
        max_batch: args.group,
        ..PipelineConfig::default()
    };
    // Every phase starts on a quiet machine: the span builds, flushes and
    // compactions of the phase before finish first (a raw baseline timed
    // while the indexer still builds the peak's spans would be slowed by
    // them).
    let settle = || -> Result<()> {
        spans_built(&indexes, Duration::from_secs(60))?;
        Ok(log.wait_for_background_work(Duration::from_secs(60))?)
    };
    // One pipeline for every phase, with its checkpoint publisher, as a
    // server keeps one for its life: a pipeline started for a phase would
    // time its threads' first allocations (fresh memory, paged in on the
    // acknowledgement path) instead of the ledger (docs/performance.md,
    // session 12).
    let pipeline = Arc::new(Pipeline::start(
        indexes.clone(),
        Some(signer.clone()),
        config.clone(),
    ));
    if args.warmup > 0 {
        let w = args.warmup as u64;
        let warm = drive(
            &runtime,
            &pipeline,
            &log,
            subs_for(2 * n + p..2 * n + p + w, args.seed)?,
            &args,
            None,
        )?;
        println!(
            "warm-up: {w} records, {:.0} records/s (not counted)",
            w as f64 / warm.elapsed.as_secs_f64()
        );
        settle()?;
    }
    let peak = drive(&runtime, &pipeline, &log, subs, &args, None)?;
    let peak_rate = n as f64 / peak.elapsed.as_secs_f64();
    let per_commit = (n as usize / peak.commits.max(1)).max(1);

    // From the last ack: the time to a signed checkpoint covering it, and
    // the time until the peak's last complete index span is built (span
    // builds run behind the acks, at nice 10, below the stages), with the
    // rate counting it, so that work deferred past the peak shows.
    let t0 = Instant::now();
    let size = log.size();
    let (mut to_checkpoint, mut to_built) = (None, None);
    while to_checkpoint.is_none() || to_built.is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("no checkpoint or index build within 60 s of the last ack");
        }
        let signed = log
            .latest_checkpoint()
            .is_some_and(|c| c.checkpoint.size >= size);
        if signed && to_checkpoint.is_none() {
            to_checkpoint = Some(t0.elapsed());
        }
        if spans_complete(&indexes, size) && to_built.is_none() {
            to_built = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (to_checkpoint, to_built) = (
        to_checkpoint.unwrap_or_default(),
        to_built.unwrap_or_default(),
    );
    let built_rate = n as f64 / (peak.elapsed + to_built).as_secs_f64();
    settle()?;

    // Baseline: the same leaf bytes, in the same batch sizes, WriteBatch+sync.
    // Every store of the run lives under `dir` and is deleted at the end:
    // deleting one mid-run makes the file system discard its blocks, which
    // stalls the next phase's synced writes.
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, dir.path().join("raw"))?;
    if args.warmup > 0 {
        // Keys above the timed ones, so the timed writes are all new keys.
        synced_batches(&db, args.warmup, per_commit, |wb, index| {
            let leaf = &leaves[index as usize % leaves.len()];
            wb.put((WARMUP_KEYS + index).to_be_bytes(), leaf);
            Ok(())
        })?;
        db.wait_for_compact(&rocksdb::WaitForCompactOptions::default())?;
    }
    let raw_rate = synced_batches(&db, leaves.len(), per_commit, |wb, index| {
        wb.put(index.to_be_bytes(), &leaves[index as usize]);
        Ok(())
    })?;
    drop(db);

    // Second baseline: raw RocksDB writing the same keys the ledger writes
    // (entry chunks, the full hash tiles) with none of its logic:
    // the ceiling this storage layout allows.
    let same_keys_rate = same_keys_baseline(
        &dir.path().join("same-keys"),
        &leaves,
        per_commit,
        args.warmup,
    )?;

    // Half of peak, paced: the latency an enforcer sees under normal load.
    let pace = args.paced.unwrap_or(peak_rate / 2.0);
    let half = subs_for(n..n + p, args.seed)?;
    settle()?;
    let paced = drive(&runtime, &pipeline, &log, half, &args, Some(pace))?;
    drop(pipeline);

    // The disk's own latency at that pace: raw RocksDB writing the same
    // leaf bytes from one thread, each synced WriteBatch taking every
    // request due (one per request could not keep up past ~200 k
    // records/s on this disk: docs/performance.md, session 13).
    settle()?;
    let mut defaults = rocksdb::Options::default();
    defaults.create_if_missing(true);
    let raw_paced = paced_raw(
        &dir.path().join("raw-paced"),
        defaults,
        &leaves,
        p as usize,
        args.batch,
        pace,
        true,
    )?;
    // The same with the ledger's RocksDB options (WAL reuse, write-back in
    // small steps, rate-limited flushes): what this disk allows.
    let raw_paced_tuned = paced_raw(
        &dir.path().join("raw-paced-tuned"),
        ledger::db_options()?,
        &leaves,
        p as usize,
        args.batch,
        pace,
        true,
    )?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("peak:      {:>9.0} records/s  ack p50 {:.2} ms  p99 {:.2} ms  ({} group commits, ~{} records each)",
        peak_rate, ms(percentile(&peak.latencies, 0.5)), ms(percentile(&peak.latencies, 0.99)), peak.commits, per_commit);
    println!("raw RocksDB WriteBatch+sync, same bytes and batch sizes: {raw_rate:>9.0} records/s");
    println!("ratio:     {:.2}x raw", peak_rate / raw_rate);
    println!(
        "every complete index span built {:.0} ms after the last ack: {built_rate:>9.0} records/s counting that, {:.2}x raw",
        ms(to_built),
        built_rate / raw_rate
    );
    println!(
        "raw RocksDB writing the ledger's keys (entry chunks, full hash tiles), same batches: {same_keys_rate:>9.0} records/s; ledger = {:.2}x that",
        peak_rate / same_keys_rate
    );
    println!(
        "{}: {:>9.0} records/s offered, {p} records  ack p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms",
        if args.paced.is_some() {
            "paced"
        } else {
            "half peak"
        },
        pace,
        ms(percentile(&paced.latencies, 0.5)),
        ms(percentile(&paced.latencies, 0.99)),
        ms(percentile(&paced.latencies, 0.999))
    );
    for (options, lat) in [("default", &raw_paced), ("the ledger's", &raw_paced_tuned)] {
        println!(
            "raw RocksDB at the same pace, each synced WriteBatch taking every request due, {options} options: p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms",
            ms(percentile(lat, 0.5)),
            ms(percentile(lat, 0.99)),
            ms(percentile(lat, 0.999))
        );
    }
    println!(
        "last ack -> signed checkpoint: {:.0} ms (publisher interval 1 s)",
        ms(to_checkpoint)
    );
    Ok(())
}

/// Drives a running ledgerd over HTTP: `concurrency` connections, each
/// posting `batch` JSON records per request; reports records/s and latency.
pub fn run_http(remote: &crate::remote::Remote, args: BenchArgs) -> Result<()> {
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

/// Whether every complete span of the first `size` leaves is in the
/// built indexes (the indexer thread builds them behind the acks).
fn spans_complete(indexes: &Indexes, size: u64) -> bool {
    let span = indexes.span();
    indexes.built() >= size / span * span
}

/// Waits until every complete span of the log is built.
fn spans_built(indexes: &Indexes, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !spans_complete(indexes, indexes.log().size()) {
        if Instant::now() > deadline {
            bail!("index spans not built within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Writes `n` records in synced batches of `per_commit`, `put` adding each
/// record's keys; returns records per second.
fn synced_batches(
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
fn same_keys_baseline(
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
fn paced_raw(
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
/// with the RocksDB options `spec` names; prints the latency percentiles
/// (docs/performance.md, session 5).
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

/// CPU time (user + system) this process used so far, from /proc/self/stat
/// (Linux; clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

/// CPU time per thread name (threads of one name added up, e.g. RocksDB's
/// `rocksdb:high` or the runtime's workers), from each thread's
/// `/proc/self/task/*/schedstat` (Linux; nanoseconds on a CPU).
fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
        if let Some(ns) = ns {
            *out.entry(name.trim().to_string()).or_insert(0.0) += ns / 1e9;
        }
    }
    out
}
