//! The RocksDB options that the appends' sync latency depends on, read
//! back from what RocksDB wrote:
//! its OPTIONS file and the table properties of an ingested file.

use std::path::Path;

use ledger::{IndexFamily, Log};
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

/// The `key=value` lines of one section (`[DBOptions]`, `[CFOptions "x"]`)
/// of the newest OPTIONS file in `dir`.
fn options_section(dir: &Path, section: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("OPTIONS-"))
        })
        .collect();
    files.sort();
    let text = std::fs::read_to_string(files.last().expect("an OPTIONS file")).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != section)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn no_preallocation_lz4_for_the_log_and_universal_index_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_with(
        dir.path(),
        &signer().verifier(),
        &[IndexFamily::new("postings")],
    )
    .unwrap();
    log.append(&[b"leaf"]).unwrap();
    drop(log);
    let (index, checkpoints) = (dir.path().join("index"), dir.path().join("checkpoints"));
    for db in [dir.path().to_path_buf(), index.clone(), checkpoints.clone()] {
        let db_opts = options_section(&db, "[DBOptions]");
        assert!(db_opts.contains(&"allow_fallocate=false".into()), "{db:?}");
    }
    let compression = |db: &Path, cf: &str| -> String {
        options_section(db, &format!("[CFOptions \"{cf}\"]"))
            .into_iter()
            .find(|l| l.starts_with("compression="))
            .unwrap_or_default()
    };
    // The log is one column family (specs/storage.md), as is the
    // checkpoints' database.
    for db in [dir.path(), checkpoints.as_path()] {
        assert_eq!(compression(db, "default"), "compression=kLZ4Compression");
        assert_eq!(
            rocksdb::DB::list_cf(&rocksdb::Options::default(), db).unwrap(),
            ["default"]
        );
    }
    assert_eq!(
        compression(&index, "postings"),
        "compression=kNoCompression"
    );
    // The index database merges sorted runs (universal compaction), eight
    // spans' files at a time; the log's keeps RocksDB's leveled default.
    let postings = options_section(&index, "[CFOptions \"postings\"]");
    assert!(postings.contains(&"compaction_style=kCompactionStyleUniversal".into()));
    assert!(postings.contains(&"level0_file_num_compaction_trigger=8".into()));
    let log = options_section(dir.path(), "[CFOptions \"default\"]");
    assert!(log.contains(&"compaction_style=kCompactionStyleLevel".into()));
}

#[test]
fn index_files_carry_twenty_filter_bits_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_with(
        dir.path(),
        &signer().verifier(),
        &[IndexFamily::new("decisions")],
    )
    .unwrap();
    let keys = 10_000u32;
    let items: Vec<([u8; 4], [u8; 1])> = (0..keys).map(|i| (i.to_be_bytes(), [1])).collect();
    log.ingest_sorted("decisions", &items).unwrap();
    drop(log);
    let index = dir.path().join("index");
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &index, ["decisions"]).unwrap();
    let cf = db.cf_handle("decisions").unwrap();
    let props = db
        .property_value_cf(cf, "rocksdb.aggregated-table-properties")
        .unwrap()
        .unwrap();
    let filter_bytes: u64 = props
        .split(';')
        .find_map(|p| p.trim().strip_prefix("filter block size="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no filter size in {props}"));
    // 20 bits per key is 25,000 bytes for 10,000 keys; 10 bits would be half.
    let bits_per_key = filter_bytes * 8 / u64::from(keys);
    assert!(
        (18..=24).contains(&bits_per_key),
        "{bits_per_key} bits/key: {props}"
    );
}

#[test]
fn every_synced_write_is_timed_with_its_wal_part() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), &signer().verifier()).unwrap();
    assert_eq!(log.synced_writes().total.count(), 0);
    // 12 MB per write: its WAL append alone takes well over a microsecond,
    // so a WAL part of 0 would mean RocksDB's perf context was not read.
    let entries = vec![vec![7u8; 60_000]; 200];
    for _ in 0..3 {
        log.append(&entries).unwrap();
    }
    let before = log.synced_writes();
    log.append(&[b"small"]).unwrap();
    let t = log.synced_writes();
    assert_eq!(t.total.count(), 4);
    assert_eq!(t.wal.count(), 4);
    assert!(t.wal.sum_micros > 0, "{t:?}");
    assert!(t.wal.sum_micros <= t.total.sum_micros, "{t:?}");
    assert!(t.wal.max_micros <= t.total.max_micros, "{t:?}");
    let last = t.since(&before);
    assert_eq!((last.total.count(), last.wal.count()), (1, 1));
    // A refused append is not a write.
    assert!(log.append(&[vec![0u8; 70_000]]).is_err());
    assert_eq!(log.synced_writes().total.count(), 4);
}
