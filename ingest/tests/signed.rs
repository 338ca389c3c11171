//! Records signed by their enforcer (specs/signed-record.md): what the
//! body checks take, what they refuse and why, and the leaf they make.

mod common;

use ciborium::Value as Cbor;
use ingest::input::{next_item, parse_body, Checked, Format, Sender};
use verifier::enforcer_signature::{EnforcerKeys, EnforcerSignature};
use verifier::envelope::Envelope;
use verifier::SignerKey;

fn signer() -> SignerKey {
    SignerKey::from_seed("gw-eu-1", &[5; 32]).unwrap()
}

fn keys() -> EnforcerKeys {
    EnforcerKeys::new(vec![signer().verifier()])
}

fn encode(v: &Cbor) -> Vec<u8> {
    verifier::cbor::encode(v)
}

/// The canonical bytes of the common record `id`.
fn canonical(id: &str) -> Vec<u8> {
    ingest::check(&common::cbor_of(&common::record(id)))
        .unwrap()
        .cbor()
        .to_vec()
}

/// Record `id` signed by `signer` over `payload` (its canonical bytes
/// unless given).
fn signed_by(signer: &SignerKey, payload: &[u8]) -> Vec<u8> {
    EnforcerSignature::sign(signer, payload).encode_attached(payload)
}

fn reason(c: &Checked) -> String {
    match c {
        Ok(_) => "accepted".into(),
        Err(r) => r.reason.clone(),
    }
}

fn one(body: &[u8], sender: &Sender<'_>) -> Checked {
    let mut all = parse_body(Format::Cbor, body, sender).unwrap();
    assert_eq!(all.len(), 1);
    all.pop().unwrap()
}

#[test]
fn a_signed_record_is_taken_and_its_leaf_keeps_the_signature() {
    let keys = keys();
    let sender = Sender::relay("relay-1").with_signers(&keys);
    let record = canonical("d-1");
    let checked = one(&signed_by(&signer(), &record), &sender).unwrap();
    assert_eq!(checked.cbor(), record.as_slice());
    assert!(checked.leaf.is_signed());
    let unsigned = ingest::check(&common::cbor_of(&common::record("d-1"))).unwrap();
    assert_eq!(
        checked.digest, unsigned.digest,
        "a retry signed or not is the same record"
    );
    let leaf = checked
        .leaf
        .finish("2026-12-06T03:00:00Z", "relay-1")
        .bytes()
        .to_vec();
    let env = Envelope::decode(&leaf).unwrap();
    let sig = env.enforcer_signature.unwrap();
    keys.check("gw-eu-1", &sig, &record).unwrap();
    let mut logged = verifier::decision::LoggedDecision::from_leaf(&leaf).unwrap();
    assert_eq!(
        logged.check_signature(&keys).unwrap(),
        verifier::enforcer_signature::Signed::Verified {
            key_id: signer().verifier().id()
        }
    );
}

#[test]
fn unsigned_records_of_an_enforcer_with_a_key_are_refused_by_every_path() {
    let keys = keys();
    let sender = Sender::relay("relay-1").with_signers(&keys);
    let json = common::record("d-2").to_string();
    let cbor = encode(&common::cbor_of(&common::record("d-2")));
    for (format, body) in [
        (Format::Json, json.as_bytes()),
        (Format::Cbor, cbor.as_slice()),
        (Format::CborSeq, cbor.as_slice()),
    ] {
        let all = parse_body(format, body, &sender).unwrap();
        assert!(
            reason(&all[0]).contains("its records must come signed"),
            "{format:?}: {}",
            reason(&all[0])
        );
    }
    let streamed = next_item(&cbor, 0, &sender).unwrap().unwrap().1;
    assert!(reason(&streamed).contains("must come signed"));
    // Another enforcer's records are taken unsigned.
    let mut other = common::record("d-3");
    other["enforcer"]["id"] = "gw-us-1".into();
    assert!(one(&encode(&common::cbor_of(&other)), &sender).is_ok());
    // Without keys, unsigned records of gw-eu-1 are taken.
    assert!(one(&cbor, &Sender::relay("relay-1")).is_ok());
}

#[test]
fn wrong_signatures_are_refused_each_with_its_reason() {
    let keys = keys();
    let sender = Sender::relay("relay-1").with_signers(&keys);
    let record = canonical("d-4");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Another key under the enforcer's name.
        (
            signed_by(&SignerKey::from_seed("gw-eu-1", &[6; 32]).unwrap(), &record),
            "which is not a key of enforcer",
        ),
        // A signature over other bytes than the payload.
        (
            {
                let sig = EnforcerSignature::sign(&signer(), &canonical("d-5"));
                sig.encode_attached(&record)
            },
            "does not verify",
        ),
        // The record in a non-canonical spelling (JSON key order, as CBOR).
        (
            {
                let loose = encode(&common::cbor_of(&common::record("d-4")));
                assert_ne!(loose, record);
                signed_by(&signer(), &loose)
            },
            "not the record's canonical form",
        ),
        // A payload that is not a valid record.
        (
            {
                let mut bad = common::record("d-4");
                bad["decision"] = "maybe".into();
                signed_by(&signer(), &encode(&common::cbor_of(&bad)))
            },
            "decision",
        ),
        // Detached payload.
        (
            EnforcerSignature::sign(&signer(), &record).encode_detached(),
            "payload is detached",
        ),
    ];
    for (body, expected) in cases {
        let got = reason(&one(&body, &sender));
        assert!(got.contains(expected), "{expected:?} not in {got:?}");
    }
    // Signed, but the ledger has no key of the enforcer.
    let got = reason(&one(
        &signed_by(&signer(), &record),
        &Sender::relay("relay-1"),
    ));
    assert!(got.contains("no key is registered for enforcer"), "{got}");
}

#[test]
fn signed_and_unsigned_records_mix_in_one_body() {
    let keys = keys();
    let sender = Sender::relay("relay-1").with_signers(&keys);
    let signed = verifier::cbor::decode(&signed_by(&signer(), &canonical("d-6"))).unwrap();
    let mut other = common::record("d-7");
    other["enforcer"]["id"] = "gw-us-1".into();
    let unsigned_gw_eu = common::cbor_of(&common::record("d-8"));
    let body = encode(&Cbor::Array(vec![
        signed.clone(),
        common::cbor_of(&other),
        unsigned_gw_eu,
    ]));
    let all = parse_body(Format::Cbor, &body, &sender).unwrap();
    assert!(all[0].as_ref().unwrap().leaf.is_signed());
    assert!(!all[1].as_ref().unwrap().leaf.is_signed());
    assert!(reason(&all[2]).contains("must come signed"));

    // A CBOR sequence, read as it arrives.
    let seq = [encode(&signed), encode(&common::cbor_of(&other))].concat();
    let (n, first) = next_item(&seq, 0, &sender).unwrap().unwrap();
    assert!(first.unwrap().leaf.is_signed());
    let (_, second) = next_item(&seq[n..], 1, &sender).unwrap().unwrap();
    assert!(second.is_ok());

    // A writer token of another enforcer may not send gw-eu-1's signed records.
    let writer = Sender {
        enforcer: Some("gw-us-1"),
        ..Sender::relay("gw-us-1").with_signers(&keys)
    };
    let refused = one(&encode(&signed), &writer).unwrap_err();
    assert!(refused.forbidden, "{}", refused.reason);
}
