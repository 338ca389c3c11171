//! Chain collection through the indexes, against a reference model of the
//! links: random linked decisions among unrelated ones, some spans built to
//! RocksDB and the newest in memory, collected from a random decision.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{cbor_of, record};
use ingest::chain::collect;
use ingest::index::INGEST_CFS;
use ingest::{check, Indexes, Pipeline, PipelineConfig, Submission};
use ledger::Log;
use proptest::prelude::*;
use serde_json::{json, Value};
use verifier::SignerKey;

#[derive(Clone, Debug)]
struct Node {
    parent: Option<usize>,
    request: Option<u8>,
    trace: Option<u8>,
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            prop::bool::weighted(0.6),
            prop::option::weighted(0.4, 0u8..4),
            prop::option::weighted(0.2, 0u8..3),
        ),
        1..24,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (p, has_parent, request, trace))| Node {
                parent: (i > 0 && has_parent).then(|| p.index(i)),
                request,
                trace,
            })
            .collect()
    })
}

/// The model's decisions linked to `start`, among those `keep` lets in.
fn component(ns: &[Node], start: usize, keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let linked = |a: usize, b: usize| {
        ns[a].parent == Some(b)
            || ns[b].parent == Some(a)
            || (ns[a].request.is_some() && ns[a].request == ns[b].request)
            || (ns[a].trace.is_some() && ns[a].trace == ns[b].trace)
    };
    let mut got = vec![start];
    let mut todo = vec![start];
    while let Some(i) = todo.pop() {
        for j in (0..ns.len()).filter(|&j| keep(j)) {
            if !got.contains(&j) && linked(i, j) {
                got.push(j);
                todo.push(j);
            }
        }
    }
    got.sort_unstable();
    got
}

fn to_record(ns: &[Node], i: usize) -> Value {
    let mut r = record(&format!("n{i}"));
    let mut ctx = json!({});
    if let Some(p) = ns[i].parent {
        ctx["parent_decision_id"] = json!(format!("n{p}"));
    }
    if let Some(q) = ns[i].request {
        ctx["request_id"] = json!(format!("q{q}"));
    }
    if let Some(t) = ns[i].trace {
        ctx["trace_id"] = json!(format!("t{t}"));
    }
    r["context"] = ctx;
    r
}

/// Appends the nodes among noise through the pipeline; their leaf indexes.
fn logged(ns: &[Node], indexes: &Arc<Indexes>) -> Vec<u64> {
    let config = PipelineConfig {
        checkpoint_interval: Duration::from_millis(20),
        ..PipelineConfig::default()
    };
    let p = Pipeline::start(indexes.clone(), None, config);
    let mut at = Vec::new();
    for (i, _) in ns.iter().enumerate() {
        let mut subs = Vec::new();
        for k in 0..(i % 3) {
            let mut noise = record(&format!("noise-{i}-{k}"));
            noise["context"] = json!({"request_id": format!("other-{i}-{k}")});
            subs.push(noise);
        }
        subs.push(to_record(ns, i));
        let subs: Vec<Submission> = subs
            .iter()
            .map(|r| Submission {
                record: check(&cbor_of(r)).unwrap(),
                submitted_by: "gw".into(),
            })
            .collect();
        let out = p.submit(subs).unwrap().blocking_recv().unwrap();
        match out.last() {
            Some(ingest::Outcome::Appended { index, .. }) => at.push(*index),
            other => panic!("{other:?}"),
        }
    }
    p.shutdown();
    at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn collects_exactly_the_linked_decisions(
        ns in nodes(), focus in any::<prop::sample::Index>(), limit in 1usize..30,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let key = SignerKey::from_seed("chain.example/log", &[4; 32]).unwrap();
        let log = Arc::new(Log::open_with(dir.path(), &key.verifier(), INGEST_CFS).unwrap());
        // Spans of 8 leaves: most are built to RocksDB, the newest in memory.
        let indexes = Indexes::open_with_span(log.clone(), 8).unwrap();
        let at = logged(&ns, &indexes);
        let start = focus.index(ns.len());
        let want: Vec<u64> = component(&ns, start, |_| true).into_iter().map(|i| at[i]).collect();
        let chain = collect(&indexes, at[start], log.size(), limit).unwrap();
        if want.len() <= limit {
            prop_assert_eq!(&chain.indexes, &want);
            prop_assert!(!chain.truncated);
        } else {
            prop_assert!(chain.truncated);
            prop_assert_eq!(chain.indexes.len(), limit);
            prop_assert!(chain.indexes.contains(&at[start]));
            prop_assert!(chain.indexes.iter().all(|i| want.contains(i)));
        }
        // Only leaves below the size asked for.
        let below = at[start] + 1;
        let early = collect(&indexes, at[start], below, 64).unwrap();
        prop_assert!(early.indexes.iter().all(|&i| i < below));
        let want_early: Vec<u64> = component(&ns, start, |i| at[i] < below)
            .into_iter()
            .map(|i| at[i])
            .collect();
        prop_assert_eq!(early.indexes, want_early);
    }
}
