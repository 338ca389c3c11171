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
    let disk_full = results.iter().any(|r| {
        r["status"] == "failed"
            && r["reason"]
                .as_str()
                .is_some_and(ingest::pipeline::is_disk_full)
    });
    let status = if let Some((status, _)) = &cut {
        *status
    } else if counts[3] > 0 && disk_full {
        StatusCode::INSUFFICIENT_STORAGE
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
