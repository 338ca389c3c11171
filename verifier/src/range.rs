//! Range proofs (specs/export.md, "Range proof"): that a run of consecutive
//! leaves `[first, end)` is exactly what a tree of `size` leaves holds there,
//! in the spirit of RFC 9162 §2.1: the leaves themselves plus the hashes of
//! the complete subtrees that cover the rest of the tree.
//!
//! ```text
//! left  = the complete subtrees covering [0, first)    (largest first)
//! right = the complete subtrees covering [end, size)   (left to right)
//! ```
//!
//! Both are the greedy decomposition of their span into the largest aligned
//! complete subtrees ([`cover`]). A verifier folds `left`, then every leaf
//! hash of the range in order, then `right` into a [`CompactRange`] and
//! compares its root with the signed one: O(log size) hashes of proof and of
//! memory, whatever the length of the range, so the range can be streamed.

use crate::hash::{node_hash, Hash};
use crate::tree::NodeId;

/// The largest aligned complete subtrees that cover `[begin, end)`, left to
/// right.
pub fn cover(begin: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut at = begin;
    while at < end {
        // The largest power of two that `at` is aligned to and that fits.
        let align = if at == 0 { 63 } else { at.trailing_zeros() };
        let fits = 63 - (end - at).leading_zeros();
        let level = align.min(fits) as u8;
        out.push(NodeId {
            level,
            index: at >> level,
        });
        at += 1 << level;
    }
    out
}

/// Why a range proof does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    /// A subtree was appended that does not start where the range ends, or
    /// is not aligned to its own size.
    #[error("subtree at level {level} index {index} does not continue a range ending at {end}")]
    NotAdjacent {
        /// The subtree's level.
        level: u8,
        /// Its index.
        index: u64,
        /// Where the range ended.
        end: u64,
    },
    /// The proof has the wrong number of hashes for the range and size.
    #[error("the range proof has {got} {side} hashes; [{first}, {end}) of a tree of {size} needs {want}")]
    WrongLength {
        /// `left` or `right`.
        side: &'static str,
        /// The range.
        first: u64,
        /// Its end.
        end: u64,
        /// The tree size.
        size: u64,
        /// Hashes given.
        got: usize,
        /// Hashes needed.
        want: usize,
    },
    /// The range does not lie in the tree.
    #[error("range [{first}, {end}) does not lie in a tree of {size} leaves")]
    OutOfRange {
        /// The range.
        first: u64,
        /// Its end.
        end: u64,
        /// The tree size.
        size: u64,
    },
    /// The leaves and proof lead to another root than the signed one.
    #[error("the range and its proof do not lead to the signed root")]
    RootMismatch,
}

/// Consecutive leaves `[begin, end)` held as the hashes of the largest
/// complete subtrees covering them (a compact range): appending a leaf or
/// a subtree on the right merges siblings, as binary addition carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactRange {
    begin: u64,
    end: u64,
    /// Left to right; levels strictly decrease only where alignment allows.
    nodes: Vec<(NodeId, Hash)>,
}

impl CompactRange {
    /// The empty range at `begin`.
    pub fn new(begin: u64) -> CompactRange {
        CompactRange {
            begin,
            end: begin,
            nodes: Vec::new(),
        }
    }

    /// Where the range ends.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends the leaf hash of leaf `end`.
    pub fn push_leaf(&mut self, leaf: Hash) {
        let id = NodeId::leaf(self.end);
        // A leaf at `end` always continues the range.
        let _ = self.push(id, leaf);
    }

    /// Appends a complete subtree that starts where the range ends.
    pub fn push(&mut self, id: NodeId, hash: Hash) -> Result<(), RangeError> {
        let start = id.index.checked_shl(u32::from(id.level));
        let width = 1u64.checked_shl(u32::from(id.level));
        let (Some(start), Some(width)) = (start, width) else {
            return Err(self.not_adjacent(id));
        };
        if start != self.end || start >> id.level != id.index {
            return Err(self.not_adjacent(id));
        }
        self.end = start.checked_add(width).ok_or(self.not_adjacent(id))?;
        self.nodes.push((id, hash));
        while let [.., (l, lh), (r, rh)] = self.nodes[..] {
            if l.level != r.level || l.index % 2 != 0 || l.index + 1 != r.index {
                break;
            }
            let parent = (
                NodeId {
                    level: l.level + 1,
                    index: l.index / 2,
                },
                node_hash(&lh, &rh),
            );
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push(parent);
        }
        Ok(())
    }

