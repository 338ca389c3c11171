//! `application/cbor-seq` bodies (RFC 8742), processed as they arrive: each
//! record is decoded, checked and queued as soon as its last byte is in, so
//! a long stream is committed in groups while it is still being sent. The
//! answer comes once every queued record is durable.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;
use ingest::input::next_item;
use ingest::{Outcome, Submission};
use tokio::sync::oneshot;

use crate::ack::{too_large, Results};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::TokenEntry;

/// Records queued per submission while a stream is arriving.
const GROUP: usize = 256;

struct Pending {
    slots: Vec<usize>,
    rx: oneshot::Receiver<Vec<Outcome>>,
}

/// Queues `subs` of `who` (taken from its record rate), waiting while the
/// pipeline is busy (the sender is streaming, so it is held back rather
/// than refused).
async fn queue(
    state: &Arc<AppState>,
    who: &TokenEntry,
    mut subs: Vec<Submission>,
    slots: Vec<usize>,
) -> Result<Pending, ApiError> {
    state
        .quotas
        .charge(who, subs.len(), std::time::Instant::now());
    let mut wait = Duration::from_millis(1);
    loop {
        match crate::ack::submit(state, subs).await? {
            Ok(rx) => return Ok(Pending { slots, rx }),
            Err(busy) => {
                subs = busy.subs;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
        }
    }
}

pub(crate) async fn post_sequence(
    state: Arc<AppState>,
    who: TokenEntry,
    body: Body,
    cbor_answer: bool,
) -> Result<Response, ApiError> {
    let max = state.config.max_body;
    let mut stream = body.into_data_stream();
    let (mut buf, mut read) = (Vec::<u8>::new(), 0usize);
    let mut results = Results::default();
    let (mut subs, mut slots, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    let by: Arc<str> = who.enforcer.as_str().into();
    let mut cut: Option<(StatusCode, String)> = None;
    let mut broken = false;
    let signers = state.enforcer_keys.current();
    // Read once per first kept leaf (a point read), then from memory; this
    // path checks its records on this thread too.
    let sender = who
        .sender()
        .with_signers(&signers)
        .keeping_from(state.indexes.kept_from()?);
    'body: while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("reading the body: {e}")))?;
        read += chunk.len();
        if read > max {
            cut = Some((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{}; records after the last result were not read",
                    too_large(max)
                ),
            ));
            break;
        }
        buf.extend_from_slice(&chunk);
        let mut used = 0;
        while let Some(next) = next_item(&buf[used..], results.len(), &sender) {
            match next {
                Ok((n, checked)) => {
                    used += n;
                    match checked {
                        Err(r) if r.forbidden => {
                            // Not appended, and nothing after it is read;
                            // what was queued before is answered as usual.
                            cut = Some((
                                StatusCode::FORBIDDEN,
                                format!("{r}; records after the last result were not read"),
                            ));
                            results.reject(r.decision_id, r.reason);
                            break 'body;
                        }
                        Ok(record) => {
                            if record.leaf.is_signed() {
                                state.signed.fetch_add(1, Ordering::Relaxed);
                            }
                            slots.push(results.queued(&record.decision_id));
                            subs.push(Submission {
                                record,
                                submitted_by: by.clone(),
                            });
                        }
                        Err(r) => results.reject(r.decision_id, r.reason),
                    }
                    if subs.len() >= GROUP {
                        pending.push(
                            queue(
                                &state,
                                &who,
                                std::mem::take(&mut subs),
                                std::mem::take(&mut slots),
                            )
                            .await?,
                        );
                    }
                }
                Err(e) => {
                    broken = true;
                    results.reject(
                        None,
                        format!("{}; the rest of the sequence was not read", e.reason),
                    );
                    break 'body;
                }
            }
        }
        buf.drain(..used);
    }
    if cut.is_none() && !broken && !buf.is_empty() {
        results.reject(None, "the body ends inside a CBOR item".into());
    }
    if results.is_empty() && cut.is_none() {
        return Err(ApiError::bad("the body holds no records"));
    }
    if !subs.is_empty() {
        pending.push(queue(&state, &who, subs, slots).await?);
    }
    state
        .rejected
        .fetch_add(results.rejected() as u64, Ordering::Relaxed);
    for p in pending {
        let outcomes =
            p.rx.await
                .map_err(|_| ApiError::internal("the writer stopped before acknowledging"))?;
        results.fill(&p.slots, outcomes);
    }
    state.senders.wrote(&who.enforcer, results.appended());
    Ok(results.answer(cut, cbor_answer))
}
