//! Appending in two steps, so a writer can build the next batch while the
//! previous one is being written: [`Log::prepare`] hashes the entries and
//! builds the WriteBatch on a [`Tip`] (the tree as it will be once every
//! earlier prepared append is committed); [`Log::commit`] writes it, synced,
//! and only if it extends exactly the committed tree.

use std::ops::Range;
use std::sync::atomic::Ordering;

use rocksdb::{WriteBatch, WriteOptions};
use verifier::tile::{encode_bundle_into, MAX_ENTRY_SIZE, TILE_WIDTH};
use verifier::{leaf_hash, Hash, HashedEntry};

use crate::edge::TileEdge;
use crate::store::*;
use crate::{Frontier, LedgerError, Log};

/// Bytes of a WriteBatch before its first record (sequence number, count).
const BATCH_HEADER: usize = 12;
/// Bytes a put adds besides its key and value at most: a tag, the column
/// family id and the two lengths, as varints.
const PUT_OVERHEAD: usize = 16;

/// The right edge of the tree an append builds on: its frontier and the
/// partial hash tiles. Taken from the log with [`Log::tip`] and advanced by
/// each [`Log::prepare`].
#[derive(Clone, Debug)]
pub struct Tip {
    pub(crate) frontier: Frontier,
    pub(crate) edge: TileEdge,
}

impl Tip {
    /// Leaves in the tree once everything prepared on this tip is committed.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }
}

/// An append built by [`Log::prepare`], waiting for [`Log::commit`].
pub struct PreparedAppend {
    batch: WriteBatch,
    first: u64,
    leaves: Vec<Hash>,
    after: Tip,
}

impl PreparedAppend {
    /// The leaf indexes the entries get once committed.
    pub fn range(&self) -> Range<u64> {
        self.first..self.after.size()
    }

    /// The entries' leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }
}

