//! Erasure: removing the entry of one leaf inside the retention window
//! while keeping its hash (specs/erasure.md, specs/storage.md "Erasure").
//!
//! The entry's chunk is rewritten with an entry of length 0 in its place,
//! and `e` ‖ leaf (8 bytes BE) stores the leaf's hash and the leaf of the
//! record that erased it, in one synced WriteBatch (for a batch of
//! erasures, one for all); then the chunks' positions are compacted so
//! the old bytes leave the SST files. The hash
//! tiles do not change, so roots, proofs and checkpoints stay what they
//! were. The record saying why is logged first, by the caller
//! (`ingest::erase`), so a leaf is never without its entry and without
//! that record.

use std::collections::BTreeMap;

use rocksdb::{WriteBatch, WriteOptions, DB};
use verifier::hash::HASH_SIZE;
use verifier::tile::{decode_bundle, encode_bundle};
use verifier::{leaf_hash, Hash};

use crate::retention::force_bottommost;
use crate::store::{chunk_key, decode_position, decode_u64, position_reads, seek_chunk};
use crate::{LedgerError, Log};

/// The first leaves (8 bytes BE each) of the chunks an erasure rewrote
/// whose positions are not compacted yet ([`Log::erase_entries`]).
const META_ERASING: &[u8] = b"aerasing";

/// Erased chunks at most this many leaves apart are compacted as one
/// range.
const COMPACT_GAP: u64 = 1 << 12;

/// Key prefix of an erased leaf's record: `e` ‖ leaf (8 bytes BE) →
/// leaf hash (32) ‖ the leaf of its erasure record (8 bytes BE).
pub(crate) const ERASED: u8 = b'e';

/// An erased leaf, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erased {
    /// The leaf whose entry is gone.
    pub index: u64,
    /// Its leaf hash (in the tree, unchanged).
    pub leaf_hash: Hash,
    /// The leaf of the record that erased it.
    pub by: u64,
}

impl Erased {
    /// Its stored value: leaf hash (32) ‖ `by` (8 BE).
    fn value(&self) -> [u8; HASH_SIZE + 8] {
        let mut v = [0; HASH_SIZE + 8];
        v[..HASH_SIZE].copy_from_slice(self.leaf_hash.as_bytes());
        v[HASH_SIZE..].copy_from_slice(&self.by.to_be_bytes());
        v
    }
}

