//! Deterministic CBOR and the leaf envelope.

use ciborium::Value;
use verifier::cbor;
use verifier::envelope::{encode_parts, Envelope, EnvelopeError};

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn maps_are_sorted_by_encoded_key_and_ints_are_shortest() {
    let v = Value::Map(vec![
        (t("bb"), Value::Integer(500.into())),
        (t("a"), Value::Integer(1.into())),
        (
            t("c"),
            Value::Array(vec![Value::Integer((-1).into()), Value::Float(1.5)]),
        ),
    ]);
    // RFC 8949 §4.2.1: "a" (0x61..) < "c" (0x61..) < "bb" (0x62..).
    assert_eq!(
        hex::encode(cbor::encode(&v)),
        "a361610161638220f93e00626262190 1f4".replace(' ', "")
    );
    assert!(cbor::is_deterministic(&cbor::encode(&v)));
    // Non-shortest integer and unsorted keys are not deterministic.
    assert!(!cbor::is_deterministic(&[0x18, 0x01]));
    assert!(!cbor::is_deterministic(
        &hex::decode("a2616201616101").unwrap()
    ));
    assert_eq!(
        cbor::decode(&hex::decode("a2616101616102").unwrap()),
        Err(cbor::CborError::DuplicateKey)
    );
    assert!(matches!(
        cbor::decode(&[0x01, 0x02]),
        Err(cbor::CborError::Trailing(1))
    ));
}

#[test]
fn envelope_parts_equal_the_generic_encoding_and_round_trip() {
    let record = Value::Map(vec![
        (t("decision_id"), t("d-1")),
        (t("decision"), t("allow")),
    ]);
    let env = Envelope {
        record: record.clone(),
        received_at: "2026-11-23T07:00:00.5Z".into(),
        submitted_by: "gw-1".into(),
        enforcer_signature: None,
    };
    let generic = cbor::encode(&Value::Map(vec![
        (t("submitted_by"), t("gw-1")),
        (
            t("received_at"),
            Value::Tag(0, Box::new(t("2026-11-23T07:00:00.5Z"))),
        ),
        (t("record"), record.clone()),
        (t("v"), Value::Integer(1.into())),
    ]));
    assert_eq!(env.encode(), generic);
    assert_eq!(
        encode_parts(&cbor::encode(&record), &env.received_at, &env.submitted_by),
        generic
    );
    let decoded = Envelope::decode(&generic).unwrap();
    assert_eq!(cbor::encode(&decoded.record), cbor::encode(&record));
    assert_eq!(
        (decoded.received_at.as_str(), decoded.submitted_by.as_str()),
        ("2026-11-23T07:00:00.5Z", "gw-1")
    );
    assert_eq!(decoded.encode(), generic);
    // The same content in a non-deterministic encoding is not a valid leaf.
    let mut loose = vec![0xa4];
    loose.extend_from_slice(&cbor::encode(&t("v")));
    loose.extend_from_slice(&[0x18, 0x01]);
    loose.extend_from_slice(&generic[4..]);
    assert!(Envelope::decode(&loose).is_err());
    let v2 = cbor::encode(&Value::Map(vec![(t("v"), Value::Integer(2.into()))]));
    assert_eq!(Envelope::decode(&v2), Err(EnvelopeError::Version(2)));
}

#[test]
fn sequences_decode_as_they_arrive() {
    use verifier::cbor::{decode_prefix, Prefix};
    let a = cbor::encode(&Value::Map(vec![(t("k"), t("a long enough value"))]));
    let b = cbor::encode(&Value::Integer(7.into()));
    let stream = [a.clone(), b.clone()].concat();
    for cut in 0..a.len() {
        assert_eq!(
            decode_prefix(&stream[..cut]).unwrap(),
            Prefix::Incomplete,
            "cut at {cut}"
        );
    }
    let Prefix::Item(_, used) = decode_prefix(&stream).unwrap() else {
        panic!("first item")
    };
    assert_eq!(used, a.len());
    assert_eq!(
        decode_prefix(&stream[used..]).unwrap(),
        Prefix::Item(Value::Integer(7.into()), 1)
    );
    assert!(decode_prefix(&[0xff]).is_err());
}

