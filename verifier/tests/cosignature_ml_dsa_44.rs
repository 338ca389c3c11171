//! ML-DSA-44 witness cosignatures (C2SP tlog-cosignature, type 0x06)
//! against vectors made outside this crate: `tests/data/cosignature_ml_dsa_44.json`,
//! written by `tests/data/cosignature_ml_dsa_44.py` with OpenSSL's ML-DSA
//! (Python `cryptography`) from the spec's text and the shared note.json
//! checkpoint.

mod common;

use common::load;
use verifier::checkpoint::{Checkpoint, CheckpointError};
use verifier::cosignature::{
    self, mldsa, Algorithm, CosignatureError, Policy, WitnessKey, WitnessSigner,
};
use verifier::note::{KeyError, VerifierKey};
use verifier::witness::{add_checkpoint, AddCheckpoint};

/// The line this crate makes at the vector's time. ML-DSA signing here is
/// deterministic (FIPS 204 §3.4), so the bytes are fixed; the Python script
/// above, given this line, verified it with OpenSSL.
const OUR_LINE: &str = include_str!("data/cosignature_ml_dsa_44.line");

struct Vector {
    name: String,
    seed: [u8; 32],
    vkey: String,
    skey: String,
    time: u64,
    message: Vec<u8>,
    line: String,
    line_no_time: String,
}

fn vector() -> Vector {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/cosignature_ml_dsa_44.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    Vector {
        name: s("name"),
        seed: hex::decode(s("seed")).unwrap().try_into().unwrap(),
        vkey: s("vkey"),
        skey: s("skey"),
        time: v["time"].as_u64().unwrap(),
        message: hex::decode(s("message")).unwrap(),
        line: s("line"),
        line_no_time: s("line_no_time"),
    }
}

fn signed_checkpoint() -> (String, String, VerifierKey) {
    let v = load("note.json");
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    let key = VerifierKey::parse(&s("verifier_key")).unwrap();
    (s("checkpoint_body"), s("signed_checkpoint"), key)
}

fn witness(v: &Vector) -> WitnessSigner {
    WitnessSigner::from_seed_with(Algorithm::MlDsa44, &v.name, &v.seed).unwrap()
}

#[test]
fn keys_and_message_match_openssl() {
    let v = vector();
    let w = witness(&v);
    assert_eq!(w.verifier().to_string(), v.vkey);
    assert_eq!(w.to_secret_string(), v.skey);
    assert_eq!(
        WitnessSigner::parse(&v.skey).unwrap().verifier(),
        w.verifier()
    );
    let key = WitnessKey::parse(&v.vkey).unwrap();
    assert_eq!(key, w.verifier());
    assert_eq!(key.algorithm(), Algorithm::MlDsa44);
    assert_eq!(key.to_string(), v.vkey);

    let (body, _, _) = signed_checkpoint();
    let cp = Checkpoint::parse_body(&body).unwrap();
    let m = mldsa::cosigned_message(&v.name, v.time, &cp.origin, 0, cp.size, &cp.root).unwrap();
    assert_eq!(m, v.message);
    assert_eq!(&m[..12], b"subtree/v1\n\0");
}

#[test]
fn openssl_cosignatures_verify() {
    let v = vector();
    let (_, signed, log) = signed_checkpoint();
    let key = WitnessKey::parse(&v.vkey).unwrap();
    for (line, time) in [(&v.line, v.time), (&v.line_no_time, 0)] {
        let cosigned = format!("{signed}{line}");
        let found = cosignature::verify(cosigned.as_bytes(), std::slice::from_ref(&key)).unwrap();
        assert_eq!(
            (found[0].witness.as_str(), found[0].time),
            (v.name.as_str(), time)
        );
        let policy = Policy::new(vec![key.clone()], None).unwrap();
        let (_, w) = cosignature::open_witnessed(cosigned.as_bytes(), &log, &policy).unwrap();
        let summary = w.summary().unwrap();
        if time == 0 {
            assert!(summary.contains("pq1 (no time stated)"), "{summary}");
        } else {
            assert!(summary.contains("pq1 at 2025-12-06T00:00:00Z"), "{summary}");
        }
    }
}

#[test]
fn our_cosignature_is_deterministic_and_was_checked_by_openssl() {
    let v = vector();
    let (body, signed, _) = signed_checkpoint();
    let line = witness(&v).cosign(&body, v.time).unwrap();
    assert_eq!(line, OUR_LINE);
    let cosigned = format!("{signed}{line}");
    assert_eq!(
        cosignature::verify(cosigned.as_bytes(), &[witness(&v).verifier()]).unwrap()[0].time,
        v.time
    );
}