impl std::fmt::Debug for PreparedAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedAppend")
            .field("range", &self.range())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// The committed tree's right edge, to prepare appends on.
    pub fn tip(&self) -> Tip {
        let state = self.state();
        Tip {
            frontier: state.frontier.clone(),
            edge: state.edge.clone(),
        }
    }

    /// Hashes `entries` and builds their WriteBatch on `tip`, which it
    /// advances. Nothing is written. Refuses (leaving `tip` as it was) if an
    /// entry is over 65,535 bytes.
    pub fn prepare<E: AsRef<[u8]>>(
        &self,
        tip: &mut Tip,
        entries: &[E],
    ) -> Result<PreparedAppend, LedgerError> {
        let leaves = entries.iter().map(|e| leaf_hash(e.as_ref())).collect();
        self.prepare_leaves(tip, entries, leaves)
    }

    /// [`Log::prepare`] for entries hashed already (by whoever built them).
    pub fn prepare_hashed(
        &self,
        tip: &mut Tip,
        entries: &[HashedEntry],
    ) -> Result<PreparedAppend, LedgerError> {
        let leaves = entries.iter().map(HashedEntry::leaf_hash).collect();
        self.prepare_leaves(tip, entries, leaves)
    }

    /// `leaves[i]` is the leaf hash of `entries[i]`.
    fn prepare_leaves<E: AsRef<[u8]>>(
        &self,
        tip: &mut Tip,
        entries: &[E],
        leaves: Vec<Hash>,
    ) -> Result<PreparedAppend, LedgerError> {
        if let Some((position, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.as_ref().len() > MAX_ENTRY_SIZE)
        {
            return Err(LedgerError::EntryTooLarge {
                position,
                len: e.as_ref().len(),
            });
        }
        let first = tip.size();
        let mut after = tip.clone();
        let chunks = chunks(first, entries);
        // n leaves complete fewer than 2n + 64 nodes: room for all.
        let mut nodes = Vec::with_capacity(entries.len() * 2 + 64);
        for &leaf in &leaves {
            after.frontier.push_into(leaf, &mut nodes);
        }
        let tiles = after.edge.add(&nodes, after.size())?;
        // The batch is about a megabyte at peak: sized up front, it is
        // allocated once instead of being copied each time it doubles.
        let bytes = BATCH_HEADER
            + PUT_OVERHEAD * (chunks.len() + tiles.len())
            + chunks.len() * 10
            + entries.iter().map(|e| 2 + e.as_ref().len()).sum::<usize>()
            + tiles.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let mut batch = WriteBatch::with_capacity_bytes(bytes);
        // Each chunk is encoded into one buffer (it grows to the largest
        // chunk once) and copied into the batch while it is still in
        // cache: not one allocation per chunk, all held until the last.
        let mut bundle = Vec::new();
        for (start, chunk) in chunks {
            encode_bundle_into(&mut bundle, chunk.iter().map(AsRef::as_ref))?;
            batch.put(chunk_key(start), &bundle);
        }
        for (key, tile) in tiles {
            batch.put(key, tile);
        }
        *tip = after.clone();
        Ok(PreparedAppend {
            batch,
            first,
            leaves,
            after,
        })
    }

    /// Writes a prepared append with the WAL synced, if it extends exactly
    /// the committed tree (else [`LedgerError::Stale`], nothing written);
    /// returns the indexes and leaf hashes.
    pub fn commit(&self, prepared: PreparedAppend) -> Result<(Range<u64>, Vec<Hash>), LedgerError> {
        // Readers (checkpoint signing, proofs) do not wait for the write:
        // only commits are serialised, and the state is swapped after it.
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let committed = self.size();
        if prepared.first != committed {
            return Err(LedgerError::Stale {
                prepared: prepared.first,
                committed,
            });
        }
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.synced
            .time(|| self.db.write_opt(prepared.batch, &sync))?;
        let end = prepared.after.size();
        let mut state = self.state();
        state.frontier = prepared.after.frontier;
        state.edge = prepared.after.edge;
        self.committed.store(end, Ordering::Release);
        Ok((prepared.first..end, prepared.leaves))
    }

    /// Appends entries in one WriteBatch with the WAL synced before
    /// returning; returns their leaf indexes. Nothing is written if any
    /// entry is too large.
    pub fn append<E: AsRef<[u8]>>(&self, entries: &[E]) -> Result<Range<u64>, LedgerError> {
        let _one = self.appending.lock().unwrap_or_else(|p| p.into_inner());
        let mut tip = self.tip();
        let prepared = self.prepare(&mut tip, entries)?;
        self.commit(prepared).map(|(range, _)| range)
    }

    /// Appends `entries` whose leaf hashes are `leaves`, where an empty
    /// entry is one that was erased and its leaf hash the tree's (a restore
    /// from a mirror of a log with erasures; [`Log::record_erased`] then
    /// records each). Every other entry must hash to its leaf.
    pub fn append_leaves<E: AsRef<[u8]>>(
        &self,
        entries: &[E],
        leaves: Vec<Hash>,
    ) -> Result<Range<u64>, LedgerError> {
        let _one = self.appending.lock().unwrap_or_else(|p| p.into_inner());
        let mut tip = self.tip();
        let first = tip.size();
        if entries.len() != leaves.len() {
            return Err(LedgerError::Corrupt(format!(
                "{} entries given with {} leaf hashes",
                entries.len(),
                leaves.len()
            )));
        }
        for (i, (e, h)) in (first..).zip(entries.iter().zip(&leaves)) {
            let e = e.as_ref();
            if !e.is_empty() && leaf_hash(e) != *h {
                return Err(LedgerError::Corrupt(format!(
                    "entry {i} does not hash to its leaf"
                )));
            }
        }
        let prepared = self.prepare_leaves(&mut tip, entries, leaves)?;
        self.commit(prepared).map(|(range, _)| range)
    }

    /// Appends leaves of which only the hashes are known, as their entries
    /// were removed by retention (a restore from a mirror of a pruned log):
    /// only while every leaf so far is pruned, in whole entry bundles of
    /// 256. The hash tiles they fill are written, no entries, and the first
    /// kept leaf moves past them, all in one synced WriteBatch.
    pub fn append_pruned(&self, leaves: &[Hash]) -> Result<Range<u64>, LedgerError> {
        let _one = self.appending.lock().unwrap_or_else(|p| p.into_inner());
        let size = self.size();
        let first_kept = self.first_kept();
        if size != first_kept || !(leaves.len() as u64).is_multiple_of(TILE_WIDTH) {
            return Err(LedgerError::PrunedAppend {
                size,
                first_kept,
                leaves: leaves.len() as u64,
            });
        }
        let mut tip = self.tip();
        let mut prepared = self.prepare_leaves(&mut tip, &[] as &[&[u8]], leaves.to_vec())?;
        let end = prepared.after.size();
        prepared
            .batch
            .put(crate::retention::META_PRUNED, end.to_be_bytes());
        let (range, _) = self.commit(prepared)?;
        self.first_kept.store(end, Ordering::Release);
        Ok(range)
    }
}

/// Splits entries appended at `first` into stored chunks: runs that never
/// cross a multiple of [`CHUNK`], each with its first leaf index.
fn chunks<E: AsRef<[u8]>>(first: u64, entries: &[E]) -> Vec<(u64, &[E])> {
    let mut out = Vec::new();
    let (mut start, mut rest) = (first, entries);
    while !rest.is_empty() {
        let room = (CHUNK - start % CHUNK) as usize;
        let (chunk, tail) = rest.split_at(room.min(rest.len()));
        out.push((start, chunk));
        start += chunk.len() as u64;
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_never_cross_a_chunk_boundary() {
        let entries: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i]).collect();
        let got: Vec<(u64, usize)> = chunks(10, &entries)
            .into_iter()
            .map(|(s, c)| (s, c.len()))
            .collect();
        assert_eq!(got, vec![(10, 6), (16, 16), (32, 16), (48, 2)]);
        assert!(chunks::<Vec<u8>>(5, &[]).is_empty());
    }
}
