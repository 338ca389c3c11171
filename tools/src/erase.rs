//! `ledgerctl erase`: erase one decision's entry inside the retention
//! window (specs/erasure.md), in a stopped data dir (`--data`) or through
//! a running ledgerd (`--url` with an eraser token).

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ingest::{Indexes, Pipeline, PipelineConfig, Plan};
use verifier::erasure::Request;

use crate::datadir::DataDir;
use crate::remote::{self, Remote};

/// What to erase, and why.
#[derive(clap::Args, Debug)]
pub struct EraseArgs {
    /// The decision's `decision_id`.
    pub decision_id: String,
    /// Why it is erased (logged in the erasure record).
    #[arg(long)]
    pub reason: String,
    /// The request's ticket, if any (logged too).
    #[arg(long)]
    pub ticket: Option<String>,
    /// Who asks (a person or team, logged as the record's subject). With
    /// --url it is the eraser token's name.
    #[arg(long)]
    pub requested_by: Option<String>,
}

/// Erases it in the stopped store of `dir`.
pub fn run_local(dir: &DataDir, args: &EraseArgs) -> Result<()> {
    let Some(requested_by) = &args.requested_by else {
        bail!("erase --data: say who asks for the erasure with --requested-by (it is logged)");
    };
    let log = Arc::new(dir.open()?);
    let indexes = Indexes::open(log.clone())?;
    let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
    let req = Request {
        requested_by,
        reason: &args.reason,
        ticket: args.ticket.as_deref(),
    };
    let planned = match indexes.plan_erasure(&args.decision_id, &req, &now, Some(dir.path()))? {
        Plan::Done(e) => {
            println!(
                "leaf {} ({}) was erased before, by the erasure record at leaf {}",
                e.index,
                verifier::shown::line(&args.decision_id),
                e.by
            );
            return Ok(());
        }
        Plan::Erase(planned) => planned,
    };
    let signer = dir.signer()?;
    let pipeline = Pipeline::start(
        indexes.clone(),
        Some(signer.clone().into()),
        PipelineConfig::default(),
    );
    let outcome = pipeline
        .submit(vec![planned.record.clone()])
        .map_err(|busy| anyhow::anyhow!("{busy}"))?
        .blocking_recv()
        .context("the pipeline stopped before acknowledging")?
        .pop()
        .context("no answer for the erasure record")?;
    pipeline.shutdown();
    // The record in a signed checkpoint before anything is removed.
    log.sign_checkpoint(&signer)?;
    let erased = indexes.finish_erasure(&planned, &outcome)?;
    said(&args.decision_id, erased.index, erased.by);
    Ok(())
}

/// Asks the ledgerd of `remote` to erase it.
pub fn run_remote(remote: &Remote, args: &EraseArgs) -> Result<()> {
    if args.requested_by.is_some() {
        bail!("erase --url: the eraser token's name is who asks; leave out --requested-by");
    }
    let mut body = serde_json::json!({ "reason": args.reason });
    if let Some(t) = &args.ticket {
        body["ticket"] = t.clone().into();
    }
    let path = format!(
        "/v1/decisions/{}/erasure",
        remote::encode(&args.decision_id)
    );
    // Asked again while the server says to (busy, or the record not yet in
    // a checkpoint): an erasure asked twice is done once.
    let deadline = std::time::Instant::now() + remote::BUSY_WAIT;
    let reply = loop {
        let reply = remote.post(&path, "application/json", body.to_string().as_bytes())?;
        match (reply.status, reply.retry_after) {
            (503, Some(secs))
                if std::time::Instant::now() + std::time::Duration::from_secs(secs) <= deadline =>
            {
                std::thread::sleep(std::time::Duration::from_secs(secs));
            }
            _ => break reply,
        }
    };
    if reply.status != 200 {
        let why = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| reply.text().trim().to_string());
        bail!(
            "erase refused ({}): {}",
            reply.status,
            verifier::shown::line(&why)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&reply.body).context("the erasure answer is not JSON")?;
    let (Some(index), Some(by)) = (v["index"].as_u64(), v["erasure"]["index"].as_u64()) else {
        bail!("the erasure answer lacks the leaf: {}", reply.text().trim());
    };
    if v["erased"] == "before" {
        println!(
            "leaf {index} ({}) was erased before, by the erasure record at leaf {by}",
            verifier::shown::line(&args.decision_id)
        );
    } else {
        said(&args.decision_id, index, by);
    }
    Ok(())
}

fn said(decision_id: &str, index: u64, by: u64) {
    println!(
        "erased leaf {index} ({}): its entry is gone, its hash stays in the tree; the erasure record {} is leaf {by}",
        verifier::shown::line(decision_id),
        verifier::erasure::decision_id(index)
    );
}
