//! `ledgerctl bench-export`: a compliance export of a large window, timed
//! and its memory measured, next to the baseline of reading the same leaves
//! in the same run. A log of `--records` sample decisions is filled through
//! the ingest pipeline in a temp dir; then `ledgerctl export` and
//! `ledger-verify export` run on it as child processes, each alone, their
//! peak RSS read from /proc while they run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ingest::index::INGEST_CFS;
use ingest::{Indexes, Pipeline, PipelineConfig};
use ledger::Log;
use verifier::SignerKey;

use super::proofs::fill;
use super::spans_built;

/// Options of `ledgerctl bench-export`.
#[derive(clap::Args)]
pub struct ExportBenchArgs {
    /// Decisions in the log, all of them in the exported window.
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Also export with a filter (one subject of the sample records'
    /// 10,000): every other leaf goes as its hash.
    #[arg(long)]
    pub filtered: bool,
    /// Varies the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Build the log in this data dir (which must not exist) and keep it,
    /// instead of a temp dir (to profile an export of it afterwards).
    #[arg(long)]
    pub keep: Option<std::path::PathBuf>,
}

/// A child's wall time and peak RSS (MiB, from VmHWM, read every 20 ms).
fn measured(cmd: &mut Command) -> Result<(Duration, f64, String)> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting a child")?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{:?} failed: {text}", cmd.get_program());
    }
    Ok((elapsed, peak_kb as f64 / 1024.0, text))
}

/// The disk's sequential write rate (bytes/s): `bytes` written to a file
/// in `dir` in 1 MiB writes, then synced.
fn disk_write_rate(dir: &Path, bytes: u64) -> Result<f64> {
    use std::io::Write;
    let path = dir.join("disk-baseline");
    let block = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    let rate = bytes as f64 / t.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs the benchmark and prints its figures.
pub fn run(args: ExportBenchArgs) -> Result<()> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    let tmp = tempfile::tempdir()?;
    let data = match &args.keep {
        Some(dir) if dir.exists() => bail!("--keep {} exists already", dir.display()),
        Some(dir) => dir.clone(),
        None => tmp.path().join("data"),
    };
    let signer = SignerKey::from_seed("bench.example/log", &[5; 32])?;
    ledger::keys::save(&data, &signer)?;
    let filled = Instant::now();
    let scan = {
        let log = Arc::new(Log::open_with(
            &data.join("db"),
            &signer.verifier(),
            INGEST_CFS,
        )?);
        let indexes = Indexes::open(log.clone())?;
        let pipeline = Pipeline::start(indexes.clone(), None, PipelineConfig::default());
        fill(&pipeline, 0, args.records, args.seed)?;
        pipeline.shutdown();
        spans_built(&indexes, Duration::from_secs(3600))?;
        log.sign_checkpoint(&signer)?;
        println!(
            "bench-export: {} decisions logged in {:.1} s",
            args.records,
            filled.elapsed().as_secs_f64()
        );
        // The baseline: every leaf of the window read once, in order.
        let t = Instant::now();
        let mut bytes = 0u64;
        log.scan_entries(0, log.size(), |_, leaf| {
            bytes += leaf.len() as u64;
            Ok::<(), ledger::LedgerError>(())
        })?;
        (t.elapsed(), bytes)
    };
    let rate = |d: Duration| args.records as f64 / d.as_secs_f64();
    println!(
        "baseline, reading every leaf: {:.1} s, {:.0} leaves/s ({:.0} MB of leaves)",
        scan.0.as_secs_f64(),
        rate(scan.0),
        scan.1 as f64 / 1e6
    );
    let bin = std::env::current_exe()?;
    let verify_bin = bin.with_file_name("ledger-verify");
    let window = [
        "--from",
        "1970-01-01T00:00:00Z",
        "--to",
        "9999-01-01T00:00:00Z",
    ];
    let mut runs = vec![("whole window", vec![])];
    if args.filtered {
        runs.push(("filtered by subject", vec!["--subject", "user-42"]));
    }
    for (name, filter) in runs {
        let out = tmp.path().join(format!("export-{}", name.len()));
        let mut cmd = Command::new(&bin);
        cmd.arg("--data")
            .arg(&data)
            .arg("export")
            .args(window)
            .args(&filter)
            .arg("--out")
            .arg(&out);
        let (took, rss, _) = measured(&mut cmd)?;
        let written = dir_bytes(&out);
        println!(
            "export ({name}): {:.1} s, {:.0} decisions/s = {:.2}x the baseline read; peak RSS {rss:.0} MiB; {:.1} GB written ({:.0} B a decision, {:.0} MB/s)",
            took.as_secs_f64(),
            rate(took),
            scan.0.as_secs_f64() / took.as_secs_f64(),
            written as f64 / 1e9,
            written as f64 / args.records as f64,
            written as f64 / 1e6 / took.as_secs_f64()
        );
        if filter.is_empty() {
            // What the disk allows: its sequential write rate, over the
            // bytes an export writes per decision.
            let disk = disk_write_rate(tmp.path(), 4 << 30)?;
            println!(
                "baseline, the disk writing 4 GiB in 1 MiB writes and syncing: {:.0} MB/s, so at most {:.0} decisions/s at {:.0} B each",
                disk / 1e6,
                disk * args.records as f64 / written as f64,
                written as f64 / args.records as f64
            );
        }
        let mut cmd = Command::new(&verify_bin);
        cmd.arg("export")
            .arg(&out)
            .arg("--key")
            .arg(data.join("log.pub"));
        let (took, rss, verdict) = measured(&mut cmd)?;
        println!(
            "verify ({name}): {:.1} s, {:.0} decisions/s; peak RSS {rss:.0} MiB: {}",
            took.as_secs_f64(),
            rate(took),
            verdict.trim().chars().take(120).collect::<String>()
        );
        std::fs::remove_dir_all(&out)?;
    }
    Ok(())
}
