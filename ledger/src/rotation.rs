//! Rotating the log's signing key (specs/keys.md, "Rotation"), in two steps
//! on the key files of a data directory:
//!
//! 1. [`begin`] makes the next key (`log.next.key`, `log.next.pub`). From
//!    then on every checkpoint is signed by both keys, so readers holding
//!    either verify it, and one checkpoint signed by both hands the log
//!    over from the old key to the new.
//! 2. [`promote`] makes the next key the current one: its public key
//!    becomes `log.pub`, the old public key is added to `log.retired` (the
//!    store's old checkpoints are still verified with it) and the old
//!    secret key is removed. Checkpoints are then signed by the new key
//!    alone.
//!
//! Each file is replaced atomically, and [`promote`] cut short by a crash
//! finishes when run again. `ledgerd` reads the key files when it starts,
//! and again when they change ([`KeyWatch`], [`apply`]): a step takes
//! effect within a second, without a restart.

use std::path::{Path, PathBuf};

use verifier::{SignerKey, VerifierKey};

use crate::keys::{
    self, io, replace, sync_dir, LogKeys, LogSigners, SharedSigners, Signers, NEXT_SIGNER_FILE,
    NEXT_VERIFIER_FILE, RETIRED_FILE, SIGNER_FILE, VERIFIER_FILE,
};
use crate::stamp::{stamp, Stamp};
use crate::{LedgerError, Log};

/// Makes the log's next key in `dir`, named by the log's origin, and
/// returns its public key. Refuses if a rotation is under way already.
pub fn begin(dir: &Path) -> Result<VerifierKey, LedgerError> {
    let signers = keys::load_signers(dir)?;
    if let Some(next) = signers.next() {
        return Err(LedgerError::KeyFiles(format!(
            "a key rotation is under way already: the next key is {}; promote it with `ledgerctl --data {} key promote`",
            next.verifier(),
            dir.display()
        )));
    }
    let origin = signers.current().name().to_string();
    let next = keys::generate(&origin)?;
    // The public key first: the secret key's file is what says a rotation
    // is under way, so a stop between the two leaves none (a public key
    // alone is replaced by the next `key next`).
    replace(dir, NEXT_VERIFIER_FILE, &format!("{}\n", next.verifier()))?;
    keys::save_secret(dir, NEXT_SIGNER_FILE, &next.to_secret_string())?;
    Ok(next.verifier())
}

/// What [`promote`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promotion {
    /// The key the log signs with from now on.
    pub current: VerifierKey,
    /// The key it signed with before, now in `log.retired`.
    pub retired: VerifierKey,
}

/// Makes the next key in `dir` the current one (see the module docs).
/// Refuses if no rotation is under way.
pub fn promote(dir: &Path) -> Result<Promotion, LedgerError> {
    let next_path = dir.join(NEXT_SIGNER_FILE);
    if !next_path.exists() {
        return Err(LedgerError::KeyFiles(format!(
            "no key rotation is under way in {0} (no {NEXT_SIGNER_FILE}); begin one with `ledgerctl --data {0} key next`",
            dir.display()
        )));
    }
    let next = SignerKey::parse(&keys::load_secret(&next_path)?)?;
    let public = keys::load_verifier(dir)?;
    let retired = if public == next.verifier() {
        // Cut short after log.pub was replaced: the old key is retired.
        keys::load_retired(dir)?.last().cloned().ok_or_else(|| {
            LedgerError::KeyFiles(format!(
                "{} is already the next key, and {RETIRED_FILE} names no earlier key",
                dir.join(VERIFIER_FILE).display()
            ))
        })?
    } else {
        // Checks that the files agree (current and next key of one log).
        let signers = keys::load_signers(dir)?;
        let old = signers.current().verifier();
        keys::retire(dir, std::slice::from_ref(&old))?;
        replace(dir, VERIFIER_FILE, &format!("{}\n", next.verifier()))?;
        old
    };
    let next_pub = dir.join(NEXT_VERIFIER_FILE);
    if next_pub.exists() {
        std::fs::remove_file(&next_pub).map_err(io(&next_pub))?;
    }
    let signer = dir.join(SIGNER_FILE);
    std::fs::rename(&next_path, &signer).map_err(io(&signer))?;
    sync_dir(dir)?;
    Ok(Promotion {
        current: next.verifier(),
        retired,
    })
}

/// The key files of a data directory, as last read: [`KeyWatch::changed`]
/// reads them again when one of them changed.
pub struct KeyWatch {
    dir: PathBuf,
    seen: Vec<Stamp>,
}

/// The files a rotation step changes.
const WATCHED: [&str; 5] = [
    SIGNER_FILE,
    VERIFIER_FILE,
    NEXT_SIGNER_FILE,
    NEXT_VERIFIER_FILE,
    RETIRED_FILE,
];

impl KeyWatch {
    /// Watches the key files in `dir`, as they are now (read by the
    /// caller at start).
    pub fn new(dir: &Path) -> KeyWatch {
        KeyWatch {
            dir: dir.to_path_buf(),
            seen: KeyWatch::stamps(dir),
        }
    }

    fn stamps(dir: &Path) -> Vec<Stamp> {
        WATCHED.iter().map(|f| stamp(&dir.join(f))).collect()
    }

    /// `None` if no key file changed since the last call; else the signers
    /// and keys the files hold now, or why they do not load (a step still
    /// being written: the next change is seen again).
    pub fn changed(&mut self) -> Option<Result<(LogSigners, LogKeys), LedgerError>> {
        let now = KeyWatch::stamps(&self.dir);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        Some(keys::load_signers(&self.dir).and_then(|s| Ok((s, keys::load_keys(&self.dir)?))))
    }
}

/// Puts keys read again ([`KeyWatch::changed`]) to work in a running log,
/// as a start would: the log learns them (a retired key stays known), the
/// last checkpoint is signed by a key that joined (the hand-over), and
/// `shared` signs with `signers` from then on. Refuses, changing nothing,
/// keys of another origin, and key files that do not hold the key the log
/// signs with now (a pair put in place of the log's, not a rotation step).
pub fn apply(
    log: &Log,
    shared: &SharedSigners,
    signers: LogSigners,
    keys: &LogKeys,
) -> Result<(), LedgerError> {
    // The signers' own keys too: a next key whose public file is not
    // written yet is still one of the log's.
    let own = signers.signers().iter().map(|k| k.verifier());
    let keys = LogKeys::new(
        keys.current().clone(),
        keys.all().iter().cloned().chain(own).collect(),
    )?;
    let known = log.keys();
    let origin = known.current().name();
    if keys.current().name() != origin {
        return Err(LedgerError::WrongLog {
            key: keys.current().name().into(),
            store: origin.into(),
        });
    }
    // A key joins through a rotation, which keeps the key it replaces (as
    // the next key's partner, then in log.retired): key files without the
    // key the log signs with now are not a step of one.
    if !keys.all().contains(known.current()) {
        return Err(LedgerError::KeyFiles(format!(
            "the key files hold none of the keys the log signs with now ({}): a new key joins \
             through `ledgerctl key next` and `key promote`, which keep the key it replaces",
            known.current()
        )));
    }
    log.add_keys(&keys)?;
    log.sign_checkpoint(&signers)?;
    shared.set(signers);
    Ok(())
}
