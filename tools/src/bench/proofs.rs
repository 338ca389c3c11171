//! `ledgerctl bench-proofs`: what evidence costs as the log grows. One log
//! in a temp dir is filled through the ingest pipeline to each size in
//! turn; at each, random decisions are looked up and their evidence files,
//! COSE receipts and chain bundles made as `GET /v1/decisions/{id}/…`
//! makes them, next to the baseline of one leaf read from RocksDB.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ingest::chain::{collect, HOP_LIMIT};
use ingest::index::INGEST_CFS;
use ingest::{Indexes, Pipeline, PipelineConfig};
use ledger::Log;
use verifier::SignerKey;

use super::{percentile, spans_built, subs_for};

/// Options of `ledgerctl bench-proofs`.
#[derive(clap::Args)]
pub struct ProofArgs {
    /// Log sizes to measure at, ascending, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,100000,1000000,10000000"
    )]
    pub sizes: Vec<u64>,
    /// Decisions sampled at each size.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Varies the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Records generated and submitted at a time.
const CHUNK: u64 = 100_000;
/// Records per submission.
const BATCH: usize = 1_000;
/// Submissions waiting for their acks at most.
const IN_FLIGHT: usize = 32;

/// Appends sample records `from..to` through the pipeline.
pub(super) fn fill(pipeline: &Pipeline, from: u64, to: u64, seed: u64) -> Result<()> {
    let mut start = from;
    while start < to {
        let end = (start + CHUNK).min(to);
        let mut subs = subs_for(start..end, seed)?.into_iter().peekable();
        let mut waiting = VecDeque::new();
        while subs.peek().is_some() || !waiting.is_empty() {
            if subs.peek().is_some() && waiting.len() < IN_FLIGHT {
                let batch: Vec<_> = subs.by_ref().take(BATCH).collect();
                match pipeline.submit(batch) {
                    Ok(rx) => waiting.push_back(rx),
                    Err(busy) => {
                        // Put them back in front and wait for an ack.
                        let rest: Vec<_> = busy.subs.into_iter().chain(subs).collect();
                        subs = rest.into_iter().peekable();
                        if waiting.is_empty() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                continue;
            }
            if let Some(rx) = waiting.pop_front() {
                let out = rx
                    .blocking_recv()
                    .context("the pipeline stopped before acknowledging")?;
                if let Some(bad) = out
                    .iter()
                    .find(|o| !matches!(o, ingest::Outcome::Appended { .. }))
                {
                    bail!("a sample record was not appended: {bad:?}");
                }
            }
        }
        start = end;
    }
    Ok(())
}

/// `samples` times of `f`, sorted.
fn timed(samples: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(samples);
    for s in 0..samples {
        let t = Instant::now();
        f(s)?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs the benchmark and prints a table: per size, p50 / p99 in µs.
pub fn run(args: ProofArgs) -> Result<()> {
    if args.sizes.is_empty() || args.samples == 0 || args.sizes.contains(&0) {
        bail!("--sizes and --samples must be positive");
    }
    if args.sizes.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--sizes must ascend");
    }
    let dir = tempfile::tempdir()?;
    let signer = SignerKey::from_seed("bench.example/log", &[3; 32])?;
    let log = Arc::new(Log::open_with(dir.path(), &signer.verifier(), INGEST_CFS)?);
    let indexes = Indexes::open(log.clone())?;
    let pipeline = Pipeline::start(indexes.clone(), None, PipelineConfig::default());
    println!(
        "bench-proofs: {} samples at each size; p50 / p99 in µs; the baseline is one leaf read",
        args.samples
    );
    println!(
        "{:>10}  {:>15}  {:>15}  {:>15}  {:>15}  {:>15}  {:>9}  {:>7}",
        "size",
        "leaf read",
        "id lookup",
        "evidence",
        "receipt",
        "verify evid.",
        "evid/read",
        "bytes"
    );
    let mut first_p50 = None;
    let mut size = 0;
    for &target in &args.sizes {
        let t = Instant::now();
        fill(&pipeline, size, target, args.seed)?;
        size = target;
        spans_built(&indexes, Duration::from_secs(600))?;
        let cp = log.sign_checkpoint(&signer)?;
        let filled = t.elapsed();
        // Random decisions, the same for every measurement at this size.
        let mut x = args.seed ^ target;
        let picks: Vec<u64> = (0..args.samples)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % size
            })
            .collect();
        let id = |s: usize| format!("bench-{}-{}", args.seed, picks[s]);
        let read = timed(args.samples, |s| {
            log.entry(picks[s])?;
            Ok(())
        })?;
        let lookup = timed(args.samples, |s| {
            indexes
                .lookup_decision(&id(s))?
                .context("sample not found")?;
            Ok(())
        })?;
        let mut bytes = 0;
        let mut files = Vec::with_capacity(args.samples);
        let evidence = timed(args.samples, |s| {
            let (index, _) = indexes
                .lookup_decision(&id(s))?
                .context("sample not found")?;
            let text = log.evidence(index, Some(cp.checkpoint.size))?.to_text();
            bytes = text.len();
            files.push(text);
            Ok(())
        })?;
        let receipt = timed(args.samples, |s| {
            let (index, _) = indexes
                .lookup_decision(&id(s))?
                .context("sample not found")?;
            log.receipt(index, &signer)?.encode();
            Ok(())
        })?;
        let key = signer.verifier();
        let verify = timed(args.samples, |s| {
            verifier::evidence::verify(files[s].as_bytes(), &key)?;
            Ok(())
        })?;
        let p = |v: &[Duration]| {
            format!(
                "{:.0} / {:.0}",
                us(percentile(v, 0.5)),
                us(percentile(v, 0.99))
            )
        };
        let ratio = us(percentile(&evidence, 0.5)) / us(percentile(&read, 0.5));
        println!(
            "{size:>10}  {:>15}  {:>15}  {:>15}  {:>15}  {:>15}  {ratio:>8.1}x  {bytes:>7}",
            p(&read),
            p(&lookup),
            p(&evidence),
            p(&receipt),
            p(&verify),
        );
        // A chain: every sample decision's request id is its own, so the
        // chain of one is itself and those sharing its trace id.
        let chain = timed(args.samples.min(200), |s| {
            let (index, _) = indexes
                .lookup_decision(&id(s))?
                .context("sample not found")?;
            let c = collect(&indexes, index, cp.checkpoint.size, HOP_LIMIT)?;
            log.chain_bundle(&c.indexes, c.truncated, Some(cp.checkpoint.size))?;
            Ok(())
        })?;
        println!(
            "{:>10}  chain bundle (1 hop, the index searches included) {}; filled in {:.1} s",
            "",
            p(&chain),
            filled.as_secs_f64()
        );
        let p50 = us(percentile(&evidence, 0.5));
        let base = *first_p50.get_or_insert(p50);
        if size != args.sizes[0] {
            println!(
                "{:>10}  evidence p50 is {:.2}x that at size {}",
                "",
                p50 / base,
                args.sizes[0]
            );
        }
    }
    pipeline.shutdown();
    Ok(())
}
