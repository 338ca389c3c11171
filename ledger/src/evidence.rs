//! Proof packages for responders, built from the log: evidence files
//! (specs/evidence.md), chain bundles (specs/chain.md) and COSE receipts
//! (specs/receipt.md). Each is against one signed checkpoint; the formats
//! are the verifier's.

use verifier::chain::{ChainBundle, Hop};
use verifier::evidence::Evidence;
use verifier::receipt::Receipt;
use verifier::SignerKey;

use crate::{LedgerError, Log, SignedCheckpoint};

impl Log {
    /// The checkpoint signed at `size`, or the latest one.
    fn signed_checkpoint(&self, size: Option<u64>) -> Result<SignedCheckpoint, LedgerError> {
        match size {
            Some(s) => self.checkpoint_at(s),
            None => self
                .latest_checkpoint()
                .ok_or(LedgerError::NoCheckpoint(self.size())),
        }
    }

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
            checkpoint: signed.text,
        })
    }

    /// A COSE receipt of entry `index` in the tree of the latest signed
    /// checkpoint, signed with `signer` (this log's key).
    pub fn receipt(&self, index: u64, signer: &SignerKey) -> Result<Receipt, LedgerError> {
        if signer.verifier() != *self.verifier_key() {
            return Err(LedgerError::WrongLog {
                key: signer.name().into(),
                store: self.verifier_key().name().into(),
            });
        }
        let cp = self.signed_checkpoint(None)?.checkpoint;
        let path = self.inclusion_proof(index, cp.size)?;
        Ok(Receipt::sign(signer, cp.size, index, path, &cp.root))
    }
}
