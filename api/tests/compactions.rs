//! ledgerd's job that finishes the compactions a stop or a crash cut
//! short (api/src/compactions.rs, specs/storage.md "Compactions cut
//! short").

use std::sync::Arc;

use api::compactions::start_owed_compactions;
use ledger::Log;
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

fn open(dir: &std::path::Path) -> Arc<Log> {
    Arc::new(Log::open(dir, &signer().verifier()).unwrap())
}

#[test]
fn the_job_finishes_what_is_owed_and_is_not_started_when_nothing_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert!(start_owed_compactions(&log).unwrap().is_none());
    let entries: Vec<Vec<u8>> = (0..600u64).map(|i| i.to_be_bytes().to_vec()).collect();
    log.append(&entries).unwrap();
    log.sign_checkpoint(&signer()).unwrap();
    // A prune whose compaction a stop cut short.
    log.stop_compactions();
    assert_eq!(log.prune(600).unwrap(), 512);
    assert!(log.compactions_owed().unwrap().pruned);
    drop(log);

    let log = open(dir.path());
    let job = start_owed_compactions(&log).unwrap().expect("a job");
    job.join().unwrap();
    assert!(log.compactions_owed().unwrap().is_empty());
    assert!(start_owed_compactions(&log).unwrap().is_none());
}
