//! The pipeline end to end on a temp RocksDB: durability, exactly-once,
//! batches with bad records, backpressure, checkpoints, search.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cbor_of, record};
use ingest::index::{mark_key, CF_DECISIONS, CF_POSTINGS, INGEST_CFS};
use ingest::input::{parse_body, Format, Sender};
use ingest::query::{search, Query};
use ingest::{check, Indexes, Outcome, Pipeline, PipelineConfig, Submission, Timestamp};
use ledger::{IndexFamily, Log};
use serde_json::{json, Value};
use verifier::envelope::Envelope;
use verifier::{leaf_hash, SignerKey};

fn signer() -> SignerKey {
    SignerKey::from_seed("ingest.example/log", &[5; 32]).unwrap()
}

fn open(dir: &std::path::Path) -> Arc<Log> {
    Arc::new(Log::open_with(dir, &signer().verifier(), INGEST_CFS).unwrap())
}

fn sub(v: &Value, by: &str) -> Submission {
    Submission {
        record: check(&cbor_of(v)).unwrap(),
        submitted_by: by.into(),
    }
}

fn submit(p: &Pipeline, subs: Vec<Submission>) -> Vec<Outcome> {
    p.submit(subs).unwrap().blocking_recv().unwrap()
}

fn config() -> PipelineConfig {
    PipelineConfig {
        checkpoint_interval: Duration::from_millis(20),
        ..PipelineConfig::default()
    }
}

#[test]
fn appends_exactly_once_and_acks_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let p = Pipeline::start(Indexes::open(log.clone()).unwrap(), None, config());
    let out = submit(
        &p,
        vec![sub(&record("a"), "gw-1"), sub(&record("b"), "gw-1")],
    );
    let Outcome::Appended {
        index: 0,
        leaf_hash: h0,
    } = out[0]
    else {
        panic!("{out:?}")
    };
    assert!(matches!(out[1], Outcome::Appended { index: 1, .. }));
    assert_eq!(log.size(), 2, "acknowledged means committed");
    assert_eq!(leaf_hash(&log.entry(0).unwrap()), h0);

    // A retry returns the original index and leaf hash, and appends nothing.
    let out = submit(&p, vec![sub(&record("a"), "gw-1")]);
    assert_eq!(
        out,
        vec![Outcome::Duplicate {
            index: 0,
            leaf_hash: h0
        }]
    );
    // The same id with other content is a conflict.
    let mut changed = record("a");
    changed["decision"] = json!("deny");
    assert_eq!(
        submit(&p, vec![sub(&changed, "gw-1")]),
        vec![Outcome::Conflict { index: 0 }]
    );
    // Repeats inside one batch.
    let out = submit(
        &p,
        vec![
            sub(&record("c"), "gw-2"),
            sub(&record("c"), "gw-2"),
            sub(
                &{
                    let mut c = record("c");
                    c["decision"] = json!("deny");
                    c
                },
                "gw-2",
            ),
        ],
    );
    let Outcome::Appended {
        index: 2,
        leaf_hash: h2,
    } = out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        out[1],
        Outcome::Duplicate {
            index: 2,
            leaf_hash: h2
        }
    );
    assert_eq!(out[2], Outcome::Conflict { index: 2 });
    assert_eq!(log.size(), 3);
    p.shutdown();

    // The leaf is the v1 envelope, with the authenticated submitter.
    let env = Envelope::decode(&log.entry(2).unwrap()).unwrap();
    assert_eq!(env.submitted_by, "gw-2");
    assert_eq!(
        verifier::cbor::encode(&env.record),
        check(&cbor_of(&record("c"))).unwrap().cbor().to_vec()
    );
    let times: Vec<String> = (0..3)
        .map(|i| {
            Envelope::decode(&log.entry(i).unwrap())
                .unwrap()
                .received_at
        })
        .collect();
    let parsed: Vec<Timestamp> = times
        .iter()
        .map(|t| Timestamp::parse_text(t).unwrap())
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] <= w[1]),
        "ledger clock never goes back: {times:?}"
    );

    // Exactly-once survives a restart.
    drop(log);
    let log = open(dir.path());
    let p = Pipeline::start(Indexes::open(log.clone()).unwrap(), None, config());
    assert_eq!(
        submit(&p, vec![sub(&record("a"), "gw-1")]),
        vec![Outcome::Duplicate {
            index: 0,
            leaf_hash: h0
        }]
    );
    assert_eq!(log.size(), 3);
}

