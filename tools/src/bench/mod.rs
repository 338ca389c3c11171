//! `ledgerctl bench`: an in-process load generator against the ingest
//! pipeline, next to raw RocksDB WriteBatch+sync of the same leaf bytes in
//! the same run (docs/performance.md).
//!
//! The peak is measured in rounds that alternate the ledger and raw
//! RocksDB, and the medians are compared. Each round is long enough (by
//! default) that the index span builds the acks leave behind cannot all
//! wait for later: past [`PipelineConfig::max_unbuilt`] leaves, appends go
//! no faster than the indexes are built. The paced phase runs at half of
//! the sustained peak, the rate counting those builds.

mod cpu;
mod export;
pub(crate) mod http;
mod proofs;
mod raw;
mod retention;

pub use export::{run as run_export_bench, ExportBenchArgs};
pub use http::run_http;
pub use proofs::{run as run_proofs, ProofArgs};
pub use raw::paced_sync;
pub use retention::{run as run_retention_bench, RetentionBenchArgs};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ingest::index::INGEST_CFS;
use ingest::{Indexes, Outcome, Pipeline, PipelineConfig, Submission};
use ledger::Log;
use serde_json::{json, Value};

/// Rounds of the peak unless `--rounds` says otherwise.
const ROUNDS: usize = 3;

/// Options of `ledgerctl bench`: in-process against the pipeline, or over
/// HTTP against a running ledgerd (`--url`), which takes only `records`,
/// `concurrency`, `batch` and `seed`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Records to append in each peak round (over --url: in all).
    /// The default is long enough that the index builds the acks leave
    /// behind cannot all wait for later (a pipeline holds at most four
    /// spans of 65,536 unbuilt leaves), so the peak is one the ledger
    /// sustains.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Peak rounds (in-process runs; default 3): each times the ledger,
    /// then raw RocksDB writing the same bytes; the medians are compared.
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Records the paced phase appends, and the raw paced baselines write
    /// (in-process runs); default: twice --records (about 13 s of steady
    /// load at half of the sustained peak on the project machine).
    #[arg(long)]
    pub paced_records: Option<usize>,
    /// Concurrent submitters.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Records per submission.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Records per group commit at most (in-process runs; a server
    /// has its own setting).
    #[arg(long, default_value_t = ingest::PipelineConfig::default().max_batch)]
    pub group: usize,
    /// Varies the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Records per second offered in the paced phase (in-process runs);
    /// default: half the measured sustained peak (the rate counting the
    /// index builds). A fixed pace compares two builds at the same load.
    #[arg(long)]
    pub paced: Option<f64>,
    /// Records appended before the peak is timed, through the same
    /// pipeline (in-process runs; raw RocksDB gets as many first):
    /// 0 times a process just started, more one whose memory is paged in.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Run the pipeline as `ledgerd --thread-priorities` does: its commit
    /// path at a raised CPU priority with a short time slice.
    #[arg(long)]
    pub thread_priorities: bool,
    /// Over --url: the body formats to time, in order (the first is also
    /// paced at half its peak); default cbor,json.
    #[arg(long)]
    pub formats: Option<String>,
    /// Over --url: skip the in-process pipeline baseline.
    #[arg(long)]
    pub no_baseline: bool,
}

impl BenchArgs {
    /// Refuses what cannot run: a count of 0, a pace that is not a rate,
    /// and over HTTP (`over_http`) the options of in-process runs.
    pub fn check(&self, over_http: bool) -> Result<()> {
        if self.records == 0 || self.concurrency == 0 || self.batch == 0 || self.group == 0 {
            bail!("--records, --concurrency, --batch and --group must be at least 1");
        }
        if over_http && (self.rounds.is_some() || self.paced.is_some() || self.warmup > 0) {
            bail!(
                "--rounds, --paced and --warmup apply to in-process runs only; drop them or --url"
            );
        }
        if !over_http && (self.formats.is_some() || self.no_baseline) {
            bail!("--formats and --no-baseline apply to runs over --url only");
        }
        if over_http {
            self.formats()?;
        }
        if self.paced_records == Some(0) {
            bail!("--paced-records must be at least 1");
        }
        if self.rounds == Some(0) {
            bail!("--rounds must be at least 1");
        }
        if self.paced.is_some_and(|r| !(r.is_finite() && r >= 1.0)) {
            bail!("--paced must be a number of records per second, at least 1");
        }
        Ok(())
    }
}

