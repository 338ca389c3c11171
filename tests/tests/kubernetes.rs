//! A stock kube-apiserver's audit webhook (an `audit.k8s.io/v1` EventList)
//! lands in the ledger unmodified: one record per completed request,
//! exactly once across the webhook's retries, found and proven like any
//! other decision.

use std::io::Write;

use ledger_tests::{ok, Server};
use serde_json::{json, Value};

fn event(id: &str, stage: &str, user: &str, decision: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": stage,
        "requestURI": "/apis/apps/v1/namespaces/shop/deployments/web", "verb": "patch",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.10"], "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "deployments", "namespace": "shop", "name": "web",
                      "apiGroup": "apps", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": if decision == "allow" { 200 } else { 403 }},
        "requestReceivedTimestamp": "2026-11-23T07:00:00.000001Z",
        "stageTimestamp": "2026-11-23T07:00:00.020000Z",
        "annotations": {"authorization.k8s.io/decision": decision,
                        "authorization.k8s.io/reason": "RBAC: decided by RoleBinding \"release\""}
    })
}

fn list(items: Vec<Value>) -> Value {
    json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})
}

fn post(s: &Server, token: &str, query: &str, body: &[u8], gzip: bool) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    if gzip {
        headers.push(("Content-Encoding", "gzip"));
    }
    let r = s.request(
        "POST",
        &format!("/v1/kubernetes/audit{query}"),
        &headers,
        body,
    );
    let answer = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, answer)
}

#[test]
fn audit_webhook_events_are_logged_once_and_proven() {
    let s = Server::start(&[]);
    let mut impersonated = event("req-2", "ResponseComplete", "alice@example.com", "allow");
    impersonated["impersonatedUser"] =
        json!({"username": "system:serviceaccount:shop:release-bot"});
    let body = list(vec![
        event("req-1", "RequestReceived", "system:serviceaccount:ci:deployer", "forbid"),
        event("req-1", "ResponseComplete", "system:serviceaccount:ci:deployer", "forbid"),
        impersonated,
        json!({"stage": "ResponseComplete", "annotations": {"authorization.k8s.io/decision": "allow"}}),
    ])
    .to_string();
    let query = "?cluster=prod-eu&policy_version=rbac-2026-11";
    let (status, j) = post(&s, &s.writer, query, body.as_bytes(), false);
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        (&j["appended"], &j["skipped"], &j["rejected"]),
        (&json!(2), &json!(1), &json!(1)),
        "{j}"
    );
    assert!(j["rejected_events"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("decision_id"));
    // The webhook retries a batch it saw fail: nothing twice (gzip too).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let (status, j) = post(&s, &s.writer, query, &gz.finish().unwrap(), true);
    assert_eq!(
        (status, &j["appended"], &j["duplicate"]),
        (200, &json!(0), &json!(2))
    );

    // Found as any decision: the impersonating human by person, the
    // service account by subject; proven with its delegation.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("log.pub");
    std::fs::write(&key, &s.key).unwrap();
    let key = key.to_str().unwrap();
    let url = format!("http://{}", s.addr);
    let reader = ["--url", &url, "--token", &s.reader, "--key", key];
    let found = ok(
        "ledgerctl",
        &[
            &reader[..],
            &["search", "--person", "alice@example.com", "--json"],
        ]
        .concat(),
    );
    let hit: Value = serde_json::from_str(found.lines().next().unwrap()).unwrap();
    let r = &hit["record"];
    assert_eq!(r["decision_id"], "k8s:req-2");
    assert_eq!(r["subject"]["id"], "system:serviceaccount:shop:release-bot");
    assert_eq!(r["enforcer"], json!({"id": "prod-eu", "kind": "api"}));
    assert_eq!(r["policy"]["version"], "rbac-2026-11");
    let evidence = dir.path().join("e");
    let e = evidence.to_str().unwrap();
    ok(
        "ledgerctl",
        &[&reader[..], &["evidence", "k8s:req-1", "--out", e]].concat(),
    );
    let account = ok("ledger-verify", &["evidence", e, "--key", key]);
    assert!(
        account.contains("decision k8s:req-1: deny")
            && account.contains("system:serviceaccount:ci:deployer (service_account"),
        "{account}"
    );

    // A writer token speaks for its own enforcer, whatever ?cluster= says.
    let writer = s.add_token(&["--enforcer", "k8s-staging", "--role", "writer"]);
    let one = list(vec![event("req-3", "ResponseComplete", "bob", "allow")]).to_string();
    let (status, j) = post(&s, &writer, "?cluster=prod-eu", one.as_bytes(), false);
    assert_eq!((status, &j["appended"]), (200, &json!(1)), "{j}");
    let d = ok(
        "ledgerctl",
        &[&reader[..], &["decision", "k8s:req-3"]].concat(),
    );
    assert!(d.contains("\"k8s-staging\""), "{d}");

    // What is not an EventList, an unknown parameter, a reader: refused.
    for (token, query, body, want) in [
        (&s.writer, "", "[]".to_string(), 400),
        (&s.writer, "", json!({"kind": "Event"}).to_string(), 400),
        (&s.writer, "?clustr=x", one.clone(), 400),
        (&s.writer, "?policy_version=", one.clone(), 400),
        (&s.reader, "", one.clone(), 403),
    ] {
        let (status, j) = post(&s, token, query, body.as_bytes(), false);
        assert_eq!(status, want, "{query} {body}: {j}");
    }
    assert_eq!(s.tree_size(), 3);
}
