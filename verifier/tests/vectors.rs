//! Known-answer tests: every vector in ../shared/testvectors/, made by the Go
//! reference implementation (golang.org/x/mod/sumdb/tlog and note).

mod common;

use common::{hashes, hex_hash, load};
use verifier::checkpoint::{self, Checkpoint};
use verifier::consistency::verify_consistency;
use verifier::inclusion::verify_inclusion;
use verifier::note::{key_id, SignerKey, VerifierKey};
use verifier::tile::{
    decode_bundle, encode_bundle, encode_bundle_into, hash_tile_data, tile_root, Tile,
    TileHashReader, TileKind,
};
use verifier::tree::{consistency_proof, inclusion_proof, MemoryTree};
use verifier::{leaf_hash, Hash};

fn merkle_tree() -> (serde_json::Value, MemoryTree) {
    let v = load("merkle.json");
    let mut tree = MemoryTree::new();
    for leaf in v["leaves"].as_array().unwrap() {
        tree.push(leaf_hash(&hex::decode(leaf.as_str().unwrap()).unwrap()));
    }
    (v, tree)
}

#[test]
fn merkle_leaf_hashes_and_roots() {
    let (v, tree) = merkle_tree();
    assert_eq!(Hash::empty(), hex_hash(&v["empty_root"]));
    assert_eq!(tree.root_at(0), Some(hex_hash(&v["empty_root"])));
    let leaves = v["leaves"].as_array().unwrap();
    for (i, want) in hashes(&v["leaf_hashes"]).iter().enumerate() {
        assert_eq!(
            leaf_hash(&hex::decode(leaves[i].as_str().unwrap()).unwrap()),
            *want
        );
    }
    let roots = hashes(&v["roots"]);
    assert_eq!(roots.len(), 40);
    for (i, want) in roots.iter().enumerate() {
        assert_eq!(
            tree.root_at(i as u64 + 1),
            Some(*want),
            "root of size {}",
            i + 1
        );
    }
}

#[test]
fn merkle_inclusion_vectors_generate_and_verify() {
    let (v, tree) = merkle_tree();
    let leaf_hashes = hashes(&v["leaf_hashes"]);
    let roots = hashes(&v["roots"]);
    let cases = v["inclusion"].as_array().unwrap();
    assert_eq!(cases.len(), 820);
    for c in cases {
        let (index, size) = (
            c["index"].as_u64().unwrap(),
            c["tree_size"].as_u64().unwrap(),
        );
        let want = hashes(&c["audit_path"]);
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            want,
            "{index}/{size}"
        );
        let root = roots[size as usize - 1];
        verify_inclusion(&leaf_hashes[index as usize], index, size, &want, &root)
            .unwrap_or_else(|e| panic!("{index}/{size}: {e}"));
    }
}

#[test]
fn merkle_consistency_vectors_generate_and_verify() {
    let (v, tree) = merkle_tree();
    let roots = hashes(&v["roots"]);
    let cases = v["consistency"].as_array().unwrap();
    assert_eq!(cases.len(), 820);
    for c in cases {
        let (m, n) = (
            c["old_size"].as_u64().unwrap(),
            c["new_size"].as_u64().unwrap(),
        );
        let want = hashes(&c["proof"]);
        assert_eq!(consistency_proof(&tree, m, n).unwrap(), want, "{m} -> {n}");
        verify_consistency(m, n, &roots[m as usize - 1], &roots[n as usize - 1], &want)
            .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
    }
}

fn tiles_tree() -> (serde_json::Value, MemoryTree, Vec<Vec<u8>>) {
    let v = load("tiles.json");
    let size = v["tree_size"].as_u64().unwrap();
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let mut tree = MemoryTree::new();
    entries.iter().for_each(|e| tree.push(leaf_hash(e)));
    (v, tree, entries)
}

