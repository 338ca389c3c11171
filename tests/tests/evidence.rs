//! Evidence end to end on the real ledgerd: a person → agent → service
//! account → policy engine and gate chain from five enforcers, among
//! hundreds of unrelated decisions. The policy engine denies what the gate
//! allowed, and the gate's hop uses an expired credential. Evidence of a hop
//! verifies and names the people and owners; the chain lists every hop and
//! the findings; a receipt is checked by an independent COSE implementation
//! (coset); every single-byte change of any of the three files is rejected.

use ledger_tests::{ok, run, Server};
use serde_json::{json, Value};
use verifier::VerifierKey;

/// A writer token for `enforcer`, issued into the server's data dir.
fn writer_for(s: &Server, enforcer: &str) -> String {
    let data = s.data.to_str().unwrap();
    let out = ok(
        "ledgerctl",
        &[
            "--data",
            data,
            "token",
            "add",
            "--enforcer",
            enforcer,
            "--role",
            "writer",
        ],
    );
    out.trim().to_string()
}

fn post(s: &Server, token: &str, records: &[Value]) {
    let auth = format!("Bearer {token}");
    let r = s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Value::Array(records.to_vec()).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(j["appended"], records.len(), "{j}");
}

fn noise(i: usize) -> Value {
    json!({
        "decision_id": format!("noise-{i}"), "time": "2026-11-23T06:00:00Z",
        "enforcer": {"id": "gw-other", "kind": "gateway"},
        "subject": {"type": "user", "id": format!("user{}", i % 17), "identity_kind": "human",
                    "owner": format!("user{}", i % 17)},
        "action": {"name": "GET /v1/orders"}, "resource": {"type": "api", "id": "orders-api"},
        "context": {"request_id": format!("noise-req-{i}"), "trace_id": format!("noise-trace-{}", i / 3)},
        "policy": {"engine": "opa", "id": "orders.authz", "version": "3"},
        "decision": if i.is_multiple_of(5) { "deny" } else { "allow" }
    })
}

/// A hop of the chain: alice's request through the travel agent.
fn hop(id: &str, enforcer: &str, kind: &str, parent: Option<&str>, request: &str) -> Value {
    let mut r = json!({
        "decision_id": id, "time": "2026-11-23T07:00:00.250Z",
        "enforcer": {"id": enforcer, "kind": kind},
        "subject": {"type": "user", "id": "alice@example.com", "identity_kind": "human",
                    "owner": "alice@example.com", "issuer": "https://idp.example.com"},
        "delegation": [
            {"identity_kind": "agent", "id": "agent:travel-bot", "owner": "team-travel",
             "granted_at": "2026-11-23T06:59:00Z", "scope": "bookings:write"}
        ],
        "action": {"name": "POST /v1/bookings"},
        "resource": {"type": "api", "id": "bookings-api", "sensitivity": "confidential"},
        "context": {"request_id": request, "trace_id": "trace-alice-1"},
        "policy": {"engine": "opa", "id": "bookings.authz", "version": "2026.11.1", "owner": "team-policy"},
        "decision": "allow",
        "reasons": ["rule.allow_delegated_agent"],
        "credential": {"kind": "token", "id_hash": "sha256:9f86d081884c7d65", "issuer": "https://sts.example.com",
                       "issued_at": "2026-11-23T06:59:30Z", "expires_at": "2026-11-23T07:04:30Z", "ttl_s": 300}
    });
    if let Some(p) = parent {
        r["context"]["parent_decision_id"] = json!(p);
    }
    r
}

fn with_service_account(mut r: Value) -> Value {
    r["delegation"].as_array_mut().unwrap().push(
        json!({"identity_kind": "service_account", "id": "sa:booking-svc", "owner": "team-booking",
               "granted_at": "2026-11-23T06:59:30Z"}),
    );
    r
}

