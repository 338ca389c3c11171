//! C2SP tlog-tiles: tile paths, tile contents and entry bundles.
//!
//! A hash tile at level `L`, index `N` holds up to 256 consecutive hashes of
//! tree level `8·L` (nodes `256·N ..`), each 32 bytes; its path is
//! `tile/<L>/<N>`, or `tile/<L>/<N>.p/<W>` while only `W < 256` of them exist.
//! Entry bundles `tile/entries/<N>[.p/<W>]` hold entries `256·N ..` as
//! `uint16 big-endian length || entry`. `N` is written in groups of three
//! digits, every group but the last prefixed by `x`: 1234067 → `x001/x234/067`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::hash::{node_hash, Hash, HASH_SIZE};
use crate::tree::{HashReader, NodeId};

/// Tree levels per tile level.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Largest entry a bundle can carry (its length is a uint16).
pub const MAX_ENTRY_SIZE: usize = 65_535;

/// What a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Hashes of tree level `8·L`, for tile level `L`.
    Hashes(u8),
    /// Entries (the data tile).
    Entries,
}

/// One tile: kind, index and width (1..=256; 256 is a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Hash tile level or entry bundle.
    pub kind: TileKind,
    /// Position among the tiles of its kind and level.
    pub index: u64,
    /// Hashes or entries it holds.
    pub width: u16,
}

/// Why a tile path or tile body was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TileError {
    /// Not a canonical tlog-tiles path.
    #[error("not a tile path: {0}")]
    BadPath(String),
    /// The tile does not exist in a tree of that size.
    #[error("tile {path} is not in a tree of size {size}")]
    NotInTree {
        /// The tile asked for.
        path: String,
        /// The tree size.
        size: u64,
    },
    /// A hash tile whose length does not match its width.
    #[error("tile {path} has {got} bytes, want {want}")]
    BadLength {
        /// The tile.
        path: String,
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// An entry bundle that ends inside an entry.
    #[error("entry bundle is truncated")]
    TruncatedBundle,
    /// An entry bundle with more or fewer entries than expected.
    #[error("entry bundle has {got} entries, want {want}")]
    BundleCount {
        /// Entries found.
        got: usize,
        /// Entries expected.
        want: usize,
    },
    /// An entry too large for a bundle.
    #[error("entry of {0} bytes exceeds the tlog-tiles limit of 65535")]
    EntryTooLarge(usize),
}

