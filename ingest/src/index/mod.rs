//! Responder indexes and the idempotency key (specs/storage.md, "decision
//! indexes").
//!
//! - `decisions`: `decision_id` → leaf index (8 bytes BE) ‖ record digest (32).
//! - `span_postings`: `span start (8 BE) ‖ kind (1) ‖ len (2 BE) ‖ term` →
//!   the term's leaf indexes in that span, ascending, as LEB128 deltas;
//!   `span start ‖ 0xff` → the leaf up to which the indexes are built. Time
//!   postings use the 8-byte big-endian nanoseconds of the record's `time`.
//!   A span's keys all start with the span, so each span's file is beside
//!   the others', never across them: RocksDB adds it to the last level
//!   and never rewrites it (no compaction).
//!
//! `decisions` and `postings` are built per span of [`SPAN`] leaves and added
//! as sorted SST files ([`ledger::Log::ingest_sorted`]); the newest, partial
//! span is served from memory ([`crate::Indexes`]). Nothing but the leaves is
//! written when records are appended: every fact is a function of its leaf
//! ([`Facts::of_leaf`]), so the leaves themselves are the index's log.

pub mod chain;
mod derive;
pub mod erasure;
pub(crate) mod indexes;
pub mod query;
pub mod rebuild;
pub mod retention;
pub mod retention_record;
pub(crate) mod span;

use ledger::{LedgerError, Log};

use ledger::IndexFamily;
use verifier::decision::LoggedDecision;
use verifier::envelope::{Envelope, LeafHead};

use crate::record::schema::Timestamp;
use crate::record::{CheckedRecord, IndexTerms};

/// Column family of the idempotency index.
pub const CF_DECISIONS: &str = "decisions";
/// Column family of the responder postings. Its name changes whenever
/// the terms a record is indexed by do: a store's older postings column
/// family is then dropped when the log is opened, and the postings are
/// rebuilt from the leaves (earlier names: `postings`, `span_postings`).
pub const CF_POSTINGS: &str = "span_postings_v3";
/// Every column family this crate adds to the log. The postings are
/// grouped by span (a key's first 8 bytes, [`posting_key_into`]): each
/// span's postings stay in files of their own, which retention and
/// erasure delete or replace whole.
pub const INGEST_CFS: &[IndexFamily] = &[
    IndexFamily::new(CF_DECISIONS),
    IndexFamily::grouped(CF_POSTINGS, 8),
];

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
    /// `credential.id_hash`.
    Credential = b'c' as isize,
    /// `subject.owner`.
    Owner = b'o' as isize,
    /// Break-glass records, under the term [`crate::record::BREAK_GLASS`].
    BreakGlass = b'b' as isize,
    /// Record time (8-byte BE nanoseconds).
    Time = b'T' as isize,
}

impl Term {
    /// The kind of a stored kind byte.
    pub fn from_byte(b: u8) -> Option<Term> {
        [
            Term::Subject,
            Term::Actor,
            Term::Resource,
            Term::Policy,
            Term::RequestId,
            Term::TraceId,
            Term::Parent,
            Term::Credential,
            Term::Owner,
            Term::BreakGlass,
            Term::Time,
        ]
        .into_iter()
        .find(|t| *t as u8 == b)
    }
}

/// `span start ‖ kind ‖ len ‖ term`: the key of a term's posting in the
/// span starting at leaf `span`.
pub fn posting_key(span: u64, kind: Term, term: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(term.len() + 11);
    posting_key_into(&mut k, span, kind, term);
    k
}

/// [`posting_key`], written over `out`.
pub fn posting_key_into(out: &mut Vec<u8>, span: u64, kind: Term, term: &[u8]) {
    out.clear();
    let len = u16::try_from(term.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&span.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&term[..usize::from(len)]);
}

/// The prefix of every time posting of the span starting at `span`:
/// `span ‖ T ‖ 0x0008`, followed by the time's 8 bytes.
pub fn time_prefix(span: u64) -> [u8; 11] {
    let mut k = [0u8; 11];
    k[..8].copy_from_slice(&span.to_be_bytes());
    k[8] = Term::Time as u8;
    k[9..].copy_from_slice(&8u16.to_be_bytes());
    k
}

