//! Evidence files and COSE receipts: made from a log in memory, verified,
//! and every single-byte change of either rejected.

mod common;

use common::decisions::{byte_changes, leaf, record, signer, TestLog};
use serde_json::json;
use verifier::evidence::{Evidence, EvidenceError};
use verifier::receipt::{Receipt, ReceiptError};
use verifier::tlog_proof::TlogProof;
use verifier::{account, evidence, receipt};

fn log() -> TestLog {
    let mut leaves: Vec<Vec<u8>> = (0..37).map(|i| leaf(&record(&format!("d{i}")))).collect();
    let mut special = record("d-special");
    special["subject"]["issuer"] = json!("https://idp.example.com");
    special["delegation"] = json!([
        {"identity_kind": "agent", "id": "agent:travel-bot", "owner": "team-travel",
         "expires_at": "2026-11-23T07:00:00Z", "grant_id": "jit-7", "approved_by": "bob"},
        {"identity_kind": "service_account", "id": "sa:booking-svc"}
    ]);
    special["credential"]["expires_at"] = json!("2026-11-23T07:00:00Z");
    leaves[20] = leaf(&special);
    TestLog::new(leaves)
}

fn evidence_of(log: &TestLog, index: u64) -> Evidence {
    Evidence {
        leaf: log.leaves[index as usize].clone(),
        proof: TlogProof {
            extra: None,
            index,
            proof: log.proof(index),
            checkpoint: log.checkpoint(&signer()),
        },
    }
}

#[test]
fn evidence_verifies_and_its_account_names_the_people_and_findings() {
    let log = log();
    let key = signer().verifier();
    let text = evidence_of(&log, 20).to_text();
    let v = evidence::verify(text.as_bytes(), &key).unwrap();
    assert_eq!((v.index, v.checkpoint.size), (20, 37));
    assert_eq!(v.logged.decision.decision_id, "d-special");
    let account = account::decision_text(v.index, &v.checkpoint, "checkpoint", &v.logged);
    for needle in [
        "alice@example.com (human, type user), owner alice@example.com, issuer https://idp.example.com",
        "1. agent:travel-bot (agent), owner team-travel",
        "grant jit-7, approved by bob",
        "2. sa:booking-svc (service_account), NO OWNER",
        "NOT valid at the decision time",
        "gateway gw-1 (as declared); submitted by relay-1 (as authenticated)",
        "included at index 20 of tree size 37, checkpoint signed by decisions.example.org/log",
        "finding: decision d-special: delegation[1] sa:booking-svc (service_account) has no accountable owner",
        "finding: decision d-special: the delegation grant to agent:travel-bot (grant jit-7) expired",
        "finding: decision d-special: credential sha256:0123456789abcdef used at 2026-11-23T07:00:00.5Z, after it expired",
        "finding: decision d-special: credential sha256:0123456789abcdef states a TTL of 300 s",
    ] {
        assert!(account.contains(needle), "{needle:?} missing from\n{account}");
    }
    let json = account::decision_json(v.index, &v.checkpoint, &v.logged);
    assert_eq!(json["decision"]["subject"]["owner"], "alice@example.com");
    assert_eq!(json["credential_valid"], false);
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "grant_expired",
            "no_owner",
            "credential_expired",
            "ttl_mismatch"
        ]
    );
    // A clean record has no findings.
    let clean = evidence::verify(evidence_of(&log, 3).to_text().as_bytes(), &key).unwrap();
    assert!(verifier::findings::of_decision(&clean.logged.decision).is_empty());
}

#[test]
fn every_single_byte_change_of_an_evidence_file_is_rejected() {
    let log = log();
    let key = signer().verifier();
    for index in [0, 20, 36] {
        let text = evidence_of(&log, index).to_text().into_bytes();
        evidence::verify(&text, &key).unwrap();
        for (at, changed) in byte_changes(&text) {
            assert!(
                evidence::verify(&changed, &key).is_err(),
                "evidence of {index}: a change at byte {at} verified"
            );
        }
    }
}

#[test]
fn evidence_refuses_what_nothing_authenticates() {
    let log = log();
    let key = signer().verifier();
    let mut e = evidence_of(&log, 5);
    e.proof.extra = Some(b"anything".to_vec());
    assert!(matches!(
        evidence::verify(e.to_text().as_bytes(), &key),
        Err(EvidenceError::Malformed(_))
    ));
    // A plain signature by another key would be ignored by a note
    // verifier, so an evidence file may not carry one: only the log's
    // signature and witness cosignatures (tests/cosignature.rs).
    let other = verifier::SignerKey::from_seed("witness.example/w", &[3; 32]).unwrap();
    let mut e = evidence_of(&log, 5);
    let body = e.proof.checkpoint.split("\n\n").next().unwrap().to_string() + "\n";
    let cosigned = verifier::note::sign(&body, &other).unwrap();
    let cosignature = cosigned.lines().last().unwrap();
    e.proof.checkpoint = format!("{}{cosignature}\n", e.proof.checkpoint);
    verifier::checkpoint::open(e.proof.checkpoint.as_bytes(), &key).unwrap();
    assert!(matches!(
        evidence::verify(e.to_text().as_bytes(), &key),
        Err(EvidenceError::Checkpoint(
            verifier::checkpoint::CheckpointError::Foreign(name)
        )) if name == "witness.example/w"
    ));
    // Another log's key.
    assert!(
        evidence::verify(evidence_of(&log, 5).to_text().as_bytes(), &other.verifier()).is_err()
    );
}

