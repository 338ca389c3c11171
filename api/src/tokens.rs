//! Bearer tokens (specs/tokens.md): `<data>/tokens`, one line per token,
//! `<token id> <role> <enforcer id> <sha256 of token, hex>`. Only the hash is
//! stored; the token is printed once when made. `ledgerd` rereads the file
//! when it changes, so adding or revoking needs no restart.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The file name in a data directory.
pub const TOKENS_FILE: &str = "tokens";

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Append decision records (as its enforcer).
    Writer,
    /// Read records, proofs and search results.
    Reader,
}

impl Role {
    /// Parses `writer` / `reader`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "writer" => Some(Role::Writer),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }

    /// `writer` / `reader`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

/// One issued token (without the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEntry {
    /// Short public id (first 8 hex digits of the hash), for listing and revoking.
    pub id: String,
    /// What it may do.
    pub role: Role,
    /// The enforcer (or reader) it authenticates; a writer's becomes `submitted_by`.
    pub enforcer: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{path} line {line}: malformed token entry")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// The enforcer id is unusable.
    #[error("enforcer id must be 1-256 visible characters without spaces")]
    BadEnforcer,
    /// No token has that id.
    #[error("no token with id {0}")]
    Unknown(String),
    /// No randomness.
    #[error("random source: {0}")]
    Random(String),
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Reads the token file (missing = no tokens).
pub fn load(dir: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    let path = dir.join(TOKENS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(TokenError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || TokenError::Malformed {
            path: path.display().to_string(),
            line: i + 1,
        };
        let parts: Vec<&str> = line.split(' ').collect();
        let [id, role, enforcer, h] = parts[..] else {
            return Err(bad());
        };
        let hash: [u8; 32] = hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        out.push(TokenEntry {
            id: id.to_string(),
            role: Role::parse(role).ok_or_else(bad)?,
            enforcer: enforcer.to_string(),
            hash,
        });
    }
    Ok(out)
}

fn save(dir: &Path, entries: &[TokenEntry]) -> Result<(), TokenError> {
    let path = dir.join(TOKENS_FILE);
    let io = |source| TokenError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let text: String = entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}\n",
                e.id,
                e.role.as_str(),
                e.enforcer,
                hex::encode(e.hash)
            )
        })
        .collect();
    // Write then rename, so a reader never sees half a file.
    let tmp = dir.join(format!("{TOKENS_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Issues a token for `enforcer` with `role`; returns the entry and the
/// secret token (shown once).
pub fn add(dir: &Path, enforcer: &str, role: Role) -> Result<(TokenEntry, String), TokenError> {
    if enforcer.is_empty()
        || enforcer.len() > 256
        || enforcer
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(TokenError::BadEnforcer);
    }
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("dlt_{}", hex::encode(raw));
    let hash = hash(&token);
    let entry = TokenEntry {
        id: hex::encode(&hash[..4]),
        role,
        enforcer: enforcer.to_string(),
        hash,
    };
    let mut all = load(dir)?;
    all.push(entry.clone());
    save(dir, &all)?;
    Ok((entry, token))
}

/// Revokes the token with `id`.
pub fn revoke(dir: &Path, id: &str) -> Result<TokenEntry, TokenError> {
    let mut all = load(dir)?;
    let pos = all
        .iter()
        .position(|e| e.id == id)
        .ok_or_else(|| TokenError::Unknown(id.to_string()))?;
    let gone = all.remove(pos);
    save(dir, &all)?;
    Ok(gone)
}

/// The token file as `ledgerd` sees it, reloaded when its mtime changes.
pub struct TokenStore {
    path: PathBuf,
    dir: PathBuf,
    cache: RwLock<(Option<SystemTime>, Vec<TokenEntry>)>,
}

impl TokenStore {
    /// Watches `<dir>/tokens`.
    pub fn new(dir: &Path) -> TokenStore {
        TokenStore {
            path: dir.join(TOKENS_FILE),
            dir: dir.to_path_buf(),
            cache: RwLock::new((None, vec![])),
        }
    }

    /// The entry a presented token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Option<TokenEntry> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let stale = self.cache.read().map(|c| c.0 != mtime).unwrap_or(true);
        if stale {
            match load(&self.dir) {
                Ok(entries) => {
                    if let Ok(mut c) = self.cache.write() {
                        *c = (mtime, entries);
                    }
                }
                Err(e) => tracing::error!("token file unreadable, keeping the last good one: {e}"),
            }
        }
        let h = hash(token);
        let cache = self.cache.read().ok()?;
        // Compare every hash in full; hashes are not secret, tokens are.
        cache.1.iter().find(|e| e.hash == h).cloned()
    }
}
