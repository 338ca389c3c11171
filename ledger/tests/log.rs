//! The RocksDB log against the in-memory reference tree, rs_merkle and the
//! verifier: appends, reopen, proofs, tiles, checkpoints, corruption (the
//! index database beside it: `index_db.rs`).

use std::path::Path;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use verifier::consistency::verify_consistency;
use verifier::inclusion::verify_inclusion;
use verifier::tile::{hash_tile_data, Tile, TileHashReader, TileKind};
use verifier::tree::{consistency_proof, inclusion_proof, MemoryTree};
use verifier::{leaf_hash, node_hash, Hash, SignerKey};

use ledger::{LedgerError, Log};

#[derive(Clone)]
struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = [u8; 32];
    fn hash(data: &[u8]) -> [u8; 32] {
        leaf_hash(data).0
    }
    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(r) => node_hash(&Hash(*left), &Hash(*r)).0,
            None => *left,
        }
    }
}

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    format!("decision-{i}-{}", "x".repeat((i % 7) as usize)).into_bytes()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, &signer().verifier()).unwrap()
}

/// Appends `n` entries in batches of `batch`, mirroring them in a MemoryTree.
fn fill(log: &Log, mem: &mut MemoryTree, n: u64, batch: u64) {
    let mut next = log.size();
    let end = next + n;
    while next < end {
        let hi = (next + batch).min(end);
        let entries: Vec<Vec<u8>> = (next..hi).map(entry).collect();
        let range = log.append(&entries).unwrap();
        assert_eq!(range, next..hi);
        entries.iter().for_each(|e| mem.push(leaf_hash(e)));
        next = hi;
    }
}

#[test]
fn seventy_thousand_entries_match_rs_merkle_across_tile_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::new();
    fill(&log, &mut mem, 70_100, 997);
    // Reopened: the partial tiles of levels 0-2 are computed from storage.
    drop(log);
    let log = open(dir.path());
    let leaves: Vec<[u8; 32]> = (0..70_100).map(|i| leaf_hash(&entry(i)).0).collect();
    let mut rng = proptest::test_runner::TestRunner::deterministic();
    let sizes: Vec<u64> = [1, 255, 256, 257, 65_535, 65_536, 65_537, 70_100]
        .into_iter()
        .chain((0..6).map(|_| (1..=70_100u64).new_tree(&mut rng).unwrap().current()))
        .collect();
    for &size in &sizes {
        let rs = rs_merkle::MerkleTree::<Rfc6962>::from_leaves(&leaves[..size as usize]);
        let root = log.root(size).unwrap();
        assert_eq!(root.0, rs.root().unwrap(), "root at {size}");
        for index in [0, size / 3, size - 1] {
            let proof = log.inclusion_proof(index, size).unwrap();
            let want: Vec<Hash> = rs
                .proof(&[index as usize])
                .proof_hashes()
                .iter()
                .map(|h| Hash(*h))
                .collect();
            assert_eq!(proof, want, "inclusion {index}/{size}");
            verify_inclusion(&Hash(leaves[index as usize]), index, size, &proof, &root).unwrap();
        }
        for &old in &sizes {
            if old <= size {
                let proof = log.consistency_proof(old, size).unwrap();
                assert_eq!(proof, consistency_proof(&mem, old, size).unwrap());
                verify_consistency(old, size, &log.root(old).unwrap(), &root, &proof).unwrap();
            }
        }
    }
    // Tiles at every level served from storage equal the reference.
    for tile in [
        Tile {
            kind: TileKind::Hashes(0),
            index: 0,
            width: 256,
        },
        Tile {
            kind: TileKind::Hashes(0),
            index: 273,
            width: 212,
        },
        Tile {
            kind: TileKind::Hashes(1),
            index: 0,
            width: 256,
        },
        Tile {
            kind: TileKind::Hashes(1),
            index: 1,
            width: 17,
        },
        Tile {
            kind: TileKind::Hashes(2),
            index: 0,
            width: 1,
        },
    ] {
        assert_eq!(
            log.tile(&tile).unwrap(),
            hash_tile_data(&mem, &tile).unwrap(),
            "{}",
            tile.path()
        );
    }
    assert!(log
        .tile(&Tile {
            kind: TileKind::Hashes(1),
            index: 1,
            width: 18
        })
        .is_err());
    // A client holding only tiles computes the same root.
    let from_tiles = TileHashReader::new(70_100, |t: &Tile| log.tile(t));
    assert_eq!(
        verifier::tree::root(&from_tiles, 70_100).unwrap(),
        log.root(70_100).unwrap()
    );
    assert_eq!(log.audit(|_, _| {}).unwrap().entries, 70_100);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn random_batches_reopen_and_prove(batches in prop::collection::vec(1u64..600, 1..6), pick: prop::sample::Index) {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = MemoryTree::new();
        for b in &batches {
            // Reopen between batches: the frontier must come back from disk.
            let log = open(dir.path());
            fill(&log, &mut mem, *b, 173);
            log.sign_checkpoint(&signer()).unwrap();
        }
        let log = open(dir.path());
        let size = log.size();
        prop_assert_eq!(size, mem.size());
        prop_assert_eq!(log.root(size).unwrap(), mem.root_at(size).unwrap());
        let index = pick.index(size as usize) as u64;
        prop_assert_eq!(log.inclusion_proof(index, size).unwrap(), inclusion_proof(&mem, index, size).unwrap());
        let proof = log.tlog_proof(index, None).unwrap();
        let text = proof.to_text();
        prop_assert!(verifier::tlog_proof::verify(text.as_bytes(), &entry(index), &signer().verifier()).is_ok());
        prop_assert_eq!(log.entry(index).unwrap(), entry(index));
        let bundle = log.tile(&Tile { kind: TileKind::Entries, index: 0, width: size.min(256) as u16 }).unwrap();
        prop_assert_eq!(verifier::tile::decode_bundle(&bundle).unwrap().len() as u64, size.min(256));
    }
}

