//! `ledgerctl erase`: erase decisions' entries inside the retention window
//! (specs/erasure.md), in a stopped data dir (`--data`) or through a
//! running ledgerd (`--url` with an eraser token). The decisions are named
//! on the command line, or listed in a file: one id a line, or the JSON
//! lines of `ledgerctl search --json` (every decision about one person).

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ingest::{Indexes, Pipeline, PipelineConfig};
use verifier::erasure::Request;

use crate::datadir::DataDir;
use crate::remote::{self, Remote};

/// What to erase, and why.
#[derive(clap::Args, Debug)]
pub struct EraseArgs {
    /// The decisions' `decision_id`s.
    pub decision_ids: Vec<String>,
    /// Also every decision listed in this file (`-`: stdin): one
    /// `decision_id` a line, or the JSON lines of `ledgerctl search
    /// --json` (to erase every decision a search finds).
    #[arg(long)]
    pub ids_from: Option<String>,
    /// Why they are erased (logged in each erasure record).
    #[arg(long)]
    pub reason: String,
    /// The request's ticket, if any (logged too).
    #[arg(long)]
    pub ticket: Option<String>,
    /// Who asks (a person or team, logged as the records' subject). With
    /// --url it is the eraser token's name.
    #[arg(long)]
    pub requested_by: Option<String>,
}

/// What became of one erasure.
enum Done {
    /// Erased now: its leaf and its erasure record's.
    Now(u64, u64),
    /// Erased before.
    Before(u64, u64),
}

impl EraseArgs {
    /// Every id to erase, in order, each once.
    fn ids(&self) -> Result<Vec<String>> {
        let mut ids = self.decision_ids.clone();
        if let Some(name) = &self.ids_from {
            for (n, line) in crate::input::open(name)?.lines().enumerate() {
                let line = line.with_context(|| format!("reading {name}"))?;
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let id = match line.starts_with('{') {
                    true => serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["decision_id"].as_str().map(str::to_string))
                        .with_context(|| {
                            format!("{name} line {}: JSON without a decision_id", n + 1)
                        })?,
                    false => line.to_string(),
                };
                ids.push(id);
            }
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        if ids.is_empty() {
            bail!("erase: name the decisions to erase, or give --ids-from FILE");
        }
        Ok(ids)
    }
}

/// Erasures asked for at a time: as many as `POST /v1/erasures` takes.
const BATCH: usize = 1_000;

/// Erases them in the stopped store of `dir`, a batch at a time: the
/// records of a batch logged in one commit, then a checkpoint, then the
/// entries removed.
pub fn run_local(dir: &DataDir, args: &EraseArgs) -> Result<()> {
    let Some(requested_by) = &args.requested_by else {
        bail!("erase --data: say who asks for the erasure with --requested-by (it is logged)");
    };
    let ids = args.ids()?;
    let req = Request {
        requested_by,
        reason: &args.reason,
        ticket: args.ticket.as_deref(),
    };
    // Once for every id, as ledgerd checks a batch, before the store opens.
    ingest::check_request(&req)?;
    let log = Arc::new(dir.open_to_remove()?);
    let indexes = Indexes::open(log.clone())?;
    let signer = dir.signer()?;
    let pipeline = Pipeline::start(
        indexes.clone(),
        Some(signer.clone().into()),
        PipelineConfig::default(),
    );
    let erase_batch = |ids: &[String]| -> Result<Vec<Result<Done>>> {
        let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
        let batch = indexes.plan_erasures(ids, &req, &now, Some(dir.path()));
        let records = batch.records();
        let mut outcomes = Vec::new();
        if !records.is_empty() {
            outcomes = pipeline
                .submit(records)
                .map_err(|busy| anyhow::anyhow!("the erasure records: {busy}"))?
                .blocking_recv()
                .context("the pipeline stopped before acknowledging")?;
            // The records in a signed checkpoint before anything is removed.
            log.sign_checkpoint(&signer)?;
        }
        Ok(indexes
            .finish_batch(batch, &outcomes)
            .into_iter()
            .map(|r| {
                let (e, now) = r?;
                Ok(match now {
                    true => Done::Now(e.index, e.by),
                    false => Done::Before(e.index, e.by),
                })
            })
            .collect())
    };
    let done = in_batches(&ids, erase_batch);
    pipeline.shutdown();
    log.sign_checkpoint(&signer)?;
    report(&ids, done)?;
    dir.removed_bytes_gone(&log)
}

/// Asks the ledgerd of `remote` to erase them, a batch at a time
/// (`POST /v1/erasures`).
pub fn run_remote(remote: &Remote, args: &EraseArgs) -> Result<()> {
    if args.requested_by.is_some() {
        bail!("erase --url: the eraser token's name is who asks; leave out --requested-by");
    }
    let ids = args.ids()?;
    report(
        &ids,
        in_batches(&ids, |batch| erase_remote(remote, batch, args)),
    )
}

