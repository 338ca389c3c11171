//! An fsck of a whole log read through tlog-tiles (C2SP tlog-tiles; a
//! mirror's layout is specs/mirror.md): every entry is rehashed into the
//! tree (RFC 9162 §2.1.1), and at the size of every checkpoint given, the
//! root must be the signed one. A log that passes has exactly these
//! entries, in this order, under every one of those checkpoints: nothing
//! was added before, changed or removed since.
//!
//! The log is read through a [`Source`] of three reads (the newest
//! checkpoint, the entry bundles, the checkpoints kept beside them), so the
//! same audit runs over a served log, a mirror directory or a test's
//! memory; this module does no I/O.

use crate::checkpoint::{self, Checkpoint};
use crate::envelope::ReceivedOrder;
use crate::erasure::{ErasureCheck, ErasureError};
use crate::frontier::Frontier;
use crate::hash::HASH_SIZE;
use crate::note::VerifierKey;
use crate::own_record::{RESERVED_PREFIXES, SUBMITTED_BY};
use crate::retention::{RetentionCheck, RetentionError};
use crate::tile::{decode_bundle_of, entry_bundles, Tile, TileError, TileKind};
use crate::{leaf_hash, Hash};

/// Where an audited log is read from.
pub trait Source {
    /// Why a read failed.
    type Error: std::fmt::Display + std::fmt::Debug;
    /// The newest signed checkpoint, as served or kept.
    fn checkpoint(&self) -> Result<Vec<u8>, Self::Error>;
    /// The bytes of an entry bundle, or, for a bundle whose entries the
    /// log's retention removed, its leaves' hashes (the level-0 hash tile).
    fn bundle(&self, tile: &Tile) -> Result<Bundle, Self::Error>;
    /// The signed checkpoints kept beside the log, by size (the newest may
    /// be among them; none for a served log).
    fn kept(&self) -> Result<Vec<(u64, Vec<u8>)>, Self::Error>;
}

/// An entry bundle as a [`Source`] has it.
pub enum Bundle {
    /// The bundle's bytes.
    Entries(Vec<u8>),
    /// The bundle's bytes, some of whose entries were erased (length 0,
    /// specs/erasure.md), and the level-0 hash tile of the same leaves,
    /// which holds the erased ones' hashes ([`holds_erased`]).
    Erased {
        /// The bundle's bytes.
        entries: Vec<u8>,
        /// The hash tile of its leaves.
        hashes: Vec<u8>,
    },
    /// The entries were removed by retention: the level-0 hash tile of the
    /// same leaves (a tree of hashes that reach the signed root is as
    /// checked as one of entries; only what they hashed is gone).
    Pruned(Vec<u8>),
}

