//! Computing roots and proofs from the hashes of complete subtrees.
//!
//! A log stores, for every level `L` and index `K`, the hash of the complete
//! subtree that covers leaves `[K·2^L, (K+1)·2^L)` (a [`NodeId`]). Level 0 holds
//! the leaf hashes; level 8 holds what tlog-tiles calls the level-1 tile
//! hashes, and so on. Any root, inclusion proof (RFC 9162 §2.1.3.1) or
//! consistency proof (§2.1.4.1) for any size up to the current one needs only
//! O(log n) of those hashes, read through a [`HashReader`]: the ledger reads
//! them from RocksDB, a tile client from fetched tiles, tests from a
//! [`MemoryTree`].

use crate::hash::{node_hash, Hash};

/// A complete subtree: `level` L and `index` K cover leaves `[K·2^L, (K+1)·2^L)`.
///
/// A leaf index is a `NodeId` at level 0; keeping the two apart in the type
/// stops a node index at one level being read as a leaf index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = leaf hash).
    pub level: u8,
    /// Position among the nodes of that level, from the left.
    pub index: u64,
}

impl NodeId {
    /// The node holding the leaf hash of leaf `index`.
    pub fn leaf(index: u64) -> NodeId {
        NodeId { level: 0, index }
    }
}

/// Source of complete-subtree hashes. Implementations are asked only for
/// nodes that lie wholly inside the tree size being computed.
pub trait HashReader {
    /// Why a hash could not be read (missing, storage failure, …).
    type Error;
    /// The hash of one complete subtree.
    fn node(&self, id: NodeId) -> Result<Hash, Self::Error>;
}

/// Why a root or proof could not be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError<E> {
    /// An inclusion proof was asked for a leaf outside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("cannot prove consistency from size {old_size} to smaller size {new_size}")]
    SizeOrder {
        /// The earlier tree size.
        old_size: u64,
        /// The later tree size.
        new_size: u64,
    },
    /// The reader failed.
    #[error("reading a tree hash: {0}")]
    Read(E),
}

/// The largest power of two strictly below `n` (RFC 9162's `k`); `n >= 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[lo:hi])` for `lo < hi`. Ranges that are an aligned power of two are a
/// single stored node; others split as RFC 9162 does.
pub fn range_hash<R: HashReader>(reader: &R, lo: u64, hi: u64) -> Result<Hash, R::Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros() as u8;
        return reader.node(NodeId {
            level,
            index: lo >> level,
        });
    }
    let k = split_point(n);
    let left = range_hash(reader, lo, lo + k)?;
    let right = range_hash(reader, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves (`SHA-256("")` for size 0).
pub fn root<R: HashReader>(reader: &R, size: u64) -> Result<Hash, R::Error> {
    if size == 0 {
        return Ok(Hash::empty());
    }
    range_hash(reader, 0, size)
}

/// The RFC 9162 §2.1.3.1 inclusion proof (audit path) of leaf `index` in the
/// tree of `size` leaves, ordered from the leaf's sibling upward.
pub fn inclusion_proof<R: HashReader>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            path.push(range_hash(reader, lo + k, hi).map_err(TreeError::Read)?);
            hi = lo + k;
        } else {
            path.push(range_hash(reader, lo, lo + k).map_err(TreeError::Read)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The RFC 9162 §2.1.4.1 consistency proof from the tree of `old_size` leaves
/// to the tree of `new_size` leaves. Empty when the sizes are equal or
/// `old_size` is 0 (the empty tree is a prefix of every tree).
pub fn consistency_proof<R: HashReader>(
    reader: &R,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if old_size > new_size {
        return Err(TreeError::SizeOrder { old_size, new_size });
    }
    let mut proof = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled from the top; m is relative to lo.
    let (mut lo, mut hi, mut m, mut whole_old_tree) = (0, new_size, old_size, true);
    loop {
        if m == hi - lo {
            if !whole_old_tree {
                proof.push(range_hash(reader, lo, hi).map_err(TreeError::Read)?);
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            proof.push(range_hash(reader, lo + k, hi).map_err(TreeError::Read)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(reader, lo, lo + k).map_err(TreeError::Read)?);
            lo += k;
            m -= k;
            whole_old_tree = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The nodes that become complete when leaf `index` is appended: the leaf
/// itself, then each parent whose right child is the node just completed.
/// With the left siblings read from `reader`, the new hashes of one append.
pub fn new_nodes<R: HashReader>(
    reader: &R,
    index: u64,
    leaf: Hash,
) -> Result<Vec<(NodeId, Hash)>, R::Error> {
    let mut out = Vec::new();
    new_nodes_into(reader, index, leaf, &mut out)?;
    Ok(out)
}

/// [`new_nodes`], appended to `out` (a batch of appends fills one vector
/// instead of allocating one per leaf). On an error, what was appended
/// before it is left in `out`.
pub fn new_nodes_into<R: HashReader>(
    reader: &R,
    index: u64,
    leaf: Hash,
    out: &mut Vec<(NodeId, Hash)>,
) -> Result<(), R::Error> {
    out.push((NodeId::leaf(index), leaf));
    let (mut level, mut idx, mut hash) = (0u8, index, leaf);
    while idx & 1 == 1 {
        let left = reader.node(NodeId {
            level,
            index: idx - 1,
        })?;
        hash = node_hash(&left, &hash);
        level += 1;
        idx >>= 1;
        out.push((NodeId { level, index: idx }, hash));
    }
    Ok(())
}

/// Every complete-subtree hash of a tree held in memory: `levels[L][K]`.
/// For tests, small verifiers and rebuilding a tree from its entries.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one leaf hash, completing its parents.
    pub fn push(&mut self, leaf: Hash) {
        let index = self.size();
        // The left siblings of a new leaf are always present, so this cannot
        // fail; an empty list would only skip the append.
        for (id, hash) in new_nodes(self, index, leaf).unwrap_or_default() {
            let level = id.level as usize;
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
        }
    }

    /// The root of the first `size` leaves; `None` if `size` is too large.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        if size > self.size() {
            return None;
        }
        root(self, size).ok()
    }
}

/// A node a [`MemoryTree`] does not hold (the tree is smaller than asked).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no node at level {} index {}", .0.level, .0.index)]
pub struct MissingNode(pub NodeId);

impl HashReader for MemoryTree {
    type Error = MissingNode;
    fn node(&self, id: NodeId) -> Result<Hash, MissingNode> {
        self.levels
            .get(id.level as usize)
            .and_then(|level| level.get(usize::try_from(id.index).ok()?))
            .copied()
            .ok_or(MissingNode(id))
    }
}
