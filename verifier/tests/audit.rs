//! `verifier::audit` over a mirror held in memory (`verifier::mirror`):
//! a log of entries, its bundles and checkpoints laid out as
//! specs/mirror.md says, audited clean; each way of damaging it is named;
//! a pruned bundle's hash tile stands for its entries. The tree is an
//! independent one ([`MemoryTree`]), and the frontier files round-trip.

mod common;

use std::collections::BTreeMap;

use verifier::audit::{audit, AuditError};
use verifier::checkpoint::Checkpoint;
use verifier::mirror::{frontier_text, parse_frontier, Mirror, MirrorError, MirrorFiles};
use verifier::tile::{encode_bundle, entry_bundles, TileKind};
use verifier::tree::MemoryTree;
use verifier::{leaf_hash, SignerKey};

#[derive(Clone, Default)]
struct Files(BTreeMap<String, Vec<u8>>);

impl MirrorFiles for Files {
    type Error = String;
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(path).cloned())
    }
    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        let prefix = format!("{path}/");
        Ok(self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }
}

fn signer() -> SignerKey {
    SignerKey::from_seed("audit.example/log", &[9; 32]).unwrap()
}

fn signed(tree: &MemoryTree, size: u64) -> Vec<u8> {
    Checkpoint {
        origin: "audit.example/log".into(),
        size,
        root: tree.root_at(size).unwrap(),
        extensions: vec![],
    }
    .sign(&signer())
    .unwrap()
    .into_bytes()
}

/// A mirror of `n` entries with checkpoints kept at `kept`.
fn mirror(n: u64, kept: &[u64]) -> (Files, MemoryTree) {
    mirror_of(
        (0..n).map(|i| format!("entry {i}").into_bytes()).collect(),
        kept,
    )
}

/// A mirror of `entries` with checkpoints kept at `kept`.
fn mirror_of(entries: Vec<Vec<u8>>, kept: &[u64]) -> (Files, MemoryTree) {
    let n = entries.len() as u64;
    let mut tree = MemoryTree::new();
    for e in &entries {
        tree.push(leaf_hash(e));
    }
    let mut files = Files::default();
    for tile in entry_bundles(0, n) {
        let from = (tile.index * 256) as usize;
        let bundle = encode_bundle(
            entries[from..from + usize::from(tile.width)]
                .iter()
                .map(Vec::as_slice),
        )
        .unwrap();
        files.0.insert(tile.path(), bundle);
    }
    for &k in kept {
        files.0.insert(format!("checkpoints/{k}"), signed(&tree, k));
    }
    files.0.insert("checkpoint".into(), signed(&tree, n));
    let mut f = verifier::frontier::Frontier::new();
    for e in &entries {
        f.push(leaf_hash(e));
    }
    files
        .0
        .insert("frontier".into(), frontier_text(&f).into_bytes());
    (files, tree)
}

fn run(files: &Files, held: &[Vec<u8>]) -> Result<verifier::audit::Audited, String> {
    let key = signer().verifier();
    audit(&Mirror(files.clone()), &key, &[], held, |_, _| {}).map_err(|e| e.to_string())
}

/// An enforcer's leaf under the id of one of the ledger's own records
/// (written before the ledger refused such ids) is named, and the audit
/// passes: the log is as signed.
#[test]
fn a_mirror_audit_names_enforcer_leaves_under_the_ledgers_own_ids() {
    use common::decisions::{erasure_leaf, four_leaves, leaf_by, record};
    let mut entries = four_leaves();
    let at = "2026-11-23T08:00:05Z";
    // The ledger's own erasure record of leaf 1 (its entry still here: a
    // pending erasure), and an enforcer's leaves under such ids.
    entries.push(erasure_leaf(&entries, 1, at));
    entries.push(leaf_by(&record("ledger-erasure-2"), at, "gw-1"));
    entries.push(leaf_by(&record("ledger-erasure-02"), at, "gw-1"));
    entries.push(leaf_by(&record("ledger-retention-3"), at, "relay-1"));
    let (files, _) = mirror_of(entries, &[]);
    let a = run(&files, &[]).unwrap();
    assert_eq!(a.pending_erasures, vec![1]);
    assert_eq!(
        a.noticed.taken.named,
        vec![
            (5, "the erasure of leaf 2".to_string(), "gw-1".to_string()),
            (
                7,
                "the retention record naming leaf 3 the first kept".to_string(),
                "relay-1".to_string()
            )
        ]
    );
    assert_eq!(a.noticed.warnings().count(), 1);
}