#[test]
fn tiles_match_go_reference() {
    let (v, tree, entries) = tiles_tree();
    assert_eq!(tree.root_at(1000), Some(hex_hash(&v["root"])));
    for t in v["tiles"].as_array().unwrap() {
        let path = t["path"].as_str().unwrap();
        let tile = Tile::parse_path(path).unwrap();
        assert_eq!(tile.path(), path);
        tile.check_in_tree(1000).unwrap();
        assert_eq!(
            hex::encode(hash_tile_data(&tree, &tile).unwrap()),
            t["data"].as_str().unwrap()
        );
    }
    // The root of each full level-0 tile is the matching hash of the
    // level-1 tile (the ledger computes its partial tiles so).
    let data = |path: &str| -> Vec<u8> {
        let t = v["tiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["path"] == path);
        hex::decode(
            t.unwrap_or_else(|| panic!("no tile {path}"))["data"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    let level_1 = data("tile/1/000.p/3");
    for (k, path) in ["tile/0/000", "tile/0/001", "tile/0/002"]
        .iter()
        .enumerate()
    {
        let root = tile_root(&data(path)).unwrap();
        assert_eq!(root.as_bytes(), &level_1[k * 32..k * 32 + 32], "{path}");
    }
    assert_eq!(tile_root(&data("tile/0/003.p/232")), None, "a partial tile");
    // One buffer for every bundle, as the ledger's writer encodes them: it
    // starts with stray bytes, and then holds the bundle before.
    let mut reused = vec![0xff; 3];
    for b in v["entry_bundles"].as_array().unwrap() {
        let path = b["path"].as_str().unwrap();
        let tile = Tile::parse_path(path).unwrap();
        assert_eq!((tile.kind, tile.path().as_str()), (TileKind::Entries, path));
        let start = (tile.index * 256) as usize;
        let slice = &entries[start..start + usize::from(tile.width)];
        let data = encode_bundle(slice.iter().map(|e| e.as_slice())).unwrap();
        assert_eq!(hex::encode(&data), b["data"].as_str().unwrap());
        encode_bundle_into(&mut reused, slice.iter().map(|e| e.as_slice())).unwrap();
        assert_eq!(reused, data);
        assert_eq!(
            decode_bundle(&data).unwrap(),
            slice.iter().map(|e| e.as_slice()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn bundles_refuse_an_entry_over_65535_bytes() {
    let (fits, over) = (vec![1u8; 65_535], vec![2u8; 65_536]);
    let ok = encode_bundle([fits.as_slice()]).unwrap();
    assert_eq!((ok.len(), &ok[..2]), (65_537, &[0xff, 0xff][..]));
    let mut out = Vec::new();
    assert!(matches!(
        encode_bundle_into(&mut out, [b"a".as_slice(), over.as_slice()]),
        Err(verifier::tile::TileError::EntryTooLarge(65_536))
    ));
    assert_eq!(out, [0, 1, b'a'], "the entries before the refused one");
    assert!(encode_bundle([over.as_slice()]).is_err());
}

#[test]
fn every_entry_verifies_from_go_tiles_alone() {
    let (v, _, _) = tiles_tree();
    let tiles: std::collections::HashMap<String, Vec<u8>> = v["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap().to_string(),
                hex::decode(t["data"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let reader = TileHashReader::new(1000, |t: &Tile| {
        tiles.get(&t.path()).cloned().ok_or("missing")
    });
    let root = hex_hash(&v["root"]);
    assert_eq!(verifier::tree::root(&reader, 1000).unwrap(), root);
    for i in 0..1000u64 {
        let proof = inclusion_proof(&reader, i, 1000).unwrap();
        verify_inclusion(
            &leaf_hash(format!("record {i}").as_bytes()),
            i,
            1000,
            &proof,
            &root,
        )
        .unwrap();
    }
}

#[test]
fn note_keys_match_go_reference() {
    let v = load("note.json");
    let name = v["key_name"].as_str().unwrap();
    let seed: [u8; 32] = hex::decode(v["ed25519_seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signer = SignerKey::from_seed(name, &seed).unwrap();
    assert_eq!(signer.to_secret_string(), v["signer_key"].as_str().unwrap());
    let parsed = SignerKey::parse(v["signer_key"].as_str().unwrap()).unwrap();
    assert_eq!(parsed.verifier(), signer.verifier());
    let vk = VerifierKey::parse(v["verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(vk, signer.verifier());
    assert_eq!(vk.to_string(), v["verifier_key"].as_str().unwrap());
    assert_eq!(format!("{:08x}", vk.id()), v["key_hash"].as_str().unwrap());
    assert_eq!(
        format!("{:08x}", key_id(name, &seed_public(&signer))),
        v["key_hash"].as_str().unwrap()
    );
    assert!(!format!("{signer:?}").contains(&v["signer_key"].as_str().unwrap()[40..]));
}

fn seed_public(signer: &SignerKey) -> [u8; 32] {
    let s = signer.verifier().to_string();
    let b64 = s.splitn(3, '+').nth(2).unwrap();
    let raw = base64_decode(b64);
    raw[1..].try_into().unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn checkpoint_signed_like_go_and_tamper_rejected() {
    let v = load("note.json");
    let signer = SignerKey::parse(v["signer_key"].as_str().unwrap()).unwrap();
    let vk = VerifierKey::parse(v["verifier_key"].as_str().unwrap()).unwrap();
    let body = v["checkpoint_body"].as_str().unwrap();
    let cp = Checkpoint::parse_body(body).unwrap();
    assert_eq!(cp.size, 1000);
    assert_eq!(cp.root, hex_hash(&load("tiles.json")["root"]));
    assert_eq!(cp.to_body(), body);
    // Ed25519 is deterministic: our signature is byte-identical to Go's.
    assert_eq!(
        cp.sign(&signer).unwrap(),
        v["signed_checkpoint"].as_str().unwrap()
    );
    assert_eq!(
        checkpoint::open(v["signed_checkpoint"].as_str().unwrap().as_bytes(), &vk).unwrap(),
        cp
    );
    let err =
        checkpoint::open(v["tampered_checkpoint"].as_str().unwrap().as_bytes(), &vk).unwrap_err();
    assert!(
        matches!(
            err,
            checkpoint::CheckpointError::Note(verifier::note::NoteError::InvalidSignature(_))
        ),
        "{err}"
    );
}
