//! The enforcers whose records must come signed (specs/signed-record.md):
//! `<data>/enforcer-keys`, one Ed25519 note verifier key a line, named by
//! the `enforcer.id` it signs for. ledgerd reads it again when it changes
//! (no restart); `ledgerctl enforcer add|remove|list` change it under a
//! lock and replace it durably.
//!
//! An enforcer with a key here has every record refused unless it is
//! signed with one of its keys; a signed record of an enforcer without one
//! is refused too, since its signature cannot be checked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ledger::stamp::Stamp;
use verifier::enforcer_signature::{EnforcerKeys, KeyLineError};
use verifier::VerifierKey;

/// The file of enforcer keys in the data directory.
pub const ENFORCER_KEYS_FILE: &str = "enforcer-keys";
/// The lock taken while the file is changed.
const LOCK_FILE: &str = "enforcer-keys.lock";

/// Why the key file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum EnforcerKeyError {
    /// Reading, writing or locking it failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A line is not a verifier key.
    #[error("{path}: {source}")]
    Line {
        /// The file.
        path: String,
        /// Which line, and what is wrong.
        source: KeyLineError,
    },
    /// Replacing it failed.
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    /// `remove` found no key by that name or ID.
    #[error("no enforcer key is named {0:?} or has that key ID")]
    NotFound(String),
}

/// The keys in `<dir>/enforcer-keys` (none if there is no such file).
pub fn load(dir: &Path) -> Result<EnforcerKeys, EnforcerKeyError> {
    let path = dir.join(ENFORCER_KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => EnforcerKeys::parse(&text).map_err(|source| EnforcerKeyError::Line {
            path: path.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EnforcerKeys::default()),
        Err(source) => Err(EnforcerKeyError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn save(dir: &Path, keys: &[VerifierKey]) -> Result<(), EnforcerKeyError> {
    let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
    Ok(ledger::keys::replace(dir, ENFORCER_KEYS_FILE, &text)?)
}

fn locked<T>(
    dir: &Path,
    change: impl FnOnce() -> Result<T, EnforcerKeyError>,
) -> Result<T, EnforcerKeyError> {
    let path = dir.join(LOCK_FILE);
    let _lock = ledger::stamp::lock(&path).map_err(|source| EnforcerKeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    change()
}

/// Registers `key` for the enforcer it is named by; `false` if it was
/// there already.
pub fn add(dir: &Path, key: &VerifierKey) -> Result<bool, EnforcerKeyError> {
    locked(dir, || {
        let mut keys = load(dir)?.keys().to_vec();
        if keys.contains(key) {
            return Ok(false);
        }
        keys.push(key.clone());
        save(dir, &keys)?;
        Ok(true)
    })
}

/// Removes every key named `which`, or the key whose ID (8 hex digits)
/// is `which`; the keys removed.
pub fn remove(dir: &Path, which: &str) -> Result<Vec<VerifierKey>, EnforcerKeyError> {
    locked(dir, || {
        let keys = load(dir)?.keys().to_vec();
        let (gone, kept): (Vec<VerifierKey>, Vec<VerifierKey>) = keys
            .into_iter()
            .partition(|k| k.name() == which || format!("{:08x}", k.id()) == which);
        if gone.is_empty() {
            return Err(EnforcerKeyError::NotFound(which.to_string()));
        }
        save(dir, &kept)?;
        Ok(gone)
    })
}

/// The key file as a running ledgerd sees it: read again whenever it
/// changes; a file that does not load is logged and the last good keys
/// kept.
pub struct EnforcerKeyStore {
    dir: PathBuf,
    path: PathBuf,
    cache: RwLock<(Stamp, Arc<EnforcerKeys>)>,
}

impl EnforcerKeyStore {
    /// Watches `<dir>/enforcer-keys`.
    pub fn new(dir: &Path) -> EnforcerKeyStore {
        EnforcerKeyStore {
            dir: dir.to_path_buf(),
            path: dir.join(ENFORCER_KEYS_FILE),
            cache: RwLock::new((None, Arc::default())),
        }
    }

    /// Reads the file again if it changed since it was last read.
    pub fn refresh(&self) {
        let stamp = ledger::stamp::stamp(&self.path);
        if self.cache.read().is_ok_and(|c| c.0 == stamp) {
            return;
        }
        match load(&self.dir) {
            Ok(keys) => {
                let names: std::collections::BTreeSet<&str> =
                    keys.keys().iter().map(VerifierKey::name).collect();
                if !names.is_empty() {
                    tracing::info!(
                        "records of enforcers {} must be signed by them",
                        names.into_iter().collect::<Vec<_>>().join(", ")
                    );
                }
                if let Ok(mut c) = self.cache.write() {
                    *c = (stamp, Arc::new(keys));
                }
            }
            Err(e) => {
                tracing::error!("enforcer key file unreadable, keeping the last good one: {e}")
            }
        }
    }

    /// The keys now (the file read again if it changed).
    pub fn current(&self) -> Arc<EnforcerKeys> {
        self.refresh();
        self.cache
            .read()
            .map(|c| Arc::clone(&c.1))
            .unwrap_or_default()
    }
}
