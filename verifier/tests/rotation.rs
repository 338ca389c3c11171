//! A log rotating its key signs each checkpoint with its current and its
//! next key (specs/keys.md, "Rotation"): readers holding either key verify
//! it, and files that account for every byte accept the other key's line.

use verifier::checkpoint::{self, CheckpointError};
use verifier::cosignature::{self, Policy, WitnessSigner};
use verifier::note::{NoteError, SignerKey, VerifierKey};
use verifier::{Checkpoint, Hash};

const ORIGIN: &str = "rotating.example/log";

/// Computed from the C2SP signed-note text alone, in Python with the
/// `cryptography` package's Ed25519 (not this crate's code): seeds
/// `[1; 32]` (the current key) and `[2; 32]` (the next key), the body
/// below, signature lines in that order.
const OLD_KEY: &str = "rotating.example/log+24a92ba3+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
const NEW_KEY: &str = "rotating.example/log+fb66375f+AYE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU";
const BOTH: &str = "rotating.example/log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\u{2014} rotating.example/log JKkrozxoH27FTCF4NcrIWjR8d68P3mFQX69q1aiE5roq+iohL3n8udAkGp1j2kGVeiVHBGNU0Zylkrhehs4qBq9tHw8=\n\u{2014} rotating.example/log +2Y3Xzy11O34SeFlh2nSpmMw2NjtzBQHrRfcGUuv8VkiHCD1c8MKhmlg8rrj/CsX+zp9im9Bns4d8oJorZUyUyU+awM=\n";

fn signers() -> (SignerKey, SignerKey) {
    (
        SignerKey::from_seed(ORIGIN, &[1; 32]).unwrap(),
        SignerKey::from_seed(ORIGIN, &[2; 32]).unwrap(),
    )
}

fn body() -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size: 5,
        root: Hash((0u8..32).collect::<Vec<_>>().try_into().unwrap()),
        extensions: vec![],
    }
}

#[test]
fn two_keys_sign_as_the_independent_computation_does() {
    let (old, new) = signers();
    assert_eq!(old.verifier().to_string(), OLD_KEY);
    assert_eq!(new.verifier().to_string(), NEW_KEY);
    assert_eq!(body().sign_by(&[old, new]).unwrap(), BOTH);
}

#[test]
fn either_key_opens_a_checkpoint_signed_by_both() {
    let (old, new) = signers();
    for key in [old.verifier(), new.verifier()] {
        assert_eq!(checkpoint::open(BOTH.as_bytes(), &key).unwrap(), body());
    }
    let keys = [new.verifier(), old.verifier()];
    assert_eq!(
        checkpoint::open_any(BOTH.as_bytes(), &keys).unwrap(),
        body()
    );
    // One key's line alone: the other key does not open it.
    let old_only = body().sign(&old).unwrap();
    assert!(matches!(
        checkpoint::open(old_only.as_bytes(), &new.verifier()),
        Err(CheckpointError::Note(NoteError::NoKnownSignature(_)))
    ));
    assert_eq!(
        checkpoint::open_any(old_only.as_bytes(), &keys).unwrap(),
        body()
    );
    // A key of another log opens nothing, even one of the same seed.
    let other = SignerKey::from_seed("other.example/log", &[1; 32]).unwrap();
    assert!(checkpoint::open_any(BOTH.as_bytes(), &[other.verifier()]).is_err());
}

#[test]
fn a_bad_signature_by_either_key_fails() {
    let (old, new) = signers();
    let lines: Vec<&str> = BOTH.split_inclusive('\n').collect();
    for line in [4, 5] {
        let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        // Flip a character of the signature (after the key ID).
        let l = &mut tampered[line];
        let at = l.len() - 10;
        let c = if &l[at..at + 1] == "A" { "B" } else { "A" };
        l.replace_range(at..at + 1, c);
        let text = tampered.concat();
        let signer = if line == 4 { &old } else { &new };
        assert!(
            matches!(
                checkpoint::open(text.as_bytes(), &signer.verifier()),
                Err(CheckpointError::Note(NoteError::InvalidSignature(_)))
            ),
            "line {line}"
        );
    }
}

#[test]
fn files_accounting_for_every_byte_name_the_other_key() {
    let (old, new) = signers();
    let none = Policy::default();
    for (key, other) in [
        (old.verifier(), new.verifier()),
        (new.verifier(), old.verifier()),
    ] {
        let (cp, w) = cosignature::open_witnessed(BOTH.as_bytes(), &key, &none).unwrap();
        assert_eq!(cp, body());
        assert_eq!(w.other_log_keys, vec![other.id()]);
        assert!(w.unchecked.is_empty());
        let summary = w.summary().unwrap();
        assert!(
            summary.contains(&format!("{:08x}", other.id())),
            "{summary}"
        );
        assert_eq!(
            w.to_json()["other_log_keys"][0],
            format!("{:08x}", other.id())
        );
    }
    // A line under the log's name that is not an Ed25519 signature is not
    // another key of the log: refused.
    use base64::Engine;
    let forged = format!(
        "{BOTH}\u{2014} {ORIGIN} {}\n",
        base64::engine::general_purpose::STANDARD.encode([7u8; 4 + 72])
    );
    assert!(matches!(
        cosignature::open_witnessed(forged.as_bytes(), &old.verifier(), &none),
        Err(CheckpointError::Foreign(name)) if name == ORIGIN
    ));
}