#[test]
fn good_records_of_a_mixed_batch_go_in() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let p = Pipeline::start(Indexes::open(log.clone()).unwrap(), None, config());
    let mut bad = record("bad");
    bad["subject"]["identity_kind"] = json!("ghost");
    let body = json!([record("x"), bad, record("y")]).to_string();
    let parsed = parse_body(Format::Json, body.as_bytes(), &Sender::relay("gw")).unwrap();
    let subs: Vec<Submission> = parsed
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| Submission {
            record: r.clone(),
            submitted_by: "gw".into(),
        })
        .collect();
    assert_eq!(subs.len(), 2);
    let out = submit(&p, subs);
    assert!(out.iter().all(|o| matches!(o, Outcome::Appended { .. })));
    assert_eq!(log.size(), 2);
}

#[test]
fn a_full_queue_asks_callers_to_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    // The writer holds its first batch open for up to 2 s waiting for more,
    // so the queue is still full when the second submission arrives.
    let cfg = PipelineConfig {
        queue_capacity: 10,
        max_delay: Duration::from_secs(2),
        ..config()
    };
    let p = Pipeline::start(Indexes::open(log.clone()).unwrap(), None, cfg);
    let first: Vec<Submission> = (0..6)
        .map(|i| sub(&record(&format!("q{i}")), "gw"))
        .collect();
    let rx = p.submit(first).unwrap();
    let second: Vec<Submission> = (6..12)
        .map(|i| sub(&record(&format!("q{i}")), "gw"))
        .collect();
    let busy = p.submit(second).unwrap_err();
    assert_eq!(busy.queued, 6);
    assert_eq!(rx.blocking_recv().unwrap().len(), 6);
    assert_eq!(
        log.size(),
        6,
        "nothing of the refused submission was appended"
    );
}

