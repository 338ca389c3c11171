//! Retention: removing the entries of the oldest leaves while keeping the
//! tree (specs/storage.md, "Retention").
//!
//! A leaf's entry is what discloses a decision; its hash is what every
//! proof is built from. [`Log::prune`] deletes the entry chunks below a
//! leaf and keeps every hash tile, so roots, inclusion and consistency
//! proofs, checkpoints and the tlog-tiles hash tiles are what they were;
//! only the entries (and what is read from them) are gone. The first kept
//! leaf is stored under `a` ‖ `pruned` in the same synced WriteBatch as
//! the deletions, and only ever grows.

use std::sync::atomic::Ordering;

use rocksdb::{BottommostLevelCompaction, CompactOptions, WriteBatch, WriteOptions, DB};
use verifier::tile::TILE_WIDTH;

use crate::store::{cf, decode_position, decode_u64, position_reads, CHUNK_KIND, POSITION};
use crate::{LedgerError, Log};

/// The first leaf whose entry is kept (8 bytes BE); absent: 0.
pub(crate) const META_PRUNED: &[u8] = b"apruned";

/// The first kept leaf up to which the removed entries' positions were
/// compacted (8 bytes BE; absent: 0): a prune cut short before its
/// compaction has it done by the next.
const META_COMPACTED: &[u8] = b"acompacted";

/// The first kept leaf K (8 bytes BE) ‖ the leaf of the ledger's
/// retention record naming it (8 bytes BE; specs/storage.md): what an
/// export whose window reaches below K carries instead of leaf K − 1.
const META_RETAINED: &[u8] = b"aretained";

/// Leaves removed per synced WriteBatch at most: a long prune is a run of
/// steps, each of which moves the stored first kept leaf.
const PRUNE_STEP: u64 = 1 << 16;

/// The first kept leaf stored in `db` (0 if nothing was pruned).
pub(crate) fn stored_first_kept(db: &DB) -> Result<u64, LedgerError> {
    db.get(META_PRUNED)?
        .map_or(Ok(0), |v| decode_u64(&v, "first kept leaf"))
}

/// Compaction options that rewrite the bottommost level too, where deleted
/// keys' bytes would otherwise stay.
pub(crate) fn force_bottommost() -> CompactOptions {
    let mut compact = CompactOptions::default();
    compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    compact
}

/// The key of position `position` and kind `kind` (specs/storage.md).
fn position_key(position: u64, kind: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(POSITION);
    k.extend_from_slice(&position.to_be_bytes());
    k.push(kind);
    k
}

impl Log {
    /// The first leaf whose entry is kept: the entries below it were
    /// removed by [`Log::prune`] (0 if none were).
    pub fn first_kept(&self) -> u64 {
        self.first_kept.load(Ordering::Acquire)
    }

    /// Where [`Log::prune`] of the leaves below `before` would stop: at a
    /// multiple of 256 (whole tlog-tiles entry bundles), below the entry
    /// bundle holding the last leaf (the tree size and its right edge are
    /// read from the newest entries), and never back.
    pub fn prunable(&self, before: u64) -> u64 {
        let size = self.size();
        let last_bundle = size.saturating_sub(1) / TILE_WIDTH * TILE_WIDTH;
        (before.min(last_bundle) / TILE_WIDTH * TILE_WIDTH).max(self.first_kept())
    }

    /// Removes the entries of the leaves below [`Log::prunable`]`(before)`
    /// and returns the new [`Log::first_kept`]: [`Log::prune_entries`],
    /// then [`Log::compact_pruned`].
    pub fn prune(&self, before: u64) -> Result<u64, LedgerError> {
        let to = self.prune_entries(before)?;
        self.compact_pruned()?;
        Ok(to)
    }

    /// Deletes the entries of the leaves below [`Log::prunable`]`(before)`
    /// and returns the new [`Log::first_kept`]. The hash tiles stay, so
    /// the tree, its proofs and its checkpoints do not change; reading a
    /// removed entry is [`LedgerError::Pruned`]. Each step is one synced
    /// WriteBatch that deletes chunks and moves the stored first kept
    /// leaf, so a crash leaves a store pruned up to some step.
    pub fn prune_entries(&self, before: u64) -> Result<u64, LedgerError> {
        let _one = self.pruning.lock().unwrap_or_else(|p| p.into_inner());
        let from = self.first_kept();
        let to = self.prunable(before);
        if to <= from {
            return Ok(from);
        }
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        let mut at = from;
        while at < to {
            let next = to.min(at.saturating_add(PRUNE_STEP));
            let mut batch = WriteBatch::default();
            let mut ro = position_reads();
            ro.set_iterate_lower_bound(position_key(at, 0));
            // Tiles ending at `next` sort before the chunk starting there.
            ro.set_iterate_upper_bound(position_key(next, 0));
            let mut iter = self.db.raw_iterator_opt(ro);
            iter.seek_to_first();
            while let Some(key) = iter.key() {
                if decode_position(key)?.1 == CHUNK_KIND {
                    batch.delete(key);
                }
                iter.next();
            }
            iter.status()?;
            drop(iter);
            batch.put(META_PRUNED, next.to_be_bytes());
            // Readers are refused the range before its chunks go.
            self.first_kept.store(next, Ordering::Release);
            self.db.write_opt(batch, &sync)?;
            at = next;
        }
        tracing::info!("retention: removed the entries of leaves {from}..{to}");
        Ok(to)
    }

