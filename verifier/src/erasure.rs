//! Erasures: the entry of one leaf removed inside the retention window,
//! and the decision the ledger logs to say so (specs/erasure.md).
//!
//! ```text
//! leaf i      the erased decision: its entry is gone, its leaf hash stays
//!             (hash tiles, proofs, checkpoints unchanged); an entry
//!             bundle holds it as an entry of length 0
//! leaf j > i  { "v": 1, "record": {
//!                 "decision_id": "ledger-erasure-<i>",
//!                 "time": <when the erasure was asked for>,
//!                 "enforcer": {"id": "ledger", "kind": "other"},
//!                 "subject": {"type": "operator", "id": <requested by>, "identity_kind": "human"},
//!                 "action": {"name": "ledger.erase"},
//!                 "resource": {"type": "ledger_leaf", "id": "<i>",
//!                              "properties": {"leaf_hash": "<hex of leaf i's hash>",
//!                                             "received_at": <leaf i's received_at>,
//!                                             "decision_id": <leaf i's decision_id>,
//!                                             "record_digest": "<hex SHA-256 of its record>"}},
//!                 "policy": {"engine": "ledger", "id": "erasure", "version": "1"},
//!                 "decision": "allow", "reasons": [<why>],
//!                 "context": {"ticket": <ticket>}            only with a ticket
//!               }, "received_at": …, "submitted_by": "ledger" }
//! ```
//!
//! No enforcer submits as `ledger`, so a record submitted by it is the
//! log's own. An audit ([`ErasureCheck`]) accepts a leaf without its entry
//! only where a later leaf is such a record naming it and its hash.

use std::collections::BTreeMap;

use crate::decision::DecisionError;
use crate::own_record::{self, Malformed};
use crate::timestamp::Timestamp;
use crate::Hash;

pub use crate::own_record::SUBMITTED_BY;
/// `action.name` of an erasure record.
pub const ACTION: &str = "ledger.erase";
/// `resource.type` of an erasure record: the resource is a leaf.
pub const RESOURCE_TYPE: &str = "ledger_leaf";

/// The `decision_id` of the record erasing leaf `index`: one per leaf, so
/// an erasure asked for twice is logged once.
pub fn decision_id(index: u64) -> String {
    format!("ledger-erasure-{index}")
}

/// What an erasure record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// The leaf whose entry is erased.
    pub index: u64,
    /// Its leaf hash, which stays in the tree.
    pub leaf_hash: Hash,
    /// When the ledger received the erased decision (its `received_at`,
    /// which an export's boundary and range checks need).
    pub erased_received_at: Timestamp,
    /// The erased decision's `decision_id` and the SHA-256 of its record:
    /// what the idempotency index keeps of it, so that a retry is still
    /// answered, also by indexes rebuilt from the leaves.
    pub erased_decision: (String, [u8; 32]),
    /// Who asked for the erasure (`subject.id`).
    pub requested_by: String,
    /// Why (`reasons`).
    pub reasons: Vec<String>,
    /// When it was asked for (`time`).
    pub time: Timestamp,
    /// When the ledger logged it.
    pub received_at: Timestamp,
}

/// Why an erasure does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ErasureError {
    /// A leaf submitted by the ledger is not a decision record.
    #[error("leaf {index}, submitted by the ledger, is not a decision record: {source}")]
    Decision {
        /// The leaf.
        index: u64,
        /// What is wrong with it.
        source: DecisionError,
    },
    /// An erasure record lacks a field or has it in the wrong form.
    #[error("erasure record at leaf {index}: {field} is missing or malformed")]
    Field {
        /// The record's leaf.
        index: u64,
        /// The field.
        field: &'static str,
    },
    /// An erasure record names a leaf that is not before it.
    #[error("erasure record at leaf {by} names leaf {index}, which is not before it")]
    NotBefore {
        /// The leaf it names.
        index: u64,
        /// The record's leaf.
        by: u64,
    },
    /// An erasure record names a leaf by another hash than the tree's.
    #[error("erasure record at leaf {by} names leaf {index} by another hash than the tree holds")]
    OtherHash {
        /// The leaf it names.
        index: u64,
        /// The record's leaf.
        by: u64,
    },
    /// A leaf's entry is missing and no erasure record names it.
    #[error("leaf {index} has no entry, and no erasure record names it")]
    Unrecorded {
        /// The leaf.
        index: u64,
    },
}

/// What an erasure record says of the leaf it erases.
#[derive(Clone, Debug)]
pub struct ErasedLeaf<'a> {
    /// Its index.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: &'a Hash,
    /// When it was received.
    pub received_at: &'a Timestamp,
    /// Its decision's `decision_id`.
    pub decision_id: &'a str,
    /// SHA-256 of its decision's canonical record.
    pub digest: &'a [u8; 32],
}

/// Who asks for an erasure, and why.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// Who asks (the record's subject).
    pub requested_by: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Its ticket, if any.
    pub ticket: Option<&'a str>,
}

