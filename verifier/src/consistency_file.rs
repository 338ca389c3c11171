//! The consistency proof file that `ledgerctl prove-consistency` writes and
//! `ledger-verify consistency` reads (specs/consistency-proof.md):
//!
//! ```text
//! old <old tree size>\n
//! new <new tree size>\n
//! [<base64 proof hash>\n]*      (RFC 9162 §2.1.4.1 order)
//! ```

use crate::checkpoint::{self, parse_decimal, Checkpoint, CheckpointError};
use crate::consistency::{verify_consistency, ConsistencyError};
use crate::hash::{parse_hash_lines, write_hash_lines, Hash};
use crate::note::VerifierKey;

/// Why a consistency proof file or its check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsistencyFileError {
    /// The file does not parse.
    #[error("malformed consistency proof: {0}")]
    Malformed(&'static str),
    /// One of the checkpoints is bad.
    #[error("{which} checkpoint: {source}")]
    Checkpoint {
        /// "old" or "new".
        which: &'static str,
        /// What was wrong.
        source: CheckpointError,
    },
    /// The proof is for other sizes than the checkpoints'.
    #[error("proof is for sizes {proof_old} -> {proof_new}, checkpoints are {old} -> {new}")]
    SizeMismatch {
        /// Sizes in the proof file.
        proof_old: u64,
        /// Sizes in the proof file.
        proof_new: u64,
        /// Old checkpoint size.
        old: u64,
        /// New checkpoint size.
        new: u64,
    },
    /// The proof does not hold.
    #[error("consistency: {0}")]
    Consistency(#[from] ConsistencyError),
    /// The old and new keys are not of one log (their names differ).
    #[error(
        "the old key is of log {old:?}, the new key of log {new:?}: a log's keys share its origin"
    )]
    OtherLog {
        /// The old key's name.
        old: String,
        /// The new key's name.
        new: String,
    },
}

/// A consistency proof between two tree sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyFile {
    /// The earlier size.
    pub old_size: u64,
    /// The later size.
    pub new_size: u64,
    /// The proof hashes.
    pub proof: Vec<Hash>,
}

impl ConsistencyFile {
    /// Parses the text form.
    pub fn parse(data: &[u8]) -> Result<ConsistencyFile, ConsistencyFileError> {
        use ConsistencyFileError::Malformed;
        let text = std::str::from_utf8(data).map_err(|_| Malformed("not UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or(Malformed("no final newline"))?;
        let mut lines = body.split('\n');
        let mut size = |prefix: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(prefix))
                .and_then(parse_decimal)
        };
        let old_size = size("old ").ok_or(Malformed("no \"old <size>\" line"))?;
        let new_size = size("new ").ok_or(Malformed("no \"new <size>\" line"))?;
        let proof = parse_hash_lines(lines).ok_or(Malformed("proof line is not a base64 hash"))?;
        Ok(ConsistencyFile {
            old_size,
            new_size,
            proof,
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!("old {}\nnew {}\n", self.old_size, self.new_size);
        write_hash_lines(&mut s, &self.proof);
        s
    }

    /// Verifies both signed checkpoints with `key` and that the new one
    /// extends the old one. Returns both checkpoints.
    pub fn verify(
        &self,
        old_signed: &[u8],
        new_signed: &[u8],
        key: &VerifierKey,
    ) -> Result<(Checkpoint, Checkpoint), ConsistencyFileError> {
        self.verify_across(old_signed, key, new_signed, key)
    }

    /// [`ConsistencyFile::verify`] across a key rotation (specs/keys.md):
    /// the old checkpoint signed by `old_key`, the new one by `new_key`,
    /// two keys of the same log (the same name, its origin).
    pub fn verify_across(
        &self,
        old_signed: &[u8],
        old_key: &VerifierKey,
        new_signed: &[u8],
        new_key: &VerifierKey,
    ) -> Result<(Checkpoint, Checkpoint), ConsistencyFileError> {
        if old_key.name() != new_key.name() {
            return Err(ConsistencyFileError::OtherLog {
                old: old_key.name().to_string(),
                new: new_key.name().to_string(),
            });
        }
        let open = |which, signed, key| {
            checkpoint::open(signed, key)
                .map_err(|source| ConsistencyFileError::Checkpoint { which, source })
        };
        let (old, new) = (
            open("old", old_signed, old_key)?,
            open("new", new_signed, new_key)?,
        );
        if (old.size, new.size) != (self.old_size, self.new_size) {
            return Err(ConsistencyFileError::SizeMismatch {
                proof_old: self.old_size,
                proof_new: self.new_size,
                old: old.size,
                new: new.size,
            });
        }
        verify_consistency(old.size, new.size, &old.root, &new.root, &self.proof)?;
        Ok((old, new))
    }
}
