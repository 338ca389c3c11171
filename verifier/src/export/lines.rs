//! The derived files of an export, one line per disclosed decision
//! (specs/export.md, "Derived files"): JSON Lines, CSV for people, and OCSF
//! API Activity. Each line is a function of the proven leaf alone, so a
//! verifier regenerates it and compares bytes.

use serde_json::{json, Value};

use crate::decision::{Decision, LoggedDecision};
use crate::json::logged_value;

/// The OCSF schema version the lines follow.
pub const OCSF_VERSION: &str = "1.1.0";
/// OCSF API Activity.
pub const OCSF_CLASS_UID: u64 = 6003;
/// OCSF Application Activity.
pub const OCSF_CATEGORY_UID: u64 = 6;

/// The CSV header line (with its newline).
pub const CSV_HEADER: &str = "index,received_at,time,decision_id,decision,subject_id,subject_kind,subject_owner,delegation,action,resource,policy,enforcer,submitted_by,credential_expires,break_glass,reasons\n";

/// A decision's line of `decisions.jsonl` (with its newline): the record
/// with its index, leaf hash, `received_at` and `submitted_by`, as
/// `GET /v1/decisions/{id}` answers.
pub fn jsonl(index: u64, logged: &LoggedDecision) -> String {
    let mut line = logged_value(
        index,
        &logged.leaf_hash,
        &logged.received_at.canonical(),
        &logged.submitted_by,
        &logged.record,
    )
    .to_string();
    line.push('\n');
    line
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line
/// break, quotes doubled.
fn field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// A decision's row of `decisions.csv` (with its newline), in the columns
/// of [`CSV_HEADER`].
pub fn csv(index: u64, logged: &LoggedDecision) -> String {
    let d = &logged.decision;
    let chain = d.chain_ids().join(" > ");
    let cells: [String; 17] = [
        index.to_string(),
        logged.received_at.canonical(),
        d.time.canonical(),
        d.decision_id.clone(),
        d.decision.clone(),
        d.subject.id.clone(),
        d.subject.identity_kind.clone(),
        d.subject.owner.clone().unwrap_or_default(),
        chain,
        d.action.clone(),
        d.resource.id.clone(),
        format!("{}@{}", d.policy.id, d.policy.version),
        format!("{} {}", d.enforcer.kind, d.enforcer.id),
        logged.submitted_by.clone(),
        d.credential
            .as_ref()
            .map(|c| c.expires_at.canonical())
            .unwrap_or_default(),
        d.emergency
            .as_ref()
            .map(|e| e.break_glass.to_string())
            .unwrap_or_default(),
        d.reasons.join("; "),
    ];
    let mut out = String::with_capacity(256);
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, c);
    }
    out.push('\n');
    out
}

/// OCSF `activity_id` from the action: an HTTP method first in its name
/// (`GET /v1/orders`) gives Read (GET, HEAD), Create (POST), Update (PUT,
/// PATCH) or Delete (DELETE); anything else is Other (99).
pub fn activity_id(action: &str) -> u64 {
    match action.split([' ', '\t']).next().unwrap_or("") {
        "POST" => 1,
        "GET" | "HEAD" => 2,
        "PUT" | "PATCH" => 3,
        "DELETE" => 4,
        _ => 99,
    }
}

/// Milliseconds since the epoch.
fn millis(t: &crate::timestamp::Timestamp) -> u64 {
    t.unix_nanos() / 1_000_000
}

fn user(kind: &str, id: &str, owner: &Option<String>) -> Value {
    // OCSF user types: 1 User, 3 System, 99 Other.
    let type_id = match kind {
        "human" => 1,
        "service_account" | "workload" => 3,
        _ => 99,
    };
    let mut u = json!({"uid": id, "name": id, "type_id": type_id, "type": kind});
    if let Some(o) = owner {
        u["org"] = json!({"owner": o});
    }
    u
}

