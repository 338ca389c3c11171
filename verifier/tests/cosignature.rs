//! Witness cosignatures (C2SP tlog-cosignature v1) and the witness's
//! `add-checkpoint` checks (C2SP tlog-witness).

mod common;

use common::load;
use verifier::cosignature::{self, CosignatureError, Policy, WitnessKey, WitnessSigner};
use verifier::note::{KeyError, SignerKey, VerifierKey};
use verifier::tree::{consistency_proof, MemoryTree};
use verifier::witness::{add_checkpoint, AddCheckpoint, AddError, Latest};
use verifier::{leaf_hash, Checkpoint};

/// A vector computed from the C2SP tlog-cosignature text alone, in Python
/// with the `cryptography` package's Ed25519 (not this crate's code): the
/// witness seed is bytes 0x20..=0x3f, the checkpoint the shared note.json
/// body, the time 1764979200.
const WITNESS_SEED: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = 0x20 + i as u8;
        i += 1;
    }
    s
};
const WITNESS_NAME: &str = "witness.example.org/w1";
const WITNESS_VKEY: &str =
    "witness.example.org/w1+f3c080b6+BCmsuuFBvMrwsi4alNNNC8c2HlJtC/4SyJeUvJMilm3X";
const WITNESS_SKEY: &str =
    "PRIVATE+KEY+witness.example.org/w1+f3c080b6+BCAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/";
const TIME: u64 = 1764979200;
const LINE: &str = "— witness.example.org/w1 88CAtgAAAABpM3IA+/Rs0Zr3W96P+8+cqPeFzinUexaq1I6x1KSlGRo5Q+IM7sTVmtuYV81e4oMClUObfaYV+FTnwfU+yPOIbUKGDw==\n";

fn witness() -> WitnessSigner {
    WitnessSigner::from_seed(WITNESS_NAME, &WITNESS_SEED).unwrap()
}

fn signed_checkpoint() -> (String, String) {
    let v = load("note.json");
    (
        v["checkpoint_body"].as_str().unwrap().to_string(),
        v["signed_checkpoint"].as_str().unwrap().to_string(),
    )
}

#[test]
fn known_answer_keys_and_line() {
    let w = witness();
    assert_eq!(w.verifier().to_string(), WITNESS_VKEY);
    assert_eq!(w.to_secret_string(), WITNESS_SKEY);
    assert_eq!(
        WitnessSigner::parse(WITNESS_SKEY).unwrap().verifier(),
        w.verifier()
    );
    let (body, signed) = signed_checkpoint();
    assert_eq!(w.cosign(&body, TIME).unwrap(), LINE);

    let cosigned = format!("{signed}{LINE}");
    let key = WitnessKey::parse(WITNESS_VKEY).unwrap();
    let found = cosignature::verify(cosigned.as_bytes(), &[key]).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].witness.as_str(), found[0].time),
        (WITNESS_NAME, TIME)
    );
}

/// A real witness's key from transparency-dev/formats' tests
/// (note/note_cosigv1_test.go): its key ID is computed with type byte 0x04.
#[test]
fn known_answer_key_id_of_a_deployed_witness() {
    let k =
        WitnessKey::parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
            .unwrap();
    assert_eq!((k.name(), k.id()), ("remora.n621.de", 0xda77ade7));
    // The same key bytes as a log key (type 0x01) are refused, and the
    // other way around, naming both types.
    let log = load("note.json")["verifier_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(matches!(
        WitnessKey::parse(&log),
        Err(KeyError::Algorithm {
            found: 1,
            wanted: 4
        })
    ));
    assert!(matches!(
        VerifierKey::parse(WITNESS_VKEY),
        Err(KeyError::Algorithm {
            found: 4,
            wanted: 1
        })
    ));
}

