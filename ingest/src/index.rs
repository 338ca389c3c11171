//! Responder indexes and the idempotency key, written in the same batch as
//! the leaf (specs/storage.md, "decision indexes").
//!
//! - `decisions`: `decision_id` → leaf index (8 bytes BE) ‖ record digest (32).
//! - `postings`: `kind (1) ‖ len (2 BE) ‖ term ‖ leaf index (8 BE)` → empty, so
//!   one term's leaves are one prefix scan in log order. Time postings use the
//!   8-byte big-endian nanoseconds of the record's `time` as the term, and
//!   `i ‖ 8 ‖ leaf index` → nanoseconds lets a filter read a leaf's time.

use ledger::{IndexPut, LedgerError, Log};

use ciborium::Value;
use verifier::envelope::Envelope;

use crate::record::CheckedRecord;
use crate::schema::Timestamp;

/// Column family of the idempotency index.
pub const CF_DECISIONS: &str = "decisions";
/// Column family of the responder postings.
pub const CF_POSTINGS: &str = "postings";
/// Every column family this crate adds to the log.
pub const INGEST_CFS: &[&str] = &[CF_DECISIONS, CF_POSTINGS];

/// What a posting indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// `subject.id`.
    Subject = b's' as isize,
    /// Any `delegation[].id`.
    Actor = b'a' as isize,
    /// `resource.id`.
    Resource = b'r' as isize,
    /// `policy.id`.
    Policy = b'p' as isize,
    /// `context.request_id`.
    RequestId = b'q' as isize,
    /// `context.trace_id`.
    TraceId = b't' as isize,
    /// `context.parent_decision_id`.
    Parent = b'd' as isize,
    /// Record time (8-byte BE nanoseconds).
    Time = b'T' as isize,
}

/// `kind ‖ len ‖ term`: the prefix of all postings of one term.
pub fn term_prefix(kind: Term, term: &[u8]) -> Vec<u8> {
    let len = u16::try_from(term.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(term.len() + 11);
    k.push(kind as u8);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&term[..usize::from(len)]);
    k
}

