//! `POST /v1/kubernetes/audit`: the Kubernetes API server's audit webhook
//! backend. A stock kube-apiserver started with `--audit-webhook-config-file`
//! naming `https://<ledgerd>/v1/kubernetes/audit` (and a writer token as
//! the kubeconfig user's token) ships here unmodified: an `audit.k8s.io/v1`
//! `EventList`, answered 2xx only once its decisions are durable.
//!
//! Mapping (specs/kubernetes.md): one record per request, from its
//! `ResponseComplete` (or `Panic`) event; `k8s:<auditID>` → `decision_id`,
//! `requestReceivedTimestamp` → `time`, the authorizer's annotation →
//! `decision` and `reasons`, the impersonated user (or the user) →
//! `subject` and an impersonating user → `delegation`, `verb` → `action`,
//! `objectRef` → `resource`, the event's metadata kept under
//! `extensions.kubernetes` (never the request or response objects).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::auth::authorize;
use crate::error::ApiError;
use crate::params::Params;
use crate::peer::Peer;
use crate::state::AppState;
use crate::tokens::Role;
use crate::upload::{self, text};

/// The stages whose events are logged: the request's outcome is known.
/// The others (`RequestReceived`, `ResponseStarted`) would log the same
/// request again.
pub const STAGES: [&str; 2] = ["ResponseComplete", "Panic"];

/// The authorizer's annotations on an audit event.
const DECISION: &str = "authorization.k8s.io/decision";
const REASON: &str = "authorization.k8s.io/reason";

/// The event's fields kept under `extensions.kubernetes`: its metadata,
/// not `requestObject` or `responseObject` (which may hold secrets).
const KEPT: [&str; 14] = [
    "auditID",
    "stage",
    "level",
    "requestURI",
    "verb",
    "user",
    "impersonatedUser",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "annotations",
    "requestReceivedTimestamp",
    "stageTimestamp",
];

/// The identity kind a Kubernetes user name says: service accounts
/// (`system:serviceaccount:<ns>:<name>`), the API server's own components
/// and nodes (other `system:` names) as workloads, anyone else as a human.
pub fn identity_kind(username: &str) -> &'static str {
    if username.starts_with("system:serviceaccount:") {
        "service_account"
    } else if username.starts_with("system:") {
        "workload"
    } else {
        "human"
    }
}

/// The authorization decision of an event, with the authorizer's reason:
/// its annotation (`allow`, or `forbid` as `deny`), or for a request
/// answered 401 or 403 without one (not authenticated, refused before
/// the authorizer), `deny`. `None`: the event records no access decision.
fn decision(e: &Value) -> Option<(&'static str, Option<String>)> {
    let reason = text(e, &["annotations", REASON]).map(str::to_string);
    match text(e, &["annotations", DECISION]) {
        Some("allow") => return Some(("allow", reason)),
        Some(_) => return Some(("deny", reason)),
        None => {}
    }
    let code = e.pointer("/responseStatus/code").and_then(Value::as_u64);
    matches!(code, Some(401 | 403)).then(|| {
        let status = text(e, &["responseStatus", "reason"]).unwrap_or("refused");
        (
            "deny",
            reason.or(Some(format!("{status} before authorization"))),
        )
    })
}

