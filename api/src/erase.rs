//! `POST /v1/decisions/<id>/erasure` and `POST /v1/erasures`: erase
//! decisions' entries inside the retention window (specs/erasure.md), one
//! or many at once, with an eraser token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::{EraseError, Outcome};
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
        EraseError::Failed(_) => ApiError::internal(e),
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
    let one = erase_all(&state, &who.enforcer, vec![id], asked)
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("no answer for the erasure"))?;
    Ok(json_answer(&one?))
}

/// The body of `POST /v1/erasures`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AskedMany {
    decision_ids: Vec<String>,
    reason: String,
    #[serde(default)]
    ticket: Option<String>,
}

/// Decisions erased in one `POST /v1/erasures` at most.
pub const MAX_BATCH: usize = 1_000;

/// `POST /v1/erasures` with `{"decision_ids": […], "reason": "…", "ticket":
/// "…"}`: erases up to [`MAX_BATCH`] decisions at once, their records
/// logged in one commit and their entries removed after one checkpoint.
/// Answers `{"results": […]}`, one per id in order: what `POST
/// /v1/decisions/<id>/erasure` answers, or `{"decision_id", "status",
/// "error"}` with the status it would have answered.
pub(crate) async fn erase_many(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authorize(&state, &headers, &peer, Role::Eraser)?;
    let asked: AskedMany = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "the body must be JSON {{\"decision_ids\": [\"…\"], \"reason\": \"…\", \"ticket\": \"…\" (optional)}}: {e}"
        ))
    })?;
    if asked.decision_ids.is_empty() || asked.decision_ids.len() > MAX_BATCH {
        return Err(ApiError::bad(format!(
            "decision_ids must name 1 to {MAX_BATCH} decisions, not {}",
            asked.decision_ids.len()
        )));
    }
    ingest::check_request(&Request {
        requested_by: &who.enforcer,
        reason: &asked.reason,
        ticket: asked.ticket.as_deref(),
    })
    .map_err(|e| ApiError::bad(e.to_string()))?;
    let one = Asked {
        reason: asked.reason,
        ticket: asked.ticket,
    };
    let ids = asked.decision_ids.clone();
    let results = erase_all(&state, &who.enforcer, asked.decision_ids, one).await?;
    let results: Vec<serde_json::Value> = ids
        .iter()
        .zip(results)
        .map(|(id, r)| match r {
            Ok(done) => done.json(),
            Err(e) => serde_json::json!({
                "decision_id": id,
                "status": e.status.as_u16(),
                "error": e.reason,
            }),
        })
        .collect();
    let body = serde_json::json!({ "results": results });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response())
}

/// One erasure done.
struct Done {
    decision_id: String,
    erased: ledger::Erased,
    /// Now, or before.
    now: bool,
}

impl Done {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "decision_id": self.decision_id,
            "index": self.erased.index,
            "leaf_hash": self.erased.leaf_hash.to_hex(),
            "erasure": {
                "decision_id": verifier::erasure::decision_id(self.erased.index),
                "index": self.erased.by,
            },
            "erased": if self.now { "now" } else { "before" },
        })
    }
}

fn json_answer(done: &Done) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{}\n", done.json()),
    )
        .into_response()
}

/// Erases `ids` as `requested_by` asks: plans each, logs every record in
/// one commit, waits for a checkpoint that holds them (up to
/// [`CHECKPOINT_WAIT`]), then removes the entries. One result per id, in
/// order; `Err` for the whole only when the records could not be queued.
async fn erase_all(
    state: &Arc<AppState>,
    requested_by: &str,
    ids: Vec<String>,
    asked: Asked,
) -> Result<Vec<Result<Done, ApiError>>, ApiError> {
    let batch = {
        let state = state.clone();
        let (ids, requested_by) = (ids.clone(), requested_by.to_string());
        blocking(move || {
            let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
            let req = Request {
                requested_by: &requested_by,
                reason: &asked.reason,
                ticket: asked.ticket.as_deref(),
            };
            Ok(state
                .indexes
                .plan_erasures(&ids, &req, &now, Some(&state.data)))
        })
        .await?
    };
    let records = batch.records();
    let outcomes = match records.is_empty() {
        true => Vec::new(),
        false => submit_and_wait(state, records).await?,
    };
    // Nothing is removed before a signed checkpoint holds the records
    // (checkpoints are signed about every second).
    let newest = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Appended { index, .. }
            | Outcome::Duplicate { index, .. }
            | Outcome::Conflict { index } => Some(*index),
            Outcome::Failed(_) => None,
        })
        .max();
    if let Some(newest) = newest {
        let deadline = std::time::Instant::now() + CHECKPOINT_WAIT;
        while state
            .log
            .latest_checkpoint()
            .is_none_or(|c| c.checkpoint.size <= newest)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let finished = {
        let state = state.clone();
        blocking(move || Ok(state.indexes.finish_batch(batch, &outcomes))).await?
    };
    Ok(ids
        .into_iter()
        .zip(finished)
        .map(|(decision_id, r)| {
            let (erased, now) = r.map_err(api_error)?;
            if now {
                crate::state::ERASURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(Done {
                decision_id,
                erased,
                now,
            })
        })
        .collect())
}