/// One batch through ledgerd. Erasures it answers 503 for (busy, or the
/// records not yet in a checkpoint) are asked again after the wait it
/// names, for up to [`remote::BUSY_WAIT`]: an erasure asked twice is done
/// once.
fn erase_remote(remote: &Remote, batch: &[String], args: &EraseArgs) -> Result<Vec<Result<Done>>> {
    let mut results: Vec<Option<Result<Done>>> = batch.iter().map(|_| None).collect();
    let deadline = std::time::Instant::now() + remote::BUSY_WAIT;
    loop {
        let open: Vec<usize> = (0..batch.len()).filter(|&i| results[i].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let mut body = serde_json::json!({
            "decision_ids": open.iter().map(|&i| &batch[i]).collect::<Vec<_>>(),
            "reason": args.reason,
        });
        if let Some(t) = &args.ticket {
            body["ticket"] = t.clone().into();
        }
        let reply = Remote::while_busy(|| {
            remote.post(
                "/v1/erasures",
                "application/json",
                body.to_string().as_bytes(),
            )
        })?;
        if reply.status != 200 {
            bail!(
                "erase refused ({}): {}",
                reply.status,
                verifier::shown::line(&reply.error_text())
            );
        }
        let v: serde_json::Value =
            serde_json::from_slice(&reply.body).context("the erasure answer is not JSON")?;
        let answers = v["results"]
            .as_array()
            .filter(|a| a.len() == open.len())
            .with_context(|| {
                format!(
                    "the erasure answer lacks its results: {}",
                    reply.text().trim()
                )
            })?;
        let mut retry = false;
        for (&i, a) in open.iter().zip(answers) {
            match (
                a["status"].as_u64(),
                a["index"].as_u64(),
                a["erasure"]["index"].as_u64(),
            ) {
                (None, Some(index), Some(by)) => {
                    results[i] = Some(Ok(match a["erased"] == "before" {
                        true => Done::Before(index, by),
                        false => Done::Now(index, by),
                    }));
                }
                (Some(503), _, _) if std::time::Instant::now() < deadline => retry = true,
                (status, _, _) => {
                    results[i] = Some(Err(anyhow::anyhow!(
                        "refused ({}): {}",
                        status.map_or_else(|| "?".to_string(), |s| s.to_string()),
                        verifier::shown::line(a["error"].as_str().unwrap_or("no reason given"))
                    )));
                }
            }
        }
        if retry {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// What became of the ids asked for, in order, and why the rest were not
/// asked (a batch that failed as a whole).
type Outcomes = (Vec<Result<Done>>, Option<anyhow::Error>);

/// Erases `ids` [`BATCH`] at a time with `erase`, up to a batch that fails
/// as a whole.
fn in_batches(
    ids: &[String],
    mut erase: impl FnMut(&[String]) -> Result<Vec<Result<Done>>>,
) -> Outcomes {
    let mut results = Vec::with_capacity(ids.len());
    for batch in ids.chunks(BATCH) {
        match erase(batch) {
            Ok(done) => results.extend(done),
            Err(e) => return (results, Some(e)),
        }
    }
    (results, None)
}

/// Says what became of each of `ids`, and fails if any was not erased.
fn report(ids: &[String], (results, failed): Outcomes) -> Result<()> {
    let (mut now, mut before, mut refused) = (0, 0, Vec::new());
    for (id, r) in ids.iter().zip(results) {
        let shown = verifier::shown::line(id);
        match r {
            Ok(Done::Now(index, by)) => {
                now += 1;
                println!(
                    "erased leaf {index} ({shown}): its entry is gone, its hash stays in the tree; the erasure record {} is leaf {by}",
                    verifier::erasure::decision_id(index)
                );
            }
            Ok(Done::Before(index, by)) => {
                before += 1;
                println!(
                    "leaf {index} ({shown}) was erased before, by the erasure record at leaf {by}"
                );
            }
            Err(e) => {
                eprintln!("not erased: {shown}: {e:#}");
                refused.push(shown);
            }
        }
    }
    if ids.len() > 1 {
        println!("{now} erased now, {before} before");
    }
    let asked = now + before + refused.len();
    match (failed, refused.first()) {
        (Some(e), _) => Err(e.context(format!(
            "erasing: {} of {} decisions not asked ({now} erased now, {before} before, {} refused)",
            ids.len() - asked,
            ids.len(),
            refused.len()
        ))),
        (None, Some(first)) if refused.len() == 1 => bail!("{first} was not erased"),
        (None, Some(first)) => bail!(
            "{} of {} decisions were not erased (the first: {first})",
            refused.len(),
            ids.len()
        ),
        (None, None) => Ok(()),
    }
}