/// Why an audit failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError<E: std::fmt::Display + std::fmt::Debug> {
    /// The source could not be read.
    #[error("{0}")]
    Source(E),
    /// A checkpoint does not verify with the keys given.
    #[error("{what}: {source}")]
    Checkpoint {
        /// Which checkpoint.
        what: String,
        /// Why.
        source: checkpoint::CheckpointError,
    },
    /// A kept checkpoint is not of the size it is kept under, or is past
    /// the newest.
    #[error("the checkpoint kept for size {kept} is of size {size} (the newest is {newest})")]
    KeptSize {
        /// The size it is kept under.
        kept: u64,
        /// Its own size.
        size: u64,
        /// The newest checkpoint's size.
        newest: u64,
    },
    /// A checkpoint given to the audit is of a larger tree than the
    /// newest: the log holds fewer leaves than the auditor saw.
    #[error("held checkpoint {held} is of size {size}, past the newest ({newest}): the log holds fewer leaves than it")]
    HeldPast {
        /// Which one, from 1.
        held: usize,
        /// Its size.
        size: u64,
        /// The newest checkpoint's size.
        newest: u64,
    },
    /// An entry bundle is not well formed.
    #[error("{path}: {source}")]
    Bundle {
        /// The bundle's path.
        path: String,
        /// Why.
        source: TileError,
    },
    /// A hash tile standing for a pruned bundle has the wrong length.
    #[error("the hash tile standing for pruned {path} is not {width} hashes")]
    PrunedTile {
        /// The bundle's path.
        path: String,
        /// Leaves in the bundle.
        width: u16,
    },
    /// An erased entry is not accounted for by an erasure record, or an
    /// erasure record is wrong.
    #[error(transparent)]
    Erasure(#[from] ErasureError),
    /// A retention record is malformed, or names the first kept leaf by
    /// another hash.
    #[error(transparent)]
    Retention(#[from] RetentionError),
    /// The entries do not reach a signed root.
    #[error("the entries do not hash to the root signed at size {0}")]
    Root(u64),
}

/// The level-0 hash tile of the leaves of entry bundle `tile`: what stands
/// for a bundle whose entries the log's retention removed.
pub fn hashes_of(tile: &Tile) -> Tile {
    Tile {
        kind: TileKind::Hashes(0),
        ..*tile
    }
}

/// The leaf hashes in `data`, the hash tile standing for entry bundle
/// `tile` ([`Bundle::Pruned`]): exactly one per leaf of the bundle, or
/// `None` if it is not that long.
pub fn leaf_hashes(tile: &Tile, data: &[u8]) -> Option<Vec<Hash>> {
    (data.len() == usize::from(tile.width) * HASH_SIZE).then(|| {
        data.chunks_exact(HASH_SIZE)
            .filter_map(Hash::from_slice)
            .collect()
    })
}

/// Whether entry bundle bytes hold an erased entry (one of length 0): a
/// [`Source`] then reads the level-0 hash tile too ([`Bundle::Erased`]).
pub fn holds_erased(data: &[u8]) -> bool {
    crate::tile::decode_bundle(data).is_ok_and(|entries| entries.iter().any(|e| e.is_empty()))
}

/// A leaf of a [`Bundle::Erased`]: its hash, and its entry unless it was
/// erased.
pub type BundleLeaf<'a> = (Hash, Option<&'a [u8]>);

/// The leaves of entry bundle `tile` held as [`Bundle::Erased`]: each
/// kept entry with its hash, and for each erased one the tile's hash.
pub fn erased_leaves<'a, E: std::fmt::Display + std::fmt::Debug>(
    tile: &Tile,
    entries: &'a [u8],
    hashes: &[u8],
) -> Result<Vec<BundleLeaf<'a>>, AuditError<E>> {
    let entries = decode_bundle_of(tile, entries).map_err(|source| AuditError::Bundle {
        path: tile.path(),
        source,
    })?;
    let hashes = leaf_hashes(tile, hashes).ok_or(AuditError::PrunedTile {
        path: hashes_of(tile).path(),
        width: tile.width,
    })?;
    Ok(entries
        .into_iter()
        .zip(hashes)
        .map(|(e, h)| match e.is_empty() {
            true => (h, None),
            false => (leaf_hash(e), Some(e)),
        })
        .collect())
}

/// What an audit notices along the entries that is no failure of the
/// log, but that its operator should hear of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Noticed {
    /// Where `received_at` went back in log order.
    pub received: ReceivedOrder,
    /// Enforcers' leaves holding the ids of the ledger's own records.
    pub taken: TakenIds,
}

impl Noticed {
    /// Entry `leaf` of leaf `index`, the next in log order.
    pub fn push(&mut self, index: u64, leaf: &[u8]) {
        self.received.push(index, leaf);
        self.taken.push(index, leaf);
    }

    /// The warnings to print, if any.
    pub fn warnings(&self) -> impl Iterator<Item = String> {
        self.received
            .warning()
            .into_iter()
            .chain(self.taken.warning())
    }
}

