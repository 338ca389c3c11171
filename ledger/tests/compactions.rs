//! The compactions that make removed bytes leave the disk, cut short by a
//! stopping server (`Log::stop_compactions`): each stays owed
//! (`Log::compactions_owed`), across a restart, until
//! `Log::compact_owed` finishes it.

mod common;

use std::path::Path;

use common::in_sst_files;
use ledger::{IndexFamily, Log};
use ledger_tests::Tmpfs;
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

fn open(dir: &Path, family: IndexFamily) -> Log {
    Log::open_with(dir, &signer().verifier(), &[family]).unwrap()
}

const GROUPED: IndexFamily = IndexFamily::grouped("postings", 8);

/// Leaf `i`'s entry: bytes that do not compress, a mark of its own.
fn mark(i: u64) -> Vec<u8> {
    verifier::leaf_hash(&i.to_be_bytes()).to_hex().into_bytes()
}

/// A log of the entries `mark(0..600)`, written to two SST files (leaves
/// 0..300, then 300..600), signed.
fn marked_log(dir: &Path) -> Log {
    let log = open(dir, GROUPED);
    for part in [0..300, 300..600] {
        let entries: Vec<Vec<u8>> = part.map(mark).collect();
        log.append(&entries).unwrap();
        log.flush().unwrap();
    }
    log.sign_checkpoint(&signer()).unwrap();
    log
}

/// Opens the store in `dir` again, still owing `owed`, which
/// `compact_owed` finishes.
fn finished_after_restart(dir: &Path, owed: &ledger::Owed) {
    let log = open(dir, GROUPED);
    assert_eq!(&log.compactions_owed().unwrap(), owed);
    log.compact_owed().unwrap();
    assert!(log.compactions_owed().unwrap().is_empty());
    log.flush().unwrap();
}

#[test]
fn compactions_run_to_their_end_leave_nothing_owed() {
    let dir = tempfile::tempdir().unwrap();
    let log = marked_log(dir.path());
    assert_eq!(log.prune(300).unwrap(), 256);
    log.erase_entry(550, 599).unwrap();
    assert!(log.compactions_owed().unwrap().is_empty());
    assert!(!log.take_failed_compaction());
    log.flush().unwrap();
    assert!(!in_sst_files(dir.path(), &mark(10)));
    assert!(!in_sst_files(dir.path(), &mark(550)));
}

#[test]
fn a_prune_stopped_at_its_compaction_is_finished_after_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = marked_log(dir.path());
    log.stop_compactions();
    assert_eq!(log.prune(300).unwrap(), 256);
    let owed = log.compactions_owed().unwrap();
    assert!(owed.pruned && owed.erased_chunks.is_empty(), "{owed:?}");
    // Cut short is not failed: nothing to try again before the next start.
    assert!(!log.take_failed_compaction());
    log.flush().unwrap();
    assert!(in_sst_files(dir.path(), &mark(10)));
    drop(log);

    finished_after_restart(dir.path(), &owed);
    assert!(!in_sst_files(dir.path(), &mark(10)));
    assert!(in_sst_files(dir.path(), &mark(256)));
}

#[test]
fn erasures_stopped_at_their_compactions_are_all_finished_after_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = marked_log(dir.path());
    log.stop_compactions();
    // Two erasures, each cut short: the second keeps the first's chunk
    // (of 16 entries) listed.
    log.erase_entry(270, 599).unwrap();
    log.erase_entry(550, 599).unwrap();
    let owed = log.compactions_owed().unwrap();
    assert_eq!(owed.erased_chunks, [256, 544]);
    assert!(!owed.pruned);
    log.flush().unwrap();
    assert!(in_sst_files(dir.path(), &mark(270)));
    assert!(in_sst_files(dir.path(), &mark(550)));
    drop(log);

    finished_after_restart(dir.path(), &owed);
    assert!(!in_sst_files(dir.path(), &mark(270)));
    assert!(!in_sst_files(dir.path(), &mark(550)));
    assert!(in_sst_files(dir.path(), &mark(271)));
}

