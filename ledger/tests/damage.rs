//! Indexes marked damaged (`db/index.damaged`) are deleted when the store
//! is next opened with them, so that they are rebuilt from the leaves; an
//! audit's open leaves them to be read, and ledgerd's keeps them to
//! rebuild beside and put in place while it serves (specs/storage.md,
//! "Decision indexes"). The damage itself, met by a running ledgerd, is
//! in tests/tests/damage.rs.

use std::path::Path;

use ledger::{IndexFamily, Log};
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

/// Opens the log in `dir` with one index column family, `terms`.
fn open(dir: &Path) -> Log {
    Log::open_with(dir, &signer().verifier(), &[IndexFamily::new("terms")]).unwrap()
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
    let log = Log::open_for_audit(
        dir.path(),
        &signer().verifier(),
        &[IndexFamily::new("terms")],
    )
    .unwrap();
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

#[test]
fn ledgerd_s_open_keeps_marked_indexes_to_rebuild_them_beside() {
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    let log = Log::open_keeping_marked(
        dir.path(),
        &signer().verifier(),
        &[IndexFamily::new("terms")],
    )
    .unwrap();
    assert_eq!(log.index_get("terms", b"k").unwrap(), Some(b"v".to_vec()));
    assert!(log.indexes_marked_damaged());
    assert!(dir.path().join("index.damaged").exists());

    // Rebuilt beside and put in place while a reader keeps reading.
    let spare = log.spare_indexes().unwrap();
    assert!(dir.path().join("index.rebuilding").is_dir());
    spare
        .ingest_sorted_with("terms", |sink| {
            sink.put(b"k", b"v2")?;
            sink.put(b"l", b"w")
        })
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reading = scope.spawn(|| {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = log.index_get("terms", b"k").unwrap().unwrap();
                assert!(v == b"v" || v == b"v2", "{v:?}");
                reads += 1;
            }
            reads
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        log.replace_indexes(spare).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reading.join().unwrap() > 0);
    });
    assert_eq!(log.index_get("terms", b"k").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(log.index_get("terms", b"l").unwrap(), Some(b"w".to_vec()));
    assert!(!log.indexes_marked_damaged());
    for gone in ["index.damaged", "index.rebuilding", "index.old"] {
        assert!(!dir.path().join(gone).exists(), "{gone}");
    }
    // What was put in place is what the store opens with.
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.index_get("terms", b"l").unwrap(), Some(b"w".to_vec()));
    // A spare dropped unused (a rebuild that failed) leaves no files.
    let spare = log.spare_indexes().unwrap();
    spare.put("terms", b"m", b"x").unwrap();
    drop(spare);
    assert!(!dir.path().join("index.rebuilding").exists());
}

#[test]
fn an_open_deletes_what_a_rebuild_cut_short_left_beside() {
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    // Killed between its two renames: the indexes are gone, the rebuilt
    // ones still beside, the old ones moved away.
    std::fs::create_dir(dir.path().join("index.rebuilding")).unwrap();
    std::fs::write(dir.path().join("index.rebuilding/000012.sst"), b"...").unwrap();
    std::fs::rename(ledger::index_dir(dir.path()), dir.path().join("index.old")).unwrap();
    let log = Log::open_keeping_marked(
        dir.path(),
        &signer().verifier(),
        &[IndexFamily::new("terms")],
    )
    .unwrap();
    // Made anew (to be built from the leaves), so no longer marked.
    assert_eq!(log.index_get("terms", b"k").unwrap(), None);
    assert!(!log.indexes_marked_damaged());
    for gone in ["index.damaged", "index.rebuilding", "index.old"] {
        assert!(!dir.path().join(gone).exists(), "{gone}");
    }
}

#[test]
fn a_swap_that_fails_leaves_the_indexes_in_use_serving() {
    let dir = tempfile::tempdir().unwrap();
    marked_store(dir.path());
    let log = Log::open_keeping_marked(
        dir.path(),
        &signer().verifier(),
        &[IndexFamily::new("terms")],
    )
    .unwrap();
    let spare = log.spare_indexes().unwrap();
    spare.put("terms", b"k", b"v2").unwrap();
    // A directory in the way of the old database's rename.
    std::fs::create_dir(dir.path().join("index.old")).unwrap();
    std::fs::write(dir.path().join("index.old/in-the-way"), b"x").unwrap();
    assert!(log.replace_indexes(spare).is_err());
    // The database in use serves still, still marked to be rebuilt.
    assert_eq!(log.index_get("terms", b"k").unwrap(), Some(b"v".to_vec()));
    assert!(log.indexes_marked_damaged());
    assert!(dir.path().join("index.damaged").exists());
    // The next attempt clears the way and puts its spare in place.
    let spare = log.spare_indexes().unwrap();
    spare.put("terms", b"k", b"v3").unwrap();
    log.replace_indexes(spare).unwrap();
    assert_eq!(log.index_get("terms", b"k").unwrap(), Some(b"v3".to_vec()));
    assert!(!log.indexes_marked_damaged());
}
