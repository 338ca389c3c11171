//! A mirror directory (specs/mirror.md) as an audit's [`Source`]: which
//! file holds what. The files are read by the caller ([`MirrorFiles`]), so
//! this module does no I/O; `ledgerctl audit --mirror` and `ledger-verify
//! mirror` read the same layout through it.
//!
//! ```text
//! log.pub, log.retired      the log's keys (keys.md)
//! checkpoint                the newest checkpoint verified
//! checkpoints/<size>        every checkpoint verified, by tree size
//! tile/entries/<N>[.p/<W>]  entry bundles
//! tile/0/<N>                in place of tile/entries/<N>: the hashes of a
//!                           bundle whose entries the log's retention removed
//! frontier                  the tree's right edge at the newest size
//! frontier.next             written before a sync's new checkpoint, and
//!                           renamed to frontier after it
//! ```

use crate::audit::{hashes_of, holds_erased, Bundle, Source};
use crate::checkpoint::Checkpoint;
use crate::frontier::Frontier;
use crate::note::VerifierKey;
use crate::tile::Tile;
use crate::Hash;

/// The newest checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// The directory of every checkpoint verified.
pub const CHECKPOINTS: &str = "checkpoints";
/// The tree's right edge.
pub const FRONTIER: &str = "frontier";
/// The tree's right edge at the size of a sync's new checkpoint, written
/// before that checkpoint and renamed to [`FRONTIER`] after it: a sync
/// cut between the two leaves it the one of the newest checkpoint.
pub const FRONTIER_NEXT: &str = "frontier.next";
/// The keys the log signed with before a key rotation.
pub const RETIRED: &str = "log.retired";

/// The files of a mirror directory, read by the caller.
pub trait MirrorFiles {
    /// Why a read failed.
    type Error: std::fmt::Display + std::fmt::Debug;
    /// The file at `path` (relative to the mirror, `/`-separated), `None`
    /// if there is none.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Self::Error>;
    /// The names of the files in the directory `path`, none if it is
    /// absent.
    fn list(&self, path: &str) -> Result<Vec<String>, Self::Error>;
}

/// Why a mirror could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError<E: std::fmt::Display + std::fmt::Debug> {
    /// A file could not be read.
    #[error("{0}")]
    Files(E),
    /// A file the layout needs is not there.
    #[error("the mirror has no {0}")]
    Missing(String),
    /// A file in `checkpoints/` is not named by a tree size.
    #[error("checkpoints/{0} is not named by a checkpoint's size")]
    KeptName(String),
    /// `frontier` is not a frontier, or not the newest checkpoint's tree.
    #[error("frontier: {0}")]
    Frontier(&'static str),
    /// `log.retired` holds a line that is not a verifier key.
    #[error("log.retired line {0}: not a verifier key")]
    Retired(usize),
}

/// A mirror directory read through `F`.
pub struct Mirror<F>(pub F);

impl<F: MirrorFiles> Mirror<F> {
    fn need(&self, path: &str) -> Result<Vec<u8>, MirrorError<F::Error>> {
        self.0
            .read(path)
            .map_err(MirrorError::Files)?
            .ok_or_else(|| MirrorError::Missing(path.to_string()))
    }

    /// The keys in `log.retired` (none if it is absent).
    pub fn retired(&self) -> Result<Vec<VerifierKey>, MirrorError<F::Error>> {
        let Some(text) = self.0.read(RETIRED).map_err(MirrorError::Files)? else {
            return Ok(Vec::new());
        };
        crate::note::parse_key_lines(&text).map_err(MirrorError::Retired)
    }

    /// The tree of `cp`, the newest checkpoint: `frontier.next` if it is
    /// that tree (a sync cut after storing `cp`), else `frontier`, which
    /// must be.
    pub fn frontier(&self, cp: &Checkpoint) -> Result<Frontier, MirrorError<F::Error>> {
        let next = self.0.read(FRONTIER_NEXT).map_err(MirrorError::Files)?;
        if let Some(f) = next.as_deref().and_then(parse_frontier) {
            if f.size() == cp.size && f.root() == cp.root {
                return Ok(f);
            }
        }
        let f = parse_frontier(&self.need(FRONTIER)?).ok_or(MirrorError::Frontier(
            "not a size and the hashes of its right edge",
        ))?;
        if f.size() != cp.size || f.root() != cp.root {
            return Err(MirrorError::Frontier("not the newest checkpoint's tree"));
        }
        Ok(f)
    }
}

impl<F: MirrorFiles> Source for Mirror<F> {
    type Error = MirrorError<F::Error>;

    fn checkpoint(&self) -> Result<Vec<u8>, Self::Error> {
        self.need(CHECKPOINT)
    }

    fn bundle(&self, tile: &Tile) -> Result<Bundle, Self::Error> {
        if let Some(data) = self.0.read(&tile.path()).map_err(MirrorError::Files)? {
            if holds_erased(&data) {
                // Erased entries' hashes are kept beside their bundle.
                let hashes = self.need(&hashes_of(tile).path())?;
                return Ok(Bundle::Erased {
                    entries: data,
                    hashes,
                });
            }
            return Ok(Bundle::Entries(data));
        }
        match self
            .0
            .read(&hashes_of(tile).path())
            .map_err(MirrorError::Files)?
        {
            Some(hashes) => Ok(Bundle::Pruned(hashes)),
            None => Err(MirrorError::Missing(tile.path())),
        }
    }

    fn kept(&self) -> Result<Vec<(u64, Vec<u8>)>, Self::Error> {
        let mut out = Vec::new();
        for name in self.0.list(CHECKPOINTS).map_err(MirrorError::Files)? {
            if name.ends_with(".tmp") {
                // Being written (specs/mirror.md), or left by a mirror
                // stopped while it wrote: not kept yet.
                continue;
            }
            let size = crate::checkpoint::parse_decimal(&name)
                .ok_or_else(|| MirrorError::KeptName(name.clone()))?;
            out.push((size, self.need(&format!("{CHECKPOINTS}/{name}"))?));
        }
        Ok(out)
    }
}

/// A frontier file: the tree size in decimal, then one base64 hash a line
/// for levels 0, 1, … while `size >> level > 0` (specs/mirror.md).
pub fn parse_frontier(data: &[u8]) -> Option<Frontier> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.lines();
    let size = crate::checkpoint::parse_decimal(lines.next()?)?;
    let hashes = lines.map(Hash::from_base64).collect::<Option<Vec<_>>>()?;
    Frontier::from_nodes(size, hashes)
}

/// A frontier file's text for `f`.
pub fn frontier_text(f: &Frontier) -> String {
    let mut text = format!("{}\n", f.size());
    for id in Frontier::nodes_for(f.size()) {
        if let Ok(h) = crate::tree::HashReader::node(f, id) {
            text.push_str(&h.to_base64());
            text.push('\n');
        }
    }
    text
}
