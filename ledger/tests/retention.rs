//! Retention (`Log::prune`): the entries below the first kept leaf are
//! gone, everything built from their hashes is what it was, against the
//! in-memory reference tree.

mod common;

use std::path::Path;

use common::in_sst_files;
use verifier::tile::{Tile, TileKind};
use verifier::tree::{consistency_proof, inclusion_proof, MemoryTree};
use verifier::{leaf_hash, SignerKey};

use ledger::{LedgerError, Log};

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    format!("decision-{i}-{}", "y".repeat((i % 5) as usize)).into_bytes()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, &signer().verifier()).unwrap()
}

/// Appends entries up to `size` in batches of 37 (appends that start
/// inside a chunk), mirrored in `mem`, signing a checkpoint after each.
fn fill_to(log: &Log, mem: &mut MemoryTree, size: u64) {
    while log.size() < size {
        let next = log.size();
        let entries: Vec<Vec<u8>> = (next..(next + 37).min(size)).map(entry).collect();
        log.append(&entries).unwrap();
        entries.iter().for_each(|e| mem.push(leaf_hash(e)));
        log.sign_checkpoint(&signer()).unwrap();
    }
}

/// Every hash tile of the tree, as served.
fn hash_tiles(log: &Log) -> Vec<Vec<u8>> {
    let size = log.size();
    let mut out = Vec::new();
    for level in 0..2u8 {
        let per = 256u64.pow(u32::from(level) + 1);
        for index in 0..size.div_ceil(per) {
            let width = ((size - index * per) / 256u64.pow(u32::from(level))).min(256) as u16;
            if width == 0 {
                continue;
            }
            let t = Tile {
                kind: TileKind::Hashes(level),
                index,
                width,
            };
            out.push(log.tile(&t).unwrap());
        }
    }
    out
}

fn bundle(index: u64, width: u16) -> Tile {
    Tile {
        kind: TileKind::Entries,
        index,
        width,
    }
}

#[test]
fn pruned_entries_are_gone_and_the_tree_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::default();
    fill_to(&log, &mut mem, 1000);
    let tiles = hash_tiles(&log);
    let roots: Vec<_> = (0..=1000).map(|n| log.root(n).unwrap()).collect();

    // Rounded down to a whole entry bundle.
    assert_eq!(log.prune(700).unwrap(), 512);
    assert_eq!(log.first_kept(), 512);
    for i in [0, 255, 256, 511] {
        match log.entry(i) {
            Err(LedgerError::Pruned { index, first_kept }) => {
                assert_eq!((index, first_kept), (i, 512))
            }
            other => panic!("entry {i}: {other:?}"),
        }
    }
    for i in [512, 699, 999] {
        assert_eq!(log.entry(i).unwrap(), entry(i));
    }
    assert!(matches!(
        log.tile(&bundle(1, 256)),
        Err(LedgerError::Pruned { index: 256, .. })
    ));
    assert!(log.tile(&bundle(2, 256)).is_ok());
    let mut kept = Vec::new();
    log.scan_entries(512, 1000, |i, e| {
        kept.push((i, e.to_vec()));
        Ok::<(), LedgerError>(())
    })
    .unwrap();
    assert_eq!(kept.len(), 488);
    assert!(kept.iter().all(|(i, e)| *e == entry(*i)));

    // Hashes, roots and proofs are what they were, and the reference's.
    assert_eq!(hash_tiles(&log), tiles);
    for n in [1, 255, 256, 511, 512, 513, 999, 1000] {
        assert_eq!(log.root(n).unwrap(), roots[n as usize]);
        assert_eq!(log.root(n).unwrap(), mem.root_at(n).unwrap());
    }
    for (i, n) in [(0, 1000), (100, 600), (511, 512), (600, 1000)] {
        assert_eq!(
            log.inclusion_proof(i, n).unwrap(),
            inclusion_proof(&mem, i, n).unwrap()
        );
        assert_eq!(log.leaf_hash(i).unwrap(), leaf_hash(&entry(i)));
    }
    assert_eq!(
        log.consistency_proof(300, 1000).unwrap(),
        consistency_proof(&mem, 300, 1000).unwrap()
    );

    // An audit checks the pruned leaves through their hashes.
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!((report.pruned, report.entries), (512, 488));
    assert!(report.checkpoints > 20);

    // Reopened: the first kept leaf stays, the store opens (its root is
    // checked against the last checkpoint) and appends go on.
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.first_kept(), 512);
    assert!(matches!(log.entry(3), Err(LedgerError::Pruned { .. })));
    fill_to(&log, &mut mem, 1300);
    assert_eq!(log.root(1300).unwrap(), mem.root_at(1300).unwrap());
    assert_eq!(
        log.consistency_proof(1000, 1300).unwrap(),
        consistency_proof(&mem, 1000, 1300).unwrap()
    );
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!((report.pruned, report.entries), (512, 788));
}

