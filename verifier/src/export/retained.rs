//! An export whose range starts at the log's first kept leaf (specs/export.md,
//! "After retention"): the leaf before the range had its entry removed by
//! retention, so no `before` leaf shows where the window starts. The
//! package carries instead the ledger's retention record naming the
//! range's first leaf as the first kept one (specs/storage.md,
//! "Retention"), proven in the checkpoint's tree; the range's first leaf
//! must have the hash the record names.

use super::{open_leaf, Boundary, ExportError};
use crate::hash::{leaf_hash, Hash};
use crate::retention::{self, Retention};
use crate::timestamp::Timestamp;

fn err(why: String) -> ExportError {
    ExportError::Retained(why)
}

/// The retention record of a range, read and proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retained {
    /// The record's leaf.
    pub index: u64,
    /// What it says.
    pub record: Retention,
}

impl Retained {
    /// Reads the manifest's `retained` for the range `[first, end)` of the
    /// tree of `size` leaves and root `root`, whose window starts at
    /// `from`: `None` when absent. Present, there must be no `before`
    /// leaf, the record must be in the tree, name `first` as the first
    /// kept leaf, received inside the window; when the range is empty,
    /// the `after` leaf is that leaf and must have its hash.
    pub fn of(
        b: Option<&Boundary>,
        before: Option<&Boundary>,
        after: Option<&Boundary>,
        range: (u64, u64),
        tree: (u64, &Hash),
        from: Timestamp,
    ) -> Result<Option<Retained>, ExportError> {
        let Some(b) = b else { return Ok(None) };
        let ((first, end), (size, root)) = (range, tree);
        if before.is_some() {
            return Err(err(
                "is given beside the leaf before the range: only a range whose leaf before was removed by retention carries it".into(),
            ));
        }
        let leaf = open_leaf(b, size, root).map_err(err)?;
        let record = retention::read(b.index, &leaf)
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err(format!("leaf {} is not a retention record", b.index)))?;
        if record.first_kept != first || first == 0 {
            return Err(err(format!(
                "the record at leaf {} names leaf {} as the first kept, but the range starts at leaf {first}",
                b.index, record.first_kept
            )));
        }
        if record.first_kept_received_at < from {
            return Err(err(format!(
                "leaf {first} was received at {}, before the window, so the range does not start at the window",
                record.first_kept_received_at
            )));
        }
        let retained = Retained {
            index: b.index,
            record,
        };
        if first == end {
            let after = after.ok_or_else(|| err(format!("leaf {first} is missing")))?;
            let leaf = open_leaf(after, size, root).map_err(err)?;
            retained.check(first, &leaf_hash(&leaf))?;
        }
        Ok(Some(retained))
    }

    /// The range's first leaf `index` has hash `hash`: it must be the one
    /// the record names (other leaves pass).
    pub fn check(&self, index: u64, hash: &Hash) -> Result<(), ExportError> {
        if index == self.record.first_kept && *hash != self.record.leaf_hash {
            return Err(err(format!(
                "leaf {index} is not the leaf the record at leaf {} names: another hash",
                self.index
            )));
        }
        Ok(())
    }
}