/// An erasure whose compaction did not happen (a crash or a stop came
/// between) leaves the old bytes in the SST files, listed as owed; the
/// store opened again, the next erasure (here of none) compacts them first.
#[test]
fn an_erasure_cut_short_before_its_compaction_is_compacted_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let log = marked_log(dir.path());
    log.stop_compactions();
    let erased = log.erase_entry(10, 599).unwrap();
    log.flush().unwrap();
    drop(log);
    let log = open(dir.path(), GROUPED);
    assert_eq!(log.erased(10).unwrap(), Some(erased));
    assert_eq!(log.compactions_owed().unwrap().erased_chunks, [0]);
    assert!(in_sst_files(dir.path(), &mark(10)));
    log.erase_entries(&[]).unwrap();
    log.flush().unwrap();
    assert!(log.compactions_owed().unwrap().is_empty());
    assert!(!in_sst_files(dir.path(), &mark(10)));
    assert!(in_sst_files(dir.path(), &mark(11)));
}

/// An item of group `g` no other group holds.
fn item(g: u64) -> Vec<u8> {
    format!("item-of-group-{g:03}").into_bytes()
}

#[test]
fn a_whole_index_compaction_stopped_is_finished_after_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    // Groups merged into one file, as RocksDB's periodic compaction did
    // before the groups were kept apart.
    let log = open(dir.path(), IndexFamily::new("postings"));
    for g in 0..4u64 {
        let key = [g.to_be_bytes(), [0; 8]].concat();
        log.ingest_sorted("postings", &[(key, item(g))]).unwrap();
    }
    log.index_compact("postings").unwrap();
    drop(log);

    let log = open(dir.path(), GROUPED);
    log.stop_compactions();
    let (from, to) = (0u64.to_be_bytes(), 2u64.to_be_bytes());
    log.index_delete("postings", &[], &[(from.to_vec(), to.to_vec())])
        .unwrap();
    // A merged file holds the range: a whole compaction, cut short.
    assert!(log.index_delete_files("postings", &from, &to).unwrap());
    let owed = log.compactions_owed().unwrap();
    assert_eq!(owed.index_families, ["postings"]);
    let index = dir.path().join("index");
    assert!(in_sst_files(&index, &item(0)));
    drop(log);

    finished_after_restart(dir.path(), &owed);
    for g in 0..4 {
        assert_eq!(in_sst_files(&index, &item(g)), g >= 2, "group {g}");
    }
}

#[test]
fn indexes_put_in_place_owe_nothing_and_are_stopped_after_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), GROUPED);
    // A whole compaction owed to the indexes in use.
    log.stop_compactions();
    log.index_compact("postings").unwrap();
    assert_eq!(log.compactions_owed().unwrap().index_families, ["postings"]);

    // Rebuilt indexes, put in place after the stop: nothing is owed to
    // them, and their compactions are stopped too.
    let spare = log.spare_indexes().unwrap();
    for g in 0..2u64 {
        let key = [g.to_be_bytes(), [0; 8]].concat();
        spare
            .ingest_sorted_with("postings", |sink| sink.put(&key, &item(g)))
            .unwrap();
    }
    log.replace_indexes(spare).unwrap();
    assert!(log.compactions_owed().unwrap().is_empty());
    let (from, to) = (0u64.to_be_bytes(), 1u64.to_be_bytes());
    log.index_delete("postings", &[], &[(from.to_vec(), to.to_vec())])
        .unwrap();
    log.index_compact("postings").unwrap();
    assert!(in_sst_files(&dir.path().join("index"), &item(0)));
    assert_eq!(log.compactions_owed().unwrap().index_families, ["postings"]);
}

