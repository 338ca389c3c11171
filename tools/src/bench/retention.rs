//! `ledgerctl bench-retention`: what retention costs. A log of `--records`
//! sample decisions is filled through the ingest pipeline in a temp dir;
//! then a prune of its first half is timed alone, and ingest is timed
//! with a prune of the next part running beside it, next to ingest alone
//! before and after it in the same run (docs/performance.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ingest::index::INGEST_CFS;
use ingest::{Indexes, Pipeline, PipelineConfig};
use ledger::Log;
use verifier::SignerKey;

use super::proofs::fill;
use super::spans_built;

/// Options of `ledgerctl bench-retention`.
#[derive(clap::Args)]
pub struct RetentionBenchArgs {
    /// Decisions in the log before anything is pruned.
    #[arg(long, default_value_t = 2_000_000)]
    pub records: u64,
    /// Varies the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The bytes of the files under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Decisions per second of appending `from..to` through `pipeline`.
fn ingest_rate(pipeline: &Pipeline, from: u64, to: u64, seed: u64) -> Result<f64> {
    let t = Instant::now();
    fill(pipeline, from, to, seed)?;
    Ok((to - from) as f64 / t.elapsed().as_secs_f64())
}

/// Runs the benchmark and prints its figures.
pub fn run(args: RetentionBenchArgs) -> Result<()> {
    if args.records < 4 * 65_536 {
        bail!("--records must be at least 262144 (four index spans)");
    }
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("db");
    let signer = SignerKey::from_seed("bench.example/log", &[5; 32])?;
    let log = Arc::new(Log::open_with(&db, &signer.verifier(), INGEST_CFS)?);
    let indexes = Indexes::open(log.clone())?;
    let pipeline = Pipeline::start(indexes.clone(), None, PipelineConfig::default());
    let n = args.records;
    fill(&pipeline, 0, n, args.seed)?;
    spans_built(&indexes, Duration::from_secs(3600))?;
    log.wait_for_background_work(Duration::from_secs(600))?;
    let before = du(&db);
    println!(
        "bench-retention: {n} decisions logged, {:.0} MB on disk",
        before as f64 / 1e6
    );

    // A prune alone: the first half.
    let t = Instant::now();
    let first = indexes.prune(n / 2)?;
    let took = t.elapsed();
    log.wait_for_background_work(Duration::from_secs(600))?;
    println!(
        "prune of leaves {}..{} alone: {:.2} s, {:.0} leaves/s ({} ids); disk {:.0} MB -> {:.0} MB",
        first.from,
        first.to,
        took.as_secs_f64(),
        (first.to - first.from) as f64 / took.as_secs_f64(),
        first.ids,
        before as f64 / 1e6,
        du(&db) as f64 / 1e6
    );

    // Ingest alone, beside a prune of the next quarter, and alone again.
    let step = n / 8;
    let mut at = n;
    let alone = ingest_rate(&pipeline, at, at + step, args.seed)?;
    at += step;
    let pruner = {
        let indexes = indexes.clone();
        let upto = n / 2 + n / 4;
        std::thread::spawn(move || {
            let t = Instant::now();
            indexes.prune(upto).map(|p| (p, t.elapsed()))
        })
    };
    let t = Instant::now();
    let beside = ingest_rate(&pipeline, at, at + step, args.seed)?;
    let ingest_took = t.elapsed();
    at += step;
    let (second, prune_took) = pruner
        .join()
        .map_err(|_| anyhow::anyhow!("the prune thread panicked"))?
        .context("the prune beside ingest")?;
    let again = ingest_rate(&pipeline, at, at + step, args.seed)?;
    let baseline = (alone + again) / 2.0;
    println!(
        "ingest alone: {alone:.0} and {again:.0} decisions/s (before and after); beside a prune of leaves {}..{} ({:.2} s, {:.0} leaves/s): {beside:.0} decisions/s over {:.2} s = {:.2}x ingest alone",
        second.from,
        second.to,
        prune_took.as_secs_f64(),
        (second.to - second.from) as f64 / prune_took.as_secs_f64(),
        ingest_took.as_secs_f64(),
        beside / baseline
    );
    if prune_took < ingest_took {
        println!(
            "(the prune ended {:.2} s before the ingest beside it: the ratio is diluted)",
            (ingest_took - prune_took).as_secs_f64()
        );
    }
    pipeline.shutdown();
    Ok(())
}