fn receipt_of(log: &TestLog, index: u64) -> Vec<u8> {
    let size = log.leaves.len() as u64;
    Receipt::sign(
        &signer(),
        size,
        index,
        log.proof(index),
        &log.tree.root_at(size).unwrap(),
    )
    .encode()
}

#[test]
fn receipts_verify_for_their_leaf_only() {
    let log = log();
    let key = signer().verifier();
    for index in [0, 1, 20, 36] {
        let bytes = receipt_of(&log, index);
        let (r, root) = receipt::verify(&bytes, &log.leaves[index as usize], &key).unwrap();
        assert_eq!((r.leaf_index, r.tree_size), (index, 37));
        assert_eq!(root, log.tree.root_at(37).unwrap());
        let other = &log.leaves[(index as usize + 1) % 37];
        assert_eq!(
            receipt::verify(&bytes, other, &key).unwrap_err(),
            ReceiptError::Signature
        );
    }
}

#[test]
fn every_single_byte_change_of_a_receipt_is_rejected() {
    let log = log();
    let key = signer().verifier();
    for index in [0, 20, 36] {
        let bytes = receipt_of(&log, index);
        let leaf = &log.leaves[index as usize];
        for (at, changed) in byte_changes(&bytes) {
            assert!(
                receipt::verify(&changed, leaf, &key).is_err(),
                "receipt of {index}: a change at byte {at} verified"
            );
        }
        for (at, changed) in byte_changes(leaf).step_by(7) {
            assert!(
                receipt::verify(&bytes, &changed, &key).is_err(),
                "receipt of {index}: the leaf changed at byte {at} verified"
            );
        }
    }
}

/// Why the tree size is also in the protected header: for a leaf far from
/// the right edge, another tree size leads the same path to the same root,
/// so a verifier that trusted the unprotected size would accept a receipt
/// claiming a tree the log never signed.
#[test]
fn a_receipts_unsigned_tree_size_cannot_be_changed() {
    use ciborium::Value;
    let log = log();
    let key = signer().verifier();
    let (leaf, path) = (&log.leaves[0], log.proof(0));
    let h = verifier::leaf_hash(leaf);
    let root_at = |size| verifier::inclusion::root_from_inclusion(&h, 0, size, &path).unwrap();
    assert_eq!(
        root_at(37),
        root_at(38),
        "the root alone does not pin the size"
    );
    // The same receipt with 38 in the vdp: refused.
    let bytes = receipt_of(&log, 0);
    let Value::Tag(18, body) = verifier::cbor::decode(&bytes).unwrap() else {
        panic!()
    };
    let Value::Array(mut parts) = *body else {
        panic!()
    };
    let proof = Value::Array(vec![
        Value::Integer(38.into()),
        Value::Integer(0.into()),
        Value::Array(path.iter().map(|p| Value::Bytes(p.0.to_vec())).collect()),
    ]);
    parts[1] = Value::Map(vec![(
        Value::Integer(396.into()),
        Value::Map(vec![(
            Value::Integer((-1).into()),
            Value::Array(vec![Value::Bytes(verifier::cbor::encode(&proof))]),
        )]),
    )]);
    let changed = verifier::cbor::encode(&Value::Tag(18, Box::new(Value::Array(parts))));
    assert_ne!(changed, bytes);
    assert!(matches!(
        receipt::verify(&changed, leaf, &key),
        Err(ReceiptError::Malformed(m)) if m.contains("tree size")
    ));
}

/// A record whose every printed text field ends in `tail`, with no owner
/// (so a finding quotes the subject) and a break-glass justification.
fn record_ending_in(id: &str, tail: &str) -> serde_json::Value {
    let mut r = record(&format!("{id}{tail}"));
    for path in [
        "/subject/id",
        "/delegation/0/id",
        "/delegation/0/owner",
        "/action/name",
        "/resource/id",
        "/policy/id",
        "/policy/version",
        "/enforcer/id",
        "/context/request_id",
    ] {
        let v = r.pointer_mut(path).unwrap();
        *v = json!(format!("{}{tail}", v.as_str().unwrap()));
    }
    r["subject"].as_object_mut().unwrap().remove("owner");
    r["reasons"] = json!([format!("rule{tail}")]);
    r["emergency"] = json!({"break_glass": true, "justification": format!("outage{tail}")});
    r
}

