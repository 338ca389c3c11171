//! Submitting checked records and answering once they are durable: what
//! every write endpoint shares.
//!
//! The answer (specs/openapi.yaml, `WriteResult`) is written straight from
//! the per-record results, as JSON, or as deterministic CBOR when the
//! client sends `Accept: application/cbor`: the same keys and values
//! (`leaf_hash` as hex text in both).

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::{Busy, Outcome, Submission};
use verifier::cbor::{head, text_into};

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
    let rx = submit(state, subs)
        .await?
        .map_err(|busy| busy_error(&busy))?;
    rx.await
        .map_err(|_| ApiError::internal("the writer stopped before acknowledging"))
}

/// The answer to a write the pipeline refuses for now (503 with
/// `Retry-After`): nothing of it was appended.
pub(crate) fn busy_error(busy: &Busy) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{busy}; nothing of this request was appended"),
    )
}

pub(crate) fn too_large(max: usize) -> String {
    format!("request body exceeds the limit of {max} bytes")
}

/// Whether the client asked for a CBOR answer.
pub(crate) fn wants_cbor(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/cbor"))
}

/// What became of one record of a request.
enum Status {
    /// Queued; its outcome is not in yet.
    Queued,
    Done(Outcome),
    Rejected(String),
}

struct Item {
    position: usize,
    decision_id: Option<String>,
    status: Status,
}

/// The per-record results of one request, in body order.
#[derive(Default)]
pub(crate) struct Results {
    items: Vec<Item>,
    appended: usize,
    duplicate: usize,
    conflict: usize,
    rejected: usize,
    failed: usize,
    /// Of the failed, those whose commit found the disk full.
    disk_full: usize,
}

impl Results {
    pub(crate) fn with_capacity(n: usize) -> Results {
        Results {
            items: Vec::with_capacity(n),
            ..Results::default()
        }
    }

    /// Records seen so far (the next one's position).
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records refused before they were queued.
    pub(crate) fn appended(&self) -> usize {
        self.appended
    }

    pub(crate) fn rejected(&self) -> usize {
        self.rejected
    }

    /// A record queued; returns its slot for [`Results::fill`].
    pub(crate) fn queued(&mut self, decision_id: &str) -> usize {
        let position = self.items.len();
        self.items.push(Item {
            position,
            decision_id: Some(decision_id.to_string()),
            status: Status::Queued,
        });
        position
    }

    /// A record refused with `reason`.
    pub(crate) fn reject(&mut self, decision_id: Option<String>, reason: String) {
        self.rejected += 1;
        let position = self.items.len();
        self.items.push(Item {
            position,
            decision_id,
            status: Status::Rejected(reason),
        });
    }

    /// Writes each outcome into its record's slot and counts it.
    pub(crate) fn fill(&mut self, slots: &[usize], outcomes: Vec<Outcome>) {
        for (&slot, outcome) in slots.iter().zip(outcomes) {
            match &outcome {
                Outcome::Appended { .. } => self.appended += 1,
                Outcome::Duplicate { .. } => self.duplicate += 1,
                Outcome::Conflict { .. } => self.conflict += 1,
                Outcome::Failed(why) => {
                    self.failed += 1;
                    if ingest::pipeline::is_disk_full(why) {
                        self.disk_full += 1;
                    }
                }
            }
            self.items[slot].status = Status::Done(outcome);
        }
    }

    fn status(&self, cut: &Option<(StatusCode, String)>) -> StatusCode {
        if let Some((status, _)) = cut {
            *status
        } else if self.disk_full > 0 {
            StatusCode::INSUFFICIENT_STORAGE
        } else if self.failed > 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if self.rejected == self.items.len() {
            StatusCode::BAD_REQUEST
        } else if self.items.len() == 1 && self.conflict == 1 {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        }
    }

    /// The answer: per-record results and totals; `cut` names why the
    /// body was not read to its end.
    pub(crate) fn answer(&self, cut: Option<(StatusCode, String)>, cbor: bool) -> Response {
        let status = self.status(&cut);
        let why = cut.as_ref().map(|(_, w)| w.as_str());
        let (body, ct) = if cbor {
            (self.cbor(why), "application/cbor")
        } else {
            (self.json(why), "application/json")
        };
        let mut r = (status, [(header::CONTENT_TYPE, ct)], body).into_response();
        if status == StatusCode::INSUFFICIENT_STORAGE {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(crate::error::DISK_FULL_RETRY_AFTER),
            );
        }
        r
    }

    /// JSON, keys in the order a JSON object map sorts them.
    fn json(&self, error: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.items.len() * 140);
        out.extend_from_slice(b"{\"appended\":");
        num(&mut out, self.appended);
        out.extend_from_slice(b",\"conflict\":");
        num(&mut out, self.conflict);
        out.extend_from_slice(b",\"duplicate\":");
        num(&mut out, self.duplicate);
        if let Some(e) = error {
            out.extend_from_slice(b",\"error\":");
            json_str(&mut out, e);
        }
        out.extend_from_slice(b",\"rejected\":");
        num(&mut out, self.rejected);
        out.extend_from_slice(b",\"results\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.json(&mut out);
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// Deterministic CBOR (keys in the order of their encodings).
    fn cbor(&self, error: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.items.len() * 120);
        head(5, 5 + u64::from(error.is_some()), &mut out);
        if let Some(e) = error {
            text_into("error", &mut out);
            text_into(e, &mut out);
        }
        text_into("results", &mut out);
        head(4, self.items.len() as u64, &mut out);
        for item in &self.items {
            item.cbor(&mut out);
        }
        for (k, n) in [
            ("appended", self.appended),
            ("conflict", self.conflict),
            ("rejected", self.rejected),
            ("duplicate", self.duplicate),
        ] {
            text_into(k, &mut out);
            head(0, n as u64, &mut out);
        }
        out
    }
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// An item's fields: (index, leaf hash, status, reason).
type Fields<'a> = (Option<u64>, Option<String>, &'a str, Option<&'a str>);

