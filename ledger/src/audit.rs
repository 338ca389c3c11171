//! `audit`: rebuild the whole tree from the stored entries and check every
//! stored node hash and every stored checkpoint against it (an fsck).

use rocksdb::IteratorMode;
use verifier::audit::Noticed;
use verifier::erasure::{ErasureCheck, ErasureError};
use verifier::hash::HASH_SIZE;
use verifier::leaf_hash;
use verifier::retention::RetentionCheck;
use verifier::tile::{decode_bundle, TILE_WIDTH};
use verifier::tree::HashReader;
use verifier::Hash;

use crate::checkpoints::parse_stored_checkpoint;
use crate::store::*;
use crate::{Frontier, LedgerError, Log};

/// What an audit checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries re-hashed.
    pub entries: u64,
    /// Leaves below the retention horizon ([`Log::first_kept`]): their
    /// entries are gone, so their hashes are taken from the level-0 tiles,
    /// and checked against every stored node and checkpoint above them.
    pub pruned: u64,
    /// Leaves whose entries were erased ([`Log::erase_entry`]): their
    /// hashes are taken from the store, checked like the others, and each
    /// is named by a later erasure record.
    pub erased: u64,
    /// Leaves an erasure record names whose entries are still there: an
    /// erasure cut short after its record was logged (asking for it again
    /// finishes it).
    pub pending_erasures: Vec<u64>,
    /// The leaf of the retention record naming the first kept leaf, if
    /// one does (specs/storage.md, "Retention").
    pub retention_record: Option<u64>,
    /// Stored node hashes compared.
    pub nodes: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
    /// What the entries showed that is no failure: where `received_at`
    /// goes back in log order (the leaves are signed as they are, but time
    /// windows across them are not runs of leaves), and enforcers' leaves
    /// under the ids of the ledger's own records.
    pub noticed: Noticed,
}

