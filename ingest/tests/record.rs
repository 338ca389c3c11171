//! The v1 record checks: canonical form, and a precise field path for every
//! problem.

mod common;

use common::{cbor_of, record, set, PATHS};
use ingest::index::Facts;
use ingest::input::{parse_body, Format, Sender};
use ingest::record::check;
use proptest::prelude::*;
use serde_json::{json, Value};

fn problem(mut v: Value, edit: impl FnOnce(&mut Value)) -> String {
    edit(&mut v);
    check(&cbor_of(&v))
        .expect_err("record must be refused")
        .to_string()
}

#[test]
fn a_full_record_is_accepted_in_canonical_form() {
    let r = check(&cbor_of(&record("d-1"))).unwrap();
    assert_eq!(r.decision_id, "d-1");
    assert!(verifier::cbor::is_deterministic(r.cbor()));
    let actors: Vec<&[u8]> = r.terms.actors().collect();
    assert_eq!(actors, [&b"agent:travel-bot"[..], b"sa:booking-svc"]);
    assert_eq!(
        (r.terms.policy(), r.terms.policy_version()),
        (&b"bookings.authz"[..], "2026.11.1")
    );
    // The same record with another key order, another time spelling, and as
    // CBOR with an epoch time gives the same bytes.
    let mut other = record("d-1");
    other["time"] = json!("2026-11-23T08:00:00.123000+01:00");
    assert_eq!(check(&cbor_of(&other)).unwrap().cbor(), r.cbor());
    let mut epoch = cbor_of(&record("d-1"));
    if let ciborium::Value::Map(m) = &mut epoch {
        m.reverse();
        for (k, v) in m.iter_mut() {
            if k.as_text() == Some("time") {
                *v = ciborium::Value::Tag(1, Box::new(ciborium::Value::Float(1_795_417_200.123)));
            }
        }
    }
    let e = check(&epoch).unwrap();
    assert_eq!(e.time.canonical(), "2026-11-23T07:00:00.123Z");
}

#[test]
fn optional_parts_may_be_absent() {
    let minimal = json!({
        "decision_id": "m", "time": "2026-11-23T07:00:00Z",
        "enforcer": {"id": "e", "kind": "api"},
        "subject": {"type": "svc", "id": "s", "identity_kind": "workload", "owner": "team"},
        "action": {"name": "read"}, "resource": {"type": "t", "id": "r"},
        "policy": {"engine": "cedar", "id": "p", "version": "1"}, "decision": "deny"
    });
    let r = check(&cbor_of(&minimal)).unwrap();
    assert_eq!(r.terms.actors().count(), 0);
    // No owner: logged, and the evidence reports it (verifier::findings).
    let mut ownerless = minimal.clone();
    ownerless["subject"]
        .as_object_mut()
        .unwrap()
        .remove("owner");
    check(&cbor_of(&ownerless)).unwrap();
}

#[test]
fn the_optional_additions_are_kept_in_canonical_form() {
    let mut r = record("d");
    r["delegation"][1]["expires_at"] = json!("2026-11-23T08:00:00+01:00");
    r["delegation"][1]["approved_by"] = json!("bob@example.com");
    r["delegation"][1]["grant_id"] = json!("jit-42");
    r["policy"]["owner"] = json!("team-policy");
    r["credential"]["issuer"] = json!("https://sts.example.com");
    r["emergency"] = json!({"break_glass": true, "justification": "outage", "ticket": "INC-9",
                            "approved_by": "carol", "expires_at": "2026-11-23T07:30:00Z",
                            "grant_id": "bg-1"});
    let checked = check(&cbor_of(&r)).unwrap();
    let leaf = verifier::envelope::encode_parts(checked.cbor(), "2026-11-23T07:00:01Z", "gw");
    let d = verifier::decision::LoggedDecision::from_leaf(&leaf)
        .unwrap()
        .decision;
    assert_eq!(
        d.delegation[1].expires_at.unwrap().canonical(),
        "2026-11-23T07:00:00Z"
    );
    assert_eq!(d.delegation[1].grant_id.as_deref(), Some("jit-42"));
    assert_eq!(d.policy.owner.as_deref(), Some("team-policy"));
    assert_eq!(
        d.credential.unwrap().issuer.as_deref(),
        Some("https://sts.example.com")
    );
    let e = d.emergency.unwrap();
    assert_eq!(
        (e.approved_by.as_deref(), e.grant_id.as_deref()),
        (Some("carol"), Some("bg-1"))
    );
    // Checking the canonical form again gives the same bytes.
    let again = check(&verifier::cbor::decode(checked.cbor()).unwrap()).unwrap();
    assert_eq!(again.cbor(), checked.cbor());
}

