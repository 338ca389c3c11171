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

use anyhow::{bail, Context, Result};
use verifier::mirror::MirrorFiles;
use verifier::tile::{decode_bundle, encode_bundle, entry_bundles, Tile, TILE_WIDTH};
use verifier::{leaf_hash, Hash};

use super::{hashes_of, leaf_hashes, write_atomic, FsFiles, Mirror};

/// The leaf up to which the mirror's leaves were read for erasure records
/// (decimal; absent: 0).
const ERASURES_READ: &str = "erasures-read";

impl Mirror {
    /// The entry bundle holding leaf `index` as the mirror keeps it (the
    /// partial bundle of the newest leaves has its width in its path).
    fn bundle_of(&self, index: u64) -> Option<Tile> {
        entry_bundles(index, self.size()).next()
    }

    /// A file of the mirror, `None` if it is not there.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        FsFiles(&self.dir).read(path)
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
        for tile in entry_bundles(from, size) {
            let at = tile.index * TILE_WIDTH;
            // A bundle the log's retention removed holds no records.
            if let Some(data) = self.read(&tile.path())? {
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
        let Some(tile) = self.bundle_of(start) else {
            return Ok(Vec::new());
        };
        // Pruned by retention since: nothing left to erase.
        let Some(data) = self.read(&tile.path())? else {
            return Ok(Vec::new());
        };
        let path = self.dir.join(tile.path());
        let mut entries = decode_bundle(&data).with_context(|| tile.path())?;
        let hashes_path = self.dir.join(hashes_of(&tile).path());
        let before = match self.read(&hashes_of(&tile).path())? {
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
