//! Finding decisions: filters over the postings and the leaves, results in
//! log order, paged by the last leaf index returned.
//!
//! A query's most selective indexed term drives the scan (one posting per
//! span); the other terms are checked in their postings, and the filters
//! that are not indexed (`version`, `decision`, `identity_kind`,
//! `enforcer`, `action`, `submitted_by`, the record time) on the leaf: they
//! take few values each, so a posting of one would list a large part of
//! every span and cost more to keep than to read the leaves. `received_at` never
//! decreases in log order, so a `received_*` window is a range of leaves,
//! found by binary search. A query without a term walks the time postings
//! (with a record time range) or the leaves, span by span, a page at a time.

use ledger::{LedgerError, Log};
use verifier::decision::LoggedDecision;

use crate::index::{decode_list, leaf_decision, posting_key, time_prefix, Term, CF_POSTINGS};
use crate::record::schema::Timestamp;
use crate::record::BREAK_GLASS;
use crate::Indexes;

/// Postings (or leaves) read per page at most; a page may come back short
/// (with a cursor) when filters reject many candidates.
pub const SCAN_BUDGET: usize = 100_000;
/// Spans whose posting of a term is read in one batch.
const SPANS_PER_READ: usize = 64;

/// Indexed terms a leaf must have one of.
type AnyOf = Vec<(Term, Vec<u8>)>;

/// A search: every given filter must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `subject.id`.
    pub subject: Option<String>,
    /// Any actor id in the delegation chain.
    pub actor: Option<String>,
    /// Anyone named in the identity chain: `subject.id`, `subject.owner`
    /// or an actor id of the delegation chain (a person's decisions, for
    /// an investigation or a data-subject request).
    pub person: Option<String>,
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
    /// `credential.id_hash`: which decisions used this credential.
    pub credential: Option<String>,
    /// Only break-glass decisions.
    pub break_glass: bool,
    /// `subject.identity_kind`.
    pub identity_kind: Option<String>,
    /// `subject.owner`.
    pub owner: Option<String>,
    /// `enforcer.id` (as the record declares it).
    pub enforcer: Option<String>,
    /// `submitted_by` (the writer as authenticated).
    pub submitted_by: Option<String>,
    /// `action.name`.
    pub action: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Record time at or after.
    pub from: Option<Timestamp>,
    /// Record time before.
    pub to: Option<Timestamp>,
    /// `received_at` at or after.
    pub received_from: Option<Timestamp>,
    /// `received_at` before.
    pub received_to: Option<Timestamp>,
    /// Only leaves below this tree size (a signed checkpoint's), so that
    /// paging through a growing log stays stable.
    pub at: Option<u64>,
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Matching leaf indexes, ascending.
    pub indexes: Vec<u64>,
    /// Pass as `after` for the next page; `None` when done.
    pub next: Option<u64>,
    /// The tree size the query saw: its `at`, or the log's size.
    pub size: u64,
}

/// Why a query is refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// `version` without `policy`.
    #[error("version needs policy")]
    VersionWithoutPolicy,
    /// `at` beyond the log.
    #[error("at={at} is beyond the log's size {size}")]
    AtBeyondLog {
        /// The size asked for.
        at: u64,
        /// The log's size.
        size: u64,
    },
    /// `at` is in the log but its last leaves' index terms are still
    /// being added (for a moment after they are written): ask again.
    #[error("at={at} is not searchable yet (leaves below {searchable} are); retry shortly")]
    AtNotIndexed {
        /// The size asked for.
        at: u64,
        /// The leaves below it are searchable.
        searchable: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Query {
    /// The indexed terms given, most selective first: the first drives the
    /// scan. Each is a group of alternatives a leaf must have one of: one
    /// term, or for `person` the subject, owner and actor terms.
    fn terms(&self) -> Result<Vec<AnyOf>, QueryError> {
        if self.version.is_some() && self.policy.is_none() {
            return Err(QueryError::VersionWithoutPolicy);
        }
        let mut t = Vec::new();
        let credential = self
            .credential
            .as_deref()
            .map(crate::record::credential_term);
        for (kind, v) in [
            (Term::RequestId, &self.request_id),
            (Term::TraceId, &self.trace_id),
            (Term::Parent, &self.parent_decision_id),
            (Term::Credential, &credential),
            (Term::Subject, &self.subject),
            (Term::Actor, &self.actor),
            (Term::Owner, &self.owner),
        ] {
            if let Some(v) = v {
                t.push(vec![(kind, v.as_bytes().to_vec())]);
            }
        }
        if let Some(p) = &self.person {
            let p = p.as_bytes().to_vec();
            t.push(vec![
                (Term::Subject, p.clone()),
                (Term::Owner, p.clone()),
                (Term::Actor, p),
            ]);
        }
        for (kind, v) in [
            (Term::Resource, &self.resource),
            (Term::Policy, &self.policy),
        ] {
            if let Some(v) = v {
                t.push(vec![(kind, v.as_bytes().to_vec())]);
            }
        }
        if self.break_glass {
            t.push(vec![(Term::BreakGlass, BREAK_GLASS.to_vec())]);
        }
        Ok(t)
    }

    /// Whether any filter is read from the leaf itself.
    fn reads_leaves(&self) -> bool {
        self.version.is_some()
            || self.decision.is_some()
            || self.credential.is_some()
            || self.identity_kind.is_some()
            || self.enforcer.is_some()
            || self.action.is_some()
            || self.submitted_by.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }

    /// The filters read from the leaf: version, decision, identity kind,
    /// enforcer, action, submitted_by, record time.
    fn leaf_matches(&self, l: &LoggedDecision) -> bool {
        let d = &l.decision;
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.version, &d.policy.version)
            && eq(&self.decision, &d.decision)
            && self
                .credential
                .as_ref()
                .is_none_or(|c| d.credential.as_ref().is_some_and(|have| have.id_hash == *c))
            && eq(&self.identity_kind, &d.subject.identity_kind)
            && eq(&self.enforcer, &d.enforcer.id)
            && eq(&self.action, &d.action)
            && eq(&self.submitted_by, &l.submitted_by)
            && self.from.is_none_or(|from| d.time >= from)
            && self.to.is_none_or(|to| d.time < to)
    }
}

