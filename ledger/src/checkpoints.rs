//! Signed checkpoints (`db/checkpoints/`, specs/storage.md): signing one
//! for the current size, storing one signed elsewhere (a restore), keeping
//! the witnesses' cosignatures beside it (specs/witness.md), and reading
//! them back.

use rocksdb::{Direction, IteratorMode, WriteOptions, DB};
use verifier::checkpoint::{self, Checkpoint};
use verifier::SignerKey;

use crate::keys::{LogKeys, Signers};
use crate::store::decode_u64;
use crate::{last_checkpoint, LedgerError, Log};

/// A checkpoint, the signed note that carries it, and the witnesses'
/// cosignatures of it gathered since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The note with the log's signatures alone (one, or one a key while
    /// the log rotates keys), as embedded in evidence, chain bundles and
    /// exports (every byte of those is authenticated by the log's key).
    pub text: String,
    /// Witness cosignature lines (C2SP tlog-cosignature), each ending in a
    /// newline; empty if none.
    pub cosignatures: String,
}

impl SignedCheckpoint {
    /// The note with the log's signature and every cosignature: what
    /// `/checkpoint` serves and tlog-proof files carry.
    pub fn cosigned(&self) -> String {
        format!("{}{}", self.text, self.cosignatures)
    }

    /// Splits a stored note into the log's signatures (lines named by its
    /// origin: by any of its keys, those retired too) and the other lines.
    fn split(checkpoint: Checkpoint, note: &str) -> SignedCheckpoint {
        let (body, sigs) = note.split_at(note.rfind("\n\n").map_or(note.len(), |i| i + 2));
        let mut text = body.to_string();
        let mut cosignatures = String::new();
        for line in sigs.lines() {
            let own = verifier::note::parse_signature_line(line)
                .is_ok_and(|s| s.name == checkpoint.origin);
            let to = if own { &mut text } else { &mut cosignatures };
            to.push_str(line);
            to.push('\n');
        }
        SignedCheckpoint {
            checkpoint,
            text,
            cosignatures,
        }
    }
}

