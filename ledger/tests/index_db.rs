//! The index database beside the log (`Log::open_with`): its column
//! families, scans across ranges, sorted builds added whole; and column
//! families of earlier layouts dropped on open.

use std::path::Path;

use verifier::SignerKey;

use ledger::{IndexFamily, LedgerError, Log};

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, &signer().verifier()).unwrap()
}

/// The log in `dir` with the index column family `name`.
fn open_indexed(dir: &Path, name: &'static str) -> Log {
    Log::open_with(dir, &signer().verifier(), &[IndexFamily::new(name)]).unwrap()
}

#[test]
fn a_store_with_column_families_of_earlier_layouts_opens_and_drops_them() {
    // The index log of an early layout, and the index column families that
    // were kept beside the log before they got their own database.
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).append(&[b"kept"]).unwrap();
    let earlier = ["ilog", "decisions", "postings"];
    {
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let names = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
        all.extend(earlier);
        let db = rocksdb::DB::open_cf(&opts, dir.path(), all).unwrap();
        for name in earlier {
            db.put_cf(db.cf_handle(name).unwrap(), 0u64.to_be_bytes(), b"facts")
                .unwrap();
        }
    }
    let log = open(dir.path());
    assert_eq!(log.entry(0).unwrap(), b"kept");
    drop(log);
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
    assert!(
        !names.iter().any(|n| earlier.contains(&n.as_str())),
        "{names:?}"
    );
}

#[test]
fn index_column_families_live_in_their_own_database() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path(), "postings");
    log.append(&[b"leaf"]).unwrap();
    log.ingest_sorted("postings", &[(b"k", b"v")]).unwrap();
    assert_eq!(
        log.index_get("postings", b"k").unwrap(),
        Some(b"v".to_vec())
    );
    drop(log);
    let opts = rocksdb::Options::default();
    let main = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
    assert!(!main.iter().any(|n| n == "postings"), "{main:?}");
    let index = rocksdb::DB::list_cf(&opts, dir.path().join("index")).unwrap();
    assert!(index.iter().any(|n| n == "postings"), "{index:?}");

    // A log opened without index column families has no index database:
    // asking it for one is an error, not a panic.
    let log = open(dir.path());
    assert_eq!(log.entry(0).unwrap(), b"leaf");
    assert!(matches!(
        log.index_get("postings", b"k"),
        Err(LedgerError::NoIndexes(cf)) if cf == "postings"
    ));
}

#[test]
fn index_ranges_are_scanned_in_turn_and_the_last_key_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path(), "spans");
    assert_eq!(log.index_last("spans").unwrap(), None);
    // Three files whose keys start with their "span" (a, b, c): each lies
    // beside the others, so they make one sorted run, never merged.
    for span in [b'a', b'b', b'c'] {
        let items: Vec<([u8; 2], [u8; 1])> = (0u8..5).map(|i| ([span, i], [i])).collect();
        log.ingest_sorted("spans", &items).unwrap();
    }
    assert_eq!(log.index_sorted_runs("spans").unwrap(), 1);
    assert_eq!(
        log.index_last("spans").unwrap(),
        Some((vec![b'c', 4], vec![4]))
    );
    let ranges =
        || [(b"a", 2u8), (b"b", 0), (b"c", 3)].map(|(p, from)| (p.to_vec(), vec![p[0], from]));
    let mut seen = Vec::new();
    log.index_scan_ranges("spans", ranges(), |k, v| {
        seen.push((k.to_vec(), v[0]));
        // On to the next range after key 3 of each.
        Ok::<_, LedgerError>(k[1] < 3)
    })
    .unwrap();
    let want: Vec<(Vec<u8>, u8)> = [
        (b'a', 2),
        (b'a', 3),
        (b'b', 0),
        (b'b', 1),
        (b'b', 2),
        (b'b', 3),
        (b'c', 3),
    ]
    .map(|(s, i)| (vec![s, i], i))
    .to_vec();
    assert_eq!(seen, want);
    // An error ends the scan.
    let mut n = 0;
    let r = log.index_scan_ranges("spans", ranges(), |_, _| {
        n += 1;
        Err(LedgerError::Corrupt("stop".into()))
    });
    assert!(r.is_err());
    assert_eq!(n, 1);
    // Overlapping files are runs of their own, until merged.
    for _ in 0..2 {
        log.ingest_sorted("spans", &[(b"a", b"x"), (b"z", b"y")])
            .unwrap();
    }
    assert_eq!(log.index_sorted_runs("spans").unwrap(), 3);
    drop(log);
    // An index column family no longer asked for is of an earlier layout:
    // dropped on open.
    let log = open_indexed(dir.path(), "other");
    drop(log);
    let index =
        rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path().join("index")).unwrap();
    assert!(!index.iter().any(|n| n == "spans"), "{index:?}");
}

#[test]
fn a_sorted_build_is_added_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path(), "postings");
    let get = |k: &[u8]| log.index_get("postings", k).unwrap();
    // Keys out of order: an error, and not even the first key is added.
    let r = log.ingest_sorted_with("postings", |sink| {
        sink.put(b"b", b"1")?;
        sink.put(b"a", b"2")
    });
    assert!(r.is_err());
    assert_eq!(get(b"b"), None);
    // A build that fails part-way adds nothing either.
    let r = log.ingest_sorted_with("postings", |sink| {
        sink.put(b"c", b"1")?;
        Err(LedgerError::Corrupt("build failed".into()))
    });
    assert!(r.is_err());
    assert_eq!(get(b"c"), None);
    // Nothing put: nothing to add, and no error.
    log.ingest_sorted_with("postings", |_| Ok(())).unwrap();
    // Streamed items are all there.
    log.ingest_sorted_with("postings", |sink| {
        (0u32..1000).try_for_each(|i| sink.put(&i.to_be_bytes(), &[i as u8]))
    })
    .unwrap();
    assert_eq!(get(&999u32.to_be_bytes()), Some(vec![999u32 as u8]));
    assert_eq!(get(&0u32.to_be_bytes()), Some(vec![0]));
    // No temp file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
