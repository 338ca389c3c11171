//! Key files: `log.key` (the signer key string, mode 0600) and `log.pub` (the
//! C2SP verifier key line); while the log rotates keys, `log.next.key` and
//! `log.next.pub`; and `log.retired`, the verifier keys the log signed
//! with before. See specs/keys.md.

use std::io::Write;
use std::path::{Path, PathBuf};

use verifier::{SignerKey, VerifierKey};

use crate::LedgerError;

/// File name of the signer key in a key or data directory.
pub const SIGNER_FILE: &str = "log.key";
/// File name of the verifier key in a key or data directory.
pub const VERIFIER_FILE: &str = "log.pub";
/// File name of the next signer key, while the log rotates keys.
pub const NEXT_SIGNER_FILE: &str = "log.next.key";
/// File name of the next verifier key, while the log rotates keys.
pub const NEXT_VERIFIER_FILE: &str = "log.next.pub";
/// File name of the verifier keys the log signed with before, one a line.
pub const RETIRED_FILE: &str = "log.retired";

/// The keys whose signatures make a checkpoint the log's: its current key
/// first, then the next one (while it rotates keys) and those it retired.
/// All have the log's origin as their name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogKeys {
    keys: Vec<VerifierKey>,
}

impl LogKeys {
    /// `current` and `others`; refuses a key named otherwise than
    /// `current`. A key given twice is kept once.
    pub fn new(current: VerifierKey, others: Vec<VerifierKey>) -> Result<LogKeys, LedgerError> {
        let mut keys = vec![current];
        for k in others {
            if k.name() != keys[0].name() {
                return Err(LedgerError::KeyFiles(format!(
                    "key {k} is not of the log {:?}: every key of a log is named by its origin",
                    keys[0].name()
                )));
            }
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        Ok(LogKeys { keys })
    }

    /// The key the log signs with now.
    pub fn current(&self) -> &VerifierKey {
        &self.keys[0]
    }

    /// Every key, the current one first.
    pub fn all(&self) -> &[VerifierKey] {
        &self.keys
    }
}

/// What opens a log ([`crate::Log::open`]): its one key, or [`LogKeys`].
pub trait ToLogKeys {
    /// The keys.
    fn to_log_keys(&self) -> LogKeys;
}

impl ToLogKeys for VerifierKey {
    fn to_log_keys(&self) -> LogKeys {
        LogKeys {
            keys: vec![self.clone()],
        }
    }
}

impl ToLogKeys for LogKeys {
    fn to_log_keys(&self) -> LogKeys {
        self.clone()
    }
}

/// The keys that sign a checkpoint, one signature line each, in order.
pub trait Signers {
    /// The keys; the first is the one receipts are signed with.
    fn signers(&self) -> &[SignerKey];
}

impl Signers for SignerKey {
    fn signers(&self) -> &[SignerKey] {
        std::slice::from_ref(self)
    }
}

/// The log's signing keys: the current one, and the next one while the
/// log rotates keys (checkpoints are then signed by both).
#[derive(Clone, Debug)]
pub struct LogSigners {
    keys: Vec<SignerKey>,
}

impl LogSigners {
    /// The key the log signs with now (and signs receipts with).
    pub fn current(&self) -> &SignerKey {
        &self.keys[0]
    }

