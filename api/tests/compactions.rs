//! ledgerd's job that finishes the compactions owed (api/src/compactions.rs,
//! specs/storage.md "Compactions cut short"); the ones that fail while it
//! runs, on a full disk: tests/tests/erasure.rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
fn the_job_finishes_what_is_owed_and_ends_at_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let entries: Vec<Vec<u8>> = (0..600u64).map(|i| i.to_be_bytes().to_vec()).collect();
    log.append(&entries).unwrap();
    log.sign_checkpoint(&signer()).unwrap();
    // A prune whose compaction a stop cut short.
    log.stop_compactions();
    assert_eq!(log.prune(600).unwrap(), 512);
    assert!(log.compactions_owed().unwrap().pruned);
    drop(log);

    let log = open(dir.path());
    let job = start_owed_compactions(&log, Duration::from_millis(50)).unwrap();
    wait_until(|| log.compactions_owed().unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!job.is_finished(), "the job waits for failed compactions");
    log.stop_compactions();
    wait_until(|| job.is_finished());
    job.join().unwrap();
}

/// Waits up to 10 s for `done`.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}
