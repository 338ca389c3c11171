//! Identity chains (specs/chain.md, "Links"): the decisions linked to one
//! decision by `parent_decision_id`, `request_id` or `trace_id`, found
//! through the indexes, breadth first, at most a hop limit.

use std::collections::{BTreeSet, VecDeque};

use verifier::decision::LoggedDecision;

use crate::index::query::{search, Query, QueryError};
use crate::Indexes;

pub use verifier::chain::HOP_LIMIT;

/// The hops of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Leaf indexes, ascending.
    pub indexes: Vec<u64>,
    /// More linked decisions exist than the limit let in.
    pub truncated: bool,
}

/// Results asked for per search page.
const PAGE: usize = 256;

/// The decisions linked to the one at leaf `start`, itself included,
/// among the leaves below `size` (a checkpoint's size), at most `limit`:
/// parents up to the root, children down, and every decision sharing a
/// request or trace id with a hop, nearest first.
pub fn collect(idx: &Indexes, start: u64, size: u64, limit: usize) -> Result<Chain, QueryError> {
    // A checkpoint may be signed a moment before its last leaves' terms
    // are added: a link among them must not be missed.
    idx.wait_searchable(size, std::time::Duration::from_secs(5))
        .map_err(|searchable| QueryError::AtNotIndexed {
            at: size,
            searchable,
        })?;
    let limit = limit.max(1);
    let mut seen = BTreeSet::from([start]);
    let mut todo = VecDeque::from([start]);
    let mut truncated = false;
    'walk: while let Some(index) = todo.pop_front() {
        for next in linked_to(idx, index, size, limit + 1)? {
            if seen.contains(&next) {
                continue;
            }
            if seen.len() == limit {
                truncated = true;
                break 'walk;
            }
            seen.insert(next);
            todo.push_back(next);
        }
    }
    Ok(Chain {
        indexes: seen.into_iter().collect(),
        truncated,
    })
}

/// The leaves below `size` linked to leaf `index`: its parent, its
/// children, those of its request and trace; at most `want` of each kind
/// (the caller needs no more to fill or overflow its limit).
fn linked_to(idx: &Indexes, index: u64, size: u64, want: usize) -> Result<Vec<u64>, QueryError> {
    let leaf = idx.log().entry(index)?;
    // A leaf that is not a decision links to nothing.
    let Ok(logged) = LoggedDecision::from_leaf(&leaf) else {
        return Ok(vec![]);
    };
    let d = logged.decision;
    let mut out = Vec::new();
    if let Some(parent) = &d.context.parent_decision_id {
        // A parent whose entry retention removed, or that was erased, is
        // not a hop.
        if let Some((i, _)) = idx.lookup_decision(parent)? {
            if i >= idx.log().first_kept() && idx.log().erased(i)?.is_none() {
                out.push(i);
            }
        }
    }
    let queries = [
        Query {
            parent_decision_id: Some(d.decision_id.clone()),
            ..Query::default()
        },
        Query {
            request_id: d.context.request_id.clone(),
            ..Query::default()
        },
        Query {
            trace_id: d.context.trace_id.clone(),
            ..Query::default()
        },
    ];
    for q in queries.iter().filter(|q| *q != &Query::default()) {
        let (mut after, mut found) = (None, 0);
        loop {
            let page = search(idx, q, after, PAGE)?;
            for &i in page.indexes.iter().filter(|&&i| i < size && i != index) {
                out.push(i);
                found += 1;
            }
            match page.next {
                Some(next) if found < want && next < size => after = Some(next),
                _ => break,
            }
        }
    }
    out.retain(|&i| i < size);
    Ok(out)
}
