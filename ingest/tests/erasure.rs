//! Erasure over the indexes (`Indexes::plan_erasure`, `finish_erasure`):
//! an erased decision is found by no search, linked by no chain, and its
//! terms leave the index files, whether its span was built or still in
//! memory; its id still answers retries; the store audits clean; a hold
//! keeps it; an erasure cut short after its record was logged is
//! finished by asking again.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{cbor_of, in_sst_files, record};
use ingest::index::{CF_DECISIONS, CF_POSTINGS, INGEST_CFS};
use ingest::query::{search, Query};
use ingest::{
    check, EraseError, Indexes, Outcome, Pipeline, PipelineConfig, Plan, Planned, Submission,
};
use ledger::{Erased, IndexFamily, LedgerError, Log};
use verifier::erasure::Request;
use verifier::timestamp::Timestamp;
use verifier::SignerKey;

fn key() -> SignerKey {
    SignerKey::from_seed("erasure.example/log", &[6; 32]).unwrap()
}

fn open(dir: &Path) -> (Arc<Log>, Arc<Indexes>) {
    let log = Arc::new(Log::open_with(dir, &key().verifier(), INGEST_CFS).unwrap());
    (log.clone(), Indexes::open_with_span(log, 64).unwrap())
}

/// Decision `e-i`: subject `s-(i % 5)`, leaf `e-7`'s subject a term of
/// its own; `e-(i+1)` names `e-i` as its parent.
fn submission(i: u64) -> Submission {
    let mut r = record(&format!("e-{i}"));
    r["subject"]["id"] = format!("s-{}", i % 5).into();
    if i == 7 || i == 250 {
        r["subject"]["id"] = format!("zperson-{i}").into();
    }
    r["context"]["request_id"] = format!("req-{i}").into();
    r["context"]["trace_id"] = format!("trace-{i}").into();
    if i > 0 {
        r["context"]["parent_decision_id"] = format!("e-{}", i - 1).into();
    }
    Submission {
        record: check(&cbor_of(&r)).unwrap(),
        submitted_by: "w".into(),
    }
}

/// A log in `dir` holding decisions `e-0`…`e-299`: spans 0–3 (of 64)
/// built, the fifth in memory.
fn filled(dir: &Path) -> (Arc<Log>, Arc<Indexes>, Pipeline) {
    let (log, idx) = open(dir);
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    submit(&p, (0..300).map(submission).collect());
    idx.build().unwrap();
    assert_eq!(idx.built(), 256);
    (log, idx, p)
}

fn submit(p: &Pipeline, subs: Vec<Submission>) -> Vec<Outcome> {
    p.submit(subs).unwrap().blocking_recv().unwrap()
}

fn now() -> Timestamp {
    Timestamp(time::OffsetDateTime::now_utc())
}

fn ask() -> Request<'static> {
    Request {
        requested_by: "dpo@example.com",
        reason: "GDPR art. 17 request",
        ticket: Some("DSR-1"),
    }
}

fn plan(idx: &Indexes, id: &str, holds: Option<&Path>) -> Result<Planned, EraseError> {
    match idx.plan_erasure(id, &ask(), &now(), holds)? {
        Plan::Erase(p) => Ok(*p),
        Plan::Done(e) => panic!("{id} was erased before: {e:?}"),
    }
}

/// Plans, logs, checkpoints and finishes the erasure of `id`.
fn erase(idx: &Indexes, p: &Pipeline, id: &str) -> Erased {
    let planned = plan(idx, id, None).unwrap();
    let outcome = submit(p, vec![planned.record.clone()]).pop().unwrap();
    idx.log().sign_checkpoint(&key()).unwrap();
    idx.finish_erasure(&planned, &outcome).unwrap()
}

fn subject(idx: &Indexes, s: &str) -> Vec<u64> {
    let q = Query {
        subject: Some(s.into()),
        ..Query::default()
    };
    search(idx, &q, None, 1000).unwrap().indexes
}

