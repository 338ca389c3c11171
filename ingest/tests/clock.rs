//! The ledger clock (`received_at`) never goes back in log order, across
//! restarts too: a host clock stepped back (NTP, a restored VM, a store
//! restored on another machine) must not give a leaf an earlier
//! `received_at` than the leaf before it, or the time windows of searches
//! and exports would no longer be ranges of leaves (specs/export.md).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{cbor_of, record};
use ingest::index::INGEST_CFS;
use ingest::{check, Indexes, Outcome, Pipeline, PipelineConfig, Submission, Timestamp};
use ledger::Log;
use verifier::envelope::{encode_parts, Envelope};
use verifier::SignerKey;

fn open(dir: &std::path::Path) -> Arc<Log> {
    let key = SignerKey::from_seed("clock.example/log", &[6; 32]).unwrap();
    Arc::new(Log::open_with(dir, &key.verifier(), INGEST_CFS).unwrap())
}

fn received_at(log: &Log, index: u64) -> Timestamp {
    let env = Envelope::decode(&log.entry(index).unwrap()).unwrap();
    Timestamp::parse_text(&env.received_at).unwrap()
}

/// Appends `id`; returns its index and how many group commits held the
/// ledger clock.
fn append_through_pipeline(log: &Arc<Log>, id: &str) -> (u64, usize) {
    let p = Pipeline::start(
        Indexes::open(log.clone()).unwrap(),
        None,
        PipelineConfig::default(),
    );
    let sub = Submission {
        record: check(&cbor_of(&record(id))).unwrap(),
        submitted_by: "gw-eu-1".into(),
    };
    let out = p.submit(vec![sub]).unwrap().blocking_recv().unwrap();
    let held = p.stats().clock_held.load(Ordering::Relaxed);
    p.shutdown();
    match out[..] {
        [Outcome::Appended { index, .. }] => (index, held),
        _ => panic!("{out:?}"),
    }
}

#[test]
fn a_restart_continues_the_clock_from_the_last_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(append_through_pipeline(&log, "before"), (0, 0));
    // The last leaf was received "later" than the host's clock now reads,
    // as after the clock was stepped back: written as the pipeline writes
    // leaves, with a received_at in the future.
    let future = "2100-01-01T00:00:00.5Z";
    let record = check(&cbor_of(&record("future"))).unwrap();
    log.append(&[encode_parts(record.cbor(), future, "gw-eu-1")])
        .unwrap();
    // A raw entry after it (no envelope) does not hide it.
    log.append(&[b"raw"]).unwrap();
    drop(log);

    let log = open(dir.path());
    let (index, held) = append_through_pipeline(&log, "after");
    assert_eq!((index, held), (3, 1), "one group commit held the clock");
    let last = Timestamp::parse_text(future).unwrap();
    assert!(
        received_at(&log, index) >= last,
        "received_at went back: {:?} after {:?}",
        received_at(&log, index),
        last
    );
}