#[test]
fn every_problem_names_its_field() {
    let r = record("d");
    let cases: Vec<(String, &str)> = vec![
        (
            problem(r.clone(), |v| {
                v.as_object_mut().unwrap().remove("decision_id");
            }),
            "decision_id: is required",
        ),
        (
            problem(r.clone(), |v| v["decision_id"] = json!(7)),
            "decision_id: must be text, found an integer",
        ),
        (
            problem(r.clone(), |v| v["time"] = json!("yesterday")),
            "time: must be an RFC 3339 time",
        ),
        (
            problem(r.clone(), |v| v["enforcer"]["kind"] = json!("firewall")),
            "enforcer.kind: \"firewall\" is not one of",
        ),
        (
            problem(r.clone(), |v| {
                v["subject"]["identity_kind"] = json!("robot")
            }),
            "subject.identity_kind:",
        ),
        (
            problem(r.clone(), |v| v["subject"]["owner"] = json!("")),
            "subject.owner: must not be empty",
        ),
        (
            problem(r.clone(), |v| v["subject"]["spiffe_id"] = json!("http://x")),
            "subject.spiffe_id: must be a spiffe://",
        ),
        (
            problem(r.clone(), |v| {
                v["delegation"][1].as_object_mut().unwrap().remove("id");
            }),
            "delegation[1].id: is required",
        ),
        (
            problem(r.clone(), |v| {
                v["delegation"][1]["granted_at"] = json!("2026-11-23T06:00:00Z")
            }),
            "delegation[1].granted_at: is earlier",
        ),
        (
            problem(r.clone(), |v| {
                v["delegation"][1]["expires_at"] = json!("2026-11-23T06:59:00Z")
            }),
            "delegation[1].expires_at: is before granted_at",
        ),
        (
            problem(r.clone(), |v| v["delegation"][0]["approved_by"] = json!(5)),
            "delegation[0].approved_by: must be text",
        ),
        (
            problem(r.clone(), |v| v["policy"]["owner"] = json!([])),
            "policy.owner: must be text",
        ),
        (
            problem(r.clone(), |v| v["credential"]["issuer"] = json!("")),
            "credential.issuer: must not be empty",
        ),
        (
            problem(
                r.clone(),
                |v| {
                    v["emergency"] =
                        json!({"break_glass": true, "justification": "x", "expires_at": "soon"})
                },
            ),
            "emergency.expires_at: must be an RFC 3339 time",
        ),
        (
            problem(r.clone(), |v| v["delegation"][0]["scope"] = json!(["a", 3])),
            "delegation[0].scope[1]: must be text",
        ),
        (
            problem(r.clone(), |v| {
                v["delegation"][0]["scope"] = json!("s".repeat(1025))
            }),
            "delegation[0].scope: is 1025 bytes; at most 1024",
        ),
        (
            problem(r.clone(), |v| {
                v["delegation"][0]["scope"] = json!(["a", "s".repeat(1025)])
            }),
            "delegation[0].scope[1]: is 1025 bytes; at most 1024",
        ),
        (
            problem(r.clone(), |v| v["delegation"][0]["scope"] = json!("")),
            "delegation[0].scope: must not be empty",
        ),
        (
            problem(r.clone(), |v| v["delegation"] = json!({})),
            "delegation: must be an array",
        ),
        (
            problem(r.clone(), |v| {
                v["context"]["source_ip"] = json!("not-an-ip")
            }),
            "context.source_ip:",
        ),
        (
            problem(r.clone(), |v| v["policy"]["version"] = json!("")),
            "policy.version: must not be empty",
        ),
        (
            problem(r.clone(), |v| v["decision"] = json!("maybe")),
            "decision: \"maybe\" is not one of allow, deny",
        ),
        (
            problem(r.clone(), |v| v["reasons"] = json!("r")),
            "reasons: must be an array of text",
        ),
        (
            problem(r.clone(), |v| v["credential"]["id_hash"] = json!("hunter2")),
            "credential.id_hash:",
        ),
        (
            problem(r.clone(), |v| {
                v["credential"]["expires_at"] = json!("2026-11-23T06:00:00Z")
            }),
            "credential.expires_at: is before issued_at",
        ),
        (
            problem(r.clone(), |v| v["credential"]["ttl_s"] = json!(-5)),
            "credential.ttl_s: must be a non-negative integer, found a negative integer",
        ),
        (
            problem(r.clone(), |v| {
                v["emergency"] = json!({"break_glass": "yes", "justification": "x"})
            }),
            "emergency.break_glass: must be a boolean",
        ),
        (
            problem(r.clone(), |v| v["surprise"] = json!(1)),
            "surprise: unknown field; put enforcer-specific data under extensions",
        ),
        (
            problem(r.clone(), |v| v["subject"]["nickname"] = json!("al")),
            "subject.nickname: unknown field",
        ),
        (
            problem(r.clone(), |v| v["extensions"] = json!([1])),
            "extensions: must be a map",
        ),
        (problem(json!([1]), |_| {}), "(record): must be a map"),
    ];
    for (got, want) in cases {
        assert!(got.starts_with(want), "got {got:?}, want prefix {want:?}");
    }
}

