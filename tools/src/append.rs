//! `ledgerctl append`: decision records into a data dir, on the same path as
//! `POST /v1/decisions`: every record checked and canonicalised, wrapped in
//! the leaf envelope, appended exactly once by `decision_id` through the
//! ingest pipeline, indexed, and covered by a signed checkpoint.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ingest::input::{parse_body, Format, Sender};
use ingest::{Indexes, Outcome, Pipeline, PipelineConfig, Submission};

use crate::datadir::DataDir;
use crate::input::{self, Record};

/// Records per submission (one group commit at most).
const GROUP: usize = 1_000;

/// Appends the records in `inputs` (JSON lines or array, CBOR records or a
/// CBOR sequence; `-` is stdin) as `submitted_by`. If any record is refused,
/// nothing is appended.
pub fn run(dir: &DataDir, inputs: &[String], submitted_by: &str) -> Result<()> {
    let log = Arc::new(dir.open()?);
    let indexes = Indexes::open(log.clone())?;
    let sender = Sender::relay(submitted_by).keeping_from(indexes.kept_from()?);
    let mut checked = Vec::new();
    let mut refused = 0;
    for name in inputs {
        let mut position = 0;
        input::records(name, input::open(name)?, |record| {
            let (format, body) = match record {
                Record::Json(text) => (Format::Json, text.into_bytes()),
                Record::Cbor(item) => (Format::Cbor, item),
            };
            let parsed = parse_body(format, &body, &sender)
                .with_context(|| format!("{name}: record {position}"))?;
            for item in parsed {
                match item {
                    Ok(record) => checked.push(record),
                    Err(r) => {
                        refused += 1;
                        let reason = verifier::shown::line(&r.reason);
                        eprintln!("{name}: record {position}: {reason}");
                    }
                }
            }
            position += 1;
            Ok(())
        })?;
    }
    if refused > 0 {
        bail!("{refused} records refused; nothing was appended");
    }
    if checked.is_empty() {
        bail!("no records in {}", inputs.join(", "));
    }
    let signer = dir.signer()?;
    let pipeline = Pipeline::start(
        indexes,
        Some(signer.clone().into()),
        PipelineConfig::default(),
    );
    let by: Arc<str> = submitted_by.into();
    let mut conflicts = 0;
    for group in checked.chunks(GROUP) {
        let subs: Vec<Submission> = group
            .iter()
            .map(|record| Submission {
                record: record.clone(),
                submitted_by: by.clone(),
            })
            .collect();
        let ids: Vec<String> = group.iter().map(|r| r.decision_id.clone()).collect();
        let outcomes = pipeline
            .submit(subs)
            .map_err(|busy| anyhow::anyhow!("{busy}"))?
            .blocking_recv()
            .context("the pipeline stopped before acknowledging")?;
        for (id, outcome) in ids.iter().zip(outcomes) {
            let id = verifier::shown::line(id);
            match outcome {
                Outcome::Appended { index, .. } => println!("appended {index} {id}"),
                Outcome::Duplicate { index, .. } => println!("duplicate {index} {id}"),
                Outcome::Conflict { index } => {
                    conflicts += 1;
                    eprintln!("conflict: {id} was appended at {index} with different content");
                }
                Outcome::Failed(why) => bail!("storage failed: {why}"),
            }
        }
    }
    pipeline.shutdown();
    log.sign_checkpoint(&signer)?;
    if conflicts > 0 {
        bail!("{conflicts} records conflict with decisions already logged");
    }
    Ok(())
}
