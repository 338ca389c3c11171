//! Rotating the log's signing key in a data directory (specs/keys.md,
//! "Rotation"): the next key signs beside the current one, the same
//! checkpoint is handed over at once, promotion retires the old key, and
//! the store's older checkpoints stay readable through `log.retired`.

use std::path::Path;

use ledger::keys::{self, LogKeys};
use ledger::{rotation, LedgerError, Log};
use verifier::checkpoint;
use verifier::cosignature::WitnessSigner;

const ORIGIN: &str = "rotating.example/log";

fn new_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    keys::save(dir.path(), &keys::generate(ORIGIN).unwrap()).unwrap();
    dir
}

fn open(dir: &Path) -> Log {
    Log::open(&dir.join("db"), &keys::load_keys(dir).unwrap()).unwrap()
}

fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

#[test]
fn a_rotation_hands_the_log_over_and_keeps_its_history_readable() {
    let data = new_data_dir();
    let dir = data.path();
    let old = keys::load_verifier(dir).unwrap();
    let log = open(dir);
    log.append(&[b"a".to_vec(), b"b".to_vec()]).unwrap();
    let first = log
        .sign_checkpoint(&keys::load_signers(dir).unwrap())
        .unwrap();
    // A witness cosigned it before the rotation.
    let w = WitnessSigner::from_seed("witness.example/w", &[4; 32]).unwrap();
    let body = first.text.split("\n\n").next().unwrap().to_string() + "\n";
    log.add_cosignatures(2, &w.cosign(&body, 1).unwrap())
        .unwrap();
    drop(log);

    // Begin: the next key is made, named by the origin.
    let new = rotation::begin(dir).unwrap();
    assert_eq!(new.name(), ORIGIN);
    assert_ne!(new, old);
    assert!(exists(dir, keys::NEXT_SIGNER_FILE) && exists(dir, keys::NEXT_VERIFIER_FILE));
    let signers = keys::load_signers(dir).unwrap();
    assert_eq!(signers.next().unwrap().verifier(), new);
    // A second begin is refused and changes nothing.
    let again = rotation::begin(dir).unwrap_err().to_string();
    assert!(again.contains("under way already"), "{again}");
    assert_eq!(
        keys::load_signers(dir).unwrap().next().unwrap().verifier(),
        new
    );

    // The same checkpoint is signed by both at once, the cosignature kept.
    let log = open(dir);
    let handed = log.sign_checkpoint(&signers).unwrap();
    assert_eq!(handed.checkpoint, first.checkpoint);
    assert_ne!(handed.text, first.text);
    assert_eq!(
        handed.cosignatures,
        log.checkpoint_at(2).unwrap().cosignatures
    );
    assert_eq!(handed.cosignatures.lines().count(), 1);
    for key in [&old, &new] {
        checkpoint::open(handed.text.as_bytes(), key).unwrap();
        checkpoint::open(handed.cosigned().as_bytes(), key).unwrap();
    }
    // Signed once: asking again returns it as it is.
    assert_eq!(log.sign_checkpoint(&signers).unwrap(), handed);
    log.append(&[b"c".to_vec()]).unwrap();
    let during = log.sign_checkpoint(&signers).unwrap();
    checkpoint::open(during.text.as_bytes(), &new).unwrap();
    checkpoint::open(during.text.as_bytes(), &old).unwrap();
    drop(log);

    // Promote: the new key is current, the old one retired, its secret gone.
    let done = rotation::promote(dir).unwrap();
    assert_eq!(
        (done.current.clone(), done.retired.clone()),
        (new.clone(), old.clone())
    );
    assert_eq!(keys::load_verifier(dir).unwrap(), new);
    assert_eq!(keys::load_retired(dir).unwrap(), vec![old.clone()]);
    assert!(!exists(dir, keys::NEXT_SIGNER_FILE) && !exists(dir, keys::NEXT_VERIFIER_FILE));
    let signers = keys::load_signers(dir).unwrap();
    assert_eq!(signers.current().verifier(), new);
    assert!(signers.next().is_none());
    let all = keys::load_keys(dir).unwrap();
    assert_eq!(all.all(), &[new.clone(), old.clone()]);

    // Reopened: checkpoints of every key read back; new ones by the new key alone.
    let log = open(dir);
    assert_eq!(log.checkpoint_at(2).unwrap().text, handed.text);
    assert_eq!(log.checkpoint_at(3).unwrap(), during);
    log.append(&[b"d".to_vec()]).unwrap();
    let after = log.sign_checkpoint(&signers).unwrap();
    checkpoint::open(after.text.as_bytes(), &new).unwrap();
    assert!(checkpoint::open(after.text.as_bytes(), &old).is_err());
    assert_eq!(after.text.matches('\u{2014}').count(), 1);
    // The retired key signs nothing more.
    let stale = keys::LogSigners::from(verifier::SignerKey::from_seed(ORIGIN, &[8; 32]).unwrap());
    assert!(matches!(
        log.sign_checkpoint(&stale),
        Err(LedgerError::UnknownKey { .. })
    ));
    drop(log);

    // Every stored checkpoint was signed by the new key too (the one of
    // size 2 was handed over), so the new key alone opens the store, and
    // the old key's lines are still the log's own, not cosignatures.
    std::fs::remove_file(dir.join(keys::RETIRED_FILE)).unwrap();
    let log = Log::open(&dir.join("db"), &new).unwrap();
    assert_eq!(log.checkpoint_at(2).unwrap().text, handed.text);
    assert_eq!(log.checkpoint_at(3).unwrap(), during);
}

