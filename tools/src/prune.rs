//! `ledgerctl prune`: retention on a data dir (ledgerd stopped; a running
//! ledgerd prunes by itself with `--retention`). The entries of the
//! decisions received before a time are removed, their hashes kept
//! (specs/storage.md, "Retention").

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ingest::{Indexes, Pipeline, PipelineConfig};
use verifier::timestamp::Timestamp;

use crate::datadir::DataDir;

/// What to prune.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove the entries of decisions received before this time: RFC 3339,
    /// or a span back from now (400d, 12h).
    #[arg(long, value_parser = crate::when::bound)]
    pub before: String,
}

/// Prunes `dir` and says what was removed and what is kept.
pub fn run(dir: &DataDir, args: &PruneArgs) -> Result<()> {
    let t = Timestamp::parse_text(&args.before)
        .with_context(|| format!("{:?} is not a time", args.before))?;
    let log = Arc::new(dir.open_to_remove()?);
    prune(dir, &log, t)?;
    dir.removed_bytes_gone(&log)
}

/// Prunes the entries of `log` received before `t`, logs the retention
/// record, and says what was removed and what is kept.
fn prune(dir: &DataDir, log: &Arc<ledger::Log>, t: Timestamp) -> Result<()> {
    let indexes = Indexes::open(log.clone())?;
    let (p, hold) = indexes.prune_received_before_held(t, dir.path())?;
    if p.to > p.from {
        println!(
            "removed the entries of leaves {}..{} ({} decision ids); their hashes stay, so the tree, its checkpoints and the proofs of kept decisions are unchanged",
            p.from, p.to, p.ids
        );
    } else {
        println!("nothing to remove");
    }
    log_record(dir, log, &indexes, &p, t)?;
    let size = log.size();
    let kept = log.first_kept();
    if kept < size {
        println!(
            "the first kept leaf is {kept}, received at {}; {} of {size} leaves keep their entries",
            log.received_at(kept)?.canonical(),
            size - kept
        );
    }
    if let Some(h) = hold {
        println!(
            "decisions received since {} are kept: legal hold {} ({}); release it with ledgerctl hold release {}",
            h.since.canonical(),
            h.id,
            h.reason,
            h.id
        );
        return Ok(());
    }
    // Only whole entry bundles are removed, never the newest.
    let wanted = log.first_received_at_or_after(t, size)?;
    if wanted > kept {
        println!(
            "leaves {kept}..{wanted} were received before {} but are kept for now: entries are removed in whole bundles of 256, and the bundle of the newest leaf stays",
            t.canonical()
        );
    }
    Ok(())
}

/// Logs the ledger's retention record of the first kept leaf, if none
/// names it yet, and signs a checkpoint that holds it: what lets an
/// export whose window reaches below that leaf show itself complete from
/// it on (specs/export.md, "After retention").
fn log_record(
    dir: &DataDir,
    log: &Arc<ledger::Log>,
    indexes: &Arc<Indexes>,
    p: &ingest::index::retention::Pruned,
    t: Timestamp,
) -> Result<()> {
    let reason = verifier::retention::reason(
        &format!("ledgerctl prune --before {}", t.canonical()),
        log.first_kept(),
        (p.to > p.from).then_some(&t),
    );
    let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
    // The key and a pipeline only when a record is due.
    let logged = indexes.log_retention("ledgerctl prune", &reason, &now, |record| {
        let signer = dir.signer().map_err(|e| format!("{e:#}"))?;
        let pipeline = Pipeline::start(
            indexes.clone(),
            Some(signer.into()),
            PipelineConfig::default(),
        );
        let outcome = pipeline.submit_one(record);
        pipeline.shutdown();
        outcome
    });
    if let Some(by) = logged? {
        log.sign_checkpoint(&dir.signer()?)?;
        println!(
            "logged the retention record of first kept leaf {} at leaf {by}, in the checkpoint of size {}",
            log.first_kept(),
            log.size()
        );
    }
    Ok(())
}
