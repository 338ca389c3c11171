//! The fast path of record checking against the reference: for any body,
//! in any of the three formats, `parse_body` (fast path, falling back to
//! the reference) answers exactly as `parse_reference` does: the same
//! records with the same canonical bytes, digests and index terms, the
//! same rejections, the same body errors. And the fast path does take the
//! records it should: every valid record of the generator, in every
//! format. A stored leaf read in place (`Facts::of_leaf_in_place`, what
//! rebuilding the indexes reads every leaf with) gives the facts the
//! reference gives, or leaves the leaf to it.

mod common;

use ciborium::Value as Cbor;
use common::{set, PATHS};
use ingest::index::Facts;
use ingest::input::{next_item, parse_body, parse_fast, parse_reference, Format, Sender};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The common test record, with every optional part: an emergency and
/// free-form extensions with a float as well.
fn base() -> Value {
    let mut r = common::record("d-1");
    r["emergency"] = json!({"break_glass": true, "justification": "outage", "ticket": "INC-1"});
    r["extensions"] = json!({"opa": {"labels": {"id": "x"}, "n": 2.5}});
    r
}

/// Values a field may be set to: right, wrong and odd.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        // Edge values first and weighted up: each breaks some rule.
        3 => Just(json!("")),
        2 => Just(Value::Null),
        2 => Just(json!([])),
        2 => Just(json!({})),
        2 => Just(json!(["", "x"])),
        1 => Just(json!(-1)),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
        1 => (-1e6f64..1e6).prop_map(|f| json!(f)),
        1 => Just(json!("x".repeat(1025))),
        1 => Just(json!("x".repeat(257))),
        1 => Just(json!("2026-11-23T07:00:00+02:00")),
        1 => Just(json!("2026-11-23T06:00:00Z")),
        1 => Just(json!("1969-12-31T23:59:59Z")),
        1 => Just(json!("not a time")),
        1 => Just(json!("spiffe://x/y")),
        1 => Just(json!("10.0.0.300")),
        1 => Just(json!("::1")),
        1 => Just(json!("deny")),
        1 => Just(json!("agent")),
        1 => Just(json!("sha256:9f86d081884c7d65")),
        1 => Just(json!("short")),
        // A decision_id only the ledger's own records may have.
        1 => Just(json!("ledger-retention-256")),
        2 => "[a-z0-9:_./ -]{0,24}".prop_map(Value::String),
    ];
    common::nested(leaf)
}

/// A record: the base with up to three fields set or removed.
fn record() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (0..PATHS.len(), prop::option::weighted(0.8, any_value())),
        0..6,
    )
    .prop_map(|edits| {
        let mut r = base();
        for (p, to) in edits {
            set(&mut r, PATHS[p], to);
        }
        r
    })
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).unwrap();
    b
}

/// The same record with its times as CBOR tags (0 over text, 1 over
/// seconds), as an enforcer writing CBOR may send them.
fn tagged_times(v: &Value) -> Vec<u8> {
    let mut c: Cbor = ciborium::Value::serialized(v).unwrap();
    if let Cbor::Map(entries) = &mut c {
        for (k, v) in entries.iter_mut() {
            if k.as_text() == Some("time") {
                *v = Cbor::Tag(0, Box::new(v.clone()));
            }
            if k.as_text() == Some("credential") {
                if let Cbor::Map(cred) = v {
                    for (k, v) in cred.iter_mut() {
                        if k.as_text() == Some("issued_at") {
                            *v = Cbor::Tag(1, Box::new(Cbor::Integer(1_795_417_170.into())));
                        }
                    }
                }
            }
        }
    }
    let mut b = Vec::new();
    ciborium::into_writer(&c, &mut b).unwrap();
    b
}

fn same(format: Format, body: &[u8], sender: &Sender<'_>) {
    let fast = parse_body(format, body, sender);
    let reference = parse_reference(format, body, sender);
    assert_eq!(
        fast,
        reference,
        "{format:?} body {}",
        String::from_utf8_lossy(body)
    );
    if format == Format::CborSeq {
        same_arriving(body, sender);
    }
}

/// A CBOR sequence read as it arrives ([`next_item`]): each complete item
/// is answered as the reference answers that item alone.
fn same_arriving(body: &[u8], sender: &Sender<'_>) {
    let mut at = 0;
    while let Some(Ok((n, item))) = next_item(&body[at..], 0, sender) {
        let alone = parse_reference(Format::CborSeq, &body[at..at + n], sender);
        assert_eq!(Ok(vec![item]), alone, "item at byte {at}");
        assert!(n > 0);
        at += n;
    }
}

/// The keys of the third sender: enforcer gw-eu-1 (the test record's)
/// must sign, so its unsigned records are refused by both paths.
static SIGNERS: std::sync::LazyLock<verifier::enforcer_signature::EnforcerKeys> =
    std::sync::LazyLock::new(|| {
        let signer = verifier::SignerKey::from_seed("gw-eu-1", &[7; 32]).unwrap();
        verifier::enforcer_signature::EnforcerKeys::new(vec![signer.verifier()])
    });

