//! Proof packages built from the log: evidence files (specs/evidence.md),
//! chain bundles (specs/chain.md), COSE receipts (specs/receipt.md) and the
//! head of a compliance export (specs/export.md). Each is against one
//! signed checkpoint; the formats are the verifier's.

use verifier::chain::{ChainBundle, Hop};
use verifier::envelope::Envelope;
use verifier::erasure::Erasure;
use verifier::evidence::Evidence;
use verifier::export::{
    boundary_of, erasable, erased_boundary_of, Boundary, ErasedBoundary, Filter, Head, Window,
};
use verifier::range::cover;
use verifier::receipt::Receipt;
use verifier::timestamp::Timestamp;
use verifier::tree::{HashReader, NodeId};
use verifier::SignerKey;

use crate::{LedgerError, Log};

impl Log {
    /// The evidence file of entry `index` against the checkpoint signed at
    /// `size` (the latest if `None`): its bytes and tlog-proof.
    pub fn evidence(&self, index: u64, size: Option<u64>) -> Result<Evidence, LedgerError> {
        Ok(Evidence {
            proof: self.tlog_proof(index, size)?,
            leaf: self.entry(index)?,
        })
    }

    /// A chain bundle of the entries `indexes` (ascending, each below the
    /// checkpoint's size), every proof against the checkpoint signed at
    /// `size` (the latest if `None`).
    pub fn chain_bundle(
        &self,
        indexes: &[u64],
        truncated: bool,
        size: Option<u64>,
    ) -> Result<ChainBundle, LedgerError> {
        let signed = self.signed_checkpoint(size)?;
        let size = signed.checkpoint.size;
        let hops = indexes
            .iter()
            .map(|&index| {
                Ok(Hop {
                    index,
                    leaf: self.entry(index)?,
                    proof: self.inclusion_proof(index, size)?,
                })
            })
            .collect::<Result<_, LedgerError>>()?;
        Ok(ChainBundle {
            truncated,
            hops,
            checkpoint: signed.cosigned(),
        })
    }

    /// A COSE receipt of entry `index` in the tree of the latest signed
    /// checkpoint, signed with `signer` (this log's key).
    pub fn receipt(&self, index: u64, signer: &SignerKey) -> Result<Receipt, LedgerError> {
        self.check_signer(signer)?;
        let cp = self.signed_checkpoint(None)?.checkpoint;
        let path = self.inclusion_proof(index, cp.size)?;
        Ok(Receipt::sign(signer, cp.size, index, path, &cp.root))
    }

    /// When leaf `index` was received (its envelope's `received_at`).
    pub fn received_at(&self, index: u64) -> Result<Timestamp, LedgerError> {
        let leaf = match self.entry(index) {
            // The erasure record says when the erased leaf was received.
            Err(LedgerError::Erased { by, .. }) => {
                return Ok(self.erasure_record(index, by)?.erased_received_at)
            }
            other => other?,
        };
        let bad = |why: String| LedgerError::Corrupt(format!("leaf {index}: {why}"));
        let env = Envelope::decode(&leaf).map_err(|e| bad(e.to_string()))?;
        Timestamp::parse_text(&env.received_at)
            .ok_or_else(|| bad(format!("received_at {:?} is not a time", env.received_at)))
    }

