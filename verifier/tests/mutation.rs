//! Mutation tests: every single-bit flip of a proof, root, index, size,
//! signature or proof file must be rejected.

mod common;

use verifier::consistency::verify_consistency;
use verifier::consistency_file::ConsistencyFile;
use verifier::inclusion::verify_inclusion;
use verifier::tlog_proof::TlogProof;
use verifier::tree::{consistency_proof, inclusion_proof, MemoryTree};
use verifier::{leaf_hash, Checkpoint, Hash, SignerKey};

const SIZES: [u64; 9] = [1, 2, 3, 5, 8, 13, 16, 17, 40];

fn setup() -> (SignerKey, Vec<Vec<u8>>, MemoryTree) {
    let signer = SignerKey::from_seed("decisions.example.org/log", &[7; 32]).unwrap();
    let entries: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("decision {i}").into_bytes())
        .collect();
    let mut tree = MemoryTree::new();
    entries.iter().for_each(|e| tree.push(leaf_hash(e)));
    (signer, entries, tree)
}

fn signed_checkpoint(signer: &SignerKey, tree: &MemoryTree, size: u64) -> String {
    let cp = Checkpoint {
        origin: signer.name().into(),
        size,
        root: tree.root_at(size).unwrap(),
        extensions: vec![],
    };
    cp.sign(signer).unwrap()
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[bit / 8] ^= 1 << (bit % 8);
    b
}

fn flip_hash(h: &Hash, bit: usize) -> Hash {
    Hash::from_slice(&flip(&h.0, bit)).unwrap()
}

#[test]
fn raw_inclusion_bit_flips_rejected() {
    let (_, entries, tree) = setup();
    for size in SIZES {
        let root = tree.root_at(size).unwrap();
        for index in 0..size {
            let leaf = leaf_hash(&entries[index as usize]);
            let proof = inclusion_proof(&tree, index, size).unwrap();
            verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
            for bit in 0..256 {
                assert!(
                    verify_inclusion(&flip_hash(&leaf, bit), index, size, &proof, &root).is_err()
                );
                assert!(
                    verify_inclusion(&leaf, index, size, &proof, &flip_hash(&root, bit)).is_err()
                );
                for p in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[p] = flip_hash(&bad[p], bit);
                    assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
                }
            }
            for bit in 0..64 {
                assert!(
                    verify_inclusion(&leaf, index ^ (1 << bit), size, &proof, &root).is_err(),
                    "index {index} bit {bit} size {size}"
                );
            }
        }
    }
}

#[test]
fn raw_consistency_bit_flips_rejected() {
    let (_, _, tree) = setup();
    for new in SIZES {
        let new_root = tree.root_at(new).unwrap();
        for old in 1..=new {
            let old_root = tree.root_at(old).unwrap();
            let proof = consistency_proof(&tree, old, new).unwrap();
            verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
            for bit in 0..256 {
                assert!(verify_consistency(
                    old,
                    new,
                    &flip_hash(&old_root, bit),
                    &new_root,
                    &proof
                )
                .is_err());
                assert!(verify_consistency(
                    old,
                    new,
                    &old_root,
                    &flip_hash(&new_root, bit),
                    &proof
                )
                .is_err());
                for p in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[p] = flip_hash(&bad[p], bit);
                    assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                }
            }
        }
    }
}

#[test]
fn tlog_proof_file_bit_flips_rejected() {
    let (signer, entries, tree) = setup();
    let key = signer.verifier();
    for size in SIZES {
        let checkpoint = signed_checkpoint(&signer, &tree, size);
        for index in [0, size / 2, size - 1] {
            let file = TlogProof {
                extra: None,
                index,
                proof: inclusion_proof(&tree, index, size).unwrap(),
                checkpoint: checkpoint.clone(),
            }
            .to_text()
            .into_bytes();
            let entry = &entries[index as usize];
            verifier::tlog_proof::verify(&file, entry, &key).unwrap();
            for bit in 0..file.len() * 8 {
                let bad = flip(&file, bit);
                assert!(
                    verifier::tlog_proof::verify(&bad, entry, &key).is_err(),
                    "bit {bit} of {}",
                    String::from_utf8_lossy(&bad)
                );
            }
            for bit in 0..entry.len() * 8 {
                assert!(verifier::tlog_proof::verify(&file, &flip(entry, bit), &key).is_err());
            }
        }
    }
}

#[test]
fn consistency_file_and_checkpoint_bit_flips_rejected() {
    let (signer, _, tree) = setup();
    let key = signer.verifier();
    for (old, new) in [(1, 2), (3, 5), (8, 13), (13, 40), (16, 17), (17, 17)] {
        let (a, b) = (
            signed_checkpoint(&signer, &tree, old),
            signed_checkpoint(&signer, &tree, new),
        );
        let file = ConsistencyFile {
            old_size: old,
            new_size: new,
            proof: consistency_proof(&tree, old, new).unwrap(),
        }
        .to_text()
        .into_bytes();
        let check = |f: &[u8], a: &[u8], b: &[u8]| {
            ConsistencyFile::parse(f).and_then(|p| p.verify(a, b, &key))
        };
        check(&file, a.as_bytes(), b.as_bytes()).unwrap();
        for bit in 0..file.len() * 8 {
            assert!(
                check(&flip(&file, bit), a.as_bytes(), b.as_bytes()).is_err(),
                "file bit {bit}"
            );
        }
        for bit in 0..a.len() * 8 {
            assert!(
                check(&file, &flip(a.as_bytes(), bit), b.as_bytes()).is_err(),
                "old bit {bit}"
            );
        }
        for bit in 0..b.len() * 8 {
            assert!(
                check(&file, a.as_bytes(), &flip(b.as_bytes(), bit)).is_err(),
                "new bit {bit}"
            );
        }
    }
}
