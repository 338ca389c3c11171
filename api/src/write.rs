//! `POST /v1/decisions`: enforcers append decision records.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::input::{parse_body, Format};
use ingest::{Busy, Outcome, Submission};
use serde_json::{json, Value};

use crate::server::{authorize, ApiError, AppState};
use crate::tokens::Role;

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/json" => Ok(Format::Json),
        "application/cbor" => Ok(Format::Cbor),
        "application/cbor-seq" => Ok(Format::CborSeq),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {other:?} not accepted; use application/json, application/cbor or application/cbor-seq"),
        )),
    }
}

/// Checks every record, queues the good ones, and answers once they are
/// durable: one result per record, in body order. A CBOR sequence is
/// decoded, checked and queued as it arrives.
pub(crate) async fn post_decisions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = authorize(&state, &headers, Role::Writer)?;
    let format = format_of(&headers)?;
    if format == Format::CborSeq {
        return crate::stream::post_sequence(state, who, body).await;
    }
    let body = axum::body::to_bytes(body, state.config.max_body)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                too_large(state.config.max_body),
            )
        })?;
    let enforcer = who.enforcer.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_body(format, &body, &enforcer))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad(e.to_string()))?;
    if parsed.is_empty() {
        return Err(ApiError::bad("the body holds no records"));
    }
    let mut results: Vec<Value> = Vec::with_capacity(parsed.len());
    let mut subs = Vec::new();
    let by: std::sync::Arc<str> = who.enforcer.as_str().into();
    let mut slots = Vec::new();
    for (position, item) in parsed.into_iter().enumerate() {
        match item {
            Ok(record) => {
                results.push(json!({ "position": position, "decision_id": record.decision_id }));
                slots.push(position);
                subs.push(Submission {
                    record,
                    submitted_by: by.clone(),
                });
            }
            Err(rejected) => results.push(json!({
                "position": position,
                "decision_id": rejected.decision_id,
                "status": "rejected",
                "reason": rejected.reason,
            })),
        }
    }
    let rejected = results.len() - subs.len();
    state.rejected.fetch_add(rejected as u64, Ordering::Relaxed);
    if subs.is_empty() {
        return Ok(answer(results, [0; 4], rejected, None));
    }
    let outcomes = submit_and_wait(&state, subs).await?;
    let mut counts = [0usize; 4];
    fill(&mut results, &slots, outcomes, &mut counts);
    Ok(answer(results, counts, rejected, None))
}

/// [`ingest::Pipeline::submit`] off the async workers, as it reads the
/// built `decisions` index (RocksDB) before queueing.
pub(crate) async fn submit(
    state: &Arc<AppState>,
    subs: Vec<Submission>,
) -> Result<Result<tokio::sync::oneshot::Receiver<Vec<Outcome>>, Busy>, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.pipeline.submit(subs))
        .await
        .map_err(ApiError::internal)
}

/// Queues records and waits until they are durable; a full queue is 503
/// with nothing appended.
pub(crate) async fn submit_and_wait(
    state: &Arc<AppState>,
    subs: Vec<Submission>,
) -> Result<Vec<Outcome>, ApiError> {
    let rx = submit(state, subs).await?.map_err(|busy| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{busy}; nothing of this request was appended"),
        )
    })?;
    rx.await
        .map_err(|_| ApiError::internal("the writer stopped before acknowledging"))
}

pub(crate) fn too_large(max: usize) -> String {
    format!("request body exceeds the limit of {max} bytes")
}

/// Writes each outcome into its record's result and counts appended,
/// duplicate, conflict and failed.
pub(crate) fn fill(
    results: &mut [Value],
    slots: &[usize],
    outcomes: Vec<Outcome>,
    counts: &mut [usize; 4],
) {
    for (&slot, outcome) in slots.iter().zip(outcomes) {
        let r = &mut results[slot];
        match outcome {
            Outcome::Appended { index, leaf_hash } | Outcome::Duplicate { index, leaf_hash } => {
                let status = usize::from(!matches!(outcome, Outcome::Appended { .. }));
                counts[status] += 1;
                r["status"] = json!(["appended", "duplicate"][status]);
                r["index"] = json!(index);
                r["leaf_hash"] = json!(leaf_hash.to_hex());
            }
            Outcome::Conflict { index } => {
                counts[2] += 1;
                r["status"] = json!("conflict");
                r["index"] = json!(index);
                r["reason"] = json!("decision_id was already appended with different content");
            }
            Outcome::Failed(why) => {
                counts[3] += 1;
                r["status"] = json!("failed");
                r["reason"] = json!(why);
            }
        }
    }
}

/// The response: per-record results and totals; `cut` names why the body
/// was not read to its end.
pub(crate) fn answer(
    results: Vec<Value>,
    counts: [usize; 4],
    rejected: usize,
    cut: Option<(StatusCode, String)>,
) -> Response {
    let status = if let Some((status, _)) = &cut {
        *status
    } else if counts[3] > 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if rejected == results.len() {
        StatusCode::BAD_REQUEST
    } else if results.len() == 1 && counts[2] == 1 {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let mut body = json!({
        "results": results,
        "appended": counts[0],
        "duplicate": counts[1],
        "conflict": counts[2],
        "rejected": rejected,
    });
    if let Some((_, why)) = cut {
        body["error"] = json!(why);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