/// The filters' parameter names, as `GET /v1/search` and `ledgerctl
/// search` take them (besides `limit` and `cursor`).
pub const PARAMS: [&str; 22] = [
    "subject",
    "actor",
    "person",
    "resource",
    "policy",
    "version",
    "request_id",
    "trace_id",
    "parent",
    "credential",
    "break_glass",
    "identity_kind",
    "owner",
    "enforcer",
    "submitted_by",
    "action",
    "decision",
    "from",
    "to",
    "received_from",
    "received_to",
    "at",
];

impl Query {
    /// A query from its parameters ([`PARAMS`]): values as given, times in
    /// RFC 3339, `break_glass` `true` or `false`, `at` a decimal size.
    /// Refused, with the reason: an unknown name (naming the known ones), a
    /// name given twice, an empty value (no record holds empty text: an
    /// unset shell variable would otherwise find nothing, silently), and a
    /// time window whose start is not before its end.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Query, String> {
        let mut q = Query::default();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in params {
            if seen.contains(&k) {
                return Err(format!(
                    "{k} is given twice; a search takes each filter once"
                ));
            }
            seen.push(k);
            if v.is_empty() && PARAMS.contains(&k) {
                return Err(format!("{k} is empty; no record holds an empty {k}"));
            }
            let time = || {
                Timestamp::parse_text(v)
                    .ok_or_else(|| format!("{k} must be an RFC 3339 time, not {v:?}"))
            };
            let text = || Some(v.to_string());
            match k {
                "subject" => q.subject = text(),
                "actor" => q.actor = text(),
                "person" => q.person = text(),
                "resource" => q.resource = text(),
                "policy" => q.policy = text(),
                "version" => q.version = text(),
                "request_id" => q.request_id = text(),
                "trace_id" => q.trace_id = text(),
                "parent" => q.parent_decision_id = text(),
                "credential" => q.credential = text(),
                "break_glass" => {
                    q.break_glass = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("break_glass must be true or false, not {v:?}")),
                    }
                }
                "identity_kind" => {
                    if !crate::record::IDENTITY_KINDS.contains(&v) {
                        return Err(format!(
                            "identity_kind must be one of {}, not {v:?}",
                            crate::record::IDENTITY_KINDS.join(", ")
                        ));
                    }
                    q.identity_kind = text();
                }
                "owner" => q.owner = text(),
                "enforcer" => q.enforcer = text(),
                "submitted_by" => q.submitted_by = text(),
                "action" => q.action = text(),
                "decision" => {
                    if !crate::record::DECISIONS.contains(&v) {
                        return Err(format!("decision must be allow or deny, not {v:?}"));
                    }
                    q.decision = text();
                }
                "from" => q.from = Some(time()?),
                "to" => q.to = Some(time()?),
                "received_from" => q.received_from = Some(time()?),
                "received_to" => q.received_to = Some(time()?),
                "at" => {
                    q.at = Some(
                        verifier::checkpoint::parse_decimal(v)
                            .ok_or_else(|| format!("at must be a decimal tree size, not {v:?}"))?,
                    )
                }
                _ => {
                    return Err(format!(
                        "unknown search parameter {k:?}; known: {}, limit, cursor",
                        PARAMS.join(", ")
                    ))
                }
            }
        }
        for (from, to, names) in [
            (q.from, q.to, "from must be before to"),
            (
                q.received_from,
                q.received_to,
                "received_from must be before received_to",
            ),
        ] {
            if let (Some(from), Some(to)) = (from, to) {
                if from >= to {
                    return Err(format!(
                        "{names}: the window [{}, {}) is empty",
                        from.canonical(),
                        to.canonical()
                    ));
                }
            }
        }
        Ok(q)
    }
}

