//! Bearer tokens (specs/tokens.md): `<data>/tokens`, one line per token,
//! `<token id> <role> <enforcer id> <sha256 of token, hex> [<expires>]
//! [cert=<name>] [rate=<records per second>]`.
//! Only the hash is stored; the token is printed once when made. `ledgerd`
//! rereads the file when it changes, so adding or revoking needs no restart.
//! Changes are made under a lock (`<data>/tokens.lock`), so two at once both
//! land, and are synced before they are reported done: a revocation
//! survives a crash.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use ledger::stamp::Stamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use verifier::timestamp::Timestamp;

use crate::peer::PeerNames;

/// The file name in a data directory.
pub const TOKENS_FILE: &str = "tokens";
/// The lock file that changes to the token file are made under.
const LOCK_FILE: &str = "tokens.lock";

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Append the decision records of its own enforcer: every record's
    /// `enforcer.id` must be the token's enforcer id.
    Writer,
    /// Read records, proofs and search results.
    Reader,
    /// Append records for any enforcer: a collector or log shipper that
    /// forwards for many (`submitted_by` still records the relay).
    Relay,
    /// Erase decisions (specs/erasure.md): a data-protection officer's.
    /// Its enforcer id names who asks, in the erasure records it causes.
    Eraser,
}

impl Role {
    /// Parses `writer` / `reader` / `relay` / `eraser`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "writer" => Some(Role::Writer),
            "reader" => Some(Role::Reader),
            "relay" => Some(Role::Relay),
            "eraser" => Some(Role::Eraser),
            _ => None,
        }
    }

    /// `writer` / `reader` / `relay` / `eraser`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Relay => "relay",
            Role::Eraser => "eraser",
        }
    }

    /// Whether a token of this role may append records.
    pub fn writes(&self) -> bool {
        matches!(self, Role::Writer | Role::Relay)
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
    /// When it stops being accepted, if it does.
    pub expires: Option<Timestamp>,
    /// The client certificate it is bound to, if it is: a name (URI or DNS
    /// subjectAltName, such as a SPIFFE ID) that the certificate of the
    /// connection presenting the token must carry.
    pub cert: Option<String>,
    /// Records a second it may send, on average, if it is limited
    /// ([`crate::quota`]).
    pub rate: Option<u32>,
}

impl TokenEntry {
    /// The enforcer id its records must declare: its own for a writer,
    /// none for a relay (or a reader, which cannot write).
    pub fn bound_enforcer(&self) -> Option<&str> {
        (self.role == Role::Writer).then_some(self.enforcer.as_str())
    }

    /// Who sends the records of a request made with this token.
    pub fn sender(&self) -> ingest::input::Sender<'_> {
        ingest::input::Sender {
            submitted_by: &self.enforcer,
            enforcer: self.bound_enforcer(),
            ..ingest::input::Sender::relay(&self.enforcer)
        }
    }
}

/// Why a presented token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the file has that hash (unknown, or revoked).
    #[error("unknown or revoked token")]
    Unknown,
    /// It expired.
    #[error("token {id} expired at {at}")]
    Expired {
        /// The token's id.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// It is bound to a client certificate that the connection did not
    /// present: a token taken from its machine and replayed from another.
    #[error("token {id} is bound to a client certificate naming {bound}; {}", presented_text(.presented))]
    WrongPeer {
        /// The token's id.
        id: String,
        /// The name its certificate must carry.
        bound: String,
        /// The names in the certificate the connection presented; `None`
        /// without one.
        presented: Option<Vec<String>>,
    },
}

