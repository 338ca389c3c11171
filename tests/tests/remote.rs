//! ledgerctl against a running ledgerd (--url, --token), and the same reads
//! on the data dir once the server is stopped; `search --follow` printing
//! new matches as they are logged, across a restart.

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
    // Windows back from now: all were received in the last hour, none before.
    let since = |flag: &str| {
        let args = [
            "--data",
            data,
            "search",
            "--subject",
            "cat",
            flag,
            "1h",
            "--json",
        ];
        ok("ledgerctl", &args).lines().count()
    };
    assert_eq!((since("--received-from"), since("--received-to")), (3, 0));
    assert!(ok("ledgerctl", &["--data", data, "audit"]).starts_with("audit OK: 5043 entries"));
}

/// `search --follow` prints the matches logged so far, then each new one
/// as it is logged: every one exactly once, in log order, while records
/// are shipped in many requests at once (some of them committed while a
/// page is read), and on through a restart of ledgerd.
#[test]
fn search_follow_prints_every_new_match_once() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    let url = format!("http://{}", s.addr);
    s.append(&json!([
        record("f0", "ann"),
        record("f1", "ben"),
        record("f2", "ann")
    ]));
    let mut follower = std::process::Command::new(ledger_tests::bin("ledgerctl"))
        .args([
            "--url",
            &url,
            "--token",
            &s.reader,
            "search",
            "--subject",
            "ann",
        ])
        .args(["--json", "--follow", "--interval", "1s", "--limit", "7"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("follow.err")).unwrap())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let _ = tx.send((
                v["index"].as_u64().unwrap(),
                v["decision_id"].as_str().unwrap().to_string(),
            ));
        }
    });
    let mut seen = Vec::new();
    let wait_for = |n: usize, seen: &mut Vec<(u64, String)>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while seen.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(hit) => seen.push(hit),
                Err(_) => panic!(
                    "{} of {n} matches printed, the last {:?}",
                    seen.len(),
                    seen.last()
                ),
            }
        }
    };
    wait_for(2, &mut seen);

    // 1,200 records in 100-record requests, 4 writers at once: 400 ann.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, auth) = (s.addr.clone(), format!("Bearer {}", s.writer));
            std::thread::spawn(move || {
                for b in 0..3 {
                    let batch: Vec<serde_json::Value> = (b * 100..(b + 1) * 100)
                        .map(|i| {
                            let subject = if i % 3 == 0 { "ann" } else { "ben" };
                            record(&format!("w{w}-{i}"), subject)
                        })
                        .collect();
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ];
                    let body = serde_json::Value::from(batch).to_string();
                    let r = ledger_tests::http(
                        &addr,
                        "POST",
                        "/v1/decisions",
                        &headers,
                        body.as_bytes(),
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    wait_for(402, &mut seen);

    // ledgerd stops and starts again on the same address: the follower
    // asks again until it answers, and goes on where it was.
    let (addr, writer) = (s.addr.clone(), s.writer.clone());
    s.stop();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut s = Server::start_on(&data, &addr, &[]);
    s.writer = writer;
    s.append(&json!([
        record("after-restart", "ann"),
        record("not-ann", "ben")
    ]));
    wait_for(403, &mut seen);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = follower.kill();
    let _ = follower.wait();
    while let Ok(hit) = rx.try_recv() {
        seen.push(hit);
    }

    assert_eq!(seen.len(), 403, "no match printed twice");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in log order");
    let mut want: Vec<String> = ["f0", "f2", "after-restart"].map(String::from).to_vec();
    want.extend((0..4).flat_map(|w| (0..300).step_by(3).map(move |i| format!("w{w}-{i}"))));
    let mut got: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let err = std::fs::read_to_string(dir.path().join("follow.err")).unwrap();
    assert!(
        err.contains("asking again") && err.contains("answers again"),
        "{err}"
    );
}

/// `status` exited 1 naming `what` on an `attention:` line.
fn needs_attention(r: ledger_tests::Run, what: &str) {
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("attention: {what}")),
        "{}",
        r.stdout
    );
}