impl Log {
    /// Signs a checkpoint for the current size, or returns the last one if
    /// the tree has not grown since. `signers` (one key, or the current and
    /// next keys while the log rotates keys: [`crate::keys::LogSigners`])
    /// must be this log's keys; each signs it.
    pub fn sign_checkpoint(&self, signers: &impl Signers) -> Result<SignedCheckpoint, LedgerError> {
        let signers = signers.signers();
        for signer in signers {
            self.check_signer(signer)?;
        }
        // Signing is serialised by its own lock, and appends are held only
        // while the frontier is read, not during the synced write.
        let _signing = self.signing.lock().unwrap_or_else(|p| p.into_inner());
        let (size, root, latest) = {
            let state = self.state();
            (
                state.frontier.size(),
                state.frontier.root(),
                state.latest.clone(),
            )
        };
        let (cp, text, cosignatures) = match latest {
            Some(latest) if latest.checkpoint.size >= size => {
                let missing: Vec<SignerKey> = signers
                    .iter()
                    .filter(|k| !signed_by(&latest.text, k))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(latest);
                }
                // A key joined (a rotation began, or ended with no
                // restart between): the same checkpoint signed by it too,
                // so that one the readers already have is handed over at
                // once. The lines it carries stay, and so do the
                // witnesses' (they cosigned the body, which is unchanged).
                let added = latest
                    .checkpoint
                    .sign_by(&missing)
                    .map_err(LedgerError::Sign)?;
                let lines = &added[added.rfind("\n\n").map_or(0, |i| i + 2)..];
                let text = format!("{}{lines}", latest.text);
                (latest.checkpoint, text, latest.cosignatures)
            }
            _ => {
                let cp = Checkpoint {
                    origin: self.keys().current().name().to_string(),
                    size,
                    root,
                    extensions: vec![],
                };
                let text = cp.sign_by(signers).map_err(LedgerError::Sign)?;
                (cp, text, String::new())
            }
        };
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.checkpoints.put_opt(
            cp.size.to_be_bytes(),
            format!("{text}{cosignatures}"),
            &sync,
        )?;
        let signed = SignedCheckpoint {
            checkpoint: cp,
            text,
            cosignatures,
        };
        last_checkpoint::write(&self.path, &signed)?;
        self.state().latest = Some(signed.clone());
        Ok(signed)
    }

    /// Stores a checkpoint the log's keys signed elsewhere (restoring from
    /// a mirror): it must verify with one of them and its root must be this
    /// tree's at its size. Kept like one signed here, and the last-checkpoint file
    /// moves to it if it is the newest.
    pub fn store_checkpoint(&self, text: &[u8]) -> Result<SignedCheckpoint, LedgerError> {
        let cp = checkpoint::open_any(text, self.keys().all())
            .map_err(|source| LedgerError::BadCheckpoint { size: 0, source })?;
        let computed = self.root(cp.size)?;
        if computed != cp.root {
            return Err(LedgerError::RootMismatch {
                size: cp.size,
                computed,
                signed: cp.root,
            });
        }
        let _signing = self.signing.lock().unwrap_or_else(|p| p.into_inner());
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.checkpoints
            .put_opt(cp.size.to_be_bytes(), text, &sync)?;
        let signed = SignedCheckpoint::split(cp, &String::from_utf8_lossy(text));
        let newest = self
            .state()
            .latest
            .as_ref()
            .is_none_or(|l| l.checkpoint.size < signed.checkpoint.size);
        if newest {
            last_checkpoint::write(&self.path, &signed)?;
            self.state().latest = Some(signed.clone());
        }
        Ok(signed)
    }

    /// Adds witness cosignature lines (already verified by the caller) to
    /// the checkpoint signed at `size`; lines it carries already are not
    /// added twice. Returns the checkpoint as now stored.
    pub fn add_cosignatures(
        &self,
        size: u64,
        lines: &str,
    ) -> Result<SignedCheckpoint, LedgerError> {
        let _signing = self.signing.lock().unwrap_or_else(|p| p.into_inner());
        let stored = self.checkpoint_at(size)?;
        let merged =
            verifier::cosignature::append_lines(&stored.cosigned(), lines).map_err(|source| {
                LedgerError::BadCheckpoint {
                    size,
                    source: source.into(),
                }
            })?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.checkpoints
            .put_opt(size.to_be_bytes(), &merged, &sync)?;
        let signed = parse_stored_checkpoint(size, merged.as_bytes(), &self.keys())?;
        let mut state = self.state();
        if state
            .latest
            .as_ref()
            .is_some_and(|l| l.checkpoint.size == size)
        {
            state.latest = Some(signed.clone());
        }
        Ok(signed)
    }

    /// The most recent signed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.state().latest.clone()
    }

    /// The checkpoint signed at exactly `size`.
    pub fn checkpoint_at(&self, size: u64) -> Result<SignedCheckpoint, LedgerError> {
        let text = self
            .checkpoints
            .get(size.to_be_bytes())?
            .ok_or(LedgerError::NoCheckpoint(size))?;
        parse_stored_checkpoint(size, &text, &self.keys())
    }

    /// Sizes of signed checkpoints from `from` on, at most `limit`.
    pub fn checkpoint_sizes(&self, from: u64, limit: usize) -> Result<Vec<u64>, LedgerError> {
        let start = from.to_be_bytes();
        let iter = self
            .checkpoints
            .iterator(IteratorMode::From(&start, Direction::Forward));
        let mut out = Vec::new();
        for item in iter.take(limit) {
            out.push(decode_u64(&item?.0, "checkpoint key")?);
        }
        Ok(out)
    }

    /// Refuses a signer that is not one of this log's keys.
    pub(crate) fn check_signer(&self, signer: &SignerKey) -> Result<(), LedgerError> {
        let key = signer.verifier();
        let keys = self.keys();
        if key.name() != keys.current().name() {
            return Err(LedgerError::WrongLog {
                key: signer.name().into(),
                store: keys.current().name().into(),
            });
        }
        if !keys.all().contains(&key) {
            return Err(LedgerError::UnknownKey {
                key: format!("{}+{:08x}", key.name(), key.id()),
            });
        }
        Ok(())
    }

    /// The checkpoint signed at `size`, or the latest one.
    pub(crate) fn signed_checkpoint(
        &self,
        size: Option<u64>,
    ) -> Result<SignedCheckpoint, LedgerError> {
        match size {
            Some(s) => self.checkpoint_at(s),
            None => self
                .latest_checkpoint()
                .ok_or(LedgerError::NoCheckpoint(self.size())),
        }
    }
}

/// Whether the note `text` carries a signature line by `signer`.
fn signed_by(text: &str, signer: &SignerKey) -> bool {
    let id = signer.verifier().id();
    text.lines()
        .filter_map(|l| verifier::note::parse_signature_line(l).ok())
        .any(|s| s.name == signer.name() && s.id == id)
}

pub(crate) fn parse_stored_checkpoint(
    size: u64,
    text: &[u8],
    keys: &LogKeys,
) -> Result<SignedCheckpoint, LedgerError> {
    let cp = checkpoint::open_any(text, keys.all())
        .map_err(|source| LedgerError::BadCheckpoint { size, source })?;
    if cp.size != size {
        return Err(LedgerError::Corrupt(format!(
            "checkpoint stored under size {size} is for size {}",
            cp.size
        )));
    }
    // Valid UTF-8: checkpoint::open checked it.
    Ok(SignedCheckpoint::split(cp, &String::from_utf8_lossy(text)))
}

pub(crate) fn latest_checkpoint(
    db: &DB,
    keys: &LogKeys,
) -> Result<Option<SignedCheckpoint>, LedgerError> {
    let mut iter = db.iterator(IteratorMode::End);
    match iter.next() {
        None => Ok(None),
        Some(item) => {
            let (k, v) = item?;
            parse_stored_checkpoint(decode_u64(&k, "checkpoint key")?, &v, keys).map(Some)
        }
    }
}