#[test]
fn a_store_signed_by_a_key_not_given_is_refused() {
    let data = new_data_dir();
    let dir = data.path();
    let old = keys::load_verifier(dir).unwrap();
    let log = open(dir);
    log.append(&[b"a".to_vec()]).unwrap();
    log.sign_checkpoint(&keys::load_signers(dir).unwrap())
        .unwrap();
    drop(log);
    // Another key of the same origin, never rotated in.
    let stranger = keys::generate(ORIGIN).unwrap().verifier();
    let e = Log::open(&dir.join("db"), &stranger).err().unwrap();
    assert!(e.to_string().contains("no signature by a known key"), "{e}");
    // With the old key among the log's keys, it opens.
    Log::open(&dir.join("db"), &LogKeys::new(stranger, vec![old]).unwrap()).unwrap();
}

#[test]
fn a_promotion_cut_short_is_named_and_finished_by_running_it_again() {
    let data = new_data_dir();
    let dir = data.path();
    let old = keys::load_verifier(dir).unwrap();
    let new = rotation::begin(dir).unwrap();
    // As a crash after log.pub and log.retired were replaced leaves it.
    std::fs::write(dir.join(keys::RETIRED_FILE), format!("{old}\n")).unwrap();
    std::fs::write(dir.join(keys::VERIFIER_FILE), format!("{new}\n")).unwrap();
    let e = keys::load_signers(dir).unwrap_err().to_string();
    assert!(e.contains("cut short") && e.contains("key promote"), "{e}");
    let done = rotation::promote(dir).unwrap();
    assert_eq!((done.current, done.retired), (new.clone(), old.clone()));
    assert_eq!(keys::load_signers(dir).unwrap().current().verifier(), new);
    assert_eq!(keys::load_retired(dir).unwrap(), vec![old]);
}