/// A decision's line of `ocsf.jsonl` (with its newline): an OCSF API
/// Activity event (class 6003), mapped as specs/export.md says field by
/// field.
pub fn ocsf(index: u64, logged: &LoggedDecision, origin: &str) -> String {
    let d: &Decision = &logged.decision;
    let activity = activity_id(&d.action);
    let allowed = d.decision == "allow";
    let break_glass = d.emergency.as_ref().is_some_and(|e| e.break_glass);
    let mut actor = json!({
        "user": user(&d.subject.identity_kind, &d.subject.id, &d.subject.owner),
        "authorizations": [{
            "decision": d.decision,
            "policy": {"uid": d.policy.id, "name": d.policy.id, "version": d.policy.version},
        }],
    });
    if let Some(issuer) = &d.subject.issuer {
        actor["idp"] = json!({"name": issuer});
    }
    if !d.delegation.is_empty() {
        actor["invoked_by"] = json!(d.chain_ids().join(" > "));
    }
    let mut src = json!({});
    if let Some(ip) = &d.context.source_ip {
        src["ip"] = json!(ip);
    }
    if let Some(s) = &d.context.originating_service {
        src["svc_name"] = json!(s);
    }
    let mut api = json!({"operation": d.action, "service": {"name": d.resource.id}});
    if let Some(r) = &d.context.request_id {
        api["request"] = json!({"uid": r});
    }
    let mut resource = json!({"uid": d.resource.id, "type": d.resource.kind});
    if let Some(s) = &d.resource.sensitivity {
        resource["data_classification"] = json!({"category": s});
    }
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": {"name": "Decision Ledger", "vendor_name": "Decision Ledger"},
        "profiles": ["security_control"],
        "uid": d.decision_id,
        "log_name": origin,
        "logged_time": millis(&logged.received_at),
        "original_time": d.time.canonical(),
    });
    if let Some(t) = &d.context.trace_id {
        metadata["correlation_uid"] = json!(t);
    }
    let mut unmapped = json!({
        "leaf_index": index,
        "leaf_hash": logged.leaf_hash.to_hex(),
        "submitted_by": logged.submitted_by,
        "enforcer": {"id": d.enforcer.id, "kind": d.enforcer.kind},
        "policy_engine": d.policy.engine,
        "delegation": d.delegation,
    });
    if let Some(c) = &d.credential {
        unmapped["credential"] = json!(c);
    }
    if let Some(e) = &d.emergency {
        unmapped["emergency"] = json!(e);
    }
    if let Some(p) = &d.context.parent_decision_id {
        unmapped["parent_decision_id"] = json!(p);
    }
    let mut message = format!(
        "{} {} {} on {}: {} by {}@{}",
        d.subject.id,
        if d.delegation.is_empty() {
            "did"
        } else {
            "via delegation did"
        },
        d.action,
        d.resource.id,
        d.decision,
        d.policy.id,
        d.policy.version
    );
    if break_glass {
        message.push_str(" (break-glass)");
    }
    let mut event = json!({
        "class_uid": OCSF_CLASS_UID,
        "class_name": "API Activity",
        "category_uid": OCSF_CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity,
        "activity_name": d.action,
        "type_uid": OCSF_CLASS_UID * 100 + activity,
        "time": millis(&d.time),
        "severity_id": if break_glass { 3 } else { 1 },
        "status_id": if allowed { 1 } else { 2 },
        "status": if allowed { "Success" } else { "Failure" },
        "disposition_id": if allowed { 1 } else { 2 },
        "disposition": if allowed { "Allowed" } else { "Blocked" },
        "actor": actor,
        "api": api,
        "src_endpoint": src,
        "resources": [resource],
        "metadata": metadata,
        "message": message,
        "unmapped": unmapped,
    });
    if !d.reasons.is_empty() {
        event["status_detail"] = json!(d.reasons.join("; "));
    }
    let mut line = event.to_string();
    line.push('\n');
    line
}
