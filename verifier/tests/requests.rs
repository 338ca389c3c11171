//! The streaming finder of `verifier::requests` against the whole-bundle
//! findings of `verifier::findings::across` (the reference): on any stream
//! within its bounds it finds the same disagreements with the same text,
//! and the same policies applied in several versions; past its bounds it
//! compares only what it holds.

mod common;

use std::collections::BTreeSet;

use common::decisions::record;
use proptest::prelude::*;
use serde_json::json;
use verifier::decision::{Decision, LoggedDecision};
use verifier::findings::{across, Finding};
use verifier::requests::{Requests, HOPS_HELD, OPEN_REQUESTS};

const KINDS: [&str; 5] = [
    "policy_engine",
    "token_issuer",
    "gateway",
    "api",
    "agent_gateway",
];

/// A decision of `request` (none: no request id or trace id; a request
/// id below 100, else a trace id) by an enforcer of `kind`.
fn hop(
    id: &str,
    request: Option<u32>,
    kind: &str,
    deny: bool,
    policy: u8,
    version: u8,
) -> Decision {
    let mut r = record(id);
    r["enforcer"] = json!({"id": format!("{kind}-{}", version % 2), "kind": kind});
    r["context"] = match request {
        None => json!({}),
        Some(n) if n < 100 => json!({"request_id": format!("req-{n}")}),
        Some(n) => json!({"trace_id": format!("{n:032x}")}),
    };
    r["decision"] = json!(if deny { "deny" } else { "allow" });
    r["policy"]["id"] = json!(format!("policy-{policy}"));
    r["policy"]["version"] = json!(version.to_string());
    LoggedDecision::from_leaf(&common::decisions::leaf(&r))
        .unwrap()
        .decision
}

fn stream(ds: &[Decision]) -> Vec<Finding> {
    let mut requests = Requests::default();
    ds.iter().flat_map(|d| requests.add(d)).collect()
}

fn disagreements(fs: &[Finding]) -> BTreeSet<(&'static str, Vec<String>, String)> {
    fs.iter()
        .filter(|f| f.code.ends_with("_disagree"))
        .map(|f| (f.code, f.decisions.clone(), f.message.clone()))
        .collect()
}

/// The (request, policy) pairs found applied in several versions.
fn mismatches(fs: &[Finding]) -> BTreeSet<(String, String)> {
    fs.iter()
        .filter(|f| f.code == "policy_version_mismatch")
        .map(|f| {
            let (request, rest) = f.message.split_once(": policy ").unwrap();
            let policy = rest.split_once(' ').unwrap().0;
            (request.to_string(), policy.to_string())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn finds_what_the_whole_bundle_shows(
        hops in proptest::collection::vec(
            (proptest::option::weighted(0.9, prop_oneof![0u32..4, 100u32..102]),
             0..KINDS.len(), any::<bool>(), 0u8..2, 0u8..3),
            0..40,
        )
    ) {
        let ds: Vec<Decision> = hops
            .iter()
            .enumerate()
            .map(|(i, &(req, kind, deny, policy, version))| {
                hop(&format!("d{i}"), req, KINDS[kind], deny, policy, version)
            })
            .collect();
        // Within the bounds: 6 requests are held, and no request has more
        // than HOPS_HELD hops.
        for n in [0u32, 1, 2, 3, 100, 101] {
            prop_assume!(hops.iter().filter(|h| h.0 == Some(n)).count() <= HOPS_HELD);
        }
        let streamed = stream(&ds);
        let whole = across(&ds.iter().collect::<Vec<_>>(), false);
        prop_assert_eq!(disagreements(&streamed), disagreements(&whole));
        prop_assert_eq!(mismatches(&streamed), mismatches(&whole));
        // Each pair once.
        let pairs: Vec<_> = streamed.iter().filter(|f| f.code.ends_with("_disagree")).collect();
        prop_assert_eq!(pairs.len(), disagreements(&streamed).len());
    }
}

#[test]
fn a_disagreement_is_named_with_the_chain_bundles_text() {
    let ds = [
        hop("e", Some(1), "policy_engine", false, 0, 7),
        hop("x", Some(2), "gateway", true, 0, 7),
        hop("g", Some(1), "gateway", true, 0, 7),
        hop("t", Some(1), "token_issuer", true, 0, 7),
        hop("h", Some(1), "api", false, 0, 8),
    ];
    let found: Vec<(&str, Vec<String>, String)> = stream(&ds)
        .into_iter()
        .map(|f| (f.code, f.decisions, f.message))
        .collect();
    assert_eq!(
        found,
        [
            (
                "engine_gate_disagree",
                vec!["e".into(), "g".into()],
                "request_id req-1: the policy engine (policy_engine policy_engine-1, decision e) allowed what the gate (gateway gateway-1, decision g) denied".into()
            ),
            (
                "issuer_gate_disagree",
                vec!["t".into(), "h".into()],
                "request_id req-1: the token issuer (token_issuer token_issuer-1, decision t) denied what the gate (api api-0, decision h) allowed".into()
            ),
            (
                "policy_version_mismatch",
                vec!["e".into(), "h".into()],
                "request_id req-1: policy policy-0 was applied in another version: policy-0@7 in e, policy-0@8 in h".into()
            ),
        ]
    );
}

#[test]
fn requests_are_held_up_to_the_bound() {
    let others =
        |n: usize| (0..n).map(|i| hop(&format!("o{i}"), Some(1000 + i as u32), "api", false, 0, 1));
    let pair = |between: usize| {
        let mut ds = vec![hop("e", Some(1), "policy_engine", false, 0, 1)];
        ds.extend(others(between));
        ds.push(hop("g", Some(1), "gateway", true, 0, 1));
        stream(&ds).len()
    };
    // The engine's request is still held after OPEN_REQUESTS - 1 others...
    assert_eq!(pair(OPEN_REQUESTS - 1), 1);
    // ... and dropped to make room for one more.
    assert_eq!(pair(OPEN_REQUESTS), 0);
    // Hops with no request id or trace id are no request: they take no room.
    let mut ds = vec![hop("e", Some(1), "policy_engine", false, 0, 1)];
    ds.extend((0..OPEN_REQUESTS + 10).map(|i| hop(&format!("n{i}"), None, "api", true, 0, 1)));
    ds.push(hop("g", Some(1), "gateway", true, 0, 1));
    assert_eq!(stream(&ds).len(), 1);
}

#[test]
fn hops_of_one_request_are_held_up_to_the_bound() {
    let mut ds: Vec<Decision> = (0..HOPS_HELD + 4)
        .map(|i| hop(&format!("g{i}"), Some(1), "gateway", true, 0, 1))
        .collect();
    ds.push(hop("e", Some(1), "policy_engine", false, 0, 1));
    let found = stream(&ds);
    // The engine is compared with the gates held, the first HOPS_HELD.
    assert_eq!(found.len(), HOPS_HELD);
    let held: Vec<String> = (0..HOPS_HELD).map(|i| format!("g{i}")).collect();
    assert!(found
        .iter()
        .all(|f| f.decisions[0] == "e" && held.contains(&f.decisions[1])));
}