#[test]
fn bad_key_files_are_refused_with_what_to_do() {
    let data = new_data_dir();
    let dir = data.path();
    // No rotation under way: promote refuses and changes nothing.
    let before = keys::load_verifier(dir).unwrap();
    let e = rotation::promote(dir).unwrap_err().to_string();
    assert!(e.contains("key next"), "{e}");
    assert_eq!(keys::load_verifier(dir).unwrap(), before);
    // A next key of another log.
    let other = keys::generate("other.example/log").unwrap();
    keys::save_pair(
        dir,
        (keys::NEXT_SIGNER_FILE, &other.to_secret_string()),
        (keys::NEXT_VERIFIER_FILE, &other.verifier().to_string()),
    )
    .unwrap();
    assert!(matches!(
        keys::load_signers(dir),
        Err(LedgerError::KeyFiles(_))
    ));
    assert!(matches!(
        keys::load_keys(dir),
        Err(LedgerError::KeyFiles(_))
    ));
    assert!(rotation::promote(dir).is_err());
    assert_eq!(keys::load_verifier(dir).unwrap(), before);
    // A retired list that is not keys.
    std::fs::remove_file(dir.join(keys::NEXT_SIGNER_FILE)).unwrap();
    std::fs::remove_file(dir.join(keys::NEXT_VERIFIER_FILE)).unwrap();
    std::fs::write(dir.join(keys::RETIRED_FILE), "not a key\n").unwrap();
    let e = keys::load_keys(dir).unwrap_err().to_string();
    assert!(e.contains("log.retired line 1"), "{e}");
    // A log.key that is not log.pub's.
    std::fs::remove_file(dir.join(keys::RETIRED_FILE)).unwrap();
    std::fs::write(
        dir.join(keys::VERIFIER_FILE),
        format!("{}\n", other.verifier()),
    )
    .unwrap();
    let e = keys::load_signers(dir).unwrap_err().to_string();
    assert!(e.contains("is not the key of"), "{e}");
}

#[test]
fn a_rotation_with_no_signing_between_its_steps_keeps_the_old_line() {
    let data = new_data_dir();
    let dir = data.path();
    let old = keys::load_verifier(dir).unwrap();
    let log = open(dir);
    log.append(&[b"a".to_vec()]).unwrap();
    let first = log
        .sign_checkpoint(&keys::load_signers(dir).unwrap())
        .unwrap();
    drop(log);
    // Begun and promoted with no start of the log in between.
    let new = rotation::begin(dir).unwrap();
    rotation::promote(dir).unwrap();
    let log = open(dir);
    let handed = log
        .sign_checkpoint(&keys::load_signers(dir).unwrap())
        .unwrap();
    assert_eq!(handed.checkpoint, first.checkpoint);
    assert!(handed.text.starts_with(&first.text), "the old line is kept");
    assert_eq!(handed.text.matches('\u{2014}').count(), 2);
    for key in [&old, &new] {
        checkpoint::open(handed.text.as_bytes(), key).unwrap();
    }
    assert_eq!(log.checkpoint_at(1).unwrap(), handed);
}

/// A running log follows its key files: [`rotation::KeyWatch`] sees each
/// step once, [`rotation::apply`] makes the log know and sign with the new
/// keys; another log's keys are refused and change nothing.
#[test]
fn a_running_log_takes_each_step_from_its_key_files() {
    let data = new_data_dir();
    let dir = data.path();
    let old = keys::load_verifier(dir).unwrap();
    let log = open(dir);
    let shared = keys::SharedSigners::from(keys::load_signers(dir).unwrap());
    let mut watch = rotation::KeyWatch::new(dir);
    assert!(watch.changed().is_none(), "nothing changed yet");
    log.append(&[b"a".to_vec()]).unwrap();
    log.sign_checkpoint(&shared.get()).unwrap();

    let new = rotation::begin(dir).unwrap();
    let (signers, keys) = watch.changed().unwrap().unwrap();
    assert!(watch.changed().is_none(), "a change is seen once");
    rotation::apply(&log, &shared, signers, &keys).unwrap();
    assert_eq!(shared.get().next().unwrap().verifier(), new);
    let handed = log.latest_checkpoint().unwrap().text;
    for key in [&old, &new] {
        checkpoint::open(handed.as_bytes(), key).unwrap();
    }

    rotation::promote(dir).unwrap();
    let (signers, keys) = watch.changed().unwrap().unwrap();
    rotation::apply(&log, &shared, signers, &keys).unwrap();
    assert_eq!(shared.get().current().verifier(), new);
    assert!(shared.get().next().is_none());
    log.append(&[b"b".to_vec()]).unwrap();
    let after = log.sign_checkpoint(&shared.get()).unwrap().text;
    checkpoint::open(after.as_bytes(), &new).unwrap();
    assert!(checkpoint::open(after.as_bytes(), &old).is_err());
    // The first checkpoint, signed by the old key alone, is still read.
    assert_eq!(log.checkpoint_at(1).unwrap().checkpoint.size, 1);

    // A pair put in place of the log's (same origin, not a rotation
    // step), or keys of another origin: refused, the signers in use kept.
    let other = new_data_dir();
    let stranger = keys::load_signers(other.path()).unwrap();
    let stranger_keys = keys::load_keys(other.path()).unwrap();
    let e = rotation::apply(&log, &shared, stranger, &stranger_keys).unwrap_err();
    assert!(
        e.to_string()
            .contains("none of the keys the log signs with now"),
        "{e}"
    );
    let foreign = keys::generate("another.example/log").unwrap();
    let foreign_keys = LogKeys::new(foreign.verifier(), vec![]).unwrap();
    let e = rotation::apply(&log, &shared, foreign.into(), &foreign_keys).unwrap_err();
    assert!(matches!(e, LedgerError::WrongLog { .. }), "{e}");
    assert_eq!(shared.get().current().verifier(), new);
    assert_eq!(log.keys().current(), &new);
}

