//! Chain bundles: a person → agent → service account → policy engine and
//! gate chain among unrelated decisions, verified, drawn, its agreement and
//! findings read; every single-byte change and every unlinked hop rejected.

mod common;

use common::decisions::{byte_changes, leaf, record, signer, TestLog};
use serde_json::{json, Value};
use verifier::account;
use verifier::chain::{self, ChainBundle, ChainError, Hop, HOP_LIMIT};

/// A hop of the scenario: its id, enforcer, parent, request and decision.
fn hop(
    id: &str,
    kind: &str,
    enforcer: &str,
    parent: Option<&str>,
    req: &str,
    decision: &str,
) -> Value {
    let mut r = record(id);
    r["enforcer"] = json!({"id": enforcer, "kind": kind});
    r["context"] = json!({"request_id": req, "trace_id": "trace-1"});
    if let Some(p) = parent {
        r["context"]["parent_decision_id"] = json!(p);
    }
    r["decision"] = json!(decision);
    r
}

/// The scenario's hops, in log order, and the leaves of a log holding them
/// among unrelated decisions. Returns the log and the hops' indexes.
fn scenario() -> (TestLog, Vec<u64>) {
    let agent = hop("h1-agent", "agent_gateway", "agw-1", None, "req-A", "allow");
    let mut issuer = hop(
        "h2-sts",
        "token_issuer",
        "sts-1",
        Some("h1-agent"),
        "req-B",
        "allow",
    );
    issuer["delegation"] = json!([
        {"identity_kind": "agent", "id": "agent:travel-bot", "owner": "team-travel"},
        {"identity_kind": "service_account", "id": "sa:booking-svc", "owner": "team-booking"}
    ]);
    let mut engine = issuer.clone();
    engine["decision_id"] = json!("h3-opa");
    engine["enforcer"] = json!({"id": "opa-1", "kind": "policy_engine"});
    engine["context"] =
        json!({"request_id": "req-C", "trace_id": "trace-1", "parent_decision_id": "h2-sts"});
    engine["decision"] = json!("deny");
    let mut gate = engine.clone();
    gate["decision_id"] = json!("h4-gw");
    gate["enforcer"] = json!({"id": "gw-eu-1", "kind": "gateway"});
    gate["decision"] = json!("allow");
    gate["credential"]["expires_at"] = json!("2026-11-23T06:59:30Z");
    gate["credential"]["ttl_s"] = json!(30);
    let mut api = gate.clone();
    api["decision_id"] = json!("h5-api");
    api["enforcer"] = json!({"id": "bookings-api", "kind": "api"});
    api["context"] =
        json!({"request_id": "req-D", "trace_id": "trace-1", "parent_decision_id": "h4-gw"});
    api["credential"] = record("x")["credential"].clone();
    let hops = [agent, issuer, engine, gate, api];
    let mut leaves = Vec::new();
    let mut at = Vec::new();
    for (i, h) in hops.iter().enumerate() {
        for n in 0..(7 + i * 3) {
            leaves.push(leaf(&record(&format!("noise-{i}-{n}"))));
        }
        at.push(leaves.len() as u64);
        leaves.push(leaf(h));
    }
    (TestLog::new(leaves), at)
}

fn bundle(log: &TestLog, indexes: &[u64], truncated: bool) -> ChainBundle {
    ChainBundle {
        truncated,
        hops: indexes
            .iter()
            .map(|&i| Hop {
                index: i,
                leaf: log.leaves[i as usize].clone(),
                proof: log.proof(i),
            })
            .collect(),
        checkpoint: log.checkpoint(&signer()),
    }
}

