//! `POST /v1/decisions`: enforcers append decision records, as one body
//! (JSON or CBOR) or as a CBOR sequence checked as it arrives ([`stream`]).

mod stream;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use ingest::input::{parse_body, Format};
use ingest::Submission;

use crate::ack::{busy_error, submit_and_wait, too_large, wants_cbor, Results};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::peer::Peer;
use crate::state::AppState;
use crate::tokens::{Role, TokenEntry};

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?").trim();
        if !enc.eq_ignore_ascii_case("identity") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding {enc:?} not accepted here; send records uncompressed"),
            ));
        }
    }
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

/// 429 when `who` is over its record rate ([`crate::quota`]), or 503
/// when the pipeline would refuse the records anyway (a full queue, or
/// indexes too far behind the log), without checking the body: checking
/// it would only take CPU from the work that frees it. The body is still
/// read (and dropped, up to the size limit), so that the writer gets the
/// answer on a connection it can keep using.
async fn refuse_if_busy(state: &AppState, who: &TokenEntry, body: Body) -> Result<Body, ApiError> {
    let refused = match state.quotas.admit(who, Instant::now()) {
        Err(wait) => ApiError::over_rate(who, wait),
        Ok(()) => match state.pipeline.refusing() {
            Some(busy) => busy_error(&busy),
            None => return Ok(body),
        },
    };
    let mut chunks = body.into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut chunks).await {
        read += chunk.len();
        if read > state.config.max_body {
            break;
        }
    }
    Err(refused)
}

/// Checks every record, queues the good ones, and answers once they are
/// durable: one result per record, in body order. A CBOR sequence is
/// decoded, checked and queued as it arrives.
pub(crate) async fn post_decisions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    body: Body,
) -> Result<Response, ApiError> {
    let who = authorize(&state, &headers, &peer, Role::Writer)?;
    let format = format_of(&headers)?;
    let cbor_answer = wants_cbor(&headers);
    let body = refuse_if_busy(&state, &who, body).await?;
    if format == Format::CborSeq {
        return stream::post_sequence(state, who, body, cbor_answer).await;
    }
    let body = axum::body::to_bytes(body, state.config.max_body)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                too_large(state.config.max_body),
            )
        })?;
    let sender = who.clone();
    let signers = state.enforcer_keys.current();
    let indexes = state.indexes.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let sender = sender
            .sender()
            .with_signers(&signers)
            .keeping_from(indexes.kept_from()?);
        Ok::<_, ApiError>(parse_body(format, &body, &sender))
    })
    .await
    .map_err(ApiError::internal)??
    .map_err(|e| ApiError::bad(e.to_string()))?;
    if parsed.is_empty() {
        return Err(ApiError::bad("the body holds no records"));
    }
    // A record its writer may not send refuses the whole request.
    if let Some(Err(r)) = parsed.iter().find(|p| matches!(p, Err(r) if r.forbidden)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{r}; nothing of this request was appended"),
        ));
    }
    let mut results = Results::with_capacity(parsed.len());
    let mut subs = Vec::with_capacity(parsed.len());
    let by: std::sync::Arc<str> = who.enforcer.as_str().into();
    let mut slots = Vec::with_capacity(parsed.len());
    let mut signed = 0u64;
    for item in parsed {
        match item {
            Ok(record) => {
                signed += u64::from(record.leaf.is_signed());
                slots.push(results.queued(&record.decision_id));
                subs.push(Submission {
                    record,
                    submitted_by: by.clone(),
                });
            }
            Err(rejected) => results.reject(rejected.decision_id, rejected.reason),
        }
    }
    state.signed.fetch_add(signed, Ordering::Relaxed);
    state
        .rejected
        .fetch_add(results.rejected() as u64, Ordering::Relaxed);
    state.quotas.charge(&who, results.len(), Instant::now());
    if !subs.is_empty() {
        let outcomes = submit_and_wait(&state, subs).await?;
        results.fill(&slots, outcomes);
    }
    state.senders.wrote(&who.enforcer, results.appended());
    Ok(results.answer(None, cbor_answer))
}
