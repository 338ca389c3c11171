//! Stores of layout 1 (a column family per kind of record) are converted
//! to layout 2 on open (specs/storage.md), including after a crash in the
//! middle of a conversion.

use std::path::Path;

use verifier::tile::{Tile, TileKind};
use verifier::SignerKey;

use ledger::Log;

fn signer() -> SignerKey {
    SignerKey::from_seed("layout.example/log", &[5; 32]).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "y".repeat((i % 11) as usize)).into_bytes()
}

/// What a log holds, as its readers see it.
#[derive(Debug, PartialEq)]
struct Seen {
    size: u64,
    entries: Vec<Vec<u8>>,
    root: verifier::Hash,
    proof: Vec<verifier::Hash>,
    checkpoints: Vec<u64>,
    latest: String,
}

fn seen(log: &Log) -> Seen {
    let size = log.size();
    Seen {
        size,
        entries: (0..size).map(|i| log.entry(i).unwrap()).collect(),
        root: log.root(size).unwrap(),
        proof: log.inclusion_proof(size / 2, size).unwrap(),
        checkpoints: log.checkpoint_sizes(0, 100).unwrap(),
        latest: log.latest_checkpoint().unwrap().text,
    }
}

/// A log of 70,000 entries (full tiles at levels 0 and 1, partial ones at
/// levels 0-2) with three checkpoints, in `dir`; returns what it holds.
fn write_log(dir: &Path) -> Seen {
    let log = Log::open(dir, &signer().verifier()).unwrap();
    for (start, end) in [(0, 300), (300, 65_600), (65_600, 70_000)] {
        let entries: Vec<Vec<u8>> = (start..end).map(entry).collect();
        log.append(&entries).unwrap();
        log.sign_checkpoint(&signer()).unwrap();
    }
    seen(&log)
}

/// Writes, in `old`, the layout-1 store of the layout-2 store in `new`:
/// chunks under their first leaf in `entries`; every tile, the partial
/// right-edge ones too, in `tiles`; `checkpoints`; `meta` with the size.
fn write_layout_1(new: &Path, old: &Path) {
    let log = Log::open(new, &signer().verifier()).unwrap();
    let size = log.size();
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let db = rocksdb::DB::open_cf(&opts, old, ["entries", "tiles", "checkpoints", "meta"]).unwrap();
    let cf = |name| db.cf_handle(name).unwrap();
    let src = rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), new, false).unwrap();
    for item in src.iterator(rocksdb::IteratorMode::Start) {
        let (key, value) = item.unwrap();
        if let [b'p', position @ .., 0xff] = &key[..] {
            db.put_cf(cf("entries"), position, &value).unwrap();
        }
    }
    for level in 0u8..3 {
        let count = size >> (8 * u32::from(level));
        for index in 0..count.div_ceil(256) {
            let width = (count - index * 256).min(256) as u16;
            let kind = TileKind::Hashes(level);
            let tile = log.tile(&Tile { kind, index, width }).unwrap();
            let mut key = vec![level];
            key.extend_from_slice(&index.to_be_bytes());
            db.put_cf(cf("tiles"), key, tile).unwrap();
        }
    }
    for s in log.checkpoint_sizes(0, 100).unwrap() {
        let text = log.checkpoint_at(s).unwrap().text;
        db.put_cf(cf("checkpoints"), s.to_be_bytes(), text).unwrap();
    }
    db.put_cf(cf("meta"), b"size", size.to_be_bytes()).unwrap();
    db.put_cf(cf("meta"), b"origin", signer().name()).unwrap();
}

fn column_families(dir: &Path) -> Vec<String> {
    rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap()
}

#[test]
fn a_layout_1_store_is_converted_on_open() {
    let (new, old) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let want = write_log(new.path());
    write_layout_1(new.path(), old.path());
    {
        // A conversion cut short before its last write left a stale copy:
        // it is copied again from the start.
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            old.path(),
            ["entries", "tiles", "checkpoints", "meta"],
        )
        .unwrap();
        let mut key = vec![b'p'];
        key.extend_from_slice(&16u64.to_be_bytes());
        key.push(0xff);
        db.put(key, b"stale").unwrap();
    }
    let log = Log::open(old.path(), &signer().verifier()).unwrap();
    assert_eq!(seen(&log), want);
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!((report.entries, report.checkpoints), (70_000, 3));
    log.append(&[b"after"]).unwrap();
    let cp = log.sign_checkpoint(&signer()).unwrap();
    assert_eq!(cp.checkpoint.size, 70_001);
    drop(log);
    assert_eq!(column_families(old.path()), ["default"]);
    let log = Log::open(old.path(), &signer().verifier()).unwrap();
    assert_eq!(log.entry(70_000).unwrap(), b"after");
    assert_eq!(log.latest_checkpoint().unwrap(), cp);
}

#[test]
fn a_conversion_cut_short_before_the_drops_only_drops() {
    let (new, old) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let want = write_log(new.path());
    write_layout_1(new.path(), old.path());
    // The copies and the `layout` key were written, the old column
    // families not yet dropped: what they hold is not copied again (a
    // record tampered with there does not reach the log).
    Log::open(new.path(), &signer().verifier()).unwrap();
    let db = rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        old.path(),
        ["entries", "tiles", "checkpoints", "meta"],
    )
    .unwrap();
    let src =
        rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), new.path(), false).unwrap();
    for item in src.iterator(rocksdb::IteratorMode::Start) {
        let (key, value) = item.unwrap();
        db.put(key, value).unwrap();
    }
    db.put_cf(
        db.cf_handle("entries").unwrap(),
        16u64.to_be_bytes(),
        b"tampered",
    )
    .unwrap();
    drop(db);
    std::fs::create_dir_all(old.path().join("checkpoints")).unwrap();
    copy_dir(
        &new.path().join("checkpoints"),
        &old.path().join("checkpoints"),
    );
    let log = Log::open(old.path(), &signer().verifier()).unwrap();
    assert_eq!(seen(&log), want);
    assert_eq!(log.audit(|_, _| {}).unwrap().entries, 70_000);
    drop(log);
    assert_eq!(column_families(old.path()), ["default"]);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