/// The record erasing `leaf`, asked for by `req` at `time`, as JSON for the
/// ingest checks to make canonical.
pub fn record(leaf: &ErasedLeaf<'_>, req: &Request<'_>, time: &Timestamp) -> serde_json::Value {
    let (index, requested_by, reason) = (leaf.index, req.requested_by, req.reason);
    let mut record = serde_json::json!({
        "decision_id": decision_id(index),
        "time": time.canonical(),
        "enforcer": {"id": SUBMITTED_BY, "kind": "other"},
        "subject": {"type": "operator", "id": requested_by, "identity_kind": "human"},
        "action": {"name": ACTION},
        "resource": {
            "type": RESOURCE_TYPE,
            "id": index.to_string(),
            "properties": {
                "leaf_hash": leaf.leaf_hash.to_hex(),
                "received_at": leaf.received_at.canonical(),
                "decision_id": leaf.decision_id,
                "record_digest": crate::hash::hex(leaf.digest),
            },
        },
        "policy": {"engine": "ledger", "id": "erasure", "version": "1"},
        "decision": "allow",
        "reasons": [reason],
    });
    if let Some(ticket) = req.ticket {
        record["context"] = serde_json::json!({ "ticket": ticket });
    }
    record
}

/// Reads leaf `at`: `Some` for an erasure record, `None` for any leaf the
/// ledger did not submit or that is not an erasure; a leaf the ledger
/// submitted as an erasure that does not say what one must is an error.
pub fn read(at: u64, leaf: &[u8]) -> Result<Option<Erasure>, ErasureError> {
    let field = |field| ErasureError::Field { index: at, field };
    let (logged, index) = match own_record::read(leaf, ACTION, RESOURCE_TYPE) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(None),
        Err(Malformed::Decision(source)) => {
            return Err(ErasureError::Decision { index: at, source })
        }
        Err(Malformed::Field(f)) => return Err(field(f)),
    };
    if index >= at {
        return Err(ErasureError::NotBefore { index, by: at });
    }
    let leaf_hash = own_record::hash_property(&logged, "leaf_hash")
        .ok_or_else(|| field("resource.properties.leaf_hash"))?;
    let erased_id = own_record::property(&logged, "decision_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| field("resource.properties.decision_id"))?;
    let digest = own_record::hash_property(&logged, "record_digest")
        .ok_or_else(|| field("resource.properties.record_digest"))?;
    let erased_received_at = own_record::time_property(&logged, "received_at")
        .ok_or_else(|| field("resource.properties.received_at"))?;
    let d = &logged.decision;
    if d.decision_id != decision_id(index) {
        return Err(field("decision_id"));
    }
    Ok(Some(Erasure {
        index,
        leaf_hash,
        erased_received_at,
        erased_decision: (erased_id.to_string(), *digest.as_bytes()),
        requested_by: d.subject.id.clone(),
        reasons: d.reasons.clone(),
        time: d.time,
        received_at: logged.received_at,
    }))
}

/// Follows a log's leaves in order and checks that every leaf without
/// its entry is named, with its hash, by a later erasure record.
#[derive(Debug, Default)]
pub struct ErasureCheck {
    /// Leaves without their entry not yet named by a record, with the
    /// tree's hash of each.
    open: BTreeMap<u64, Hash>,
    /// Leaves erased and named: each with the leaf of the record that
    /// names it, in log order of the records.
    pub erased_by: Vec<(u64, u64)>,
    /// Leaves an erasure record names whose entry is still there: an
    /// erasure logged but not carried out (cut short by a crash; asking
    /// again finishes it).
    pub pending: Vec<u64>,
}

impl ErasureCheck {
    /// Leaf `index` has no entry; the tree's hash of it is `hash`.
    pub fn erased(&mut self, index: u64, hash: Hash) {
        self.open.insert(index, hash);
    }

    /// Leaf `index` has entry `leaf`: if it is an erasure record, the leaf
    /// it names must have no entry and have the hash it names.
    pub fn entry(&mut self, index: u64, leaf: &[u8]) -> Result<(), ErasureError> {
        let Some(e) = read(index, leaf)? else {
            return Ok(());
        };
        match self.open.remove(&e.index) {
            Some(hash) if hash == e.leaf_hash => self.erased_by.push((e.index, index)),
            Some(_) => {
                return Err(ErasureError::OtherHash {
                    index: e.index,
                    by: index,
                })
            }
            // Named twice, or its entry is still there.
            None => self.pending.push(e.index),
        }
        Ok(())
    }

    /// Every leaf without an entry was named: the erased leaves, and those
    /// named whose entry is still there.
    pub fn finish(mut self) -> Result<ErasureCheck, ErasureError> {
        if let Some((&index, _)) = self.open.iter().next() {
            return Err(ErasureError::Unrecorded { index });
        }
        self.open.clear();
        Ok(self)
    }
}

/// What an audit says of erased leaves: how many, each named by its
/// erasure record, and those named whose entries are still there.
pub fn note(erased: u64, pending: &[u64]) -> Option<String> {
    let mut out = Vec::new();
    match erased {
        0 => {}
        1 => out.push(
            "1 leaf's entry was erased, named with its hash by a later erasure record: its hash was checked instead".into(),
        ),
        n => out.push(format!(
            "{n} leaves' entries were erased, each named with its hash by a later erasure record: their hashes were checked instead"
        )),
    }
    match pending {
        [] => {}
        [one] => out.push(format!(
            "1 leaf named by an erasure record still has its entry here (leaf {one}): a copy made before the erasure, or an erasure cut short (asking for it again finishes it)"
        )),
        [first, ..] => out.push(format!(
            "{} leaves named by erasure records still have their entries here (the first: leaf {first}): copies made before the erasures, or erasures cut short (asking for them again finishes them)",
            pending.len()
        )),
    }
    (!out.is_empty()).then(|| out.join("\n"))
}
