//! Indexes rebuilt beside the ones in use while the ledger runs
//! (`Indexes::rebuild_beside`): what the index files lost is back, every
//! decision appended meanwhile is found, pruned leaves stay gone, erasures
//! made meanwhile are not undone, and the store opens on the result.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{cbor_of, record};
use ingest::index::{CF_DECISIONS, CF_POSTINGS, INGEST_CFS};
use ingest::query::{search, Query};
use ingest::{check, Indexes, Outcome, Pipeline, PipelineConfig, Plan, Planned, Submission};
use ledger::{LedgerError, Log};
use verifier::erasure::Request;
use verifier::timestamp::Timestamp;
use verifier::SignerKey;

const SPAN: u64 = 64;

fn key() -> SignerKey {
    SignerKey::from_seed("rebuild.example/log", &[8; 32]).unwrap()
}

fn open(dir: &Path) -> (Arc<Log>, Arc<Indexes>) {
    let log = Arc::new(Log::open_with(dir, &key().verifier(), INGEST_CFS).unwrap());
    (log.clone(), Indexes::open_with_span(log, SPAN).unwrap())
}

/// Decision `d-i`: subject `s-(i % 7)`, and a person of its own.
fn submission(i: u64) -> Submission {
    let mut r = record(&format!("d-{i}"));
    r["subject"]["id"] = format!("s-{}", i % 7).into();
    r["subject"]["owner"] = format!("zperson-{i}").into();
    Submission {
        record: check(&cbor_of(&r)).unwrap(),
        submitted_by: "w".into(),
    }
}

/// Appends `d-from` … `d-to-1` in commits of 100: their leaf indexes.
fn append(p: &Pipeline, from: u64, to: u64) -> BTreeMap<u64, u64> {
    let mut at = BTreeMap::new();
    let mut i = from;
    while i < to {
        let end = (i + 100).min(to);
        let subs: Vec<Submission> = (i..end).map(submission).collect();
        let outcomes = loop {
            match p.submit(subs.clone()) {
                Ok(rx) => break rx.blocking_recv().unwrap(),
                // The indexes behind: a moment.
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        for (n, o) in (i..end).zip(outcomes) {
            match o {
                Outcome::Appended { index, .. } => at.insert(n, index),
                other => panic!("d-{n}: {other:?}"),
            };
        }
        i = end;
    }
    at
}

fn query(idx: &Indexes, q: Query) -> Vec<u64> {
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = search(idx, &q, cursor, 1000).unwrap();
        found.extend(page.indexes);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return found,
        }
    }
}

fn subject(idx: &Indexes, s: &str) -> Vec<u64> {
    query(
        idx,
        Query {
            subject: Some(s.into()),
            ..Query::default()
        },
    )
}

fn owner(idx: &Indexes, o: &str) -> Vec<u64> {
    query(
        idx,
        Query {
            owner: Some(o.into()),
            ..Query::default()
        },
    )
}

/// Every decision of `at` (decision → leaf) found where it is, by its id
/// and by its subject; none of `gone`.
fn all_found(idx: &Indexes, at: &BTreeMap<u64, u64>, gone: &[u64]) {
    for (&d, &leaf) in at {
        let found = idx.lookup_decision(&format!("d-{d}")).unwrap();
        assert_eq!(found.map(|f| f.0), Some(leaf), "d-{d}");
    }
    for d in gone {
        assert_eq!(
            idx.lookup_decision(&format!("d-{d}")).unwrap(),
            None,
            "d-{d}"
        );
    }
    for s in 0..7 {
        let want: Vec<u64> = at
            .iter()
            .filter(|(d, _)| *d % 7 == s)
            .map(|(_, &leaf)| leaf)
            .collect();
        assert_eq!(subject(idx, &format!("s-{s}")), want, "s-{s}");
    }
}

fn nothing_left_beside(dir: &Path) {
    assert!(dir.join("index").is_dir());
    assert!(!dir.join("index.rebuilding").exists());
    assert!(!dir.join("index.old").exists());
}