/// The chain's five hops, by enforcer.
fn chain_hops() -> Vec<(&'static str, Value)> {
    let agent = hop("hop-1-agent", "agw-1", "agent_gateway", None, "req-A");
    let sts = with_service_account(hop(
        "hop-2-sts",
        "sts-1",
        "token_issuer",
        Some("hop-1-agent"),
        "req-B",
    ));
    let mut opa = with_service_account(hop(
        "hop-3-opa",
        "opa-1",
        "policy_engine",
        Some("hop-2-sts"),
        "req-C",
    ));
    opa["decision"] = json!("deny");
    opa["reasons"] = json!(["rule.deny_after_hours"]);
    let mut gw = with_service_account(hop(
        "hop-4-gw",
        "gw-eu-1",
        "gateway",
        Some("hop-2-sts"),
        "req-C",
    ));
    gw["credential"]["issued_at"] = json!("2026-11-23T06:54:00Z");
    gw["credential"]["expires_at"] = json!("2026-11-23T06:59:00Z");
    let api = with_service_account(hop(
        "hop-5-api",
        "bookings-api",
        "api",
        Some("hop-4-gw"),
        "req-D",
    ));
    vec![
        ("agw-1", agent),
        ("sts-1", sts),
        ("opa-1", opa),
        ("gw-eu-1", gw),
        ("bookings-api", api),
    ]
}

fn get(s: &Server, token: &str, path: &str, accept: Option<&str>) -> ledger_tests::Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(a) = accept {
        headers.push(("Accept", a));
    }
    s.request("GET", path, &headers, b"")
}

/// The RFC 9162 §2.1.3.2 root from a leaf and its audit path, written here
/// so that the receipt check owes nothing to the verifier crate.
fn root_from_path(entry: &[u8], index: u64, size: u64, path: &[Vec<u8>]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let h = |prefix: u8, parts: &[&[u8]]| {
        let mut d = Sha256::new();
        d.update([prefix]);
        parts.iter().for_each(|p| d.update(p));
        d.finalize().to_vec()
    };
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = h(0, &[entry]);
    for p in path {
        assert!(snode > 0, "path too long");
        if fnode & 1 == 1 || fnode == snode {
            r = h(1, &[p, &r]);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = h(1, &[&r, p]);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    assert_eq!(snode, 0, "path too short");
    r
}

/// Checks a receipt with coset and ed25519-dalek only.
fn coset_verifies(receipt: &[u8], leaf: &[u8], verifier_key: &str) -> Result<(), String> {
    use base64::Engine;
    use coset::{iana, CoseSign1, Label, TaggedCborSerializable};
    let sign1 = CoseSign1::from_tagged_slice(receipt).map_err(|e| format!("coset: {e:?}"))?;
    if sign1.protected.header.alg != Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA)) {
        return Err("alg is not EdDSA".into());
    }
    let vds = sign1
        .protected
        .header
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(395));
    if vds.map(|(_, v)| v.clone()) != Some(ciborium::Value::Integer(1.into())) {
        return Err("vds is not RFC9162_SHA256".into());
    }
    if sign1.payload.is_some() {
        return Err("payload is not detached".into());
    }
    let vdp = sign1
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(396))
        .map(|(_, v)| v.clone())
        .ok_or("no vdp")?;
    let proofs = vdp
        .as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| *k == ciborium::Value::Integer((-1).into()))
        })
        .and_then(|(_, v)| v.as_array().cloned())
        .ok_or("no inclusion proofs")?;
    let proof: ciborium::Value = ciborium::from_reader(
        proofs[0]
            .as_bytes()
            .ok_or("inclusion proof is not a bstr")?
            .as_slice(),
    )
    .map_err(|e| format!("inclusion proof: {e}"))?;
    let parts = proof.as_array().ok_or("inclusion proof is not an array")?;
    let num = |v: &ciborium::Value| -> Result<u64, String> {
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| "not a uint".to_string())
    };
    let (size, index) = (num(&parts[0])?, num(&parts[1])?);
    let path: Vec<Vec<u8>> = parts[2]
        .as_array()
        .ok_or("path is not an array")?
        .iter()
        .map(|h| h.as_bytes().cloned().unwrap_or_default())
        .collect();
    let root = root_from_path(leaf, index, size, &path);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(verifier_key.trim().splitn(3, '+').nth(2).unwrap())
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&raw[1..33].try_into().unwrap()).unwrap();
    sign1.verify_detached_signature(&root, b"", |sig, data| {
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|e| e.to_string())?;
        public.verify_strict(data, &sig).map_err(|e| e.to_string())
    })
}