#[test]
fn checkpoints_are_kept_and_never_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::new();
    let empty = log.sign_checkpoint(&signer()).unwrap();
    assert_eq!(
        (empty.checkpoint.size, empty.checkpoint.root),
        (0, Hash::empty())
    );
    fill(&log, &mut mem, 10, 3);
    let a = log.sign_checkpoint(&signer()).unwrap();
    assert_eq!(
        log.sign_checkpoint(&signer()).unwrap(),
        a,
        "no growth, no new checkpoint"
    );
    fill(&log, &mut mem, 7, 7);
    let b = log.sign_checkpoint(&signer()).unwrap();
    assert_eq!(log.checkpoint_sizes(0, 10).unwrap(), vec![0, 10, 17]);
    assert_eq!(log.checkpoint_at(10).unwrap(), a);
    assert!(matches!(
        log.checkpoint_at(11),
        Err(LedgerError::NoCheckpoint(11))
    ));
    let proof = log.consistency_proof(10, 17).unwrap();
    let file = verifier::consistency_file::ConsistencyFile {
        old_size: 10,
        new_size: 17,
        proof,
    };
    file.verify(a.text.as_bytes(), b.text.as_bytes(), &signer().verifier())
        .unwrap();
    // Another key cannot sign for this log: one of its origin that is
    // not among its keys, nor one of another log.
    let other = SignerKey::from_seed("test.example/log", &[4; 32]).unwrap();
    assert!(matches!(
        log.sign_checkpoint(&other),
        Err(LedgerError::UnknownKey { .. })
    ));
    let other = SignerKey::from_seed("other.example/log", &[4; 32]).unwrap();
    assert!(matches!(
        log.sign_checkpoint(&other),
        Err(LedgerError::WrongLog { .. })
    ));
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.latest_checkpoint().unwrap(), b);
    assert!(log.tlog_proof(3, Some(10)).is_ok());
    assert!(
        log.tlog_proof(10, Some(10)).is_err(),
        "index outside that checkpoint"
    );
}

