//! The derived files of an export, one line per disclosed decision
//! (specs/export.md, "Derived files"): JSON Lines, CSV for people, and OCSF
//! API Activity. Each line is a function of the proven leaf alone, so a
//! verifier regenerates it and compares bytes.

use serde::Serialize;

use crate::decision::{Decision, LoggedDecision};
use crate::json::write_logged;

use super::Version;

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
    let mut line = String::with_capacity(1536);
    write_logged(
        index,
        &logged.leaf_hash,
        &logged.received_at.canonical(),
        &logged.submitted_by,
        &logged.record,
        logged.enforcer_signature.as_ref(),
        &mut line,
    );
    line.push('\n');
    line
}

/// Whether a spreadsheet would read a field starting with `c` as a formula.
fn starts_formula(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line
/// break, quotes doubled; from [`Version::V2`] on, a field starting with
/// `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`, so a record
/// cannot put a formula in a regulator's spreadsheet.
fn field(out: &mut String, v: &str, version: Version) {
    let guarded;
    let v = match v.chars().next() {
        Some(c) if version >= Version::V2 && starts_formula(c) => {
            guarded = format!("'{v}");
            guarded.as_str()
        }
        _ => v,
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// A decision's row of `decisions.csv` (with its newline), in the columns
/// of [`CSV_HEADER`], as `version` writes it.
pub fn csv(index: u64, logged: &LoggedDecision, version: Version) -> String {
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
        field(&mut out, c, version);
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

/// OCSF user `type_id`: 1 User (a person), 3 System (a service account
/// or workload), 99 Other (an agent or device).
fn user_type(kind: &str) -> u8 {
    match kind {
        "human" => 1,
        "service_account" | "workload" => 3,
        _ => 99,
    }
}

#[derive(Serialize)]
struct Org<'a> {
    owner: &'a str,
}

#[derive(Serialize)]
struct User<'a> {
    uid: &'a str,
    name: &'a str,
    type_id: u8,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<Org<'a>>,
}

#[derive(Serialize)]
struct PolicyRef<'a> {
    uid: &'a str,
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct Authorization<'a> {
    decision: &'a str,
    policy: PolicyRef<'a>,
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Actor<'a> {
    user: User<'a>,
    authorizations: [Authorization<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    idp: Option<Named<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoked_by: Option<String>,
}

#[derive(Serialize)]
struct Uid<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Api<'a> {
    operation: &'a str,
    service: Named<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Uid<'a>>,
}

#[derive(Serialize)]
struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Category<'a> {
    category: &'a str,
}

#[derive(Serialize)]
struct Resource<'a> {
    uid: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_classification: Option<Category<'a>>,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
}

#[derive(Serialize)]
struct Metadata<'a> {
    version: &'static str,
    product: Product,
    profiles: [&'static str; 1],
    uid: &'a str,
    log_name: &'a str,
    logged_time: u64,
    original_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_uid: Option<&'a str>,
}

#[derive(Serialize)]
struct Unmapped<'a> {
    leaf_index: u64,
    leaf_hash: String,
    submitted_by: &'a str,
    enforcer: &'a crate::decision::Enforcer,
    policy_engine: &'a str,
    delegation: &'a [crate::decision::Actor],
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<&'a crate::decision::Credential>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emergency: Option<&'a crate::decision::Emergency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_decision_id: Option<&'a str>,
}

/// An OCSF API Activity event, as far as a decision fills it.
#[derive(Serialize)]
struct ApiActivity<'a> {
    class_uid: u64,
    class_name: &'static str,
    category_uid: u64,
    category_name: &'static str,
    activity_id: u64,
    activity_name: &'a str,
    type_uid: u64,
    time: u64,
    severity_id: u8,
    status_id: u8,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<String>,
    disposition_id: u8,
    disposition: &'static str,
    actor: Actor<'a>,
    api: Api<'a>,
    src_endpoint: Endpoint<'a>,
    resources: [Resource<'a>; 1],
    metadata: Metadata<'a>,
    message: String,
    unmapped: Unmapped<'a>,
}

/// A decision's line of `ocsf.jsonl` (with its newline): an OCSF API
/// Activity event (class 6003), mapped as specs/export.md says field by
/// field.
pub fn ocsf(index: u64, logged: &LoggedDecision, origin: &str) -> String {
    let d: &Decision = &logged.decision;
    let activity = activity_id(&d.action);
    let allowed = d.decision == "allow";
    let break_glass = d.emergency.as_ref().is_some_and(|e| e.break_glass);
    let c = &d.context;
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
    let event = ApiActivity {
        class_uid: OCSF_CLASS_UID,
        class_name: "API Activity",
        category_uid: OCSF_CATEGORY_UID,
        category_name: "Application Activity",
        activity_id: activity,
        activity_name: &d.action,
        type_uid: OCSF_CLASS_UID * 100 + activity,
        time: millis(&d.time),
        severity_id: if break_glass { 3 } else { 1 },
        status_id: if allowed { 1 } else { 2 },
        status: if allowed { "Success" } else { "Failure" },
        status_detail: (!d.reasons.is_empty()).then(|| d.reasons.join("; ")),
        disposition_id: if allowed { 1 } else { 2 },
        disposition: if allowed { "Allowed" } else { "Blocked" },
        actor: Actor {
            user: User {
                uid: &d.subject.id,
                name: &d.subject.id,
                type_id: user_type(&d.subject.identity_kind),
                kind: &d.subject.identity_kind,
                org: d.subject.owner.as_deref().map(|owner| Org { owner }),
            },
            authorizations: [Authorization {
                decision: &d.decision,
                policy: PolicyRef {
                    uid: &d.policy.id,
                    name: &d.policy.id,
                    version: &d.policy.version,
                },
            }],
            idp: d.subject.issuer.as_deref().map(|name| Named { name }),
            invoked_by: (!d.delegation.is_empty()).then(|| d.chain_ids().join(" > ")),
        },
        api: Api {
            operation: &d.action,
            service: Named {
                name: &d.resource.id,
            },
            request: c.request_id.as_deref().map(|uid| Uid { uid }),
        },
        src_endpoint: Endpoint {
            ip: c.source_ip.as_deref(),
            svc_name: c.originating_service.as_deref(),
        },
        resources: [Resource {
            uid: &d.resource.id,
            kind: &d.resource.kind,
            data_classification: d
                .resource
                .sensitivity
                .as_deref()
                .map(|category| Category { category }),
        }],
        metadata: Metadata {
            version: OCSF_VERSION,
            product: Product {
                name: "Decision Ledger",
                vendor_name: "Decision Ledger",
            },
            profiles: ["security_control"],
            uid: &d.decision_id,
            log_name: origin,
            logged_time: millis(&logged.received_at),
            original_time: d.time.canonical(),
            correlation_uid: c.trace_id.as_deref(),
        },
        message,
        unmapped: Unmapped {
            leaf_index: index,
            leaf_hash: logged.leaf_hash.to_hex(),
            submitted_by: &logged.submitted_by,
            enforcer: &d.enforcer,
            policy_engine: &d.policy.engine,
            delegation: &d.delegation,
            credential: d.credential.as_ref(),
            emergency: d.emergency.as_ref(),
            parent_decision_id: c.parent_decision_id.as_deref(),
        },
    };
    // Serialising these types into a String cannot fail.
    let mut line = serde_json::to_string(&event).unwrap_or_default();
    line.push('\n');
    line
}