#[test]
fn a_chain_verifies_and_shows_its_tree_agreement_and_findings() {
    let (log, at) = scenario();
    let key = signer().verifier();
    let text = bundle(&log, &at, false).to_text();
    let c = chain::verify(text.as_bytes(), &key).unwrap();
    let out = account::chain_text(&c);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("chain of 5 decisions (complete), every hop included in tree size"),
        "{out}"
    );
    // The tree: each hop under its parent.
    let depth = |id: &str| {
        let l = lines
            .iter()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap();
        (l.len() - l.trim_start().len()) / 2
    };
    assert_eq!(
        ["h1-agent", "h2-sts", "h3-opa", "h4-gw", "h5-api"].map(depth),
        [0, 1, 2, 2, 3]
    );
    let h4 = lines.iter().find(|l| l.contains("h4-gw  ")).unwrap();
    assert!(h4.contains("h4-gw  gateway gw-eu-1  human alice@example.com (owner alice@example.com)  POST /v1/bookings  bookings-api  allow  bookings.authz@7  2026-11-23T07:00:00.5Z"), "{h4}");
    assert!(
        out.contains("agreement for request_id req-C:\n  policy engine  policy_engine opa-1"),
        "{out}"
    );
    let findings: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("finding: "))
        .collect();
    assert!(findings.contains(&"finding: request_id req-C: the policy engine (policy_engine opa-1, decision h3-opa) denied what the gate (gateway gw-eu-1, decision h4-gw) allowed"), "{findings:#?}");
    assert!(findings.iter().any(|f| f.starts_with("finding: decision h4-gw: credential sha256:0123456789abcdef used at 2026-11-23T07:00:00.5Z, after it expired at 2026-11-23T06:59:30Z")), "{findings:#?}");
    assert_eq!(findings.len(), 2, "{findings:#?}");
    let json = account::chain_json(&c);
    assert_eq!(json["hops"].as_array().unwrap().len(), 5);
    assert_eq!(json["findings"][0]["code"], "credential_expired");
    assert_eq!(json["findings"][1]["decisions"], json!(["h3-opa", "h4-gw"]));
}

#[test]
fn every_single_byte_change_of_a_bundle_is_rejected() {
    let (log, at) = scenario();
    let key = signer().verifier();
    let text = bundle(&log, &at[1..4], false).to_text().into_bytes();
    chain::verify(&text, &key).unwrap();
    for (i, changed) in byte_changes(&text) {
        assert!(
            chain::verify(&changed, &key).is_err(),
            "a change at byte {i} verified"
        );
    }
}

#[test]
fn hops_must_be_linked_unique_ascending_and_within_the_limit() {
    let (log, at) = scenario();
    let key = signer().verifier();
    // A decision of another request among the hops.
    let mut with_noise = at.clone();
    with_noise.push(0);
    with_noise.sort();
    assert!(matches!(
        bundle(&log, &with_noise, false).verify(&key),
        Err(ChainError::Unlinked { index: 0, .. })
    ));
    // Without h2 the chain falls apart? No: trace-1 still links every hop.
    bundle(&log, &[at[0], at[2], at[3]], false)
        .verify(&key)
        .unwrap();
    // Not ascending, or twice.
    let mut b = bundle(&log, &at[..2], false);
    b.hops.swap(0, 1);
    assert!(matches!(
        ChainBundle::parse(b.to_text().as_bytes()),
        Err(ChainError::Malformed(_))
    ));
    let mut b = bundle(&log, &at[..2], false);
    b.hops[1] = b.hops[0].clone();
    assert!(ChainBundle::parse(b.to_text().as_bytes()).is_err());
    // Truncated means exactly HOP_LIMIT hops.
    let b = bundle(&log, &at, true);
    assert!(ChainBundle::parse(b.to_text().as_bytes()).is_err());
    assert_eq!(HOP_LIMIT, 256);
    // The same leaf twice under two indexes cannot both be included, and two
    // leaves with one decision id are refused.
    let mut leaves = log.leaves.clone();
    leaves.push(leaves[at[0] as usize].clone());
    let twice = TestLog::new(leaves);
    let last = twice.leaves.len() as u64 - 1;
    assert!(matches!(
        bundle(&twice, &[at[0], last], false).verify(&key),
        Err(ChainError::DuplicateDecision { .. })
    ));
}