#[test]
fn bad_requests_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(&[b"one".to_vec()]).unwrap();
    let too_big = vec![vec![1u8; 10], vec![0u8; 65_536]];
    assert!(matches!(
        log.append(&too_big),
        Err(LedgerError::EntryTooLarge {
            position: 1,
            len: 65_536
        })
    ));
    assert_eq!(log.size(), 1);
    log.append(&[vec![0u8; 65_535]]).unwrap();
    assert!(matches!(log.entry(2), Err(LedgerError::OutOfRange { .. })));
    assert!(log.root(3).is_err());
    assert!(log.inclusion_proof(2, 2).is_err());
    assert!(log.consistency_proof(2, 1).is_err());
    assert!(log.tlog_proof(0, None).is_err(), "nothing signed yet");
    assert!(log
        .tile(&Tile {
            kind: TileKind::Hashes(0),
            index: 1,
            width: 1
        })
        .is_err());
    let other = SignerKey::from_seed("other.example/log", &[3; 32]).unwrap();
    drop(log);
    assert!(matches!(
        Log::open(dir.path(), &other.verifier()),
        Err(LedgerError::WrongLog { .. })
    ));
}

/// The key of a record kept by position (specs/storage.md): `p` ‖
/// position (8 BE) ‖ kind (0xff for an entry chunk, L for a full tile of
/// level L ending at that leaf).
fn position_key(position: u64, kind: u8) -> Vec<u8> {
    let mut key = vec![b'p'];
    key.extend_from_slice(&position.to_be_bytes());
    key.push(kind);
    key
}

/// Rewrites the value of `key` in the store in `dir` with `f`.
fn corrupt(dir: &Path, key: &[u8], f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(false);
    let db = rocksdb::DB::open(&opts, dir).unwrap();
    let value = db.get(key).unwrap().expect("the key is stored");
    db.put(key, f(value)).unwrap();
}

#[test]
fn corrupted_node_is_caught_by_open_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill(&log, &mut MemoryTree::new(), 300, 300);
    log.sign_checkpoint(&signer()).unwrap();
    assert_eq!(log.audit(|_, _| {}).unwrap().checkpoints, 1);
    drop(log);
    // Level-0 tile 0 is full (leaves 0..256), so stored, under the leaf it
    // ends at; its root, node (8, 0), is on the path to the root of 300.
    corrupt(dir.path(), &position_key(256, 0), |mut tile| {
        assert_eq!(tile.len(), 256 * 32);
        tile[..32].copy_from_slice(&[0xee; 32]);
        tile
    });
    refused_for_the_root_at(dir.path(), 300);
    let log = Log::open_for_audit(dir.path(), &signer().verifier(), &[]).unwrap();
    let err = log.audit(|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("level 0 index 0"), "{err}");
}

/// Opening the store in `dir` is refused: its tree does not have the root
/// signed at `size`.
fn refused_for_the_root_at(dir: &Path, size: u64) {
    let err = Log::open(dir, &signer().verifier())
        .err()
        .expect("open must refuse");
    assert!(
        matches!(err, LedgerError::RootMismatch { size: s, .. } if s == size),
        "{err}"
    );
}

/// Rewrites entry `index` of the chunk that starts at leaf `chunk`.
fn tamper_entry(dir: &Path, chunk: u64, index: u64) {
    corrupt(dir, &position_key(chunk, 0xff), |bytes| {
        let mut entries: Vec<Vec<u8>> = verifier::tile::decode_bundle(&bytes)
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        let pos = (index - chunk) as usize;
        assert_eq!(entries[pos], entry(index));
        entries[pos] = b"tampered".to_vec();
        verifier::tile::encode_bundle(entries.iter().map(Vec::as_slice)).unwrap()
    });
}

