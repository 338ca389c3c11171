//! Key files: `log.key` (the signer key string, mode 0600) and `log.pub` (the
//! C2SP verifier key line). See specs/keys.md.

use std::io::Write;
use std::path::{Path, PathBuf};

use verifier::{SignerKey, VerifierKey};

use crate::LedgerError;

/// File name of the signer key in a key or data directory.
pub const SIGNER_FILE: &str = "log.key";
/// File name of the verifier key in a key or data directory.
pub const VERIFIER_FILE: &str = "log.pub";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
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
/// overwriting, synced) and its public key string to `dir/<public.0>`,
/// creating `dir`. Returns the two paths.
pub fn save_pair(
    dir: &Path,
    secret: (&str, &str),
    public: (&str, &str),
) -> Result<(PathBuf, PathBuf), LedgerError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key_path = dir.join(secret.0);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&key_path).map_err(io(&key_path))?;
    f.write_all(format!("{}\n", secret.1).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io(&key_path))?;
    let pub_path = dir.join(public.0);
    std::fs::write(&pub_path, format!("{}\n", public.1)).map_err(io(&pub_path))?;
    Ok((key_path, pub_path))
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
    let path = dir.join(VERIFIER_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(VerifierKey::parse(&text)?)
}