/// `N` as `x001/x234/067`.
pub fn encode_index(n: u64) -> String {
    let digits = format!("{n}");
    let pad = (3 - digits.len() % 3) % 3;
    let digits = format!("{}{digits}", "0".repeat(pad));
    let groups: Vec<&str> = (0..digits.len() / 3)
        .map(|i| &digits[3 * i..3 * i + 3])
        .collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g}")
            } else {
                g.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_index(s: &str) -> Option<u64> {
    let groups: Vec<&str> = s.split('/').collect();
    let last = groups.len() - 1;
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let digits = if i < last { g.strip_prefix('x')? } else { g };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // No leading all-zero groups: exactly one spelling per index.
        if i == 0 && last > 0 && digits == "000" {
            return None;
        }
        n = n
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    Some(n)
}

impl Tile {
    /// The tile's path, e.g. `tile/0/x001/234.p/17` or `tile/entries/000`.
    pub fn path(&self) -> String {
        let kind = match self.kind {
            TileKind::Hashes(level) => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut p = format!("tile/{kind}/{}", encode_index(self.index));
        if u64::from(self.width) < TILE_WIDTH {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a canonical tile path (without a leading `/`).
    pub fn parse_path(path: &str) -> Result<Tile, TileError> {
        let bad = || TileError::BadPath(path.to_string());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (kind, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = match kind {
            "entries" => TileKind::Entries,
            l if crate::checkpoint::parse_decimal(l).is_some_and(|l| l <= 63) => {
                TileKind::Hashes(l.parse().map_err(|_| bad())?)
            }
            _ => return Err(bad()),
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, w)) => {
                let w = crate::checkpoint::parse_decimal(w)
                    .filter(|w| (1..TILE_WIDTH).contains(w))
                    .ok_or_else(bad)?;
                (index, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        Ok(Tile {
            kind,
            index: parse_index(index).ok_or_else(bad)?,
            width,
        })
    }

    /// Tree level of the hashes in a hash tile (`8·L`); 0 for entry bundles.
    fn tree_level(&self) -> u32 {
        match self.kind {
            TileKind::Hashes(l) => u32::from(l) * u32::from(TILE_HEIGHT),
            TileKind::Entries => 0,
        }
    }

    /// The width this tile has in a tree of `size` leaves, or `None` if the
    /// tree has none of its hashes yet.
    pub fn width_at(kind: TileKind, index: u64, size: u64) -> Option<u16> {
        let probe = Tile {
            kind,
            index,
            width: 1,
        };
        let count = size.checked_shr(probe.tree_level()).unwrap_or(0);
        let start = index.checked_mul(TILE_WIDTH)?;
        (count > start).then(|| (count - start).min(TILE_WIDTH) as u16)
    }

    /// Checks that this exact tile (with its width) is servable from a tree
    /// of `size` leaves: a full tile once complete, a partial one only at the
    /// current right edge.
    pub fn check_in_tree(&self, size: u64) -> Result<(), TileError> {
        match Tile::width_at(self.kind, self.index, size) {
            Some(w) if w >= self.width => Ok(()),
            _ => Err(TileError::NotInTree {
                path: self.path(),
                size,
            }),
        }
    }

    /// The tree nodes a hash tile holds, left to right.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> {
        let level = self.tree_level() as u8;
        let start = self.index * TILE_WIDTH;
        (start..start + u64::from(self.width)).map(move |index| NodeId { level, index })
    }
}

/// The hash tile `(tile level, tile index)` whose hashes node `id` is
/// computed from: a node at tree level `8·L + h` is the root of `2^h`
/// consecutive hashes of a level-`L` tile. `None` past the u64 range.
pub fn tile_of(id: NodeId) -> Option<(u8, u64)> {
    let first = id.index.checked_mul(1 << (id.level % TILE_HEIGHT))?;
    Some((id.level / TILE_HEIGHT, first / TILE_WIDTH))
}

/// Node `id` from the bytes of the hash tile [`tile_of`] names; `None` if
/// the tile does not hold every hash the node covers.
pub fn node_from_tile(tile: &[u8], id: NodeId) -> Option<Hash> {
    let h = u32::from(id.level % TILE_HEIGHT);
    let first = id.index.checked_mul(1 << h)?;
    let start = (first % TILE_WIDTH) as usize * HASH_SIZE;
    let span = tile.get(start..start + (HASH_SIZE << h))?;
    subtree_root(span)
}

/// The root of a full hash tile: the node 8 levels above its 256 hashes
/// (at tree level 8·(L+1) for a tile of level L); `None` if `tile` is not
/// 256 hashes.
pub fn tile_root(tile: &[u8]) -> Option<Hash> {
    if tile.len() != TILE_WIDTH as usize * HASH_SIZE {
        return None;
    }
    subtree_root(tile)
}

/// The root of the complete subtree over `hashes` (a power of two of them,
/// 32 bytes each).
fn subtree_root(hashes: &[u8]) -> Option<Hash> {
    let mut level: Vec<Hash> = hashes
        .chunks_exact(HASH_SIZE)
        .filter_map(Hash::from_slice)
        .collect();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
    }
    level.pop()
}

/// The bytes of a hash tile, read node by node from `reader`.
pub fn hash_tile_data<R: HashReader>(reader: &R, tile: &Tile) -> Result<Vec<u8>, R::Error> {
    let mut out = Vec::with_capacity(usize::from(tile.width) * HASH_SIZE);
    for id in tile.nodes() {
        out.extend_from_slice(reader.node(id)?.as_bytes());
    }
    Ok(out)
}

/// Encodes entries as an entry bundle.
pub fn encode_bundle<'a, I>(entries: I) -> Result<Vec<u8>, TileError>
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: Clone,
{
    let entries = entries.into_iter();
    let mut out = Vec::with_capacity(entries.clone().map(|e| 2 + e.len()).sum());
    encode_bundle_into(&mut out, entries)?;
    Ok(out)
}

/// [`encode_bundle`] into `out`, which is emptied first and keeps its
/// memory (a writer encodes bundle after bundle into one buffer). On error
/// `out` holds the entries before the one that is too large.
pub fn encode_bundle_into<'a, I>(out: &mut Vec<u8>, entries: I) -> Result<(), TileError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    out.clear();
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(())
}

/// The entry bundles that hold leaves `from..size` of a tree of `size`
/// leaves, in order: full ones, and the last partial when `size` is not a
/// multiple of 256. Bundles are aligned, so the first may start before
/// `from`.
pub fn entry_bundles(from: u64, size: u64) -> impl Iterator<Item = Tile> {
    (from / TILE_WIDTH..size.div_ceil(TILE_WIDTH)).filter_map(move |index| {
        Tile::width_at(TileKind::Entries, index, size).map(|width| Tile {
            kind: TileKind::Entries,
            index,
            width,
        })
    })
}

/// The entries of the entry bundle `tile`: `data` decoded, holding exactly
/// the tile's width of them.
pub fn decode_bundle_of<'a>(tile: &Tile, data: &'a [u8]) -> Result<Vec<&'a [u8]>, TileError> {
    let entries = decode_bundle(data)?;
    if entries.len() != usize::from(tile.width) {
        return Err(TileError::BundleCount {
            got: entries.len(),
            want: usize::from(tile.width),
        });
    }
    Ok(entries)
}

/// Splits an entry bundle into its entries.
pub fn decode_bundle(mut data: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let [hi, lo, rest @ ..] = data else {
            return Err(TileError::TruncatedBundle);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if rest.len() < len {
            return Err(TileError::TruncatedBundle);
        }
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    Ok(out)
}

/// Errors of a [`TileHashReader`]: the fetch failed or returned a bad tile.
#[derive(Debug, thiserror::Error)]
pub enum TileReadError<E> {
    /// The fetch function failed.
    #[error("fetching tile: {0}")]
    Fetch(E),
    /// The tile is malformed or not in the tree.
    #[error(transparent)]
    Tile(#[from] TileError),
}

/// Fetched hash tiles by (tile level, tile index).
type TileCache = HashMap<(u8, u64), Rc<Vec<u8>>>;

/// A [`HashReader`] over the hash tiles of a tree of a given size, fetched on
/// demand (and kept) through `fetch(tile)`. Nodes between tile levels are
/// computed from the tile below them. Hashes read this way are only as good
/// as the root they are checked against.
pub struct TileHashReader<F> {
    size: u64,
    fetch: F,
    tiles: RefCell<TileCache>,
}

impl<F, E> TileHashReader<F>
where
    F: Fn(&Tile) -> Result<Vec<u8>, E>,
{
    /// A reader for the tree of `size` leaves.
    pub fn new(size: u64, fetch: F) -> Self {
        TileHashReader {
            size,
            fetch,
            tiles: RefCell::new(HashMap::new()),
        }
    }

    fn tile_bytes(&self, level: u8, index: u64) -> Result<Rc<Vec<u8>>, TileReadError<E>> {
        if let Some(t) = self.tiles.borrow().get(&(level, index)) {
            return Ok(t.clone());
        }
        let kind = TileKind::Hashes(level);
        let width = Tile::width_at(kind, index, self.size).ok_or(TileError::NotInTree {
            path: format!("tile/{level}/{}", encode_index(index)),
            size: self.size,
        })?;
        let tile = Tile { kind, index, width };
        let data = (self.fetch)(&tile).map_err(TileReadError::Fetch)?;
        let want = usize::from(width) * HASH_SIZE;
        if data.len() != want {
            return Err(TileError::BadLength {
                path: tile.path(),
                got: data.len(),
                want,
            }
            .into());
        }
        let data = Rc::new(data);
        self.tiles.borrow_mut().insert((level, index), data.clone());
        Ok(data)
    }
}

impl<F, E> HashReader for TileHashReader<F>
where
    F: Fn(&Tile) -> Result<Vec<u8>, E>,
{
    type Error = TileReadError<E>;

    fn node(&self, id: NodeId) -> Result<Hash, Self::Error> {
        let not_in_tree = || TileError::NotInTree {
            path: format!("node level {} index {}", id.level, id.index),
            size: self.size,
        };
        let (level, index) = tile_of(id).ok_or_else(not_in_tree)?;
        let tile = self.tile_bytes(level, index)?;
        Ok(node_from_tile(&tile, id).ok_or_else(not_in_tree)?)
    }
}