#[test]
fn what_the_signature_covers() {
    let v = vector();
    let (body, signed, _) = signed_checkpoint();
    let key = WitnessKey::parse(&v.vkey).unwrap();
    let check = |note: &str| cosignature::verify(note.as_bytes(), std::slice::from_ref(&key));
    let cosigned = format!("{signed}{}", v.line);
    assert!(check(&cosigned).is_ok());

    // Origin, size and root are covered: change any and it fails.
    let cp = Checkpoint::parse_body(&body).unwrap();
    let other_size = cosigned.replacen(
        &format!("\n{}\n", cp.size),
        &format!("\n{}\n", cp.size + 1),
        1,
    );
    let mut root = cp.root;
    root.0[0] ^= 1;
    let other_root = cosigned.replacen(&cp.root.to_base64(), &root.to_base64(), 1);
    for bad in [other_size, other_root] {
        assert_eq!(check(&bad), Err(CosignatureError::Invalid(v.name.clone())));
    }
    // So is the timestamp, and every byte of the signature.
    let raw_of = |line: &str| {
        verifier::note::parse_signature_line(line.trim_end())
            .unwrap()
            .signature
    };
    let raw = raw_of(&v.line);
    assert_eq!(raw.len(), 8 + mldsa::SIGNATURE_LEN);
    for i in [7, 8, 100, raw.len() - 1] {
        let mut b = raw.clone();
        b[i] ^= 0x40;
        let line = relined(&v.name, key.id(), &b);
        assert!(
            check(&format!("{signed}{line}")).is_err(),
            "byte {i} flipped"
        );
    }
    // A signature of the other length (an Ed25519 cosignature's) is malformed.
    let line = relined(&v.name, key.id(), &raw[..72]);
    assert_eq!(
        check(&format!("{signed}{line}")),
        Err(CosignatureError::Malformed(v.name.clone()))
    );
    // Extension lines are not signed (the spec says so): adding one keeps
    // the cosignature valid; the log's own signature is what covers them.
    let extended = cosigned.replacen("\n\n", "\nextension line\n\n", 1);
    assert!(check(&extended).is_ok());
}

fn relined(name: &str, id: u32, sig: &[u8]) -> String {
    use base64::Engine;
    let mut raw = id.to_be_bytes().to_vec();
    raw.extend_from_slice(sig);
    format!(
        "\u{2014} {name} {}\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[test]
fn ed25519_and_ml_dsa_witnesses_in_one_policy() {
    let v = vector();
    let (body, signed, log) = signed_checkpoint();
    let ed = WitnessSigner::from_seed("witness.example.org/w2", &[7; 32]).unwrap();
    let both = format!(
        "{signed}{}{}",
        v.line,
        ed.cosign(&body, v.time + 1).unwrap()
    );
    let keys = vec![WitnessKey::parse(&v.vkey).unwrap(), ed.verifier()];
    let policy = Policy::new(keys.clone(), None).unwrap();
    assert_eq!(policy.check(both.as_bytes()).unwrap().len(), 2);
    // Only the Ed25519 witness's key given: the ML-DSA line is named as
    // not checked, and the file is still accepted (its length is a
    // cosignature's).
    let one = Policy::new(vec![ed.verifier()], None).unwrap();
    let (_, w) = cosignature::open_witnessed(both.as_bytes(), &log, &one).unwrap();
    assert_eq!(w.unchecked, vec![v.name.clone()]);
    // A line of neither length by an unknown name is foreign.
    let odd = format!("{signed}{}", relined("someone.example/x", 1, &[0; 100]));
    assert!(matches!(
        cosignature::open_witnessed(odd.as_bytes(), &log, &Policy::default()),
        Err(CheckpointError::Foreign(name)) if name == "someone.example/x"
    ));
}

#[test]
fn bad_keys_are_refused() {
    let v = vector();
    let (name, rest) = v.vkey.split_once('+').unwrap();
    let (id, b64key) = rest.split_once('+').unwrap();
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = engine.decode(b64key).unwrap();
    // One byte short.
    let short = format!("{name}+{id}+{}", engine.encode(&raw[..raw.len() - 1]));
    assert_eq!(WitnessKey::parse(&short), Err(KeyError::InvalidKey));
    // Another name: the key ID no longer matches.
    assert!(matches!(
        WitnessKey::parse(&v.vkey.replacen(name, "witness.example.org/pq2", 1)),
        Err(KeyError::IdMismatch { .. })
    ));
    // A type byte of neither kind.
    let mut other = raw.clone();
    other[0] = 0x05;
    assert!(matches!(
        WitnessKey::parse(&format!("{name}+{id}+{}", engine.encode(&other))),
        Err(KeyError::Algorithm { found: 5, .. })
    ));
    // A name too long for cosigned_message (over 255 bytes).
    let long = "w".repeat(256);
    assert!(matches!(
        WitnessSigner::from_seed_with(Algorithm::MlDsa44, &long, &v.seed),
        Err(KeyError::InvalidName(_))
    ));
    // A signer key whose seed is not 32 bytes.
    let skey = v.skey.rsplit_once('+').unwrap().0;
    let bad = format!("{skey}+{}", engine.encode([0x06; 20]));
    assert_eq!(
        WitnessSigner::parse(&bad).unwrap_err(),
        KeyError::InvalidKey
    );
    // The message refuses what the spec forbids.
    let h = verifier::Hash([0; 32]);
    assert!(mldsa::cosigned_message("w", 1, "o", 1, 2, &h).is_none());
    assert!(mldsa::cosigned_message("", 0, "o", 0, 2, &h).is_none());
    assert!(mldsa::cosigned_message("w", 0, "o", 1, 2, &h).is_some());
}

#[test]
fn an_ml_dsa_witness_cosigns_through_add_checkpoint() {
    let v = vector();
    let (_, signed, log) = signed_checkpoint();
    let w = witness(&v);
    let req = AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: signed.clone(),
    };
    let (latest, line) = add_checkpoint(&req, &[log], None, &w, v.time).unwrap();
    assert_eq!(line, OUR_LINE);
    assert_eq!(
        latest.size,
        Checkpoint::parse_body(load("note.json")["checkpoint_body"].as_str().unwrap())
            .unwrap()
            .size
    );
}