/// What the indexes record of one appended decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The idempotency key.
    pub decision_id: String,
    /// SHA-256 of the canonical record.
    pub digest: [u8; 32],
    /// The terms it is found by, each once.
    pub terms: Vec<(Term, Vec<u8>)>,
}

impl Facts {
    /// The facts of a stored leaf, re-derived from the record in it: the
    /// same as when it was appended, as checking a record in canonical form
    /// gives it back unchanged. `None` for a leaf that holds no decision
    /// record (a raw entry, appended directly with `Log::append`).
    pub fn of_leaf(leaf: &[u8]) -> Option<Facts> {
        if let Some(facts) = Facts::of_leaf_in_place(leaf) {
            return Some(facts);
        }
        let env = Envelope::decode(leaf).ok()?;
        let record = crate::record::check(&env.record).ok()?;
        Some(Facts::from_record(record).0)
    }

    /// [`Facts::of_leaf`] for the leaves the ledger writes of unsigned
    /// records, read in place by the fast path of the record checks (the
    /// rebuild of the indexes spent three quarters of its time decoding
    /// leaves into value trees and checking those). Only a leaf that is
    /// exactly the envelope of its record (as [`Envelope::decode`] takes
    /// it) whose record the fast path accepts unchanged; `None` leaves the
    /// answer to the reference path, which the fast path agrees with on
    /// every record it accepts (`ingest/tests/fast.rs`).
    pub fn of_leaf_in_place(leaf: &[u8]) -> Option<Facts> {
        use verifier::envelope::{encode_parts, received_at, record_bytes, submitted_by};
        let (record, submitted_by) = (record_bytes(leaf)?, submitted_by(leaf)?);
        if encode_parts(record, received_at(leaf)?, submitted_by) != leaf {
            return None;
        }
        let checked = crate::record::fast::check(
            record,
            &crate::record::sender::Sender::relay(submitted_by),
        )?;
        (checked.cbor() == record).then(|| Facts::from_record(checked).0)
    }

    /// The facts of leaf `index` of `log`, whose stored entry is `leaf`:
    /// [`Facts::of_leaf`]; for an erased entry, its `decision_id` and
    /// digest as its erasure record keeps them, without terms (it is
    /// found by none), so that a retry of it is still answered.
    pub fn of_entry(log: &Log, index: u64, leaf: &[u8]) -> Option<Facts> {
        if !leaf.is_empty() {
            return Facts::of_leaf(leaf);
        }
        let by = log.erased(index).ok()??.by;
        let e = verifier::erasure::read(by, &log.entry(by).ok()?).ok()??;
        let (decision_id, digest) = e.erased_decision;
        Some(Facts {
            decision_id,
            digest,
            terms: Vec::new(),
        })
    }

    /// The facts of a leaf that is not a decision record: no
    /// `decision_id` (a record's is never empty) and no terms.
    pub fn unindexed() -> Facts {
        Facts {
            decision_id: String::new(),
            digest: [0; 32],
            terms: Vec::new(),
        }
    }

    /// The facts of a checked record, taking its strings instead of copying
    /// them; with the rest of the record, its leaf head.
    pub fn from_record(record: CheckedRecord) -> (Facts, LeafHead) {
        let (facts, leaf) = RecordFacts::split(record);
        (facts.into_facts(), leaf)
    }
}

/// A checked record's facts, as the record's own strings. The batcher hands
/// these on, and the acknowledger adds them to the span index term by term
/// ([`RecordFacts::each_term`]): the batcher, which every record waits
/// for, does no index work, and no [`Facts`] are built in between.
#[derive(Debug)]
pub struct RecordFacts {
    /// The idempotency key.
    pub decision_id: String,
    /// SHA-256 of the canonical record.
    pub digest: [u8; 32],
    time: Timestamp,
    terms: IndexTerms,
}

