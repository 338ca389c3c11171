//! The right edge of the tree: for each level, the rightmost complete node.
//!
//! That is all an append needs (the left siblings of every node it completes)
//! and all the current root needs (the perfect subtrees of the size's binary
//! decomposition are exactly the rightmost nodes of the levels whose bit is
//! set). At most 64 hashes, so appends are O(1) amortised with no reads.

use crate::tree::{new_nodes_into, HashReader, NodeId};
use crate::{node_hash, Hash};

/// The rightmost complete node at each level of a tree of `size` leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `last[l]` is node `(l, (size >> l) - 1)`, for every `l` with `size >> l > 0`.
    last: Vec<Hash>,
}

/// The node a frontier lacks (asked for something off the right edge).
#[derive(Debug, thiserror::Error)]
#[error("node at level {} index {} is not on the frontier", .0.level, .0.index)]
pub struct OffFrontier(pub NodeId);

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The nodes to read to rebuild the frontier of a tree of `size` leaves.
    pub fn nodes_for(size: u64) -> impl Iterator<Item = NodeId> {
        (0..64u8).map_while(move |level| {
            let count = size.checked_shr(u32::from(level)).unwrap_or(0);
            (count > 0).then(|| NodeId {
                level,
                index: count - 1,
            })
        })
    }

    /// A frontier from the hashes of [`Frontier::nodes_for`], in that order.
    pub fn from_nodes(size: u64, last: Vec<Hash>) -> Option<Frontier> {
        (Frontier::nodes_for(size).count() == last.len()).then_some(Frontier { size, last })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and returns every node it completes.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut nodes = Vec::new();
        self.push_into(leaf, &mut nodes);
        nodes
    }

    /// Appends a leaf hash and appends every node it completes to `nodes`.
    pub fn push_into(&mut self, leaf: Hash, nodes: &mut Vec<(NodeId, Hash)>) {
        // Left siblings of the completed nodes are all on the frontier, so
        // this never fails.
        let from = nodes.len();
        if new_nodes_into(&*self, self.size, leaf, nodes).is_err() {
            nodes.truncate(from);
        }
        for &(id, hash) in &nodes[from..] {
            let level = usize::from(id.level);
            if level == self.last.len() {
                self.last.push(hash);
            } else {
                self.last[level] = hash;
            }
        }
        self.size += 1;
    }

    /// The root of the tree (`SHA-256("")` when empty).
    pub fn root(&self) -> Hash {
        let mut root: Option<Hash> = None;
        for (level, hash) in self.last.iter().enumerate() {
            if self.size >> level & 1 == 1 {
                root = Some(match root {
                    None => *hash,
                    Some(right) => node_hash(hash, &right),
                });
            }
        }
        root.unwrap_or_else(Hash::empty)
    }
}

impl HashReader for Frontier {
    type Error = OffFrontier;
    fn node(&self, id: NodeId) -> Result<Hash, OffFrontier> {
        let count = self.size.checked_shr(u32::from(id.level)).unwrap_or(0);
        match self.last.get(usize::from(id.level)) {
            Some(h) if count > 0 && id.index == count - 1 => Ok(*h),
            _ => Err(OffFrontier(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;
    use crate::tree::MemoryTree;

    #[test]
    fn matches_memory_tree_roots_and_nodes() {
        let mut f = Frontier::new();
        let mut t = MemoryTree::new();
        assert_eq!(f.root(), Hash::empty());
        for i in 0..1100u64 {
            let leaf = leaf_hash(&i.to_be_bytes());
            let nodes = f.push(leaf);
            t.push(leaf);
            for (id, hash) in nodes {
                assert_eq!(t.node(id).unwrap(), hash);
            }
            assert_eq!(Some(f.root()), t.root_at(i + 1), "size {}", i + 1);
            let rebuilt: Vec<Hash> = Frontier::nodes_for(i + 1)
                .map(|id| t.node(id).unwrap())
                .collect();
            assert_eq!(Frontier::from_nodes(i + 1, rebuilt).unwrap(), f);
        }
    }
}
