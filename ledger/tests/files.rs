//! How the log's SST files are laid out (specs/storage.md, layout 2): every
//! file a flush makes lies beside the older ones, so RocksDB moves it down
//! the levels whole and never rewrites the log. A compaction that merged
//! files would make files of new numbers.

use std::collections::BTreeSet;
use std::time::Duration;

use verifier::tree::MemoryTree;
use verifier::{leaf_hash, SignerKey};

use ledger::Log;

/// Appends of these lengths in turn: some end on a hash tile's boundary
/// (256 leaves) and some inside one, some start inside an entry chunk (16
/// leaves), and flushes fall on both.
const APPENDS: [usize; 6] = [256, 100, 156, 1, 255, 512];

#[test]
fn flushed_log_files_are_moved_down_whole_never_merged() {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::from_seed("files.example/log", &[5; 32]).unwrap();
    let log = Log::open(dir.path(), &key.verifier()).unwrap();
    let mut reference = MemoryTree::new();
    // Every file a flush made, by name.
    let mut flushed = BTreeSet::new();
    let mut next = 0u64;
    for flush in 0..16 {
        for len in APPENDS.iter().cycle().skip(flush).take(3) {
            let entries: Vec<Vec<u8>> = (next..next + *len as u64)
                .map(|i| format!("entry {i} {}", "x".repeat(i as usize % 97)).into_bytes())
                .collect();
            for e in &entries {
                reference.push(leaf_hash(e));
            }
            assert_eq!(log.append(&entries).unwrap(), next..next + *len as u64);
            next += *len as u64;
        }
        // A checkpoint now and then, as the publisher signs them (they are
        // in a database of their own, not among these files).
        if flush % 5 == 0 {
            log.sign_checkpoint(&key).unwrap();
        }
        log.flush().unwrap();
        let files = log.stored_files().unwrap();
        let new: Vec<_> = files
            .iter()
            .filter(|f| !flushed.contains(&f.name))
            .collect();
        // Nothing but this flush's file is new (no compaction made one).
        assert_eq!(new.len(), 1, "flush {flush}: {files:?}");
        flushed.insert(new[0].name.clone());
    }
    log.wait_for_background_work(Duration::from_secs(60))
        .unwrap();
    let files = log.stored_files().unwrap();
    assert_eq!(files.len(), flushed.len(), "{files:?}");
    for f in &files {
        assert!(flushed.contains(&f.name), "not made by a flush: {f:?}");
    }
    // RocksDB did compact level 0 (16 files, its trigger is 4): by moving
    // the files down, not by rewriting them.
    assert!(files.iter().any(|f| f.level > 0), "{files:?}");
    // And the log reads back as appended.
    assert_eq!(log.size(), next);
    assert_eq!(log.root(next).unwrap(), reference.root_at(next).unwrap());
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!(report.entries, next);
}
