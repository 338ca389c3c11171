//! `ledgerctl mirror --prune`: a mirror follows the log's erasures
//! (specs/mirror.md, "Following erasures").
//!
//! The mirror reads its own leaves from `DIR/erasures-read` on, and for
//! each erasure record among them (specs/erasure.md) that names an entry
//! it still holds: the entry's leaf hash must be the one the record
//! names, then the level-0 hash tile of its bundle is written beside the
//! bundle (computed from the entries held, and for entries erased before
//! from the tile already there), then the bundle is written again with
//! that entry empty. Nothing is fetched: the record is a leaf the mirror
//! proved, and the bundle's other entries are the mirror's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use verifier::tile::{decode_bundle, encode_bundle, Tile, TileKind, TILE_WIDTH};
use verifier::{leaf_hash, Hash};

use super::{hashes_of, leaf_hashes, write_atomic, Mirror};

/// The leaf up to which the mirror's leaves were read for erasure records
/// (decimal; absent: 0).
const ERASURES_READ: &str = "erasures-read";

impl Mirror {
    /// The entry bundle holding leaf `index` as the mirror keeps it, and
    /// its file (the partial bundle of the newest leaves has its width
    /// in its path).
    fn bundle_of(&self, index: u64) -> Tile {
        let n = index / TILE_WIDTH;
        Tile {
            kind: TileKind::Entries,
            index: n,
            width: (self.size() - n * TILE_WIDTH).min(TILE_WIDTH) as u16,
        }
    }

    /// Erases, in the mirror's files, the entries that erasure records
    /// among its leaves (from `DIR/erasures-read` on) name; returns the
    /// leaves erased.
    pub(super) fn follow_erasures(&mut self) -> Result<Vec<u64>> {
        let cursor = self.dir.join(ERASURES_READ);
        let from = match std::fs::read_to_string(&cursor) {
            Ok(t) => t
                .trim()
                .parse()
                .with_context(|| format!("{} is not a leaf index", cursor.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0u64,
            Err(e) => return Err(e).with_context(|| format!("reading {}", cursor.display())),
        };
        let size = self.size();
        // The leaves each record names, with the hash it names, by bundle.
        let mut named: BTreeMap<u64, Vec<(u64, Hash)>> = BTreeMap::new();
        let mut at = from / TILE_WIDTH * TILE_WIDTH;
        while at < size {
            let tile = self.bundle_of(at);
            // A bundle the log's retention removed holds no records.
            if let Some(data) = read_if_there(&self.dir.join(tile.path()))? {
                let entries = decode_bundle(&data).with_context(|| tile.path())?;
                for (i, e) in (at..).zip(entries) {
                    if i < from {
                        continue;
                    }
                    if let Some(r) = verifier::erasure::read(i, e)
                        .with_context(|| format!("the mirror's leaf {i}"))?
                    {
                        named
                            .entry(r.index / TILE_WIDTH)
                            .or_default()
                            .push((r.index, r.leaf_hash));
                    }
                }
            }
            at += TILE_WIDTH;
        }
        let mut erased = Vec::new();
        for (n, leaves) in named {
            erased.extend(self.erase_in_bundle(n * TILE_WIDTH, &leaves)?);
        }
        write_atomic(&cursor, format!("{size}\n").as_bytes())?;
        Ok(erased)
    }

    /// Erases `leaves` (each with the hash its record names) in the bundle
    /// from leaf `start`, where the mirror still holds their entries.
    fn erase_in_bundle(&self, start: u64, leaves: &[(u64, Hash)]) -> Result<Vec<u64>> {
        let tile = self.bundle_of(start);
        let path: PathBuf = self.dir.join(tile.path());
        // Pruned by retention since: nothing left to erase.
        let Some(data) = read_if_there(&path)? else {
            return Ok(Vec::new());
        };
        let mut entries = decode_bundle(&data).with_context(|| tile.path())?;
        let hashes_path = self.dir.join(hashes_of(&tile).path());
        let before = match read_if_there(&hashes_path)? {
            Some(h) => Some(leaf_hashes(&tile, &h)?),
            None => None,
        };
        let mut hashes = Vec::with_capacity(entries.len());
        for (k, e) in entries.iter().enumerate() {
            hashes.push(match (e.is_empty(), &before) {
                (true, Some(b)) => b[k],
                (true, None) => bail!(
                    "{} holds an empty entry but no {}",
                    path.display(),
                    hashes_path.display()
                ),
                (false, _) => leaf_hash(e),
            });
        }
        let mut erased = Vec::new();
        for &(index, hash) in leaves {
            let k = (index - start) as usize;
            let Some(entry) = entries.get(k) else {
                continue;
            };
            if entry.is_empty() {
                continue;
            }
            if hashes[k] != hash {
                bail!(
                    "the log's erasure record of leaf {index} names another hash than the entry this mirror holds: refused, the entry is kept"
                );
            }
            entries[k] = &[];
            erased.push(index);
        }
        if erased.is_empty() {
            return Ok(erased);
        }
        let tile_bytes: Vec<u8> = hashes.iter().flat_map(|h| *h.as_bytes()).collect();
        write_atomic(&hashes_path, &tile_bytes)?;
        let bundle = encode_bundle(entries.iter().copied())?;
        write_atomic(&path, &bundle)?;
        Ok(erased)
    }
}

fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