    fn not_adjacent(&self, id: NodeId) -> RangeError {
        RangeError::NotAdjacent {
            level: id.level,
            index: id.index,
            end: self.end,
        }
    }

    /// The RFC 9162 root of the tree `[0, end)`, if the range starts at 0.
    pub fn root(&self) -> Option<Hash> {
        if self.begin != 0 {
            return None;
        }
        let mut nodes = self.nodes.iter().rev();
        let Some((_, last)) = nodes.next() else {
            return Some(Hash::empty());
        };
        Some(nodes.fold(*last, |right, (_, left)| node_hash(left, &right)))
    }
}

/// Checks the lengths of a range proof for `[first, end)` of a tree of
/// `size` leaves and starts its verification: the compact range of
/// `[0, first)` from `left`, to which the range's leaves are then pushed.
pub fn start(
    first: u64,
    end: u64,
    size: u64,
    left: &[Hash],
    right: &[Hash],
) -> Result<CompactRange, RangeError> {
    if first > end || end > size {
        return Err(RangeError::OutOfRange { first, end, size });
    }
    for (side, got, want) in [
        ("left", left.len(), cover(0, first).len()),
        ("right", right.len(), cover(end, size).len()),
    ] {
        if got != want {
            return Err(RangeError::WrongLength {
                side,
                first,
                end,
                size,
                got,
                want,
            });
        }
    }
    let mut range = CompactRange::new(0);
    for (id, hash) in cover(0, first).into_iter().zip(left) {
        range.push(id, *hash)?;
    }
    Ok(range)
}

/// Finishes the verification started by [`start`]: `range` must now end at
/// the proof's `end`; `right` takes it to `size`, whose root must be `root`.
pub fn finish(
    mut range: CompactRange,
    end: u64,
    size: u64,
    right: &[Hash],
    root: &Hash,
) -> Result<(), RangeError> {
    if range.end() != end {
        return Err(RangeError::OutOfRange {
            first: range.begin,
            end: range.end(),
            size,
        });
    }
    for (id, hash) in cover(end, size).into_iter().zip(right) {
        range.push(id, *hash)?;
    }
    match range.root() {
        Some(r) if range.end() == size && r == *root => Ok(()),
        _ => Err(RangeError::RootMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;
    use crate::tree::{HashReader, MemoryTree};

    #[test]
    fn covers_are_aligned_and_complete() {
        assert_eq!(
            cover(5, 13),
            vec![
                NodeId { level: 0, index: 5 },
                NodeId { level: 1, index: 3 },
                NodeId { level: 2, index: 2 },
                NodeId {
                    level: 0,
                    index: 12
                }
            ]
        );
        assert_eq!(cover(0, 8), vec![NodeId { level: 3, index: 0 }]);
        assert!(cover(7, 7).is_empty());
    }

    #[test]
    fn every_range_of_every_small_tree_proves_its_root() {
        let mut tree = MemoryTree::new();
        let leaves: Vec<Hash> = (0..40u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        leaves.iter().for_each(|l| tree.push(*l));
        for size in 1..=40u64 {
            let root = tree.root_at(size).unwrap();
            for first in 0..=size {
                for end in first..=size {
                    let hashes = |b, e| -> Vec<Hash> {
                        cover(b, e)
                            .into_iter()
                            .map(|id| tree.node(id).unwrap())
                            .collect()
                    };
                    let (left, right) = (hashes(0, first), hashes(end, size));
                    let mut range = start(first, end, size, &left, &right).unwrap();
                    leaves[first as usize..end as usize]
                        .iter()
                        .for_each(|l| range.push_leaf(*l));
                    finish(range.clone(), end, size, &right, &root).unwrap();
                    // A changed leaf, a missing one, or a wrong proof fails.
                    if end > first {
                        let mut bad = start(first, end, size, &left, &right).unwrap();
                        for (i, l) in leaves[first as usize..end as usize].iter().enumerate() {
                            bad.push_leaf(if i == 0 { leaf_hash(b"x") } else { *l });
                        }
                        assert!(finish(bad, end, size, &right, &root).is_err());
                        let mut short = start(first, end, size, &left, &right).unwrap();
                        leaves[first as usize..end as usize - 1]
                            .iter()
                            .for_each(|l| short.push_leaf(*l));
                        assert!(finish(short, end, size, &right, &root).is_err());
                    }
                    if let Some(h) = right.first() {
                        let mut wrong = right.clone();
                        wrong[0] = node_hash(h, h);
                        assert!(finish(range, end, size, &wrong, &root).is_err());
                    }
                }
            }
        }
    }
}
