//! Findings, one record (or request) for each: what it finds, and that a
//! record without the problem gives nothing.

mod common;

use common::decisions::record;
use serde_json::{json, Value};
use verifier::decision::Decision;
use verifier::findings::{across, of_decision, of_logged};

fn decision(r: &Value) -> Decision {
    let leaf = common::decisions::leaf(r);
    verifier::decision::LoggedDecision::from_leaf(&leaf)
        .unwrap()
        .decision
}

fn codes(r: &Value) -> Vec<&'static str> {
    of_decision(&decision(r))
        .into_iter()
        .map(|f| f.code)
        .collect()
}

fn with(path: &[&str], v: Value) -> Value {
    let mut r = record("d1");
    let mut cur = &mut r;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = v;
    r
}

#[test]
fn each_record_finding() {
    assert!(codes(&record("d1")).is_empty());
    let no_owner = {
        let mut r = record("d1");
        r["subject"].as_object_mut().unwrap().remove("owner");
        r
    };
    assert_eq!(codes(&no_owner), ["no_owner"]);
    assert_eq!(
        codes(&with(
            &["credential", "issued_at"],
            json!("2026-11-23T07:00:01Z")
        )),
        ["credential_not_yet_valid", "ttl_mismatch"]
    );
    let jit = with(
        &["credential"],
        json!({"kind": "jit_grant", "id_hash": "grant:0123456789abcdef",
               "issued_at": "2026-11-23T06:00:00Z", "expires_at": "2026-11-23T07:00:00Z", "ttl_s": 3600}),
    );
    assert_eq!(codes(&jit), ["jit_grant_expired"]);
    let glass = |e: Value| codes(&with(&["emergency"], e));
    assert_eq!(
        glass(json!({"break_glass": true, "justification": "outage INC-1"})),
        ["break_glass_unapproved"]
    );
    assert!(glass(
        json!({"break_glass": true, "justification": "outage", "ticket": "INC-1",
                         "approved_by": "carol", "expires_at": "2026-11-23T08:00:00Z"})
    )
    .is_empty());
    assert_eq!(
        glass(
            json!({"break_glass": true, "justification": "outage", "ticket": "INC-1",
                     "approved_by": "carol", "expires_at": "2026-11-23T07:00:00Z"})
        ),
        ["break_glass_expired"]
    );
    assert!(glass(json!({"break_glass": false, "justification": "drill"})).is_empty());
    let missing = of_decision(&decision(&with(
        &["emergency"],
        json!({"break_glass": true, "justification": "x"}),
    )));
    assert_eq!(
        missing[0].message,
        "decision d1: break-glass access without ticket, approver"
    );
}

#[test]
fn a_decision_logged_long_after_it_was_made_or_before_is_found() {
    // record() decides at 07:00:00.5Z.
    let logged_at = |received_at: &str| {
        let leaf = common::decisions::leaf_at(&record("d1"), received_at);
        let l = verifier::decision::LoggedDecision::from_leaf(&leaf).unwrap();
        of_logged(&l)
    };
    let codes = |received_at: &str| -> Vec<&str> {
        logged_at(received_at).into_iter().map(|f| f.code).collect()
    };
    // Inline: within the hour after, or up to 5 minutes before (clocks).
    for inline in [
        "2026-11-23T07:00:01Z",
        "2026-11-23T08:00:00.5Z",
        "2026-11-23T06:55:00.5Z",
    ] {
        assert!(codes(inline).is_empty(), "{inline}");
    }
    assert_eq!(codes("2026-11-23T08:00:00.6Z"), ["logged_late"]);
    assert_eq!(codes("2026-11-23T06:55:00.4Z"), ["time_after_receipt"]);
    assert_eq!(
        logged_at("2026-11-25T09:00:00Z")[0].message,
        "decision d1: made at 2026-11-23T07:00:00.5Z, received by the ledger at 2026-11-25T09:00:00Z (2 days later): not logged inline"
    );
    assert_eq!(
        logged_at("2026-11-23T04:00:00Z")[0].message,
        "decision d1: its time 2026-11-23T07:00:00.5Z is 3 h after the ledger received it at 2026-11-23T04:00:00Z: the enforcer's clock or the record's time is wrong"
    );
    // The record's own findings come first.
    let mut r = record("d1");
    r["subject"].as_object_mut().unwrap().remove("owner");
    let leaf = common::decisions::leaf_at(&r, "2026-11-23T09:00:00Z");
    let l = verifier::decision::LoggedDecision::from_leaf(&leaf).unwrap();
    let found: Vec<&str> = of_logged(&l).into_iter().map(|f| f.code).collect();
    assert_eq!(found, ["no_owner", "logged_late"]);
}

#[test]
fn request_findings() {
    let mk = |id: &str, kind: &str, decision: &str, version: &str| {
        let mut r = record(id);
        r["enforcer"] = json!({"id": format!("{kind}-1"), "kind": kind});
        r["context"] = json!({"request_id": "req-1"});
        r["decision"] = json!(decision);
        r["policy"]["version"] = json!(version);
        decision_of(r)
    };
    fn decision_of(r: Value) -> Decision {
        decision(&r)
    }
    let agree = [
        mk("e", "policy_engine", "allow", "7"),
        mk("t", "token_issuer", "allow", "7"),
        mk("g", "gateway", "allow", "7"),
    ];
    assert!(across(&agree.iter().collect::<Vec<_>>(), false).is_empty());
    let split = [
        mk("e", "policy_engine", "allow", "7"),
        mk("t", "token_issuer", "deny", "7"),
        mk("g", "service_mesh", "deny", "8"),
        mk("h", "api", "allow", "7"),
    ];
    let found: Vec<(&str, Vec<String>)> = across(&split.iter().collect::<Vec<_>>(), false)
        .into_iter()
        .map(|f| (f.code, f.decisions))
        .collect();
    assert_eq!(
        found,
        [
            ("engine_gate_disagree", vec!["e".into(), "g".into()]),
            ("issuer_gate_disagree", vec!["t".into(), "h".into()]),
            (
                "policy_version_mismatch",
                vec!["e".into(), "t".into(), "g".into(), "h".into()]
            ),
        ]
    );
}