/// A promotion stopped after any of its steps (old key retired; `log.pub`
/// replaced; `log.next.pub` removed): the keys still verify the log, the
/// signing keys load or name `key promote`, and running it again ends
/// where an uninterrupted promotion ends.
#[test]
fn a_promotion_stopped_after_any_step_is_finished_by_running_it_again() {
    for steps in 1..=3 {
        let data = new_data_dir();
        let dir = data.path();
        let old = keys::load_verifier(dir).unwrap();
        let new = rotation::begin(dir).unwrap();
        let next_secret = std::fs::read(dir.join(keys::NEXT_SIGNER_FILE)).unwrap();
        keys::retire(dir, std::slice::from_ref(&old)).unwrap();
        if steps >= 2 {
            keys::replace(dir, keys::VERIFIER_FILE, &format!("{new}\n")).unwrap();
        }
        if steps >= 3 {
            std::fs::remove_file(dir.join(keys::NEXT_VERIFIER_FILE)).unwrap();
        }
        let all = keys::load_keys(dir).unwrap();
        assert!(
            all.all().contains(&old) && all.all().contains(&new),
            "after {steps} steps: {:?}",
            all.all()
        );
        match keys::load_signers(dir) {
            Ok(s) => assert_eq!(steps, 1, "signs with {:?}", s.current().verifier()),
            Err(e) => assert!(e.to_string().contains("key promote"), "after {steps}: {e}"),
        }
        let done = rotation::promote(dir).unwrap();
        assert_eq!((done.current, done.retired), (new.clone(), old.clone()));
        assert_eq!(keys::load_verifier(dir).unwrap(), new);
        assert_eq!(keys::load_retired(dir).unwrap(), vec![old.clone()]);
        assert_eq!(
            std::fs::read(dir.join(keys::SIGNER_FILE)).unwrap(),
            next_secret
        );
        assert!(!exists(dir, keys::NEXT_SIGNER_FILE) && !exists(dir, keys::NEXT_VERIFIER_FILE));
        assert_eq!(keys::load_signers(dir).unwrap().current().verifier(), new);
    }
}

/// `key next` stopped between its two files: after the public key, no
/// rotation is under way and the next `key next` makes one; a secret key
/// alone (as an earlier order of writing left it) is named with what to do.
#[test]
fn a_key_next_stopped_between_its_files_is_named_or_passed_over() {
    let data = new_data_dir();
    let dir = data.path();
    let stray = keys::generate(ORIGIN).unwrap().verifier();
    keys::replace(dir, keys::NEXT_VERIFIER_FILE, &format!("{stray}\n")).unwrap();
    assert!(keys::load_signers(dir).unwrap().next().is_none());
    let next = rotation::begin(dir).unwrap();
    assert_ne!(next, stray);
    assert_eq!(
        keys::load_signers(dir).unwrap().next().unwrap().verifier(),
        next
    );

    let data = new_data_dir();
    let dir = data.path();
    let lone = keys::generate(ORIGIN).unwrap();
    keys::save_secret(dir, keys::NEXT_SIGNER_FILE, &lone.to_secret_string()).unwrap();
    let e = keys::load_signers(dir).unwrap_err().to_string();
    assert!(
        e.contains("`key next` was cut short") && e.contains("remove"),
        "{e}"
    );
}