/// What an audit checked.
#[derive(Debug)]
pub struct Audited {
    /// The newest checkpoint, verified.
    pub checkpoint: Checkpoint,
    /// Kept checkpoints whose roots the entries reach.
    pub kept: usize,
    /// Checkpoints given by the auditor ([`audit`]'s `held`) whose roots
    /// the entries reach.
    pub held: usize,
    /// What the entries showed that is no failure ([`Noticed`]).
    pub noticed: Noticed,
    /// Leaves whose entries were erased, each named by a later erasure
    /// record (specs/erasure.md).
    pub erased: u64,
    /// Leaves an erasure record names whose entries are still here (a
    /// mirror fetched them before the erasure; or it was cut short).
    pub pending_erasures: Vec<u64>,
    /// Leaves whose entries the log's retention removed (their hashes were
    /// checked instead).
    pub pruned: u64,
    /// The leaf of the retention record naming the first kept leaf, if
    /// one does (specs/storage.md, "Retention").
    pub retention_record: Option<u64>,
    /// The tree's right edge at the newest checkpoint's size.
    pub frontier: Frontier,
}

impl Audited {
    /// What the audit says of the leaves whose entries retention removed.
    pub fn pruned_note(&self) -> Option<String> {
        crate::retention::note(
            self.pruned,
            "their hashes were checked instead",
            self.retention_record,
        )
    }

    /// What the audit says of erased leaves ([`crate::erasure::note`]).
    pub fn erasure_note(&self) -> Option<String> {
        crate::erasure::note(self.erased, &self.pending_erasures)
    }
}

/// Rehashes every entry of `src` into the tree and checks the root at the
/// size of every checkpoint: the newest, verified with `current`; the kept
/// ones and the `held` ones (checkpoints the auditor saw before, to show
/// this log extends them), with `current` or any of `others` (a log signs
/// with its next key too while it rotates keys, and with that alone
/// after). `progress` gets the entries done and the total.
pub fn audit<S: Source>(
    src: &S,
    current: &VerifierKey,
    others: &[VerifierKey],
    held: &[Vec<u8>],
    mut progress: impl FnMut(u64, u64),
) -> Result<Audited, AuditError<S::Error>> {
    let mut all = vec![current.clone()];
    all.extend_from_slice(others);
    let cp = checkpoint::open(&src.checkpoint().map_err(AuditError::Source)?, current).map_err(
        |source| AuditError::Checkpoint {
            what: "the newest checkpoint".into(),
            source,
        },
    )?;
    let mut older = Vec::new();
    for (size, text) in src.kept().map_err(AuditError::Source)? {
        let old = checkpoint::open_any(&text, &all).map_err(|source| AuditError::Checkpoint {
            what: format!("the checkpoint kept for size {size}"),
            source,
        })?;
        if old.size != size || size > cp.size {
            return Err(AuditError::KeptSize {
                kept: size,
                size: old.size,
                newest: cp.size,
            });
        }
        older.push(old);
    }
    let kept = older.len();
    for (i, text) in held.iter().enumerate() {
        let old = checkpoint::open_any(text, &all).map_err(|source| AuditError::Checkpoint {
            what: format!("held checkpoint {}", i + 1),
            source,
        })?;
        if old.size > cp.size {
            return Err(AuditError::HeldPast {
                held: i + 1,
                size: old.size,
                newest: cp.size,
            });
        }
        older.push(old);
    }
    older.sort_by_key(|c| c.size);
    let mut due = older.iter().peekable();
    let mut tree = Frontier::new();
    let mut noticed = Noticed::default();
    let mut check_due = |tree: &Frontier| {
        while let Some(c) = due.next_if(|c| c.size == tree.size()) {
            if tree.root() != c.root {
                return Err(AuditError::Root(c.size));
            }
        }
        Ok(())
    };
    check_due(&tree)?;
    let mut pruned = 0;
    let mut erasures = ErasureCheck::default();
    let mut retention = RetentionCheck::default();
    for tile in entry_bundles(0, cp.size) {
        match src.bundle(&tile).map_err(AuditError::Source)? {
            Bundle::Entries(data) => {
                let entries =
                    decode_bundle_of(&tile, &data).map_err(|source| AuditError::Bundle {
                        path: tile.path(),
                        source,
                    })?;
                for e in entries {
                    let hash = leaf_hash(e);
                    noticed.push(tree.size(), e);
                    retention.kept(tree.size(), &hash);
                    erasures.entry(tree.size(), e)?;
                    retention.entry(tree.size(), e)?;
                    tree.push(hash);
                    check_due(&tree)?;
                }
            }
            Bundle::Erased { entries, hashes } => {
                for (hash, entry) in erased_leaves(&tile, &entries, &hashes)? {
                    retention.kept(tree.size(), &hash);
                    match entry {
                        Some(e) => {
                            noticed.push(tree.size(), e);
                            erasures.entry(tree.size(), e)?;
                            retention.entry(tree.size(), e)?;
                        }
                        None => erasures.erased(tree.size(), hash),
                    }
                    tree.push(hash);
                    check_due(&tree)?;
                }
            }
            Bundle::Pruned(hashes) => {
                let hashes = leaf_hashes(&tile, &hashes).ok_or(AuditError::PrunedTile {
                    path: tile.path(),
                    width: tile.width,
                })?;
                for h in hashes {
                    tree.push(h);
                    pruned += 1;
                    check_due(&tree)?;
                }
            }
        }
        progress(tree.size(), cp.size);
    }
    let erasures = erasures.finish()?;
    if tree.root() != cp.root {
        return Err(AuditError::Root(cp.size));
    }
    Ok(Audited {
        checkpoint: cp,
        kept,
        held: held.len(),
        noticed,
        pruned,
        retention_record: retention.named_by,
        erased: erasures.erased_by.len() as u64,
        pending_erasures: erasures.pending,
        frontier: tree,
    })
}

