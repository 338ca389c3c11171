//! Makes the seed corpus (`corpus/<target>/`) from real files: a small log
//! signed with the fuzzing key ([`ledger_fuzz::signer`]) is filled with
//! `ledgerctl append`, and its evidence, chain, receipt, proofs,
//! checkpoints and an export are written by `ledgerctl` as users get them.
//!
//! ```sh
//! cargo test -p ledger-fuzz --test seeds -- --ignored   # rewrites fuzz/corpus/
//! ```
//!
//! The `client_cert` seeds are not made here: they are certificates
//! written by another X.509 implementation (Python's `cryptography`: an
//! Ed25519 self-signed certificate with URI, DNS, IP and email names, and
//! one with none), kept as they are.
//!
//! The test that always runs checks that the committed seeds are still
//! accepted where they should be: a seed that no longer parses would leave
//! its target fuzzing only the error path.

use std::path::{Path, PathBuf};

use ledger_fuzz::{frame, key};
use ledger_tests::ok;
use serde_json::{json, Value};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn record(i: usize) -> Value {
    let mut r: Value = serde_json::from_str(include_str!("../../examples/decision.json")).unwrap();
    r["decision_id"] = json!(format!("seed-{i}"));
    r["time"] = json!(format!("2026-11-23T07:00:0{i}Z"));
    if i > 0 {
        r["context"]["parent_decision_id"] = json!(format!("seed-{}", i - 1));
    }
    if i % 2 == 1 {
        // Text a hostile enforcer might write: a formula for the CSV, and
        // a forged line, ANSI sequences and a bidi override for terminals.
        r["reasons"] = json!([
            "=HYPERLINK(\"http://x.example/\")",
            "rule\u{1b}[2K\r\nOK: forged\u{202e}"
        ]);
        r["decision"] = json!("deny");
        r["emergency"] = json!({"break_glass": true, "justification": "outage", "ticket": "INC-7"});
        r["action"]["properties"] = json!({"weight": 0.5, "count": -3, "tags": ["a", "b"]});
    }
    r
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).unwrap();
    b
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[ignore = "rewrites fuzz/corpus; run by hand when a format changes"]
fn regenerate_seeds() {
    witness_seeds();
    signed_record_seeds();
    erasure_seed();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    ledger::keys::save(&data, &ledger_fuzz::signer()).unwrap();
    let d = data.to_str().unwrap();
    let at = |name: &str| tmp.path().join(name);
    let s = |p: PathBuf| p.to_str().unwrap().to_string();

    // Records in every body form.
    let records: Vec<Value> = (0..6).map(record).collect();
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(at("records.jsonl"), &lines).unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "append", &s(at("records.jsonl"))],
    );
    put("record_json", "one.json", records[0].to_string().as_bytes());
    put(
        "record_json",
        "array.json",
        Value::Array(records.clone()).to_string().as_bytes(),
    );
    put("record_cbor", "one.cbor", &cbor(&records[1]));
    put(
        "record_cbor",
        "array.cbor",
        &cbor(&Value::Array(records[..3].to_vec())),
    );
    let seq: Vec<u8> = records.iter().flat_map(cbor).collect();
    put("cbor_seq", "six.cbor-seq", &seq);
    put("cbor", "record.cbor", &cbor(&records[3]));
    put("record_fast", "one.json", records[1].to_string().as_bytes());
    put(
        "record_fast",
        "array.cbor",
        &cbor(&Value::Array(records[2..5].to_vec())),
    );
    put("record_fast", "seq.cbor-seq", &seq);

    // OPA events, as a stock OPA ships them.
    let opa = json!([{
        "labels": {"id": "opa-7f9c", "version": "0.70.0"},
        "decision_id": "opa-1",
        "bundles": {"authz": {"revision": "rev-42"}},
        "path": "httpapi/authz/allow",
        "input": {"method": "GET", "path": ["finance", "salary", "bob"], "user": "alice",
                  "subject": {"id": "alice", "identity_kind": "human", "owner": "finance-team"}},
        "result": true,
        "timestamp": "2026-11-23T07:00:00.123456789Z",
        "req_id": 17
    }, {"decision_id": "opa-2", "result": {"allow": false, "reasons": ["no"]}, "path": "a/b"}]);
    put("opa_event", "events.json", opa.to_string().as_bytes());

    // A Kubernetes audit webhook batch: an impersonated request forbidden,
    // and an anonymous one refused before authorization.
    let k8s = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": [
        {"level": "Metadata", "auditID": "a-1", "stage": "ResponseComplete",
         "requestURI": "/api/v1/namespaces/payments/secrets/db", "verb": "get",
         "user": {"username": "alice@example.com", "uid": "u-1", "groups": ["platform-admins"]},
         "impersonatedUser": {"username": "system:serviceaccount:ci:deployer"},
         "sourceIPs": ["10.0.3.7"], "userAgent": "kubectl/v1.31.0",
         "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db", "apiVersion": "v1",
                       "subresource": "status"},
         "responseStatus": {"metadata": {}, "code": 403, "reason": "Forbidden"},
         "requestReceivedTimestamp": "2026-11-23T07:00:00.100000Z",
         "stageTimestamp": "2026-11-23T07:00:00.104000Z",
         "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}},
        {"auditID": "a-2", "stage": "ResponseComplete", "requestURI": "/healthz", "verb": "get",
         "user": {"username": "system:anonymous"}, "responseStatus": {"code": 401, "reason": "Unauthorized"},
         "requestReceivedTimestamp": "2026-11-23T07:00:01Z"}]});
    put(
        "kubernetes_audit",
        "events.json",
        k8s.to_string().as_bytes(),
    );

    put(
        "search_params",
        "all.txt",
        b"subject=alice&actor=agent:x&resource=r&policy=p&version=1&request_id=q&trace_id=t&parent=d\
          &credential=sha256:9f86d081884c7d65&break_glass=true&identity_kind=agent&owner=o&enforcer=gw\
          &submitted_by=w&action=read&decision=deny&from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z\
          &received_from=2026-11-23T00:00:00Z&received_to=2026-11-24T00:00:00Z&at=5",
    );

    // Leaves, checkpoints, proofs.
    ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "decision",
            "seed-3",
            "--leaf",
            &s(at("d.leaf")),
        ],
    );
    let leaf = read(&at("d.leaf"));
    put("leaf", "seed-3.leaf", &leaf);
    let cp = ok("ledgerctl", &["--data", d, "checkpoint"]);
    put("note", "checkpoint", cp.as_bytes());
    put("note", "key.txt", key().to_string().as_bytes());
    ok(
        "ledgerctl",
        &["--data", d, "prove", "3", "--out", &s(at("p.tlog-proof"))],
    );
    put(
        "tlog_proof",
        "seed-3",
        &frame(&[&read(&at("p.tlog-proof")), &leaf]),
    );
    ok(
        "ledgerctl",
        &["--data", d, "append", &s(at("records.jsonl"))],
    );
    let old = ok("ledgerctl", &["--data", d, "checkpoint"]);
    std::fs::write(at("more.jsonl"), format!("{}\n{}\n", record(6), record(7))).unwrap();
    ok("ledgerctl", &["--data", d, "append", &s(at("more.jsonl"))]);
    let new = ok("ledgerctl", &["--data", d, "checkpoint"]);
    ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "prove-consistency",
            "6",
            "8",
            "--out",
            &s(at("c.proof")),
        ],
    );
    put(
        "consistency",
        "6-8",
        &frame(&[&read(&at("c.proof")), old.as_bytes(), new.as_bytes()]),
    );

    // Tiles: paths and an entry bundle.
    put("tiles", "path-hash.txt", b"tile/0/x001/234.p/5");
    put("tiles", "path-entries.txt", b"tile/entries/000.p/8");
    let bundle = verifier::tile::encode_bundle([leaf.as_slice(), b"second entry"]).unwrap();
    put("tiles", "bundle", &bundle);

    // Evidence, chain, receipt.
    ok(
        "ledgerctl",
        &["--data", d, "evidence", "seed-3", "--out", &s(at("e"))],
    );
    put("evidence", "seed-3.evidence", &read(&at("e")));
    ok(
        "ledgerctl",
        &["--data", d, "chain", "seed-2", "--out", &s(at("c"))],
    );
    put("chain", "seed-2.chain", &read(&at("c")));
    ok(
        "ledgerctl",
        &["--data", d, "receipt", "seed-3", "--out", &s(at("r"))],
    );
    put("receipt", "seed-3", &frame(&[&read(&at("r")), &leaf]));

    // An export of the whole log, and a filtered one.
    for (name, extra) in [
        ("whole", vec![]),
        ("alice", vec!["--subject", "alice@example.com"]),
    ] {
        let out = at(name);
        let mut args = vec![
            "--data",
            d,
            "export",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
        ];
        args.extend(extra);
        let o = s(out.clone());
        args.extend(["--out", &o]);
        ok("ledgerctl", &args);
        let f = |n: &str| read(&out.join(n));
        use verifier::export::*;
        put(
            "export",
            name,
            &frame(&[
                &f(MANIFEST),
                &f(CHECKPOINT),
                &f(REPORT),
                &f(LEAVES),
                &f(JSONL),
                &f(CSV),
                &f(OCSF),
            ]),
        );
    }
}