/// Maps one audit event to a v1 decision record, or `None` for an event
/// that is not logged: another stage than [`STAGES`], or no access
/// decision in it. `enforcer` is `enforcer.id`; `version` is
/// `policy.version`.
pub fn event_to_record(e: &Value, enforcer: &str, version: &str) -> Option<Value> {
    if !text(e, &["stage"]).is_some_and(|s| STAGES.contains(&s)) {
        return None;
    }
    let (decision, reason) = decision(e)?;
    let user = text(e, &["user", "username"]).unwrap_or("system:anonymous");
    let impersonated = text(e, &["impersonatedUser", "username"]);
    let acting = if impersonated.is_some() {
        "impersonatedUser"
    } else {
        "user"
    };
    let subject_id = impersonated.unwrap_or(user);
    let mut properties = Map::new();
    for k in ["uid", "groups"] {
        if let Some(v) = e.get(acting).and_then(|u| u.get(k)) {
            properties.insert(k.into(), v.clone());
        }
    }
    let mut subject = json!({"type": "kubernetes_user", "id": subject_id,
                             "identity_kind": identity_kind(subject_id)});
    if !properties.is_empty() {
        subject["properties"] = Value::Object(properties);
    }
    let verb = text(e, &["verb"]).unwrap_or("unknown");
    let uri = text(e, &["requestURI"]).unwrap_or("/");
    let mut action = json!({"name": verb, "properties": {"request_uri": uri}});
    if let Some(agent) = text(e, &["userAgent"]) {
        action["properties"]["user_agent"] = json!(agent);
    }
    let resource = match e.get("objectRef") {
        Some(o) if text(o, &["resource"]).is_some() => {
            let mut kind = text(o, &["resource"]).unwrap_or_default().to_string();
            if let Some(group) = text(o, &["apiGroup"]) {
                kind = format!("{group}/{kind}");
            }
            if let Some(sub) = text(o, &["subresource"]) {
                kind = format!("{kind}/{sub}");
            }
            let id: Vec<&str> = [text(o, &["namespace"]), text(o, &["name"])]
                .into_iter()
                .flatten()
                .collect();
            let id = if id.is_empty() {
                "*".to_string()
            } else {
                id.join("/")
            };
            json!({"type": kind, "id": id})
        }
        _ => json!({"type": "non_resource_url", "id": uri}),
    };
    let mut context = Map::new();
    if let Some(id) = text(e, &["auditID"]) {
        context.insert("request_id".into(), json!(id));
    }
    let source = e.pointer("/sourceIPs/0").and_then(Value::as_str);
    if let Some(ip) = source.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()) {
        context.insert("source_ip".into(), json!(ip));
    }
    let mut reasons: Vec<String> = reason.into_iter().collect();
    let code = e.pointer("/responseStatus/code").and_then(Value::as_u64);
    if let Some(code) = code.filter(|&c| c >= 400 && decision == "allow") {
        reasons.push(format!(
            "the API server answered {code} {}",
            text(e, &["responseStatus", "reason"]).unwrap_or("")
        ));
    }
    let kept: Map<String, Value> = KEPT
        .iter()
        .filter_map(|k| e.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let mut record = json!({
        "decision_id": text(e, &["auditID"]).map(|id| format!("k8s:{id}")),
        "time": e.get("requestReceivedTimestamp").cloned().unwrap_or(Value::Null),
        "enforcer": {"id": enforcer, "kind": "api"},
        "subject": subject,
        "action": action,
        "resource": resource,
        "context": context,
        "policy": {"engine": "kubernetes", "id": "kube-apiserver", "version": version},
        "decision": decision,
        "reasons": reasons,
        "extensions": {"kubernetes": kept},
    });
    if impersonated.is_some() {
        record["delegation"] = json!([{"identity_kind": identity_kind(user), "id": user}]);
    }
    Some(record)
}