#[test]
fn too_large_a_leaf_is_refused_by_size() {
    let mut r = record("big");
    r["extensions"] = json!({"blob": "x".repeat(65_500)});
    let out = parse_body(Format::Json, r.to_string().as_bytes(), &Sender::relay("gw")).unwrap();
    let err = out[0].as_ref().unwrap_err();
    assert!(err.reason.contains("limit is 65535"), "{err}");
    assert_eq!(err.decision_id.as_deref(), Some("big"));
}

#[test]
fn batches_report_bad_records_by_position() {
    let mut bad = record("b");
    bad["decision"] = json!("perhaps");
    let body = json!([record("a"), bad, record("c")]).to_string();
    let out = parse_body(Format::Json, body.as_bytes(), &Sender::relay("gw")).unwrap();
    assert!(out[0].is_ok() && out[2].is_ok());
    let e = out[1].as_ref().unwrap_err();
    assert_eq!((e.position, e.decision_id.as_deref()), (1, Some("b")));
    // The same as CBOR, a CBOR array and a CBOR sequence.
    let items: Vec<Vec<u8>> = [record("a"), record("c")]
        .iter()
        .map(|r| verifier::cbor::encode(&cbor_of(r)))
        .collect();
    let seq = items.concat();
    let out = parse_body(Format::CborSeq, &seq, &Sender::relay("gw")).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|r| r.is_ok()));
    let arr = verifier::cbor::encode(&ciborium::Value::Array(vec![
        cbor_of(&record("a")),
        cbor_of(&record("c")),
    ]));
    assert_eq!(
        parse_body(Format::Cbor, &arr, &Sender::relay("gw"))
            .unwrap()
            .len(),
        2
    );
    // A broken item in a sequence ends it, with the good ones kept.
    let mut broken = items[0].clone();
    broken.extend_from_slice(&[0xa5, 0x01]);
    let out = parse_body(Format::CborSeq, &broken, &Sender::relay("gw")).unwrap();
    assert!(out[0].is_ok() && out[1].is_err());
    // Bodies that are not JSON or CBOR at all are refused as a whole.
    assert!(parse_body(Format::Json, b"{not json", &Sender::relay("gw")).is_err());
    assert!(parse_body(Format::Cbor, &[0xff, 0x00], &Sender::relay("gw")).is_err());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z:@./-]{0,12}".prop_map(Value::String),
        Just(json!("2026-11-23T07:00:00Z")),
    ];
    common::nested(leaf)
}

/// The index reads a record's facts back from its leaf after a restart:
/// they must be the facts it was appended with.
fn facts_survive_the_leaf(r: &Value) -> Result<(), TestCaseError> {
    if let Ok(checked) = check(&cbor_of(r)) {
        // As the batcher does: the facts, and the leaf finished from its head.
        let (facts, head) = Facts::from_record(checked);
        let leaf = head.finish("2026-11-23T07:00:01.5Z", "gw-1");
        prop_assert_eq!(Facts::of_leaf(leaf.as_ref()), Some(facts));
        // Whatever the checks accept, the verifier can read and account for.
        let read = verifier::decision::LoggedDecision::from_leaf(leaf.as_ref());
        prop_assert!(read.is_ok(), "{:?}", read.err());
    }
    Ok(())
}

