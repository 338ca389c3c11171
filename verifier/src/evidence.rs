//! Evidence files (specs/evidence.md): one decision, checkable offline with
//! the log's public key alone.
//!
//! ```text
//! decision-ledger/evidence@v1\n
//! leaf <standard base64 of the exact leaf bytes>\n
//! <C2SP tlog-proof of that leaf, verbatim: no extra line, and a checkpoint
//!  signed by the log's key alone>
//! ```
//!
//! Every byte is authenticated: the leaf by its hash and the inclusion
//! proof, the proof and index by the signed root, the checkpoint by its
//! signature. The parts that are not (a tlog-proof's `extra`, cosignatures)
//! are refused, so any change to a file fails [`Evidence::verify`].

use crate::b64;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::cosignature::{self, Policy, Witnessing};
use crate::decision::{DecisionError, LoggedDecision};
use crate::hash::leaf_hash;
use crate::inclusion::{verify_inclusion, InclusionError};
use crate::note::VerifierKey;
use crate::tile::MAX_ENTRY_SIZE;
use crate::tlog_proof::{TlogProof, TlogProofError};

/// The first line of every evidence file.
pub const HEADER: &str = "decision-ledger/evidence@v1";

/// Why an evidence file was rejected; the message names what failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    /// The file is not an evidence file.
    #[error("malformed evidence file: {0}")]
    Malformed(&'static str),
    /// The embedded tlog-proof does not parse.
    #[error("the tlog-proof in the evidence: {0}")]
    Proof(#[from] TlogProofError),
    /// The checkpoint is bad or not signed by the log's key (alone).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The leaf is not at the index in the signed tree.
    #[error("the leaf is not in the signed tree at the stated index: {0}")]
    Inclusion(#[from] InclusionError),
    /// The leaf is in the log, but is not a decision record.
    #[error("the logged leaf is not a readable decision: {0}")]
    Record(#[from] DecisionError),
}

/// A parsed (not yet verified) evidence file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The exact leaf bytes.
    pub leaf: Vec<u8>,
    /// Its inclusion proof and the signed checkpoint.
    pub proof: TlogProof,
}

/// What a verified evidence file proves.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The leaf's index.
    pub index: u64,
    /// The checkpoint it is included in.
    pub checkpoint: Checkpoint,
    /// The decision read from the very leaf bytes that were hashed.
    pub logged: LoggedDecision,
    /// The witnesses' cosignatures on the checkpoint.
    pub witnessing: Witnessing,
}

impl Evidence {
    /// Parses the text form.
    pub fn parse(data: &[u8]) -> Result<Evidence, EvidenceError> {
        use EvidenceError::Malformed;
        let rest = data
            .strip_prefix(HEADER.as_bytes())
            .and_then(|r| r.strip_prefix(b"\n"))
            .ok_or(Malformed(
                "the first line is not decision-ledger/evidence@v1",
            ))?;
        let rest = rest
            .strip_prefix(b"leaf ")
            .ok_or(Malformed("the second line is not \"leaf <base64>\""))?;
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(Malformed("the leaf line does not end"))?;
        let line =
            std::str::from_utf8(&rest[..end]).map_err(|_| Malformed("leaf is not base64"))?;
        let leaf = b64::decode(line).ok_or(Malformed("leaf is not base64"))?;
        if leaf.is_empty() || leaf.len() > MAX_ENTRY_SIZE {
            return Err(Malformed("leaf is empty or longer than 65,535 bytes"));
        }
        let proof = TlogProof::parse(&rest[end + 1..])?;
        if proof.extra.is_some() {
            return Err(Malformed(
                "the tlog-proof carries an extra line, which nothing authenticates",
            ));
        }
        Ok(Evidence { leaf, proof })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        format!(
            "{HEADER}\nleaf {}\n{}",
            b64::encode(&self.leaf),
            self.proof.to_text()
        )
    }

    /// Verifies the file with the log's key: the checkpoint's signature and
    /// origin, the inclusion of the leaf's hash at the index, and that the
    /// leaf is a decision record. Nothing is returned unless all hold.
    pub fn verify(&self, key: &VerifierKey) -> Result<Verified, EvidenceError> {
        self.verify_witnessed(key, &Policy::default())
    }

    /// [`Evidence::verify`], and the checkpoint's cosignatures by the
    /// witnesses of `policy` verified and reaching its quorum.
    pub fn verify_witnessed(
        &self,
        key: &VerifierKey,
        policy: &Policy,
    ) -> Result<Verified, EvidenceError> {
        let (cp, witnessing) =
            cosignature::open_witnessed(self.proof.checkpoint.as_bytes(), key, policy)?;
        verify_inclusion(
            &leaf_hash(&self.leaf),
            self.proof.index,
            cp.size,
            &self.proof.proof,
            &cp.root,
        )?;
        let logged = LoggedDecision::from_leaf(&self.leaf)?;
        Ok(Verified {
            index: self.proof.index,
            checkpoint: cp,
            logged,
            witnessing,
        })
    }
}

/// Parses and verifies an evidence file in one step.
pub fn verify(data: &[u8], key: &VerifierKey) -> Result<Verified, EvidenceError> {
    Evidence::parse(data)?.verify(key)
}

/// [`verify`] with the witnesses of `policy`.
pub fn verify_witnessed(
    data: &[u8],
    key: &VerifierKey,
    policy: &Policy,
) -> Result<Verified, EvidenceError> {
    Evidence::parse(data)?.verify_witnessed(key, policy)
}