/// Maps an `EventList` (gzip or not), appends its decisions, and answers
/// 200 once they are durable ([`crate::upload`]). `?cluster=` names the
/// enforcer for a relay token (a writer token's own enforcer otherwise);
/// `?policy_version=` is `policy.version` (default `unversioned`).
pub(crate) async fn post_audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authorize(&state, &headers, &peer, Role::Writer)?;
    params.only(&["cluster", "policy_version"])?;
    // Each names every record of the batch: an empty one would have them
    // all refused.
    for name in ["cluster", "policy_version"] {
        if params.get(name).is_some_and(String::is_empty) {
            return Err(ApiError::bad(format!("{name} is empty")));
        }
    }
    upload::admit(&state, &who)?;
    let enforcer = match who.bound_enforcer() {
        Some(id) => id.to_string(),
        None => params
            .get("cluster")
            .cloned()
            .unwrap_or_else(|| "kube-apiserver".into()),
    };
    let version = params
        .get("policy_version")
        .cloned()
        .unwrap_or_else(|| "unversioned".into());
    let (records, skipped) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let raw = upload::inflate(&headers, &body)?;
        let list: Value = serde_json::from_slice(&raw).map_err(|e| {
            ApiError::bad(format!("a Kubernetes audit EventList (JSON) was expected: {e}"))
        })?;
        let Some(items) = list
            .get("items")
            .and_then(Value::as_array)
            .filter(|_| text(&list, &["kind"]) == Some("EventList"))
        else {
            return Err(ApiError::bad(
                "a Kubernetes audit EventList was expected: {\"kind\": \"EventList\", \"items\": [...]}",
            ));
        };
        let records: Vec<Value> = items
            .iter()
            .filter_map(|e| event_to_record(e, &enforcer, &version))
            .collect();
        let skipped = items.len() - records.len();
        Ok((records, skipped))
    })
    .await
    .map_err(ApiError::internal)??;
    let mut counts = upload::log_mapped(&state, &who, "Kubernetes audit upload", records).await?;
    counts["skipped"] = json!(skipped);
    Ok(upload::answer(&counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stage: &str) -> Value {
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": "a-1", "stage": stage,
            "requestURI": "/api/v1/namespaces/payments/secrets/db", "verb": "get",
            "user": {"username": "system:serviceaccount:ci:deployer", "uid": "u-1",
                     "groups": ["system:serviceaccounts"],
                     "extra": {"authentication.kubernetes.io/pod-name": ["deployer-7d9"]}},
            "sourceIPs": ["10.0.3.7", "10.0.0.1"], "userAgent": "kubectl/v1.31.0",
            "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": {"data": {"password": "c2VjcmV0"}},
            "responseObject": {"data": {"password": "c2VjcmV0"}},
            "requestReceivedTimestamp": "2026-11-23T07:00:00.100000Z",
            "stageTimestamp": "2026-11-23T07:00:00.104000Z",
            "annotations": {"authorization.k8s.io/decision": "allow",
                            "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"read\""}
        })
    }

    fn checked(r: &Value) -> verifier::decision::Decision {
        let c = ingest::check(&ingest::record::from_json(r)).expect("a valid record");
        let leaf = verifier::envelope::encode_parts(c.cbor(), "2026-11-23T07:00:01Z", "k8s");
        verifier::decision::LoggedDecision::from_leaf(&leaf)
            .unwrap()
            .decision
    }

    /// Each field as specs/kubernetes.md maps it, and never the request
    /// or response objects.
    #[test]
    fn a_completed_request_maps_field_by_field() {
        let r = event_to_record(&event("ResponseComplete"), "prod-eu", "rbac-7").unwrap();
        assert_eq!(r["decision_id"], "k8s:a-1");
        assert_eq!(r["time"], "2026-11-23T07:00:00.100000Z");
        assert_eq!(r["enforcer"], json!({"id": "prod-eu", "kind": "api"}));
        assert_eq!(r["subject"]["id"], "system:serviceaccount:ci:deployer");
        assert_eq!(r["subject"]["identity_kind"], "service_account");
        assert_eq!(r["subject"]["properties"]["uid"], "u-1");
        assert!(r["subject"].get("owner").is_none(), "no owner invented");
        assert!(r.get("delegation").is_none());
        assert_eq!(r["action"]["name"], "get");
        assert_eq!(r["action"]["properties"]["user_agent"], "kubectl/v1.31.0");
        assert_eq!(
            r["resource"],
            json!({"type": "secrets", "id": "payments/db"})
        );
        assert_eq!(
            r["context"],
            json!({"request_id": "a-1", "source_ip": "10.0.3.7"})
        );
        assert_eq!(
            r["policy"],
            json!({"engine": "kubernetes", "id": "kube-apiserver", "version": "rbac-7"})
        );
        assert_eq!(r["decision"], "allow");
        assert_eq!(
            r["reasons"],
            json!(["RBAC: allowed by RoleBinding \"read\""])
        );
        let kept = &r["extensions"]["kubernetes"];
        assert_eq!(
            kept["user"]["extra"]["authentication.kubernetes.io/pod-name"][0],
            "deployer-7d9"
        );
        assert!(kept.get("requestObject").is_none() && kept.get("responseObject").is_none());
        assert!(!r.to_string().contains("c2VjcmV0"));
        let d = checked(&r);
        assert_eq!(d.decision, "allow");
    }

    #[test]
    fn only_completed_requests_with_a_decision_are_logged() {
        for stage in ["RequestReceived", "ResponseStarted"] {
            assert!(
                event_to_record(&event(stage), "c", "v").is_none(),
                "{stage}"
            );
        }
        assert!(event_to_record(&event("Panic"), "c", "v").is_some());
        // No authorizer annotation: an access decision only if refused.
        let mut e = event("ResponseComplete");
        e.as_object_mut().unwrap().remove("annotations");
        assert!(event_to_record(&e, "c", "v").is_none());
        e["responseStatus"] = json!({"code": 401, "reason": "Unauthorized"});
        e["user"] = json!({"username": "system:anonymous"});
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(r["decision"], "deny");
        assert_eq!(r["reasons"], json!(["Unauthorized before authorization"]));
        assert_eq!(r["subject"]["identity_kind"], "workload");
        checked(&r);
    }

    /// `forbid` is a denial; an allowed request the server still refused
    /// (an admission webhook) says so in its reasons.
    #[test]
    fn denials_and_later_refusals_are_told() {
        let mut e = event("ResponseComplete");
        e["annotations"] =
            json!({"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""});
        e["responseStatus"] = json!({"code": 403, "reason": "Forbidden"});
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(
            (r["decision"].clone(), r["reasons"].clone()),
            (json!("deny"), json!([]))
        );
        let mut e = event("ResponseComplete");
        e["responseStatus"] = json!({"code": 403, "reason": "Forbidden"});
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(r["decision"], "allow");
        assert_eq!(r["reasons"][1], "the API server answered 403 Forbidden");
    }

    /// The impersonated user is the subject (RBAC checks it); the user who
    /// impersonates is the delegation chain.
    #[test]
    fn impersonation_is_a_delegation() {
        let mut e = event("ResponseComplete");
        e["user"] = json!({"username": "alice@example.com", "groups": ["platform-admins"]});
        e["impersonatedUser"] = json!({"username": "system:serviceaccount:shop:release-bot"});
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(r["subject"]["id"], "system:serviceaccount:shop:release-bot");
        assert_eq!(
            r["delegation"],
            json!([{"identity_kind": "human", "id": "alice@example.com"}])
        );
        assert_eq!(checked(&r).delegation[0].id, "alice@example.com");
    }

    #[test]
    fn resources_name_group_subresource_and_scope() {
        let mut e = event("ResponseComplete");
        e["objectRef"] = json!({"resource": "deployments", "apiGroup": "apps", "namespace": "shop",
                                "name": "web", "subresource": "scale"});
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(
            r["resource"],
            json!({"type": "apps/deployments/scale", "id": "shop/web"})
        );
        e["objectRef"] = json!({"resource": "nodes"});
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(r["resource"], json!({"type": "nodes", "id": "*"}));
        e.as_object_mut().unwrap().remove("objectRef");
        e["requestURI"] = json!("/healthz");
        let r = event_to_record(&e, "c", "v").unwrap();
        assert_eq!(
            r["resource"],
            json!({"type": "non_resource_url", "id": "/healthz"})
        );
        checked(&r);
    }
}
