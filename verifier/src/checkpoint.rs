//! C2SP tlog-checkpoint: the signed tree head.
//!
//! ```text
//! <origin>\n
//! <tree size, ASCII decimal, no leading zeros>\n
//! <root hash, standard base64 of 32 bytes>\n
//! [<extension line>\n]*
//! ```
//!
//! The body is the text of a signed note ([`crate::note`]) whose key name is
//! the origin.

use crate::hash::Hash;
use crate::note::{self, NoteError, SignerKey, VerifierKey};

/// Why a checkpoint was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// The signed note around it is bad or unsigned by the key.
    #[error("checkpoint signature: {0}")]
    Note(#[from] NoteError),
    /// Fewer than three lines, or an empty line.
    #[error("checkpoint body must be origin, size and root lines, each ending in a newline")]
    Shape,
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The size is not a canonical decimal.
    #[error("checkpoint tree size {0:?} is not a decimal with no leading zeros")]
    Size(String),
    /// The root is not base64 of 32 bytes.
    #[error("checkpoint root {0:?} is not base64 of a 32-byte hash")]
    Root(String),
    /// A signature line that is neither the log's nor a witness's
    /// cosignature.
    #[error(
        "checkpoint carries a signature by {0} that is neither the log's nor a witness cosignature"
    )]
    Foreign(String),
    /// The witnesses' cosignatures do not meet the policy given.
    #[error("checkpoint cosignatures: {0}")]
    Cosignature(#[from] crate::cosignature::error::CosignatureError),
    /// The checkpoint is for another log.
    #[error("checkpoint origin {found:?} is not the key's log {expected:?}")]
    OriginMismatch {
        /// The verifier key's name.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
}

/// A parsed checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `decisions.example.org/log`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// The RFC 9162 root of those leaves.
    pub root: Hash,
    /// Optional extension lines (without newlines).
    pub extensions: Vec<String>,
}

/// Parses a canonical ASCII decimal: digits only, no leading zero unless "0".
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl Checkpoint {
    /// Parses a checkpoint body (the note text).
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let lines = text.strip_suffix('\n').ok_or(CheckpointError::Shape)?;
        let lines: Vec<&str> = lines.split('\n').collect();
        if lines.len() < 3 || lines.iter().any(|l| l.is_empty()) {
            return Err(match lines.first() {
                Some(&"") => CheckpointError::EmptyOrigin,
                _ => CheckpointError::Shape,
            });
        }
        let size = parse_decimal(lines[1]).ok_or_else(|| CheckpointError::Size(lines[1].into()))?;
        let root =
            Hash::from_base64(lines[2]).ok_or_else(|| CheckpointError::Root(lines[2].into()))?;
        Ok(Checkpoint {
            origin: lines[0].to_string(),
            size,
            root,
            extensions: lines[3..].iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The note text: origin, size and root lines, then extensions.
    pub fn to_body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Signs the body as a note by `signer`, whose name must be the origin.
    pub fn sign(&self, signer: &SignerKey) -> Result<String, CheckpointError> {
        if signer.name() != self.origin {
            return Err(CheckpointError::OriginMismatch {
                expected: signer.name().to_string(),
                found: self.origin.clone(),
            });
        }
        self.sign_by(std::slice::from_ref(signer))
    }

    /// Signs the body with each of `signers`, in that order: a log's
    /// current and next keys while it rotates keys (specs/keys.md). Every
    /// key's name must be the origin.
    pub fn sign_by(&self, signers: &[SignerKey]) -> Result<String, CheckpointError> {
        if let Some(other) = signers.iter().find(|s| s.name() != self.origin) {
            return Err(CheckpointError::OriginMismatch {
                expected: other.name().to_string(),
                found: self.origin.clone(),
            });
        }
        Ok(note::sign_by(&self.to_body(), signers)?)
    }
}

/// Verifies a signed checkpoint against the log's key and returns its body.
/// The origin must be the key's name.
pub fn open(signed: &[u8], key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let n = note::open(signed, &[key])?;
    let cp = Checkpoint::parse_body(&n.text)?;
    if cp.origin != key.name() {
        return Err(CheckpointError::OriginMismatch {
            expected: key.name().to_string(),
            found: cp.origin,
        });
    }
    Ok(cp)
}

/// [`open`] with any of the log's keys (its current one and those it
/// signed with before a key rotation, specs/keys.md): at least one must
/// have signed, and the origin must be the name of one that did.
pub fn open_any(signed: &[u8], keys: &[VerifierKey]) -> Result<Checkpoint, CheckpointError> {
    let refs: Vec<&VerifierKey> = keys.iter().collect();
    let n = note::open(signed, &refs)?;
    let cp = Checkpoint::parse_body(&n.text)?;
    let signed_by = |k: &&VerifierKey| {
        n.signatures
            .iter()
            .any(|s| s.name == k.name() && s.id == k.id())
    };
    match keys
        .iter()
        .filter(signed_by)
        .find(|k| k.name() == cp.origin)
    {
        Some(_) => Ok(cp),
        None => Err(CheckpointError::OriginMismatch {
            expected: keys
                .iter()
                .find(signed_by)
                .map_or_else(String::new, |k| k.name().to_string()),
            found: cp.origin,
        }),
    }
}
