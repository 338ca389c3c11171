//! Submitting checked records and answering once they are durable: what
//! every write endpoint shares.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::{Busy, Outcome, Submission};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

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

/// What became of a request's records.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    appended: usize,
    duplicate: usize,
    conflict: usize,
    failed: usize,
    /// Of the failed, those whose commit found the disk full.
    disk_full: usize,
}

/// Writes each outcome into its record's result and counts it.
pub(crate) fn fill(
    results: &mut [Value],
    slots: &[usize],
    outcomes: Vec<Outcome>,
    counts: &mut Counts,
) {
    for (&slot, outcome) in slots.iter().zip(outcomes) {
        let r = &mut results[slot];
        match outcome {
            Outcome::Appended { index, leaf_hash } | Outcome::Duplicate { index, leaf_hash } => {
                let appended = matches!(outcome, Outcome::Appended { .. });
                if appended {
                    counts.appended += 1;
                } else {
                    counts.duplicate += 1;
                }
                r["status"] = json!(if appended { "appended" } else { "duplicate" });
                r["index"] = json!(index);
                r["leaf_hash"] = json!(leaf_hash.to_hex());
            }
            Outcome::Conflict { index } => {
                counts.conflict += 1;
                r["status"] = json!("conflict");
                r["index"] = json!(index);
                r["reason"] = json!("decision_id was already appended with different content");
            }
            Outcome::Failed(why) => {
                counts.failed += 1;
                if ingest::pipeline::is_disk_full(&why) {
                    counts.disk_full += 1;
                }
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
    counts: Counts,
    rejected: usize,
    cut: Option<(StatusCode, String)>,
) -> Response {
    let status = if let Some((status, _)) = &cut {
        *status
    } else if counts.disk_full > 0 {
        StatusCode::INSUFFICIENT_STORAGE
    } else if counts.failed > 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if rejected == results.len() {
        StatusCode::BAD_REQUEST
    } else if results.len() == 1 && counts.conflict == 1 {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let mut body = json!({
        "results": results,
        "appended": counts.appended,
        "duplicate": counts.duplicate,
        "conflict": counts.conflict,
        "rejected": rejected,
    });
    if let Some((_, why)) = cut {
        body["error"] = json!(why);
    }
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::INSUFFICIENT_STORAGE {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(crate::error::DISK_FULL_RETRY_AFTER),
        );
    }
    r
}