    /// Compacts the positions of the leaves removed since the last
    /// compaction (bottommost level included), so that the bytes of the
    /// entries [`Log::prune_entries`] deleted there leave the SST files (a
    /// backup or mirror keeps its own copy), and records how far it did:
    /// not at all when [`Log::stop_compactions`] cut it short. The hash
    /// tiles among them are rewritten once, not each prune.
    pub fn compact_pruned(&self) -> Result<(), LedgerError> {
        let _one = self.pruning.lock().unwrap_or_else(|p| p.into_inner());
        let (from, to) = (self.compacted_to()?, self.first_kept());
        if to > from {
            let what = format!("the compaction of the removed leaves {from}..{to}");
            if !self.ran_to_end(&self.db, &what, || {
                self.db.compact_range_opt(
                    Some(position_key(from, 0)),
                    Some(position_key(to, 0)),
                    &force_bottommost(),
                )
            }) {
                // Owed (`compactions_owed`).
                return Ok(());
            }
            let mut sync = WriteOptions::default();
            sync.set_sync(true);
            self.db.put_opt(META_COMPACTED, to.to_be_bytes(), &sync)?;
        }
        Ok(())
    }

    /// Whether the entries of removed leaves are not compacted yet
    /// ([`Log::compact_pruned`] was cut short).
    pub(crate) fn pruned_owed(&self) -> Result<bool, LedgerError> {
        Ok(self.first_kept() > self.compacted_to()?)
    }

    /// The first kept leaf up to which removed entries were compacted
    /// (`a` ‖ `compacted`; 0 before any).
    fn compacted_to(&self) -> Result<u64, LedgerError> {
        self.db
            .get(META_COMPACTED)?
            .map_or(Ok(0), |v| decode_u64(&v, "compacted leaf"))
    }

    /// The first kept leaf named by the newest stored retention record,
    /// and that record's leaf ([`Log::record_retention`]); `None` before
    /// any. It is the current [`Log::first_kept`] unless a prune moved
    /// that since and its record is not logged yet.
    pub fn retention_record(&self) -> Result<Option<(u64, u64)>, LedgerError> {
        let Some(v) = self.db.get(META_RETAINED)? else {
            return Ok(None);
        };
        let (kept, by) = v.split_at_checked(8).ok_or_else(|| {
            LedgerError::Corrupt("the stored retention record is not 16 bytes".into())
        })?;
        Ok(Some((
            decode_u64(kept, "retained first kept leaf")?,
            decode_u64(by, "retention record leaf")?,
        )))
    }

    /// Records that the entry at leaf `by` is the ledger's retention
    /// record (specs/storage.md, "Retention") naming the current first
    /// kept leaf, by its hash (synced). A record that names another leaf,
    /// or names it by another hash, is refused.
    pub fn record_retention(&self, by: u64) -> Result<(), LedgerError> {
        let record = verifier::retention::read(by, &self.entry(by)?)
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?
            .ok_or_else(|| LedgerError::Corrupt(format!("leaf {by} is not a retention record")))?;
        let kept = self.first_kept();
        if record.first_kept != kept || record.leaf_hash != self.leaf_hash(kept)? {
            return Err(LedgerError::Corrupt(format!(
                "the retention record at leaf {by} names leaf {} with its hash, but the first kept leaf is {kept}",
                record.first_kept
            )));
        }
        let mut value = kept.to_be_bytes().to_vec();
        value.extend_from_slice(&by.to_be_bytes());
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        Ok(self.db.put_opt(META_RETAINED, value, &sync)?)
    }

    /// Deletes `keys` and the key ranges `ranges` (`[from, to)`) from the
    /// index column family `cf_name`, in one synced WriteBatch (the
    /// indexes of pruned leaves, [`Log::prune`]).
    pub fn index_delete(
        &self,
        cf_name: &str,
        keys: &[Vec<u8>],
        ranges: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        let mut batch = WriteBatch::default();
        for k in keys {
            batch.delete_cf(cf, k);
        }
        for (from, to) in ranges {
            batch.delete_range_cf(cf, from, to);
        }
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        db.write_opt(batch, &sync).map_err(|e| self.index_error(e))
    }

    /// Puts one key into the index column family `cf_name` (synced).
    pub fn index_put(&self, cf_name: &str, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = cf(&db, cf_name)?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        db.put_cf_opt(cf, key, value, &sync)
            .map_err(|e| self.index_error(e))
    }
}
