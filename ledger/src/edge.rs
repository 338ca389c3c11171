//! The right edge of the hash tiles: for each tile level, the hashes of its
//! partial (not yet 256-wide) tile. Only full tiles are stored, each once;
//! the partial ones are computed when the log is opened (level 0 from the
//! last entries, level L from the full tiles of level L − 1) and then kept
//! in memory, growing with every append. [`DbReader`] reads the tree's
//! nodes through it: from a stored tile, or from the edge.

use rocksdb::DB;
use verifier::hash::HASH_SIZE;
use verifier::tile::{node_from_tile, tile_of, tile_root, TILE_HEIGHT, TILE_WIDTH};
use verifier::tree::{HashReader, NodeId};
use verifier::{leaf_hash, Hash};

use crate::erasure::stored_erased;
use crate::store::{scan_entries, tile_key};
use crate::LedgerError;

const FULL: usize = TILE_WIDTH as usize * HASH_SIZE;

/// A full tile to store: its key and its 256 hashes.
pub(crate) type FullTile = ([u8; 10], Vec<u8>);

/// The partial tile of each tile level of a tree of `size` leaves.
#[derive(Clone, Debug, Default)]
pub(crate) struct TileEdge {
    size: u64,
    partial: Vec<Vec<u8>>,
}

/// Where the hashes of one tile are, in the tree an edge belongs to.
pub(crate) enum TilePlace<'a> {
    /// Full, so stored.
    Stored,
    /// The partial tile of its level, held by the edge.
    Edge(&'a [u8]),
    /// Not one hash of it is complete yet.
    Beyond,
}

/// Complete nodes at tree level `8·L` in a tree of `size` leaves.
fn count(size: u64, tile_level: u8) -> u64 {
    size.checked_shr(u32::from(tile_level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

impl TileEdge {
    /// Computes the partial tiles of the tree of the `size` leaves stored in
    /// `db`: level 0's from the leaves after the last full tile, each level
    /// above from the full tiles of the level below.
    pub(crate) fn load(db: &DB, size: u64) -> Result<TileEdge, LedgerError> {
        let mut partial = Vec::new();
        for level in 0u8.. {
            let n = count(size, level);
            if n == 0 {
                break;
            }
            let width = n % TILE_WIDTH;
            let first = n - width;
            let mut bytes = Vec::with_capacity(FULL);
            if level == 0 {
                if width > 0 {
                    scan_entries(db, first, n, None, |i, entry| {
                        // An erased entry's hash is stored beside it.
                        let hash = match entry.is_empty() {
                            true => stored_erased(db, i)?.map(|e| e.leaf_hash),
                            false => None,
                        };
                        let hash = hash.unwrap_or_else(|| leaf_hash(entry));
                        bytes.extend_from_slice(hash.as_bytes());
                        Ok::<(), LedgerError>(())
                    })?;
                }
            } else {
                for index in first..n {
                    let below = level - 1;
                    let missing = || {
                        LedgerError::Corrupt(format!(
                            "hash tile level {below} index {index} is missing or not full"
                        ))
                    };
                    let tile = db
                        .get_pinned(tile_key(below, index).ok_or_else(missing)?)?
                        .ok_or_else(missing)?;
                    bytes.extend_from_slice(tile_root(&tile).ok_or_else(missing)?.as_bytes());
                }
            }
            partial.push(bytes);
        }
        Ok(TileEdge { size, partial })
    }

    /// Leaves of the tree this is the edge of.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Where tile `(level, index)` of this edge's tree is.
    pub(crate) fn place(&self, level: u8, index: u64) -> TilePlace<'_> {
        let n = count(self.size, level);
        let full = n / TILE_WIDTH;
        if index < full {
            TilePlace::Stored
        } else if index == full && !n.is_multiple_of(TILE_WIDTH) {
            match self.partial.get(usize::from(level)) {
                Some(bytes) => TilePlace::Edge(bytes),
                None => TilePlace::Beyond,
            }
        } else {
            TilePlace::Beyond
        }
    }

    /// Takes the nodes one append completed (in order) on a tree that grew
    /// to `size_after` leaves, and returns the tiles it filled, to store.
    pub(crate) fn add(
        &mut self,
        nodes: &[(NodeId, Hash)],
        size_after: u64,
    ) -> Result<Vec<FullTile>, LedgerError> {
        let mut out = Vec::new();
        for (id, hash) in nodes.iter().filter(|(id, _)| id.level % TILE_HEIGHT == 0) {
            let level = id.level / TILE_HEIGHT;
            let l = usize::from(level);
            if self.partial.len() <= l {
                self.partial.resize(l + 1, Vec::new());
            }
            let tile = &mut self.partial[l];
            if tile.is_empty() {
                // A tile grows to 8 KiB one hash at a time: allocate it once.
                tile.reserve_exact(FULL);
            }
            tile.extend_from_slice(hash.as_bytes());
            if tile.len() == FULL {
                let index = id.index / TILE_WIDTH;
                let key = tile_key(level, index).ok_or_else(|| {
                    LedgerError::Corrupt(format!("tile level {level} index {index} is past u64"))
                })?;
                out.push((key, std::mem::take(tile)));
            }
        }
        self.size = size_after;
        Ok(out)
    }
}

/// Reads node hashes from the stored full hash tiles and the partial
/// right-edge tiles of the tree `edge` is the edge of
/// (`verifier::tile::tile_of`). Every node complete in a tree of any size
/// up to the edge's is in one or the other: a tile is stored once full,
/// and a partial tile grows only at its end.
pub(crate) struct DbReader<'a> {
    pub(crate) db: &'a DB,
    pub(crate) edge: std::borrow::Cow<'a, TileEdge>,
}

impl DbReader<'_> {
    /// The bytes of hash tile `(level, index)`: full, partial (the right
    /// edge), or empty if the tree has no node of it yet.
    pub(crate) fn tile(&self, level: u8, index: u64) -> Result<Vec<u8>, LedgerError> {
        match self.edge.place(level, index) {
            TilePlace::Stored => Ok(self
                .db
                .get(tile_key(level, index).ok_or_else(|| missing_tile(level, index))?)?
                .ok_or_else(|| missing_tile(level, index))?),
            TilePlace::Edge(bytes) => Ok(bytes.to_vec()),
            TilePlace::Beyond => Ok(Vec::new()),
        }
    }
}

fn missing_tile(level: u8, index: u64) -> LedgerError {
    LedgerError::Corrupt(format!("hash tile level {level} index {index} is missing"))
}

impl HashReader for DbReader<'_> {
    type Error = LedgerError;
    fn node(&self, id: NodeId) -> Result<Hash, LedgerError> {
        let missing = || {
            LedgerError::Corrupt(format!(
                "node level {} index {} is missing or malformed",
                id.level, id.index
            ))
        };
        let (level, index) = tile_of(id).ok_or_else(missing)?;
        match self.edge.place(level, index) {
            TilePlace::Stored => {
                let key = tile_key(level, index).ok_or_else(missing)?;
                let tile = self.db.get_pinned(key)?.ok_or_else(missing)?;
                node_from_tile(&tile, id).ok_or_else(missing)
            }
            TilePlace::Edge(bytes) => node_from_tile(bytes, id).ok_or_else(missing),
            TilePlace::Beyond => Err(missing()),
        }
    }
}
