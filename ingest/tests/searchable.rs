//! A search covers the leaves whose index terms are in place, never more:
//! a leaf just written is not counted in the size a search reports until
//! the acknowledger has added its terms (else a search "complete at size
//! N" could miss it, and a follower paging by cursor would skip it).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::record;
use ingest::index::INGEST_CFS;
use ingest::query::{search, Query, QueryError};
use ingest::{Indexes, Pipeline, PipelineConfig, Submission};
use ledger::Log;

#[test]
fn a_leaf_written_but_not_yet_indexed_is_not_searched() {
    let dir = tempfile::tempdir().unwrap();
    let signer = verifier::SignerKey::from_seed("searchable.test/log", &[6; 32]).unwrap();
    let log = Arc::new(Log::open_with(dir.path(), &signer.verifier(), INGEST_CFS).unwrap());
    let indexes = Indexes::open_with_span(log.clone(), 4).unwrap();
    let p = Pipeline::start(indexes.clone(), None, PipelineConfig::default());
    let subs: Vec<Submission> = (0..3)
        .map(|i| {
            let v = ingest::record::from_json(&record(&format!("s-{i}")));
            Submission {
                record: ingest::input::check_record(&v, 0, &ingest::input::Sender::relay("gw"))
                    .unwrap(),
                submitted_by: "gw".into(),
            }
        })
        .collect();
    p.submit(subs).unwrap().blocking_recv().unwrap();
    p.shutdown();
    assert_eq!(indexes.searchable(), 3);

    // Written, as the writer stage does, but its terms not yet added.
    log.append(&[b"a leaf the acknowledger has not reached".as_slice()])
        .unwrap();
    assert_eq!((log.size(), indexes.searchable()), (4, 3));
    let page = search(&indexes, &Query::default(), None, 10).unwrap();
    assert_eq!(
        (page.indexes, page.next, page.size),
        (vec![0, 1, 2], None, 3)
    );
    let subject = Query {
        subject: Some("alice@example.com".into()),
        ..Query::default()
    };
    assert_eq!(search(&indexes, &subject, None, 10).unwrap().size, 3);
    // Pinned past it: ask again (503 over HTTP), not a silent short answer.
    let at = Query {
        at: Some(4),
        ..Query::default()
    };
    assert!(matches!(
        search(&indexes, &at, None, 10),
        Err(QueryError::AtNotIndexed {
            at: 4,
            searchable: 3
        })
    ));
    assert_eq!(indexes.wait_searchable(3, Duration::ZERO), Ok(()));
    assert_eq!(indexes.wait_searchable(4, Duration::from_millis(5)), Err(3));
}