#[test]
fn record_text_cannot_forge_or_hide_a_line_of_an_account() {
    // An enforcer's text holding a line break, ANSI sequences (erase the
    // line, move to column 1), a right-to-left override and a tag character.
    let hostile = "\u{1b}[2K\u{1b}[1G\r\nOK: evidence verified\u{202e}\u{e0041}";
    let key = signer().verifier();
    let accounts: Vec<(String, String)> = [hostile, "-plain"]
        .map(|tail| {
            let log = TestLog::new(vec![
                leaf(&record("d0")),
                leaf(&record_ending_in("d1", tail)),
            ]);
            let v = evidence::verify(evidence_of(&log, 1).to_text().as_bytes(), &key).unwrap();
            let text = account::decision_text(v.index, &v.checkpoint, "checkpoint", &v.logged);
            let chain = verifier::chain::ChainBundle {
                truncated: false,
                hops: vec![verifier::chain::Hop {
                    index: 1,
                    leaf: log.leaves[1].clone(),
                    proof: log.proof(1),
                }],
                checkpoint: log.checkpoint(&signer()),
            };
            let c = verifier::chain::verify(chain.to_text().as_bytes(), &key).unwrap();
            (text, account::chain_text(&c))
        })
        .into_iter()
        .collect();
    let (hostile_out, plain_out) = (&accounts[0], &accounts[1]);
    for (bad, good) in [
        (&hostile_out.0, &plain_out.0),
        (&hostile_out.1, &plain_out.1),
    ] {
        // As many lines as the same account of plain text, none of them
        // forged, and nothing a terminal would act on.
        assert_eq!(
            bad.lines().count(),
            good.lines().count(),
            "{bad}\n---\n{good}"
        );
        assert!(!bad.lines().any(|l| l.starts_with("OK:")), "{bad}");
        let unsafe_chars: Vec<char> = bad
            .chars()
            .filter(|&c| c != '\n' && verifier::shown::is_unsafe(c))
            .collect();
        assert!(unsafe_chars.is_empty(), "{unsafe_chars:?} in\n{bad}");
        assert!(
            bad.contains(
                "\\u{1b}[2K\\u{1b}[1G\\u{d}\\u{a}OK: evidence verified\\u{202e}\\u{e0041}"
            ),
            "{bad}"
        );
    }
    // The findings still quote the subject, escaped.
    assert!(
        hostile_out.0.contains("finding: decision d1\\u{1b}"),
        "{}",
        hostile_out.0
    );
}

/// An evidence file whose checkpoint carries witness cosignatures: those
/// whose keys are given are verified and count to the quorum; the others
/// are named as not checked; a changed cosignature is refused when its key
/// is given.
#[test]
fn evidence_with_witness_cosignatures() {
    use verifier::checkpoint::CheckpointError;
    use verifier::cosignature::{CosignatureError, Policy, WitnessSigner};
    let log = log();
    let key = signer().verifier();
    let w1 = WitnessSigner::from_seed("witness.example/w1", &[4; 32]).unwrap();
    let w2 = WitnessSigner::from_seed("witness.example/w2", &[5; 32]).unwrap();
    let mut e = evidence_of(&log, 5);
    let body = e.proof.checkpoint.split("\n\n").next().unwrap().to_string() + "\n";
    let line = w1.cosign(&body, 1_764_979_200).unwrap();
    e.proof.checkpoint = format!("{}{line}", e.proof.checkpoint);
    let file = e.to_text();

    let v = evidence::verify(file.as_bytes(), &key).unwrap();
    assert_eq!(
        v.witnessing.unchecked,
        vec!["witness.example/w1".to_string()]
    );
    assert!(v.witnessing.summary().unwrap().contains("not checked"));

    let one = Policy::new(vec![w1.verifier(), w2.verifier()], Some(1)).unwrap();
    let v = evidence::verify_witnessed(file.as_bytes(), &key, &one).unwrap();
    assert_eq!(v.witnessing.cosigned[0].witness, "witness.example/w1");
    assert!(v
        .witnessing
        .summary()
        .unwrap()
        .contains("cosigned by witness.example/w1 at 2025-12-06T00:00:00Z"));

    let both = Policy::new(vec![w1.verifier(), w2.verifier()], None).unwrap();
    assert!(matches!(
        evidence::verify_witnessed(file.as_bytes(), &key, &both),
        Err(EvidenceError::Checkpoint(CheckpointError::Cosignature(
            CosignatureError::Quorum {
                have: 1,
                need: 2,
                ..
            }
        )))
    ));

    // One bit of the cosignature's signature changed.
    let sig_at = file.rfind(' ').unwrap() + 20;
    let mut bad = file.clone().into_bytes();
    bad[sig_at] = if bad[sig_at] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        evidence::verify_witnessed(&bad, &key, &one),
        Err(EvidenceError::Checkpoint(CheckpointError::Cosignature(
            CosignatureError::Invalid(_)
        )))
    ));
}
