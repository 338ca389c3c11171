//! Index column families whose keys are grouped by a prefix (ingest's
//! postings, by span): every compaction keeps the groups in files of their
//! own, so a removed group's bytes leave the disk with its files; files
//! merged before that (RocksDB's periodic compaction, under an earlier
//! version) are compacted whole once, when a removal meets them.

mod common;

use std::path::Path;

use common::in_sst_files;
use ledger::{IndexFamily, Log};
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

const GROUPED: IndexFamily = IndexFamily::grouped("postings", 8);
const PLAIN: IndexFamily = IndexFamily::new("postings");

fn open(dir: &Path, family: IndexFamily) -> Log {
    Log::open_with(dir, &signer().verifier(), &[family]).unwrap()
}

fn group(g: u64) -> Vec<u8> {
    g.to_be_bytes().to_vec()
}

/// A value no other group's items hold, to be found in the files.
fn marker(g: u64, what: &str) -> Vec<u8> {
    format!("{what}-of-group-{g:03}").into_bytes()
}

/// Writes groups `0..n`, each as one ingested file of 200 items.
fn fill(log: &Log, n: u64, what: &str) {
    for g in 0..n {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0u16..200)
            .map(|i| {
                (
                    [group(g), i.to_be_bytes().to_vec()].concat(),
                    marker(g, what),
                )
            })
            .collect();
        log.ingest_sorted("postings", &items).unwrap();
    }
}

/// The first and last key of each SST file of `postings` in the index
/// database of `dir` (the log closed).
fn file_ranges(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let index = dir.join("index");
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        &index,
        ["postings"],
        false,
    )
    .unwrap();
    db.live_files()
        .unwrap()
        .into_iter()
        .filter(|f| f.column_family_name == "postings" && f.num_entries > f.num_deletions)
        .map(|f| (f.start_key.unwrap(), f.end_key.unwrap()))
        .collect()
}

fn spans_groups(range: &(Vec<u8>, Vec<u8>)) -> bool {
    range.0[..8] != range.1[..8]
}

fn values(log: &Log) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    log.index_scan_ranges("postings", [(Vec::new(), Vec::new())], |_, v| {
        if found.last() != Some(&v.to_vec()) {
            found.push(v.to_vec());
        }
        Ok::<bool, ledger::LedgerError>(true)
    })
    .unwrap();
    found
}

#[test]
fn a_compaction_keeps_each_group_in_files_of_its_own() {
    for (family, apart) in [(GROUPED, true), (PLAIN, false)] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), family);
        fill(&log, 6, "v");
        // What RocksDB's periodic compaction does every 30 days.
        log.index_compact("postings").unwrap();
        drop(log);
        let ranges = file_ranges(dir.path());
        assert_eq!(ranges.iter().all(|r| !spans_groups(r)), apart, "{ranges:?}");
        if apart {
            assert_eq!(ranges.len(), 6);
        }
    }
}

#[test]
fn the_options_say_how_often_and_by_what_the_index_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_with(
        dir.path(),
        &signer().verifier(),
        &[GROUPED, IndexFamily::new("decisions")],
    )
    .unwrap();
    drop(log);
    let text = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("OPTIONS-"))
        .max()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    let section = |name: &str| -> String {
        let start = text.find(&format!("[CFOptions \"{name}\"]")).unwrap();
        let rest = &text[start + 1..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
    };
    for cf in ["postings", "decisions"] {
        assert!(
            section(cf).contains("periodic_compaction_seconds=2592000"),
            "{cf}"
        );
    }
    assert!(section("postings").contains("SstPartitionerFixedPrefixFactory"));
    assert!(section("postings").contains("length=8"));
    assert!(!section("decisions").contains("SstPartitionerFixedPrefixFactory"));
}

#[test]
fn deleted_groups_leave_files_merged_before_the_groups_were_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    // Merged as RocksDB's periodic compaction did before the groups were
    // kept apart.
    let log = open(dir.path(), PLAIN);
    fill(&log, 6, "v");
    log.index_compact("postings").unwrap();
    drop(log);
    assert!(file_ranges(dir.path()).iter().any(spans_groups));

    let log = open(dir.path(), GROUPED);
    let (from, to) = (group(0), group(2));
    log.index_delete("postings", &[], &[(from.clone(), to.clone())])
        .unwrap();
    // The merged file holds kept groups too: compacted whole, once.
    assert!(log.index_delete_files("postings", &from, &to).unwrap());
    let index = dir.path().join("index");
    for g in 0..6 {
        assert_eq!(in_sst_files(&index, &marker(g, "v")), g >= 2, "group {g}");
    }
    assert_eq!(
        values(&log),
        (2..6).map(|g| marker(g, "v")).collect::<Vec<_>>()
    );
    // From then on, a removal deletes files.
    let (from, to) = (group(2), group(3));
    log.index_delete("postings", &[], &[(from.clone(), to.clone())])
        .unwrap();
    assert!(!log.index_delete_files("postings", &from, &to).unwrap());
    assert!(!in_sst_files(&index, &marker(2, "v")));
    assert!(in_sst_files(&index, &marker(3, "v")));
    drop(log);
    assert!(file_ranges(dir.path()).iter().all(|r| !spans_groups(r)));
}

#[test]
fn a_group_replaced_again_and_again_leaves_only_its_newest_items() {
    for merged in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), if merged { PLAIN } else { GROUPED });
        fill(&log, 4, "v");
        if merged {
            log.index_compact("postings").unwrap();
            drop(log);
            log = open(dir.path(), GROUPED);
        }
        let (from, to) = (group(1), group(2));
        for round in 0..3 {
            let what = format!("r{round}");
            log.replace_sorted_range("postings", &from, &to, |sink| {
                (0u16..50).try_for_each(|i| {
                    sink.put(
                        &[from.clone(), i.to_be_bytes().to_vec()].concat(),
                        &marker(1, &what),
                    )
                })
            })
            .unwrap();
            // The new file joins the last level (its range deletion is in
            // it, not in a memtable it would have to sit above), so the
            // next replacement deletes it whole.
            assert_eq!(log.index_sorted_runs("postings").unwrap(), 1);
            let index = dir.path().join("index");
            for earlier in 0..round {
                let gone = marker(1, &format!("r{earlier}"));
                assert!(
                    !in_sst_files(&index, &gone),
                    "merged {merged}, round {round}"
                );
            }
            assert!(!in_sst_files(&index, &marker(1, "v")), "merged {merged}");
            for g in [0, 2, 3] {
                assert!(in_sst_files(&index, &marker(g, "v")));
            }
            assert_eq!(
                values(&log),
                [
                    marker(0, "v"),
                    marker(1, &what),
                    marker(2, "v"),
                    marker(3, "v")
                ]
            );
        }
    }
}
