//! ledgerctl against a running ledgerd (--url, --token), and the same reads
//! on the data dir once the server is stopped.

use ledger_tests::{ok, run, Server};
use serde_json::json;

fn record(id: &str, subject: &str) -> serde_json::Value {
    json!({
        "decision_id": id, "time": "2026-11-23T07:00:00Z",
        "enforcer": {"id": "gw", "kind": "gateway"},
        "subject": {"type": "user", "id": subject, "identity_kind": "human", "owner": subject},
        "action": {"name": "read"}, "resource": {"type": "api", "id": "orders"},
        "policy": {"engine": "opa", "id": "p", "version": "1"}, "decision": "deny"
    })
}

#[test]
fn ledgerctl_reads_and_ships_over_http_and_locally() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &["--config", "/dev/null"]);
    let url = format!("http://{}", s.addr);
    let f = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // JSON lines and a CBOR sequence.
    let lines: String = (0..40)
        .map(|i| {
            record(&format!("j{i}"), if i % 2 == 0 { "ann" } else { "ben" }).to_string() + "\n"
        })
        .collect();
    std::fs::write(f("recs.jsonl"), lines).unwrap();
    let mut seq = Vec::new();
    for i in 0..3 {
        ciborium::into_writer(&record(&format!("c{i}"), "cat"), &mut seq).unwrap();
    }
    std::fs::write(f("recs.cbor"), seq).unwrap();
    let out = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.writer,
            "ship",
            &f("recs.jsonl"),
            &f("recs.cbor"),
        ],
    );
    assert!(out.contains("43 appended, 0 duplicate"), "{out}");
    let out = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.writer,
            "ship",
            &f("recs.jsonl"),
        ],
    );
    assert!(out.contains("0 appended, 40 duplicate"), "{out}");
    let mut bad = record("x", "ann");
    bad["decision"] = json!("perhaps");
    std::fs::write(f("bad.jsonl"), bad.to_string()).unwrap();
    let r = run(
        "ledgerctl",
        &["--url", &url, "--token", &s.writer, "ship", &f("bad.jsonl")],
    );
    assert!(r.code != 0 && r.stderr.contains("perhaps"), "{}", r.stderr);
    let r = run(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.reader,
            "ship",
            &f("recs.jsonl"),
        ],
    );
    assert!(r.code != 0 && r.stderr.contains("403"), "{}", r.stderr);

    // Search with a reader token.
    let out = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.reader,
            "search",
            "--subject",
            "ann",
            "--limit",
            "5",
            "--json",
        ],
    );
    let hits: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        hits.iter()
            .map(|h| h["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 2, 4, 6, 8]
    );

    // Proofs computed from tiles, checked by the offline verifier.
    let key = s.data.join("log.pub").to_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !ok("ledgerctl", &["--url", &url, "--key", &key, "checkpoint"]).contains("\n43\n") {
        assert!(std::time::Instant::now() < deadline, "no checkpoint at 43");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--key",
            &key,
            "prove",
            "41",
            "--out",
            &f("c1.tlog-proof"),
        ],
    );
    let leaf = s.request(
        "GET",
        "/v1/decisions/c1",
        &[
            ("Authorization", &format!("Bearer {}", s.reader)),
            ("Accept", "application/cbor"),
        ],
        b"",
    );
    std::fs::write(f("c1.leaf"), &leaf.body).unwrap();
    ok(
        "ledger-verify",
        &[
            "proof",
            "--key",
            &key,
            "--entry",
            &f("c1.leaf"),
            &f("c1.tlog-proof"),
        ],
    );
    let out = ok("ledgerctl", &["--url", &url, "--key", &key, "audit"]);
    assert!(out.starts_with("audit OK: 43 entries"), "{out}");
    let proof = ok(
        "ledgerctl",
        &["--url", &url, "prove-consistency", "10", "43"],
    );
    assert!(proof.starts_with("old 10\nnew 43\n"));
    let r = run("ledgerctl", &["--url", &url, "--key", "nonsense", "audit"]);
    assert!(r.code != 0 && r.stderr.contains("--key"), "{}", r.stderr);

    // Load over HTTP, bounded.
    let out = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.writer,
            "bench",
            "--records",
            "2000",
            "--concurrency",
            "4",
            "--batch",
            "50",
        ],
    );
    // CBOR, JSON and a paced phase of half as many, then the in-process
    // baseline (in a temp dir of its own).
    for part in [
        "Cbor:",
        "Json:",
        "paced at half",
        "the in-process pipeline",
        "server peak RSS",
    ] {
        assert!(out.contains(part), "{part}: {out}");
    }

    // The same reads on the data dir once ledgerd is stopped.
    assert_eq!(s.stop(), Some(0));
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = ok(
        "ledgerctl",
        &["--data", data, "search", "--subject", "cat", "--json"],
    );
    assert_eq!(out.lines().count(), 3);
    assert!(ok("ledgerctl", &["--data", data, "audit"]).starts_with("audit OK: 5043 entries"));
}