proptest::proptest! {
    /// A leaf finished from its head is byte for byte the envelope, and its
    /// hash is the RFC 9162 leaf hash of those bytes, whatever the lengths
    /// (text heads change size at 24 and 256 bytes).
    #[test]
    fn a_finished_leaf_head_is_the_envelope_and_its_leaf_hash(
        id in "[a-z0-9-]{0,300}",
        pad in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        received_at in "[0-9TZ:.-]{0,40}",
        submitted_by in "[a-z.-]{0,300}",
    ) {
        let record = cbor::encode(&Value::Map(vec![
            (t("decision_id"), t(&id)),
            (t("pad"), Value::Bytes(pad)),
        ]));
        let head = verifier::envelope::LeafHead::new(&record);
        proptest::prop_assert_eq!(head.record_cbor(), &record[..]);
        let leaf = head.finish(&received_at, &submitted_by);
        let expected = encode_parts(&record, &received_at, &submitted_by);
        proptest::prop_assert_eq!(leaf.bytes(), &expected[..]);
        proptest::prop_assert_eq!(leaf.leaf_hash(), verifier::leaf_hash(&expected));
        let decoded = Envelope::decode(&expected).unwrap();
        proptest::prop_assert_eq!(verifier::envelope::received_at(&expected), Some(received_at.as_str()));
        proptest::prop_assert_eq!(decoded.received_at, received_at);
        proptest::prop_assert_eq!(decoded.submitted_by, submitted_by);
    }

    /// Reading `received_at` off the bytes agrees with decoding the leaf,
    /// for every changed byte that leaves a valid envelope.
    #[test]
    fn received_at_off_the_bytes_agrees_with_decoding(
        id in "[a-z0-9-]{0,40}",
        at in proptest::prelude::any::<proptest::sample::Index>(),
        x in 1u8..=255,
    ) {
        let record = cbor::encode(&Value::Map(vec![(t("decision_id"), t(&id))]));
        let mut leaf = encode_parts(&record, "2026-11-23T07:00:00.5Z", "gw-1");
        let i = at.index(leaf.len());
        leaf[i] ^= x;
        let fast = verifier::envelope::received_at(&leaf);
        if let Ok(env) = Envelope::decode(&leaf) {
            proptest::prop_assert_eq!(fast, Some(env.received_at.as_str()));
        }
    }

    /// Reading `decision_id` off the bytes agrees with decoding the leaf,
    /// wherever the id sits among the record's fields and for every changed
    /// byte that leaves a valid envelope whose record has a text id.
    #[test]
    fn decision_id_off_the_bytes_agrees_with_decoding(
        id in "[a-z0-9-]{0,300}",
        before in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..4),
        after in proptest::collection::vec(("[a-z_]{12,16}", "[a-z]{0,30}"), 0..3),
        at in proptest::prelude::any::<proptest::sample::Index>(),
        x in 0u8..=255,
    ) {
        let mut fields: Vec<(Value, Value)> = before
            .into_iter()
            .map(|(k, v)| (t(&k), Value::Bytes(v)))
            .collect();
        fields.push((t("decision_id"), t(&id)));
        fields.extend(after.into_iter().map(|(k, v)| (t(&k), t(&v))));
        let record = cbor::encode(&Value::Map(fields));
        let mut leaf = encode_parts(&record, "2026-11-23T07:00:00.5Z", "gw-1");
        if x == 0 {
            proptest::prop_assert_eq!(verifier::envelope::decision_id(&leaf), Some(id.as_str()));
        }
        let i = at.index(leaf.len());
        leaf[i] ^= x;
        let fast = verifier::envelope::decision_id(&leaf);
        if let Ok(env) = Envelope::decode(&leaf) {
            let decoded = match &env.record {
                Value::Map(m) => m.iter().find_map(|(k, v)| match (k, v) {
                    (Value::Text(k), Value::Text(v)) if k == "decision_id" => Some(v.as_str()),
                    _ => None,
                }),
                _ => None,
            };
            if decoded.is_some() {
                proptest::prop_assert_eq!(fast, decoded);
            }
        }
    }
}