/// The ledger's own record that `decision_id` is the id of: the erasure of
/// a leaf, or the retention record naming a first kept leaf; `None` for an
/// id the ledger never gives its records.
fn own_record_of(decision_id: &str) -> Option<String> {
    let leaf = |prefix: &str| {
        let n: u64 = decision_id.strip_prefix(prefix)?.parse().ok()?;
        Some(n)
    };
    if let Some(n) =
        leaf(RESERVED_PREFIXES[0]).filter(|&n| crate::erasure::decision_id(n) == decision_id)
    {
        return Some(format!("the erasure of leaf {n}"));
    }
    leaf(RESERVED_PREFIXES[1])
        .filter(|&n| crate::retention::decision_id(n) == decision_id)
        .map(|n| format!("the retention record naming leaf {n} the first kept"))
}

/// How many [`TakenIds`] names.
const NAMED: usize = 8;

/// Leaves an enforcer submitted under the `decision_id` of one of the
/// ledger's own records, found along a log's leaves in order. The ledger
/// refuses such ids from writers ([`crate::own_record::is_reserved`]), but a store may hold
/// some from before it did; each takes the id the ledger's own record
/// needs, so that record cannot be logged: that leaf cannot be erased, or
/// retention cannot log its record for that first kept leaf. Audits
/// report them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TakenIds {
    /// Such leaves.
    pub count: u64,
    /// The first few: the leaf, the record whose id it took, and who
    /// submitted it.
    pub named: Vec<(u64, String, String)>,
}

impl TakenIds {
    /// Leaf `index`, the next in log order (an erased entry, or bytes that
    /// are no envelope, are passed over).
    pub fn push(&mut self, index: u64, leaf: &[u8]) {
        let Some(record) = crate::envelope::decision_id(leaf).and_then(own_record_of) else {
            return;
        };
        let by = crate::envelope::submitted_by(leaf);
        if by == Some(SUBMITTED_BY) {
            return;
        }
        self.count += 1;
        if self.named.len() < NAMED {
            self.named
                .push((index, record, by.unwrap_or("?").to_string()));
        }
    }

    /// What an audit says when it found any.
    pub fn warning(&self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let mut w = format!(
            "warning: {} submitted by an enforcer {} the decision_id of one of the ledger's own \
             records, so that record cannot be logged (ledgerd refuses such ids; an earlier \
             version took them):",
            match self.count {
                1 => "1 leaf".to_string(),
                n => format!("{n} leaves"),
            },
            if self.count == 1 { "holds" } else { "hold" },
        );
        for (index, record, by) in &self.named {
            w.push_str(&format!(
                "\n  leaf {index}, submitted by {by:?}: the id of {record}"
            ));
        }
        if self.count > self.named.len() as u64 {
            w.push_str(&format!(
                "\n  and {} more",
                self.count - self.named.len() as u64
            ));
        }
        Some(w)
    }
}