/// The leaves a query may return, `[first, end)`, and the tree size
/// searched (`at`, or every searchable leaf).
fn bounds(idx: &Indexes, q: &Query) -> Result<(u64, u64, u64), QueryError> {
    let log = idx.log();
    // Searchable first: the log only grows past it meanwhile.
    let searchable = idx.searchable();
    let size = log.size();
    let end = match q.at {
        Some(at) if at > size => return Err(QueryError::AtBeyondLog { at, size }),
        Some(at) if at > searchable => return Err(QueryError::AtNotIndexed { at, searchable }),
        Some(at) => at,
        None => searchable,
    };
    let size = end;
    // Leaves whose entries retention removed are not found.
    let first = match q.received_from {
        Some(t) => log.first_received_at_or_after(t, end)?,
        None => 0,
    }
    .max(log.first_kept());
    let end = match q.received_to {
        Some(t) => log.first_received_at_or_after(t, end)?,
        None => end,
    };
    Ok((first, end.max(first), size))
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
    let (first, end, size) = bounds(idx, q)?;
    let start = after.map_or(0, |a| a.saturating_add(1)).max(first);
    let limit = limit.max(1);
    // Leaves walked are not found by a term, so erased ones are passed
    // over here (postings no longer name them): read once for the walk.
    let erased: std::collections::BTreeSet<u64> =
        match start < end && terms.is_empty() && q.from.is_none() && q.to.is_none() {
            true => log.erased_in(start, end)?.iter().map(|e| e.index).collect(),
            false => Default::default(),
        };
    let accept = |index: u64| -> Result<bool, QueryError> {
        for any in terms.iter().skip(1) {
            if !has_any(idx, any, index)? {
                return Ok(false);
            }
        }
        if !q.reads_leaves() {
            return Ok(!erased.contains(&index));
        }
        match leaf_decision(log, index) {
            Ok(d) => Ok(q.leaf_matches(&d)),
            Err(LedgerError::Erased { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    };
    let mut out = Collect::new(limit, size);
    let full = start < end
        && match terms.first() {
            Some(any) => by_term(idx, any, start, end, &mut out, &accept)?,
            None if q.from.is_some() || q.to.is_some() => {
                by_time(idx, q, start, end, &mut out, &accept)?
            }
            None => walk(start, end, &mut out, &accept)?,
        };
    Ok(if full { out.page() } else { out.done() })
}

/// No term: the leaves themselves, in order. True when the page is full.
fn walk(
    start: u64,
    end: u64,
    out: &mut Collect,
    accept: &dyn Fn(u64) -> Result<bool, QueryError>,
) -> Result<bool, QueryError> {
    for index in start..end {
        if out.visit(index, accept)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The page being filled.
struct Collect {
    indexes: Vec<u64>,
    last_seen: Option<u64>,
    scanned: usize,
    limit: usize,
    size: u64,
}

impl Collect {
    fn new(limit: usize, size: u64) -> Collect {
        Collect {
            indexes: Vec::new(),
            last_seen: None,
            scanned: 0,
            limit,
            size,
        }
    }

    /// Looks at a candidate; true when the page is full (or its budget
    /// spent).
    fn visit(
        &mut self,
        index: u64,
        accept: &dyn Fn(u64) -> Result<bool, QueryError>,
    ) -> Result<bool, QueryError> {
        self.last_seen = Some(index);
        self.scanned += 1;
        if accept(index)? {
            self.indexes.push(index);
        }
        Ok(self.indexes.len() == self.limit || self.scanned == SCAN_BUDGET)
    }

    /// The page, with a cursor to go on from.
    fn page(self) -> Page {
        Page {
            indexes: self.indexes,
            next: self.last_seen,
            size: self.size,
        }
    }

    /// The last page.
    fn done(self) -> Page {
        Page {
            indexes: self.indexes,
            next: None,
            size: self.size,
        }
    }
}

/// The leaves with any of the terms `any`, from their postings, in log
/// order: memory first, then the built mark. A span leaves memory only
/// after it is built, so the spans below the mark (read from RocksDB) and
/// the leaves at or past it in memory hold every leaf. True when the page
/// is full.
fn by_term(
    idx: &Indexes,
    any: &[(Term, Vec<u8>)],
    start: u64,
    end: u64,
    out: &mut Collect,
    accept: &dyn Fn(u64) -> Result<bool, QueryError>,
) -> Result<bool, QueryError> {
    let mut in_memory: Vec<u64> = any
        .iter()
        .flat_map(|(kind, term)| idx.tail_postings(*kind, term))
        .collect();
    union(&mut in_memory, any.len());
    let built = idx.built();
    let spans: Vec<u64> = (idx.span_of(start)..built.min(end))
        .step_by(idx.span() as usize)
        .collect();
    // One posting per span and term at most: point reads, a batch of
    // spans at a time (a span without the term is passed over by its
    // file's filter).
    for batch in spans.chunks(SPANS_PER_READ) {
        let keys: Vec<Vec<u8>> = batch
            .iter()
            .flat_map(|&s| {
                any.iter()
                    .map(move |(kind, term)| posting_key(s, *kind, term))
            })
            .collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let values = {
            let _read = idx.postings_read();
            idx.log().index_multi_get(CF_POSTINGS, &refs)?
        };
        for (keys, values) in keys.chunks(any.len()).zip(values.chunks(any.len())) {
            let mut leaves = Vec::new();
            for (key, value) in keys.iter().zip(values) {
                if let Some(value) = value {
                    leaves.extend(posting_list(key, value)?);
                }
            }
            union(&mut leaves, any.len());
            for index in leaves {
                if index >= end {
                    return Ok(false);
                }
                if index >= start && out.visit(index, accept)? {
                    return Ok(true);
                }
            }
        }
    }
    for index in in_memory.into_iter().filter(|&i| i >= start && i >= built) {
        if index >= end {
            return Ok(false);
        }
        if out.visit(index, accept)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lists` ascending lists concatenated in `leaves`, made one ascending
/// list without repeats.
fn union(leaves: &mut Vec<u64>, lists: usize) {
    if lists > 1 {
        leaves.sort_unstable();
        leaves.dedup();
    }
}

/// A record time range without a term: each built span's time postings in
/// the range, sorted, a span at a time (memory holds one span's hits at
/// most), then the spans in memory. True when the page is full.
fn by_time(
    idx: &Indexes,
    q: &Query,
    start: u64,
    end: u64,
    out: &mut Collect,
    accept: &dyn Fn(u64) -> Result<bool, QueryError>,
) -> Result<bool, QueryError> {
    let from_nanos = q.from.map_or(0, |t| t.unix_nanos());
    let to = q.to.map_or(u64::MAX, |t| t.unix_nanos());
    let built = idx.built();
    let log = idx.log();
    let mut visit_all = |mut hits: Vec<u64>| -> Result<bool, QueryError> {
        hits.retain(|&i| i >= start && i < end);
        hits.sort_unstable();
        hits.dedup();
        for index in hits {
            if out.visit(index, accept)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    for span in (idx.span_of(start)..built.min(end)).step_by(idx.span() as usize) {
        let prefix = time_prefix(span).to_vec();
        let mut from = prefix.clone();
        from.extend_from_slice(&from_nanos.to_be_bytes());
        let mut hits = Vec::new();
        let read = idx.postings_read();
        log.index_scan_ranges(
            CF_POSTINGS,
            std::iter::once((prefix, from)),
            |key, value| {
                let nanos = key
                    .get(11..19)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(u64::MAX, u64::from_be_bytes);
                if nanos >= to {
                    return Ok(false);
                }
                hits.extend(posting_list(key, value)?);
                Ok::<bool, QueryError>(true)
            },
        )?;
        drop(read);
        if visit_all(hits)? {
            return Ok(true);
        }
    }
    if end > built {
        let mut hits = idx.tail_times(from_nanos, to);
        hits.retain(|&i| i >= built);
        return visit_all(hits);
    }
    Ok(false)
}

/// The leaf indexes a posting lists.
fn posting_list(key: &[u8], value: &[u8]) -> Result<Vec<u64>, QueryError> {
    decode_list(value).ok_or_else(|| {
        QueryError::Ledger(LedgerError::Corrupt(format!(
            "posting {key:02x?} has a malformed index list"
        )))
    })
}

/// Whether leaf `index` has any of the terms `any`.
fn has_any(idx: &Indexes, any: &[(Term, Vec<u8>)], index: u64) -> Result<bool, QueryError> {
    for (kind, term) in any {
        if has_term(idx, *kind, term, index)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether leaf `index` has `term`: from memory if its span is there, else
/// from the posting of the term in the built span that holds `index`.
fn has_term(idx: &Indexes, kind: Term, term: &[u8], index: u64) -> Result<bool, QueryError> {
    if let Some(found) = idx.tail_has(kind, term, index) {
        return Ok(found);
    }
    let key = posting_key(idx.span_of(index), kind, term);
    let value = {
        let _read = idx.postings_read();
        idx.log().index_get(CF_POSTINGS, &key)?
    };
    match value {
        Some(value) => Ok(posting_list(&key, &value)?.binary_search(&index).is_ok()),
        None => Ok(false),
    }
}