#[test]
fn an_erased_decision_is_found_by_nothing_built_or_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx, p) = filled(dir.path());
    log.flush().unwrap();
    assert!(in_sst_files(&dir.path().join("index"), b"zperson-7"));
    assert_eq!(subject(&idx, "zperson-7"), vec![7]);
    assert_eq!(
        subject(&idx, "s-2"),
        (0..300)
            .filter(|i| i % 5 == 2 && *i != 7)
            .collect::<Vec<_>>()
    );

    // e-7 is in a built span, e-250 in memory.
    let built = erase(&idx, &p, "e-7");
    assert_eq!((built.index, built.by), (7, 300));
    let memory = erase(&idx, &p, "e-250");
    assert_eq!((memory.index, memory.by), (250, 301));
    let found_by_nothing = |idx: &Indexes| {
        assert_eq!(subject(idx, "zperson-7"), Vec::<u64>::new());
        assert_eq!(subject(idx, "zperson-250"), Vec::<u64>::new());
        let trace = Query {
            trace_id: Some("trace-7".into()),
            ..Query::default()
        };
        assert!(search(idx, &trace, None, 10).unwrap().indexes.is_empty());
        // A walk of the leaves passes over them.
        let walked = search(idx, &Query::default(), None, 1000).unwrap().indexes;
        assert!(!walked.contains(&7) && !walked.contains(&250) && walked.contains(&8));
        // A chain through them stops there.
        let chain = ingest::chain::collect(idx, 8, idx.log().size(), 100).unwrap();
        assert!(!chain.indexes.contains(&7), "{:?}", chain.indexes);
        assert!(chain.indexes.contains(&9));
        // The id still answers a retry, as a duplicate of the erased leaf.
        assert_eq!(idx.lookup_decision("e-7").unwrap().unwrap().0, 7);
        assert!(matches!(
            idx.log().entry(7),
            Err(LedgerError::Erased { by: 300, .. })
        ));
    };
    found_by_nothing(&idx);
    // The span in memory is built without it.
    submit(&p, (302..400).map(submission).collect());
    p.shutdown();
    idx.build().unwrap();
    assert_eq!(idx.built(), 384);
    found_by_nothing(&idx);
    // Their terms left the index's files; the log's files hold no entry.
    log.flush().unwrap();
    assert!(!in_sst_files(&dir.path().join("index"), b"zperson-7"));
    assert!(!in_sst_files(&dir.path().join("index"), b"zperson-250"));
    assert!(!in_sst_files(dir.path(), b"zperson-7"));
    // Asked again: done before.
    assert!(matches!(
        idx.plan_erasure("e-7", &ask(), &now(), None).unwrap(),
        Plan::Done(Erased {
            index: 7,
            by: 300,
            ..
        })
    ));
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!((report.erased, report.pending_erasures.len()), (2, 0));
    drop(idx);
    drop(log);
    // Opened again, the indexes are rebuilt from the leaves where needed;
    // also rebuilt whole, the erased ids are there (their records keep
    // them), found by no term.
    let (log, idx) = open(dir.path());
    found_by_nothing(&idx);
    drop(idx);
    drop(log);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let (_log, idx) = open(dir.path());
    found_by_nothing(&idx);
    assert_eq!(idx.lookup_decision("e-250").unwrap().unwrap().0, 250);
}

#[test]
fn an_erasure_cut_short_is_finished_by_asking_again() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    submit(&p, (0..100).map(submission).collect());
    // Logged, then cut short: the entry is still there.
    let first = plan(&idx, "e-3", None).unwrap();
    let logged = submit(&p, vec![first.record.clone()]);
    assert!(matches!(logged[0], Outcome::Appended { index: 100, .. }));
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!(report.pending_erasures, vec![3]);
    // Asked again, later: its record differs in time, and the first one
    // logged is the one that counts.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = plan(&idx, "e-3", None).unwrap();
    let outcome = submit(&p, vec![again.record.clone()]).pop().unwrap();
    assert_eq!(outcome, Outcome::Conflict { index: 100 });
    // Not before a checkpoint holds the record.
    assert!(matches!(
        idx.finish_erasure(&again, &outcome),
        Err(EraseError::NotCheckpointed(100))
    ));
    assert!(!log.entry(3).unwrap().is_empty());
    log.sign_checkpoint(&key()).unwrap();
    let erased = idx.finish_erasure(&again, &outcome).unwrap();
    assert_eq!(erased.by, 100);
    assert_eq!(log.size(), 101);
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!((report.erased, report.pending_erasures.len()), (1, 0));
    p.shutdown();
}

