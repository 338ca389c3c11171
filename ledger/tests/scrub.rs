//! A scrub (`Log::scrub`) reads every block of the store with its checksum
//! checked: it reads everything of a whole store, stops when its pace
//! says so, names damage in the log's files, and marks damaged indexes
//! (to be rebuilt) as any read that met them would.

use std::path::{Path, PathBuf};

use ledger::{IndexFamily, LedgerError, Log, Store};
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("scrub.example/log", &[4; 32]).unwrap()
}

fn open(dir: &Path) -> Log {
    Log::open_with(dir, &signer().verifier(), &[IndexFamily::new("terms")]).unwrap()
}

/// A store of 70,000 entries of 200 bytes, signed, flushed to files, with
/// 60,000 index keys of ~100 bytes ingested.
fn store(dir: &Path) {
    let log = open(dir);
    // Bytes that do not compress: the entries are most of the log's file,
    // after its tiles (specs/storage.md: entry chunks sort last).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Past 65,536 leaves, so that opening the log reads a full level-1
    // tile, not every level-0 one.
    for _ in 0..70 {
        let entries: Vec<Vec<u8>> = (0..1000)
            .map(|_| (0..25).flat_map(|_| noise().to_le_bytes()).collect())
            .collect();
        log.append(&entries).unwrap();
    }
    log.sign_checkpoint(&signer()).unwrap();
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..60_000u32)
        .map(|i| (format!("term-{i:08}").into_bytes(), vec![b'v'; 90]))
        .collect();
    log.ingest_sorted("terms", &items).unwrap();
    log.flush().unwrap();
}

/// The largest SST file in `dir`.
fn largest_sst(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    files.sort_by_key(|p| p.metadata().unwrap().len());
    files.pop().unwrap()
}

/// Flips a byte every 16 KiB of `file` between `from` and `to` tenths of
/// its length.
fn damage(file: &Path, from: usize, to: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    let len = bytes.len();
    for at in (len * from / 10..len * to / 10).step_by(16 << 10) {
        bytes[at] ^= 0xff;
    }
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_scrub_reads_the_whole_store_at_its_pace() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let log = open(dir.path());
    // The bytes read so far after each run, unpaced.
    let mut after = vec![0u64];
    let done = log
        .scrub(1 << 20, 0, |read| {
            after.push(read);
            true
        })
        .unwrap();
    let runs: Vec<u64> = after.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(done.complete);
    // Every entry, the index keys, and more (tiles, checkpoints).
    assert!(done.keys > 60_000, "{done:?}");
    assert!(done.bytes > 60_000 * 200 + 60_000 * 100, "{done:?}");
    assert_eq!(runs.iter().sum::<u64>(), done.bytes);
    assert!(runs.len() >= 4, "{runs:?}");
    assert!(runs.iter().all(|&r| r <= (1 << 20) + 4096), "{runs:?}");
    // Stopped by its pace after the first run.
    let stopped = log.scrub(1 << 20, 0, |_| false).unwrap();
    assert!(!stopped.complete);
    assert!(stopped.bytes < done.bytes);
}

#[test]
fn a_scrub_names_damage_in_the_log_s_files() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    // In the middle leaves' entries and tiles, which opening the log does
    // not read (it reads the tiles of the tree's right edge, and the
    // newest entries).
    let file = largest_sst(dir.path());
    damage(&file, 4, 7);
    let log = open(dir.path());
    match log.scrub(ledger::SCRUB_RUN, 0, |_| true) {
        Err(LedgerError::Damaged {
            store: Store::Log, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // The log's damage is not the indexes'.
    assert!(!log.indexes_marked_damaged());
}

#[test]
fn a_scrub_marks_damaged_indexes_to_be_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    damage(&largest_sst(&ledger::index_dir(dir.path())), 3, 7);
    let log = open(dir.path());
    match log.scrub(ledger::SCRUB_RUN, 0, |_| true) {
        Err(LedgerError::Damaged {
            store: Store::Indexes,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(log.indexes_marked_damaged());
    assert!(dir.path().join("index.damaged").exists());
}
