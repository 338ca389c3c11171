//! An fsck of a log that ledgerctl reads but does not own: the log a
//! ledgerd serves (`ledgerctl --url … audit`) or a mirror directory
//! (`ledgerctl audit --mirror DIR`). Both are read through [`Source`]: the
//! newest signed checkpoint, the entry bundles, and the checkpoints kept
//! beside them. Every entry is rehashed into the tree; at each kept
//! checkpoint's size, and at the newest, the root must be the signed one.
//! (A store ledgerd owns is audited by `ledger::Log::audit`.)

use anyhow::{bail, Context, Result};
use ledger::keys::LogKeys;
use verifier::envelope::ReceivedOrder;
use verifier::hash::HASH_SIZE;
use verifier::tile::{decode_bundle_of, entry_bundles, Tile};
use verifier::{checkpoint, leaf_hash, Checkpoint, Hash};

/// Where an audited log is read from.
pub trait Source {
    /// The newest signed checkpoint, as served or kept.
    fn checkpoint(&self) -> Result<Vec<u8>>;
    /// The bytes of an entry bundle, or, for a bundle whose entries the
    /// log's retention removed, its leaves' hashes (the level-0 hash tile).
    fn bundle(&self, tile: &Tile) -> Result<Bundle>;
    /// The signed checkpoints kept beside the log, by size (the newest may
    /// be among them; none for a served log).
    fn kept(&self) -> Result<Vec<(u64, Vec<u8>)>>;
}

/// An entry bundle as a [`Source`] has it.
pub enum Bundle {
    /// The bundle's bytes.
    Entries(Vec<u8>),
    /// The entries were removed by retention: the level-0 hash tile of the
    /// same leaves (a tree of hashes that reach the signed root is as
    /// checked as one of entries; only what they hashed is gone).
    Pruned(Vec<u8>),
}

/// The level-0 hash tile of the leaves of entry bundle `tile`: what stands
/// for a bundle whose entries the log's retention removed.
pub fn hashes_of(tile: &Tile) -> Tile {
    Tile {
        kind: verifier::tile::TileKind::Hashes(0),
        ..*tile
    }
}

/// The leaf hashes in `data`, the hash tile standing for entry bundle
/// `tile` ([`Bundle::Pruned`]): exactly one per leaf of the bundle.
pub fn leaf_hashes(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>> {
    if data.len() != usize::from(tile.width) * HASH_SIZE {
        bail!(
            "the hash tile standing for pruned {} is not {} hashes",
            tile.path(),
            tile.width
        );
    }
    Ok(data
        .chunks_exact(HASH_SIZE)
        .filter_map(Hash::from_slice)
        .collect())
}

/// What an audit checked.
pub struct Audited {
    /// The newest checkpoint, verified.
    pub checkpoint: Checkpoint,
    /// Kept checkpoints whose roots the entries reach.
    pub kept: usize,
    /// Where `received_at` went back along the entries.
    pub received: ReceivedOrder,
    /// Leaves whose entries the log's retention removed (their hashes were
    /// checked instead).
    pub pruned: u64,
}

impl Audited {
    /// What the audit says of the leaves whose entries retention removed.
    pub fn pruned_note(&self) -> Option<String> {
        (self.pruned > 0).then(|| {
            format!(
                "the first {} leaves' entries were removed by the log's retention: their hashes were checked instead",
                self.pruned
            )
        })
    }
}

/// Rehashes every entry of `src` into the tree and checks the roots at the
/// sizes of its checkpoints: the newest verified with the current key of
/// `keys`, the others with any of them (a log signs with its next key too
/// while it rotates keys, and with that alone after); `progress` gets the
/// entries done and the total.
pub fn audit(
    src: &impl Source,
    keys: &LogKeys,
    mut progress: impl FnMut(u64, u64),
) -> Result<Audited> {
    let cp =
        checkpoint::open(&src.checkpoint()?, keys.current()).context("the newest checkpoint")?;
    let mut older = Vec::new();
    for (size, text) in src.kept()? {
        let old = checkpoint::open_any(&text, keys.all())
            .with_context(|| format!("the checkpoint kept for size {size}"))?;
        if old.size != size || size > cp.size {
            bail!(
                "the checkpoint kept for size {size} is of size {} (the newest is {})",
                old.size,
                cp.size
            );
        }
        older.push(old);
    }
    older.sort_by_key(|c| c.size);
    let mut due = older.iter().peekable();
    let mut tree = ledger::Frontier::new();
    let mut received = ReceivedOrder::default();
    let mut check_due = |tree: &ledger::Frontier| -> Result<()> {
        while let Some(c) = due.next_if(|c| c.size == tree.size()) {
            if tree.root() != c.root {
                bail!(
                    "the entries do not hash to the root signed at size {}",
                    c.size
                );
            }
        }
        Ok(())
    };
    check_due(&tree)?;
    let mut pruned = 0;
    for tile in entry_bundles(0, cp.size) {
        match src.bundle(&tile)? {
            Bundle::Entries(data) => {
                let entries = decode_bundle_of(&tile, &data).with_context(|| tile.path())?;
                for e in entries {
                    received.push(tree.size(), e);
                    tree.push(leaf_hash(e));
                    check_due(&tree)?;
                }
            }
            Bundle::Pruned(hashes) => {
                for h in leaf_hashes(&tile, &hashes)? {
                    tree.push(h);
                    pruned += 1;
                    check_due(&tree)?;
                }
            }
        }
        progress(tree.size(), cp.size);
    }
    if tree.root() != cp.root {
        bail!(
            "the entries do not hash to the root signed at size {}",
            cp.size
        );
    }
    Ok(Audited {
        checkpoint: cp,
        kept: older.len(),
        received,
        pruned,
    })
}