#[test]
fn corrupted_entry_is_caught_by_audit_or_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill(&log, &mut MemoryTree::new(), 300, 50);
    log.sign_checkpoint(&signer()).unwrap();
    drop(log);
    // Entries are stored in chunks of up to 16 (specs/storage.md): rewrite
    // leaf 17, the second entry of the chunk that starts at 16. Its hash is
    // in the full (stored) level-0 tile 0, so the tree still has the
    // signed root; the audit rehashes every entry.
    tamper_entry(dir.path(), 16, 17);
    let log = open(dir.path());
    let err = log.audit(|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("first bad leaf 17"), "{err}");
    drop(log);
    // Leaf 290 is past the last full tile: the partial tile is computed
    // from the entries on open, so the tree no longer has the signed root.
    tamper_entry(dir.path(), 288, 290);
    refused_for_the_root_at(dir.path(), 300);
}

#[test]
fn key_files_round_trip_with_private_mode() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ledger::keys::generate("keys.example/log").unwrap();
    let (key_path, _) = ledger::keys::save(dir.path(), &signer).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        ledger::keys::load_signer(dir.path()).unwrap().verifier(),
        signer.verifier()
    );
    assert_eq!(
        ledger::keys::load_verifier(dir.path()).unwrap(),
        signer.verifier()
    );
    assert!(
        ledger::keys::save(dir.path(), &signer).is_err(),
        "never overwrite a key"
    );
}

#[test]
fn prepared_appends_commit_in_order_and_stale_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::new();
    fill(&log, &mut mem, 10, 3);
    // Two appends prepared back to back on one tip, like the ingest batcher.
    let mut tip = log.tip();
    let a: Vec<Vec<u8>> = (10..30).map(entry).collect();
    let b: Vec<Vec<u8>> = (30..33).map(entry).collect();
    let pa = log.prepare(&mut tip, &a).unwrap();
    // Entries hashed by their builder (the ingest pipeline's leaves) go
    // the same way.
    let hashed: Vec<verifier::HashedEntry> =
        b.iter().cloned().map(verifier::HashedEntry::new).collect();
    let pb = log.prepare_hashed(&mut tip, &hashed).unwrap();
    assert_eq!((pa.range(), pb.range()), (10..30, 30..33));
    assert_eq!(log.size(), 10, "preparing writes nothing");
    // The second cannot go first: it was built on the first.
    let err = log.commit(pb).unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::Stale {
                prepared: 30,
                committed: 10
            }
        ),
        "{err}"
    );
    assert_eq!(log.size(), 10);
    let (range, leaves) = log.commit(pa).unwrap();
    assert_eq!(range, 10..30);
    a.iter().for_each(|e| mem.push(leaf_hash(e)));
    assert_eq!(leaves[0], leaf_hash(&a[0]));
    assert_eq!(log.root(30).unwrap(), mem.root_at(30).unwrap());
    // Rebuilt on the committed tree, the hashed entries commit too.
    let pb = log.prepare_hashed(&mut log.tip(), &hashed).unwrap();
    let (range, leaves) = log.commit(pb).unwrap();
    assert_eq!(range, 30..33);
    b.iter().for_each(|e| mem.push(leaf_hash(e)));
    assert_eq!(leaves[2], leaf_hash(&b[2]));
    assert_eq!(log.root(33).unwrap(), mem.root_at(33).unwrap());
    // A fresh tip continues from the committed tree; entries read back
    // across chunk boundaries (16) and an entry bundle is intact.
    fill(&log, &mut mem, 297, 297);
    assert_eq!(log.root(330).unwrap(), mem.root_at(330).unwrap());
    for i in [0, 9, 10, 15, 16, 29, 30, 31, 329] {
        assert_eq!(log.entry(i).unwrap(), entry(i), "entry {i}");
    }
    let tile = verifier::tile::Tile::parse_path("tile/entries/000").unwrap();
    let bundle = log.tile(&tile).unwrap();
    let got = verifier::tile::decode_bundle(&bundle).unwrap();
    assert_eq!(got.len(), 256);
    assert!(got.iter().enumerate().all(|(i, e)| *e == entry(i as u64)));
    assert_eq!(log.audit(|_, _| {}).unwrap().entries, 330);
}