/// The `witness` seeds: add-checkpoint requests (first contact, and a
/// consistency proof from 3 to 8) with a checkpoint the witness cosigned.
fn witness_seeds() {
    use verifier::tree::{consistency_proof, MemoryTree};
    use verifier::witness::AddCheckpoint;
    let mut tree = MemoryTree::new();
    for i in 0u8..8 {
        tree.push(verifier::leaf_hash(&[i]));
    }
    let signed = |size: u64| {
        verifier::Checkpoint {
            origin: ledger_fuzz::ORIGIN.to_string(),
            size,
            root: tree.root_at(size).unwrap(),
            extensions: vec![],
        }
        .sign(&ledger_fuzz::signer())
        .unwrap()
    };
    let (cp3, cp8) = (signed(3), signed(8));
    let body = cp8.split("\n\n").next().unwrap().to_string() + "\n";
    let cosigned = format!(
        "{cp8}{}",
        ledger_fuzz::witness_signer()
            .cosign(&body, 1_764_979_200)
            .unwrap()
    );
    let first = AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: cp3,
    };
    put(
        "witness",
        "first",
        &frame(&[first.to_body().as_bytes(), cosigned.as_bytes()]),
    );
    let next = AddCheckpoint {
        old: 3,
        proof: consistency_proof(&tree, 3, 8).unwrap(),
        checkpoint: cp8,
    };
    put(
        "witness",
        "3-8",
        &frame(&[next.to_body().as_bytes(), cosigned.as_bytes()]),
    );
    let pq = format!(
        "{cosigned}{}",
        ledger_fuzz::pq_witness_signer()
            .cosign(&body, 1_764_979_200)
            .unwrap()
    );
    put(
        "witness",
        "pq",
        &frame(&[next.to_body().as_bytes(), pq.as_bytes()]),
    );
}

