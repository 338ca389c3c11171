//! The erased leaves of an export's range (specs/export.md, "Erased
//! decisions"): each is carried as its leaf hash, like a withheld one, and
//! named by an erasure record (specs/erasure.md) that the package carries
//! with its inclusion proof, so that a verifier can tell an erased
//! decision from one left out. A leaf just outside the range whose entry
//! was erased is carried by its hash, proven, and its record says when it
//! was received.

use std::collections::BTreeMap;

use super::{hashes, open_leaf, Boundary, ErasedBoundary, ExportError};
use crate::erasure;
use crate::hash::Hash;
use crate::inclusion::verify_inclusion;
use crate::timestamp::Timestamp;

/// The erased leaves of a range: index → the hash its erasure record
/// names, and when the record says it was received.
#[derive(Debug, Default)]
pub struct Erased(BTreeMap<u64, (Hash, Timestamp)>);

fn err(why: String) -> ExportError {
    ExportError::Erased(why)
}

impl Erased {
    /// Reads the erasure records `records` of the leaves `[first, end)`
    /// (the range, and any erased leaf just outside it): each included in
    /// the tree of `size` leaves and root `root`, each an erasure record
    /// naming one of those leaves, no leaf named twice.
    pub fn of(
        records: &[Boundary],
        (first, end): (u64, u64),
        size: u64,
        root: &Hash,
    ) -> Result<Erased, ExportError> {
        let mut out = BTreeMap::new();
        for b in records {
            let at = b.index;
            let leaf = open_leaf(b, size, root).map_err(|why| err(format!("the record: {why}")))?;
            let e = erasure::read(at, &leaf)
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| err(format!("leaf {at} is not an erasure record")))?;
            if e.index < first || e.index >= end {
                return Err(err(format!(
                    "the record at leaf {at} erases leaf {}, outside the range",
                    e.index
                )));
            }
            if out
                .insert(e.index, (e.leaf_hash, e.erased_received_at))
                .is_some()
            {
                return Err(err(format!("leaf {} is named by two records", e.index)));
            }
        }
        Ok(Erased(out))
    }

    /// Whether leaf `index` is erased.
    pub fn contains(&self, index: u64) -> bool {
        self.0.contains_key(&index)
    }

    /// Leaf `index`, carried as `hash`, must be an erased leaf of that hash.
    pub fn check(&self, index: u64, hash: &Hash) -> Result<(), ExportError> {
        match self.0.get(&index) {
            Some((h, _)) if h == hash => Ok(()),
            Some(_) => Err(err(format!(
                "leaf {index} is carried by another hash than its erasure record names"
            ))),
            None => Err(err(format!(
                "leaf {index} is erased, but no erasure record names it"
            ))),
        }
    }

    /// The erased boundary leaf `b` (`which`: `before` or `after`), that
    /// must be leaf `want`: its hash proven in the tree of `size` leaves
    /// and root `root`, and named with that hash by a record. Returns when
    /// the record says it was received.
    pub fn boundary(
        &self,
        b: &ErasedBoundary,
        which: &'static str,
        want: Option<u64>,
        size: u64,
        root: &Hash,
    ) -> Result<Timestamp, ExportError> {
        let err = |why: String| ExportError::Boundary { which, why };
        let Some(i) = want else {
            return Err(err("is given, but there is no such leaf".into()));
        };
        if b.index != i {
            return Err(err(format!("is leaf {}, not {i}", b.index)));
        }
        let hash = Hash::from_base64(&b.leaf_hash)
            .ok_or_else(|| err("has a leaf hash that is not base64 of 32 bytes".into()))?;
        let proof = hashes(&b.inclusion, which)?;
        verify_inclusion(&hash, i, size, &proof, root)
            .map_err(|e| err(format!("is not in the signed tree: {e}")))?;
        self.check(i, &hash)?;
        self.0
            .get(&i)
            .map(|&(_, t)| t)
            .ok_or_else(|| err("is named by no erasure record".into()))
    }
}