#[test]
fn signing_refuses_no_key_a_key_twice_and_another_log() {
    let (old, new) = signers();
    assert!(matches!(
        body().sign_by(&[]),
        Err(CheckpointError::Note(NoteError::Signers))
    ));
    assert!(matches!(
        body().sign_by(&[old.clone(), new.clone(), old.clone()]),
        Err(CheckpointError::Note(NoteError::Signers))
    ));
    let other = SignerKey::from_seed("other.example/log", &[3; 32]).unwrap();
    assert!(matches!(
        body().sign_by(&[old, other]),
        Err(CheckpointError::OriginMismatch { .. })
    ));
}

#[test]
fn a_witness_given_both_keys_cosigns_across_the_rotation() {
    use verifier::tree::{consistency_proof, MemoryTree};
    use verifier::witness::{add_checkpoint, AddCheckpoint};
    let (old, new) = signers();
    let w = WitnessSigner::from_seed("witness.example/w", &[9; 32]).unwrap();
    let keys = [old.verifier(), new.verifier()];
    let mut tree = MemoryTree::default();
    let mut held = None;
    // Signed by the old key, then by both, then by the new key alone.
    for (size, by) in [
        (2u64, vec![old.clone()]),
        (4, vec![old.clone(), new.clone()]),
        (6, vec![new.clone()]),
    ] {
        while tree.size() < size {
            tree.push(verifier::leaf_hash(&tree.size().to_be_bytes()));
        }
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: tree.root_at(size).unwrap(),
            extensions: vec![],
        };
        let old_size = held
            .as_ref()
            .map_or(0, |l: &verifier::witness::Latest| l.size);
        let proof = if old_size == 0 {
            vec![]
        } else {
            consistency_proof(&tree, old_size, size).unwrap()
        };
        let req = AddCheckpoint {
            old: old_size,
            proof,
            checkpoint: cp.sign_by(&by).unwrap(),
        };
        let parsed = AddCheckpoint::parse(req.to_body().as_bytes()).unwrap();
        let (latest, _) = add_checkpoint(&parsed, &keys, held.as_ref(), &w, 1).unwrap();
        held = Some(latest);
        // A witness given only the key that did not sign refuses it.
        let unknown: Vec<VerifierKey> = keys
            .iter()
            .filter(|k| !by.iter().any(|s| s.verifier() == **k))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let e = add_checkpoint(&parsed, &unknown, None, &w, 1).unwrap_err();
            assert_eq!(e.status(), 403, "{e}");
        }
    }
}

#[test]
fn consistency_is_checked_across_a_rotation_with_each_side_s_key() {
    use verifier::consistency_file::{ConsistencyFile, ConsistencyFileError};
    use verifier::tree::{consistency_proof, MemoryTree};
    let (old, new) = signers();
    let mut tree = MemoryTree::default();
    for i in 0u64..6 {
        tree.push(verifier::leaf_hash(&i.to_be_bytes()));
    }
    let at = |size: u64, by: &SignerKey| {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: tree.root_at(size).unwrap(),
            extensions: vec![],
        }
        .sign(by)
        .unwrap()
    };
    let (before, after) = (at(2, &old), at(6, &new));
    let file = ConsistencyFile {
        old_size: 2,
        new_size: 6,
        proof: consistency_proof(&tree, 2, 6).unwrap(),
    };
    let (o, n) = file
        .verify_across(
            before.as_bytes(),
            &old.verifier(),
            after.as_bytes(),
            &new.verifier(),
        )
        .unwrap();
    assert_eq!((o.size, n.size), (2, 6));
    // One key for both sides fails on the side it did not sign.
    for key in [old.verifier(), new.verifier()] {
        assert!(matches!(
            file.verify(before.as_bytes(), after.as_bytes(), &key),
            Err(ConsistencyFileError::Checkpoint { .. })
        ));
    }
    // The keys swapped fail; a key of another log is refused as such.
    assert!(file
        .verify_across(
            before.as_bytes(),
            &new.verifier(),
            after.as_bytes(),
            &old.verifier()
        )
        .is_err());
    let other = SignerKey::from_seed("other.example/log", &[1; 32]).unwrap();
    assert!(matches!(
        file.verify_across(
            before.as_bytes(),
            &other.verifier(),
            after.as_bytes(),
            &new.verifier()
        ),
        Err(ConsistencyFileError::OtherLog { .. })
    ));
}
