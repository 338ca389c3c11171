//! `ledgerctl erase`: erase decisions' entries inside the retention window
//! (specs/erasure.md), in a stopped data dir (`--data`) or through a
//! running ledgerd (`--url` with an eraser token). The decisions are named
//! on the command line, or listed in a file: one id a line, or the JSON
//! lines of `ledgerctl search --json` (every decision about one person).

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ingest::{Indexes, Pipeline, PipelineConfig, Plan};
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

/// Erases them in the stopped store of `dir`.
pub fn run_local(dir: &DataDir, args: &EraseArgs) -> Result<()> {
    let Some(requested_by) = &args.requested_by else {
        bail!("erase --data: say who asks for the erasure with --requested-by (it is logged)");
    };
    let ids = args.ids()?;
    let log = Arc::new(dir.open()?);
    let indexes = Indexes::open(log.clone())?;
    let signer = dir.signer()?;
    let pipeline = Pipeline::start(
        indexes.clone(),
        Some(signer.clone().into()),
        PipelineConfig::default(),
    );
    let req = Request {
        requested_by,
        reason: &args.reason,
        ticket: args.ticket.as_deref(),
    };
    let erase_one = |id: &str| -> Result<Done> {
        let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
        let planned = match indexes.plan_erasure(id, &req, &now, Some(dir.path()))? {
            Plan::Done(e) => return Ok(Done::Before(e.index, e.by)),
            Plan::Erase(planned) => planned,
        };
        let outcome = pipeline
            .submit_one(planned.record.clone())
            .map_err(|why| anyhow::anyhow!("the erasure record: {why}"))?;
        // The record in a signed checkpoint before anything is removed.
        log.sign_checkpoint(&signer)?;
        let erased = indexes.finish_erasure(&planned, &outcome)?;
        Ok(Done::Now(erased.index, erased.by))
    };
    let result = each(&ids, erase_one);
    pipeline.shutdown();
    log.sign_checkpoint(&signer)?;
    result
}

/// Asks the ledgerd of `remote` to erase them.
pub fn run_remote(remote: &Remote, args: &EraseArgs) -> Result<()> {
    if args.requested_by.is_some() {
        bail!("erase --url: the eraser token's name is who asks; leave out --requested-by");
    }
    let ids = args.ids()?;
    let mut body = serde_json::json!({ "reason": args.reason });
    if let Some(t) = &args.ticket {
        body["ticket"] = t.clone().into();
    }
    let body = body.to_string();
    // Each erasure waits for a checkpoint that holds its record (about a
    // second): several at a time share the wait.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Vec<(usize, Result<Done>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..AT_ONCE.min(ids.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(id) = ids.get(i) else { break };
                        let r = erase_remote(remote, id, body.as_bytes());
                        if r.is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut done: Vec<Option<Result<Done>>> = ids.iter().map(|_| None).collect();
    for (i, r) in results.into_iter().flatten() {
        done[i] = Some(r);
    }
    // Said in the order asked, up to the first that failed or was not asked.
    let mut done = done.into_iter();
    each(&ids, |_| {
        done.next()
            .flatten()
            .unwrap_or_else(|| Err(anyhow::anyhow!("not asked: an erasure before it failed")))
    })
}

/// Erasures sent to ledgerd at a time.
const AT_ONCE: usize = 8;

/// One erasure through ledgerd, asked again while the server says to
/// (busy, or the record not yet in a checkpoint): an erasure asked twice
/// is done once.
fn erase_remote(remote: &Remote, id: &str, body: &[u8]) -> Result<Done> {
    let path = format!("/v1/decisions/{}/erasure", remote::encode(id));
    let reply = Remote::while_busy(|| remote.post(&path, "application/json", body))?;
    if reply.status != 200 {
        bail!(
            "erase refused ({}): {}",
            reply.status,
            verifier::shown::line(&reply.error_text())
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&reply.body).context("the erasure answer is not JSON")?;
    let (Some(index), Some(by)) = (v["index"].as_u64(), v["erasure"]["index"].as_u64()) else {
        bail!("the erasure answer lacks the leaf: {}", reply.text().trim());
    };
    Ok(match v["erased"] == "before" {
        true => Done::Before(index, by),
        false => Done::Now(index, by),
    })
}

/// Erases each of `ids` in turn with `erase`, saying what became of it;
/// stops at the first that fails, saying how far it got.
fn each(ids: &[String], mut erase: impl FnMut(&str) -> Result<Done>) -> Result<()> {
    let (mut now, mut before) = (0, 0);
    for id in ids {
        let shown = verifier::shown::line(id);
        match erase(id) {
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
                let done = match now + before {
                    0 => String::new(),
                    n => format!(" ({n} of the {} before it done)", ids.len()),
                };
                return Err(e.context(format!("erasing {shown}{done}")));
            }
        }
    }
    if ids.len() > 1 {
        println!("{now} erased now, {before} before");
    }
    Ok(())
}
