//! Witness cosignatures kept with the checkpoints they sign: added, read
//! back after a reopen, never in the note of the log's signature alone (the
//! one evidence and the last-checkpoint file carry), and kept by a store
//! rebuilt from a cosigned checkpoint.

use verifier::cosignature::{self, Policy, WitnessSigner};
use verifier::SignerKey;

use ledger::Log;

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", &[3; 32]).unwrap()
}

fn witness(n: u8) -> WitnessSigner {
    WitnessSigner::from_seed(&format!("witness.example/w{n}"), &[n; 32]).unwrap()
}

/// The witness's cosignature line for the checkpoint note `signed`.
fn cosign(w: &WitnessSigner, signed: &str) -> String {
    let body = signed.split("\n\n").next().unwrap().to_string() + "\n";
    w.cosign(&body, 1_764_979_200).unwrap()
}

#[test]
fn cosignatures_are_kept_with_their_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer().verifier();
    let log = Log::open(dir.path(), &key).unwrap();
    log.append(&[b"a".to_vec(), b"b".to_vec()]).unwrap();
    let first = log.sign_checkpoint(&signer()).unwrap();
    assert!(first.cosignatures.is_empty());
    let (w1, w2) = (witness(1), witness(2));

    let kept = log.add_cosignatures(2, &cosign(&w1, &first.text)).unwrap();
    // Twice the same line is kept once; a second witness is added.
    log.add_cosignatures(2, &cosign(&w1, &first.text)).unwrap();
    let both = log.add_cosignatures(2, &cosign(&w2, &first.text)).unwrap();
    assert_eq!(kept.text, first.text, "the log's own note is unchanged");
    assert_eq!(both.cosignatures.lines().count(), 2);
    assert_eq!(log.latest_checkpoint().unwrap(), both);
    let policy = Policy::new(vec![w1.verifier(), w2.verifier()], None).unwrap();
    assert_eq!(policy.check(both.cosigned().as_bytes()).unwrap().len(), 2);
    // Not a signature line: refused, nothing changed.
    assert!(log.add_cosignatures(2, "not a signature\n").is_err());
    assert_eq!(log.checkpoint_at(2).unwrap(), both);

    // A newer checkpoint starts with none; the older keeps its own.
    log.append(&[b"c".to_vec()]).unwrap();
    let second = log.sign_checkpoint(&signer()).unwrap();
    assert!(second.cosignatures.is_empty());
    drop(log);
    let log = Log::open(dir.path(), &key).unwrap();
    assert_eq!(log.checkpoint_at(2).unwrap(), both);
    assert_eq!(log.latest_checkpoint().unwrap(), second);
    // The last-checkpoint file holds the log's signature alone.
    let file =
        std::fs::read_to_string(dir.path().join(ledger::last_checkpoint::FILE_NAME)).unwrap();
    assert_eq!(file, second.text);

    // Evidence and tlog-proofs carry the cosigned note.
    let proof = log.tlog_proof(0, Some(2)).unwrap();
    assert_eq!(proof.checkpoint, both.cosigned());
    // (These leaves are not decision records: only the checkpoint is read.)
    let evidence = log.evidence(1, Some(2)).unwrap();
    let (_, w) =
        verifier::cosignature::open_witnessed(evidence.proof.checkpoint.as_bytes(), &key, &policy)
            .unwrap();
    assert_eq!(w.cosigned.len(), 2);

    // A store rebuilt from a cosigned checkpoint (a restore) keeps them
    // apart from the log's note in the same way.
    let other = tempfile::tempdir().unwrap();
    let copy = Log::open(other.path(), &key).unwrap();
    copy.append(&[b"a".to_vec(), b"b".to_vec()]).unwrap();
    let stored = copy.store_checkpoint(both.cosigned().as_bytes()).unwrap();
    assert_eq!(stored, both);
    assert_eq!(
        cosignature::verify(stored.cosigned().as_bytes(), &[w2.verifier()]).unwrap()[0].witness,
        "witness.example/w2"
    );
}
