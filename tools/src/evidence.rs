//! `ledgerctl decision | evidence | receipt | chain`: one decision and the
//! proofs of it (specs/evidence.md, receipt.md, chain.md), from a data dir
//! or a running ledgerd. What is written is checked with the verifier
//! first: always from a data dir, and from a server whenever the log's key
//! is known (`--key`, or `<data>/log.pub`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ingest::chain::{collect, HOP_LIMIT};
use ingest::Indexes;
use ledger::Log;
use verifier::cosignature::Policy;
use verifier::{chain, evidence, receipt, VerifierKey};

use crate::datadir::DataDir;
use crate::remote::Remote;

/// What to fetch.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum What {
    /// Print one decision: its record, leaf index and leaf hash (JSON).
    Decision {
        /// The decision's `decision_id`.
        decision_id: String,
        /// Also write the exact leaf bytes (what proofs and receipts are for) here.
        #[arg(long)]
        leaf: Option<PathBuf>,
    },
    /// Write one decision's evidence file, checkable offline with
    /// `ledger-verify evidence` (specs/evidence.md).
    Evidence {
        /// The decision's `decision_id`.
        decision_id: String,
        /// Write it here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Against the checkpoint signed at this size (default: the latest;
        /// from a data dir, one is signed for the current size first).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Write a COSE receipt (RFC 9942) of one decision (specs/receipt.md).
    Receipt {
        /// The decision's `decision_id`.
        decision_id: String,
        /// Write it here (it is binary).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the chain bundle of every decision linked to this one, each
    /// proven against one checkpoint (specs/chain.md). Start from a
    /// decision, or from a trace or request id found in another system's
    /// logs (the chain of the first decision that carries it).
    Chain {
        /// The decision's `decision_id`.
        #[arg(required_unless_present_any = ["trace_id", "request_id"])]
        decision_id: Option<String>,
        /// Start from the first decision with this `context.trace_id`.
        #[arg(long, conflicts_with_all = ["decision_id", "request_id"])]
        trace_id: Option<String>,
        /// Start from the first decision with this `context.request_id`.
        #[arg(long, conflicts_with = "decision_id")]
        request_id: Option<String>,
        /// Write it here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The search term a chain starts from when no decision id is given
/// (clap requires one of the three).
fn start_term<'a>(
    trace_id: &'a Option<String>,
    request_id: &'a Option<String>,
) -> (&'static str, &'a str) {
    match (trace_id, request_id) {
        (Some(t), _) => ("trace_id", t),
        (None, Some(r)) => ("request_id", r),
        (None, None) => ("trace_id", ""),
    }
}

fn write_out(out: &Option<PathBuf>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => Ok(std::io::stdout().write_all(bytes)?),
    }
}

fn written(out: &Option<PathBuf>) -> String {
    out.as_ref()
        .map_or("stdout".into(), |p| p.display().to_string())
}

/// A data dir's log and indexes, opened for reading and proving.
struct Local {
    log: Arc<Log>,
    indexes: Arc<Indexes>,
}

impl Local {
    fn open(dir: &DataDir) -> Result<Local> {
        let log = Arc::new(dir.open()?);
        let indexes = Indexes::open(log.clone())?;
        Ok(Local { log, indexes })
    }

    fn find(&self, decision_id: &str) -> Result<u64> {
        match self.indexes.lookup_decision(decision_id)? {
            Some((index, _)) => Ok(index),
            None => bail!("{}", self.indexes.not_found(decision_id)),
        }
    }

    /// Signs a checkpoint for the current size, so that every decision is
    /// in one; returns its size.
    fn checkpoint(&self, dir: &DataDir) -> Result<u64> {
        Ok(self.log.sign_checkpoint(&dir.signer()?)?.checkpoint.size)
    }
}

/// The command on a data dir.
pub fn run_local(dir: &DataDir, what: What) -> Result<()> {
    let local = Local::open(dir)?;
    let key = dir.verifier()?;
    match what {
        What::Decision { decision_id, leaf } => {
            let index = local.find(&decision_id)?;
            let bytes = local.log.entry(index)?;
            let json = verifier::json::logged_json(index, &bytes)
                .context("the leaf is not a decision record")?;
            let pretty: serde_json::Value = serde_json::from_str(&json)?;
            println!("{pretty:#}");
            if let Some(path) = leaf {
                std::fs::write(&path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        What::Evidence {
            decision_id,
            out,
            size,
        } => {
            let index = local.find(&decision_id)?;
            if size.is_none() {
                local.checkpoint(dir)?;
            }
            let text = local.log.evidence(index, size)?.to_text();
            save_evidence(&key, &Policy::default(), text.as_bytes(), &out)?;
        }
        What::Receipt { decision_id, out } => {
            let index = local.find(&decision_id)?;
            local.checkpoint(dir)?;
            let bytes = local.log.receipt(index, dir.signer()?.current())?.encode();
            save_receipt(&key, &bytes, &local.log.entry(index)?, &out)?;
        }
        What::Chain {
            decision_id,
            trace_id,
            request_id,
            out,
        } => {
            let index = match decision_id {
                Some(id) => local.find(&id)?,
                None => {
                    let (name, value) = start_term(&trace_id, &request_id);
                    let q = ingest::query::Query::from_params([(name, value)])
                        .map_err(|e| anyhow::anyhow!(e))?;
                    let page = ingest::query::search(&local.indexes, &q, None, 1)?;
                    match page.indexes.first() {
                        Some(&i) => i,
                        None => bail!("no decision with {name} {value:?} in this log"),
                    }
                }
            };
            let size = local.checkpoint(dir)?;
            let found = collect(&local.indexes, index, size, HOP_LIMIT)?;
            let text = local
                .log
                .chain_bundle(&found.indexes, found.truncated, Some(size))?
                .to_text();
            save_chain(&key, &Policy::default(), text.as_bytes(), &out)?;
        }
    }
    Ok(())
}

/// The command against a running ledgerd; `key` checks what it serves.
pub fn run_remote(remote: &Remote, key: Option<VerifierKey>, what: What) -> Result<()> {
    let unchecked = || {
        eprintln!(
            "ledgerctl: NOT verified: no log key (give --key <log.pub>); check it with ledger-verify"
        )
    };
    let decision = |id: &str| format!("/v1/decisions/{}", crate::remote::encode(id));
    match what {
        What::Decision { decision_id, leaf } => {
            let body = remote.get_ok(&decision(&decision_id))?;
            let json: serde_json::Value =
                serde_json::from_slice(&body).context("the server's answer is not JSON")?;
            println!("{json:#}");
            if let Some(path) = leaf {
                let bytes = remote.get_leaf(&decision_id)?;
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        What::Evidence {
            decision_id,
            out,
            size,
        } => {
            let mut path = format!("{}/evidence", decision(&decision_id));
            if let Some(s) = size {
                path.push_str(&format!("?size={s}"));
            }
            let body = remote.get_ok(&path)?;
            match key {
                Some(key) => save_evidence(&key, remote.policy(), &body, &out)?,
                None => {
                    write_out(&out, &body)?;
                    unchecked();
                }
            }
        }
        What::Receipt { decision_id, out } => {
            let body = remote.get_ok(&format!("{}/receipt", decision(&decision_id)))?;
            match key {
                Some(key) => save_receipt(&key, &body, &remote.get_leaf(&decision_id)?, &out)?,
                None => {
                    std::fs::write(&out, &body)
                        .with_context(|| format!("writing {}", out.display()))?;
                    unchecked();
                }
            }
        }
        What::Chain {
            decision_id,
            trace_id,
            request_id,
            out,
        } => {
            let decision_id = match decision_id {
                Some(id) => id,
                None => {
                    let (name, value) = start_term(&trace_id, &request_id);
                    let path =
                        format!("/v1/search?{name}={}&limit=1", crate::remote::encode(value));
                    let page: serde_json::Value = serde_json::from_slice(&remote.get_ok(&path)?)
                        .context("the search answer is not JSON")?;
                    match page["results"][0]["decision_id"].as_str() {
                        Some(id) => id.to_string(),
                        None => bail!("no decision with {name} {value:?} in this log"),
                    }
                }
            };
            let body = remote.get_ok(&format!("{}/chain", decision(&decision_id)))?;
            match key {
                Some(key) => save_chain(&key, remote.policy(), &body, &out)?,
                None => {
                    write_out(&out, &body)?;
                    unchecked();
                }
            }
        }
    }
    Ok(())
}

fn save_evidence(
    key: &VerifierKey,
    policy: &Policy,
    bytes: &[u8],
    out: &Option<PathBuf>,
) -> Result<()> {
    let v =
        evidence::verify_witnessed(bytes, key, policy).context("the evidence does not verify")?;
    write_out(out, bytes)?;
    eprintln!(
        "evidence of decision {} (leaf {} of tree size {}, {}), verified, written to {}",
        verifier::shown::line(&v.logged.decision.decision_id),
        v.index,
        v.checkpoint.size,
        v.checkpoint.origin,
        written(out)
    );
    Ok(())
}

fn save_receipt(key: &VerifierKey, bytes: &[u8], leaf: &[u8], out: &Path) -> Result<()> {
    let (r, _) = receipt::verify(bytes, leaf, key).context("the receipt does not verify")?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "receipt of leaf {} of tree size {}, verified, written to {}",
        r.leaf_index,
        r.tree_size,
        out.display()
    );
    Ok(())
}

fn save_chain(
    key: &VerifierKey,
    policy: &Policy,
    bytes: &[u8],
    out: &Option<PathBuf>,
) -> Result<()> {
    let c =
        chain::verify_witnessed(bytes, key, policy).context("the chain bundle does not verify")?;
    write_out(out, bytes)?;
    eprintln!(
        "chain of {} decisions ({}) in tree size {}, verified, written to {}",
        c.hops.len(),
        if c.truncated {
            "truncated at the hop limit"
        } else {
            "complete"
        },
        c.checkpoint.size,
        written(out)
    );
    Ok(())
}