/// A whole compaction that fails for want of disk space (RocksDB's C API
/// drops its status) is seen by what it left, and stays owed: once there
/// is room again, the next start finishes it.
#[test]
fn a_whole_index_compaction_that_finds_the_disk_full_stays_owed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("fs"), 200) else {
        return;
    };
    let data = fs.0.join("data");
    // 20 groups of 40,000 items (about 70 MB), merged into shared files.
    let log = open(&data, IndexFamily::new("postings"));
    for g in 0..20u64 {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0u32..40_000)
            .map(|i| {
                let key = [g.to_be_bytes().to_vec(), i.to_be_bytes().to_vec()].concat();
                (key, format!("{}-{i:08}-{}", "x".repeat(40), g).into_bytes())
            })
            .collect();
        log.ingest_sorted("postings", &items).unwrap();
    }
    log.index_compact("postings").unwrap();
    drop(log);

    let log = open(&data, GROUPED);
    let (from, to) = (0u64.to_be_bytes(), 2u64.to_be_bytes());
    log.index_delete("postings", &[], &[(from.to_vec(), to.to_vec())])
        .unwrap();
    fs.fill(8);
    assert!(log.index_delete_files("postings", &from, &to).unwrap());
    let owed = log.compactions_owed().unwrap();
    assert_eq!(owed.index_families, ["postings"]);
    let index = data.join("index");
    let removed = format!("{}-{:08}-0", "x".repeat(40), 7).into_bytes();
    assert!(in_sst_files(&index, &removed));
    drop(log);

    fs.free();
    finished_after_restart(&data, &owed);
    assert!(!in_sst_files(&index, &removed));
    let kept = format!("{}-{:08}-2", "x".repeat(40), 7).into_bytes();
    assert!(in_sst_files(&index, &kept));
}

/// Leaf `i`'s entry of 4 KiB that does not compress, starting with
/// `mark(i)`.
fn large(i: u64) -> Vec<u8> {
    let mut entry = mark(i);
    let mut j = 0u64;
    while entry.len() < 4096 {
        let seed = [i.to_be_bytes(), j.to_be_bytes()].concat();
        entry.extend(verifier::leaf_hash(&seed).to_hex().into_bytes());
        j += 1;
    }
    entry.truncate(4096);
    entry
}

/// A log of 8,000 entries `large(i)` (32 MB, in one SST file) on a
/// 200 MiB file system filled up to 8 MiB free, so that a compaction that
/// rewrites that file fails; `None` where mounts are refused.
fn log_on_a_full_disk(dir: &Path) -> Option<(Tmpfs, std::path::PathBuf, Log)> {
    let fs = Tmpfs::mount(&dir.join("fs"), 200)?;
    let data = fs.0.join("data");
    let log = open(&data, GROUPED);
    // One write, so one memtable and one SST file whatever else flushes
    // (tests running beside share the memory budget that triggers flushes).
    let entries: Vec<Vec<u8>> = (0..8000).map(large).collect();
    log.append(&entries).unwrap();
    log.flush().unwrap();
    log.sign_checkpoint(&signer()).unwrap();
    fs.fill(8);
    Some((fs, data, log))
}

/// A prune's compaction that fails for want of disk space stays owed:
/// once there is room, the next start finishes it.
#[test]
fn a_prune_whose_compaction_finds_the_disk_full_stays_owed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((fs, data, log)) = log_on_a_full_disk(dir.path()) else {
        return;
    };
    assert_eq!(log.prune(300).unwrap(), 256);
    let owed = log.compactions_owed().unwrap();
    assert!(owed.pruned, "{owed:?}");
    // Said once, for a server to try again.
    assert!(log.take_failed_compaction());
    assert!(!log.take_failed_compaction());
    assert!(in_sst_files(&data, &mark(10)));
    drop(log);

    fs.free();
    finished_after_restart(&data, &owed);
    assert!(!in_sst_files(&data, &mark(10)));
    assert!(in_sst_files(&data, &mark(256)));
}

/// An erasure's compaction that fails for want of disk space keeps its
/// chunk listed: once there is room, the next start compacts it.
#[test]
fn an_erasure_whose_compaction_finds_the_disk_full_stays_owed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((fs, data, log)) = log_on_a_full_disk(dir.path()) else {
        return;
    };
    log.erase_entry(10, 7999).unwrap();
    let owed = log.compactions_owed().unwrap();
    assert_eq!(owed.erased_chunks, [0]);
    assert!(log.take_failed_compaction());
    assert!(in_sst_files(&data, &mark(10)));
    drop(log);

    fs.free();
    finished_after_restart(&data, &owed);
    assert!(!in_sst_files(&data, &mark(10)));
    assert!(in_sst_files(&data, &mark(11)));
}