#[test]
fn waiting_for_background_work_returns_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut mem = MemoryTree::new();
    fill(&log, &mut mem, 3000, 500);
    log.wait_for_background_work(std::time::Duration::from_secs(30))
        .unwrap();
    assert_eq!(log.size(), 3000);
    assert_eq!(log.entry(2999).unwrap(), entry(2999));
    assert_eq!(
        log.sign_checkpoint(&signer()).unwrap().checkpoint.root,
        mem.root_at(3000).unwrap()
    );
}

#[test]
fn scanning_entries_reads_any_range_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    // Appends of 5, 20 and 3 entries: chunks start at 0, 5, 16, 25.
    for (from, n) in [(0u64, 5u64), (5, 20), (25, 3)] {
        let entries: Vec<Vec<u8>> = (from..from + n).map(entry).collect();
        log.append(&entries).unwrap();
    }
    for (from, to) in [(0, 28), (3, 17), (16, 16), (24, 26), (27, 28)] {
        let mut seen = Vec::new();
        log.scan_entries(from, to, |i, e| {
            seen.push((i, e.to_vec()));
            Ok::<(), LedgerError>(())
        })
        .unwrap();
        let want: Vec<(u64, Vec<u8>)> = (from..to).map(|i| (i, entry(i))).collect();
        assert_eq!(seen, want, "{from}..{to}");
    }
    let past = log.scan_entries(20, 29, |_, _| Ok::<(), LedgerError>(()));
    assert!(
        matches!(past, Err(LedgerError::OutOfRange { value: 28, .. })),
        "{past:?}"
    );
    // The callback's error stops the scan.
    let mut calls = 0;
    let stop = log.scan_entries(0, 28, |i, _| {
        calls += 1;
        if i == 6 {
            Err(LedgerError::Corrupt("stop".into()))
        } else {
            Ok(())
        }
    });
    assert!(matches!(stop, Err(LedgerError::Corrupt(_))));
    assert_eq!(calls, 7);
}

