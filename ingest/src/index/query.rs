//! Finding decisions: filters over the postings, results in log order, paged.

use ledger::{LedgerError, Log};

use crate::index::{decode_list, leaf_facts, posting_key, time_prefix, Term, CF_POSTINGS};
use crate::record::schema::Timestamp;
use crate::Indexes;

/// Postings read per page at most; a page may come back short (with a
/// cursor) when filters reject many candidates.
pub const SCAN_BUDGET: usize = 100_000;
/// Leaves a time range alone may match.
pub const TIME_SCAN_LIMIT: usize = 1_000_000;
/// Spans whose posting of a term is read in one batch.
const SPANS_PER_READ: usize = 64;

/// A search: every given filter must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `subject.id`.
    pub subject: Option<String>,
    /// Any actor id in the delegation chain.
    pub actor: Option<String>,
    /// `resource.id`.
    pub resource: Option<String>,
    /// `policy.id`.
    pub policy: Option<String>,
    /// `policy.version` (with `policy`).
    pub version: Option<String>,
    /// `context.request_id`.
    pub request_id: Option<String>,
    /// `context.trace_id`.
    pub trace_id: Option<String>,
    /// `context.parent_decision_id`.
    pub parent_decision_id: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Record time at or after.
    pub from: Option<Timestamp>,
    /// Record time before.
    pub to: Option<Timestamp>,
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Matching leaf indexes, ascending.
    pub indexes: Vec<u64>,
    /// Pass as `after` for the next page; `None` when done.
    pub next: Option<u64>,
}

/// Why a query is refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// `version` without `policy`.
    #[error("version needs policy")]
    VersionWithoutPolicy,
    /// A time range alone that matches too many leaves to sort.
    #[error(
        "the time range matches more than {TIME_SCAN_LIMIT} decisions; add a filter or narrow it"
    )]
    TooBroad,
    /// Storage failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Query {
    fn terms(&self) -> Result<Vec<(Term, Vec<u8>)>, QueryError> {
        let mut t = Vec::new();
        let add = |t: &mut Vec<(Term, Vec<u8>)>, kind, v: &Option<String>| {
            if let Some(v) = v {
                t.push((kind, v.as_bytes().to_vec()));
            }
        };
        // Most selective first: the first term drives the scan.
        add(&mut t, Term::RequestId, &self.request_id);
        add(&mut t, Term::TraceId, &self.trace_id);
        add(&mut t, Term::Parent, &self.parent_decision_id);
        add(&mut t, Term::Subject, &self.subject);
        add(&mut t, Term::Actor, &self.actor);
        add(&mut t, Term::Resource, &self.resource);
        if self.version.is_some() && self.policy.is_none() {
            return Err(QueryError::VersionWithoutPolicy);
        }
        add(&mut t, Term::Policy, &self.policy);
        Ok(t)
    }

    /// Filters read from the leaf itself: version, decision, time range.
    fn leaf_matches(&self, log: &Log, index: u64) -> Result<bool, LedgerError> {
        if self.version.is_none()
            && self.decision.is_none()
            && self.from.is_none()
            && self.to.is_none()
        {
            return Ok(true);
        }
        let f = leaf_facts(log, index)?;
        Ok(self.version.as_ref().is_none_or(|v| *v == f.policy_version)
            && self.decision.as_ref().is_none_or(|d| *d == f.decision)
            && self.from.is_none_or(|from| f.time >= from)
            && self.to.is_none_or(|to| f.time < to))
    }
}