#[test]
fn publisher_signs_checkpoints_as_the_log_grows() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let p = Pipeline::start(
        Indexes::open(log.clone()).unwrap(),
        Some(signer().into()),
        config(),
    );
    submit(&p, vec![sub(&record("k1"), "gw")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while log
        .latest_checkpoint()
        .is_none_or(|c| c.checkpoint.size < 1)
    {
        assert!(Instant::now() < deadline, "no checkpoint within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    submit(&p, vec![sub(&record("k2"), "gw")]);
    p.shutdown();
    // Shutdown signs a last checkpoint covering everything acknowledged.
    assert_eq!(log.latest_checkpoint().unwrap().checkpoint.size, 2);
    assert_eq!(log.checkpoint_sizes(0, 10).unwrap().last(), Some(&2));
}

fn variant(
    id: &str,
    subject: &str,
    actors: &[&str],
    version: &str,
    time: &str,
    decision: &str,
) -> Value {
    let mut r = record(id);
    r["subject"]["id"] = json!(subject);
    r["delegation"] = Value::Array(
        actors
            .iter()
            .map(|a| json!({"identity_kind": "agent", "id": a}))
            .collect(),
    );
    r["policy"]["version"] = json!(version);
    r["time"] = json!(time);
    r["decision"] = json!(decision);
    r["context"]["request_id"] = json!(format!("req-{id}"));
    r
}

#[test]
fn responders_find_decisions_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let p = Pipeline::start(Indexes::open(log.clone()).unwrap(), None, config());
    let records = [
        variant(
            "r0",
            "alice",
            &["bot-1"],
            "1",
            "2026-11-23T07:00:00Z",
            "allow",
        ),
        variant(
            "r1",
            "bob",
            &["bot-1", "sa-9"],
            "1",
            "2026-11-23T08:00:00Z",
            "deny",
        ),
        variant("r2", "alice", &[], "2", "2026-11-23T09:00:00Z", "allow"),
        variant(
            "r3",
            "alice",
            &["sa-9"],
            "2",
            "2026-11-23T10:00:00Z",
            "deny",
        ),
        variant(
            "r4",
            "carol",
            &["bot-1"],
            "2",
            "2026-11-23T11:00:00Z",
            "allow",
        ),
    ];
    submit(&p, records.iter().map(|r| sub(r, "gw")).collect());
    let find = |q: Query| {
        search(&Indexes::open(log.clone()).unwrap(), &q, None, 100)
            .unwrap()
            .indexes
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        find(Query {
            subject: s("alice"),
            ..Query::default()
        }),
        vec![0, 2, 3]
    );
    assert_eq!(
        find(Query {
            actor: s("bot-1"),
            ..Query::default()
        }),
        vec![0, 1, 4]
    );
    assert_eq!(
        find(Query {
            actor: s("sa-9"),
            decision: s("deny"),
            ..Query::default()
        }),
        vec![1, 3]
    );
    assert_eq!(
        find(Query {
            policy: s("bookings.authz"),
            version: s("2"),
            ..Query::default()
        }),
        vec![2, 3, 4]
    );
    assert_eq!(
        find(Query {
            request_id: s("req-r3"),
            ..Query::default()
        }),
        vec![3]
    );
    assert_eq!(
        find(Query {
            resource: s("bookings-api"),
            ..Query::default()
        })
        .len(),
        5
    );
    let t = |x: &str| Timestamp::parse_text(x);
    assert_eq!(
        find(Query {
            subject: s("alice"),
            from: t("2026-11-23T08:30:00Z"),
            to: t("2026-11-23T10:00:00Z"),
            ..Query::default()
        }),
        vec![2]
    );
    assert_eq!(
        find(Query {
            from: t("2026-11-23T09:00:00Z"),
            ..Query::default()
        }),
        vec![2, 3, 4]
    );
    assert!(find(Query {
        subject: s("nobody"),
        ..Query::default()
    })
    .is_empty());
    assert!(search(
        &Indexes::open(log.clone()).unwrap(),
        &Query {
            version: s("2"),
            ..Query::default()
        },
        None,
        10
    )
    .is_err());
    // Paging.
    let q = Query {
        actor: s("bot-1"),
        ..Query::default()
    };
    let p1 = search(&Indexes::open(log.clone()).unwrap(), &q, None, 2).unwrap();
    assert_eq!(p1.indexes, vec![0, 1]);
    let p2 = search(&Indexes::open(log.clone()).unwrap(), &q, p1.next, 2).unwrap();
    assert_eq!(p2.indexes, vec![4]);
    let all = search(
        &Indexes::open(log.clone()).unwrap(),
        &Query::default(),
        Some(1),
        2,
    )
    .unwrap();
    assert_eq!((all.indexes, all.next), (vec![2, 3], Some(3)));
}

#[test]
fn postings_grouped_per_commit_page_across_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let p = Pipeline::start(Indexes::open(log.clone()).unwrap(), None, config());
    // Three commits; "dana" in each, "bot-7" only in some records.
    for c in 0..3 {
        let recs: Vec<Submission> = (0..4)
            .map(|i| {
                let actors: &[&str] = if i % 2 == 0 { &["bot-7"] } else { &[] };
                sub(
                    &variant(
                        &format!("g{c}-{i}"),
                        "dana",
                        actors,
                        "1",
                        "2026-11-23T07:00:00Z",
                        "allow",
                    ),
                    "gw",
                )
            })
            .collect();
        submit(&p, recs);
    }
    let s = |v: &str| Some(v.to_string());
    let q = Query {
        subject: s("dana"),
        actor: s("bot-7"),
        ..Query::default()
    };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = search(&Indexes::open(log.clone()).unwrap(), &q, after, 2).unwrap();
        all.extend(page.indexes);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(all, vec![0, 2, 4, 6, 8, 10]);
    let q = Query {
        actor: s("bot-7"),
        subject: s("dana"),
        ..Query::default()
    };
    assert_eq!(
        search(&Indexes::open(log.clone()).unwrap(), &q, Some(4), 100)
            .unwrap()
            .indexes,
        vec![6, 8, 10]
    );
}

proptest::proptest! {
    #[test]
    fn posting_lists_round_trip(mut v in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..50)) {
        v.sort_unstable();
        v.dedup();
        proptest::prop_assert_eq!(ingest::index::decode_list(&ingest::index::encode_list(&v)), Some(v));
    }

    #[test]
    fn posting_lists_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
        let _ = ingest::index::decode_list(&bytes);
    }
}

