//! `POST /v1/decisions/<id>/erasure`: erase one decision's entry inside
//! the retention window (specs/erasure.md), with an eraser token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::{EraseError, Outcome, Plan};
use verifier::erasure::Request;

use crate::ack::submit_and_wait;
use crate::auth::authorize;
use crate::error::ApiError;
use crate::peer::Peer;
use crate::state::{blocking, AppState};
use crate::tokens::Role;

/// How long an erasure waits for a checkpoint that holds its record.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The body: why, and under which ticket.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Asked {
    reason: String,
    #[serde(default)]
    ticket: Option<String>,
}

fn api_error(e: EraseError) -> ApiError {
    match e {
        EraseError::NotFound(why) => ApiError::not_found(why),
        EraseError::Request(_) => ApiError::bad(e.to_string()),
        EraseError::Held { .. } | EraseError::OwnRecord(_) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        EraseError::NotLogged(why) if ingest::pipeline::is_disk_full(&why) => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("the erasure record could not be logged: {why}"),
        ),
        EraseError::NotLogged(_) => ApiError::internal(e),
        EraseError::NotCheckpointed(_) => ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        },
        EraseError::Ledger(e) => e.into(),
    }
}

/// `POST /v1/decisions/<id>/erasure` with `{"reason": "…", "ticket": "…"}`:
/// logs the erasure record (asked for by the token's name), then erases
/// the entry; answers what was erased and by which record. Asking again
/// answers the same.
pub(crate) async fn erase(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authorize(&state, &headers, &peer, Role::Eraser)?;
    let asked: Asked = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "the body must be JSON {{\"reason\": \"…\", \"ticket\": \"…\" (optional)}}: {e}"
        ))
    })?;
    let plan = {
        let state = state.clone();
        let id = id.clone();
        let requested_by = who.enforcer.clone();
        blocking(move || {
            let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
            let req = Request {
                requested_by: &requested_by,
                reason: &asked.reason,
                ticket: asked.ticket.as_deref(),
            };
            state
                .indexes
                .plan_erasure(&id, &req, &now, Some(&state.data))
                .map_err(api_error)
        })
        .await?
    };
    let (erased, now) = match plan {
        Plan::Done(erased) => (erased, false),
        Plan::Erase(planned) => {
            let outcome = submit_and_wait(&state, vec![planned.record.clone()])
                .await?
                .pop()
                .ok_or_else(|| ApiError::internal("no answer for the erasure record"))?;
            // Nothing is removed before a signed checkpoint holds the
            // record (checkpoints are signed about every second).
            if let Outcome::Appended { index, .. }
            | Outcome::Duplicate { index, .. }
            | Outcome::Conflict { index } = outcome
            {
                let deadline = std::time::Instant::now() + CHECKPOINT_WAIT;
                while state
                    .log
                    .latest_checkpoint()
                    .is_none_or(|c| c.checkpoint.size <= index)
                    && std::time::Instant::now() < deadline
                {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            let state = state.clone();
            let erased = blocking(move || {
                state
                    .indexes
                    .finish_erasure(&planned, &outcome)
                    .map_err(api_error)
            })
            .await?;
            (erased, true)
        }
    };
    let body = serde_json::json!({
        "decision_id": id,
        "index": erased.index,
        "leaf_hash": erased.leaf_hash.to_hex(),
        "erasure": {
            "decision_id": verifier::erasure::decision_id(erased.index),
            "index": erased.by,
        },
        "erased": if now { "now" } else { "before" },
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response())
}