#[test]
fn facts_are_read_back_from_leaves() {
    facts_survive_the_leaf(&record("full")).unwrap();
    let mut minimal = record("minimal");
    for key in [
        "delegation",
        "context",
        "credential",
        "extensions",
        "reasons",
    ] {
        minimal.as_object_mut().unwrap().remove(key);
    }
    minimal["time"] = json!("2026-11-23T07:00:00+02:00");
    facts_survive_the_leaf(&minimal).unwrap();
    // Raw entries and other envelopes hold no decision record.
    assert_eq!(Facts::of_leaf(b"raw entry"), None);
    let other = verifier::envelope::encode_parts(&[0xa0], "2026-11-23T07:00:00Z", "gw");
    assert_eq!(Facts::of_leaf(&other), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn facts_of_any_accepted_record_are_read_back_from_its_leaf(
        path in prop::sample::select(PATHS),
        value in arb_json(),
    ) {
        let mut r = record("p");
        set(&mut r, path, Some(value));
        facts_survive_the_leaf(&r)?;
    }

    #[test]
    fn mutated_records_never_panic(path in prop::sample::select(PATHS), value in arb_json()) {
        let mut r = record("p");
        set(&mut r, path, Some(value));
        let _ = check(&cbor_of(&r));
    }

    #[test]
    fn arbitrary_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for f in [Format::Json, Format::Cbor, Format::CborSeq] {
            let _ = parse_body(f, &bytes, &Sender::relay("gw"));
        }
    }
}

/// Free-form content nested deeper than the record allows is refused with
/// its path; as deep as it allows, the record is logged and its leaf reads
/// back, in every reader the verifier has.
#[test]
fn free_form_nesting_is_bounded_so_every_reader_reads_the_leaf() {
    let nested = |depth: usize| {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!([v]);
        }
        v
    };
    let max = ingest::record::MAX_NESTING;
    let refused = problem(record("deep"), |r| {
        r["extensions"] = json!({"x": nested(max + 1)})
    });
    assert!(
        refused.contains("is nested more than 32 levels deep"),
        "{refused}"
    );
    assert!(refused.starts_with("extensions.x[0]"), "{refused}");
    let mut r = record("deep");
    r["extensions"] = json!({"x": nested(max)});
    let checked = check(&cbor_of(&r)).unwrap();
    let leaf = verifier::envelope::encode_parts(checked.cbor(), "2026-11-23T07:00:01Z", "w");
    assert!(verifier::cbor::is_deterministic(&leaf));
    verifier::envelope::Envelope::decode(&leaf).unwrap();
    verifier::decision::LoggedDecision::from_leaf(&leaf).unwrap();
    // Over a body, CBOR or JSON, the same refusal.
    let sender = Sender::relay("w");
    let mut deep = record("deep-2");
    deep["context"] = json!({"k": nested(40)});
    for (format, body) in [
        (Format::Json, serde_json::to_vec(&deep).unwrap()),
        (Format::Cbor, {
            let mut b = Vec::new();
            ciborium::into_writer(&deep, &mut b).unwrap();
            b
        }),
    ] {
        let out = parse_body(format, &body, &sender).unwrap();
        let why = out[0].as_ref().unwrap_err().reason.clone();
        assert!(why.contains("nested more than"), "{format:?}: {why}");
    }
}

/// JSON bodies are read as the CBOR they transcode to: a key twice in one
/// object is refused (in a record's own maps and in large free-form ones),
/// as are numbers JSON cannot hold exactly and nesting past the limit; the
/// values read are those of the JSON value tree.
#[test]
fn json_bodies_refuse_a_key_twice_and_read_as_their_values() {
    let sender = Sender::relay("w");
    let body_error = |text: &str| parse_body(Format::Json, text.as_bytes(), &sender).unwrap_err();
    let e = body_error(r#"{"decision_id": "a", "decision_id": "b"}"#);
    assert!(
        e.to_string()
            .contains("malformed JSON body: map has a duplicate key"),
        "{e}"
    );
    let mut big: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
    big.push("\"k7\": 0".into());
    let plain = record("big").to_string();
    let vendor = r#""extensions":{"vendor":{"x":true}}"#;
    assert!(plain.contains(vendor), "{plain}");
    let many = |keys: &[String]| {
        plain.replace(
            vendor,
            &format!(r#""extensions":{{"many":{{{}}}}}"#, keys.join(",")),
        )
    };
    let e = body_error(&many(&big));
    assert!(e.to_string().contains("duplicate key"), "{e}");
    big.pop();
    assert!(parse_body(Format::Json, many(&big).as_bytes(), &sender).unwrap()[0].is_ok());
    for bad in ["1e999", "NaN", &"[".repeat(10_000)] {
        assert_eq!(body_error(bad).format, "JSON", "{bad}");
    }
    // Values as the JSON tree gives them: floats, negative and large
    // integers, null in free-form content.
    let mut r = record("values");
    r["extensions"] = json!({"v": [1, -2, 2.5, true, null, "x", 18446744073709551615u64]});
    let from_text = parse_body(Format::Json, r.to_string().as_bytes(), &sender).unwrap();
    let from_tree = check(&cbor_of(&r)).unwrap();
    assert_eq!(from_text[0].as_ref().unwrap(), &from_tree);
}
