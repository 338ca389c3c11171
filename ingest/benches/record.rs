//! Checking records as request handlers do, per body of 1,000 records:
//! the fast path (read in place, written canonical in one pass) against
//! the reference (the body decoded into values, each record checked and
//! re-encoded), for CBOR and JSON bodies; and the same records each signed
//! by its enforcer (a COSE_Sign1 checked with the enforcer's key,
//! specs/signed-record.md), next to them.
//!
//! ```sh
//! cargo bench --profile dev -p ingest --bench record
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingest::input::{parse_body, parse_reference, Format, Sender};
use serde_json::{json, Value};

/// A record like the load generator's (`ledgerctl bench`): about 650
/// bytes of CBOR, 0–3 delegation hops, a credential.
fn record(i: u64) -> Value {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let kinds = ["human", "service_account", "workload", "agent", "device"];
    let chain: Vec<Value> = (0..(x >> 8) % 4)
        .map(|h| json!({"identity_kind": kinds[((x >> (12 + h)) % 5) as usize], "id": format!("actor-{}", (x >> (16 + h)) % 500), "scope": "orders:write"}))
        .collect();
    json!({
        "decision_id": format!("bench-{i}"),
        "time": "2026-11-23T07:00:00.123Z",
        "enforcer": {"id": format!("enf-{}", x % 16), "kind": "gateway"},
        "subject": {"type": "principal", "id": format!("user-{}", x % 10_000), "identity_kind": kinds[(x % 5) as usize], "owner": format!("owner-{}", x % 100)},
        "delegation": chain,
        "action": {"name": "POST /v1/orders"},
        "resource": {"type": "api", "id": format!("orders-{}", x % 50)},
        "context": {"request_id": format!("req-{i}"), "trace_id": format!("{x:016x}")},
        "policy": {"engine": "opa", "id": "orders.authz", "version": "2026.11.1"},
        "decision": "allow",
        "credential": {"kind": "token", "id_hash": format!("sha256:{x:016x}"), "issued_at": "2026-11-23T06:59:00Z",
                       "expires_at": "2026-11-23T07:04:00Z", "ttl_s": 300}
    })
}

fn bodies(c: &mut Criterion) {
    let records: Vec<Value> = (0..1000).map(record).collect();
    let mut cbor = Vec::new();
    ciborium::into_writer(&records, &mut cbor).unwrap();
    let json = serde_json::to_vec(&records).unwrap();
    let sender = Sender::relay("bench-gw");
    let mut g = c.benchmark_group("check_1000_records");
    g.throughput(Throughput::Elements(1000));
    for (name, format, body) in [("cbor", Format::Cbor, &cbor), ("json", Format::Json, &json)] {
        assert!(parse_body(format, body, &sender)
            .unwrap()
            .iter()
            .all(Result::is_ok));
        g.bench_with_input(BenchmarkId::new("fast", name), body, |b, body| {
            b.iter(|| parse_body(format, body, &sender).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("reference", name), body, |b, body| {
            b.iter(|| parse_reference(format, body, &sender).unwrap())
        });
    }
    // Signed: every record a COSE_Sign1 by its enforcer (16 of them).
    let signers: Vec<verifier::SignerKey> = (0..16)
        .map(|i| verifier::SignerKey::from_seed(&format!("enf-{i}"), &[i as u8 + 1; 32]).unwrap())
        .collect();
    let keys = verifier::enforcer_signature::EnforcerKeys::new(
        signers.iter().map(verifier::SignerKey::verifier).collect(),
    );
    let signed_sender = sender.with_signers(&keys);
    let checked = parse_body(Format::Cbor, &cbor, &sender).unwrap();
    let mut signed = Vec::new();
    for (i, r) in checked.iter().enumerate() {
        let r = r.as_ref().unwrap();
        let signer = &signers[(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize % 16];
        let sig = verifier::enforcer_signature::EnforcerSignature::sign(signer, r.cbor());
        signed.extend_from_slice(&sig.encode_attached(r.cbor()));
    }
    assert!(parse_body(Format::CborSeq, &signed, &signed_sender)
        .unwrap()
        .iter()
        .all(|r| r.as_ref().is_ok_and(|r| r.leaf.is_signed())));
    g.bench_with_input(
        BenchmarkId::new("signed", "cbor-seq"),
        &signed,
        |b, body| b.iter(|| parse_body(Format::CborSeq, body, &signed_sender).unwrap()),
    );
    g.finish();
}

criterion_group!(benches, bodies);
criterion_main!(benches);