#[test]
fn a_whole_mirror_audits_clean_and_every_damage_is_named() {
    let (files, tree) = mirror(700, &[0, 256, 300, 700]);
    let a = run(&files, &[signed(&tree, 513)]).unwrap();
    assert_eq!(
        (a.checkpoint.size, a.kept, a.held, a.pruned),
        (700, 4, 1, 0)
    );
    assert_eq!(a.frontier.root(), tree.root_at(700).unwrap());
    let m = Mirror(files.clone());
    assert_eq!(m.frontier(&a.checkpoint).unwrap(), a.frontier);
    assert_eq!(
        parse_frontier(&files.0["frontier"]),
        Some(a.frontier.clone())
    );

    // A changed byte in an entry.
    let mut bad = files.clone();
    bad.0.get_mut("tile/entries/001").unwrap()[40] ^= 1;
    assert!(matches!(
        audit(&Mirror(bad), &signer().verifier(), &[], &[], |_, _| {}),
        Err(AuditError::Root(300))
    ));
    // A bundle missing, a partial one cut short.
    let mut bad = files.clone();
    bad.0.remove("tile/entries/001");
    assert_eq!(
        run(&bad, &[]).unwrap_err(),
        "the mirror has no tile/entries/001"
    );
    let mut bad = files.clone();
    bad.0.get_mut("tile/entries/002.p/188").unwrap().pop();
    assert!(run(&bad, &[])
        .unwrap_err()
        .contains("tile/entries/002.p/188"));
    // A kept checkpoint under another size, one of another tree held.
    let mut bad = files.clone();
    bad.0.insert("checkpoints/300".into(), signed(&tree, 301));
    assert!(run(&bad, &[])
        .unwrap_err()
        .contains("kept for size 300 is of size 301"));
    let mut other = MemoryTree::new();
    for i in 0..600u64 {
        other.push(leaf_hash(format!("another entry {i}").as_bytes()));
    }
    assert_eq!(
        run(&files, &[signed(&other, 600)]).unwrap_err(),
        format!("the entries do not hash to the root signed at size {}", 600)
    );
    // A held checkpoint of more leaves than the mirror has.
    let (_, longer) = mirror(800, &[]);
    assert!(run(&files, &[signed(&longer, 800)])
        .unwrap_err()
        .contains("held checkpoint 1 is of size 800, past the newest (700)"));
    // A checkpoint signed by another key.
    let mut bad = files.clone();
    let stranger = SignerKey::from_seed("audit.example/log", &[1; 32]).unwrap();
    let body = Checkpoint {
        origin: "audit.example/log".into(),
        size: 700,
        root: tree.root_at(700).unwrap(),
        extensions: vec![],
    };
    bad.0.insert(
        "checkpoint".into(),
        body.sign(&stranger).unwrap().into_bytes(),
    );
    assert!(run(&bad, &[])
        .unwrap_err()
        .starts_with("the newest checkpoint"));
    // A frontier that is not the checkpoint's tree.
    let mut bad = files.clone();
    let mut f = parse_frontier(&files.0["frontier"]).unwrap();
    f.push(leaf_hash(b"one more"));
    bad.0
        .insert("frontier".into(), frontier_text(&f).into_bytes());
    assert!(matches!(
        Mirror(bad.clone()).frontier(&a.checkpoint),
        Err(MirrorError::Frontier(_))
    ));
    // A sync stopped in its last step: `frontier.next` is the newest
    // checkpoint's tree, and taken; one of another size (cut before its
    // checkpoint was stored) is passed over, `frontier` taken.
    let mut cut = bad.clone();
    cut.0
        .insert("frontier.next".into(), files.0["frontier"].clone());
    assert_eq!(Mirror(cut).frontier(&a.checkpoint).unwrap(), a.frontier);
    let mut cut = files.clone();
    cut.0
        .insert("frontier.next".into(), frontier_text(&f).into_bytes());
    assert_eq!(
        Mirror(cut.clone()).frontier(&a.checkpoint).unwrap(),
        a.frontier
    );
    // A kept checkpoint being written (`.tmp`) is not yet kept.
    cut.0
        .insert("checkpoints/800.tmp".into(), b"half a checkpoint".to_vec());
    let again = run(&cut, &[]).unwrap();
    assert_eq!(again.kept, a.kept);
}

#[test]
fn a_pruned_bundle_is_checked_through_its_hashes() {
    let (mut files, tree) = mirror(600, &[256]);
    let bundle = files.0.remove("tile/entries/000").unwrap();
    let hashes: Vec<u8> = verifier::tile::decode_bundle(&bundle)
        .unwrap()
        .iter()
        .flat_map(|e| leaf_hash(e).as_bytes().to_vec())
        .collect();
    let tile0 = entry_bundles(0, 256).next().unwrap();
    let tile0 = verifier::audit::hashes_of(&tile0);
    assert_eq!(tile0.kind, TileKind::Hashes(0));
    files.0.insert(tile0.path(), hashes.clone());
    let a = run(&files, &[signed(&tree, 100)]).unwrap();
    assert_eq!((a.pruned, a.held), (256, 1));
    // A hash changed, or a hash tile cut short.
    let mut bad = files.clone();
    bad.0.get_mut(&tile0.path()).unwrap()[5] ^= 1;
    assert!(run(&bad, &[])
        .unwrap_err()
        .contains("root signed at size 256"));
    let mut bad = files.clone();
    bad.0.get_mut(&tile0.path()).unwrap().truncate(32 * 255);
    assert!(run(&bad, &[]).unwrap_err().contains("is not 256 hashes"));
}
