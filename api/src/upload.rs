//! What the uploads of stock components share (`POST /v1/opa/logs`,
//! `POST /v1/kubernetes/audit`): a body that may come gzip-compressed,
//! events mapped to v1 records by the endpoint, each checked as any
//! record is, and the good ones appended once and answered when durable.
//! Events that cannot be mapped to a valid record are counted, logged
//! and listed, not retried: the component would resend its batch forever.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::input::{check_record, Sender};
use ingest::{Outcome, Submission};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::TokenEntry;

/// The non-empty text at `path` in an uploaded event (a JSON value), if
/// there is one: what the uploads' mappings read their fields with.
pub(crate) fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Largest decompressed upload accepted.
const MAX_INFLATED: u64 = 64 << 20;

/// The body, decompressed if it is gzip (`Content-Encoding: gzip`, or
/// the gzip magic bytes), at most [`MAX_INFLATED`] bytes.
pub(crate) fn inflate(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip && !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad(format!("gzip: {e}")))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed upload exceeds 64 MiB",
        ));
    }
    Ok(out)
}

/// Refuses an upload before its body is read further: a token over its
/// rate (429), or a pipeline refusing writes (503).
pub(crate) fn admit(state: &AppState, who: &TokenEntry) -> Result<(), ApiError> {
    state
        .quotas
        .admit(who, std::time::Instant::now())
        .map_err(|wait| ApiError::over_rate(who, wait))?;
    match state.pipeline.refusing() {
        Some(busy) => Err(crate::ack::busy_error(&busy)),
        None => Ok(()),
    }
}

/// Checks `records` (mapped by `what`, e.g. "OPA upload") as `who` sends
/// them, appends the good ones and waits until they are durable. Answers
/// the counts (`appended`, `duplicate`, `conflict`, `rejected`) and
/// `rejected_events`: `{position, decision_id, reason}` each.
pub(crate) async fn log_mapped(
    state: &Arc<AppState>,
    who: &TokenEntry,
    what: &str,
    records: Vec<Value>,
) -> Result<Value, ApiError> {
    let enforcer = who.enforcer.clone();
    let signers = state.enforcer_keys.current();
    let indexes = state.indexes.clone();
    let (subs, rejected) = tokio::task::spawn_blocking(move || {
        let by: Arc<str> = enforcer.as_str().into();
        let sender = Sender::relay(&enforcer)
            .with_signers(&signers)
            .keeping_from(indexes.kept_from()?);
        let mut subs = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        for (i, mapped) in records.iter().enumerate() {
            let record = ingest::record::from_json(mapped);
            match check_record(&record, i, &sender) {
                Ok(record) => subs.push(Submission {
                    record,
                    submitted_by: by.clone(),
                }),
                Err(r) => rejected
                    .push(json!({"position": i, "decision_id": r.decision_id, "reason": r.reason})),
            }
        }
        Ok::<_, ApiError>((subs, rejected))
    })
    .await
    .map_err(ApiError::internal)??;
    if !rejected.is_empty() {
        tracing::warn!(
            "{what} from {}: {} events could not be logged: {:?}",
            who.enforcer,
            rejected.len(),
            rejected
        );
        state
            .rejected
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    }
    state
        .quotas
        .charge(who, subs.len() + rejected.len(), std::time::Instant::now());
    let mut counts =
        json!({"appended": 0, "duplicate": 0, "conflict": 0, "rejected": rejected.len()});
    if !subs.is_empty() {
        let outcomes = crate::ack::submit_and_wait(state, subs).await?;
        for o in outcomes {
            let key = match o {
                Outcome::Appended { .. } => "appended",
                Outcome::Duplicate { .. } => "duplicate",
                Outcome::Conflict { .. } => "conflict",
                Outcome::Failed(why) if ingest::pipeline::is_disk_full(&why) => {
                    return Err(ApiError::new(StatusCode::INSUFFICIENT_STORAGE, why))
                }
                Outcome::Failed(why) => return Err(ApiError::internal(why)),
            };
            counts[key] = json!(counts[key].as_u64().unwrap_or(0) + 1);
        }
    }
    let appended = counts["appended"].as_u64().unwrap_or(0) as usize;
    state.senders.wrote(&who.enforcer, appended);
    counts["rejected_events"] = Value::Array(rejected);
    Ok(counts)
}

/// The answer to an upload: its counts, as JSON.
pub(crate) fn answer(counts: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        counts.to_string(),
    )
        .into_response()
}
