//! The bundles a sync fetches, kept on disk until the sync has proven
//! them (the mirror's tree extended by their leaves reaches the signed
//! root), then moved into place: a first sync of a large log holds one
//! bundle in memory at a time, not the log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use verifier::tile::{Tile, TILE_WIDTH};

/// The staging directory inside a mirror's directory (under its lock).
const STAGING: &str = "staging";

/// Bundles fetched and not yet proven, in `DIR/staging`.
pub(super) struct Staged {
    dir: PathBuf,
    staging: PathBuf,
    /// Each staged file: the bundle it came from, and the file it is kept
    /// as (the bundle itself, or the hash tile standing for it).
    files: Vec<(Tile, Tile)>,
    /// The staged files that are whole entry bundles, by position in
    /// `files`: their entries are the leaves' ([`Staged::each_entry`]).
    whole: Vec<usize>,
}

impl Staged {
    /// An empty staging directory in the mirror `dir` (what a sync cut
    /// short left there is deleted: it was never proven).
    pub(super) fn new(dir: &Path) -> Result<Staged> {
        let staging = dir.join(STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("removing {}", staging.display()))?;
        }
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("creating {}", staging.display()))?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            staging,
            files: Vec::new(),
            whole: Vec::new(),
        })
    }

    fn staged(&self, n: usize) -> PathBuf {
        self.staging.join(n.to_string())
    }

    /// Keeps `data`, fetched for bundle `tile`, to be stored as `kept_as`.
    pub(super) fn add(&mut self, tile: Tile, kept_as: Tile, data: &[u8]) -> Result<()> {
        let path = self.staged(self.files.len());
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
        self.files.push((tile, kept_as));
        Ok(())
    }

    /// Keeps `data`, the entry bundle `tile` with every entry there.
    pub(super) fn add_entries(&mut self, tile: Tile, data: &[u8]) -> Result<()> {
        self.whole.push(self.files.len());
        self.add(tile, tile, data)
    }

    /// Each entry of the whole entry bundles staged, from leaf `from` on,
    /// in order, with its leaf index: read back from the staged files one
    /// bundle at a time.
    pub(super) fn each_entry(
        &self,
        from: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        for &n in &self.whole {
            let (tile, _) = self.files[n];
            let path = self.staged(n);
            let data =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let entries =
                verifier::tile::decode_bundle_of(&tile, &data).with_context(|| tile.path())?;
            let first = tile.index * TILE_WIDTH;
            for (i, e) in entries.iter().enumerate() {
                let index = first + i as u64;
                if index >= from {
                    visit(index, e)?;
                }
            }
        }
        Ok(())
    }

    /// Moves every staged file into place, in order, each synced first;
    /// then syncs the directories the files went to, so that all of it is
    /// on disk before the caller stores the checkpoint that covers it.
    /// Returns the partial bundles the full ones complete: the mirror's
    /// checkpoint names them until the new one is stored, so the caller
    /// removes them after that.
    pub(super) fn commit(self) -> Result<BTreeSet<PathBuf>> {
        let mut dirs = BTreeSet::new();
        let mut completed = BTreeSet::new();
        for (n, (tile, kept_as)) in self.files.iter().enumerate() {
            let from = self.staged(n);
            std::fs::File::open(&from)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", from.display()))?;
            let to = self.dir.join(kept_as.path());
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
                dirs.insert(parent.to_path_buf());
            }
            std::fs::rename(&from, &to).with_context(|| format!("writing {}", to.display()))?;
            if u64::from(tile.width) == TILE_WIDTH {
                completed.insert(self.dir.join(format!("{}.p", tile.path())));
            }
        }
        for dir in dirs {
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        Ok(completed)
    }
}

impl Drop for Staged {
    /// What was not moved into place (a sync refused, or failed) goes.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}
