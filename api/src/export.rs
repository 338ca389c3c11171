//! `GET /v1/export`: the decisions received in a window, as a stream a
//! client turns into an export package (specs/export.md, "Over HTTP"): a
//! CBOR sequence whose first item is the export's head (range, proof,
//! boundary leaves, checkpoint), then one item per leaf of the range, in
//! order — the leaf, or its hash when the filter withholds it. The leaves
//! are read and sent as the client takes them, in bounded memory. A
//! client whose stream broke asks again with `size` and `resume`: the same
//! head, then the items from leaf `resume` on.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use verifier::decision::LoggedDecision;
use verifier::export::{write_item, Filter};
use verifier::timestamp::Timestamp;

use crate::auth::authorize;
use crate::error::ApiError;
use crate::params::Params;
use crate::peer::Peer;
use crate::state::AppState;
use crate::tokens::Role;

/// Leaves read from storage at a time.
const CHUNK: u64 = 1024;
/// Chunks of the body waiting for the client at most.
const QUEUED: usize = 8;

/// What the query asks for.
struct Query {
    from: Timestamp,
    to: Timestamp,
    filter: Filter,
    /// The size of the checkpoint to prove the range in (default: the
    /// latest, or the newest every witness cosigned).
    size: Option<u64>,
    /// The leaf to send items from: a stream that broke, asked for again
    /// (with `size`) from the first leaf the client lacks.
    resume: Option<u64>,
}

/// The window, the filter, the checkpoint's size and where to resume,
/// from the query.
fn parse(q: &HashMap<String, String>) -> Result<Query, ApiError> {
    let mut filter = Filter::default();
    for (k, v) in q {
        let known = matches!(k.as_str(), "from" | "to" | "size" | "resume")
            || filter.set(k, v).map_err(ApiError::bad)?;
        if !known {
            return Err(ApiError::bad(format!(
                "unknown export parameter {k:?}; known: from, to, size, resume, {}",
                Filter::PARAMS.join(", ")
            )));
        }
    }
    let time = |name: &str| -> Result<Timestamp, ApiError> {
        let v = q
            .get(name)
            .ok_or_else(|| ApiError::bad(format!("{name} (an RFC 3339 time) is required")))?;
        Timestamp::parse_text(v)
            .ok_or_else(|| ApiError::bad(format!("{name} must be an RFC 3339 time")))
    };
    let (from, to) = (time("from")?, time("to")?);
    if from >= to {
        return Err(ApiError::bad("from must be before to"));
    }
    let decimal = |name: &str| {
        q.get(name)
            .map(|s| {
                verifier::checkpoint::parse_decimal(s)
                    .ok_or_else(|| ApiError::bad(format!("{name} must be a decimal")))
            })
            .transpose()
    };
    let (size, resume) = (decimal("size")?, decimal("resume")?);
    if resume.is_some() && size.is_none() {
        return Err(ApiError::bad(
            "resume needs size: the size of the checkpoint the broken export was proven in",
        ));
    }
    Ok(Query {
        from,
        to,
        filter,
        size,
        resume,
    })
}

/// `GET /v1/export?from=&to=[&subject=&actor=&person=&resource=&policy=&decision=&enforcer=&break_glass=&size=[&resume=]]`
pub(crate) async fn export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    q: Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &peer, Role::Reader)?;
    let Query {
        from,
        to,
        filter,
        size,
        resume,
    } = parse(&q.0)?;
    let log = state.log.clone();
    // With witnesses, the newest checkpoint all of them cosigned, if the
    // window ends within it (its end is then proven); else the latest.
    let witnessed = size
        .is_none()
        .then(|| state.witnesses.all_cosigned())
        .flatten();
    let head = tokio::task::spawn_blocking(move || {
        if let Some(s) = witnessed {
            // An older checkpoint may lack what the latest holds (a
            // retention record): the latest answers then.
            if let Ok(head) = log.export_head(from, to, filter.clone(), Some(s)) {
                if head.after.is_some() {
                    return Ok(head);
                }
            }
        }
        log.export_head(from, to, filter, size)
    })
    .await
    .map_err(ApiError::internal)??;
    let start = resume.unwrap_or(head.first);
    if !(head.first..=head.end).contains(&start) {
        return Err(ApiError::bad(format!(
            "resume={start} is outside the range [{}, {}) of this export",
            head.first, head.end
        )));
    }
    let mut first_item = Vec::new();
    ciborium::into_writer(&head, &mut first_item).map_err(ApiError::internal)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUED);
    let log = state.log.clone();
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(Ok(first_item.into())).is_err() {
            return;
        }
        let mut at = start;
        while at < head.end {
            let stop = (at + CHUNK).min(head.end);
            let mut out = Vec::with_capacity(CHUNK as usize * 700);
            let read = log.scan_entries(at, stop, |i, leaf| {
                let withheld = if leaf.is_empty() {
                    // Erased: its hash (the head holds its erasure record).
                    Some(log.leaf_hash(i)?)
                } else if head.filter.is_empty() {
                    None
                } else {
                    match LoggedDecision::from_leaf(leaf) {
                        Ok(l) if head.filter.matches(&l.decision) => None,
                        Ok(l) => Some(l.leaf_hash),
                        Err(_) => Some(verifier::leaf_hash(leaf)),
                    }
                };
                // Writing to a Vec cannot fail.
                let _ = write_item(&mut out, leaf, withheld.as_ref());
                Ok::<(), ledger::LedgerError>(())
            });
            let chunk = read
                .map(|()| Bytes::from(out))
                .map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            at = stop;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/cbor-seq")],
        Body::from_stream(body),
    )
        .into_response())
}