#[test]
fn retries_racing_their_original_are_answered_once_durable() {
    // Each id is sent in several submissions at once, so retries land in the
    // same group commit, in the batch prepared while the original is being
    // written, or after it is stored: exactly one is appended either way,
    // the others name its index, and a changed record is a conflict.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let p = Arc::new(Pipeline::start(
        Indexes::open(log.clone()).unwrap(),
        None,
        config(),
    ));
    let ids: Vec<String> = (0..200).map(|i| format!("race-{i}")).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (p, ids) = (p.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for chunk in ids.chunks(7) {
                    let subs: Vec<Submission> = chunk
                        .iter()
                        .map(|id| {
                            let mut r = record(id);
                            if t == 3 && id.ends_with('7') {
                                r["decision"] = json!("deny");
                            }
                            sub(&r, "gw-1")
                        })
                        .collect();
                    let o = submit(&p, subs);
                    out.extend(chunk.iter().cloned().zip(o));
                }
                out
            })
        })
        .collect();
    let mut by_id: std::collections::HashMap<String, Vec<Outcome>> = Default::default();
    for t in threads {
        for (id, o) in t.join().unwrap() {
            by_id.entry(id).or_default().push(o);
        }
    }
    assert_eq!(log.size(), 200, "one leaf per decision_id");
    for (id, outs) in by_id {
        let appended: Vec<(u64, verifier::Hash)> = outs
            .iter()
            .filter_map(|o| match o {
                Outcome::Appended { index, leaf_hash } => Some((*index, *leaf_hash)),
                _ => None,
            })
            .collect();
        assert_eq!(appended.len(), 1, "{id}: {outs:?}");
        let (index, leaf) = appended[0];
        assert_eq!(leaf_hash(&log.entry(index).unwrap()), leaf);
        for o in &outs {
            match o {
                Outcome::Appended { .. } => {}
                Outcome::Duplicate {
                    index: i,
                    leaf_hash,
                } => {
                    assert_eq!((*i, *leaf_hash), (index, leaf), "{id}")
                }
                Outcome::Conflict { index: i } => assert_eq!(*i, index, "{id}"),
                Outcome::Failed(why) => panic!("{id}: {why}"),
            }
        }
    }
}