fn senders() -> [Sender<'static>; 4] {
    [
        Sender::relay("relay-1"),
        Sender {
            enforcer: Some("gw-eu-1"),
            ..Sender::relay("gw-eu-1")
        },
        Sender::relay("relay-1").with_signers(&SIGNERS),
        // Retention removed what was received before 07:00: the test
        // record (07:00:00.123) is taken, the edge times around it not all.
        Sender::relay("relay-1").keeping_from(verifier::timestamp::Timestamp::parse_text(
            "2026-11-23T07:00:00Z",
        )),
    ]
}

/// The facts the reference derives from leaf bytes: the envelope decoded,
/// its record checked (what `Facts::of_leaf` did before reading in place).
fn reference_facts(leaf: &[u8]) -> Option<Facts> {
    let env = verifier::envelope::Envelope::decode(leaf).ok()?;
    Some(Facts::from_record(ingest::check(&env.record).ok()?).0)
}

/// Leaf bytes as the ledger writes them for `record`, if the reference
/// takes it.
fn leaf_of(record: &Value) -> Option<Vec<u8>> {
    let checked = ingest::check(&ciborium::Value::serialized(record).ok()?).ok()?;
    Some(verifier::envelope::encode_parts(
        checked.cbor(),
        "2026-11-23T07:00:01.5Z",
        "relay-1",
    ))
}