#[test]
fn holds_the_ledgers_own_records_and_unknown_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    submit(&p, (0..10).map(submission).collect());
    assert!(matches!(
        plan(&idx, "nope", None),
        Err(EraseError::NotFound(_))
    ));
    // A hold from before the decision keeps it.
    let holds = tempfile::tempdir().unwrap();
    let since = Timestamp::parse_text("2020-01-01T00:00:00Z").unwrap();
    ledger::holds::place(holds.path(), since, now(), "case 12").unwrap();
    let held = plan(&idx, "e-4", Some(holds.path())).unwrap_err();
    assert!(matches!(held, EraseError::Held { index: 4, .. }), "{held}");
    assert!(held.to_string().contains("case 12"), "{held}");
    // The erasure record itself is not erased.
    erase(&idx, &p, "e-4");
    let own = plan(&idx, "ledger-erasure-4", None).unwrap_err();
    assert!(matches!(own, EraseError::OwnRecord(_)), "{own}");
    // A reason the record cannot hold.
    let long = "x".repeat(2000);
    let bad = idx
        .plan_erasure(
            "e-5",
            &Request {
                reason: &long,
                ..ask()
            },
            &now(),
            None,
        )
        .unwrap_err();
    assert!(
        bad.to_string().starts_with("erasure request: reason"),
        "{bad}"
    );
    // Nobody else submits as the ledger.
    let as_ledger = ingest::input::parse_body(
        ingest::input::Format::Json,
        serde_json::to_string(&record("x")).unwrap().as_bytes(),
        &ingest::input::Sender::relay("ledger"),
    );
    assert!(as_ledger.is_err());
    let one = ingest::input::check_record(
        &cbor_of(&record("x")),
        0,
        &ingest::input::Sender::relay("ledger"),
    );
    assert!(one.is_err_and(|r| r.forbidden && r.reason.contains("ledger's own")));
    // Nor takes the ids the ledger's own records need, by either path
    // (a body of canonical records is read in place, any other decoded).
    for id in ["ledger-erasure-3", "ledger-retention-256"] {
        let body = serde_json::to_string(&[record(id), record("fine-1")]).unwrap();
        let checked = ingest::input::parse_body(
            ingest::input::Format::Json,
            body.as_bytes(),
            &ingest::input::Sender::relay("gw-1"),
        )
        .unwrap();
        let refused = checked[0].as_ref().unwrap_err();
        assert!(
            !refused.forbidden
                && refused.reason.starts_with("decision_id: ")
                && refused.reason.contains("ledger's own records"),
            "{refused:?}"
        );
        assert!(checked[1].is_ok());
        let one = ingest::input::check_record(
            &cbor_of(&record(id)),
            0,
            &ingest::input::Sender::relay("gw-1"),
        );
        assert!(one.is_err_and(|r| r.decision_id.as_deref() == Some(id)));
        // Nor in a CBOR sequence read as it arrives.
        let mut item = Vec::new();
        ciborium::into_writer(&cbor_of(&record(id)), &mut item).unwrap();
        let (_, streamed) =
            ingest::input::next_item(&item, 0, &ingest::input::Sender::relay("gw-1"))
                .unwrap()
                .unwrap();
        assert!(
            streamed
                .as_ref()
                .is_err_and(|r| r.reason.contains("ledger's own records")),
            "{streamed:?}"
        );
    }
    let own_prefix_only = ingest::input::check_record(
        &cbor_of(&record("ledger-erasures-report")),
        0,
        &ingest::input::Sender::relay("gw-1"),
    );
    assert!(own_prefix_only.is_ok());
    p.shutdown();
    assert_eq!(log.size(), 11);
}

