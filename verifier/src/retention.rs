//! Retention records: what the ledger logs each time retention moves its
//! first kept leaf (specs/storage.md, "Retention"; specs/export.md).
//!
//! ```text
//! leaf r ≥ K  { "v": 1, "record": {
//!                 "decision_id": "ledger-retention-<K>",
//!                 "time": <when the prune ran>,
//!                 "enforcer": {"id": "ledger", "kind": "other"},
//!                 "subject": {"type": "service", "id": <what pruned: "ledgerd", "ledgerctl prune">,
//!                             "identity_kind": "workload"},
//!                 "action": {"name": "ledger.retain"},
//!                 "resource": {"type": "ledger_first_kept_leaf", "id": "<K>",
//!                              "properties": {"leaf_hash": "<hex of leaf K's hash>",
//!                                             "received_at": <leaf K's received_at>}},
//!                 "policy": {"engine": "ledger", "id": "retention", "version": "1"},
//!                 "decision": "allow", "reasons": [<what was removed, and by which rule>]
//!               }, "received_at": …, "submitted_by": "ledger" }
//! ```
//!
//! It says that the entries of every leaf below K were removed, their
//! hashes kept. Every removed leaf was received at or before leaf K (log
//! order never goes back in time), so an export whose window reaches below
//! K can show itself complete from K on: it carries this record, proven in
//! its checkpoint, and leaf K, whose hash the record names.

use crate::decision::DecisionError;
use crate::own_record::{self, Malformed, SUBMITTED_BY};
use crate::timestamp::Timestamp;
use crate::Hash;

/// `action.name` of a retention record.
pub const ACTION: &str = "ledger.retain";
/// `resource.type` of a retention record: the resource is the first kept leaf.
pub const RESOURCE_TYPE: &str = "ledger_first_kept_leaf";

/// The `decision_id` of the record saying that the entries below leaf
/// `first_kept` are removed: one per first kept leaf, so a record logged
/// again after a crash is answered as a duplicate.
pub fn decision_id(first_kept: u64) -> String {
    format!("ledger-retention-{first_kept}")
}

/// What a retention record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The first leaf whose entry is kept; every entry below it is removed.
    pub first_kept: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// When it was received: every removed leaf was received at or before.
    pub first_kept_received_at: Timestamp,
    /// What pruned (`subject.id`).
    pub pruned_by: String,
    /// What was removed, and by which rule (`reasons`).
    pub reasons: Vec<String>,
    /// When the prune ran (`time`).
    pub time: Timestamp,
    /// When the ledger logged the record.
    pub received_at: Timestamp,
}

/// Why a leaf the ledger submitted as a retention record is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetentionError {
    /// A leaf submitted by the ledger is not a decision record.
    #[error("leaf {index}, submitted by the ledger, is not a decision record: {source}")]
    Decision {
        /// The leaf.
        index: u64,
        /// What is wrong with it.
        source: DecisionError,
    },
    /// A retention record lacks a field or has it in the wrong form.
    #[error("retention record at leaf {index}: {field} is missing or malformed")]
    Field {
        /// The record's leaf.
        index: u64,
        /// The field.
        field: &'static str,
    },
    /// A retention record names the first kept leaf by another hash than
    /// the tree holds.
    #[error(
        "retention record at leaf {by} names leaf {first_kept} by another hash than the tree holds"
    )]
    OtherHash {
        /// The leaf it names.
        first_kept: u64,
        /// The record's leaf.
        by: u64,
    },
    /// A retention record names a first kept leaf that is not before it.
    #[error("retention record at leaf {by} names leaf {first_kept} as the first kept, which is not before it")]
    After {
        /// The leaf it names.
        first_kept: u64,
        /// The record's leaf.
        by: u64,
    },
}

/// The first kept leaf, as a retention record names it.
#[derive(Clone, Debug)]
pub struct FirstKept<'a> {
    /// Its index.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: &'a Hash,
    /// When it was received.
    pub received_at: &'a Timestamp,
}

/// The record saying that the entries below `kept` are removed, by
/// `pruned_by` at `time`, for `reason`, as JSON for the ingest checks to
/// make canonical.
pub fn record(
    kept: &FirstKept<'_>,
    pruned_by: &str,
    reason: &str,
    time: &Timestamp,
) -> serde_json::Value {
    serde_json::json!({
        "decision_id": decision_id(kept.index),
        "time": time.canonical(),
        "enforcer": {"id": SUBMITTED_BY, "kind": "other"},
        "subject": {"type": "service", "id": pruned_by, "identity_kind": "workload"},
        "action": {"name": ACTION},
        "resource": {
            "type": RESOURCE_TYPE,
            "id": kept.index.to_string(),
            "properties": {
                "leaf_hash": kept.leaf_hash.to_hex(),
                "received_at": kept.received_at.canonical(),
            },
        },
        "policy": {"engine": "ledger", "id": "retention", "version": "1"},
        "decision": "allow",
        "reasons": [reason],
    })
}

