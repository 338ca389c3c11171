//! `ledgerctl mirror --prune`: a mirror follows the log's retention
//! (specs/mirror.md, "Following retention").
//!
//! Bundle by bundle from the mirror's first kept leaf, while the log
//! answers an entry bundle the mirror holds with `410 Gone`: the log's
//! hash tile of those leaves must be the leaf hashes of the entries the
//! mirror holds (so the log cannot make a mirror forget entries it changed),
//! then the tile is written in place of the bundle and the bundle removed.
//! `DIR/first-kept` says where to start next time.

use std::path::Path;

use anyhow::{bail, Context, Result};
use verifier::leaf_hash;
use verifier::tile::{decode_bundle_of, Tile, TileKind, TILE_WIDTH};

use super::{hashes_of, leaf_hashes, write_atomic, Bundle, Mirror, Source};
use crate::remote::Remote;

/// The file holding the mirror's first kept leaf (decimal; absent: 0).
const FIRST_KEPT: &str = "first-kept";

fn read_first_kept(dir: &Path) -> Result<u64> {
    let path = dir.join(FIRST_KEPT);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} is not a leaf index", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl Mirror {
    /// Removes the entries of the full bundles the log's retention removed
    /// since the last call, keeping their hashes; returns the first kept
    /// leaf before and after.
    pub(super) fn follow_retention(&mut self, remote: &Remote) -> Result<(u64, u64)> {
        let from = read_first_kept(&self.dir)?;
        let mut at = from;
        // The bundle holding the newest leaf is never pruned.
        while at + TILE_WIDTH < self.size() {
            let tile = Tile {
                kind: TileKind::Entries,
                index: at / TILE_WIDTH,
                width: TILE_WIDTH as u16,
            };
            let held = self.dir.join(tile.path());
            let kept_as = self.dir.join(hashes_of(&tile).path());
            if held.exists() {
                let Bundle::Pruned(hashes) = remote.bundle(&tile)? else {
                    break;
                };
                let data =
                    std::fs::read(&held).with_context(|| format!("reading {}", held.display()))?;
                let ours: Vec<_> = decode_bundle_of(&tile, &data)
                    .with_context(|| held.display().to_string())?
                    .into_iter()
                    .map(leaf_hash)
                    .collect();
                if leaf_hashes(&tile, &hashes)? != ours {
                    bail!(
                        "the log removed {} but its hashes of those leaves are not those of the entries this mirror holds: refused, the entries are kept",
                        tile.path()
                    );
                }
                write_atomic(&kept_as, &hashes)?;
                std::fs::remove_file(&held)
                    .with_context(|| format!("removing {}", held.display()))?;
            } else if !kept_as.exists() {
                bail!(
                    "{} holds neither {} nor {}",
                    self.dir.display(),
                    held.display(),
                    kept_as.display()
                );
            }
            at += TILE_WIDTH;
            write_atomic(&self.dir.join(FIRST_KEPT), format!("{at}\n").as_bytes())?;
        }
        Ok((from, at))
    }
}
