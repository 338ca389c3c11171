//! The token file under concurrent changes and revocation
//! (api/src/tokens.rs, specs/tokens.md).

use api::tokens::{self, AuthError, Role, TokenStore};
use verifier::timestamp::Timestamp;

fn now() -> Timestamp {
    Timestamp(time::OffsetDateTime::now_utc())
}

/// Tokens added at once by several processes (here threads, each with its
/// own lock file handle, as `flock` sees processes) all land: none is lost
/// to another's read-modify-write, and every one authenticates.
#[test]
fn tokens_added_at_once_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let issued: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let dir = dir.path();
                s.spawn(move || {
                    (0..12)
                        .map(|i| {
                            let enforcer = format!("gw-{w}-{i}");
                            tokens::add(dir, &enforcer, Role::Writer, None).unwrap().1
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(tokens::load(dir.path()).unwrap().len(), 96);
    let store = TokenStore::new(dir.path());
    for t in &issued {
        assert!(store.authenticate(t, now()).is_ok());
    }
}

/// A revocation is seen by the next request, however soon it follows the
/// last change (the file's version is its inode, not only its mtime).
#[test]
fn a_revoked_token_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    for round in 0..50 {
        let (entry, token) = tokens::add(dir.path(), "gw-1", Role::Writer, None).unwrap();
        assert!(store.authenticate(&token, now()).is_ok(), "round {round}");
        tokens::revoke(dir.path(), &entry.id).unwrap();
        assert!(
            matches!(store.authenticate(&token, now()), Err(AuthError::Unknown)),
            "round {round}: a revoked token was accepted"
        );
    }
}
