//! Search against a model: random decisions through the pipeline (spans of
//! 8 leaves, so most are built to RocksDB and the newest are in memory),
//! then random combinations of every filter, paged at random sizes,
//! compared with a brute-force reading of every leaf.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{cbor_of, record};
use ingest::index::INGEST_CFS;
use ingest::query::{search, Query};
use ingest::{check, Indexes, Pipeline, PipelineConfig, Submission, Timestamp};
use ledger::Log;
use proptest::prelude::*;
use serde_json::json;
use verifier::decision::LoggedDecision;
use verifier::SignerKey;

/// One generated decision's choices.
#[derive(Clone, Debug)]
struct Gen {
    subject: u8,
    owner: Option<u8>,
    actor: Option<u8>,
    kind: u8,
    enforcer: u8,
    writer: u8,
    action: u8,
    credential: Option<u8>,
    break_glass: Option<bool>,
    deny: bool,
    hour: u8,
}

fn gens() -> impl Strategy<Value = Vec<Gen>> {
    let one = (
        (
            0u8..3,
            prop::option::of(0u8..2),
            prop::option::of(0u8..4),
            0u8..5,
            0u8..2,
            0u8..2,
        ),
        (
            0u8..2,
            prop::option::of(0u8..3),
            prop::option::of(any::<bool>()),
            any::<bool>(),
            0u8..3,
        ),
    )
        .prop_map(
            |(
                (subject, owner, actor, kind, enforcer, writer),
                (action, credential, break_glass, deny, hour),
            )| Gen {
                subject,
                owner,
                actor,
                kind,
                enforcer,
                writer,
                action,
                credential,
                break_glass,
                deny,
                hour,
            },
        );
    prop::collection::vec(one, 1..40)
}

const KINDS: [&str; 5] = ["human", "service_account", "workload", "agent", "device"];

fn to_record(i: usize, g: &Gen) -> serde_json::Value {
    let mut r = record(&format!("g{i}"));
    // One namespace of people for subjects, owners and actors, so that a
    // person is found in each role.
    r["subject"]["id"] = json!(format!("p{}", g.subject));
    r["subject"]["identity_kind"] = json!(KINDS[g.kind as usize]);
    match g.owner {
        Some(o) => r["subject"]["owner"] = json!(format!("p{o}")),
        None => {
            r["subject"].as_object_mut().unwrap().remove("owner");
        }
    }
    match g.actor {
        Some(a) => {
            r["delegation"] = json!([
                {"identity_kind": "agent", "id": "agent:bot", "owner": format!("p{a}")},
                {"identity_kind": "human", "id": format!("p{a}")},
            ])
        }
        None => {
            r.as_object_mut().unwrap().remove("delegation");
        }
    }
    r["enforcer"]["id"] = json!(format!("e{}", g.enforcer));
    r["action"]["name"] = json!(["GET /x", "POST /x"][g.action as usize]);
    match g.credential {
        Some(c) => r["credential"]["id_hash"] = json!(format!("sha256:credential-{c}-0000")),
        None => {
            r.as_object_mut().unwrap().remove("credential");
        }
    }
    if let Some(b) = g.break_glass {
        r["emergency"] = json!({"break_glass": b, "justification": "outage"});
    }
    r["decision"] = json!(if g.deny { "deny" } else { "allow" });
    r["time"] = json!(format!("2026-11-23T0{}:00:00Z", 6 + g.hour));
    r
}

/// What a query asks, as the model applies it.
#[derive(Clone, Debug)]
struct Ask {
    subject: Option<u8>,
    owner: Option<u8>,
    actor: Option<u8>,
    person: Option<u8>,
    kind: Option<u8>,
    enforcer: Option<u8>,
    writer: Option<u8>,
    action: Option<u8>,
    credential: Option<u8>,
    break_glass: bool,
    deny: Option<bool>,
    hour_from: Option<u8>,
    received: Option<(prop::sample::Index, prop::sample::Index)>,
    at: Option<prop::sample::Index>,
    limit: usize,
}

