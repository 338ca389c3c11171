//! Enforcer signatures (specs/signed-record.md): a known answer computed
//! outside this crate, the leaf envelope with a signature, and every way a
//! signature can be wrong.

use ciborium::Value;
use verifier::cbor;
use verifier::enforcer_signature::{EnforcerKeys, EnforcerSignature, SignatureError, Signed};
use verifier::envelope::{encode_signed_parts, received_at, Envelope, EnvelopeError, LeafHead};
use verifier::{SignerKey, VerifierKey};

/// Computed from RFC 9052 §4.2/§4.4 and specs/signed-record.md alone, in
/// Python with the `cryptography` package's Ed25519 and CBOR written by
/// hand (not this crate's code): seed bytes 0x40..=0x5f, enforcer
/// `gw-eu-1`, the record `{"decision": "allow", "decision_id": "d-1"}`.
const SEED: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = 0x40 + i as u8;
        i += 1;
    }
    s
};
const VKEY: &str = "gw-eu-1+57bab8ae+ASVDuS/xCVURR2rcg2nbbdyTNmWhGXjdoUBO4QZsqVWd";
const PAYLOAD: &str = "a2686465636973696f6e65616c6c6f776b6465636973696f6e5f696463642d31";
const ATTACHED: &str = "d2845837a3012703782b6170706c69636174696f6e2f766e642e6465636973696f6e2d6c65646765722e7265636f72642b63626f72044457bab8aea05820a2686465636973696f6e65616c6c6f776b6465636973696f6e5f696463642d315840547a72e12d2919b6699bcac7f138c021352cc85f07523fe1cbce0f5ab12baa3c41aa133c0dfc18e81d4e652c78b51c94a124db22315df3f4bbf7f1ae183bd109";
const DETACHED: &str = "d2845837a3012703782b6170706c69636174696f6e2f766e642e6465636973696f6e2d6c65646765722e7265636f72642b63626f72044457bab8aea0f65840547a72e12d2919b6699bcac7f138c021352cc85f07523fe1cbce0f5ab12baa3c41aa133c0dfc18e81d4e652c78b51c94a124db22315df3f4bbf7f1ae183bd109";

fn signer() -> SignerKey {
    SignerKey::from_seed("gw-eu-1", &SEED).unwrap()
}

fn payload() -> Vec<u8> {
    hex::decode(PAYLOAD).unwrap()
}

fn keys() -> EnforcerKeys {
    EnforcerKeys::new(vec![VerifierKey::parse(VKEY).unwrap()])
}

#[test]
fn known_answer() {
    assert_eq!(signer().verifier().to_string(), VKEY);
    let sig = EnforcerSignature::sign(&signer(), &payload());
    assert_eq!(hex::encode(sig.encode_attached(&payload())), ATTACHED);
    assert_eq!(hex::encode(sig.encode_detached()), DETACHED);

    let attached = cbor::decode(&hex::decode(ATTACHED).unwrap()).unwrap();
    let (read, carried) = EnforcerSignature::decode(&attached).unwrap();
    assert_eq!(read, sig);
    assert_eq!(carried, Some(payload().as_slice()));
    let detached = cbor::decode(&hex::decode(DETACHED).unwrap()).unwrap();
    assert_eq!(EnforcerSignature::from_leaf_value(&detached).unwrap(), sig);
    assert_eq!(
        keys().check("gw-eu-1", &sig, &payload()).unwrap().id(),
        0x57bab8ae
    );
}

#[test]
fn every_wrong_signature_is_refused() {
    let sig = EnforcerSignature::sign(&signer(), &payload());
    let keys = keys();
    // Another record.
    let mut other = payload();
    *other.last_mut().unwrap() = b'2';
    assert!(matches!(
        keys.check("gw-eu-1", &sig, &other),
        Err(SignatureError::Invalid { .. })
    ));
    // A flipped signature bit.
    let mut flipped = sig.clone();
    flipped.signature[10] ^= 1;
    assert!(matches!(
        keys.check("gw-eu-1", &flipped, &payload()),
        Err(SignatureError::Invalid { .. })
    ));
    // Another enforcer's name on the record: no key of it.
    assert!(matches!(
        keys.check("gw-us-1", &sig, &payload()),
        Err(SignatureError::UnknownEnforcer { .. })
    ));
    // Another key of the same enforcer name.
    let impostor = SignerKey::from_seed("gw-eu-1", &[9; 32]).unwrap();
    let forged = EnforcerSignature::sign(&impostor, &payload());
    assert!(matches!(
        keys.check("gw-eu-1", &forged, &payload()),
        Err(SignatureError::UnknownKey { .. })
    ));
    // A key of another enforcer with a matching ID cannot exist by name
    // (the ID hashes the name): the same seed under another name differs.
    let renamed = SignerKey::from_seed("gw-us-1", &SEED).unwrap();
    assert_ne!(renamed.verifier().id(), signer().verifier().id());
}