/// The last signed checkpoint is kept outside RocksDB too: a store that
/// holds fewer leaves than it signed (the tail of its WAL lost), or other
/// leaves at that size, is refused, naming what was lost.
#[test]
fn a_store_behind_its_last_signed_checkpoint_is_refused() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let witness = |d: &Path| d.join(ledger::last_checkpoint::FILE_NAME);
    {
        let log = open(a.path());
        let entries: Vec<Vec<u8>> = (0..10).map(entry).collect();
        log.append(&entries).unwrap();
        log.sign_checkpoint(&signer()).unwrap();
    }
    assert!(std::fs::read_to_string(witness(a.path()))
        .unwrap()
        .contains("\n10\n"));
    // The same log with its last five leaves gone.
    {
        let log = open(b.path());
        let entries: Vec<Vec<u8>> = (0..5).map(entry).collect();
        log.append(&entries).unwrap();
    }
    std::fs::copy(witness(a.path()), witness(b.path())).unwrap();
    let err = Log::open(b.path(), &signer().verifier()).err().unwrap();
    assert!(
        matches!(
            err,
            LedgerError::BehindSignedCheckpoint {
                store: 5,
                signed: 10,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("leaves 5..10 are lost")
            && err.to_string().contains("ledgerctl restore"),
        "{err}"
    );
    // Ten other leaves: not the history that was signed.
    {
        let log = open(c.path());
        let entries: Vec<Vec<u8>> = (100..110).map(entry).collect();
        log.append(&entries).unwrap();
    }
    std::fs::copy(witness(a.path()), witness(c.path())).unwrap();
    assert!(matches!(
        Log::open(c.path(), &signer().verifier()),
        Err(LedgerError::RootMismatch { size: 10, .. })
    ));
    // An audit still opens such a store, and says what is wrong with it.
    let log = Log::open_for_audit(b.path(), &signer().verifier(), &[]).unwrap();
    assert!(matches!(
        log.audit(|_, _| {}),
        Err(LedgerError::BehindSignedCheckpoint {
            store: 5,
            signed: 10,
            ..
        })
    ));
}

/// An audit reports where `received_at` goes back in log order (a ledger
/// clock that went back), and passes: the leaves are signed as they are.
#[test]
fn an_audit_reports_a_clock_that_went_back() {
    use verifier::envelope::encode_parts;
    let dir = tempfile::tempdir().unwrap();
    let key = verifier::SignerKey::from_seed("clock.example/log", &[9; 32]).unwrap();
    let log = ledger::Log::open(dir.path(), &key.verifier()).unwrap();
    // An empty map: the leaves' records do not matter here.
    let record = [0xa0];
    let leaf = |t: &str| encode_parts(&record, t, "gw-1");
    log.append(&[
        leaf("2026-11-23T08:00:00Z"),
        leaf("2026-11-23T08:00:01Z"),
        leaf("2026-11-23T08:00:00.5Z"),
        b"a raw entry, passed over".to_vec(),
        leaf("2026-11-23T08:00:02Z"),
        leaf("2026-11-23T07:59:00Z"),
    ])
    .unwrap();
    log.sign_checkpoint(&key).unwrap();
    let report = log.audit(|_, _| {}).unwrap();
    assert_eq!(report.entries, 6);
    assert_eq!(
        (
            report.noticed.received.back,
            report.noticed.received.first_back
        ),
        (2, Some(2))
    );
    let w = report.noticed.received.warning().unwrap();
    assert!(
        w.contains("leaf 2 was received before") && w.contains("2 such leaves"),
        "{w}"
    );
}

/// An audit names the leaves an enforcer submitted under the id of one of
/// the ledger's own records (stores written before ledgerd refused such
/// ids): the erasure or retention record that id belongs to cannot be
/// logged. Ids the ledger never gives are not named (the ledger's own
/// records are: `verifier/tests/audit.rs`).
#[test]
fn an_audit_names_enforcer_leaves_under_the_ledgers_own_ids() {
    use verifier::cbor::{head, text_into};
    use verifier::envelope::encode_parts;
    let dir = tempfile::tempdir().unwrap();
    let key = verifier::SignerKey::from_seed("taken.example/log", &[7; 32]).unwrap();
    let log = ledger::Log::open(dir.path(), &key.verifier()).unwrap();
    // A record of one field: only `decision_id` matters here.
    let leaf = |id: &str, by: &str| {
        let mut record = Vec::new();
        head(5, 1, &mut record);
        text_into("decision_id", &mut record);
        text_into(id, &mut record);
        encode_parts(&record, "2026-11-23T08:00:00Z", by)
    };
    log.append(&[
        leaf("d-0", "gw-1"),
        leaf("ledger-erasure-0", "gw-1"),
        leaf("ledger-erasure-01", "gw-1"),
        leaf("ledger-retention-x", "gw-1"),
        leaf("ledger-retention-3", "relay-2"),
    ])
    .unwrap();
    log.sign_checkpoint(&key).unwrap();
    let report = log.audit(|_, _| {}).unwrap();
    let taken = &report.noticed.taken;
    assert_eq!(taken.count, 2);
    assert_eq!(
        taken.named,
        vec![
            (1, "the erasure of leaf 0".to_string(), "gw-1".to_string()),
            (
                4,
                "the retention record naming leaf 3 the first kept".to_string(),
                "relay-2".to_string()
            ),
        ]
    );
    let warnings: Vec<String> = report.noticed.warnings().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("2 leaves submitted by an enforcer")
            && warnings[0]
                .contains("leaf 1, submitted by \"gw-1\": the id of the erasure of leaf 0"),
        "{}",
        warnings[0]
    );
}