/// The `leaf` seed of an erasure record (specs/erasure.md): a decision
/// appended and erased with `ledgerctl`, the ledger's record of it read
/// back as its exact leaf.
fn erasure_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    ledger::keys::save(&data, &ledger_fuzz::signer()).unwrap();
    let d = data.to_str().unwrap();
    let records = tmp.path().join("r.json");
    std::fs::write(&records, record(0).to_string()).unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "append", records.to_str().unwrap()],
    );
    ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "erase",
            "seed-0",
            "--reason",
            "GDPR art. 17",
            "--ticket",
            "DSR-1",
            "--requested-by",
            "dpo@example.com",
        ],
    );
    let leaf = tmp.path().join("e.leaf");
    ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "decision",
            "ledger-erasure-0",
            "--leaf",
            leaf.to_str().unwrap(),
        ],
    );
    put("leaf", "erasure.leaf", &read(&leaf));
}

#[test]
#[ignore = "rewrites fuzz/corpus/leaf/erasure.leaf; run by hand when its format changes"]
fn regenerate_erasure_seed() {
    erasure_seed();
}

#[test]
#[ignore = "rewrites fuzz/corpus/witness; run by hand when its format changes"]
fn regenerate_witness_seeds() {
    witness_seeds();
}

/// The `signed_record` seeds: records of gw-eu-1 signed with the fuzzing
/// enforcer key ([`ledger_fuzz::enforcer`]), alone, in an array beside an
/// unsigned record of another enforcer, and as a sequence.
fn signed_record_seeds() {
    use verifier::enforcer_signature::EnforcerSignature;
    let signed = |i: usize| {
        let checked = ingest::check(&ingest::record::from_json(&record(i))).unwrap();
        EnforcerSignature::sign(&ledger_fuzz::enforcer(), checked.cbor())
            .encode_attached(checked.cbor())
    };
    put("signed_record", "one.cbor", &signed(1));
    let mut other = record(2);
    other["enforcer"]["id"] = json!("gw-us-1");
    let array = ciborium::Value::Array(vec![
        verifier::cbor::decode(&signed(0)).unwrap(),
        ingest::record::from_json(&other),
    ]);
    put(
        "signed_record",
        "array.cbor",
        &verifier::cbor::encode(&array),
    );
    put(
        "signed_record",
        "seq.cbor-seq",
        &[signed(3), signed(4)].concat(),
    );
}

#[test]
#[ignore = "rewrites fuzz/corpus/signed_record; run by hand when its format changes"]
fn regenerate_signed_record_seeds() {
    signed_record_seeds();
}

