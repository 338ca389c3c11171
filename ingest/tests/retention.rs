//! Retention over the indexes (`Indexes::prune`): pruned decisions are
//! neither found nor linked, nor held in the idempotency index; kept ones
//! are found as before, also when the indexes are rebuilt from the kept
//! leaves; an export window reaching back past the kept leaves is refused
//! until the ledger's retention record is logged, and then complete from
//! the first kept leaf.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{cbor_of, in_sst_files, record};
use ingest::index::{CF_DECISIONS, CF_POSTINGS, INGEST_CFS};
use ingest::query::{search, Query};
use ingest::{check, Indexes, Outcome, Pipeline, PipelineConfig, Submission};
use ledger::{IndexFamily, LedgerError, Log};
use verifier::decision::LoggedDecision;
use verifier::SignerKey;

const SIZE: u64 = 1000;

fn key() -> SignerKey {
    SignerKey::from_seed("retention.example/log", &[5; 32]).unwrap()
}

fn open(dir: &Path, span: u64) -> (Arc<Log>, Arc<Indexes>) {
    let log = Arc::new(Log::open_with(dir, &key().verifier(), INGEST_CFS).unwrap());
    let idx = Indexes::open_with_span(log.clone(), span).unwrap();
    (log, idx)
}

fn submission(i: u64) -> Submission {
    let mut r = record(&format!("d-{i}"));
    r["subject"]["id"] = format!("s-{}", i % 10).into();
    r["context"]["request_id"] = format!("req-{}", i / 2).into();
    r["context"]["trace_id"] = format!("trace-{i}").into();
    if i >= 100 {
        r["context"]["parent_decision_id"] = format!("d-{}", i - 100).into();
    }
    if i == 100 || i == 750 || i == 770 {
        // Terms of their own, to be looked for in the index's files.
        r["resource"]["id"] = format!("zresource-of-{i}").into();
    }
    Submission {
        record: check(&cbor_of(&r)).unwrap(),
        submitted_by: "w".into(),
    }
}

