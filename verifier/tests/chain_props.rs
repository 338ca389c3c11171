//! Property tests over random chains: a random forest of linked decisions
//! among unrelated ones, each bundle checked against a reference model of
//! the links kept beside it (not the verifier's own reading).

mod common;

use common::decisions::{leaf, record, signer, TestLog};
use proptest::prelude::*;
use serde_json::json;
use verifier::chain::{ChainBundle, ChainError, Hop};

/// One generated decision: its links and identity, as the model sees them.
#[derive(Clone, Debug)]
struct Node {
    parent: Option<usize>,
    request: Option<u8>,
    trace: Option<u8>,
    subject: u8,
    chain: Vec<u8>,
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            any::<bool>(),
            prop::option::of(0u8..3),
            prop::option::weighted(0.3, 0u8..2),
            0u8..2,
            prop::collection::vec(0u8..3, 0..3),
        ),
        1..12,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(
                |(i, (p, has_parent, request, trace, subject, chain))| Node {
                    parent: (i > 0 && has_parent).then(|| p.index(i)),
                    request,
                    trace,
                    subject,
                    chain,
                },
            )
            .collect()
    })
}

fn linked(a: &Node, ai: usize, b: &Node, bi: usize) -> bool {
    a.parent == Some(bi)
        || b.parent == Some(ai)
        || (a.request.is_some() && a.request == b.request)
        || (a.trace.is_some() && a.trace == b.trace)
}

/// The model's connected component of `start` within `members`.
fn component(ns: &[Node], members: &[usize], start: usize) -> Vec<usize> {
    let mut got = vec![start];
    let mut todo = vec![start];
    while let Some(i) = todo.pop() {
        for &j in members {
            if !got.contains(&j) && linked(&ns[i], i, &ns[j], j) {
                got.push(j);
                todo.push(j);
            }
        }
    }
    got.sort_unstable();
    got
}

fn to_record(ns: &[Node], i: usize) -> serde_json::Value {
    let n = &ns[i];
    let mut r = record(&format!("n{i}"));
    let mut ctx = json!({});
    if let Some(p) = n.parent {
        ctx["parent_decision_id"] = json!(format!("n{p}"));
    }
    if let Some(q) = n.request {
        ctx["request_id"] = json!(format!("q{q}"));
    }
    if let Some(t) = n.trace {
        ctx["trace_id"] = json!(format!("t{t}"));
    }
    r["context"] = ctx;
    r["subject"]["id"] = json!(format!("s{}", n.subject));
    r["delegation"] = n
        .chain
        .iter()
        .map(|a| json!({"identity_kind": "agent", "id": format!("a{a}"), "owner": "o"}))
        .collect();
    r
}

/// A log with the nodes spread among unrelated decisions; their indexes.
fn log_of(ns: &[Node], noise: usize) -> (TestLog, Vec<u64>) {
    let mut leaves = Vec::new();
    let mut at = Vec::new();
    for i in 0..ns.len() {
        for k in 0..(i * 7 + noise) % 5 {
            leaves.push(leaf(&record(&format!("noise-{i}-{k}"))));
        }
        at.push(leaves.len() as u64);
        leaves.push(leaf(&to_record(ns, i)));
    }
    (TestLog::new(leaves), at)
}

fn bundle(log: &TestLog, at: &[u64], members: &[usize]) -> ChainBundle {
    ChainBundle {
        truncated: false,
        hops: members
            .iter()
            .map(|&m| Hop {
                index: at[m],
                leaf: log.leaves[at[m] as usize].clone(),
                proof: log.proof(at[m]),
            })
            .collect(),
        checkpoint: log.checkpoint(&signer()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A bundle verifies exactly when the model says its hops are linked;
    /// the tree lists every hop once, each below its parent.
    #[test]
    fn bundles_verify_iff_their_hops_are_linked(
        ns in nodes(), focus in any::<prop::sample::Index>(), drop in any::<prop::sample::Index>(), noise in 0usize..5,
    ) {
        let key = signer().verifier();
        let (log, at) = log_of(&ns, noise);
        let all: Vec<usize> = (0..ns.len()).collect();
        let members = component(&ns, &all, focus.index(ns.len()));
        let chain = bundle(&log, &at, &members).verify(&key).unwrap();
        let tree = chain.tree();
        prop_assert_eq!(tree.len(), members.len());
        let mut listed: Vec<usize> = tree.iter().map(|l| l.hop).collect();
        listed.sort_unstable();
        prop_assert_eq!(listed, (0..members.len()).collect::<Vec<_>>());
        for (pos, line) in tree.iter().enumerate() {
            let node = &ns[members[line.hop]];
            match node.parent.and_then(|p| members.iter().position(|&m| m == p)) {
                Some(parent_hop) if line.depth > 0 => {
                    let before = tree[..pos].iter().rev().find(|l| l.depth < line.depth).unwrap();
                    prop_assert_eq!(before.hop, parent_hop);
                    prop_assert_eq!(before.depth + 1, line.depth);
                }
                Some(_) => prop_assert!(false, "a hop with its parent present is a root"),
                None => prop_assert_eq!(line.depth, 0),
            }
        }
        // Take one hop out: still verifies iff the rest is one component.
        if members.len() > 1 {
            let gone = members[drop.index(members.len())];
            let rest: Vec<usize> = members.iter().copied().filter(|&m| m != gone).collect();
            let connected = component(&ns, &rest, rest[0]).len() == rest.len();
            let result = bundle(&log, &at, &rest).verify(&key);
            prop_assert_eq!(result.is_ok(), connected, "{:?}", result.err());
            if let Err(e) = result {
                prop_assert!(matches!(e, ChainError::Unlinked { .. }), "{e}");
            }
        }
    }

    /// `parent_absent` and `identity_switch` are found exactly where the
    /// model says a parent is missing or a chain does not extend its
    /// parent's.
    #[test]
    fn parent_and_identity_findings_match_the_model(ns in nodes(), focus in any::<prop::sample::Index>()) {
        let key = signer().verifier();
        let (log, at) = log_of(&ns, 0);
        let all: Vec<usize> = (0..ns.len()).collect();
        let members = component(&ns, &all, focus.index(ns.len()));
        let chain = bundle(&log, &at, &members).verify(&key).unwrap();
        let findings = chain.findings();
        for &m in &members {
            let id = format!("n{m}");
            let absent = findings.iter().any(|f| f.code == "parent_absent" && f.decisions == [id.clone()]);
            let switch = findings.iter().any(|f| f.code == "identity_switch" && f.decisions.last() == Some(&id));
            let node = &ns[m];
            match node.parent {
                None => prop_assert!(!absent && !switch),
                Some(p) if !members.contains(&p) => prop_assert!(absent && !switch),
                Some(p) => {
                    let parent = &ns[p];
                    let extends = node.chain.len() >= parent.chain.len()
                        && node.chain[..parent.chain.len()] == parent.chain[..];
                    prop_assert!(!absent);
                    prop_assert_eq!(switch, parent.subject != node.subject || !extends);
                }
            }
        }
    }
}
