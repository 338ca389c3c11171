//! `ledgerctl mirror --print`: each decision a sync proves, as one line on
//! stdout for a SIEM's forwarder, in the form an export writes it
//! (`verifier::export::lines`: `decisions.jsonl` or `ocsf.jsonl`). A sync
//! prints before it stores the checkpoint that covers what it printed, so
//! a mirror stopped in between prints those decisions again at its next
//! sync: every decision at least once, a repeat told by its leaf index and
//! hash. Leaves whose entries the log removed (retention, erasure) are
//! not printed: there is no record left to print.

use std::io::Write;

use anyhow::{Context, Result};
use verifier::decision::LoggedDecision;
use verifier::export::lines;

/// The form of each printed decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Print {
    /// An export's `decisions.jsonl` line: the record with its leaf index,
    /// leaf hash, `received_at` and `submitted_by`.
    Jsonl,
    /// An export's `ocsf.jsonl` line: an OCSF API Activity event (class
    /// 6003), mapped as specs/export.md says.
    Ocsf,
}

/// Writes decisions in one form to `out`.
pub(super) struct Printer<W: Write> {
    form: Print,
    /// The log's origin, which OCSF events name as their product.
    origin: String,
    out: W,
}

impl<W: Write> Printer<W> {
    pub(super) fn new(form: Print, origin: &str, out: W) -> Printer<W> {
        Printer {
            form,
            origin: origin.to_string(),
            out,
        }
    }

    /// Prints the decision in the entry of leaf `index`; an entry that is
    /// not one (another kind of log) is passed over.
    pub(super) fn entry(&mut self, index: u64, entry: &[u8]) -> Result<()> {
        let Ok(logged) = LoggedDecision::from_leaf(entry) else {
            return Ok(());
        };
        let line = match self.form {
            Print::Jsonl => lines::jsonl(index, &logged),
            Print::Ocsf => lines::ocsf(index, &logged, &self.origin),
        };
        self.out
            .write_all(line.as_bytes())
            .context("printing a decision")
    }

    /// Hands what was printed on (before the checkpoint is stored).
    pub(super) fn flush(&mut self) -> Result<()> {
        self.out.flush().context("printing decisions")
    }
}