#[test]
fn spans_built_and_in_memory_answer_alike_and_survive_reopen() {
    // Spans of 8 leaves: after 30 records in commits of 4, spans 0..24 are
    // built into RocksDB and 24..30 are in memory (rebuilt from the index
    // log on open); searches, lookups and retries see no seam.
    let dir = tempfile::tempdir().unwrap();
    let idx_of = |log: &Arc<Log>| Indexes::open_with_span(log.clone(), 8).unwrap();
    let rec = |i: usize| {
        let actors: &[&str] = if i.is_multiple_of(3) { &["bot-3"] } else { &[] };
        variant(
            &format!("s-{i}"),
            if i.is_multiple_of(2) { "erin" } else { "frank" },
            actors,
            "1",
            "2026-11-23T07:00:00Z",
            "allow",
        )
    };
    let expect_erin_bot: Vec<u64> = (0..30u64).filter(|i| i % 6 == 0).collect();
    {
        let log = open(dir.path());
        let idx = idx_of(&log);
        let p = Pipeline::start(idx.clone(), None, config());
        for c in 0..30 / 4 + 1 {
            let subs: Vec<Submission> = (c * 4..(c * 4 + 4).min(30))
                .map(|i| sub(&rec(i), "gw"))
                .collect();
            submit(&p, subs);
        }
        p.shutdown();
        assert_eq!(log.size(), 30);
        let q = Query {
            subject: Some("erin".into()),
            actor: Some("bot-3".into()),
            ..Query::default()
        };
        assert_eq!(
            search(&idx, &q, None, 100).unwrap().indexes,
            expect_erin_bot
        );
        // Three spans are built; leaves 24..30 are in memory only, and
        // are read back from the leaves on reopen. The newest span's mark
        // is the last key; the spans' postings files are one sorted run
        // (none overlaps another, so none waits to be merged).
        let mark = log.index_last(CF_POSTINGS).unwrap();
        assert_eq!(
            mark,
            Some((mark_key(16).to_vec(), 24u64.to_be_bytes().to_vec()))
        );
        assert_eq!(log.index_sorted_runs(CF_POSTINGS).unwrap(), 1);
        // Each span's decisions file spans the ids ("s-1" < "s-10" < "s-2"),
        // so those are runs of their own.
        assert!(log.index_sorted_runs(CF_DECISIONS).unwrap() > 1);
    }
    let log = open(dir.path());
    let idx = idx_of(&log);
    for i in [0usize, 7, 8, 23, 24, 29] {
        let (index, _) = idx.lookup_decision(&format!("s-{i}")).unwrap().unwrap();
        assert_eq!(index, i as u64);
    }
    assert!(idx.lookup_decision("s-30").unwrap().is_none());
    let q = Query {
        actor: Some("bot-3".into()),
        subject: Some("erin".into()),
        ..Query::default()
    };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = search(&idx, &q, after, 2).unwrap();
        all.extend(page.indexes);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(all, expect_erin_bot);
    let by_time = Query {
        from: Timestamp::parse_text("2026-11-23T06:00:00Z"),
        ..Query::default()
    };
    assert_eq!(search(&idx, &by_time, None, 100).unwrap().indexes.len(), 30);
    // Retries of built and in-memory ids are duplicates, not new leaves.
    let p = Pipeline::start(idx.clone(), None, config());
    let out = submit(
        &p,
        vec![sub(&rec(3), "gw"), sub(&rec(27), "gw"), sub(&rec(30), "gw")],
    );
    assert!(
        matches!(out[0], Outcome::Duplicate { index: 3, .. }),
        "{out:?}"
    );
    assert!(
        matches!(out[1], Outcome::Duplicate { index: 27, .. }),
        "{out:?}"
    );
    assert!(
        matches!(out[2], Outcome::Appended { index: 30, .. }),
        "{out:?}"
    );
    p.shutdown();
    assert_eq!(log.size(), 31);
    drop((idx, log));

    // The index database is derived from the leaves: without it (lost, or
    // a store of the layout that kept the indexes beside the log, whose
    // index column families are dropped on open) it is rebuilt on open.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let log = open(dir.path());
    let idx = idx_of(&log);
    let mark = log.index_get(CF_POSTINGS, &mark_key(16)).unwrap();
    assert_eq!(mark, Some(24u64.to_be_bytes().to_vec()));
    for i in [0usize, 7, 23, 24, 30] {
        let (index, _) = idx.lookup_decision(&format!("s-{i}")).unwrap().unwrap();
        assert_eq!(index, i as u64);
    }
    // Record 30 (appended above) is erin's, with bot-3 in its chain.
    let mut expect = expect_erin_bot;
    expect.push(30);
    assert_eq!(search(&idx, &q, None, 100).unwrap().indexes, expect);
    drop((idx, log));

    // A store of the earlier index layout (postings keyed by term
    // first, in `postings`, with the mark `\0indexed` at 24): the old
    // column family is dropped on open and the postings rebuilt.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    {
        let old = Log::open_with(
            dir.path(),
            &signer().verifier(),
            &[IndexFamily::new(CF_DECISIONS), IndexFamily::new("postings")],
        )
        .unwrap();
        old.ingest_sorted("postings", &[(b"\0indexed", 24u64.to_be_bytes())])
            .unwrap();
    }
    let log = open(dir.path());
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path().join("index")).unwrap();
    assert!(!cfs.iter().any(|c| c == "postings"), "{cfs:?}");
    let idx = idx_of(&log);
    assert_eq!(search(&idx, &q, None, 100).unwrap().indexes, expect);
    assert_eq!(
        log.index_get(CF_POSTINGS, &mark_key(16)).unwrap(),
        Some(24u64.to_be_bytes().to_vec())
    );
}

