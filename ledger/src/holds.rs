//! Legal holds: decisions retention must keep (specs/holds.md).
//!
//! `<data>/holds`, one line a hold:
//!
//! ```text
//! <hold id> <since> <placed at> <reason>
//! ```
//!
//! A hold keeps every decision received at or after `since` (RFC 3339
//! UTC) while it stands: retention removes a prefix of the log, so the
//! earliest hold is where every prune stops. The id is the first 8 hex
//! digits of SHA-256 of `since`, `placed at` and the reason, each followed
//! by a newline; the reason is the rest of the line (1–1024 bytes, no
//! control character, not starting or ending in a space). Changes are
//! made holding an exclusive `flock` on `<data>/holds.lock` and replace
//! the file atomically, as the token file's are (specs/tokens.md).

use std::path::Path;

use sha2::{Digest, Sha256};
use verifier::timestamp::Timestamp;

/// The holds file in a data dir.
pub const HOLDS_FILE: &str = "holds";
const LOCK_FILE: &str = "holds.lock";

/// Longest reason, in bytes.
pub const MAX_REASON: usize = 1024;

/// One legal hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Its id (8 hex digits), to list and release it by.
    pub id: String,
    /// Decisions received at or after this are kept while it stands.
    pub since: Timestamp,
    /// When it was placed.
    pub placed: Timestamp,
    /// Why (a case, a ticket, an investigation).
    pub reason: String,
}

/// Why the holds could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A line of the file is not a hold.
    #[error("{path} line {line}: not `<id> <since> <placed at> <reason>`")]
    Malformed {
        /// The file.
        path: String,
        /// The line, from 1.
        line: usize,
    },
    /// A reason that cannot be stored on one line.
    #[error("a hold's reason must be 1 to {MAX_REASON} bytes without control characters or spaces at either end")]
    Reason,
    /// No hold has that id.
    #[error("no legal hold with id {0}")]
    Unknown(String),
    /// The hold is already placed.
    #[error("legal hold {0} is already placed")]
    Exists(String),
}

fn valid_reason(r: &str) -> bool {
    !r.is_empty() && r.len() <= MAX_REASON && r.trim() == r && !r.chars().any(char::is_control)
}

fn hold_id(since: &Timestamp, placed: &Timestamp, reason: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        since.canonical().as_str(),
        placed.canonical().as_str(),
        reason,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> HoldError + '_ {
    move |source| HoldError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the holds of the data dir `dir` (no file: none).
pub fn load(dir: &Path) -> Result<Vec<Hold>, HoldError> {
    let path = dir.join(HOLDS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(&path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = || HoldError::Malformed {
            path: path.display().to_string(),
            line: i + 1,
        };
        let mut parts = line.splitn(4, ' ');
        let (Some(id), Some(since), Some(placed), Some(reason)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let since = Timestamp::parse_text(since).ok_or_else(bad)?;
        let placed = Timestamp::parse_text(placed).ok_or_else(bad)?;
        if !valid_reason(reason) || id != hold_id(&since, &placed, reason) {
            return Err(bad());
        }
        out.push(Hold {
            id: id.to_string(),
            since,
            placed,
            reason: reason.to_string(),
        });
    }
    Ok(out)
}

/// The earliest `since` of the holds of `dir`, and that hold.
pub fn earliest(dir: &Path) -> Result<Option<Hold>, HoldError> {
    Ok(load(dir)?.into_iter().min_by_key(|h| h.since))
}

fn save(dir: &Path, holds: &[Hold]) -> Result<(), HoldError> {
    let text: String = holds
        .iter()
        .map(|h| {
            format!(
                "{} {} {} {}\n",
                h.id,
                h.since.canonical(),
                h.placed.canonical(),
                h.reason
            )
        })
        .collect();
    // Replaced whole (ledger::stamp::replace): a hold reported placed
    // survives a crash.
    crate::stamp::replace(dir, HOLDS_FILE, text.as_bytes(), None)
        .map_err(|(p, source)| io(&p)(source))
}

fn locked<T>(dir: &Path, change: impl FnOnce() -> Result<T, HoldError>) -> Result<T, HoldError> {
    let path = dir.join(LOCK_FILE);
    let _lock = crate::stamp::lock(&path).map_err(io(&path))?;
    change()
}

/// Places a hold on the decisions received at or after `since`, at
/// `placed`, for `reason`; returns it.
pub fn place(
    dir: &Path,
    since: Timestamp,
    placed: Timestamp,
    reason: &str,
) -> Result<Hold, HoldError> {
    if !valid_reason(reason) {
        return Err(HoldError::Reason);
    }
    locked(dir, || {
        let mut holds = load(dir)?;
        let hold = Hold {
            id: hold_id(&since, &placed, reason),
            since,
            placed,
            reason: reason.to_string(),
        };
        if holds.iter().any(|h| h.id == hold.id) {
            return Err(HoldError::Exists(hold.id));
        }
        holds.push(hold.clone());
        save(dir, &holds)?;
        Ok(hold)
    })
}

/// Releases the hold `id`; returns it.
pub fn release(dir: &Path, id: &str) -> Result<Hold, HoldError> {
    locked(dir, || {
        let mut holds = load(dir)?;
        let at = holds
            .iter()
            .position(|h| h.id == id)
            .ok_or_else(|| HoldError::Unknown(id.to_string()))?;
        let hold = holds.remove(at);
        save(dir, &holds)?;
        Ok(hold)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_text(s).unwrap()
    }

    #[test]
    fn holds_are_placed_listed_and_released() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![]);
        assert!(earliest(dir.path()).unwrap().is_none());
        let placed = t("2026-12-06T10:00:00Z");
        let a = place(
            dir.path(),
            t("2026-11-01T00:00:00Z"),
            placed,
            "case 41: fraud",
        )
        .unwrap();
        let b = place(dir.path(), t("2026-10-01T00:00:00Z"), placed, "audit 2026").unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(earliest(dir.path()).unwrap(), Some(b.clone()));
        assert!(matches!(
            place(dir.path(), a.since, placed, "case 41: fraud"),
            Err(HoldError::Exists(id)) if id == a.id
        ));
        for bad in [
            "",
            " lead",
            "trail ",
            "new\nline",
            &"x".repeat(MAX_REASON + 1),
        ] {
            assert!(matches!(
                place(dir.path(), a.since, placed, bad),
                Err(HoldError::Reason)
            ));
        }
        assert_eq!(release(dir.path(), &b.id).unwrap(), b);
        assert_eq!(earliest(dir.path()).unwrap(), Some(a.clone()));
        assert!(matches!(
            release(dir.path(), &b.id),
            Err(HoldError::Unknown(_))
        ));
    }

    #[test]
    fn a_changed_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let placed = t("2026-12-06T10:00:00Z");
        place(dir.path(), t("2026-11-01T00:00:00Z"), placed, "case 41").unwrap();
        let path = dir.path().join(HOLDS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        for changed in [
            text.replace("2026-11-01", "2026-11-02"),
            text.replace("case 41", "case 42"),
            text.replace(' ', "  "),
            format!("{text}junk\n"),
        ] {
            std::fs::write(&path, changed).unwrap();
            assert!(matches!(
                load(dir.path()),
                Err(HoldError::Malformed { line: _, .. })
            ));
        }
    }
}