/// Appends `d-0` … `d-999` in commits of 50 a few milliseconds apart, so
/// that `received_at` takes many values.
fn fill(idx: &Arc<Indexes>) {
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    for first in (0..SIZE).step_by(50) {
        let subs = (first..first + 50).map(submission).collect();
        p.submit(subs).unwrap().blocking_recv().unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    p.shutdown();
    idx.build().unwrap();
}

fn all(idx: &Indexes, q: &Query) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = search(idx, q, after, 100).unwrap();
        out.extend(page.indexes);
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn subject(s: &str) -> Query {
    Query {
        subject: Some(s.into()),
        ..Query::default()
    }
}

/// The kept leaves of `d-*` with `i % 10 == s` (leaf i holds `d-i`).
fn model(s: u64, first_kept: u64) -> Vec<u64> {
    (first_kept..SIZE).filter(|i| i % 10 == s).collect()
}

fn received_at(log: &Log, i: u64) -> ingest::Timestamp {
    LoggedDecision::from_leaf(&log.entry(i).unwrap())
        .unwrap()
        .received_at
}

#[test]
fn pruned_decisions_are_not_found_and_kept_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path(), 64);
    fill(&idx);
    assert_eq!(idx.built(), 960);
    let first_of_600 = log
        .first_received_at_or_after(received_at(&log, 600), SIZE)
        .unwrap();
    let p = idx.prune_received_before(received_at(&log, 600)).unwrap();
    // Whole bundles of 256, below the first leaf received with leaf 600.
    assert_eq!((p.from, p.to), (0, first_of_600 / 256 * 256));
    assert_eq!(p.to, 512);
    assert_eq!(p.ids, 512);
    assert_eq!(p.postings_below, 512);
    assert_eq!(log.first_kept(), 512);
    // The files of the spans below are gone, with the terms they held.
    assert!(!in_sst_files(
        &dir.path().join("index"),
        b"zresource-of-100"
    ));
    assert!(in_sst_files(&dir.path().join("index"), b"zresource-of-750"));

    // The idempotency index holds no pruned id; a retry of one is a new
    // decision (its record is no longer kept).
    assert_eq!(idx.lookup_decision("d-5").unwrap(), None);
    assert_eq!(idx.lookup_decision("d-511").unwrap(), None);
    assert_eq!(idx.lookup_decision("d-512").unwrap().unwrap().0, 512);
    // Search: only kept leaves, with or without a term, with a time window
    // reaching back past them.
    for s in [0, 3, 9] {
        assert_eq!(all(&idx, &subject(&format!("s-{s}"))), model(s, 512));
    }
    assert_eq!(
        all(&idx, &Query::default()),
        (512..SIZE).collect::<Vec<_>>()
    );
    let since_start = Query {
        received_from: Some(received_at(&log, 520)),
        ..Query::default()
    };
    assert_eq!(all(&idx, &since_start).first(), Some(&512));
    // Request 255 had leaves 510 (pruned) and 511 (pruned); 256 has 512, 513.
    let req = |r: &str| Query {
        request_id: Some(r.into()),
        ..Query::default()
    };
    assert!(all(&idx, &req("req-255")).is_empty());
    assert_eq!(all(&idx, &req("req-256")), vec![512, 513]);
    // A chain does not reach past the kept leaves: 612's parent is 512,
    // whose parent (412) is pruned.
    let chain = ingest::chain::collect(&idx, 612, SIZE, 100).unwrap();
    assert!(chain.indexes.iter().all(|&i| i >= 512), "{chain:?}");
    assert!(chain.indexes.contains(&512));

    // An export window from before the first kept leaf cannot be shown
    // complete; one from after it can.
    let to = received_at(&log, 999);
    log.sign_checkpoint(&key()).unwrap();
    match log.export_head(received_at(&log, 512), to, Default::default(), None) {
        Err(
            e @ LedgerError::WindowPruned {
                first_kept: 512, ..
            },
        ) => {
            assert!(e.to_string().contains("no retention record"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let later = log
        .first_received_at_or_after(received_at(&log, 700), SIZE)
        .unwrap();
    let head = log
        .export_head(received_at(&log, 700), to, Default::default(), None)
        .unwrap();
    assert_eq!(head.first, later);

    // A retried pruned decision is appended anew.
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    let out = p
        .submit(vec![submission(5)])
        .unwrap()
        .blocking_recv()
        .unwrap();
    assert!(
        matches!(out[0], Outcome::Appended { index: 1000, .. }),
        "{out:?}"
    );
    p.shutdown();
}

#[test]
fn indexes_rebuilt_after_a_prune_hold_only_kept_leaves() {
    let dir = tempfile::tempdir().unwrap();
    // Spans of 100: the first kept leaf (512) is inside one.
    let (log, idx) = open(dir.path(), 100);
    fill(&idx);
    let p = idx.prune(800).unwrap();
    assert_eq!((p.to, p.postings_below), (768, 700));
    // The built span 700..800 holds the first kept leaf: its postings are
    // rewritten without the leaves below it, and the removed terms leave
    // the index's files.
    assert!(p.trimmed > 0, "{p:?}");
    let posted = posted_leaves(&log);
    assert!(
        posted.iter().all(|&i| i >= 768) && posted.contains(&768),
        "{posted:?}"
    );
    assert!(!in_sst_files(
        &dir.path().join("index"),
        b"zresource-of-750"
    ));
    assert!(in_sst_files(&dir.path().join("index"), b"zresource-of-770"));
    let resource = |r: &str| Query {
        resource: Some(r.into()),
        ..Query::default()
    };
    assert_eq!(all(&idx, &resource("zresource-of-770")), vec![770]);
    assert!(all(&idx, &resource("zresource-of-750")).is_empty());
    // Nothing is left to trim: a prune that moves nothing changes nothing.
    assert_eq!(idx.prune(800).unwrap().trimmed, 0);
    drop((idx, log));
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let (log, idx) = open(dir.path(), 100);
    assert_eq!(log.first_kept(), 768);
    assert_eq!(idx.built(), 1000);
    for s in [0, 7] {
        assert_eq!(all(&idx, &subject(&format!("s-{s}"))), model(s, 768));
    }
    assert_eq!(idx.lookup_decision("d-767").unwrap(), None);
    assert_eq!(idx.lookup_decision("d-768").unwrap().unwrap().0, 768);
    assert_eq!(idx.lookup_decision("d-999").unwrap().unwrap().0, 999);
    // Pruning again removes nothing more and keeps the newest bundle.
    let again = idx.prune(SIZE).unwrap();
    assert_eq!((again.from, again.to), (768, 768));
}

/// [`open`], with the postings' spans not kept apart by compactions, as
/// before they were: RocksDB's periodic compaction merged them.
fn open_merging(dir: &Path, span: u64) -> (Arc<Log>, Arc<Indexes>) {
    let families = [
        IndexFamily::new(CF_DECISIONS),
        IndexFamily::new(CF_POSTINGS),
    ];
    let log = Arc::new(Log::open_with(dir, &key().verifier(), &families).unwrap());
    let idx = Indexes::open_with_span(log.clone(), span).unwrap();
    (log, idx)
}

#[test]
fn a_prune_clears_postings_merged_by_periodic_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    // A store whose span files RocksDB merged (its monthly compaction).
    let (log, idx) = open_merging(dir.path(), 100);
    fill(&idx);
    log.index_compact(CF_POSTINGS).unwrap();
    drop((idx, log));
    let (log, idx) = open(dir.path(), 100);
    assert!(in_sst_files(&index, b"zresource-of-100"));
    let p = idx.prune(800).unwrap();
    assert_eq!((p.to, p.postings_below), (768, 700));
    // Spans wholly below, and the leaves below 768 of the span 700..800.
    assert!(!in_sst_files(&index, b"zresource-of-100"));
    assert!(!in_sst_files(&index, b"zresource-of-750"));
    assert!(in_sst_files(&index, b"zresource-of-770"));
    for s in [0, 7] {
        assert_eq!(all(&idx, &subject(&format!("s-{s}"))), model(s, 768));
    }
    // RocksDB's next periodic compaction keeps each span in files of its
    // own, so the next prune deletes the removed spans' files.
    log.index_compact(CF_POSTINGS).unwrap();
    let p = idx.prune(SIZE).unwrap();
    assert_eq!(p.to, 768);
    assert_eq!(log.index_sorted_runs(CF_POSTINGS).unwrap(), 1);
    assert!(in_sst_files(&index, b"zresource-of-770"));
}

#[test]
fn a_span_whose_rewrite_was_cut_short_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path(), 100);
    fill(&idx);
    assert_eq!(idx.prune(800).unwrap().to, 768);
    // As a crash while span 700's postings file was replaced leaves it:
    // without postings, its mark too.
    let span = (700u64.to_be_bytes().to_vec(), 701u64.to_be_bytes().to_vec());
    log.index_delete(ingest::index::CF_POSTINGS, &[], &[span])
        .unwrap();
    assert_ne!(all(&idx, &subject("s-3")), model(3, 768));
    drop((idx, log));
    let (log, idx) = open(dir.path(), 100);
    for s in [0, 3, 9] {
        assert_eq!(all(&idx, &subject(&format!("s-{s}"))), model(s, 768));
    }
    let posted = posted_leaves(&log);
    assert!(
        posted.iter().all(|&i| i >= 768) && posted.contains(&768) && posted.contains(&799),
        "{posted:?}"
    );
}