#[test]
fn raw_entries_between_records_keep_the_index_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |i: usize| {
        variant(
            &format!("r-{i}"),
            if i.is_multiple_of(2) { "erin" } else { "frank" },
            &[],
            "1",
            "2026-11-23T07:00:00Z",
            "allow",
        )
    };
    let run = |from: usize, to: usize| {
        let log = open(dir.path());
        let p = Pipeline::start(
            Indexes::open_with_span(log.clone(), 8).unwrap(),
            None,
            config(),
        );
        submit(&p, (from..to).map(|i| sub(&rec(i), "gw")).collect());
        p.shutdown();
    };
    // Records 0..5 at leaves 0..5, two raw entries (`Log::append`)
    // at 5 and 6, then records 5..12 at leaves 7..14: the span 0..8 mixes
    // both, and is built on the second open.
    run(0, 5);
    open(dir.path()).append(&[b"raw-1", b"raw-2"]).unwrap();
    run(5, 12);
    for reopen in [false, true] {
        let log = open(dir.path());
        let idx = Indexes::open_with_span(log.clone(), 8).unwrap();
        assert_eq!(log.size(), 14, "reopened: {reopen}");
        for i in 0..12usize {
            let leaf = if i < 5 { i } else { i + 2 } as u64;
            let (index, _) = idx.lookup_decision(&format!("r-{i}")).unwrap().unwrap();
            assert_eq!(index, leaf, "r-{i}");
        }
        let q = Query {
            subject: Some("frank".into()),
            ..Query::default()
        };
        assert_eq!(
            search(&idx, &q, None, 100).unwrap().indexes,
            vec![1, 3, 7, 9, 11, 13]
        );
    }
}

#[test]
fn the_pipelines_own_indexes_answer_as_reopened_ones_do() {
    // The acknowledger adds each record's terms to the in-memory span as
    // the record holds them; a reopened index reads them back from the
    // leaves. Both must answer alike, actors unsorted and repeated too.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let live = Indexes::open(log.clone()).unwrap();
    let p = Pipeline::start(live.clone(), None, config());
    let t = "2026-11-23T07:00:00Z";
    let records = [
        variant("m0", "alice", &["sa-9", "bot-1", "sa-9"], "1", t, "allow"),
        variant("m1", "bob", &["bot-1"], "1", t, "deny"),
        variant("m2", "alice", &[], "2", "2026-11-23T09:00:00Z", "allow"),
        variant("m3", "carol", &["bot-2", "sa-9"], "2", t, "deny"),
    ];
    submit(&p, records.iter().map(|r| sub(r, "gw")).collect());
    let s = |v: &str| Some(v.to_string());
    let queries = [
        Query {
            subject: s("alice"),
            ..Query::default()
        },
        Query {
            actor: s("sa-9"),
            ..Query::default()
        },
        Query {
            actor: s("bot-1"),
            ..Query::default()
        },
        Query {
            policy: s("bookings.authz"),
            version: s("2"),
            ..Query::default()
        },
        Query {
            request_id: s("req-m3"),
            ..Query::default()
        },
        Query {
            from: Timestamp::parse_text("2026-11-23T08:00:00Z"),
            ..Query::default()
        },
    ];
    let want: [&[u64]; 6] = [&[0, 2], &[0, 3], &[0, 1], &[2, 3], &[3], &[2]];
    let reopened = Indexes::open(log.clone()).unwrap();
    for (q, want) in queries.iter().zip(want) {
        let in_memory = search(&live, q, None, 100).unwrap().indexes;
        assert_eq!(in_memory, want, "{q:?}");
        assert_eq!(
            search(&reopened, q, None, 100).unwrap().indexes,
            want,
            "{q:?}"
        );
    }
    assert_eq!(live.lookup_decision("m2").unwrap().map(|(i, _)| i), Some(2));
}