#[test]
fn evidence_chain_and_receipt_of_a_five_enforcer_chain() {
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let key_file = file("log.pub", s.key.as_bytes());
    let tokens: Vec<(String, Value)> = chain_hops()
        .into_iter()
        .map(|(enforcer, record)| (writer_for(&s, enforcer), record))
        .collect();
    // Hundreds of unrelated decisions around the hops.
    let mut n = 0;
    for (token, record) in &tokens {
        post(&s, &s.writer, &(n..n + 80).map(noise).collect::<Vec<_>>());
        n += 80;
        post(&s, token, std::slice::from_ref(record));
    }
    post(&s, &s.writer, &(n..n + 100).map(noise).collect::<Vec<_>>());
    s.covered(505);

    // Evidence of the gate's hop: verified, and it names people and owners.
    let r = get(&s, &s.reader, "/v1/decisions/hop-4-gw/evidence", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let evidence = r.body.clone();
    let ev = file("hop-4.evidence", &evidence);
    let out = ok("ledger-verify", &["evidence", &ev, "--key", &key_file]);
    for needle in [
        "decision hop-4-gw: allow",
        "alice@example.com (human, type user), owner alice@example.com, issuer https://idp.example.com",
        "1. agent:travel-bot (agent), owner team-travel",
        "2. sa:booking-svc (service_account), owner team-booking",
        "opa bookings.authz version 2026.11.1, owner team-policy",
        "NOT valid at the decision time",
        "gateway gw-eu-1 (as declared); submitted by gw-eu-1 (as authenticated)",
        "request req-C, trace trace-alice-1, parent decision hop-2-sts",
        "tree size 505, checkpoint signed by decisions.localhost/log",
        "finding: decision hop-4-gw: credential sha256:9f86d081884c7d65 used at 2026-11-23T07:00:00.25Z, after it expired at 2026-11-23T06:59:00Z",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
    // The same file through ledgerctl --url, checked with the key.
    let url = format!("http://{}", s.addr);
    let via_ctl = dir.path().join("ctl.evidence");
    let r = run(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.reader,
            "--key",
            &key_file,
            "evidence",
            "hop-4-gw",
            "--out",
            via_ctl.to_str().unwrap(),
        ],
    );
    assert!(r.code == 0 && r.stderr.contains("verified"), "{}", r.stderr);

    // The chain, asked from the policy engine's hop: every hop, one tree.
    let r = get(&s, &s.reader, "/v1/decisions/hop-3-opa/chain", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let chain = r.body.clone();
    let ch = file("hop-3.chain", &chain);
    let out = ok("ledger-verify", &["chain", &ch, "--key", &key_file]);
    assert!(out.contains("chain of 5 decisions (complete)"), "{out}");
    let depth = |id: &str| {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in\n{out}"));
        (line.len() - line.trim_start().len()) / 2
    };
    assert_eq!(
        [
            "hop-1-agent",
            "hop-2-sts",
            "hop-3-opa",
            "hop-4-gw",
            "hop-5-api"
        ]
        .map(depth),
        [0, 1, 2, 2, 3],
        "{out}"
    );
    assert!(out.contains("hop-2-sts  token_issuer sts-1  human alice@example.com (owner alice@example.com)  POST /v1/bookings  bookings-api  allow  bookings.authz@2026.11.1  2026-11-23T07:00:00.25Z"), "{out}");
    assert!(out.contains("agreement for request_id req-C:"), "{out}");
    let findings: Vec<&str> = out.lines().filter(|l| l.starts_with("finding: ")).collect();
    assert!(findings.contains(&"finding: request_id req-C: the policy engine (policy_engine opa-1, decision hop-3-opa) denied what the gate (gateway gw-eu-1, decision hop-4-gw) allowed"), "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("finding: decision hop-4-gw: credential")),
        "{findings:#?}"
    );
    assert!(
        !out.contains("noise-"),
        "unrelated decisions stay out: {out}"
    );
    // The hops were made on 2026-11-23 at 07:00 and logged now: each is
    // found not logged inline (on a clock past that morning).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now > 1_795_420_801 {
        let late = findings
            .iter()
            .filter(|f| f.ends_with("later): not logged inline"))
            .count();
        assert_eq!(late, 5, "{findings:#?}");
    }
    // From any hop, the same hops against the same checkpoint.
    let again = get(&s, &s.reader, "/v1/decisions/hop-5-api/chain", None);
    assert_eq!(again.body, chain);
    let json = ok(
        "ledger-verify",
        &["chain", &ch, "--key", &key_file, "--json"],
    );
    let j: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["hops"].as_array().unwrap().len(), 5);
    let via_ctl = dir.path().join("ctl.chain");
    let r = run(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.reader,
            "--key",
            &key_file,
            "chain",
            "hop-1-agent",
            "--out",
            via_ctl.to_str().unwrap(),
        ],
    );
    assert!(
        r.code == 0 && r.stderr.contains("chain of 5 decisions (complete)"),
        "{}",
        r.stderr
    );

    // A COSE receipt of the token issuer's hop, for the exact leaf bytes.
    let r = get(&s, &s.reader, "/v1/decisions/hop-2-sts/receipt", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/cose"));
    let receipt = r.body.clone();
    let leaf = get(
        &s,
        &s.reader,
        "/v1/decisions/hop-2-sts",
        Some("application/cbor"),
    );
    assert_eq!(leaf.header("content-type"), Some("application/cbor"));
    let leaf = leaf.body;
    coset_verifies(&receipt, &leaf, &s.key).unwrap();
    let rc = file("hop-2.cose", &receipt);
    let lf = file("hop-2.leaf", &leaf);
    let out = ok(
        "ledger-verify",
        &["receipt", &rc, "--leaf", &lf, "--key", &key_file],
    );
    assert!(out.contains("decision hop-2-sts: allow"), "{out}");
    let other_leaf = get(
        &s,
        &s.reader,
        "/v1/decisions/hop-1-agent",
        Some("application/cbor"),
    )
    .body;
    assert!(coset_verifies(&receipt, &other_leaf, &s.key).is_err());

    // Every single-byte change of each file is rejected, by the verifier
    // (all of them) and by ledger-verify's exit code (a sample).
    let key = VerifierKey::parse(&s.key).unwrap();
    let changes = |data: &[u8]| -> Vec<(usize, Vec<u8>)> {
        (0..data.len())
            .flat_map(|i| [0x01u8, 0x02, 0x20, 0x80].into_iter().map(move |m| (i, m)))
            .map(|(i, m)| {
                let mut c = data.to_vec();
                c[i] ^= m;
                (i, c)
            })
            .collect()
    };
    for (at, c) in changes(&evidence) {
        assert!(
            verifier::evidence::verify(&c, &key).is_err(),
            "evidence byte {at}"
        );
    }
    for (at, c) in changes(&chain) {
        assert!(
            verifier::chain::verify(&c, &key).is_err(),
            "chain byte {at}"
        );
    }
    for (at, c) in changes(&receipt) {
        assert!(
            verifier::receipt::verify(&c, &leaf, &key).is_err(),
            "receipt byte {at}"
        );
    }
    for (name, data, extra) in [
        ("evidence", &evidence, vec![]),
        ("chain", &chain, vec![]),
        ("receipt", &receipt, vec!["--leaf".to_string(), lf.clone()]),
    ] {
        for at in (0..data.len()).step_by(data.len() / 12 + 1) {
            let mut c = data.clone();
            c[at] ^= 0x04;
            let bad = file(&format!("bad-{name}"), &c);
            let mut args = vec![name.to_string(), bad, "--key".into(), key_file.clone()];
            args.extend(extra.clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run("ledger-verify", &args);
            assert_eq!(r.code, 1, "{name} byte {at}: {}{}", r.stdout, r.stderr);
            assert!(
                r.stderr.starts_with("FAILED: ") && r.stdout.is_empty(),
                "{}",
                r.stderr
            );
        }
    }

    // Unknown ids, missing tokens.
    assert_eq!(
        get(&s, &s.reader, "/v1/decisions/nope/evidence", None).status,
        404
    );
    assert_eq!(
        get(&s, &s.reader, "/v1/decisions/nope/chain", None).status,
        404
    );
    assert_eq!(
        s.request("GET", "/v1/decisions/hop-1-agent/receipt", &[], b"")
            .status,
        401
    );
    assert_eq!(
        get(&s, &tokens[0].0, "/v1/decisions/hop-1-agent/evidence", None).status,
        403
    );
}
