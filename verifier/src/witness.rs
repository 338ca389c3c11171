//! C2SP tlog-witness `add-checkpoint`: how a log asks a witness to cosign
//! a checkpoint, and the checks a witness makes before it does. Pure: the
//! witness's state, key and clock are arguments, and the caller persists the
//! new state before answering (atomically with the check, per the spec).
//!
//! ```text
//! POST <submission prefix>/add-checkpoint
//!
//! old <size of the witness's latest checkpoint of this log>\n
//! <base64 consistency proof hash>\n        (zero to 63 lines)
//! \n
//! <signed checkpoint>
//! ```
//!
//! | answer | when |
//! |---|---|
//! | 200, cosignature lines | cosigned |
//! | 400 | the body does not parse, or `old` exceeds the checkpoint's size |
//! | 403 | the checkpoint is not signed by the log's key |
//! | 404 | the origin is not a log the witness follows |
//! | 409, `text/x.tlog.size` body `<size>\n` | `old` is not the witness's latest size |
//! | 409 | same size as the latest, another root |
//! | 422 | the consistency proof does not verify |
//!
//! specs/witness.md.

use crate::checkpoint::{self, parse_decimal, Checkpoint};
use crate::consistency::verify_consistency;
use crate::cosignature::WitnessSigner;
use crate::hash::Hash;
use crate::note::{Note, VerifierKey};

/// Most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// The media type of a 409 answer's body: the witness's latest size.
pub const SIZE_MEDIA_TYPE: &str = "text/x.tlog.size";

/// An `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the latest checkpoint the witness is believed to hold.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> String {
        let mut s = format!("old {}\n", self.old);
        for h in &self.proof {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, AddError> {
        let bad = |why: &str| AddError::BadRequest(why.to_string());
        let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal)
            .ok_or_else(|| bad("first line is not `old <size>`"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            proof.push(
                Hash::from_base64(line)
                    .ok_or_else(|| bad("a consistency proof line is not a base64 hash"))?,
            );
        }
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }
}

/// The latest checkpoint a witness cosigned for one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// Why a witness refused to cosign; each maps to one HTTP status.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddError {
    /// The request does not parse, or `old` exceeds the checkpoint's size: 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Not signed by the log's key: 403.
    #[error("checkpoint is not signed by the log's key: {0}")]
    Forbidden(String),
    /// The origin is not a log this witness follows: 404.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// `old` is not the size of the witness's latest checkpoint: 409 with
    /// that size.
    #[error("the witness's latest checkpoint of this log has size {0}")]
    OldSize(u64),
    /// Same size as the witness's latest checkpoint, another root: 409.
    #[error("checkpoint of size {0} has another root than the one the witness cosigned")]
    RootConflict(u64),
    /// The consistency proof does not verify: 422.
    #[error("consistency proof does not verify: {0}")]
    Inconsistent(String),
}

impl AddError {
    /// The HTTP status the witness answers.
    pub fn status(&self) -> u16 {
        match self {
            AddError::BadRequest(_) => 400,
            AddError::Forbidden(_) => 403,
            AddError::UnknownOrigin(_) => 404,
            AddError::OldSize(_) | AddError::RootConflict(_) => 409,
            AddError::Inconsistent(_) => 422,
        }
    }
}

/// Checks `req` for the log whose keys are `log` (one, or more while the
/// log rotates keys: a checkpoint signed by any of them is the log's)
/// against the witness's
/// `latest` checkpoint of it (`None`: it has none), and cosigns it with
/// `witness` at `now` (seconds since the epoch). Returns the new latest
/// checkpoint, which the caller must persist before answering, and the
/// cosignature line.
pub fn add_checkpoint(
    req: &AddCheckpoint,
    log: &[VerifierKey],
    latest: Option<&Latest>,
    witness: &WitnessSigner,
    now: u64,
) -> Result<(Latest, String), AddError> {
    let origin = req.checkpoint.split('\n').next().unwrap_or_default();
    if !log.iter().any(|k| k.name() == origin) {
        return Err(AddError::UnknownOrigin(origin.to_string()));
    }
    let cp: Checkpoint = checkpoint::open_any(req.checkpoint.as_bytes(), log)
        .map_err(|e| AddError::Forbidden(e.to_string()))?;
    if req.old > cp.size {
        return Err(AddError::BadRequest(format!(
            "old size {} exceeds the checkpoint's size {}",
            req.old, cp.size
        )));
    }
    let held = latest.map_or(0, |l| l.size);
    if req.old != held {
        return Err(AddError::OldSize(held));
    }
    match latest {
        Some(l) if l.size == cp.size && (l.root != cp.root || !req.proof.is_empty()) => {
            return Err(AddError::RootConflict(cp.size));
        }
        // Equal sizes and roots with no proof pass here too.
        Some(l) => verify_consistency(l.size, cp.size, &l.root, &cp.root, &req.proof)
            .map_err(|e| AddError::Inconsistent(e.to_string()))?,
        None if !req.proof.is_empty() => {
            return Err(AddError::Inconsistent(
                "a proof from size 0 must be empty".to_string(),
            ))
        }
        None => {}
    }
    let note =
        Note::parse(req.checkpoint.as_bytes()).map_err(|e| AddError::BadRequest(e.to_string()))?;
    let line = witness
        .cosign(&note.text, now)
        .map_err(|e| AddError::BadRequest(e.to_string()))?;
    Ok((
        Latest {
            size: cp.size,
            root: cp.root,
        },
        line,
    ))
}