fn presented_text(presented: &Option<Vec<String>>) -> String {
    match presented {
        None => "this connection presented no client certificate (ledgerd asks for one only with --tls-client-ca)".into(),
        Some(names) if names.is_empty() => "this connection's certificate has no URI or DNS name".into(),
        Some(names) => format!("this connection's certificate names {}", names.join(", ")),
    }
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
    /// The enforcer id is the ledger's own (its erasure records').
    #[error(
        "enforcer id {:?} is the ledger's own: its records are erasures (specs/erasure.md)",
        verifier::erasure::SUBMITTED_BY
    )]
    ReservedEnforcer,
    /// The enforcer id is unusable.
    #[error("enforcer id must be 1-256 visible characters without spaces")]
    BadEnforcer,
    /// The certificate name a token is bound to is unusable.
    #[error("a certificate name must be 1-1024 visible characters without spaces (a SPIFFE ID such as spiffe://example.org/ns/prod/sa/gw, or a DNS name)")]
    BadCertName,
    /// The record rate is out of range.
    #[error("a rate is records a second, from 1 to {MAX_RATE}")]
    BadRate,
    /// A rate was asked for a token that sends no records.
    #[error("a reader token sends no records: a rate is for writer and relay tokens")]
    RateForReader,
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
        let [id, role, enforcer, h, ref rest @ ..] = parts[..] else {
            return Err(bad());
        };
        // Optional: the expiry first, then named fields, each once.
        let (mut expires, mut cert, mut rate) = (None, None, None);
        for (i, field) in rest.iter().enumerate() {
            match field.split_once('=') {
                Some(("cert", name)) if cert.is_none() && valid_name(name, 1024) => {
                    cert = Some(name.to_string())
                }
                Some(("rate", n)) if rate.is_none() => rate = Some(parse_rate(n).ok_or_else(bad)?),
                None if i == 0 => expires = Some(Timestamp::parse_text(field).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        let hash: [u8; 32] = hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        out.push(TokenEntry {
            id: id.to_string(),
            role: Role::parse(role).ok_or_else(bad)?,
            enforcer: enforcer.to_string(),
            hash,
            expires,
            cert,
            rate,
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
            let expires = e
                .expires
                .map_or(String::new(), |t| format!(" {}", t.canonical()));
            let cert = e
                .cert
                .as_ref()
                .map_or(String::new(), |c| format!(" cert={c}"));
            let rate = e.rate.map_or(String::new(), |r| format!(" rate={r}"));
            format!(
                "{} {} {} {}{expires}{cert}{rate}\n",
                e.id,
                e.role.as_str(),
                e.enforcer,
                hex::encode(e.hash)
            )
        })
        .collect();
    // Replaced whole, private (ledger::stamp::replace): a reader never
    // sees half a file, and the change is on disk once this returns.
    ledger::stamp::replace(dir, TOKENS_FILE, text.as_bytes(), Some(0o600))
        .map_err(|(_, source)| io(source))
}

/// Runs `change` holding the token file's lock (an exclusive `flock` on
/// `<dir>/tokens.lock`, released when the file closes): another `ledgerctl
/// token` or a first start of `ledgerd` waits, so no change is lost.
fn locked<T>(dir: &Path, change: impl FnOnce() -> Result<T, TokenError>) -> Result<T, TokenError> {
    let path = dir.join(LOCK_FILE);
    let _lock = ledger::stamp::lock(&path).map_err(|source| TokenError::Io {
        path: path.display().to_string(),
        source,
    })?;
    change()
}

/// The largest record rate a token may be given (records a second).
pub const MAX_RATE: u32 = 1_000_000_000;

/// A record rate: a decimal from 1 to [`MAX_RATE`].
pub fn parse_rate(s: &str) -> Option<u32> {
    let n = verifier::checkpoint::parse_decimal(s)?;
    (1..=MAX_RATE as u64).contains(&n).then_some(n as u32)
}

/// Whether `s` is 1 to `max` bytes with no space, control or other
/// invisible character (one field of a line).
fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// What a new token may do beyond its role: all optional.
#[derive(Clone, Debug, Default)]
pub struct Terms<'a> {
    /// When it stops being accepted.
    pub expires: Option<Timestamp>,
    /// The client certificate name it is bound to.
    pub cert: Option<&'a str>,
    /// Records a second it may send, on average (writers and relays).
    pub rate: Option<u32>,
}

/// Issues a token for `enforcer` with `role` on `terms` (valid until
/// `expires`, for ever if `None`; with `cert`, only over a connection whose
/// client certificate names it; with `rate`, at most that many records a
/// second on average); returns the entry and the secret token (shown
/// once).
pub fn add(
    dir: &Path,
    enforcer: &str,
    role: Role,
    terms: Terms<'_>,
) -> Result<(TokenEntry, String), TokenError> {
    let Terms {
        expires,
        cert,
        rate,
    } = terms;
    if !valid_name(enforcer, 256) {
        return Err(TokenError::BadEnforcer);
    }
    if role.writes() && enforcer == verifier::erasure::SUBMITTED_BY {
        return Err(TokenError::ReservedEnforcer);
    }
    if cert.is_some_and(|c| !valid_name(c, 1024)) {
        return Err(TokenError::BadCertName);
    }
    match rate {
        Some(r) if !(1..=MAX_RATE).contains(&r) => return Err(TokenError::BadRate),
        Some(_) if !role.writes() => return Err(TokenError::RateForReader),
        _ => {}
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
        expires,
        cert: cert.map(str::to_string),
        rate,
    };
    locked(dir, || {
        let mut all = load(dir)?;
        all.push(entry.clone());
        save(dir, &all)
    })?;
    Ok((entry, token))
}

/// Revokes the token with `id`.
pub fn revoke(dir: &Path, id: &str) -> Result<TokenEntry, TokenError> {
    locked(dir, || {
        let mut all = load(dir)?;
        let pos = all
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| TokenError::Unknown(id.to_string()))?;
        let gone = all.remove(pos);
        save(dir, &all)?;
        Ok(gone)
    })
}