#[test]
fn a_rebuild_beside_puts_back_what_the_files_lost_while_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    let mut at = append(&p, 0, 2000);
    idx.build().unwrap();
    // Retention removed the entries below leaf 512 (whole bundles).
    let pruned = idx.prune(600).unwrap();
    assert_eq!((pruned.from, pruned.to), (0, 512));
    let gone: Vec<u64> = (0..512).collect();
    at.retain(|d, _| *d >= 512);
    // The index files lost two ids and a whole span's postings (with its
    // mark).
    log.index_delete(CF_DECISIONS, &[b"d-700".to_vec(), b"d-1500".to_vec()], &[])
        .unwrap();
    let span = |s: u64| s.to_be_bytes().to_vec();
    log.index_delete(CF_POSTINGS, &[], &[(span(768), span(832))])
        .unwrap();
    assert_eq!(idx.lookup_decision("d-700").unwrap(), None);
    assert!(subject(&idx, "s-0").len() < at.values().filter(|l| **l % 7 == 0).count());

    // Rebuilt while appends go on.
    let more = std::thread::scope(|scope| {
        let appending = scope.spawn(|| append(&p, 2000, 8000));
        let rebuilt = idx.rebuild_beside().unwrap();
        assert_eq!(idx.rebuilt_to(), 0, "no rebuild runs now");
        assert_eq!(rebuilt.from, 512);
        assert!(rebuilt.to >= 1984, "{rebuilt:?}");
        appending.join().unwrap()
    });
    at.extend(more);
    p.shutdown();
    idx.build().unwrap();
    all_found(&idx, &at, &gone);
    assert_eq!(owner(&idx, "zperson-700"), vec![700]);
    assert_eq!(owner(&idx, "zperson-100"), Vec::<u64>::new());
    assert!(!log.indexes_marked_damaged());
    nothing_left_beside(dir.path());

    // The store opens on it as it is.
    drop(idx);
    drop(log);
    let (log, idx) = open(dir.path());
    all_found(&idx, &at, &gone);
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!(report.entries, 8000 - 512);
    assert!(log.check_indexes().unwrap() > 0);
}

fn ask() -> Request<'static> {
    Request {
        requested_by: "dpo@example.com",
        reason: "GDPR art. 17 request",
        ticket: Some("DSR-9"),
    }
}

fn erase(idx: &Indexes, p: &Pipeline, id: &str) -> u64 {
    let now = Timestamp(time::OffsetDateTime::now_utc());
    let planned: Planned = match idx.plan_erasure(id, &ask(), &now, None).unwrap() {
        Plan::Erase(p) => *p,
        Plan::Done(e) => panic!("{id} was erased before: {e:?}"),
    };
    let outcome = p.submit_one(planned.record.clone()).unwrap();
    idx.log().sign_checkpoint(&key()).unwrap();
    idx.finish_erasure(&planned, &outcome).unwrap().index
}

#[test]
fn erasures_made_during_a_rebuild_are_not_undone_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    let at = append(&p, 0, 20_000);
    idx.build().unwrap();
    // Most below leaf 4,000, which the rebuild has made by the time they
    // are erased; some above.
    let erased: Vec<u64> = (0..24).map(|k| (k * 827 + 13) % 5_000).collect();
    let (rebuilds, refused) = std::thread::scope(|scope| {
        let erasing = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            for &d in &erased {
                assert_eq!(erase(&idx, &p, &format!("d-{d}")), at[&d]);
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        // Rebuilt while the erasures go on: one put in place must not
        // bring back what they took out.
        let (mut rebuilds, mut refused) = (0, 0);
        while rebuilds == 0 || !erasing.is_finished() {
            match idx.rebuild_beside() {
                Ok(_) => rebuilds += 1,
                Err(LedgerError::RebuildNotPlaced(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        erasing.join().unwrap();
        (rebuilds, refused)
    });
    eprintln!("{rebuilds} rebuilds put in place, {refused} given up during the erasures");
    let check = |idx: &Indexes| {
        for &d in &erased {
            assert_eq!(
                owner(idx, &format!("zperson-{d}")),
                Vec::<u64>::new(),
                "d-{d}"
            );
            // Its id still answers a retry.
            assert_eq!(
                idx.lookup_decision(&format!("d-{d}")).unwrap().unwrap().0,
                at[&d]
            );
        }
        for d in [1u64, 4_001, 19_999] {
            assert_eq!(owner(idx, &format!("zperson-{d}")), vec![at[&d]]);
        }
    };
    check(&idx);
    p.shutdown();
    nothing_left_beside(dir.path());
    drop(idx);
    drop(log);
    let (log, idx) = open(dir.path());
    check(&idx);
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!(report.erased, erased.len() as u64);
}

#[test]
fn stopped_indexes_end_a_rebuild_and_a_prune_at_their_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let (log, idx) = open(dir.path());
    let p = Pipeline::start(idx.clone(), None, PipelineConfig::default());
    let at = append(&p, 0, 600);
    p.shutdown();
    idx.build().unwrap();
    idx.stop();
    assert!(idx.stopping());
    // The rebuild ends before its first span, its database deleted.
    match idx.rebuild_beside() {
        Err(LedgerError::RebuildNotPlaced(why)) => {
            assert_eq!(why, ingest::index::rebuild::STOPPED)
        }
        other => panic!("{other:?}"),
    }
    nothing_left_beside(dir.path());
    // The prune ends before its first step: nothing removed.
    let pruned = idx.prune(512).unwrap();
    assert_eq!((pruned.from, pruned.to), (0, 0));
    assert_eq!(log.first_kept(), 0);
    all_found(&idx, &at, &[]);
}
