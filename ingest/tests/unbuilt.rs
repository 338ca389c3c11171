//! Span builds run behind the acknowledgements; the leaves waiting for
//! them are held in memory, and `PipelineConfig::max_unbuilt` bounds them:
//! past it, submissions are refused as busy until the indexer catches up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::record;
use ingest::index::INGEST_CFS;
use ingest::{Indexes, Outcome, Pipeline, PipelineConfig, Submission};
use ledger::Log;

#[test]
fn leaves_waiting_for_their_index_build_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let signer = verifier::SignerKey::from_seed("unbuilt.test/log", &[5; 32]).unwrap();
    let log =
        Arc::new(Log::open_with(&dir.path().join("db"), &signer.verifier(), INGEST_CFS).unwrap());
    // Spans of 4 leaves: each 16-record commit completes 4 spans, and
    // building a span (two SST files ingested) takes longer than that.
    let indexes = Indexes::open_with_span(log.clone(), 4).unwrap();
    let cfg = PipelineConfig {
        queue_capacity: 64,
        max_unbuilt: 8,
        ..PipelineConfig::default()
    };
    let bound = cfg.max_unbuilt + cfg.queue_capacity as u64;
    let p = Pipeline::start(indexes.clone(), None, cfg);
    let by: Arc<str> = "gw".into();
    let (mut refused, mut worst) = (0, 0);
    for job in 0..60 {
        let mut subs: Vec<Submission> = (0..16)
            .map(|i| {
                let v = ingest::record::from_json(&record(&format!("u{job}-{i}")));
                Submission {
                    record: ingest::input::check_record(&v, 0, &ingest::input::Sender::relay("gw"))
                        .unwrap(),
                    submitted_by: by.clone(),
                }
            })
            .collect();
        let rx = loop {
            match p.submit(subs) {
                Ok(rx) => break rx,
                Err(busy) => {
                    assert_eq!(busy.subs.len(), 16, "the refused records come back");
                    if busy.unbuilt > 0 {
                        assert!(busy.to_string().contains("indexes are"), "{busy}");
                        refused += 1;
                    }
                    subs = busy.subs;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        };
        let out = rx.blocking_recv().unwrap();
        assert!(out.iter().all(|o| matches!(o, Outcome::Appended { .. })));
        worst = worst.max(indexes.unbuilt());
        assert!(
            indexes.unbuilt() <= bound,
            "{} leaves wait for their index build (bound {bound})",
            indexes.unbuilt()
        );
    }
    assert!(
        refused > 0,
        "the indexer never fell behind (worst lag {worst})"
    );
    assert_eq!(log.size(), 60 * 16, "every record appended once");
    p.shutdown();
}