fn erased_key(index: u64) -> [u8; 9] {
    let mut k = [ERASED; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn decode_erased(key: &[u8], value: &[u8]) -> Result<Erased, LedgerError> {
    let bad = || LedgerError::Corrupt(format!("erased leaf record {key:02x?} is malformed"));
    let index = decode_u64(key.get(1..).ok_or_else(bad)?, "erased leaf")?;
    if value.len() != HASH_SIZE + 8 {
        return Err(bad());
    }
    Ok(Erased {
        index,
        leaf_hash: Hash::from_slice(&value[..HASH_SIZE]).ok_or_else(bad)?,
        by: decode_u64(&value[HASH_SIZE..], "erasing leaf")?,
    })
}

/// The stored record of leaf `index`'s erasure, if it was erased.
pub(crate) fn stored_erased(db: &DB, index: u64) -> Result<Option<Erased>, LedgerError> {
    let key = erased_key(index);
    db.get_pinned(key)?
        .map(|v| decode_erased(&key, &v))
        .transpose()
}

impl Log {
    /// Whether leaf `index`'s entry was erased, and by which record.
    pub fn erased(&self, index: u64) -> Result<Option<Erased>, LedgerError> {
        stored_erased(&self.db, index)
    }

    /// The erased leaves in `from..to`, in order.
    pub fn erased_in(&self, from: u64, to: u64) -> Result<Vec<Erased>, LedgerError> {
        let mut out = Vec::new();
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(erased_key(from).to_vec());
        ro.set_iterate_upper_bound(erased_key(to).to_vec());
        let mut iter = self.db.raw_iterator_opt(ro);
        iter.seek_to_first();
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            out.push(decode_erased(k, v)?);
            iter.next();
        }
        iter.status()?;
        Ok(out)
    }

    /// Records that leaf `index`, appended without its entry (an empty
    /// one, [`Log::append_leaves`]), was erased by the record at leaf `by`,
    /// with the tree's hash of it (synced). For a restore.
    pub fn record_erased(&self, index: u64, by: u64) -> Result<(), LedgerError> {
        self.check_size("leaf index", by, false)?;
        if self.entry_is_empty(index)? {
            let erased = Erased {
                index,
                leaf_hash: self.leaf_hash(index)?,
                by,
            };
            let mut sync = WriteOptions::default();
            sync.set_sync(true);
            self.db.put_opt(erased_key(index), erased.value(), &sync)?;
            return Ok(());
        }
        Err(LedgerError::Corrupt(format!(
            "leaf {index} has its entry: it was not appended as erased"
        )))
    }

    fn entry_is_empty(&self, index: u64) -> Result<bool, LedgerError> {
        let mut empty = false;
        self.scan_entries(index, index + 1, |_, e| {
            empty = e.is_empty();
            Ok::<(), LedgerError>(())
        })?;
        Ok(empty)
    }

    /// Erases the entry of leaf `index`, recording that the record at leaf
    /// `by` (logged first, after `index`) says why: [`Log::erase_entries`]
    /// of one.
    pub fn erase_entry(&self, index: u64, by: u64) -> Result<Erased, LedgerError> {
        self.erase_entries(&[(index, by)])?
            .pop()
            .ok_or_else(|| LedgerError::Corrupt(format!("leaf {index} was not erased")))
    }

    /// Erases the entries of the leaves `(index, by)`: each erased by the
    /// record at leaf `by`, logged first, after it. In one synced
    /// WriteBatch: every chunk holding one is rewritten with entries of
    /// length 0 in their places, `e` ‖ leaf stores each leaf's hash and its
    /// record's leaf, and `a` ‖ `erasing` lists the chunks. Then the
    /// chunks' positions are compacted (nearby ones as one range), so the
    /// old bytes leave the SST files, and `a` ‖ `erasing` is deleted; a
    /// compaction cut short by a crash or [`Log::stop_compactions`] is
    /// done by [`Log::compact_owed`] or the next erasure (of any leaves,
    /// or of none). Returns what is stored of each, in order.
    /// A leaf erased before is answered as it was.
    pub fn erase_entries(&self, leaves: &[(u64, u64)]) -> Result<Vec<Erased>, LedgerError> {
        let _one = self.pruning.lock().unwrap_or_else(|p| p.into_inner());
        self.compact_erased_locked()?;
        let out = self.write_erasures(leaves)?;
        self.compact_erased_locked()?;
        Ok(out)
    }

    /// The synced WriteBatch of [`Log::erase_entries`], without the
    /// compaction after it (the caller holds `pruning`).
    fn write_erasures(&self, leaves: &[(u64, u64)]) -> Result<Vec<Erased>, LedgerError> {
        let first_kept = self.first_kept();
        let mut out = Vec::with_capacity(leaves.len());
        let mut now: BTreeMap<u64, Erased> = BTreeMap::new();
        // Chunk key → its first leaf and entries, as rewritten so far.
        let mut chunks: BTreeMap<Vec<u8>, (u64, Vec<Vec<u8>>)> = BTreeMap::new();
        let mut batch = WriteBatch::default();
        for &(index, by) in leaves {
            self.check_size("leaf index", by, false)?;
            if by <= index {
                return Err(LedgerError::Corrupt(format!(
                    "the record erasing leaf {index} must come after it, not at leaf {by}"
                )));
            }
            if index < first_kept {
                return Err(LedgerError::Pruned { index, first_kept });
            }
            let before = match now.get(&index) {
                Some(e) => Some(*e),
                None => self.erased(index)?,
            };
            if let Some(e) = before {
                out.push(e);
                continue;
            }
            let tree_hash = self.leaf_hash(index)?;
            let (start, entries) = self.chunk_of(index, &mut chunks)?;
            let missing = || LedgerError::Corrupt(format!("entry {index} is missing"));
            let at = usize::try_from(index - *start)
                .ok()
                .filter(|&at| at < entries.len())
                .ok_or_else(missing)?;
            if leaf_hash(&entries[at]) != tree_hash {
                return Err(LedgerError::Corrupt(format!(
                    "entry {index} does not hash to the tree's leaf {index}"
                )));
            }
            entries[at].clear();
            let erased = Erased {
                index,
                leaf_hash: tree_hash,
                by,
            };
            batch.put(erased_key(index), erased.value());
            now.insert(index, erased);
            out.push(erased);
        }
        if chunks.is_empty() {
            return Ok(out);
        }
        let mut positions = Vec::with_capacity(chunks.len() * 8);
        for (key, (start, entries)) in &chunks {
            let rewritten = encode_bundle(entries.iter().map(Vec::as_slice))
                .map_err(|e| LedgerError::Corrupt(format!("entry chunk at {start}: {e}")))?;
            batch.put(key, rewritten);
            positions.extend_from_slice(&start.to_be_bytes());
        }
        // Chunks an earlier erasure left to compact stay listed (a stop
        // cut its compaction short).
        if let Some(owed) = self.db.get(META_ERASING)? {
            positions.extend_from_slice(&owed);
        }
        batch.put(META_ERASING, positions);
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db.write_opt(batch, &sync)?;
        tracing::info!("erasure: erased the entries of {} leaves", now.len());
        Ok(out)
    }

    /// The chunk holding leaf `index`, read once per erasure batch into
    /// `chunks` (by its key): its first leaf and entries.
    fn chunk_of<'c>(
        &self,
        index: u64,
        chunks: &'c mut BTreeMap<Vec<u8>, (u64, Vec<Vec<u8>>)>,
    ) -> Result<&'c mut (u64, Vec<Vec<u8>>), LedgerError> {
        let mut iter = self.db.raw_iterator_opt(position_reads());
        seek_chunk(&mut iter, index)?;
        iter.status()?;
        let (Some(key), Some(chunk)) = (iter.key(), iter.value()) else {
            return Err(LedgerError::Corrupt(format!("entry {index} is missing")));
        };
        let key = key.to_vec();
        if !chunks.contains_key(&key) {
            let start = decode_position(&key)?.0;
            let entries = decode_bundle(chunk)
                .map_err(|e| LedgerError::Corrupt(format!("entry chunk at {start}: {e}")))?
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            chunks.insert(key.clone(), (start, entries));
        }
        chunks
            .get_mut(&key)
            .ok_or_else(|| LedgerError::Corrupt(format!("entry {index} is missing")))
    }

    /// The first leaves, ascending, of the chunks an erasure rewrote and
    /// did not compact yet (a crash or a stop came between).
    pub(crate) fn erased_owed(&self) -> Result<Vec<u64>, LedgerError> {
        let Some(listed) = self.db.get(META_ERASING)? else {
            return Ok(Vec::new());
        };
        if listed.len() % 8 != 0 {
            return Err(LedgerError::Corrupt(
                "the chunks left to compact after an erasure are not 8-byte positions".into(),
            ));
        }
        let mut positions: Vec<u64> = listed
            .chunks_exact(8)
            .map(|p| decode_u64(p, "erased chunk position"))
            .collect::<Result<_, _>>()?;
        positions.sort_unstable();
        positions.dedup();
        Ok(positions)
    }

    /// Compacts the chunks an erasure rewrote and did not compact yet (a
    /// crash or a stop came between), so their old bytes leave the SST
    /// files.
    pub(crate) fn compact_erased(&self) -> Result<(), LedgerError> {
        let _one = self.pruning.lock().unwrap_or_else(|p| p.into_inner());
        self.compact_erased_locked()
    }

    /// [`Log::compact_erased`] by a caller holding `pruning`. Cut short by
    /// [`Log::stop_compactions`], the chunks stay listed.
    fn compact_erased_locked(&self) -> Result<(), LedgerError> {
        let positions = self.erased_owed()?;
        if positions.is_empty() {
            return Ok(());
        }
        // Chunks close together are compacted as one range: each range
        // flushes and rewrites the files it overlaps, whatever its length.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for p in positions {
            match runs.last_mut() {
                Some((_, last)) if p - *last <= COMPACT_GAP => *last = p,
                _ => runs.push((p, p)),
            }
        }
        if !self.ran_to_end(&self.db, "an erasure's compaction", || {
            for (from, to) in runs {
                let mut end = chunk_key(to).to_vec();
                end.push(0);
                // The old chunks' bytes leave the memtable and every SST
                // file that held them; the bottommost level too.
                self.db.compact_range_opt(
                    Some(chunk_key(from).as_slice()),
                    Some(end.as_slice()),
                    &force_bottommost(),
                );
            }
        }) {
            // The chunks stay listed.
            return Ok(());
        }
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        Ok(self.db.delete_opt(META_ERASING, &sync)?)
    }
}
