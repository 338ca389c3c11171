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
