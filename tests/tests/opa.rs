//! A stock OPA's decision-log upload (gzip JSON array) lands in the ledger
//! unmodified, exactly once across OPA's at-least-once retries.

use std::io::Write;

use ledger_tests::Server;
use serde_json::{json, Value};

fn opa_event(id: &str, allow: bool) -> Value {
    json!({
        "labels": {"id": "opa-7f9c", "version": "0.70.0"},
        "decision_id": id,
        "bundles": {"authz": {"revision": "rev-42"}},
        "path": "httpapi/authz/allow",
        "input": {"method": "GET", "path": ["finance", "salary", "bob"], "user": "alice",
                  "subject": {"id": "alice", "identity_kind": "human", "owner": "finance-team"}},
        "result": allow,
        "requested_by": "10.0.0.5:51234",
        "timestamp": "2026-11-23T07:00:00.123456789Z",
        "metrics": {"timer_rego_query_eval_ns": 12345},
        "req_id": 17
    })
}

fn gzip(v: &Value) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(v.to_string().as_bytes()).unwrap();
    enc.finish().unwrap()
}

#[test]
fn opa_uploads_are_logged_once() {
    let s = Server::start(&[]);
    let auth = format!("Bearer {}", s.writer);
    let body = gzip(
        &json!([opa_event("opa-1", true), opa_event("opa-2", false), {"decision_id": "opa-bad"}]),
    );
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let r = s.request("POST", "/v1/opa/logs", &headers, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (j["appended"].clone(), j["rejected"].clone()),
        (json!(2), json!(1)),
        "{j}"
    );
    assert_eq!(j["rejected_events"][0]["decision_id"], "opa-bad");
    // OPA retries at least once: nothing is appended twice.
    let r = s.request("POST", "/v1/opa/logs", &headers, &body);
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (j["appended"].clone(), j["duplicate"].clone()),
        (json!(0), json!(2))
    );

    let rauth = format!("Bearer {}", s.reader);
    let r = s.request(
        "GET",
        "/v1/decisions/opa-2",
        &[("Authorization", &rauth)],
        b"",
    );
    let rec: Value = serde_json::from_slice(&r.body).unwrap();
    let record = &rec["record"];
    assert_eq!(record["decision"], "deny");
    assert_eq!(
        record["policy"],
        json!({"engine": "opa", "id": "httpapi/authz/allow", "version": "authz@rev-42"})
    );
    assert_eq!(record["subject"]["id"], "alice");
    assert_eq!(record["subject"]["owner"], "finance-team");
    assert_eq!(
        record["enforcer"],
        json!({"id": "opa-7f9c", "kind": "policy_engine"})
    );
    assert_eq!(record["context"]["request_id"], "17");
    assert_eq!(
        record["extensions"]["opa"]["input"]["path"],
        json!(["finance", "salary", "bob"])
    );
    assert_eq!(record["time"], "2026-11-23T07:00:00.123456789Z");
    assert_eq!(rec["submitted_by"], "local-enforcer");

    // Not gzip, not JSON, no token.
    let r = s.request(
        "POST",
        "/v1/opa/logs",
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        b"plain",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.request(
        "POST",
        "/v1/opa/logs",
        &[("Authorization", &auth)],
        b"{\"not\": \"an array\"}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(s.request("POST", "/v1/opa/logs", &[], &body).status, 401);
}

/// OPA decision logs carry no enforcer signature: once an OPA instance's
/// key is registered (it signs what it sends to /v1/decisions), its
/// uploads are refused rather than logged unsigned.
#[test]
fn an_opa_whose_key_is_registered_cannot_upload_unsigned_events() {
    let s = Server::start(&[]);
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path().to_str().unwrap();
    ledger_tests::ok(
        "ledgerctl",
        &["enforcer", "keygen", "--name", "opa-7f9c", "--out", dir],
    );
    let public = keys.path().join("enforcer.pub");
    let data = s.data.to_str().unwrap();
    ledger_tests::ok(
        "ledgerctl",
        &["--data", data, "enforcer", "add", public.to_str().unwrap()],
    );
    let auth = format!("Bearer {}", s.writer);
    let body = json!([opa_event("opa-signed-1", true)]).to_string();
    let r = s.request(
        "POST",
        "/v1/opa/logs",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (j["appended"].clone(), j["rejected"].clone()),
        (json!(0), json!(1)),
        "{j}"
    );
    assert!(
        j.to_string().contains("its records must come signed"),
        "{j}"
    );
    assert_eq!(s.tree_size(), 0);
}