/// The token file as `ledgerd` sees it, reloaded when it changes.
pub struct TokenStore {
    path: PathBuf,
    dir: PathBuf,
    cache: RwLock<(Stamp, Vec<TokenEntry>)>,
    client_certs: bool,
}

impl TokenStore {
    /// Watches `<dir>/tokens`; `client_certs`: whether connections are
    /// asked for a client certificate (without, a token bound to one is
    /// never accepted, and a warning says so when the file is read).
    pub fn new(dir: &Path, client_certs: bool) -> TokenStore {
        TokenStore {
            path: dir.join(TOKENS_FILE),
            dir: dir.to_path_buf(),
            cache: RwLock::new((None, vec![])),
            client_certs,
        }
    }

    /// Reads the file again if it changed since it was last read. A file
    /// that does not load is logged and the last good one kept.
    pub fn refresh(&self) {
        let stamp = ledger::stamp::stamp(&self.path);
        if self.cache.read().is_ok_and(|c| c.0 == stamp) {
            return;
        }
        match load(&self.dir) {
            Ok(entries) => {
                let bound: Vec<&str> = entries
                    .iter()
                    .filter(|e| e.cert.is_some())
                    .map(|e| e.id.as_str())
                    .collect();
                if !self.client_certs && !bound.is_empty() {
                    tracing::warn!(
                        "tokens {} are bound to client certificates, but ledgerd asks for none \
                         (--tls-client-ca): they are refused",
                        bound.join(", ")
                    );
                }
                if let Ok(mut c) = self.cache.write() {
                    *c = (stamp, entries);
                }
            }
            Err(e) => tracing::error!("token file unreadable, keeping the last good one: {e}"),
        }
    }

    /// The entry a presented token belongs to, if it has one, has not
    /// expired at `now`, and (if it is bound to a certificate) came on a
    /// connection whose client certificate (`peer`) names the bound name.
    pub fn authenticate(
        &self,
        token: &str,
        now: Timestamp,
        peer: Option<&PeerNames>,
    ) -> Result<TokenEntry, AuthError> {
        self.refresh();
        let h = hash(token);
        let cache = self.cache.read().map_err(|_| AuthError::Unknown)?;
        // Every hash compared in full and in constant time, whichever
        // matches: how long this takes says nothing of the file.
        let mut found = None;
        for e in &cache.1 {
            if bool::from(e.hash.ct_eq(&h)) {
                found = Some(e);
            }
        }
        let e = found.ok_or(AuthError::Unknown)?;
        match e.expires {
            Some(at) if now >= at => Err(AuthError::Expired {
                id: e.id.clone(),
                at,
            }),
            _ => match &e.cert {
                Some(bound) if !peer.is_some_and(|p| p.contains(bound)) => {
                    Err(AuthError::WrongPeer {
                        id: e.id.clone(),
                        bound: bound.clone(),
                        presented: peer.map(|p| p.names.clone()),
                    })
                }
                _ => Ok(e.clone()),
            },
        }
    }
}