#[test]
fn malformed_signatures_are_refused() {
    let attached = hex::decode(ATTACHED).unwrap();
    let good = cbor::decode(&attached).unwrap();
    let Value::Tag(18, inner) = &good else {
        panic!()
    };
    let Value::Array(parts) = inner.as_ref() else {
        panic!()
    };
    let with = |i: usize, v: Value| {
        let mut p = parts.clone();
        p[i] = v;
        Value::Tag(18, Box::new(Value::Array(p)))
    };
    let bad = [
        Value::Array(parts.clone()),                     // untagged
        Value::Tag(17, inner.clone()),                   // COSE_Mac0's tag
        with(0, Value::Bytes(vec![0xa0])),               // empty protected header
        with(0, Value::Bytes(b"\xa1\x01\x26".to_vec())), // ES256, no kid
        with(3, Value::Bytes(vec![0; 63])),              // short signature
        with(2, Value::Text("record".into())),           // payload of the wrong type
        with(1, Value::Array(vec![])),                   // unprotected not a map
    ];
    for v in bad {
        assert!(
            matches!(
                EnforcerSignature::decode(&v),
                Err(SignatureError::Malformed(_))
            ),
            "{v:?}"
        );
    }
    // In a leaf: detached, with an empty unprotected header.
    assert!(EnforcerSignature::from_leaf_value(&good).is_err());
    let noisy = with(2, Value::Null);
    let noisy = match noisy {
        Value::Tag(t, a) => match *a {
            Value::Array(mut p) => {
                p[1] = Value::Map(vec![(Value::Integer(4.into()), Value::Bytes(vec![1]))]);
                Value::Tag(t, Box::new(Value::Array(p)))
            }
            _ => unreachable!(),
        },
        _ => unreachable!(),
    };
    assert!(EnforcerSignature::from_leaf_value(&noisy).is_err());
}

#[test]
fn a_signed_leaf_reads_back_and_keeps_its_layout() {
    let sig = EnforcerSignature::sign(&signer(), &payload());
    let at = "2026-12-06T03:00:00.25Z";
    let leaf = encode_signed_parts(&payload(), at, "relay-1", Some(&sig));
    // The same bytes as the generic deterministic encoding of the map.
    let generic = cbor::encode(&Value::Map(vec![
        (Value::Text("v".into()), Value::Integer(1.into())),
        (
            Value::Text("record".into()),
            cbor::decode(&payload()).unwrap(),
        ),
        (
            Value::Text("received_at".into()),
            Value::Tag(0, Box::new(Value::Text(at.into()))),
        ),
        (
            Value::Text("submitted_by".into()),
            Value::Text("relay-1".into()),
        ),
        (
            Value::Text("enforcer_signature".into()),
            cbor::decode(&hex::decode(DETACHED).unwrap()).unwrap(),
        ),
    ]));
    assert_eq!(leaf, generic);
    assert!(cbor::is_deterministic(&leaf));
    // What the check writes ahead of the clock, finished, is the same.
    let head = LeafHead::signed(&payload(), &sig);
    assert!(head.is_signed());
    let finished = head.finish(at, "relay-1");
    assert_eq!(finished.bytes(), leaf.as_slice());
    assert_eq!(received_at(&leaf), Some(at));
    let env = Envelope::decode(&leaf).unwrap();
    assert_eq!(env.enforcer_signature, Some(sig.clone()));
    assert_eq!(env.encode(), leaf);

    // A logged decision carries it, and checks it when given the key.
    let unsigned = encode_signed_parts(&payload(), at, "relay-1", None);
    assert_eq!(
        Envelope::decode(&unsigned).unwrap().enforcer_signature,
        None
    );
    assert_eq!(leaf.len(), unsigned.len() + head_len(&sig));

    // A fifth entry that is not the signature is refused.
    let mut other = generic_with_fifth("enforcer_signaturf");
    assert!(Envelope::decode(&other).is_err());
    other = generic_with_fifth("enforcer_signature");
    assert!(matches!(
        Envelope::decode(&other),
        Err(EnvelopeError::Signature(_))
    ));
}

/// The bytes a signature adds to a leaf.
fn head_len(sig: &EnforcerSignature) -> usize {
    1 + "enforcer_signature".len() + sig.encode_detached().len()
}

/// An unsigned leaf with a fifth entry `key: "x"`.
fn generic_with_fifth(key: &str) -> Vec<u8> {
    cbor::encode(&Value::Map(vec![
        (Value::Text("v".into()), Value::Integer(1.into())),
        (
            Value::Text("record".into()),
            cbor::decode(&payload()).unwrap(),
        ),
        (
            Value::Text("received_at".into()),
            Value::Tag(0, Box::new(Value::Text("2026-12-06T03:00:00Z".into()))),
        ),
        (Value::Text("submitted_by".into()), Value::Text("gw".into())),
        (Value::Text(key.into()), Value::Text("x".into())),
    ]))
}

#[test]
fn key_files_read_one_key_a_line() {
    let other = SignerKey::from_seed("gw-us-1", &[3; 32])
        .unwrap()
        .verifier();
    let text = format!("# enforcers\n{VKEY}\n\n{other}  # the US gateway\n{VKEY}\n");
    let keys = EnforcerKeys::parse(&text).unwrap();
    assert_eq!(keys.keys().len(), 2);
    assert!(keys.signs("gw-eu-1") && keys.signs("gw-us-1") && !keys.signs("gw-1"));
    let err = EnforcerKeys::parse("gw+00000000+AAAA\n").unwrap_err();
    assert_eq!(err.line, 1);
    assert_eq!(
        Signed::Verified { key_id: 0x57bab8ae }.describe("gw-eu-1"),
        Some("signed by its enforcer gw-eu-1, key 57bab8ae: verified".into())
    );
    assert_eq!(Signed::Unsigned.describe("gw-eu-1"), None);
}