impl BenchArgs {
    /// The body formats of an HTTP run, in order.
    fn formats(&self) -> Result<Vec<http::Format>> {
        let list = self.formats.as_deref().unwrap_or("cbor,json");
        let formats = list
            .split(',')
            .map(|f| match f.trim() {
                "cbor" => Ok(http::Format::Cbor),
                "json" => Ok(http::Format::Json),
                other => bail!("--formats: {other:?} is not cbor or json"),
            })
            .collect::<Result<Vec<_>>>()?;
        if formats.is_empty() {
            bail!("--formats names no format");
        }
        Ok(formats)
    }
}

/// A bench's log and its indexes in `dir`, signed with a fixed key.
fn bench_log(dir: &std::path::Path) -> Result<(verifier::SignerKey, Arc<Log>, Arc<Indexes>)> {
    let signer = verifier::SignerKey::from_seed("bench.localhost/log", &[1; 32])?;
    let log = Arc::new(Log::open_with(
        &dir.join("db"),
        &signer.verifier(),
        INGEST_CFS,
    )?);
    let indexes = Indexes::open(log.clone())?;
    Ok((signer, log, indexes))
}

/// The in-process pipeline's acknowledged rate for `n` records (checked
/// before timing, as request handlers check them) from `args.concurrency`
/// submitters of `args.batch` records, in a temp dir: the baseline the
/// HTTP bench measures the server against.
pub(super) fn in_process_rate(args: &BenchArgs, n: u64, seed: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let (signer, log, indexes) = bench_log(dir.path())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .max_blocking_threads(ingest::BLOCKING_THREADS)
        .build()?;
    let pipeline = Arc::new(Pipeline::start(
        indexes.clone(),
        Some(signer.into()),
        PipelineConfig::default(),
    ));
    let subs = subs_for(0..n, seed)?;
    let phase = drive(&runtime, &pipeline, &log, subs, args, None)?;
    let rate = n as f64 / phase.elapsed.as_secs_f64();
    println!("  in-process: {rate:.0} records/s");
    drop(pipeline);
    Ok(rate)
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
        "action": {"name": if x.is_multiple_of(3) { "GET /v1/orders" } else { "POST /v1/orders" }},
        "resource": {"type": "api", "id": format!("orders-{}", x % 50)},
        "context": {"request_id": format!("req-{i}"), "trace_id": format!("{x:016x}")},
        "policy": {"engine": "opa", "id": "orders.authz", "version": format!("2026.11.{}", x % 7)},
        "decision": if x.is_multiple_of(10) { "deny" } else { "allow" },
        "credential": {"kind": "token", "id_hash": format!("sha256:{:016x}{:016x}", x, x.rotate_left(7)),
                       "issued_at": "2026-11-23T06:59:00Z", "expires_at": "2026-11-23T07:04:00Z", "ttl_s": 300}
    })
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
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
    let cpu_before = cpu::cpu_seconds();
    let threads_before = cpu::cpu_by_thread();
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
    let cpu = cpu::cpu_seconds()
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
    let mut threads: Vec<(String, f64)> = cpu::cpu_by_thread()
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

