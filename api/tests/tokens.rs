//! The token file under concurrent changes and revocation
//! (api/src/tokens.rs, specs/tokens.md).

use api::peer::PeerNames;
use api::tokens::{self, AuthError, Role, Terms, TokenError, TokenStore};
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
                            tokens::add(dir, &enforcer, Role::Writer, Default::default())
                                .unwrap()
                                .1
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
    let store = TokenStore::new(dir.path(), false);
    for t in &issued {
        assert!(store.authenticate(t, now(), None).is_ok());
    }
}

/// A revocation is seen by the next request, however soon it follows the
/// last change (the file's version is its inode, not only its mtime).
#[test]
fn a_revoked_token_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path(), false);
    for round in 0..50 {
        let (entry, token) =
            tokens::add(dir.path(), "gw-1", Role::Writer, Default::default()).unwrap();
        assert!(
            store.authenticate(&token, now(), None).is_ok(),
            "round {round}"
        );
        tokens::revoke(dir.path(), &entry.id).unwrap();
        assert!(
            matches!(
                store.authenticate(&token, now(), None),
                Err(AuthError::Unknown)
            ),
            "round {round}: a revoked token was accepted"
        );
    }
}

fn peer(names: &[&str]) -> PeerNames {
    PeerNames {
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

/// A token bound to a certificate name is accepted only from a connection
/// whose client certificate carries that exact name; an unbound token from
/// any connection. The binding survives the file's round trip.
#[test]
fn a_bound_token_needs_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let spiffe = "spiffe://example.org/ns/prod/sa/gw-eu-1";
    let expires = Timestamp::parse_text("2999-01-01T00:00:00Z");
    let (entry, bound) = tokens::add(
        dir.path(),
        "gw-eu-1",
        Role::Writer,
        Terms {
            expires,
            cert: Some(spiffe),
            rate: None,
        },
    )
    .unwrap();
    let (_, free) = tokens::add(dir.path(), "gw-eu-2", Role::Writer, Default::default()).unwrap();
    assert_eq!(tokens::load(dir.path()).unwrap()[0], entry);
    let text = std::fs::read_to_string(dir.path().join(tokens::TOKENS_FILE)).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(" 2999-01-01T00:00:00Z cert=spiffe://example.org/ns/prod/sa/gw-eu-1"),
        "{text}"
    );

    let store = TokenStore::new(dir.path(), true);
    let right = peer(&["gw.example", spiffe]);
    assert_eq!(
        store
            .authenticate(&bound, now(), Some(&right))
            .unwrap()
            .cert
            .as_deref(),
        Some(spiffe)
    );
    for (presented, says) in [
        (None, "presented no client certificate"),
        (Some(peer(&[])), "has no URI or DNS name"),
        (
            Some(peer(&[
                "spiffe://example.org/ns/prod/sa/gw-eu-1/x",
                "gw-eu-1",
            ])),
            "names spiffe://example.org/ns/prod/sa/gw-eu-1/x, gw-eu-1",
        ),
    ] {
        let e = store
            .authenticate(&bound, now(), presented.as_ref())
            .unwrap_err();
        assert!(matches!(e, AuthError::WrongPeer { .. }), "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.to_string().contains(spiffe), "{e}");
    }
    assert!(store.authenticate(&free, now(), None).is_ok());
    assert!(store.authenticate(&free, now(), Some(&right)).is_ok());
}

/// Certificate names that cannot be one field of a line are refused when
/// a token is made; lines with a misplaced or repeated binding do not load.
#[test]
fn bad_bindings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["", "spiffe://a b", "gw\n1", &"a".repeat(1025)] {
        assert!(
            matches!(
                tokens::add(
                    dir.path(),
                    "gw",
                    Role::Writer,
                    Terms {
                        cert: Some(bad),
                        ..Terms::default()
                    }
                ),
                Err(TokenError::BadCertName)
            ),
            "{bad:?}"
        );
    }
    assert!(
        !dir.path().join(tokens::TOKENS_FILE).exists(),
        "nothing written"
    );
    let hash = "00".repeat(32);
    for line in [
        format!("0000 writer gw {hash} cert="),
        format!("0000 writer gw {hash} cert=a cert=b"),
        format!("0000 writer gw {hash} cert=a 2999-01-01T00:00:00Z"),
        format!("0000 writer gw {hash} 2999-01-01T00:00:00Z 2999-01-01T00:00:00Z"),
        format!("0000 writer gw {hash} bound=a"),
    ] {
        std::fs::write(dir.path().join(tokens::TOKENS_FILE), format!("{line}\n")).unwrap();
        assert!(
            matches!(
                tokens::load(dir.path()),
                Err(TokenError::Malformed { line: 1, .. })
            ),
            "{line}"
        );
    }
    std::fs::write(
        dir.path().join(tokens::TOKENS_FILE),
        format!("0000 writer gw {hash} cert=gw.example\n"),
    )
    .unwrap();
    assert_eq!(
        tokens::load(dir.path()).unwrap()[0].cert.as_deref(),
        Some("gw.example")
    );
}

/// A record rate is kept in the file and read back in either order with
/// a binding; one out of range, repeated, or for a reader is refused.
#[test]
fn a_rate_is_kept_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let terms = |rate| Terms {
        rate,
        ..Terms::default()
    };
    let (entry, _) = tokens::add(dir.path(), "gw", Role::Relay, terms(Some(250))).unwrap();
    assert_eq!(entry.rate, Some(250));
    assert_eq!(tokens::load(dir.path()).unwrap(), vec![entry]);
    for (role, rate, want) in [
        (Role::Writer, Some(0), "from 1 to"),
        (Role::Writer, Some(tokens::MAX_RATE + 1), "from 1 to"),
        (Role::Reader, Some(10), "a reader token sends no records"),
    ] {
        let e = tokens::add(dir.path(), "gw", role, terms(rate)).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    assert_eq!(tokens::load(dir.path()).unwrap().len(), 1, "nothing added");

    let hash = "00".repeat(32);
    let file = dir.path().join(tokens::TOKENS_FILE);
    std::fs::write(
        &file,
        format!("0000 writer gw {hash} rate=5 cert=gw.example\n"),
    )
    .unwrap();
    let e = &tokens::load(dir.path()).unwrap()[0];
    assert_eq!((e.rate, e.cert.as_deref()), (Some(5), Some("gw.example")));
    for bad in [
        "rate=0",
        "rate=x",
        "rate=",
        "rate=1 rate=2",
        "rate=-1",
        "rate=01",
    ] {
        std::fs::write(&file, format!("0000 writer gw {hash} {bad}\n")).unwrap();
        assert!(
            matches!(
                tokens::load(dir.path()),
                Err(TokenError::Malformed { line: 1, .. })
            ),
            "{bad}"
        );
    }
}