/// The posting key of `index` under a term.
pub fn posting_key(kind: Term, term: &[u8], index: u64) -> Vec<u8> {
    let mut k = term_prefix(kind, term);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The terms a record is found by, each once.
fn terms_of(record: &CheckedRecord) -> Vec<(Term, Vec<u8>)> {
    let t = &record.terms;
    let mut out = vec![(Term::Subject, t.subject.as_bytes().to_vec())];
    let mut actors: Vec<&String> = t.actors.iter().collect();
    actors.sort();
    actors.dedup();
    out.extend(actors.iter().map(|a| (Term::Actor, a.as_bytes().to_vec())));
    out.push((Term::Resource, t.resource.as_bytes().to_vec()));
    out.push((Term::Policy, t.policy.as_bytes().to_vec()));
    for (kind, v) in [
        (Term::RequestId, &t.request_id),
        (Term::TraceId, &t.trace_id),
        (Term::Parent, &t.parent_decision_id),
    ] {
        if let Some(v) = v {
            out.push((kind, v.as_bytes().to_vec()));
        }
    }
    out.push((Term::Time, record.time.unix_nanos().to_be_bytes().to_vec()));
    out
}

/// Every index write for `records` appended at `first, first+1, …`: one
/// `decision_id` key per record, and one posting per term per batch, keyed by
/// the last leaf index of the term in the batch and listing all of them.
pub fn puts_for_batch(records: &[&CheckedRecord], first: u64) -> Vec<IndexPut> {
    let mut puts = Vec::with_capacity(records.len() * 6);
    let mut groups: std::collections::HashMap<(Term, Vec<u8>), Vec<u64>> =
        std::collections::HashMap::new();
    for (i, record) in records.iter().enumerate() {
        let index = first + i as u64;
        let mut value = index.to_be_bytes().to_vec();
        value.extend_from_slice(&record.digest);
        puts.push(IndexPut {
            cf: CF_DECISIONS,
            key: record.decision_id.as_bytes().to_vec(),
            value,
        });
        for term in terms_of(record) {
            groups.entry(term).or_default().push(index);
        }
    }
    for ((kind, term), indexes) in groups {
        let last = indexes[indexes.len() - 1];
        puts.push(IndexPut {
            cf: CF_POSTINGS,
            key: posting_key(kind, &term, last),
            value: encode_list(&indexes),
        });
    }
    puts
}

/// Ascending leaf indexes as LEB128 deltas (the first from 0).
pub fn encode_list(indexes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(indexes.len() * 2);
    let mut prev = 0;
    for &i in indexes {
        let mut d = i - prev;
        prev = i;
        loop {
            let byte = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The leaf indexes of a posting value; `None` if malformed.
pub fn decode_list(mut data: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    let mut prev: u64 = 0;
    while !data.is_empty() {
        let (mut d, mut shift) = (0u64, 0u32);
        loop {
            let (&byte, rest) = data.split_first()?;
            data = rest;
            if shift > 63 {
                return None;
            }
            d |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        prev = prev.checked_add(d)?;
        out.push(prev);
    }
    Some(out)
}

/// Where a `decision_id` was appended: its leaf index and record digest.
pub type Logged = (u64, [u8; 32]);

/// Where a `decision_id` was appended, if it was.
pub fn lookup_decision(
    log: &Log,
    decision_id: &str,
) -> Result<Option<(u64, [u8; 32])>, LedgerError> {
    match log.index_get(CF_DECISIONS, decision_id.as_bytes())? {
        Some(v) => decode_decision(decision_id, &v).map(Some),
        None => Ok(None),
    }
}

/// [`lookup_decision`] for many ids in one storage call.
pub fn lookup_decisions(log: &Log, ids: &[&str]) -> Result<Vec<Option<Logged>>, LedgerError> {
    let keys: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes()).collect();
    log.index_multi_get(CF_DECISIONS, &keys)?
        .into_iter()
        .zip(ids)
        .map(|(v, id)| v.map(|v| decode_decision(id, &v)).transpose())
        .collect()
}

fn decode_decision(decision_id: &str, v: &[u8]) -> Result<(u64, [u8; 32]), LedgerError> {
    if v.len() != 40 {
        return Err(LedgerError::Corrupt(format!(
            "decision index entry for {decision_id:?} is malformed"
        )));
    }
    let mut index = [0u8; 8];
    index.copy_from_slice(&v[..8]);
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&v[8..]);
    Ok((u64::from_be_bytes(index), digest))
}

/// What filters read from a leaf itself (not indexed, to keep appends lean).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafFacts {
    /// The record's `time`.
    pub time: Timestamp,
    /// `allow` or `deny`.
    pub decision: String,
    /// `policy.version`.
    pub policy_version: String,
}

/// Decodes the leaf at `index` for the facts filters need.
pub fn leaf_facts(log: &Log, index: u64) -> Result<LeafFacts, LedgerError> {
    let leaf = log.entry(index)?;
    let bad = |what: &str| LedgerError::Corrupt(format!("leaf {index}: {what}"));
    let env = Envelope::decode(&leaf).map_err(|e| bad(&e.to_string()))?;
    let field = |v: &Value, k: &str| -> Option<Value> {
        v.as_map()?
            .iter()
            .find(|(key, _)| key.as_text() == Some(k))
            .map(|(_, v)| v.clone())
    };
    let text = |v: Option<Value>| -> Option<String> {
        match v? {
            Value::Text(s) => Some(s),
            Value::Tag(_, inner) => inner.as_text().map(str::to_string),
            _ => None,
        }
    };
    let time = text(field(&env.record, "time"))
        .and_then(|t| Timestamp::parse_text(&t))
        .ok_or_else(|| bad("no time"))?;
    let decision = text(field(&env.record, "decision")).ok_or_else(|| bad("no decision"))?;
    let policy_version = field(&env.record, "policy")
        .and_then(|p| text(field(&p, "version")))
        .ok_or_else(|| bad("no policy.version"))?;
    Ok(LeafFacts {
        time,
        decision,
        policy_version,
    })
}