/// The example line in C2SP tlog-cosignature: key ID, then the timestamp
/// the spec's signed-message example shows, big-endian.
#[test]
fn spec_example_line_framing() {
    let note = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    let n = verifier::note::Note::parse(note.as_bytes()).unwrap();
    let sig = &n.signatures[1];
    assert_eq!(sig.id, 0x8d66cf3f);
    assert_eq!(sig.signature.len(), 72);
    assert_eq!(
        u64::from_be_bytes(sig.signature[..8].try_into().unwrap()),
        1679315147
    );
    let msg = cosignature::message(&n.text, 1679315147);
    assert_eq!(
        String::from_utf8(msg).unwrap(),
        "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn every_byte_of_a_cosignature_is_checked() {
    let (_, signed) = signed_checkpoint();
    let policy = Policy::new(vec![witness().verifier()], None).unwrap();
    let good = format!("{signed}{LINE}");
    assert!(policy.check(good.as_bytes()).is_ok());
    // Flip each bit of the text and of the cosignature line: the quorum of
    // one is never met (the line is refused, or no longer names the key).
    let text_len = signed.find("\n\n").unwrap() + 1;
    let line_start = signed.len();
    for i in (0..text_len).chain(line_start..good.len() - 1) {
        for bit in 0..8 {
            let mut b = good.clone().into_bytes();
            b[i] ^= 1 << bit;
            assert!(
                policy.check(&b).is_err(),
                "flip at byte {i} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn policy_counts_distinct_known_witnesses() {
    let (body, signed) = signed_checkpoint();
    let w2 = WitnessSigner::from_seed("witness.example.org/w2", &[7; 32]).unwrap();
    let w3 = WitnessSigner::from_seed("witness.example.org/w3", &[8; 32]).unwrap();
    let keys = vec![witness().verifier(), w2.verifier(), w3.verifier()];
    let two = format!("{signed}{LINE}{}", w2.cosign(&body, TIME + 1).unwrap());
    assert_eq!(
        Policy::new(keys.clone(), Some(2))
            .unwrap()
            .check(two.as_bytes())
            .unwrap()
            .len(),
        2
    );
    match Policy::new(keys.clone(), None)
        .unwrap()
        .check(two.as_bytes())
    {
        Err(CosignatureError::Quorum {
            have: 2,
            need: 3,
            missing,
        }) => {
            assert_eq!(missing, "witness.example.org/w3")
        }
        other => panic!("{other:?}"),
    }
    // Twice the same witness does not count twice: it is refused.
    let twice = format!(
        "{signed}{LINE}{}",
        witness().cosign(&body, TIME + 5).unwrap()
    );
    assert_eq!(
        cosignature::verify(twice.as_bytes(), &keys),
        Err(CosignatureError::Duplicate(WITNESS_NAME.to_string()))
    );
    // A quorum larger than the keys given is a usage error.
    assert!(Policy::new(keys, Some(4)).is_err());
    // append_lines adds only lines not yet there.
    let merged = cosignature::append_lines(&two, &format!("{LINE}{LINE}")).unwrap();
    assert_eq!(merged, two);
}

fn log_at(tree: &MemoryTree, size: u64, signer: &SignerKey) -> (String, Latest) {
    let cp = Checkpoint {
        origin: signer.name().to_string(),
        size,
        root: tree.root_at(size).unwrap(),
        extensions: vec![],
    };
    (
        cp.sign(signer).unwrap(),
        Latest {
            size,
            root: cp.root,
        },
    )
}

#[test]
fn witness_follows_a_log_and_refuses_what_the_spec_refuses() {
    let signer = SignerKey::parse(load("note.json")["signer_key"].as_str().unwrap()).unwrap();
    let log = signer.verifier();
    let mut tree = MemoryTree::new();
    for i in 0u32..20 {
        tree.push(leaf_hash(&i.to_be_bytes()));
    }
    let w = witness();
    let (cp5, _) = log_at(&tree, 5, &signer);
    let (cp13, l13) = log_at(&tree, 13, &signer);

    // First contact: old 0, no proof.
    let first = AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: cp5.clone(),
    };
    let parsed = AddCheckpoint::parse(first.to_body().as_bytes()).unwrap();
    assert_eq!(parsed, first);
    let (l5, line) = add_checkpoint(&parsed, std::slice::from_ref(&log), None, &w, TIME).unwrap();
    assert_eq!(l5.size, 5);
    let cosigned = format!("{cp5}{line}");
    assert_eq!(
        cosignature::verify(cosigned.as_bytes(), &[w.verifier()])
            .unwrap()
            .len(),
        1
    );

    // 5 -> 13 with the consistency proof.
    let proof = consistency_proof(&tree, 5, 13).unwrap();
    let next = AddCheckpoint {
        old: 5,
        proof: proof.clone(),
        checkpoint: cp13.clone(),
    };
    let parsed = AddCheckpoint::parse(next.to_body().as_bytes()).unwrap();
    assert_eq!(parsed.proof.len(), proof.len());
    assert_eq!(
        add_checkpoint(&parsed, std::slice::from_ref(&log), Some(&l5), &w, TIME)
            .unwrap()
            .0,
        l13
    );

    // A stale old size: 409 with the witness's size.
    let e = add_checkpoint(&first, std::slice::from_ref(&log), Some(&l13), &w, TIME).unwrap_err();
    assert_eq!((e.clone(), e.status()), (AddError::OldSize(13), 409));
    // old above the checkpoint's size: 400.
    let over = AddCheckpoint {
        old: 14,
        proof: vec![],
        checkpoint: cp13.clone(),
    };
    assert_eq!(
        add_checkpoint(&over, std::slice::from_ref(&log), Some(&l13), &w, TIME)
            .unwrap_err()
            .status(),
        400
    );
    // A proof that does not verify: 422.
    let mut bad = next.clone();
    bad.proof[0].0[0] ^= 1;
    assert_eq!(
        add_checkpoint(&bad, std::slice::from_ref(&log), Some(&l5), &w, TIME)
            .unwrap_err()
            .status(),
        422
    );
    // A fork: same size, another root: 409.
    let mut forked = MemoryTree::new();
    for i in 0u32..12 {
        forked.push(leaf_hash(&i.to_be_bytes()));
    }
    forked.push(leaf_hash(b"another 13th leaf"));
    let (fork13, _) = log_at(&forked, 13, &signer);
    let same = AddCheckpoint {
        old: 13,
        proof: vec![],
        checkpoint: fork13,
    };
    assert_eq!(
        add_checkpoint(&same, std::slice::from_ref(&log), Some(&l13), &w, TIME).unwrap_err(),
        AddError::RootConflict(13)
    );
    // Signed by another key under the log's origin: 403; another origin: 404.
    let impostor = SignerKey::from_seed(log.name(), &[9; 32]).unwrap();
    let (forged, _) = log_at(&tree, 13, &impostor);
    let forged = AddCheckpoint {
        old: 5,
        proof,
        checkpoint: forged,
    };
    assert_eq!(
        add_checkpoint(&forged, std::slice::from_ref(&log), Some(&l5), &w, TIME)
            .unwrap_err()
            .status(),
        403
    );
    let stranger = SignerKey::from_seed("other.example/log", &[9; 32]).unwrap();
    let (foreign, _) = log_at(&tree, 5, &stranger);
    let foreign = AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: foreign,
    };
    assert_eq!(
        add_checkpoint(&foreign, std::slice::from_ref(&log), None, &w, TIME)
            .unwrap_err()
            .status(),
        404
    );
}

#[test]
fn add_checkpoint_bodies_that_do_not_parse() {
    for body in [
        &b""[..],
        b"old 5\n",
        b"old 05\n\nx\n",
        b"new 5\n\nx\n",
        b"old 5\nnot base64\n\nx\n",
        b"\xff\n\n",
    ] {
        assert!(
            matches!(AddCheckpoint::parse(body), Err(AddError::BadRequest(_))),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    let many = format!(
        "old 1\n{}\nx\n",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64)
    );
    assert!(AddCheckpoint::parse(many.as_bytes()).is_err());
}