fn asks() -> impl Strategy<Value = Ask> {
    (
        (
            prop::option::weighted(0.3, 0u8..3),
            prop::option::weighted(0.2, 0u8..2),
            prop::option::weighted(0.15, 0u8..4),
            prop::option::weighted(0.3, 0u8..5),
            prop::option::weighted(0.2, 0u8..5),
            prop::option::weighted(0.2, 0u8..2),
            prop::option::weighted(0.2, 0u8..2),
            prop::option::weighted(0.2, 0u8..2),
        ),
        (
            prop::option::weighted(0.2, 0u8..3),
            prop::bool::weighted(0.15),
            prop::option::weighted(0.2, any::<bool>()),
            prop::option::weighted(0.3, 0u8..3),
            prop::option::weighted(
                0.3,
                (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            ),
            prop::option::weighted(0.3, any::<prop::sample::Index>()),
            1usize..7,
        ),
    )
        .prop_map(
            |(
                (subject, owner, actor, person, kind, enforcer, writer, action),
                (credential, break_glass, deny, hour_from, received, at, limit),
            )| Ask {
                subject,
                owner,
                actor,
                person,
                kind,
                enforcer,
                writer,
                action,
                credential,
                break_glass,
                deny,
                hour_from,
                received,
                at,
                limit,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn every_filter_combination_pages_to_what_the_model_finds(gs in gens(), queries in prop::collection::vec(asks(), 20)) {
        let dir = tempfile::tempdir().unwrap();
        let key = SignerKey::from_seed("search.example/log", &[8; 32]).unwrap();
        let log = Arc::new(Log::open_with(dir.path(), &key.verifier(), INGEST_CFS).unwrap());
        let idx = Indexes::open_with_span(log.clone(), 8).unwrap();
        let p = Pipeline::start(idx.clone(), None, PipelineConfig {
            checkpoint_interval: Duration::from_millis(20),
            ..PipelineConfig::default()
        });
        // A few commits, so that received_at takes several values.
        for (c, chunk) in gs.chunks(7).enumerate() {
            let subs: Vec<Submission> = chunk
                .iter()
                .enumerate()
                .map(|(j, g)| Submission {
                    record: check(&cbor_of(&to_record(c * 7 + j, g))).unwrap(),
                    submitted_by: format!("w{}", g.writer).into(),
                })
                .collect();
            p.submit(subs).unwrap().blocking_recv().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        p.shutdown();
        let size = log.size();
        let leaves: Vec<LoggedDecision> = (0..size)
            .map(|i| LoggedDecision::from_leaf(&log.entry(i).unwrap()).unwrap())
            .collect();
        for a in queries {
            let at = a.at.map(|x| x.index(size as usize + 1) as u64);
            let received = a.received.map(|(x, y)| {
                let (x, y) = (x.index(leaves.len()), y.index(leaves.len()));
                (leaves[x.min(y)].received_at, leaves[x.max(y)].received_at)
            });
            let q = Query {
                subject: a.subject.map(|s| format!("p{s}")),
                owner: a.owner.map(|o| format!("p{o}")),
                actor: a.actor.map(|x| format!("p{x}")),
                person: a.person.map(|x| format!("p{x}")),
                identity_kind: a.kind.map(|k| KINDS[k as usize].to_string()),
                enforcer: a.enforcer.map(|e| format!("e{e}")),
                submitted_by: a.writer.map(|w| format!("w{w}")),
                action: a.action.map(|x| ["GET /x", "POST /x"][x as usize].to_string()),
                credential: a.credential.map(|c| format!("sha256:credential-{c}-0000")),
                break_glass: a.break_glass,
                decision: a.deny.map(|d| if d { "deny" } else { "allow" }.to_string()),
                from: a.hour_from.map(|h| Timestamp::parse_text(&format!("2026-11-23T0{}:00:00Z", 6 + h)).unwrap()),
                received_from: received.map(|r| r.0),
                received_to: received.map(|r| r.1),
                at,
                ..Query::default()
            };
            let want: Vec<u64> = leaves
                .iter()
                .enumerate()
                .filter(|(i, l)| {
                    let d = &l.decision;
                    at.is_none_or(|at| (*i as u64) < at)
                        && received.is_none_or(|(f, t)| l.received_at >= f && l.received_at < t)
                        && q.subject.as_ref().is_none_or(|s| *s == d.subject.id)
                        && q.owner.as_ref().is_none_or(|o| Some(o) == d.subject.owner.as_ref())
                        && q.actor.as_ref().is_none_or(|x| d.delegation.iter().any(|h| h.id == *x))
                        && q.person.as_ref().is_none_or(|p| {
                            *p == d.subject.id
                                || Some(p) == d.subject.owner.as_ref()
                                || d.delegation.iter().any(|h| h.id == *p)
                        })
                        && q.identity_kind.as_ref().is_none_or(|k| *k == d.subject.identity_kind)
                        && q.enforcer.as_ref().is_none_or(|e| *e == d.enforcer.id)
                        && q.submitted_by.as_ref().is_none_or(|w| *w == l.submitted_by)
                        && q.action.as_ref().is_none_or(|x| *x == d.action)
                        && q.credential.as_ref().is_none_or(|c| d.credential.as_ref().is_some_and(|dc| dc.id_hash == *c))
                        && (!q.break_glass || d.emergency.as_ref().is_some_and(|e| e.break_glass))
                        && q.decision.as_ref().is_none_or(|x| *x == d.decision)
                        && q.from.is_none_or(|f| d.time >= f)
                })
                .map(|(i, _)| i as u64)
                .collect();
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = search(&idx, &q, after, a.limit).unwrap();
                prop_assert_eq!(page.size, at.unwrap_or(size));
                prop_assert!(page.indexes.len() <= a.limit);
                got.extend(page.indexes);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            prop_assert_eq!(&got, &want, "{:?}", q);
        }
    }
}
