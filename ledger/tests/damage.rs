//! Indexes marked damaged (`db/index.damaged`) are deleted when the store
//! is next opened with them, so that they are rebuilt from the leaves; an
//! audit's open leaves them to be read (specs/storage.md, "Decision
//! indexes"). The damage itself, met by a running ledgerd, is in
//! tests/tests/damage.rs.

use std::path::Path;

use ledger::Log;
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

/// Opens the log in `dir` with one index column family, `terms`.
fn open(dir: &Path) -> Log {
    Log::open_with(dir, &signer().verifier(), &["terms"]).unwrap()
}

/// A store holding one leaf and one index value, and the mark.
fn marked_store(dir: &Path) {
    let log = open(dir);
    log.append(&[b"decision-0".to_vec()]).unwrap();
    log.index_put("terms", b"k", b"v").unwrap();
    drop(log);
    std::fs::write(dir.join("index.damaged"), "the indexes … are damaged").unwrap();
}

#[test]
fn an_open_deletes_indexes_marked_damaged_and_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    let log = open(dir.path());
    assert_eq!(log.index_get("terms", b"k").unwrap(), None);
    assert!(!dir.path().join("index.damaged").exists());
    assert_eq!(log.size(), 1, "the log is untouched");
    // Unmarked, the indexes are kept.
    log.index_put("terms", b"k", b"v").unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.index_get("terms", b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn an_audit_reads_marked_indexes_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    let log = Log::open_for_audit(dir.path(), &signer().verifier(), &["terms"]).unwrap();
    assert_eq!(log.index_get("terms", b"k").unwrap(), Some(b"v".to_vec()));
    drop(log);
    assert!(dir.path().join("index.damaged").exists());
}

#[test]
fn a_mark_left_after_its_indexes_went_is_finished() {
    // A crash after the index database was deleted, before the mark was.
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    std::fs::remove_dir_all(ledger::index_dir(dir.path())).unwrap();
    let log = open(dir.path());
    assert_eq!(log.index_get("terms", b"k").unwrap(), None);
    assert!(!dir.path().join("index.damaged").exists());
}

#[test]
fn a_log_opened_without_indexes_keeps_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    let log = Log::open(dir.path(), &signer().verifier()).unwrap();
    assert_eq!(log.size(), 1);
    drop(log);
    assert!(dir.path().join("index.damaged").exists());
}