#[test]
fn an_export_whose_edge_leaves_were_erased_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    // One commit a leaf, so that each has its own received_at.
    for i in 0..20 {
        submit(&p, vec![submission(i)]);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let at = |i| {
        verifier::decision::LoggedDecision::from_leaf(&log.entry(i).unwrap())
            .unwrap()
            .received_at
    };
    let [before, from, to, after] = [4, 5, 15, 16].map(at);
    // The leaves just before and just after the window.
    erase(&idx, &p, "e-4");
    erase(&idx, &p, "e-15");
    log.sign_checkpoint(&key()).unwrap();
    let head = log.export_head(from, to, Default::default(), None).unwrap();
    assert_eq!((head.first, head.end), (5, 15));
    assert!(head.before.is_none() && head.after.is_none());
    assert_eq!(
        (
            head.before_erased.as_ref().map(|b| b.index),
            head.after_erased.as_ref().map(|b| b.index)
        ),
        (Some(4), Some(15))
    );
    assert_eq!(head.erased.len(), 2);
    let v = common::package(&log, head, &key().verifier());
    assert!(
        v.end_proven && v.to_string().starts_with("complete: 10 decisions"),
        "{v}"
    );
    // A window holding both: they are in its range, by hash.
    let head = log
        .export_head(before, after, Default::default(), None)
        .unwrap();
    assert_eq!((head.first, head.end, head.erased.len()), (4, 16, 2));
    let v = common::package(&log, head, &key().verifier());
    assert!(v.to_string().contains("; 2 erased"), "{v}");
    p.shutdown();
}

#[test]
fn a_batch_of_erasures_rewrites_each_span_once_and_leaves_nothing_found() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx, p) = filled(dir.path());
    // Subject s-2: leaves 2, 12, … in built spans, 257, … in memory; and
    // zperson-7 and zperson-250, each a term of its own.
    let ids: Vec<String> = (0..300)
        .filter(|i| i % 5 == 2 || *i == 7 || *i == 250)
        .map(|i| format!("e-{i}"))
        .collect();
    let planned: Vec<Planned> = ids.iter().map(|id| plan(&idx, id, None).unwrap()).collect();
    let outcomes = submit(&p, planned.iter().map(|p| p.record.clone()).collect());
    let pairs: Vec<(&Planned, &Outcome)> = planned.iter().zip(&outcomes).collect();
    // No checkpoint yet: nothing is removed.
    assert!(idx
        .finish_erasures(&pairs)
        .iter()
        .all(|r| matches!(r, Err(EraseError::NotCheckpointed(_)))));
    assert_eq!(subject(&idx, "zperson-7"), vec![7]);
    log.sign_checkpoint(&key()).unwrap();
    let done = idx.finish_erasures(&pairs);
    assert!(done.iter().all(Result::is_ok), "{done:?}");
    assert!(subject(&idx, "s-2").is_empty());
    assert!(subject(&idx, "zperson-7").is_empty() && subject(&idx, "zperson-250").is_empty());
    assert_eq!(subject(&idx, "s-3").len(), 60);
    log.flush().unwrap();
    assert!(!in_sst_files(&dir.path().join("index"), b"zperson-7"));
    assert_eq!(log.erased_in(0, 300).unwrap().len(), ids.len());
    p.shutdown();
}

#[test]
fn an_erasure_clears_postings_merged_by_periodic_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    {
        // Span files merged by RocksDB's monthly compaction, as before
        // spans were kept apart.
        let families = [
            IndexFamily::new(CF_DECISIONS),
            IndexFamily::new(CF_POSTINGS),
        ];
        let log = Arc::new(Log::open_with(dir.path(), &key().verifier(), &families).unwrap());
        let idx = Indexes::open_with_span(log.clone(), 64).unwrap();
        let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
        submit(&p, (0..300).map(submission).collect());
        p.shutdown();
        idx.build().unwrap();
        log.index_compact(CF_POSTINGS).unwrap();
    }
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    assert!(in_sst_files(&index, b"zperson-7"));
    erase(&idx, &p, "e-7");
    assert!(subject(&idx, "zperson-7").is_empty());
    log.flush().unwrap();
    assert!(!in_sst_files(&index, b"zperson-7"));
    assert_eq!(subject(&idx, "s-3").len(), 60);
    p.shutdown();
}
