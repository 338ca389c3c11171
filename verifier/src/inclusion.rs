//! RFC 9162 §2.1.3.2: verifying an inclusion proof.

use crate::hash::{node_hash, Hash};

/// Why an inclusion proof was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InclusionError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for this index and size.
    #[error(
        "inclusion proof has {got} hashes; leaf {index} of a tree of size {size} needs {want}"
    )]
    WrongLength {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
        /// Hashes in the proof.
        got: usize,
        /// Hashes such a proof has.
        want: usize,
    },
    /// The proof does not lead to the expected root.
    #[error("inclusion proof does not lead to the expected root")]
    RootMismatch,
}

/// Number of hashes in the inclusion proof of leaf `index` in a tree of
/// `size` leaves (`index < size`).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // Below the highest bit where the paths to `index` and `size-1` part, every
    // level has a sibling; above it, one per complete subtree to the left.
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Checks that `leaf` is the leaf hash at `index` in the tree of `size`
/// leaves whose root is `root`, given the audit path `proof` (leaf upward).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), InclusionError> {
    if root_from_inclusion(leaf, index, size, proof)? != *root {
        return Err(InclusionError::RootMismatch);
    }
    Ok(())
}

/// The root that the audit path `proof` (leaf upward) leads to from `leaf`
/// at `index` in a tree of `size` leaves: the root such a tree must have
/// for the proof to hold.
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexOutOfRange { index, size });
    }
    let want = inclusion_proof_len(index, size);
    if proof.len() != want {
        return Err(InclusionError::WrongLength {
            index,
            size,
            got: proof.len(),
            want,
        });
    }
    // The algorithm of §2.1.3.2 step by step, `fn` and `sn` as named there.
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            // Unreachable once the length matched; kept as the RFC states it.
            return Err(InclusionError::RootMismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(InclusionError::RootMismatch);
    }
    Ok(r)
}