/// The `reasons` text of a retention record: by `rule` (`retention of
/// 400d`, `ledgerctl prune --before …`), the entries below `first_kept`
/// are removed; `received_before`, the time before which the prune that
/// moved the first kept leaf removed them, when the record is logged for
/// that prune.
pub fn reason(rule: &str, first_kept: u64, received_before: Option<&Timestamp>) -> String {
    let before = received_before
        .map(|t| format!(", received before {}", t.canonical()))
        .unwrap_or_default();
    format!("{rule}: the entries of the leaves below {first_kept}{before}, are removed; their hashes stay")
}

/// Reads leaf `at`: `Some` for a retention record, `None` for any leaf the
/// ledger did not submit or that is not a retention record; a leaf the
/// ledger submitted as one that does not say what one must is an error.
pub fn read(at: u64, leaf: &[u8]) -> Result<Option<Retention>, RetentionError> {
    let field = |field| RetentionError::Field { index: at, field };
    let (logged, first_kept) = match own_record::read(leaf, ACTION, RESOURCE_TYPE) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(None),
        Err(Malformed::Decision(source)) => {
            return Err(RetentionError::Decision { index: at, source })
        }
        Err(Malformed::Field(f)) => return Err(field(f)),
    };
    if first_kept >= at {
        return Err(RetentionError::After { first_kept, by: at });
    }
    let leaf_hash = own_record::hash_property(&logged, "leaf_hash")
        .ok_or_else(|| field("resource.properties.leaf_hash"))?;
    let first_kept_received_at = own_record::time_property(&logged, "received_at")
        .ok_or_else(|| field("resource.properties.received_at"))?;
    let d = &logged.decision;
    if d.decision_id != decision_id(first_kept) {
        return Err(field("decision_id"));
    }
    Ok(Some(Retention {
        first_kept,
        leaf_hash,
        first_kept_received_at,
        pruned_by: d.subject.id.clone(),
        reasons: d.reasons.clone(),
        time: d.time,
        received_at: logged.received_at,
    }))
}

/// Follows a log's kept leaves in order and checks the retention records
/// among them: each must be well formed, and one that names the first
/// leaf kept here must name it by the hash the tree holds. (A record
/// naming an older first kept leaf, now pruned too, is checked in form
/// only: its hash is in the hash tiles, not followed here.)
#[derive(Debug, Default)]
pub struct RetentionCheck {
    /// The first kept leaf and its hash, once seen.
    first: Option<(u64, Hash)>,
    /// The leaf of the record naming it, if one does.
    pub named_by: Option<u64>,
}

impl RetentionCheck {
    /// Kept leaf `index` has hash `hash` (its entry's, or an erased one's).
    pub fn kept(&mut self, index: u64, hash: &Hash) {
        if self.first.is_none() {
            self.first = Some((index, *hash));
        }
    }

    /// Kept leaf `index` has entry `leaf`: if it is a retention record
    /// naming the first kept leaf, it must name it by its hash.
    pub fn entry(&mut self, index: u64, leaf: &[u8]) -> Result<(), RetentionError> {
        let Some(r) = read(index, leaf)? else {
            return Ok(());
        };
        match self.first {
            Some((first, hash)) if first == r.first_kept => {
                if hash != r.leaf_hash {
                    return Err(RetentionError::OtherHash {
                        first_kept: first,
                        by: index,
                    });
                }
                self.named_by = Some(index);
            }
            _ => {}
        }
        Ok(())
    }
}

/// What an audit says of the `pruned` leaves whose entries retention
/// removed (their hashes `checked` as it says), and of the record naming
/// the first kept leaf.
pub fn note(pruned: u64, checked: &str, named_by: Option<u64>) -> Option<String> {
    (pruned > 0).then(|| {
        let record = match named_by {
            Some(by) => format!(
                "the ledger's retention record at leaf {by} names leaf {pruned}, the first kept, by its hash"
            ),
            None => format!(
                "no retention record names leaf {pruned}, the first kept, yet (ledgerd logs one at its next retention pass; ledgerctl prune at its next run)"
            ),
        };
        format!("the first {pruned} leaves' entries were removed by retention: {checked}; {record}")
    })
}