impl Log {
    /// Recomputes the tree from the entries, compares every stored node and
    /// every signed checkpoint (signature and root), and reports progress as
    /// `(entries done, total)`. The first discrepancy is the error.
    pub fn audit(&self, mut progress: impl FnMut(u64, u64)) -> Result<AuditReport, LedgerError> {
        // One consistent view, even while a server keeps appending: the
        // checkpoints first, then the tree (its size and right edge), then
        // the entries, which hold at least that tree.
        let signed = self.checkpoints.snapshot();
        let reader = self.reader()?;
        let size = reader.edge.size();
        let snap = self.db.snapshot();
        let mut checkpoints = signed.iterator(IteratorMode::Start).peekable();
        let mut report = AuditReport {
            entries: 0,
            pruned: 0,
            erased: 0,
            pending_erasures: Vec::new(),
            retention_record: None,
            nodes: 0,
            checkpoints: 0,
            noticed: Noticed::default(),
        };
        let mut frontier = Frontier::new();
        let mut check_checkpoints = |frontier: &Frontier, report: &mut AuditReport| {
            while let Some(item) = checkpoints.peek() {
                let (k, v) = item.as_ref().map_err(|e| LedgerError::from(e.clone()))?;
                let cp_size = decode_u64(k, "checkpoint key")?;
                if cp_size != frontier.size() {
                    if cp_size < frontier.size() {
                        return Err(LedgerError::Corrupt(format!(
                            "checkpoint key {cp_size} out of order"
                        )));
                    }
                    break;
                }
                let signed = parse_stored_checkpoint(cp_size, v, &self.keys())?;
                if signed.checkpoint.root != frontier.root() {
                    return Err(LedgerError::RootMismatch {
                        size: cp_size,
                        computed: frontier.root(),
                        signed: signed.checkpoint.root,
                    });
                }
                report.checkpoints += 1;
                checkpoints.next();
            }
            Ok(())
        };
        check_checkpoints(&frontier, &mut report)?;
        // Read after the snapshot: a prune that moved it later removed
        // nothing the snapshot lacks.
        let first_kept = self.first_kept().min(size);
        let mut erasures = ErasureCheck::default();
        let mut retention = RetentionCheck::default();
        let push = |frontier: &mut Frontier, hash, report: &mut AuditReport| {
            let index = frontier.size();
            // Only tree levels 0, 8, 16… are stored (as hash tiles); the
            // levels between are computed from them and so checked with them.
            let stored = frontier
                .push(hash)
                .into_iter()
                .filter(|(id, _)| id.level % 8 == 0);
            for (id, hash) in stored {
                if reader.node(id)? != hash {
                    return Err(LedgerError::Corrupt(format!(
                        "stored node level {} index {} does not match the entries (first bad leaf {index})",
                        id.level, id.index
                    )));
                }
                report.nodes += 1;
            }
            Ok::<(), LedgerError>(())
        };
        for tile in 0..first_kept / TILE_WIDTH {
            let hashes = reader.tile(0, tile)?;
            if hashes.len() != TILE_WIDTH as usize * HASH_SIZE {
                return Err(LedgerError::Corrupt(format!(
                    "hash tile level 0 index {tile} below the retention horizon is short"
                )));
            }
            for h in hashes.chunks_exact(HASH_SIZE) {
                let hash = Hash::from_slice(h)
                    .ok_or_else(|| LedgerError::Corrupt("a leaf hash is not 32 bytes".into()))?;
                push(&mut frontier, hash, &mut report)?;
                report.pruned += 1;
                check_checkpoints(&frontier, &mut report)?;
            }
            progress(frontier.size(), size);
        }
        for item in snap.iterator_opt(IteratorMode::Start, position_reads()) {
            let (k, chunk) = item?;
            let (start, kind) = decode_position(&k)?;
            if kind != CHUNK_KIND || start < first_kept {
                continue;
            }
            if start == size && start == frontier.size() {
                // Appended since the audit began.
                break;
            }
            if start != frontier.size() || start >= size {
                return Err(LedgerError::Corrupt(format!(
                    "entry chunk at {start} where {} was expected (tree size {size})",
                    frontier.size()
                )));
            }
            let entries = decode_bundle(&chunk)
                .map_err(|e| LedgerError::Corrupt(format!("entry chunk at {start}: {e}")))?;
            if entries.is_empty() || entries.len() as u64 > CHUNK - start % CHUNK {
                return Err(LedgerError::Corrupt(format!(
                    "entry chunk at {start} holds {} entries",
                    entries.len()
                )));
            }
            for entry in entries {
                let index = frontier.size();
                let hash = match erased_hash(self, index, entry)? {
                    Some(hash) => {
                        erasures.erased(index, hash);
                        retention.kept(index, &hash);
                        hash
                    }
                    None => {
                        let hash = leaf_hash(entry);
                        report.noticed.push(index, entry);
                        retention.kept(index, &hash);
                        erasures.entry(index, entry).map_err(erasure_error)?;
                        retention
                            .entry(index, entry)
                            .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
                        hash
                    }
                };
                push(&mut frontier, hash, &mut report)?;
                report.entries += 1;
                check_checkpoints(&frontier, &mut report)?;
                if report.entries.is_multiple_of(4096) {
                    progress(report.entries, size);
                }
            }
        }
        if frontier.size() != size {
            return Err(LedgerError::Corrupt(format!(
                "{} entries stored but the tree size is {size}",
                frontier.size()
            )));
        }
        let erasures = erasures.finish().map_err(erasure_error)?;
        report.erased = erasures.erased_by.len() as u64;
        report.pending_erasures = erasures.pending;
        report.retention_record = retention.named_by;
        if checkpoints.next().is_some() {
            return Err(LedgerError::Corrupt(
                "a checkpoint is beyond the tree size".into(),
            ));
        }
        // The last checkpoint signed, kept outside RocksDB: the
        // store must reach it and agree with it.
        if let Some(w) = crate::last_checkpoint::read(&self.path, &self.keys())? {
            let signed = w.checkpoint.size;
            if signed > size {
                return Err(LedgerError::BehindSignedCheckpoint {
                    store: size,
                    signed,
                    kept_in: crate::last_checkpoint::path(&self.path)
                        .display()
                        .to_string(),
                });
            }
            let computed = crate::tree::root(&reader, signed)?;
            if computed != w.checkpoint.root {
                return Err(LedgerError::RootMismatch {
                    size: signed,
                    computed,
                    signed: w.checkpoint.root,
                });
            }
        }
        progress(size, size);
        Ok(report)
    }
}

/// The stored hash of leaf `index` if its entry `entry` was erased; an
/// empty entry that was not is hashed as it is.
fn erased_hash(log: &Log, index: u64, entry: &[u8]) -> Result<Option<Hash>, LedgerError> {
    if !entry.is_empty() {
        return Ok(None);
    }
    Ok(log.erased(index)?.map(|e| e.leaf_hash))
}

fn erasure_error(e: ErasureError) -> LedgerError {
    LedgerError::Corrupt(e.to_string())
}

impl Log {
    /// Reads every key and value of the index database (`db/index/`), so
    /// that RocksDB checks the checksum of each of its blocks: the
    /// indexes' share of an audit. Their contents are derived from the
    /// leaves; a damaged block is [`LedgerError::Damaged`] of
    /// [`crate::Store::Indexes`] (rebuilt with `ledgerctl reindex`).
    /// Returns the keys read; 0 for a log opened without indexes.
    pub fn check_indexes(&self) -> Result<u64, LedgerError> {
        let mut keys = 0;
        for name in self.index_cfs.iter().map(|f| f.name) {
            let db = self.index_db(name)?;
            let cf = cf(&db, name)?;
            let mut opts = rocksdb::ReadOptions::default();
            opts.set_verify_checksums(true);
            opts.fill_cache(false);
            let mut iter = db.raw_iterator_cf_opt(cf, opts);
            iter.seek_to_first();
            while iter.valid() {
                keys += 1;
                iter.next();
            }
            iter.status().map_err(|e| self.index_error(e))?;
        }
        Ok(keys)
    }
}
