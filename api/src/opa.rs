//! `POST /v1/opa/logs`: OPA's decision-log upload. A stock OPA with
//! `decision_logs.service` pointing at `http://<ledgerd>/v1/opa` (and a writer
//! token as its bearer credential) ships here unmodified: a gzip JSON array
//! of decision events, answered 2xx only once the batch is durable.
//!
//! Mapping (specs/opa.md): `decision_id`, `timestamp` → `time`, the writer
//! token's enforcer (a relay's: `labels.id`) → `enforcer.id` (kind
//! `policy_engine`), subject and action and resource from
//! common `input` shapes, `path` → `policy.id`, bundle revisions → `policy.version`,
//! `result` → `decision`, `req_id`/`trace_id`/`span_id` → `context`, and the
//! whole event (input, result, path, bundles, labels, …) kept under
//! `extensions.opa` as evidence.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::auth::authorize;
use crate::error::ApiError;
use crate::peer::Peer;
use crate::state::AppState;
use crate::tokens::Role;
use crate::upload;

/// The first of `paths` that holds non-empty text.
fn text_at<'a>(v: &'a Value, paths: &[&[&str]]) -> Option<&'a str> {
    paths.iter().find_map(|p| upload::text(v, p))
}

/// Maps one OPA decision event to a v1 decision record.
pub fn event_to_record(e: &Value) -> Value {
    let input = e.get("input").cloned().unwrap_or(Value::Null);
    let subject_id = text_at(
        &input,
        &[&["subject", "id"], &["user"], &["principal"], &["subject"]],
    )
    .or_else(|| text_at(e, &[&["requested_by"]]))
    .unwrap_or("unknown");
    let identity_kind = text_at(&input, &[&["subject", "identity_kind"], &["identity_kind"]])
        .filter(|k| ingest::record::IDENTITY_KINDS.contains(k))
        .unwrap_or("workload");
    // No default: a missing owner stays missing, and the evidence of the
    // decision reports an identity without an accountable owner.
    let owner = text_at(&input, &[&["subject", "owner"], &["owner"]]);
    let path = text_at(e, &[&["path"]]).unwrap_or("data");
    let action = text_at(&input, &[&["action", "name"], &["action"], &["method"]]).unwrap_or(path);
    let resource =
        text_at(&input, &[&["resource", "id"], &["resource"], &["path"]]).unwrap_or(path);
    let mut revisions: Vec<String> = e
        .get("bundles")
        .and_then(Value::as_object)
        .map(|b| {
            b.iter()
                .map(|(name, v)| {
                    format!(
                        "{name}@{}",
                        v.get("revision").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    revisions.sort();
    let version = if revisions.is_empty() {
        text_at(e, &[&["labels", "version"]])
            .unwrap_or("unversioned")
            .to_string()
    } else {
        revisions.join(",")
    };
    let allowed = match e.get("result") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(o)) => o.get("allow").and_then(Value::as_bool).unwrap_or(false),
        _ => false,
    };
    let mut context = Map::new();
    for (from, to) in [
        ("req_id", "request_id"),
        ("trace_id", "trace_id"),
        ("span_id", "span_id"),
    ] {
        match e.get(from) {
            Some(Value::String(s)) if !s.is_empty() => {
                context.insert(to.into(), json!(s));
            }
            Some(Value::Number(n)) => {
                context.insert(to.into(), json!(n.to_string()));
            }
            _ => {}
        }
    }
    let mut evidence = Map::new();
    for k in [
        "input",
        "result",
        "path",
        "bundles",
        "labels",
        "requested_by",
        "erased",
        "masked",
    ] {
        if let Some(v) = e.get(k) {
            evidence.insert(k.into(), v.clone());
        }
    }
    let mut subject =
        json!({"type": "opa_input", "id": subject_id, "identity_kind": identity_kind});
    if let Some(owner) = owner {
        subject["owner"] = json!(owner);
    }
    json!({
        "decision_id": e.get("decision_id").cloned().unwrap_or(Value::Null),
        "time": e.get("timestamp").cloned().unwrap_or(Value::Null),
        "enforcer": {"id": text_at(e, &[&["labels", "id"]]).unwrap_or("opa"), "kind": "policy_engine"},
        "subject": subject,
        "action": {"name": action},
        "resource": {"type": "opa_input", "id": resource},
        "context": context,
        "policy": {"engine": "opa", "id": path, "version": version},
        "decision": if allowed { "allow" } else { "deny" },
        "extensions": {"opa": evidence},
    })
}

/// Decompresses (gzip) and maps an upload, appends the good events, and
/// answers 200 once they are durable ([`crate::upload`]).
pub(crate) async fn post_logs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authorize(&state, &headers, &peer, Role::Writer)?;
    // The upload is read already (the extractor); OPA retries later.
    upload::admit(&state, &who)?;
    // A writer token speaks for its own enforcer: the records say so,
    // whatever OPA labelled itself (kept under extensions.opa.labels).
    let bound = who.bound_enforcer().map(str::to_string);
    let records = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let raw = upload::inflate(&headers, &body)?;
        let events: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| {
            ApiError::bad(format!(
                "OPA decision logs must be a JSON array of events: {e}"
            ))
        })?;
        Ok(events
            .iter()
            .map(|e| {
                let mut mapped = event_to_record(e);
                if let Some(id) = &bound {
                    mapped["enforcer"]["id"] = json!(id);
                }
                mapped
            })
            .collect())
    })
    .await
    .map_err(ApiError::internal)??;
    let counts = upload::log_mapped(&state, &who, "OPA upload", records).await?;
    Ok(upload::answer(&counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every default specs/opa.md names, and a missing owner left missing
    /// so that the evidence reports it.
    #[test]
    fn a_bare_event_gets_the_documented_defaults_and_no_owner() {
        let e =
            json!({"decision_id": "opa-1", "timestamp": "2026-11-23T07:00:00Z", "result": true});
        let r = event_to_record(&e);
        assert_eq!(
            r["subject"],
            json!({"type": "opa_input", "id": "unknown", "identity_kind": "workload"})
        );
        assert_eq!(r["enforcer"], json!({"id": "opa", "kind": "policy_engine"}));
        assert_eq!(
            r["policy"],
            json!({"engine": "opa", "id": "data", "version": "unversioned"})
        );
        assert_eq!(
            (&r["action"]["name"], &r["resource"]["id"]),
            (&json!("data"), &json!("data"))
        );
        assert_eq!(r["decision"], "allow");
        let checked = ingest::check(&ingest::record::from_json(&r)).unwrap();
        let leaf = verifier::envelope::encode_parts(checked.cbor(), "2026-11-23T07:00:01Z", "opa");
        let d = verifier::decision::LoggedDecision::from_leaf(&leaf).unwrap();
        let codes: Vec<&str> = verifier::findings::of_decision(&d.decision)
            .iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, ["no_owner"]);
    }
}