    /// The first leaf below `size` received at or after `t` (`size` if
    /// none): `received_at` never decreases in log order. Only kept leaves
    /// are looked at ([`Log::first_kept`]): with entries pruned, a `t`
    /// before the first kept leaf's time answers that leaf.
    pub fn first_received_at_or_after(&self, t: Timestamp, size: u64) -> Result<u64, LedgerError> {
        let (mut lo, mut hi) = (self.first_kept().min(size), size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.received_at(mid)? < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The erasure record at leaf `by`, which erased leaf `index`.
    fn erasure_record(&self, index: u64, by: u64) -> Result<Erasure, LedgerError> {
        verifier::erasure::read(by, &self.entry(by)?)
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?
            .filter(|e| e.index == index)
            .ok_or_else(|| {
                LedgerError::Corrupt(format!(
                    "leaf {by}, stored as the record erasing leaf {index}, does not erase it"
                ))
            })
    }

    /// The hash of a complete subtree of the committed tree.
    pub fn node(&self, id: NodeId) -> Result<verifier::Hash, LedgerError> {
        self.reader()?.node(id)
    }

    /// The head of an export of the decisions received in `[from, to)`
    /// (specs/export.md), against the checkpoint signed at `size` (the
    /// latest if `None`): the range of leaves, its proof, and the leaves
    /// on either side with their inclusion proofs.
    pub fn export_head(
        &self,
        from: Timestamp,
        to: Timestamp,
        filter: Filter,
        size: Option<u64>,
    ) -> Result<Head, LedgerError> {
        let signed = self.signed_checkpoint(size)?;
        let n = signed.checkpoint.size;
        let first = self.first_received_at_or_after(from, n)?;
        let end = self.first_received_at_or_after(to, n)?.max(first);
        // The leaf before a range that starts at the first kept leaf had
        // its entry removed: the ledger's retention record naming that
        // leaf, in the checkpoint, stands in for it.
        let first_kept = self.first_kept();
        let retained = if first_kept > 0 && first <= first_kept {
            match self.retention_record()? {
                Some((kept, by)) if kept == first_kept && first == kept && by < n => Some(
                    boundary_of(by, &self.entry(by)?, &self.inclusion_proof(by, n)?),
                ),
                record => {
                    return Err(LedgerError::WindowPruned {
                        from: from.canonical(),
                        first_kept,
                        oldest: self.received_at(first_kept)?.canonical(),
                        record: record
                            .filter(|&(kept, _)| kept == first_kept)
                            .map(|(_, by)| by),
                        size: n,
                    })
                }
            }
        } else {
            None
        };
        let hashes = |b, e| -> Result<Vec<String>, LedgerError> {
            cover(b, e)
                .into_iter()
                .map(|id| Ok(self.node(id)?.to_base64()))
                .collect()
        };
        // A boundary leaf, or its hash when its entry was erased (its
        // erasure record, below, says when it was received).
        let bound = |i: u64| -> Result<(Option<Boundary>, Option<ErasedBoundary>), LedgerError> {
            let proof = self.inclusion_proof(i, n)?;
            match self.entry(i) {
                Ok(leaf) => Ok((Some(boundary_of(i, &leaf, &proof)), None)),
                Err(LedgerError::Erased { .. }) => Ok((
                    None,
                    Some(erased_boundary_of(i, &self.leaf_hash(i)?, &proof)),
                )),
                Err(e) => Err(e),
            }
        };
        let (before, before_erased) = match first.checked_sub(1).filter(|_| retained.is_none()) {
            Some(i) => bound(i)?,
            None => (None, None),
        };
        let (after, after_erased) = if end < n { bound(end)? } else { (None, None) };
        // The records of the erasures inside the range and of the erased
        // boundary leaves, proven like the boundary leaves: each says which
        // leaf, of which hash, received when.
        let mut erased = Vec::new();
        let (lo, hi) = erasable(first, end, &before_erased, &after_erased);
        for e in self.erased_in(lo, hi)? {
            if e.by >= n {
                return Err(LedgerError::ErasedAfter {
                    index: e.index,
                    by: e.by,
                    size: n,
                });
            }
            erased.push(boundary_of(
                e.by,
                &self.entry(e.by)?,
                &self.inclusion_proof(e.by, n)?,
            ));
        }
        Ok(Head {
            origin: signed.checkpoint.origin.clone(),
            window: Window {
                from: from.canonical(),
                to: to.canonical(),
            },
            filter,
            first,
            end,
            left: hashes(0, first)?,
            right: hashes(end, n)?,
            before,
            after,
            before_erased,
            after_erased,
            erased,
            retained,
            checkpoint: signed.cosigned(),
        })
    }
}