/// `ledgerctl status` reads a running ledgerd at a glance, and exits 1
/// naming what needs a person: here a writer silent for longer than
/// `--silent-after`, and a checkpoint that does not verify with the key
/// given.
#[test]
fn status_names_what_needs_attention() {
    let s = Server::start(&[]);
    let url = format!("http://{}", s.addr);
    s.append(&json!([record("st-1", "ann"), record("st-2", "ann")]));
    let key = s.data.join("log.pub");
    let status = |key: &str, extra: &[&str]| {
        run(
            "ledgerctl",
            &[&["--url", url.as_str(), "--key", key, "status"][..], extra].concat(),
        )
    };
    ledger_tests::wait_until("a checkpoint of 2", || {
        status(key.to_str().unwrap(), &[])
            .stdout
            .contains("checkpoint: size 2,")
    });
    let r = status(key.to_str().unwrap(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for line in [
        "ready\n",
        ": 2 entries\n",
        "by 1 log key, verified with",
        "witnesses: none",
        "writer local-enforcer: 2 records appended, last write",
        "%) where the data dir is\n",
    ] {
        assert!(r.stdout.contains(line), "{line}: {}", r.stdout);
    }
    assert!(!r.stdout.contains("attention:"), "{}", r.stdout);

    std::thread::sleep(std::time::Duration::from_millis(2100));
    needs_attention(
        status(key.to_str().unwrap(), &["--silent-after", "1s"]),
        "writer local-enforcer has sent nothing for",
    );
    let other = ok(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "decisions.localhost/log",
            "--out",
            s.data.join("other").to_str().unwrap(),
        ],
    );
    needs_attention(status(other.trim(), &[]), "the checkpoint does not verify");
    // Without --url it says what it needs.
    let r = run("ledgerctl", &["status"]);
    assert!(
        r.code != 0 && r.stderr.contains("give --url"),
        "{}",
        r.stderr
    );
}

/// A responder who asks for the evidence of a decision right after it was
/// shipped gets it: ledgerctl asks again while ledgerd answers 503 with
/// `Retry-After` (not yet in a signed checkpoint), here for up to 3 s.
#[test]
fn evidence_of_a_decision_just_shipped_waits_for_its_checkpoint() {
    let s = Server::with_config("checkpoint_interval_ms = 3000\n", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.evidence");
    // The first checkpoint ledgerd signs after start, so the one that
    // follows this record is about 3 s away.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.append(&serde_json::Value::Array(vec![record("fresh-1", "dee")]));
    let asked = std::time::Instant::now();
    // ctl asserts exit 0.
    s.ctl(
        &s.key,
        &["evidence", "fresh-1", "--out", out.to_str().unwrap()],
    );
    assert!(out.exists());
    // It did wait (without the retry, the 503 comes at once).
    assert!(asked.elapsed() >= std::time::Duration::from_millis(500));
}

/// `tail -F decisions.jsonl | ledgerctl ship -`: a record written to an
/// input that stays open is logged at once, not when a batch fills.
#[test]
fn ship_sends_a_slow_stream_as_it_comes() {
    use std::io::Write;
    let s = Server::start(&[]);
    let url = format!("http://{}", s.addr);
    let mut ship = std::process::Command::new(ledger_tests::bin("ledgerctl"))
        .args(["--url", &url, "--token", &s.writer, "ship", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = ship.stdin.take().unwrap();
    for (i, id) in ["slow-1", "slow-2"].into_iter().enumerate() {
        writeln!(stdin, "{}", record(id, "alice")).unwrap();
        stdin.flush().unwrap();
        ledger_tests::wait_until(&format!("{id} logged while the input is open"), || {
            s.tree_size() == i as u64 + 1
        });
    }
    drop(stdin);
    let out = ship.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("shipped: 2 appended"));
}
