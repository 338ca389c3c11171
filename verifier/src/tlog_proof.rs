//! C2SP tlog-proof: an offline-verifiable proof that an entry is in a log.
//!
//! ```text
//! c2sp.org/tlog-proof@v1\n
//! [extra <base64 opaque data>\n]
//! index <zero-based leaf index, decimal>\n
//! [<base64 inclusion proof hash>\n]*     (leaf's sibling upward, RFC 9162 §2.1.3.1)
//! \n
//! <signed checkpoint, verbatim>
//! ```
//!
//! Stored with the extension `.tlog-proof`. The extra data is not
//! authenticated and is never trusted here.

use crate::b64;
use crate::checkpoint::{self, parse_decimal, Checkpoint, CheckpointError};
use crate::hash::{leaf_hash, parse_hash_lines, write_hash_lines, Hash};
use crate::inclusion::{verify_inclusion, InclusionError};
use crate::note::VerifierKey;

/// The first line of every tlog-proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Why a tlog-proof was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlogProofError {
    /// The text is not a tlog-proof.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The embedded checkpoint is bad or not signed by the log's key.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof does not hold against the checkpoint.
    #[error("inclusion: {0}")]
    Inclusion(#[from] InclusionError),
}

/// A parsed (not yet verified) tlog-proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// The entry's leaf index.
    pub index: u64,
    /// The inclusion proof, leaf upward.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// Parses the text form.
    pub fn parse(data: &[u8]) -> Result<TlogProof, TlogProofError> {
        use TlogProofError::Malformed;
        let text = std::str::from_utf8(data).map_err(|_| Malformed("not UTF-8"))?;
        let rest = text
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(Malformed("first line is not c2sp.org/tlog-proof@v1"))?;
        let (head, checkpoint) = rest
            .split_once("\n\n")
            .ok_or(Malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n').peekable();
        let mut extra = None;
        if let Some(e) = lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(b64::decode(e).ok_or(Malformed("extra is not base64"))?);
            lines.next();
        }
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(parse_decimal)
            .ok_or(Malformed("no \"index <decimal>\" line"))?;
        let proof = parse_hash_lines(lines).ok_or(Malformed("proof line is not a base64 hash"))?;
        Ok(TlogProof {
            extra,
            index,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        if let Some(e) = &self.extra {
            s.push_str(&format!("extra {}\n", b64::encode(e)));
        }
        s.push_str(&format!("index {}\n", self.index));
        write_hash_lines(&mut s, &self.proof);
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Verifies that `entry` is at `self.index` in the checkpoint, which must
    /// be signed by `key`. Returns the checkpoint.
    pub fn verify(&self, entry: &[u8], key: &VerifierKey) -> Result<Checkpoint, TlogProofError> {
        let cp = checkpoint::open(self.checkpoint.as_bytes(), key)?;
        verify_inclusion(
            &leaf_hash(entry),
            self.index,
            cp.size,
            &self.proof,
            &cp.root,
        )?;
        Ok(cp)
    }
}

/// Parses and verifies a tlog-proof file for `entry` in one step.
pub fn verify(
    proof_file: &[u8],
    entry: &[u8],
    key: &VerifierKey,
) -> Result<Checkpoint, TlogProofError> {
    TlogProof::parse(proof_file)?.verify(entry, key)
}
