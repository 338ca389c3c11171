//! Property tests: the log's tree math against two independent references,
//! rs_merkle (with an RFC 6962 hasher) and the recursive RFC 9162 definitions.

mod common;

use common::{naive_path, naive_root, naive_subproof};
use proptest::prelude::*;
use verifier::consistency::{consistency_proof_len, verify_consistency};
use verifier::inclusion::{inclusion_proof_len, verify_inclusion};
use verifier::tree::{consistency_proof, inclusion_proof, MemoryTree};
use verifier::{leaf_hash, node_hash, Hash};

/// rs_merkle builds bottom-up and promotes an unpaired last node, which gives
/// the same tree as RFC 9162's split at the largest power of two.
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

fn leaves(n: usize, seed: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("{seed}/{i}").as_bytes()))
        .collect()
}

fn memory_tree(leaves: &[Hash]) -> MemoryTree {
    let mut t = MemoryTree::new();
    leaves.iter().for_each(|&l| t.push(l));
    t
}

fn rs_tree(leaves: &[Hash]) -> rs_merkle::MerkleTree<Rfc6962> {
    let raw: Vec<[u8; 32]> = leaves.iter().map(|h| h.0).collect();
    rs_merkle::MerkleTree::<Rfc6962>::from_leaves(&raw)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn roots_and_inclusion_match_references(n in 1usize..700, seed: u64, pick: prop::sample::Index) {
        let l = leaves(n, seed);
        let tree = memory_tree(&l);
        let rs = rs_tree(&l);
        let root = tree.root_at(n as u64).unwrap();
        prop_assert_eq!(root, naive_root(&l));
        prop_assert_eq!(root.0, rs.root().unwrap());
        let i = pick.index(n);
        let proof = inclusion_proof(&tree, i as u64, n as u64).unwrap();
        prop_assert_eq!(&proof, &naive_path(i, &l));
        let rs_proof: Vec<Hash> = rs.proof(&[i]).proof_hashes().iter().map(|h| Hash(*h)).collect();
        prop_assert_eq!(&proof, &rs_proof);
        prop_assert_eq!(proof.len(), inclusion_proof_len(i as u64, n as u64));
        prop_assert!(verify_inclusion(&l[i], i as u64, n as u64, &proof, &root).is_ok());
    }

    #[test]
    fn consistency_matches_reference(n in 1usize..700, seed: u64, pick: prop::sample::Index) {
        let l = leaves(n, seed);
        let tree = memory_tree(&l);
        let m = pick.index(n) + 1;
        let proof = consistency_proof(&tree, m as u64, n as u64).unwrap();
        prop_assert_eq!(&proof, &naive_subproof(m, &l, true));
        prop_assert_eq!(proof.len(), consistency_proof_len(m as u64, n as u64));
        let (old, new) = (naive_root(&l[..m]), naive_root(&l));
        prop_assert!(verify_consistency(m as u64, n as u64, &old, &new, &proof).is_ok());
        // A different old tree of the same size is never consistent.
        let mut forged = l[..m].to_vec();
        forged[m - 1] = leaf_hash(b"forged");
        prop_assert!(verify_consistency(m as u64, n as u64, &naive_root(&forged), &new, &proof).is_err());
    }

    #[test]
    fn huge_sizes_do_not_panic(index: u64, size: u64, m: u64, n: u64, k in 0usize..70) {
        let proof = vec![Hash::empty(); k];
        let _ = verify_inclusion(&Hash::empty(), index, size, &proof, &Hash::empty());
        let _ = verify_consistency(m, n, &Hash::empty(), &Hash::empty(), &proof);
    }
}

#[test]
fn tree_of_70000_leaves_crosses_tile_boundaries() {
    let l = leaves(70_000, 7);
    let tree = memory_tree(&l);
    let rs = rs_tree(&l);
    assert_eq!(tree.root_at(70_000).unwrap().0, rs.root().unwrap());
    for size in [255u64, 256, 257, 65_535, 65_536, 65_537, 69_999] {
        let sub = rs_tree(&l[..size as usize]);
        let root = tree.root_at(size).unwrap();
        assert_eq!(root.0, sub.root().unwrap(), "size {size}");
        for i in [0, size / 2, size - 1] {
            let proof = inclusion_proof(&tree, i, size).unwrap();
            let want: Vec<Hash> = sub
                .proof(&[i as usize])
                .proof_hashes()
                .iter()
                .map(|h| Hash(*h))
                .collect();
            assert_eq!(proof, want, "{i}/{size}");
            verify_inclusion(&l[i as usize], i, size, &proof, &root).unwrap();
        }
        let c = consistency_proof(&tree, size, 70_000).unwrap();
        verify_consistency(size, 70_000, &root, &tree.root_at(70_000).unwrap(), &c).unwrap();
    }
}

#[test]
fn rfc_edge_cases() {
    let l = leaves(64, 1);
    let tree = memory_tree(&l);
    // Size 1: empty path; index 0 and last leaf; equal sizes; powers of two.
    let r1 = tree.root_at(1).unwrap();
    assert_eq!(r1, l[0]);
    verify_inclusion(&l[0], 0, 1, &[], &r1).unwrap();
    for size in [2u64, 4, 8, 16, 32, 64] {
        let root = tree.root_at(size).unwrap();
        for i in [0, size - 1] {
            let p = inclusion_proof(&tree, i, size).unwrap();
            assert_eq!(p.len() as u32, size.trailing_zeros());
            verify_inclusion(&l[i as usize], i, size, &p, &root).unwrap();
        }
        assert!(consistency_proof(&tree, size, size).unwrap().is_empty());
        verify_consistency(size, size, &root, &root, &[]).unwrap();
        let c = consistency_proof(&tree, size / 2, size).unwrap();
        verify_consistency(size / 2, size, &tree.root_at(size / 2).unwrap(), &root, &c).unwrap();
    }
    // From the empty tree: only the empty root with an empty proof.
    verify_consistency(0, 5, &Hash::empty(), &tree.root_at(5).unwrap(), &[]).unwrap();
    assert!(verify_consistency(0, 5, &l[0], &tree.root_at(5).unwrap(), &[]).is_err());
    assert!(verify_consistency(5, 4, &l[0], &l[0], &[]).is_err());
    assert!(verify_inclusion(&l[0], 1, 1, &[], &r1).is_err());
    assert!(inclusion_proof(&tree, 64, 64).is_err());
    assert!(consistency_proof(&tree, 3, 2).is_err());
    // Equal sizes with different roots.
    assert!(verify_consistency(3, 3, &l[0], &l[1], &[]).is_err());
}
