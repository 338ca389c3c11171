//! RFC 9162 §2.1.4.2: verifying a consistency proof.

use crate::hash::{node_hash, Hash};

/// Why a consistency proof was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsistencyError {
    /// The old tree is larger than the new one.
    #[error("old size {old_size} is larger than new size {new_size}")]
    SizeOrder {
        /// The earlier tree size.
        old_size: u64,
        /// The later tree size.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("consistency proof has {got} hashes; sizes {old_size} -> {new_size} need {want}")]
    WrongLength {
        /// The earlier tree size.
        old_size: u64,
        /// The later tree size.
        new_size: u64,
        /// Hashes in the proof.
        got: usize,
        /// Hashes such a proof has.
        want: usize,
    },
    /// The proof does not reproduce the old root.
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// The proof does not reproduce the new root.
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// Number of hashes in the consistency proof from `old_size` to `new_size`.
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size >= new_size {
        return 0;
    }
    // Drop the levels where the old tree is a complete subtree of the new.
    let shift = old_size.trailing_zeros();
    let (m, n) = ((old_size - 1) >> shift, (new_size - 1) >> shift);
    let inner = 64 - (m ^ n).leading_zeros();
    let border = m.checked_shr(inner).unwrap_or(0).count_ones();
    // A non-power-of-two old tree also sends its own subtree hash first.
    (inner + border) as usize + usize::from(!old_size.is_power_of_two())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root`.
///
/// From size 0 only the empty root and an empty proof are accepted; between
/// equal sizes only equal roots and an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    if old_size > new_size {
        return Err(ConsistencyError::SizeOrder { old_size, new_size });
    }
    let want = consistency_proof_len(old_size, new_size);
    if proof.len() != want {
        return Err(ConsistencyError::WrongLength {
            old_size,
            new_size,
            got: proof.len(),
            want,
        });
    }
    if old_size == 0 {
        return if *old_root == Hash::empty() {
            Ok(())
        } else {
            Err(ConsistencyError::OldRootMismatch)
        };
    }
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ConsistencyError::NewRootMismatch)
        };
    }
    // §2.1.4.2 step by step; a power-of-two old tree is its own first hash.
    let (first, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in rest {
        if snode == 0 {
            return Err(ConsistencyError::NewRootMismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if fr != *old_root {
        return Err(ConsistencyError::OldRootMismatch);
    }
    if snode != 0 || sr != *new_root {
        return Err(ConsistencyError::NewRootMismatch);
    }
    Ok(())
}