impl RecordFacts {
    /// The facts of a checked record, taking its strings; with the rest of
    /// the record, its leaf head.
    pub fn split(record: CheckedRecord) -> (RecordFacts, LeafHead) {
        let CheckedRecord {
            decision_id,
            time,
            leaf,
            digest,
            terms,
        } = record;
        let facts = RecordFacts {
            decision_id,
            digest,
            time,
            terms,
        };
        (facts, leaf)
    }

    /// The record's `decision` (`allow` or `deny`).
    pub fn decision(&self) -> &str {
        self.terms.decision()
    }

    /// Whether the record is a break-glass one.
    pub fn break_glass(&self) -> bool {
        self.terms.break_glass().is_some()
    }

    /// Calls `f` with each term the record is found by, each once, in the
    /// order [`Facts::terms`] lists them: subject, actors (sorted, repeats
    /// dropped), resource, policy, request id, trace id, parent decision id,
    /// credential, owner, break-glass, time (8-byte BE nanoseconds).
    pub fn each_term(&self, mut f: impl FnMut(Term, &[u8])) {
        let t = &self.terms;
        f(Term::Subject, t.subject());
        for a in t.actors() {
            f(Term::Actor, a);
        }
        f(Term::Resource, t.resource());
        f(Term::Policy, t.policy());
        for (kind, v) in [
            (Term::RequestId, t.request_id()),
            (Term::TraceId, t.trace_id()),
            (Term::Parent, t.parent_decision_id()),
            (Term::Credential, t.credential()),
            (Term::Owner, t.owner()),
            (Term::BreakGlass, t.break_glass()),
        ] {
            if let Some(v) = v {
                f(kind, v);
            }
        }
        f(Term::Time, &self.time.unix_nanos().to_be_bytes());
    }

    /// The facts as owned values ([`Facts`]).
    pub fn into_facts(self) -> Facts {
        let mut terms = Vec::with_capacity(8);
        self.each_term(|kind, term| terms.push((kind, term.to_vec())));
        Facts {
            terms,
            decision_id: self.decision_id,
            digest: self.digest,
        }
    }
}

/// Leaves per span: `decisions` and `postings` are built a span at a time.
pub const SPAN: u64 = 65_536;
/// The last byte of a span's mark key ([`mark_key`]), above every kind.
const MARK: u8 = 0xff;

/// The key, in the span starting at leaf `span`, that says up to which leaf
/// the built indexes reach: `span ‖ 0xff`, after every posting of the span.
/// The last key of the column family is the newest span's.
pub fn mark_key(span: u64) -> [u8; 9] {
    let mut k = [MARK; 9];
    k[..8].copy_from_slice(&span.to_be_bytes());
    k
}

/// The built mark from the last key and value of the postings (none if
/// there are none yet).
pub fn built_mark(last: Option<(&[u8], &[u8])>) -> Result<u64, LedgerError> {
    let Some((key, value)) = last else {
        return Ok(0);
    };
    if key.len() != 9 || key[8] != MARK {
        return Err(LedgerError::Corrupt(format!(
            "{CF_POSTINGS}: the last key {key:02x?} is not a span's built mark"
        )));
    }
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| LedgerError::Corrupt(format!("{CF_POSTINGS}: bad built mark")))
}

/// Ascending leaf indexes as LEB128 deltas (the first from 0).
pub fn encode_list(indexes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(indexes.len() * 2);
    encode_list_into(&mut out, indexes);
    out
}

/// [`encode_list`], written over `out`.
pub fn encode_list_into(out: &mut Vec<u8>, indexes: &[u64]) {
    out.clear();
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

pub(crate) fn decode_decision(decision_id: &str, v: &[u8]) -> Result<(u64, [u8; 32]), LedgerError> {
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

/// The decision in the leaf at `index`, for the filters that read the leaf
/// itself (specs/record.md, "Responder indexes").
pub fn leaf_decision(log: &Log, index: u64) -> Result<LoggedDecision, LedgerError> {
    let leaf = log.entry(index)?;
    LoggedDecision::from_leaf(&leaf).map_err(|e| LedgerError::Corrupt(format!("leaf {index}: {e}")))
}