#[test]
fn a_legal_hold_keeps_what_it_covers_until_it_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path(), 64);
    fill(&idx);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let since = received_at(&log, 300);
    let first_held = log.first_received_at_or_after(since, SIZE).unwrap();
    assert!(first_held <= 300 && first_held > 256, "{first_held}");
    ledger::holds::place(&data, since, since, "case 7").unwrap();
    // A prune up to leaf 900's time stops at the bundle holding the first
    // held leaf.
    let (p, hold) = idx
        .prune_received_before_held(received_at(&log, 900), &data)
        .unwrap();
    assert_eq!((p.to, p.held), (256, true));
    assert_eq!(hold.map(|h| h.reason), Some("case 7".to_string()));
    let id = format!("d-{first_held}");
    assert_eq!(idx.lookup_decision(&id).unwrap().unwrap().0, first_held);
    assert_eq!(all(&idx, &subject("s-3")), model(3, 256));
    // Holds that cannot be read stop every prune.
    let holds = data.join(ledger::holds::HOLDS_FILE);
    let text = std::fs::read_to_string(&holds).unwrap();
    std::fs::write(&holds, "not a hold\n").unwrap();
    match idx.prune_received_before_held(received_at(&log, 900), &data) {
        Err(LedgerError::Holds(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(log.first_kept(), 256);
    // Released, retention goes on where it was asked to.
    std::fs::write(&holds, text).unwrap();
    let held = ledger::holds::load(&data).unwrap();
    ledger::holds::release(&data, &held[0].id).unwrap();
    let (p, hold) = idx
        .prune_received_before_held(received_at(&log, 900), &data)
        .unwrap();
    let want = log
        .first_received_at_or_after(received_at(&log, 900), SIZE)
        .unwrap()
        / 256
        * 256;
    assert_eq!((p.from, p.to, p.held, hold), (256, want, false, None));
    assert_eq!(idx.lookup_decision(&id).unwrap(), None);
}

/// Every leaf index the built postings hold (the marks left out).
fn posted_leaves(log: &Log) -> Vec<u64> {
    let mut out = Vec::new();
    log.index_scan_ranges(ingest::index::CF_POSTINGS, [(vec![], vec![])], |k, v| {
        if k.len() != 9 || k[8] != 0xff {
            out.extend(ingest::index::decode_list(v).unwrap());
        }
        Ok::<bool, LedgerError>(true)
    })
    .unwrap();
    out
}

#[test]
fn leaves_of_a_span_in_memory_are_pruned_and_left_out_when_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    // Spans of 512: leaves 512..1000 are in memory.
    let (log, idx) = open(dir.path(), 512);
    fill(&idx);
    assert_eq!(idx.built(), 512);
    assert!(posted_leaves(&log).contains(&3));
    let p = idx.prune(900).unwrap();
    // Whole bundles, the span in memory too; span 0's postings go, its
    // mark (the newest built) stays.
    assert_eq!((p.to, p.ids, p.postings_below), (768, 512, 512));
    assert_eq!(idx.built(), 512);
    assert!(posted_leaves(&log).is_empty());
    // Span 0's file was replaced by one holding only its mark.
    assert!(!in_sst_files(
        &dir.path().join("index"),
        b"zresource-of-100"
    ));
    for id in ["d-5", "d-600", "d-767"] {
        assert_eq!(idx.lookup_decision(id).unwrap(), None, "{id}");
    }
    assert_eq!(idx.lookup_decision("d-768").unwrap().unwrap().0, 768);
    for s in [2, 8] {
        assert_eq!(all(&idx, &subject(&format!("s-{s}"))), model(s, 768));
    }
    // Reopened before the span is built: its leaves below the first kept
    // one are read back as leaves without facts.
    drop((idx, log));
    let (log, idx) = open(dir.path(), 512);
    assert_eq!((log.first_kept(), idx.built()), (768, 512));
    assert_eq!(idx.lookup_decision("d-600").unwrap(), None);
    assert_eq!(all(&idx, &subject("s-2")), model(2, 768));
    // The span fills and is built without the pruned leaves.
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    let subs = (SIZE..SIZE + 24).map(submission).collect();
    p.submit(subs).unwrap().blocking_recv().unwrap();
    p.shutdown();
    idx.build().unwrap();
    assert_eq!(idx.built(), 1024);
    let posted = posted_leaves(&log);
    assert!(
        posted.iter().all(|&i| i >= 768) && posted.contains(&768),
        "{posted:?}"
    );
    assert_eq!(idx.lookup_decision("d-600").unwrap(), None);
    assert_eq!(idx.lookup_decision("d-800").unwrap().unwrap().0, 800);
    drop((idx, log));
    let (log, idx) = open(dir.path(), 512);
    assert_eq!((log.first_kept(), idx.built()), (768, 1024));
    assert_eq!(all(&idx, &subject("s-1")).first(), Some(&771));
}

#[test]
fn an_export_reaching_below_the_first_kept_leaf_stands_on_the_retention_record() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path(), 64);
    fill(&idx);
    let now = received_at(&log, SIZE - 1);
    // Nothing pruned: no record is due.
    assert!(idx.retention_record("test", "why", &now).unwrap().is_none());
    let [at_0, at_512, at_768, to] = [0, 512, 768, 900].map(|i| received_at(&log, i));
    idx.prune(512).unwrap();
    log.sign_checkpoint(&key()).unwrap();
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    let by = idx
        .log_retention("test", "retention of 1h", &now, |r| p.submit_one(r))
        .unwrap();
    assert_eq!(by, Some(SIZE));
    assert_eq!(log.retention_record().unwrap(), Some((512, SIZE)));
    // Logged once: asked again, none is due.
    assert_eq!(
        idx.log_retention("test", "retention of 1h", &now, |r| p.submit_one(r))
            .unwrap(),
        None
    );
    // Not in the signed checkpoint: the export says to wait for one.
    match log.export_head(at_0, to, Default::default(), None) {
        Err(
            e @ LedgerError::WindowPruned {
                record: Some(1000),
                size: 1000,
                ..
            },
        ) => {
            assert!(e.to_string().contains("not in the checkpoint"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    log.sign_checkpoint(&key()).unwrap();
    // From any time at or before the first kept leaf's: the range starts
    // there, and the package says what retention removed.
    for from in [at_0, at_512] {
        let head = log.export_head(from, to, Default::default(), None).unwrap();
        assert_eq!((head.first, head.before.as_ref()), (512, None));
        assert_eq!(head.retained.as_ref().map(|r| r.index), Some(SIZE));
        let v = common::package(&log, head, &key().verifier());
        assert!(
            v.to_string()
                .starts_with("complete from leaf 512, the first the log keeps"),
            "{v}"
        );
    }
    // A later prune moves the first kept leaf: its record is due again.
    log.prune(768).unwrap();
    assert!(matches!(
        log.export_head(at_768, to, Default::default(), None),
        Err(LedgerError::WindowPruned { record: None, .. })
    ));
    let by = idx
        .log_retention("test", "retention of 1h", &now, |r| p.submit_one(r))
        .unwrap()
        .unwrap();
    log.sign_checkpoint(&key()).unwrap();
    assert_eq!(log.retention_record().unwrap(), Some((768, by)));
    let head = log
        .export_head(received_at(&log, 768), to, Default::default(), None)
        .unwrap();
    assert_eq!(head.first, 768);
    common::package(&log, head, &key().verifier());
    p.shutdown();
}

#[test]
fn records_decided_before_the_first_kept_one_was_received_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path(), 100);
    fill(&idx);
    // Nothing removed: any time is taken.
    assert_eq!(idx.kept_from().unwrap(), None);
    idx.prune(600).unwrap();
    assert_eq!(idx.kept_from().unwrap(), Some(received_at(&log, 512)));
    // Read again once the first kept leaf moves.
    idx.prune(800).unwrap();
    let from = received_at(&log, 768);
    assert_eq!(idx.kept_from().unwrap(), Some(from));
    // A retry of a removed decision: its id is no longer in the index,
    // and its time is before `from`.
    assert_eq!(idx.lookup_decision("d-5").unwrap(), None);
    let sender = ingest::input::Sender::relay("gw").keeping_from(idx.kept_from().unwrap());
    let again = record("d-5");
    let checked = ingest::input::parse_body(
        ingest::input::Format::Json,
        again.to_string().as_bytes(),
        &sender,
    )
    .unwrap();
    let refused = checked[0].as_ref().unwrap_err();
    assert!(
        refused.reason.starts_with("time: ") && refused.reason.contains(&from.canonical()),
        "{refused:?}"
    );
}
