//! What the ledger's own records (erasure.md, storage.md "Retention")
//! share: a leaf submitted by `ledger` whose `action.name` says which kind
//! it is, naming a leaf before its own by `resource.id`, with its facts in
//! `resource.properties`. Their `submitted_by` and `decision_id` prefixes
//! are the ledger's alone.

use ciborium::Value;

use crate::decision::{DecisionError, LoggedDecision};
use crate::envelope;
use crate::timestamp::Timestamp;
use crate::Hash;

/// The `submitted_by` of the log's own records; no token may have it.
pub const SUBMITTED_BY: &str = "ledger";

/// The `decision_id` prefixes of the log's own records: an enforcer's
/// record under one would take the id the ledger's record needs
/// ([`is_reserved`]).
pub const RESERVED_PREFIXES: [&str; 2] = ["ledger-erasure-", "ledger-retention-"];

/// Whether `decision_id` is one only the ledger's own records may have.
pub fn is_reserved(decision_id: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| decision_id.starts_with(p))
}

/// Why a leaf submitted by the ledger is not the record it says it is.
pub(crate) enum Malformed {
    /// Not a decision record.
    Decision(DecisionError),
    /// A field missing or in the wrong form.
    Field(&'static str),
}

/// A leaf read as the ledger's own record of `action` on a resource of
/// type `resource_type`: `None` for a leaf the ledger did not submit or of
/// another action; else the record and the leaf its `resource.id` names.
pub(crate) fn read(
    leaf: &[u8],
    action: &str,
    resource_type: &str,
) -> Result<Option<(LoggedDecision, u64)>, Malformed> {
    if envelope::submitted_by(leaf) != Some(SUBMITTED_BY) {
        return Ok(None);
    }
    let logged = LoggedDecision::from_leaf(leaf).map_err(Malformed::Decision)?;
    let d = &logged.decision;
    if d.action != action {
        return Ok(None);
    }
    if d.resource.kind != resource_type {
        return Err(Malformed::Field("resource.type"));
    }
    let named: u64 = d
        .resource
        .id
        .parse()
        .ok()
        .filter(|i: &u64| i.to_string() == d.resource.id)
        .ok_or(Malformed::Field("resource.id"))?;
    Ok(Some((logged, named)))
}

/// The value at `path` in nested CBOR maps.
fn value_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut v = v;
    for key in path {
        v = v
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)?;
    }
    Some(v)
}

/// The text of `resource.properties.<name>`.
pub(crate) fn property<'a>(logged: &'a LoggedDecision, name: &str) -> Option<&'a str> {
    value_at(&logged.record, &["resource", "properties", name])?.as_text()
}

/// The time of `resource.properties.<name>`, as a free-form property holds
/// it (RFC 3339 text).
pub(crate) fn time_property(logged: &LoggedDecision, name: &str) -> Option<Timestamp> {
    Timestamp::from_leaf_value(value_at(&logged.record, &["resource", "properties", name])?)
}

/// The hash of `resource.properties.<name>`: 64 lower-case hex digits.
pub(crate) fn hash_property(logged: &LoggedDecision, name: &str) -> Option<Hash> {
    let text = property(logged, name)?;
    let hash = Hash::from_slice(&hex::decode(text).ok()?)?;
    // One spelling: the one the ledger writes.
    (hash.to_hex() == text).then_some(hash)
}
