//! The erased leaves of an export's range (specs/export.md, "Erased
//! decisions"): each is carried as its leaf hash, like a withheld one, and
//! named by an erasure record (specs/erasure.md) that the package carries
//! with its inclusion proof, so that a verifier can tell an erased
//! decision from one left out.

use std::collections::BTreeMap;

use super::{open_leaf, Boundary, ExportError};
use crate::erasure;
use crate::hash::Hash;

/// The erased leaves of a range: index → the hash its erasure record names.
#[derive(Debug, Default)]
pub struct Erased(BTreeMap<u64, Hash>);

fn err(why: String) -> ExportError {
    ExportError::Erased(why)
}

impl Erased {
    /// Reads the erasure records `records` of the range `[first, end)`:
    /// each included in the tree of `size` leaves and root `root`, each an
    /// erasure record naming a leaf of the range, no leaf named twice.
    pub fn of(
        records: &[Boundary],
        first: u64,
        end: u64,
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
            if out.insert(e.index, e.leaf_hash).is_some() {
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
            Some(h) if h == hash => Ok(()),
            Some(_) => Err(err(format!(
                "leaf {index} is carried by another hash than its erasure record names"
            ))),
            None => Err(err(format!(
                "leaf {index} is erased, but no erasure record names it"
            ))),
        }
    }
}