/// The checked records of ids `range`, made on every core (before any
/// timing starts).
pub(super) fn subs_for(range: std::ops::Range<u64>, seed: u64) -> Result<Vec<Submission>> {
    // One per request in ledgerd; one for the whole run here.
    let by: Arc<str> = "bench-gw".into();
    let make = |range: std::ops::Range<u64>| -> Result<Vec<Submission>> {
        range
            .map(|i| {
                let v = ingest::record::from_json(&sample_record(i, seed));
                let record =
                    ingest::input::check_record(&v, 0, &ingest::input::Sender::relay("bench-gw"))?;
                Ok(Submission {
                    record,
                    submitted_by: by.clone(),
                })
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let step = (range.end - range.start).div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<Submission>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (range.start..range.end)
            .step_by(step as usize)
            .map(|from| {
                let make = &make;
                s.spawn(move || make(from..(from + step).min(range.end)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a record generator thread panicked"))
            })
            .collect()
    });
    let mut subs = Vec::with_capacity((range.end - range.start) as usize);
    for part in parts {
        subs.extend(part?);
    }
    Ok(subs)
}

/// One round of the peak: the ledger unpaced, then raw RocksDB writing the
/// same leaf bytes in the same batch sizes.
struct Round {
    /// Records per second acknowledged (durable).
    acked: f64,
    /// Records per second counting the time until the round's last complete
    /// index span was built.
    indexed: f64,
    /// Raw RocksDB's records per second.
    raw: f64,
    to_checkpoint: Duration,
    to_built: Duration,
    phase: Phase,
    per_commit: usize,
}

/// The median of `xs` (the mean of the middle two of an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => xs[len / 2],
        len => (xs[len / 2 - 1] + xs[len / 2]) / 2.0,
    }
}

/// The leaf bytes the ledger makes of `subs` (with a fixed `received_at`),
/// for the raw baselines.
fn leaves_of(subs: &[Submission]) -> Vec<Vec<u8>> {
    subs.iter()
        .map(|s| {
            verifier::envelope::encode_parts(
                s.record.cbor(),
                "2026-11-23T07:00:00.123Z",
                "bench-gw",
            )
        })
        .collect()
}

pub fn run(args: BenchArgs) -> Result<()> {
    args.check(false)?;
    let n = args.records as u64;
    let rounds = args.rounds.unwrap_or(ROUNDS) as u64;
    let p = args.paced_records.unwrap_or(2 * args.records) as u64;
    // Ids: round r's from r·n, the paced phase's from rounds·n, the
    // warm-up's above both.
    let paced_ids = rounds * n..rounds * n + p;
    let warmup_ids = paced_ids.end..paced_ids.end + args.warmup as u64;
    let dir = tempfile::tempdir()?;
    let (signer, log, indexes) = bench_log(dir.path())?;
    let sample = subs_for(0..n.min(1_000), args.seed)?;
    let avg_leaf = sample
        .iter()
        .map(|s| s.record.cbor().len() + 72 + 8)
        .sum::<usize>()
        / sample.len().max(1);
    drop(sample);
    println!(
        "bench: {rounds} rounds of {n} records (~{avg_leaf} B leaves), {} submitters x {} records per request",
        args.concurrency, args.batch
    );
    // One runtime for every phase, its blocking threads kept between them
    // as a server keeps its own: else a phase would start by creating
    // them, and time that instead of the ledger.
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime
        .enable_time()
        .thread_keep_alive(Duration::from_secs(600))
        // As many blocking threads as ledgerd's handlers have.
        .max_blocking_threads(ingest::BLOCKING_THREADS);
    if args.thread_priorities {
        // The submitters run on this thread (`block_on`); the blocking
        // threads are ledgerd's handlers' (ingest::sched).
        ingest::sched::latency_sensitive();
        runtime.on_thread_start(ingest::sched::latency_sensitive);
    }
    let runtime = runtime.build()?;
    let config = PipelineConfig {
        thread_priorities: args.thread_priorities,
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
    // acknowledgement path) instead of the ledger.
    let pipeline = Arc::new(Pipeline::start(
        indexes.clone(),
        Some(signer.clone().into()),
        config.clone(),
    ));
    // Every store of the run lives under `dir` and is deleted at the end:
    // deleting one mid-run makes the file system discard its blocks, which
    // stalls the next phase's synced writes.
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let raw_db = rocksdb::DB::open(&opts, dir.path().join("raw"))?;
    if args.warmup > 0 {
        let w = args.warmup as u64;
        let warm_subs = subs_for(warmup_ids, args.seed)?;
        let warm_leaves = leaves_of(&warm_subs);
        let warm = drive(&runtime, &pipeline, &log, warm_subs, &args, None)?;
        println!(
            "warm-up: {w} records, {:.0} records/s (not counted)",
            w as f64 / warm.elapsed.as_secs_f64()
        );
        // Keys above the timed ones, so the timed writes are all new keys.
        raw::synced_batches(&raw_db, warm_leaves.len(), args.group, |wb, index| {
            wb.put(
                (WARMUP_KEYS + index).to_be_bytes(),
                &warm_leaves[index as usize],
            );
            Ok(())
        })?;
        raw_db.wait_for_compact(&rocksdb::WaitForCompactOptions::default())?;
        settle()?;
    }

    // The peak, as rounds that alternate the ledger and raw RocksDB, so
    // that a slower or faster minute of the disk or the machine weighs on
    // both; the medians are compared.
    let mut done: Vec<Round> = Vec::new();
    let mut leaves = Vec::new();
    for r in 0..rounds {
        let subs = subs_for(r * n..(r + 1) * n, args.seed)?;
        leaves = leaves_of(&subs);
        settle()?;
        let round = peak_round(&runtime, &pipeline, &indexes, subs, &args, |per_commit| {
            settle()?;
            raw::synced_batches(&raw_db, leaves.len(), per_commit, |wb, index| {
                wb.put((r * n + index).to_be_bytes(), &leaves[index as usize]);
                Ok(())
            })
        })?;
        let raw = round.raw;
        println!(
            "round {}/{rounds}: ledger {:.0} records/s acked ({} group commits, ~{} records each), {:.0} counting its index builds (the last built {:.0} ms after the last ack); raw RocksDB {raw:.0} records/s; {:.2}x raw",
            r + 1,
            round.acked,
            round.phase.commits,
            round.per_commit,
            round.indexed,
            round.to_built.as_secs_f64() * 1e3,
            round.acked / raw,
        );
        done.push(round);
    }
    drop(raw_db);
    let acked = median(done.iter().map(|r| r.acked).collect());
    let indexed = median(done.iter().map(|r| r.indexed).collect());
    let raw_rate = median(done.iter().map(|r| r.raw).collect());
    let ratios: Vec<f64> = done.iter().map(|r| r.acked / r.raw).collect();
    let to_checkpoint = median(done.iter().map(|r| r.to_checkpoint.as_secs_f64()).collect());
    let per_commit = done.last().map_or(1, |r| r.per_commit);
    let mut peak_latencies: Vec<Duration> = done
        .iter_mut()
        .flat_map(|r| std::mem::take(&mut r.phase.latencies))
        .collect();
    peak_latencies.sort();

    // Second baseline: raw RocksDB writing the same keys the ledger writes
    // (entry chunks, the full hash tiles) with none of its logic:
    // the ceiling this storage layout allows.
    let same_keys_rate = raw::same_keys_baseline(
        &dir.path().join("same-keys"),
        &leaves,
        per_commit,
        args.warmup,
    )?;

    // Half of the sustained peak, paced: the latency an enforcer sees
    // under normal load. Sustained: counting the index builds the acks
    // leave behind them, since a load held for long cannot leave them
    // behind (past `PipelineConfig::max_unbuilt` leaves, submissions are
    // told to back off).
    let pace = args.paced.unwrap_or(indexed / 2.0);
    let half = subs_for(paced_ids, args.seed)?;
    settle()?;
    let paced = drive(&runtime, &pipeline, &log, half, &args, Some(pace))?;
    drop(pipeline);
    // What the log takes on disk: its SST files (LZ4-compressed entry
    // chunks and the hash tiles), the memtables flushed first.
    log.flush()?;
    let stored: usize = log.stored_files()?.iter().map(|f| f.size).sum();
    let stored_per_leaf = stored as f64 / log.size().max(1) as f64;

    // The disk's own latency at that pace: raw RocksDB writing the same
    // leaf bytes from one thread, each synced WriteBatch taking every
    // request due (one per request could not keep up past ~200 k
    // records/s on this disk).
    settle()?;
    let mut defaults = rocksdb::Options::default();
    defaults.create_if_missing(true);
    let raw_paced = raw::paced_raw(
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
    let raw_paced_tuned = raw::paced_raw(
        &dir.path().join("raw-paced-tuned"),
        ledger::db_options()?,
        &leaves,
        p as usize,
        args.batch,
        pace,
        true,
    )?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "peak:      {acked:>9.0} records/s acked, the median of {rounds} rounds  ack p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&peak_latencies, 0.5)),
        ms(percentile(&peak_latencies, 0.99)),
    );
    println!("raw RocksDB WriteBatch+sync, same bytes and batch sizes: {raw_rate:>9.0} records/s, the median of the rounds between");
    println!(
        "ratio:     {:.2}x raw (the medians; round by round {:.2}-{:.2}x)",
        acked / raw_rate,
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "sustained peak, counting the index builds: {indexed:>9.0} records/s (median), {:.2}x raw",
        indexed / raw_rate
    );
    println!(
        "raw RocksDB writing the ledger's keys (entry chunks, full hash tiles), same batches: {same_keys_rate:>9.0} records/s; ledger = {:.2}x that",
        acked / same_keys_rate
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
        "last ack -> signed checkpoint: {:.0} ms, the median of the rounds (publisher interval 1 s)",
        to_checkpoint * 1e3
    );
    println!(
        "the log's files: {:.0} MB, {stored_per_leaf:.0} B per leaf of ~{avg_leaf} B (the indexes not counted)",
        stored as f64 / 1e6
    );
    Ok(())
}

/// One peak round: `subs` through the ledger unpaced, then the time from
/// the last ack to a signed checkpoint covering it and to the last
/// complete index span built (span builds run behind the acks, below the
/// stages' priority), so that work deferred past the acks shows in the
/// rate counting it; then `raw_rate`, given the records per group commit
/// the ledger reached, times raw RocksDB.
fn peak_round(
    runtime: &tokio::runtime::Runtime,
    pipeline: &Arc<Pipeline>,
    indexes: &Indexes,
    subs: Vec<Submission>,
    args: &BenchArgs,
    raw_rate: impl FnOnce(usize) -> Result<f64>,
) -> Result<Round> {
    let log = indexes.log();
    let n = subs.len();
    let phase = drive(runtime, pipeline, log, subs, args, None)?;
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
        if spans_complete(indexes, size) && to_built.is_none() {
            to_built = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (to_checkpoint, to_built) = (
        to_checkpoint.unwrap_or_default(),
        to_built.unwrap_or_default(),
    );
    let per_commit = (n / phase.commits.max(1)).max(1);
    Ok(Round {
        acked: n as f64 / phase.elapsed.as_secs_f64(),
        indexed: n as f64 / (phase.elapsed + to_built).as_secs_f64(),
        raw: raw_rate(per_commit)?,
        to_checkpoint,
        to_built,
        per_commit,
        phase,
    })
}

/// Whether every complete span of the first `size` leaves is in the
/// built indexes (the indexer thread builds them behind the acks).
fn spans_complete(indexes: &Indexes, size: u64) -> bool {
    let span = indexes.span();
    indexes.built() >= size / span * span
}

/// Waits until every complete span of the log is built.
pub(super) fn spans_built(indexes: &Indexes, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !spans_complete(indexes, indexes.log().size()) {
        if Instant::now() > deadline {
            bail!("index spans not built within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