/// Leaves matching `q` with index greater than `after`, in log order, at most `limit`.
pub fn search(
    idx: &Indexes,
    q: &Query,
    after: Option<u64>,
    limit: usize,
) -> Result<Page, QueryError> {
    let log: &Log = idx.log();
    let terms = q.terms()?;
    let start = after.map_or(0, |a| a.saturating_add(1));
    let size = log.size();
    let limit = limit.max(1);
    let mut indexes = Vec::new();
    let accept = |index: u64| -> Result<bool, QueryError> {
        for (kind, term) in terms.iter().skip(1) {
            if !has_term(idx, *kind, term, index)? {
                return Ok(false);
            }
        }
        Ok(q.leaf_matches(log, index)?)
    };
    if terms.is_empty() && (q.from.is_some() || q.to.is_some()) {
        return by_time(idx, q, start, size, limit, &accept);
    }
    let Some((kind, term)) = terms.first() else {
        // No term: walk the log itself from `start`.
        let mut index = start;
        let mut scanned = 0;
        while index < size && indexes.len() < limit && scanned < SCAN_BUDGET {
            if accept(index)? {
                indexes.push(index);
            }
            index += 1;
            scanned += 1;
        }
        // At least one leaf was scanned, so `index >= 1` here.
        let next = (index < size).then(|| index - 1);
        return Ok(Page { indexes, next });
    };
    // Memory first, then the built mark: a span leaves memory only after
    // it is built, so the spans below the mark (read from RocksDB) and the
    // leaves at or past it in memory hold every leaf.
    let in_memory = idx.tail_postings(*kind, term);
    let built = idx.built();
    let spans: Vec<u64> = (idx.span_of(start)..built)
        .step_by(idx.span() as usize)
        .collect();
    let mut last_seen = None;
    let mut scanned = 0;
    let mut visit = |index: u64, last_seen: &mut Option<u64>| -> Result<bool, QueryError> {
        *last_seen = Some(index);
        scanned += 1;
        if index < size && accept(index)? {
            indexes.push(index);
        }
        Ok(indexes.len() == limit || scanned == SCAN_BUDGET)
    };
    // One posting per span at most: point reads, a batch of spans at a
    // time (a span without the term is passed over by its file's filter).
    for batch in spans.chunks(SPANS_PER_READ) {
        let keys: Vec<Vec<u8>> = batch.iter().map(|&s| posting_key(s, *kind, term)).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        for (key, value) in keys.iter().zip(log.index_multi_get(CF_POSTINGS, &refs)?) {
            let Some(value) = value else { continue };
            for index in posting_list(key, &value)?
                .into_iter()
                .filter(|&i| i >= start)
            {
                if visit(index, &mut last_seen)? {
                    return Ok(Page {
                        indexes,
                        next: last_seen,
                    });
                }
            }
        }
    }
    for index in in_memory.into_iter().filter(|&i| i >= start && i >= built) {
        if visit(index, &mut last_seen)? {
            return Ok(Page {
                indexes,
                next: last_seen,
            });
        }
    }
    Ok(Page {
        indexes,
        next: None,
    })
}

/// Time range without a term: the leaves whose record time is in range,
/// from the time postings, in log order.
fn by_time(
    idx: &Indexes,
    q: &Query,
    start: u64,
    size: u64,
    limit: usize,
    accept: &dyn Fn(u64) -> Result<bool, QueryError>,
) -> Result<Page, QueryError> {
    let from_nanos = q.from.map_or(0, |t| t.unix_nanos());
    let to = q.to.map_or(u64::MAX, |t| t.unix_nanos());
    // Memory first (see `search`); a span in both is counted twice and
    // deduplicated in `finish`.
    let mut hits: Vec<u64> = idx
        .tail_times(from_nanos, to)
        .into_iter()
        .filter(|&i| i >= start && i < size)
        .collect();
    let built = idx.built();
    let log = idx.log();
    // Each built span's time postings in the range: one seek per span.
    let ranges = (idx.span_of(start)..built)
        .step_by(idx.span() as usize)
        .map(|span| {
            let prefix = time_prefix(span).to_vec();
            let mut from = prefix.clone();
            from.extend_from_slice(&from_nanos.to_be_bytes());
            (prefix, from)
        });
    log.index_scan_ranges(CF_POSTINGS, ranges, |key, value| {
        let nanos = key
            .get(11..19)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(u64::MAX, u64::from_be_bytes);
        if nanos >= to {
            return Ok(false);
        }
        for index in posting_list(key, value)? {
            if index >= start && index < size {
                hits.push(index);
            }
        }
        if hits.len() > TIME_SCAN_LIMIT {
            return Err(QueryError::TooBroad);
        }
        Ok(true)
    })?;
    finish(hits, limit, accept)
}

fn finish(
    mut hits: Vec<u64>,
    limit: usize,
    accept: &dyn Fn(u64) -> Result<bool, QueryError>,
) -> Result<Page, QueryError> {
    hits.sort_unstable();
    hits.dedup();
    let mut indexes = Vec::new();
    for (n, &index) in hits.iter().enumerate() {
        if accept(index)? {
            indexes.push(index);
            if indexes.len() == limit {
                let more = n + 1 < hits.len();
                return Ok(Page {
                    indexes,
                    next: more.then_some(index),
                });
            }
        }
    }
    Ok(Page {
        indexes,
        next: None,
    })
}

/// The leaf indexes a posting lists.
fn posting_list(key: &[u8], value: &[u8]) -> Result<Vec<u64>, QueryError> {
    decode_list(value).ok_or_else(|| {
        QueryError::Ledger(LedgerError::Corrupt(format!(
            "posting {key:02x?} has a malformed index list"
        )))
    })
}

/// Whether leaf `index` has `term`: from memory if its span is there, else
/// from the posting of the term in the built span that holds `index`.
fn has_term(idx: &Indexes, kind: Term, term: &[u8], index: u64) -> Result<bool, QueryError> {
    if let Some(found) = idx.tail_has(kind, term, index) {
        return Ok(found);
    }
    let key = posting_key(idx.span_of(index), kind, term);
    match idx.log().index_get(CF_POSTINGS, &key)? {
        Some(value) => Ok(posting_list(&key, &value)?.binary_search(&index).is_ok()),
        None => Ok(false),
    }
}
