//! Why cosignatures were rejected: apart from the cosignature module, so
//! that checkpoint errors can carry one without the checkpoint module
//! depending on cosignatures.

use crate::note::NoteError;

/// Why cosignatures were rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CosignatureError {
    /// The note itself does not parse.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A line with a known witness's name and key ID that is not a
    /// timestamp and a signature of the key's type, or whose timestamp is
    /// over 2^63-1.
    #[error("cosignature by {0} is malformed (not a timestamp and a signature of its key's type)")]
    Malformed(String),
    /// A line with a known witness's name and key ID that does not verify.
    #[error("cosignature by {0} does not verify")]
    Invalid(String),
    /// The same witness cosigned twice.
    #[error("checkpoint has two cosignatures by {0}")]
    Duplicate(String),
    /// Fewer known witnesses cosigned than the policy asks for.
    #[error("checkpoint has {have} of the {need} cosignatures wanted (none from {missing})")]
    Quorum {
        /// Witnesses whose cosignatures verified.
        have: usize,
        /// The quorum.
        need: usize,
        /// The witnesses that did not cosign, comma separated.
        missing: String,
    },
    /// The text to cosign (or the text an ML-DSA-44 cosignature is checked
    /// against) is not a checkpoint body.
    #[error("not a checkpoint body: cannot cosign or check a cosignature")]
    NotCheckpoint,
}