/// Read in place, a leaf gives the reference's facts, or is left to it.
fn same_facts(leaf: &[u8]) {
    if let Some(facts) = Facts::of_leaf_in_place(leaf) {
        assert_eq!(Some(facts), reference_facts(leaf), "leaf {leaf:02x?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_fast_path_answers_as_the_reference(records in prop::collection::vec(record(), 1..4)) {
        for sender in &senders() {
            let array = Value::Array(records.clone());
            same(Format::Json, array.to_string().as_bytes(), sender);
            same(Format::Json, records[0].to_string().as_bytes(), sender);
            same(Format::Cbor, &cbor(&array), sender);
            same(Format::Cbor, &cbor(&records[0]), sender);
            same(Format::Cbor, &tagged_times(&records[0]), sender);
            let seq: Vec<u8> = records.iter().flat_map(cbor).collect();
            same(Format::CborSeq, &seq, sender);
        }
    }

    #[test]
    fn the_fast_path_answers_as_the_reference_on_mutated_bytes(
        r in record(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()
    ) {
        for (format, mut body) in [
            (Format::Cbor, cbor(&r)),
            (Format::CborSeq, cbor(&r)),
            (Format::Json, r.to_string().into_bytes()),
        ] {
            let i = at.index(body.len());
            body[i] = byte;
            same(format, &body, &senders()[0]);
            body.truncate(cut.index(body.len() + 1));
            same(format, &body, &senders()[0]);
        }
    }

    #[test]
    fn a_leaf_read_in_place_gives_the_reference_facts(
        r in record(), at in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        if let Some(mut leaf) = leaf_of(&r) {
            // Every leaf of a record the reference takes is read in place.
            prop_assert!(Facts::of_leaf_in_place(&leaf).is_some());
            same_facts(&leaf);
            let i = at.index(leaf.len());
            leaf[i] = byte;
            same_facts(&leaf);
        }
    }
}

/// Values each field is set to in the exhaustive test: right, wrong, odd.
fn edge_values() -> Vec<Option<Value>> {
    let mut v: Vec<Option<Value>> = [
        json!(""),
        Value::Null,
        json!([]),
        json!({}),
        json!(["", "x"]),
        json!(["x", "y"]),
        json!(-1),
        json!(0),
        json!(300),
        json!(2.5),
        json!(true),
        json!(false),
        json!("x".repeat(1025)),
        json!("x".repeat(1024)),
        json!("x".repeat(257)),
        json!("2026-11-23T07:00:00+02:00"),
        json!("2026-11-23T06:00:00Z"),
        json!("2026-11-23T08:00:00.5Z"),
        json!("1969-12-31T23:59:59Z"),
        json!("not a time"),
        json!("spiffe://x/y"),
        json!("10.0.0.300"),
        json!("::1"),
        json!("deny"),
        json!("allow"),
        json!("agent"),
        json!("token"),
        json!("sha256:9f86d081884c7d65"),
        json!("sha256:9f86 081884c7d65"),
        json!("short"),
        json!("ledger-erasure-3"),
        json!({"k": null, "n": [1, {"m": -2}]}),
        json!({"id": "gw-eu-1", "kind": "gateway"}),
        json!([{"identity_kind": "agent", "id": "a"}]),
    ]
    .into_iter()
    .map(Some)
    .collect();
    v.push(None);
    v
}

/// Every field of [`PATHS`] set to every edge value (or removed), one at a
/// time, in every format: a record wrong in one field only is where a
/// fast path that accepts too much would show.
#[test]
fn one_field_changed_at_a_time() {
    let values = edge_values();
    for path in PATHS {
        for to in &values {
            let mut r = base();
            set(&mut r, path, to.clone());
            for sender in &senders() {
                same(Format::Json, r.to_string().as_bytes(), sender);
                same(Format::Cbor, &cbor(&r), sender);
                same(Format::Cbor, &tagged_times(&r), sender);
                same(Format::CborSeq, &cbor(&r), sender);
            }
        }
    }
}

#[test]
fn the_fast_path_takes_every_valid_record() {
    let mut r = base();
    let sender = Sender::relay("relay-1");
    // With and without every optional part.
    let mut bodies = vec![r.clone()];
    for strip in [
        "delegation",
        "context",
        "credential",
        "emergency",
        "extensions",
        "reasons",
    ] {
        r.as_object_mut().unwrap().remove(strip);
        bodies.push(r.clone());
    }
    // A context of more than 23 entries: a map head of two bytes.
    let mut wide = base();
    for i in 0..20 {
        wide["context"][format!("k{i}")] = json!(i);
    }
    bodies.push(wide);
    for b in &bodies {
        let json = parse_fast(Format::Json, b.to_string().as_bytes(), &sender);
        assert!(json.is_some(), "JSON {b}");
        let c = parse_fast(Format::Cbor, &cbor(b), &sender);
        assert_eq!(json, c, "JSON and CBOR give the same record");
        assert!(parse_fast(Format::Cbor, &tagged_times(b), &sender).is_some());
        // A record already in deterministic CBOR comes out as it went in.
        let canonical = c.as_ref().unwrap()[0].cbor().to_vec();
        let again = parse_fast(Format::Cbor, &canonical, &sender).unwrap();
        assert_eq!(again[0].cbor(), canonical);
        assert_eq!(
            json.unwrap(),
            parse_reference(Format::Json, b.to_string().as_bytes(), &sender)
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        );
    }
    let all = Value::Array(bodies.clone());
    assert_eq!(
        parse_fast(Format::Json, all.to_string().as_bytes(), &sender).map(|v| v.len()),
        Some(bodies.len())
    );
    let seq: Vec<u8> = bodies.iter().flat_map(cbor).collect();
    assert_eq!(
        parse_fast(Format::CborSeq, &seq, &sender).map(|v| v.len()),
        Some(bodies.len())
    );
    // A record the reference refuses is left to it.
    let mut bad = base();
    bad["decision"] = json!("maybe");
    assert!(parse_fast(Format::Json, bad.to_string().as_bytes(), &sender).is_none());
    // A writer bound to another enforcer is left to the reference, which
    // names the problem.
    let bound = Sender {
        enforcer: Some("gw-2"),
        ..Sender::relay("gw-2")
    };
    assert!(parse_fast(Format::Json, base().to_string().as_bytes(), &bound).is_none());
    let r = parse_body(Format::Json, base().to_string().as_bytes(), &bound).unwrap();
    assert!(r[0].as_ref().unwrap_err().forbidden);
    // A record decided before the first kept decision was received is left
    // to the reference, which names it; one decided then is read in place.
    let from = verifier::timestamp::Timestamp::parse_text("2026-11-23T07:00:00.123Z");
    let keeping = Sender::relay("relay-1").keeping_from(from);
    assert!(parse_fast(Format::Json, base().to_string().as_bytes(), &keeping).is_some());
    let mut old = base();
    old["time"] = json!("2026-11-23T07:00:00.122Z");
    let body = old.to_string();
    assert!(parse_fast(Format::Json, body.as_bytes(), &keeping).is_none());
    let r = parse_body(Format::Json, body.as_bytes(), &keeping).unwrap();
    let why = &r[0].as_ref().unwrap_err().reason;
    assert!(
        why.starts_with("time: 2026-11-23T07:00:00.122Z is before 2026-11-23T07:00:00.123Z"),
        "{why}"
    );
}

/// Every byte of a leaf's envelope (outside its record) set to every
/// value: read in place, each gives the reference's facts or is left to it.
#[test]
fn a_leaf_with_any_envelope_byte_changed_gives_the_reference_facts() {
    let leaf = leaf_of(&base()).expect("the base record is valid");
    let record = verifier::envelope::record_bytes(&leaf).unwrap();
    let start = record.as_ptr() as usize - leaf.as_ptr() as usize;
    let envelope = (0..start).chain(start + record.len()..leaf.len());
    let mut read_in_place = 0;
    for i in envelope {
        for byte in 0..=255u8 {
            let mut changed = leaf.clone();
            changed[i] = byte;
            same_facts(&changed);
            read_in_place += usize::from(Facts::of_leaf_in_place(&changed).is_some());
        }
    }
    // Those of other times and submitters among them.
    assert!(read_in_place > 0);
}
