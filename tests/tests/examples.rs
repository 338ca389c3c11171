//! The files in `examples/` do what the README says: the single decision
//! and the agent's identity chain (agent gateway, policy engines, token
//! issuer, API gateway) are accepted, and the chain verifies offline with
//! every hop, both requests' agreement and no disagreement, whether it is
//! asked for by a decision, a trace or a request id.

use std::path::Path;

use ledger_tests::{ok, run, Server};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_example_chain_verifies_with_every_hop_agreeing() {
    let s = Server::start(&[]);
    let url = format!("http://{}", s.addr);
    let shipped = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.writer,
            "ship",
            &example("decision.json"),
            &example("chain.jsonl"),
        ],
    );
    assert!(
        shipped.contains("6 appended, 0 duplicate, 0 conflict, 0 rejected"),
        "{shipped}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("c.chain");
    let bundle = bundle.to_str().unwrap();
    let key = s.data.join("log.pub");
    let key = key.to_str().unwrap();
    ledger_tests::wait_until("a checkpoint of 6", || {
        run(
            "ledgerctl",
            &[
                "--url",
                &url,
                "--token",
                &s.reader,
                "--key",
                key,
                "chain",
                "chain-0004",
                "--out",
                bundle,
            ],
        )
        .code
            == 0
    });
    let r = run("ledger-verify", &["chain", bundle, "--key", key]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("chain of 5 decisions (complete)"),
        "{}",
        r.stdout
    );
    for id in [
        "chain-0001",
        "chain-0002",
        "chain-0003",
        "chain-0004",
        "chain-0005",
    ] {
        assert!(r.stdout.contains(id), "{id}: {}", r.stdout);
    }
    for request in ["req-chain-1", "req-chain-2"] {
        assert!(
            r.stdout
                .contains(&format!("agreement for request_id {request}")),
            "{}",
            r.stdout
        );
    }
    // The examples' times are fixed, so the only findings are that they
    // were received long after they were made.
    let findings: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("finding:"))
        .collect();
    assert_eq!(findings.len(), 5, "{}", r.stdout);
    assert!(
        findings.iter().all(|f| f.contains("not logged inline")),
        "{findings:?}"
    );
    // From a trace or request id seen in another system's logs: the same
    // chain, from the first decision that carries it.
    let remote = ["--url", url.as_str(), "--token", &s.reader, "--key", key];
    for start in [
        ["--trace-id", "5c1f0e2a9b7d4e3f8a6b2c1d0e9f8a7b"],
        ["--request-id", "req-chain-2"],
    ] {
        let again = dir.path().join("again.chain");
        let again = again.to_str().unwrap();
        ok(
            "ledgerctl",
            &[&remote[..], &["chain"], &start[..], &["--out", again]].concat(),
        );
        let r = run("ledger-verify", &["chain", again, "--key", key]);
        assert!(
            r.stdout.contains("chain of 5 decisions (complete)"),
            "{start:?}: {}",
            r.stdout
        );
    }
    let r = run(
        "ledgerctl",
        &[&remote[..], &["chain", "--trace-id", "no-such-trace"]].concat(),
    );
    assert!(
        r.code != 0 && r.stderr.contains("no decision with trace_id"),
        "{}",
        r.stderr
    );
    let out = dir.path().join("e.evidence");
    let out = out.to_str().unwrap();
    s.ctl(key, &["evidence", "example-0001", "--out", out]);
    let r = run("ledger-verify", &["evidence", out, "--key", key]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// `examples/signed/` is what an enforcer implementing signatures
/// (specs/signed-record.md) tests against: `decision.json` in canonical
/// form, and that record signed by the published test key (seed bytes
/// 0x40..=0x5f, enforcer gw-eu-1). The canonical bytes are what ledgerd's
/// checks make of the JSON; the signed record is read and its signature
/// verified by coset and ed25519-dalek alone, as another implementation
/// would. `LEDGER_WRITE_EXAMPLES=1` writes the files again.
#[test]
fn the_signed_example_is_the_decision_signed_by_the_test_key() {
    use coset::{iana, CoseSign1, TaggedCborSerializable};
    use ingest::input::{parse_body, Format, Sender};
    use verifier::enforcer_signature::EnforcerSignature;

    let json = std::fs::read(example("decision.json")).unwrap();
    let checked = parse_body(Format::Json, &json, &Sender::relay("example"))
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let canonical = checked.cbor();
    let seed: [u8; 32] = std::array::from_fn(|i| 0x40 + i as u8);
    let signer = verifier::SignerKey::from_seed("gw-eu-1", &seed).unwrap();
    let signed = EnforcerSignature::sign(&signer, canonical).encode_attached(canonical);
    let public = format!("{}\n", signer.verifier());
    let files: [(&str, &[u8]); 3] = [
        ("signed/decision.canonical.cbor", canonical),
        ("signed/decision.signed.cbor", &signed),
        ("signed/gw-eu-1.pub", public.as_bytes()),
    ];
    for (name, bytes) in files {
        if std::env::var_os("LEDGER_WRITE_EXAMPLES").is_some() {
            std::fs::create_dir_all(Path::new(&example("signed"))).unwrap();
            std::fs::write(example(name), bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(example(name)).unwrap(),
            bytes,
            "examples/{name} is not what the checks and the test key make"
        );
    }

    let sign1 = CoseSign1::from_tagged_slice(&signed).unwrap();
    let h = &sign1.protected.header;
    assert_eq!(
        h.alg,
        Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA))
    );
    assert_eq!(
        h.content_type,
        Some(coset::ContentType::Text(
            "application/vnd.decision-ledger.record+cbor".into()
        ))
    );
    assert_eq!(h.key_id, signer.verifier().id().to_be_bytes().to_vec());
    assert_eq!(sign1.payload.as_deref(), Some(canonical));
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    sign1
        .verify_signature(b"", |sig, data| {
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|e| e.to_string())?;
            public.verify_strict(data, &sig).map_err(|e| e.to_string())
        })
        .unwrap();
}

/// The README's use of `examples/signed/`: with the test key registered,
/// the unsigned example is refused and the signed one logged.
#[test]
fn the_signed_example_ships_once_its_key_is_registered() {
    let s = Server::start(&[]);
    let url = format!("http://{}", s.addr);
    let data = s.data.to_str().unwrap();
    ok(
        "ledgerctl",
        &[
            "--data",
            data,
            "enforcer",
            "add",
            &example("signed/gw-eu-1.pub"),
        ],
    );
    let ship = |file: &str| {
        run(
            "ledgerctl",
            &["--url", &url, "--token", &s.writer, "ship", &example(file)],
        )
    };
    let unsigned = ship("decision.json");
    assert!(
        unsigned.code != 0 && unsigned.stderr.contains("must come signed"),
        "{}",
        unsigned.stderr
    );
    let signed = ship("signed/decision.signed.cbor");
    assert!(
        signed.code == 0 && signed.stdout.contains("1 appended"),
        "{}{}",
        signed.stdout,
        signed.stderr
    );
}