/// The seeds that are meant to verify still do: a format change that
/// breaks them would leave their targets fuzzing only the first check.
#[test]
fn the_seeds_still_verify() {
    let read = |t: &str, n: &str| read(&corpus().join(t).join(n));
    // Only the URI and DNS names of another implementation's certificate.
    assert_eq!(
        api::peer::PeerNames::of_der(&read("client_cert", "spiffe-and-dns")).names,
        [
            "spiffe://example.org/ns/prod/sa/gw-eu-1",
            "gw-eu-1.example.org"
        ]
    );
    assert!(
        api::peer::PeerNames::of_der(&read("client_cert", "no-names"))
            .names
            .is_empty()
    );
    // Every seed record is taken signed.
    let keys =
        verifier::enforcer_signature::EnforcerKeys::new(vec![ledger_fuzz::enforcer().verifier()]);
    let sender = ingest::input::Sender::relay("fuzz").with_signers(&keys);
    for (name, format, signed) in [
        ("one.cbor", ingest::input::Format::Cbor, 1),
        ("array.cbor", ingest::input::Format::Cbor, 1),
        ("seq.cbor-seq", ingest::input::Format::CborSeq, 2),
    ] {
        let all = ingest::input::parse_body(format, &read("signed_record", name), &sender).unwrap();
        assert!(all.iter().all(Result::is_ok), "{name}");
        assert_eq!(
            all.iter().flatten().filter(|r| r.leaf.is_signed()).count(),
            signed,
            "{name}"
        );
    }
    // The erasure record reads as one.
    let erasure = verifier::erasure::read(1, &read("leaf", "erasure.leaf"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (erasure.index, erasure.requested_by.as_str()),
        (0, "dpo@example.com")
    );
    let k = key();
    let v = verifier::evidence::verify(&read("evidence", "seed-3.evidence"), &k).unwrap();
    // seed-3 carries hostile text, so the evidence target checks that its
    // account escapes it.
    let text = verifier::account::decision_text(v.index, &v.checkpoint, "checkpoint", &v.logged);
    assert!(
        text.contains("\\u{1b}[2K\\u{d}\\u{a}OK: forged\\u{202e}"),
        "{text}"
    );
    verifier::chain::verify(&read("chain", "seed-2.chain"), &k).unwrap();
    let r = read("receipt", "seed-3");
    let parts = ledger_fuzz::frames(&r);
    verifier::receipt::verify(parts[0], parts[1], &k).unwrap();
    let p = read("tlog_proof", "seed-3");
    let parts = ledger_fuzz::frames(&p);
    verifier::tlog_proof::verify(parts[0], parts[1], &k).unwrap();
    let c = read("consistency", "6-8");
    let parts = ledger_fuzz::frames(&c);
    verifier::consistency_file::ConsistencyFile::parse(parts[0])
        .unwrap()
        .verify(parts[1], parts[2], &k)
        .unwrap();
    // The -v1 and -v2 packages are export@v1 and export@v2 ones, kept as
    // they were made.
    for name in [
        "whole", "alice", "whole-v2", "alice-v2", "whole-v1", "alice-v1",
    ] {
        let e = read("export", name);
        let parts = ledger_fuzz::frames(&e);
        let src = verifier::export::Sources {
            manifest: parts[0].to_vec(),
            checkpoint: parts[1].to_vec(),
            report: parts[2].to_vec(),
            leaves: parts[3],
            jsonl: parts[4],
            csv: parts[5],
            ocsf: parts[6],
        };
        verifier::export::verify(src, &k, |_, _| {}).unwrap();
    }
    // The witness cosigns the first request with no state, the second
    // from size 3, and the cosigned checkpoint verifies with its key.
    let w = ledger_fuzz::witness_signer();
    let policy = verifier::cosignature::Policy::new(vec![w.verifier()], None).unwrap();
    let first = ledger_fuzz::frames(&read("witness", "first"))
        .iter()
        .map(|p| p.to_vec())
        .collect::<Vec<_>>();
    let req = verifier::witness::AddCheckpoint::parse(&first[0]).unwrap();
    let (held, _) =
        verifier::witness::add_checkpoint(&req, std::slice::from_ref(&k), None, &w, 1).unwrap();
    let next = read("witness", "3-8");
    let parts = ledger_fuzz::frames(&next);
    let req = verifier::witness::AddCheckpoint::parse(parts[0]).unwrap();
    verifier::witness::add_checkpoint(&req, std::slice::from_ref(&k), Some(&held), &w, 1).unwrap();
    verifier::cosignature::open_witnessed(parts[1], &k, &policy).unwrap();
    // The pq seed adds an ML-DSA-44 witness's cosignature.
    let pq = read("witness", "pq");
    let both = verifier::cosignature::Policy::new(
        vec![w.verifier(), ledger_fuzz::pq_witness_signer().verifier()],
        None,
    )
    .unwrap();
    verifier::cosignature::open_witnessed(ledger_fuzz::frames(&pq)[1], &k, &both).unwrap();
    let bodies = ingest::input::parse_body(
        ingest::input::Format::Json,
        &read("record_json", "array.json"),
        &ingest::input::Sender::relay("w"),
    )
    .unwrap();
    assert!(bodies.iter().all(Result::is_ok));
}