#[test]
fn a_prune_keeps_the_newest_bundle_and_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::default();
    assert_eq!(log.prune(100).unwrap(), 0, "an empty log");
    fill_to(&log, &mut mem, 255);
    assert_eq!(log.prune(u64::MAX).unwrap(), 0, "one partial bundle");
    fill_to(&log, &mut mem, 1024);
    // Leaf 1023 is in the bundle from 768: it stays, with its bundle.
    assert_eq!(log.prunable(u64::MAX), 768);
    assert_eq!(log.prune(u64::MAX).unwrap(), 768);
    assert_eq!(log.prune(300).unwrap(), 768, "never back");
    assert_eq!(log.entry(768).unwrap(), entry(768));
    // The size is still read from the stored entries.
    drop(log);
    let log = open(dir.path());
    assert_eq!((log.size(), log.first_kept()), (1024, 768));
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!((report.pruned, report.entries), (768, 256));
}

#[test]
fn an_audit_of_a_pruned_store_still_finds_a_bad_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::default();
    fill_to(&log, &mut mem, 600);
    log.prune(600).unwrap();
    drop(log);
    // A checkpoint at a pruned size signed over another root: the tree of
    // kept hashes must not reach it.
    let cp = verifier::Checkpoint {
        origin: "test.example/log".into(),
        size: 300,
        root: leaf_hash(b"another history"),
        extensions: vec![],
    };
    let note = cp.sign(&signer()).unwrap();
    let db = rocksdb::DB::open_default(dir.path().join("checkpoints")).unwrap();
    db.put(300u64.to_be_bytes(), note).unwrap();
    drop(db);
    let log = Log::open_for_audit(dir.path(), &signer().verifier(), &[]).unwrap();
    match log.audit(|_, _| {}) {
        Err(LedgerError::RootMismatch { size: 300, .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// Leaf `i`'s entry: bytes that do not compress, a mark of its own.
fn mark(i: u64) -> Vec<u8> {
    verifier::leaf_hash(&i.to_be_bytes()).to_hex().into_bytes()
}

/// A log of the 600 entries `mark(0..600)`, signed and flushed to SST files.
fn marked_log() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let entries: Vec<Vec<u8>> = (0..600).map(mark).collect();
    log.append(&entries).unwrap();
    log.sign_checkpoint(&signer()).unwrap();
    log.flush().unwrap();
    (dir, log)
}

#[test]
fn pruned_bytes_leave_the_sst_files() {
    let (dir, log) = marked_log();
    assert!(in_sst_files(dir.path(), &mark(10)));
    assert_eq!(log.prune(600).unwrap(), 512);
    log.flush().unwrap();
    assert!(!in_sst_files(dir.path(), &mark(10)));
    assert!(!in_sst_files(dir.path(), &mark(511)));
    assert!(in_sst_files(dir.path(), &mark(512)));
}

#[test]
fn a_prune_cut_short_before_its_compaction_has_it_done_by_the_next() {
    let (dir, log) = marked_log();
    // Entries deleted, then a crash before the compaction.
    assert_eq!(log.prune_entries(300).unwrap(), 256);
    drop(log);
    let log = open(dir.path());
    log.flush().unwrap();
    assert!(in_sst_files(dir.path(), &mark(10)));
    // The next prune removes nothing more, and compacts what the last left.
    assert_eq!(log.prune(300).unwrap(), 256);
    log.flush().unwrap();
    assert!(!in_sst_files(dir.path(), &mark(10)));
    assert!(in_sst_files(dir.path(), &mark(256)));
}

#[test]
fn a_pruned_log_is_rebuilt_from_its_hashes_and_kept_entries() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::default();
    fill_to(&log, &mut mem, 1000);
    log.prune(1000).unwrap();
    assert_eq!(log.first_kept(), 768);
    let hashes: Vec<verifier::Hash> = (0..768).map(|i| log.leaf_hash(i).unwrap()).collect();

    let copy_dir = tempfile::tempdir().unwrap();
    let copy = open(copy_dir.path());
    // Whole bundles only.
    assert!(matches!(
        copy.append_pruned(&hashes[..300]),
        Err(LedgerError::PrunedAppend { leaves: 300, .. })
    ));
    assert_eq!(copy.append_pruned(&hashes[..256]).unwrap(), 0..256);
    // A store of hashes alone opens at their size.
    drop(copy);
    let copy = open(copy_dir.path());
    assert_eq!((copy.size(), copy.first_kept()), (256, 256));
    assert_eq!(copy.root(256).unwrap(), mem.root_at(256).unwrap());
    assert_eq!(copy.append_pruned(&hashes[256..]).unwrap(), 256..768);
    let kept: Vec<Vec<u8>> = (768..1000).map(entry).collect();
    copy.append(&kept).unwrap();
    for n in [1, 256, 700, 768, 769, 1000] {
        assert_eq!(copy.root(n).unwrap(), mem.root_at(n).unwrap());
    }
    assert_eq!(copy.first_kept(), 768);
    assert!(matches!(copy.entry(767), Err(LedgerError::Pruned { .. })));
    assert_eq!(copy.entry(768).unwrap(), entry(768));
    // Not after a kept leaf.
    assert!(matches!(
        copy.append_pruned(&hashes[..256]),
        Err(LedgerError::PrunedAppend { size: 1000, .. })
    ));
    copy.sign_checkpoint(&signer()).unwrap();
    let report = copy.audit(|_, _| {}).unwrap();
    assert_eq!((report.pruned, report.entries), (768, 232));
}

/// An erased entry (`Log::erase_entry`) is gone from reads and from the
/// SST files; its hash, the tree, proofs and checkpoints are unchanged,
/// also after the store is opened again with the leaf in the partial
/// right-edge tile (whose hashes are computed from the entries on open).
#[test]
fn an_erased_entry_is_gone_and_the_tree_is_unchanged() {
    let (dir, log) = marked_log();
    let roots: Vec<_> = (0..=600).map(|n| log.root(n).unwrap()).collect();
    let tiles = hash_tiles(&log);
    for (leaf, by) in [(10, 599), (520, 598)] {
        let erased = log.erase_entry(leaf, by).unwrap();
        assert_eq!(erased.leaf_hash, leaf_hash(&mark(leaf)));
        // Again: nothing changes.
        assert_eq!(log.erase_entry(leaf, by).unwrap(), erased);
    }
    let gone = |log: &Log| {
        for leaf in [10, 520] {
            match log.entry(leaf) {
                Err(LedgerError::Erased { index, by, erasure }) => {
                    assert_eq!(index, leaf);
                    assert_eq!(by, if leaf == 10 { 599 } else { 598 });
                    assert_eq!(erasure, format!("ledger-erasure-{leaf}"));
                }
                other => panic!("leaf {leaf}: {other:?}"),
            }
        }
        assert_eq!(log.entry(11).unwrap(), mark(11));
        assert_eq!(log.erased_in(0, 600).unwrap().len(), 2);
        assert_eq!(hash_tiles(log), tiles);
        for n in [1, 11, 300, 521, 600] {
            assert_eq!(log.root(n).unwrap(), roots[n as usize]);
        }
        // The entry bundle holds it as an entry of length 0.
        let b = log.tile(&bundle(0, 256)).unwrap();
        let entries = verifier::tile::decode_bundle(&b).unwrap();
        assert!(entries[10].is_empty() && entries[11] == mark(11));
    };
    gone(&log);
    log.flush().unwrap();
    assert!(!in_sst_files(dir.path(), &mark(10)));
    assert!(!in_sst_files(dir.path(), &mark(520)));
    assert!(in_sst_files(dir.path(), &mark(11)));
    drop(log);
    let log = open(dir.path());
    gone(&log);
    // Raw entries name no erasure record: the audit says so.
    let e = log.audit(|_, _| {}).unwrap_err().to_string();
    assert!(
        e.contains("leaf 10 has no entry, and no erasure record names it"),
        "{e}"
    );
}

/// Several entries erased in one batch (`Log::erase_entries`): two in one
/// chunk, one far from them, one named twice and one erased before; one
/// write, then their chunks compacted, so none is left in the SST files.
#[test]
fn a_batch_of_erasures_is_one_write_and_leaves_no_bytes_behind() {
    let (dir, log) = marked_log();
    let root = log.root(600).unwrap();
    log.erase_entry(300, 590).unwrap();
    let asked = [(20, 599), (21, 598), (500, 597), (20, 599), (300, 590)];
    let erased = log.erase_entries(&asked).unwrap();
    assert_eq!(
        erased.iter().map(|e| (e.index, e.by)).collect::<Vec<_>>(),
        asked.to_vec()
    );
    for &(leaf, by) in &asked {
        assert!(
            matches!(log.entry(leaf), Err(LedgerError::Erased { index, by: b, .. }) if index == leaf && b == by),
            "leaf {leaf}"
        );
    }
    assert_eq!(log.entry(22).unwrap(), mark(22));
    assert_eq!(log.root(600).unwrap(), root);
    log.flush().unwrap();
    for leaf in [20, 21, 300, 500] {
        assert!(!in_sst_files(dir.path(), &mark(leaf)), "leaf {leaf}");
    }
    assert!(in_sst_files(dir.path(), &mark(22)));
    // A batch with one leaf that cannot be erased erases none.
    assert!(log.erase_entries(&[(30, 599), (40, 40)]).is_err());
    assert_eq!(log.entry(30).unwrap(), mark(30));
}

#[test]
fn an_erasure_needs_a_later_record_and_a_kept_entry() {
    let (_dir, log) = marked_log();
    assert!(log.erase_entry(10, 10).is_err());
    assert!(log.erase_entry(10, 600).is_err());
    log.prune(256).unwrap();
    assert!(matches!(
        log.erase_entry(10, 599),
        Err(LedgerError::Pruned { .. })
    ));
    assert_eq!(log.entry(300).unwrap(), mark(300));
}