    /// The next key, while the log rotates keys.
    pub fn next(&self) -> Option<&SignerKey> {
        self.keys.get(1)
    }
}

impl From<SignerKey> for LogSigners {
    fn from(key: SignerKey) -> LogSigners {
        LogSigners { keys: vec![key] }
    }
}

impl Signers for LogSigners {
    fn signers(&self) -> &[SignerKey] {
        &self.keys
    }
}

/// The log's signers as a running server holds them: the checkpoint
/// publisher and the receipts take them from here at each use, and a
/// rotation step made while it runs replaces them whole
/// ([`crate::rotation::KeyWatch`]).
#[derive(Clone, Debug)]
pub struct SharedSigners(std::sync::Arc<std::sync::RwLock<LogSigners>>);

impl SharedSigners {
    /// The signers now.
    pub fn get(&self) -> LogSigners {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Signs with `signers` from now on.
    pub fn set(&self, signers: LogSigners) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = signers;
    }
}

impl<T: Into<LogSigners>> From<T> for SharedSigners {
    fn from(signers: T) -> SharedSigners {
        SharedSigners(std::sync::Arc::new(std::sync::RwLock::new(signers.into())))
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A new signer key named `origin` from the operating system's randomness.
pub fn generate(origin: &str) -> Result<SignerKey, LedgerError> {
    Ok(SignerKey::from_seed(origin, &seed()?)?)
}

/// 32 bytes from the operating system's randomness: an Ed25519 seed.
pub fn seed() -> Result<[u8; 32], LedgerError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| LedgerError::Io {
        path: "getrandom".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(seed)
}

/// Writes `log.key` (mode 0600, never overwriting) and `log.pub` into `dir`,
/// creating it. Returns the two paths.
pub fn save(dir: &Path, signer: &SignerKey) -> Result<(PathBuf, PathBuf), LedgerError> {
    save_pair(
        dir,
        (SIGNER_FILE, &signer.to_secret_string()),
        (VERIFIER_FILE, &signer.verifier().to_string()),
    )
}

/// Writes a secret key string to `dir/<secret.0>` (mode 0600, never
/// overwriting) and its public key string to `dir/<public.0>`, creating
/// `dir`; both files and `dir` synced. Returns the two paths.
pub fn save_pair(
    dir: &Path,
    secret: (&str, &str),
    public: (&str, &str),
) -> Result<(PathBuf, PathBuf), LedgerError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key_path = save_secret(dir, secret.0, secret.1)?;
    let pub_path = dir.join(public.0);
    std::fs::File::create(&pub_path)
        .and_then(|mut f| {
            f.write_all(format!("{}\n", public.1).as_bytes())?;
            f.sync_all()
        })
        .map_err(io(&pub_path))?;
    // Both names on disk too: a store signed with a key that a power cut
    // took back would verify under no key at all.
    sync_dir(dir)?;
    Ok((key_path, pub_path))
}

/// Writes the secret key string `secret` to `dir/<name>` (mode 0600, never
/// overwriting), synced, and syncs `dir`. Returns the path.
pub fn save_secret(dir: &Path, name: &str, secret: &str) -> Result<PathBuf, LedgerError> {
    let key_path = dir.join(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&key_path).map_err(io(&key_path))?;
    f.write_all(format!("{secret}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io(&key_path))?;
    sync_dir(dir)?;
    Ok(key_path)
}

/// Reads `log.key` from `dir`; refuses a file that its group or others
/// may read.
pub fn load_signer(dir: &Path) -> Result<SignerKey, LedgerError> {
    Ok(SignerKey::parse(&load_secret(&dir.join(SIGNER_FILE))?)?)
}

/// Reads a secret key file; refuses one that its group or others may read.
pub fn load_secret(path: &Path) -> Result<String, LedgerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(LedgerError::KeyExposed {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    std::fs::read_to_string(path).map_err(io(path))
}

/// Reads `log.pub` from `dir`.
pub fn load_verifier(dir: &Path) -> Result<VerifierKey, LedgerError> {
    read_verifier(&dir.join(VERIFIER_FILE))
}

/// `log.pub`, or the public half of `log.key` where only that is kept.
fn current_verifier(dir: &Path) -> Result<VerifierKey, LedgerError> {
    if !dir.join(VERIFIER_FILE).exists() && dir.join(SIGNER_FILE).exists() {
        return Ok(load_signer(dir)?.verifier());
    }
    load_verifier(dir)
}

fn read_verifier(path: &Path) -> Result<VerifierKey, LedgerError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    VerifierKey::parse(&text).map_err(|e| LedgerError::KeyFiles(format!("{}: {e}", path.display())))
}

/// The verifier keys in `dir/log.retired`, one a line (none if there is no
/// such file).
pub fn load_retired(dir: &Path) -> Result<Vec<VerifierKey>, LedgerError> {
    let path = dir.join(RETIRED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(&path)(e)),
    };
    verifier::note::parse_key_lines(text.as_bytes()).map_err(|line| {
        LedgerError::KeyFiles(format!(
            "{} line {line}: not a verifier key",
            path.display()
        ))
    })
}

/// Every key of the log whose key files are in `dir`: `log.pub`, then
/// `log.next.pub` if the log is rotating keys, then `log.retired`.
pub fn load_keys(dir: &Path) -> Result<LogKeys, LedgerError> {
    let current = current_verifier(dir)?;
    let mut others = Vec::new();
    let next = dir.join(NEXT_VERIFIER_FILE);
    if next.exists() {
        others.push(read_verifier(&next)?);
    }
    others.extend(load_retired(dir)?);
    LogKeys::new(current, others)
}

/// The log's signing keys in `dir`: `log.key`, which must be the key of
/// `log.pub`, and `log.next.key` if the log is rotating keys. Refuses key
/// files that contradict each other (a rotation step cut short), saying
/// how to finish it.
pub fn load_signers(dir: &Path) -> Result<LogSigners, LedgerError> {
    let current = load_signer(dir)?;
    let public = current_verifier(dir)?;
    if current.verifier() != public {
        let retired = load_retired(dir)?.contains(&current.verifier());
        return Err(LedgerError::KeyFiles(if retired {
            format!(
                "{} holds a retired key: a key promotion was cut short; finish it with `ledgerctl --data {} key promote`",
                dir.join(SIGNER_FILE).display(),
                dir.display()
            )
        } else {
            format!(
                "{} is not the key of {} ({public})",
                dir.join(SIGNER_FILE).display(),
                dir.join(VERIFIER_FILE).display()
            )
        }));
    }
    let mut keys = vec![current];
    let next_path = dir.join(NEXT_SIGNER_FILE);
    if next_path.exists() {
        let next = SignerKey::parse(&load_secret(&next_path)?)?;
        if next.name() != keys[0].name() {
            return Err(LedgerError::KeyFiles(format!(
                "{} is a key of {:?}, not of the log {:?}",
                next_path.display(),
                next.name(),
                keys[0].name()
            )));
        }
        let next_pub = dir.join(NEXT_VERIFIER_FILE);
        if !next_pub.exists() {
            // Never signed with: a signing key loads only beside it.
            return Err(LedgerError::KeyFiles(format!(
                "{} is there without {}: a `key next` was cut short; remove {} and run `ledgerctl --data {} key next` again",
                next_path.display(),
                next_pub.display(),
                next_path.display(),
                dir.display()
            )));
        }
        if read_verifier(&next_pub)? != next.verifier() {
            return Err(LedgerError::KeyFiles(format!(
                "{} is not the key of {}",
                next_path.display(),
                next_pub.display()
            )));
        }
        keys.push(next);
    }
    Ok(LogSigners { keys })
}

/// Adds `keys` to `dir/log.retired` (those it does not hold yet), the file
/// replaced atomically; a rotation's old key, or a mirror's. Refuses a key
/// whose name is not that of the keys it holds (every key of a log is named
/// by its origin).
pub fn retire(dir: &Path, keys: &[VerifierKey]) -> Result<(), LedgerError> {
    let mut retired = load_retired(dir)?;
    let held = retired.len();
    for k in keys {
        if !retired.contains(k) {
            retired.push(k.clone());
        }
    }
    if let Some((first, rest)) = retired.split_first() {
        LogKeys::new(first.clone(), rest.to_vec())?;
    }
    if retired.len() == held {
        return Ok(());
    }
    let text: String = retired.iter().map(|k| format!("{k}\n")).collect();
    replace(dir, RETIRED_FILE, &text)
}

/// Replaces `dir/name` with `text`: written beside it, synced, renamed.
pub fn replace(dir: &Path, name: &str, text: &str) -> Result<(), LedgerError> {
    crate::stamp::replace(dir, name, text.as_bytes(), None).map_err(|(p, e)| io(&p)(e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