impl Item {
    fn fields(&self) -> Fields<'_> {
        match &self.status {
            // Filled before any answer is written; "queued" if not.
            Status::Queued => (None, None, "queued", None),
            Status::Rejected(why) => (None, None, "rejected", Some(why)),
            Status::Done(Outcome::Appended { index, leaf_hash }) => {
                (Some(*index), Some(leaf_hash.to_hex()), "appended", None)
            }
            Status::Done(Outcome::Duplicate { index, leaf_hash }) => {
                (Some(*index), Some(leaf_hash.to_hex()), "duplicate", None)
            }
            Status::Done(Outcome::Conflict { index }) => (
                Some(*index),
                None,
                "conflict",
                Some("decision_id was already appended with different content"),
            ),
            Status::Done(Outcome::Failed(why)) => (None, None, "failed", Some(why)),
        }
    }

    fn json(&self, out: &mut Vec<u8>) {
        let (index, hash, status, reason) = self.fields();
        out.extend_from_slice(b"{\"decision_id\":");
        match &self.decision_id {
            Some(id) => json_str(out, id),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(i) = index {
            out.extend_from_slice(b",\"index\":");
            num(out, i);
        }
        if let Some(h) = hash {
            out.extend_from_slice(b",\"leaf_hash\":\"");
            out.extend_from_slice(h.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"position\":");
        num(out, self.position);
        if let Some(r) = reason {
            out.extend_from_slice(b",\"reason\":");
            json_str(out, r);
        }
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\"}");
    }

    fn cbor(&self, out: &mut Vec<u8>) {
        let (index, hash, status, reason) = self.fields();
        let n = 3
            + u64::from(index.is_some())
            + u64::from(hash.is_some())
            + u64::from(reason.is_some());
        head(5, n, out);
        if let Some(i) = index {
            text_into("index", out);
            head(0, i, out);
        }
        if let Some(r) = reason {
            text_into("reason", out);
            text_into(r, out);
        }
        text_into("status", out);
        text_into(status, out);
        text_into("position", out);
        head(0, self.position as u64, out);
        if let Some(h) = hash {
            text_into("leaf_hash", out);
            text_into(&h, out);
        }
        text_into("decision_id", out);
        match &self.decision_id {
            Some(id) => text_into(id, out),
            None => out.push(0xf6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verifier::Hash;

    fn sample() -> Results {
        let mut r = Results::with_capacity(4);
        let a = r.queued("d-\"1\"");
        r.reject(None, "decision: \"maybe\" is not one of allow, deny".into());
        let b = r.queued("d-2");
        let c = r.queued("d-3");
        r.fill(
            &[a, b, c],
            vec![
                Outcome::Appended {
                    index: 7,
                    leaf_hash: Hash([0xab; 32]),
                },
                Outcome::Duplicate {
                    index: 3,
                    leaf_hash: Hash([1; 32]),
                },
                Outcome::Conflict { index: 4 },
            ],
        );
        r
    }

    /// The JSON answer is what the value trees used to give, byte for byte.
    #[test]
    fn json_is_the_sorted_object_it_was() {
        let r = sample();
        let want = serde_json::json!({
            "appended": 1, "duplicate": 1, "conflict": 1, "rejected": 1, "error": "cut",
            "results": [
                {"position": 0, "decision_id": "d-\"1\"", "status": "appended", "index": 7, "leaf_hash": "ab".repeat(32)},
                {"position": 1, "decision_id": null, "status": "rejected", "reason": "decision: \"maybe\" is not one of allow, deny"},
                {"position": 2, "decision_id": "d-2", "status": "duplicate", "index": 3, "leaf_hash": "01".repeat(32)},
                {"position": 3, "decision_id": "d-3", "status": "conflict", "index": 4, "reason": "decision_id was already appended with different content"},
            ]
        });
        assert_eq!(
            String::from_utf8(r.json(Some("cut"))).unwrap(),
            want.to_string()
        );
    }

    /// The CBOR answer holds the same values, deterministically encoded.
    #[test]
    fn cbor_is_the_same_values_deterministic() {
        let r = sample();
        for error in [None, Some("cut")] {
            let bytes = r.cbor(error);
            assert!(verifier::cbor::is_deterministic(&bytes));
            let v: serde_json::Value = ciborium::from_reader(&bytes[..]).unwrap();
            let j: serde_json::Value = serde_json::from_slice(&r.json(error)).unwrap();
            assert_eq!(v, j);
        }
    }
}
