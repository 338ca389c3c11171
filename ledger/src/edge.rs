//! The right edge of the stored hash tiles: for each tile level, the hashes
//! of its partial (not yet 256-wide) tile, kept in memory so an append
//! rewrites that one key instead of writing a key per node.

use verifier::hash::HASH_SIZE;
use verifier::tile::{TILE_HEIGHT, TILE_WIDTH};
use verifier::tree::NodeId;
use verifier::Hash;

use crate::store::{tile_key, DbReader};
use crate::LedgerError;

const FULL: usize = TILE_WIDTH as usize * HASH_SIZE;

/// The partial tile of each tile level.
#[derive(Clone, Debug, Default)]
pub(crate) struct TileEdge {
    partial: Vec<Vec<u8>>,
}

/// Complete nodes at tree level `8·L` in a tree of `size` leaves.
fn count(size: u64, tile_level: u8) -> u64 {
    size.checked_shr(u32::from(tile_level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

impl TileEdge {
    /// Reads the partial tiles of a tree of `size` leaves.
    pub(crate) fn load(reader: &DbReader<'_>, size: u64) -> Result<TileEdge, LedgerError> {
        let mut partial = Vec::new();
        for level in 0u8.. {
            let n = count(size, level);
            if n == 0 {
                break;
            }
            let width = (n % TILE_WIDTH) as usize;
            let bytes = if width == 0 {
                Vec::new()
            } else {
                reader.tile(level, n / TILE_WIDTH)?
            };
            if bytes.len() != width * HASH_SIZE {
                return Err(LedgerError::Corrupt(format!(
                    "hash tile level {level} index {} holds {} bytes, want {}",
                    n / TILE_WIDTH,
                    bytes.len(),
                    width * HASH_SIZE
                )));
            }
            partial.push(bytes);
        }
        Ok(TileEdge { partial })
    }

    /// Takes the nodes one append completed (in order) and returns the tiles
    /// to write: every tile that filled up, then each partial tile that grew.
    pub(crate) fn add(
        &mut self,
        nodes: &[(NodeId, Hash)],
        size_after: u64,
    ) -> Vec<([u8; 9], Vec<u8>)> {
        let mut out = Vec::new();
        let mut grown = Vec::new();
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
            if self.partial[l].len() == FULL {
                out.push((
                    tile_key(level, id.index / TILE_WIDTH),
                    std::mem::take(&mut self.partial[l]),
                ));
            } else if !grown.contains(&level) {
                grown.push(level);
            }
        }
        for level in grown {
            let bytes = &self.partial[usize::from(level)];
            if !bytes.is_empty() {
                out.push((
                    tile_key(level, count(size_after, level) / TILE_WIDTH),
                    bytes.clone(),
                ));
            }
        }
        out
    }
}
