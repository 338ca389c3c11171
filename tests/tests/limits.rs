//! Failing cleanly and writers' identity, on the real ledgerd: a writer
//! token speaks for its own enforcer only (a relay for any), tokens expire,
//! a body declared too large is refused before it is read, the signing key
//! must be private, a full disk is 507 with reads still served and
//! writes resumed once space is back, and a token over its record rate is
//! 429 while others go on.

use std::time::{Duration, Instant};

use ledger_tests::{ok, run, Server, Tmpfs};
use serde_json::{json, Value};

fn record(id: &str, enforcer: &str) -> Value {
    json!({
        "decision_id": id, "time": "2026-11-23T07:00:00Z",
        "enforcer": {"id": enforcer, "kind": "gateway"},
        "subject": {"type": "user", "id": "alice", "identity_kind": "human", "owner": "alice"},
        "action": {"name": "read"}, "resource": {"type": "api", "id": "orders"},
        "policy": {"engine": "opa", "id": "p", "version": "1"}, "decision": "allow"
    })
}

#[test]
fn writers_speak_for_their_own_enforcer_and_tokens_expire() {
    let s = Server::start(&[]);
    let writer = s.add_token(&["--enforcer", "gw-bound", "--role", "writer"]);
    let relay = s.add_token(&["--enforcer", "collector-1", "--role", "relay"]);
    assert_eq!(s.post(&writer, &record("w-1", "gw-bound")).status, 200);
    // Another enforcer's record: 403 with the reason, nothing appended,
    // even when it is one of a batch.
    let r = s.post(&writer, &record("w-2", "gw-other"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("gw-bound") && r.text().contains("nothing of this request was appended"),
        "{}",
        r.text()
    );
    let r = s.post(
        &writer,
        &json!([record("w-3", "gw-bound"), record("w-4", "gw-other")]),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.tree_size(), 1);
    // A CBOR sequence stops at the first such record.
    let mut seq = Vec::new();
    for (id, e) in [
        ("w-5", "gw-bound"),
        ("w-6", "gw-other"),
        ("w-7", "gw-bound"),
    ] {
        ciborium::into_writer(&record(id, e), &mut seq).unwrap();
    }
    let auth = format!("Bearer {writer}");
    let r = s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/cbor-seq"),
        ],
        &seq,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(j["appended"], 1, "{j}");
    assert_eq!(
        j["results"].as_array().unwrap().len(),
        2,
        "w-7 was not read: {j}"
    );
    // A relay writes for anyone, and is what submitted_by says.
    let r = s.post(
        &relay,
        &json!([record("r-1", "gw-a"), record("r-2", "gw-b")]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let reader = format!("Bearer {}", s.reader);
    let d: Value = serde_json::from_slice(
        &s.request(
            "GET",
            "/v1/decisions/r-2",
            &[("Authorization", &reader)],
            b"",
        )
        .body,
    )
    .unwrap();
    assert_eq!(
        (
            d["submitted_by"].clone(),
            d["record"]["enforcer"]["id"].clone()
        ),
        (json!("collector-1"), json!("gw-b"))
    );
    // The OPA endpoint takes a writer's enforcer from its token.
    let event = json!([{"decision_id": "opa-1", "timestamp": "2026-11-23T07:00:00Z", "result": true,
                        "labels": {"id": "someone-else"}, "path": "authz/allow"}]);
    let r = s.request(
        "POST",
        "/v1/opa/logs",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        event.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let d: Value = serde_json::from_slice(
        &s.request(
            "GET",
            "/v1/decisions/opa-1",
            &[("Authorization", &reader)],
            b"",
        )
        .body,
    )
    .unwrap();
    assert_eq!(d["record"]["enforcer"]["id"], "gw-bound");
    assert_eq!(
        d["record"]["extensions"]["opa"]["labels"]["id"],
        "someone-else"
    );
    // Tokens expire (3 s: room for a loaded machine to use it once first).
    let brief = s.add_token(&[
        "--enforcer",
        "gw-brief",
        "--role",
        "writer",
        "--expires",
        "3s",
    ]);
    let added = Instant::now();
    assert_eq!(s.post(&brief, &record("b-1", "gw-brief")).status, 200);
    std::thread::sleep(Duration::from_millis(3300).saturating_sub(added.elapsed()));
    let r = s.post(&brief, &record("b-2", "gw-brief"));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("expired"), "{}", r.text());
    let list = ok(
        "ledgerctl",
        &["--data", s.data.to_str().unwrap(), "token", "list"],
    );
    assert!(
        list.lines().any(|l| l.contains("gw-brief expires ")),
        "{list}"
    );
    let r = run(
        "ledgerctl",
        &[
            "--data",
            s.data.to_str().unwrap(),
            "token",
            "add",
            "--enforcer",
            "x",
            "--role",
            "writer",
            "--expires",
            "soon",
        ],
    );
    assert!(
        r.code != 0 && r.stderr.contains("--expires"),
        "{}",
        r.stderr
    );
}

/// A token made with `--rate 100` sends 100 records a second on average:
/// a request while it is in debt is 429 with the seconds to wait, nothing
/// of it appended, and other tokens are not held up; after the wait it is
/// let in again, and `ledgerctl ship` waits as told and lands everything.
#[test]
fn a_token_over_its_rate_waits_and_others_go_on() {
    let s = Server::start(&[]);
    let limited = s.add_token(&["--enforcer", "gw-r", "--role", "writer", "--rate", "100"]);
    let listed = ok(
        "ledgerctl",
        &["--data", s.data.to_str().unwrap(), "token", "list"],
    );
    assert!(listed.contains("writer gw-r rate 100/s"), "{listed}");
    let batch = |prefix: &str, n: usize| {
        Value::from(
            (0..n)
                .map(|i| record(&format!("{prefix}-{i}"), "gw-r"))
                .collect::<Vec<_>>(),
        )
    };
    // A second's worth, then 150 more (let in: the bucket was not in debt).
    assert_eq!(s.post(&limited, &batch("r1", 100)).status, 200);
    assert_eq!(s.post(&limited, &batch("r2", 150)).status, 200);
    let size = s.tree_size();
    let r = s.post(&limited, &batch("r3", 10));
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(
        r.text().contains("over its rate of 100 records a second"),
        "{}",
        r.text()
    );
    // Nothing of it appended; another token's records go in meanwhile.
    assert_eq!(s.tree_size(), size);
    assert_eq!(
        s.post(&s.writer, &json!(record("other-1", "gw-x"))).status,
        200
    );
    assert_eq!(s.metric("ledger_requests_over_rate_total"), 1.0);
    // Each writer's records and last write are in /metrics.
    let m = s.request("GET", "/metrics", &[], b"").text();
    ledger_tests::assert_metrics_described(&m);
    for line in [
        "ledger_writer_records_appended_total{submitted_by=\"gw-r\"} 250\n",
        "ledger_writer_records_appended_total{submitted_by=\"local-enforcer\"} 1\n",
        "ledger_writer_last_write_timestamp_seconds{submitted_by=\"gw-r\"} ",
    ] {
        assert!(m.contains(line), "{line} in {m}");
    }
    // After the wait, let in again.
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(s.post(&limited, &batch("r3", 10)).status, 200);

    // ship is told to wait, waits, and lands every record.
    let file = s.data.join("r4.jsonl");
    let lines: String = (0..300)
        .map(|i| format!("{}\n", record(&format!("r4-{i}"), "gw-r")))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let url = format!("http://{}", s.addr);
    assert_eq!(s.post(&limited, &batch("r5", 400)).status, 200);
    let started = Instant::now();
    let out = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &limited,
            "ship",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("300 appended"), "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waited out the debt"
    );
    assert!(s.metric("ledger_requests_over_rate_total") >= 2.0);
}

#[test]
fn a_body_declared_too_large_is_refused_before_it_is_read() {
    let s = Server::start(&[]);
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.writer,
        80u64 << 20
    );
    let started = Instant::now();
    c.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 512];
    let n = c.read(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once, not after a timeout"
    );
    assert_eq!(s.tree_size(), 0);
}

#[test]
fn the_signing_key_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "keys.example/log",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    let key = data.join("log.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(
        "ledgerctl",
        &["--data", data.to_str().unwrap(), "checkpoint"],
    );
    assert!(
        r.code != 0
            && r.stderr.contains("readable by group or others")
            && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("PRIVATE+KEY"),
        "the key is never printed"
    );
    let out = std::process::Command::new(ledger_tests::bin("ledgerd"))
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod 600"), "{err}");
    assert!(
        !err.contains("PRIVATE+KEY")
            && !String::from_utf8_lossy(&out.stdout).contains("PRIVATE+KEY")
    );
}

#[test]
fn a_full_disk_is_507_reads_go_on_and_writes_resume() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("fs"), 96) else {
        return;
    };
    let mount = fs.0.clone();
    let s = Server::start_in(&mount.join("data"), &[]);
    let batch = |from: usize| -> Value {
        let mut r: Vec<Value> = (from..from + 200)
            .map(|i| record(&format!("d-{i}"), "gw"))
            .collect();
        for x in &mut r {
            x["extensions"] = json!({"pad": "x".repeat(2000)});
        }
        Value::Array(r)
    };
    assert_eq!(s.post(&s.writer, &batch(0)).status, 200);
    // Fill what is left, then write until the ledger says the disk is full.
    fs.fill(0);
    let mut full = None;
    for n in 1..200 {
        let r = s.post(&s.writer, &batch(n * 200));
        if r.status != 200 {
            full = Some(r);
            break;
        }
        // Space freed by RocksDB (flushed WAL): fill it again.
        fs.fill(0);
    }
    let r = full.expect("the disk filled up");
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("No space left"), "{}", r.text());
    // Reads keep working, and the metrics say why.
    let reader = format!("Bearer {}", s.reader);
    assert_eq!(
        s.request(
            "GET",
            "/v1/decisions/d-0",
            &[("Authorization", &reader)],
            b""
        )
        .status,
        200
    );
    assert_eq!(s.request("GET", "/checkpoint", &[], b"").status, 200);
    let m = s.request("GET", "/metrics", &[], b"").text();
    assert!(
        !m.contains("ledger_records_failed_disk_full_total 0\n"),
        "{m}"
    );
    // The disk's space is in /metrics, and `status` asks for a person.
    let size = s.metric("ledger_data_disk_size_bytes");
    assert!((90e6..=110e6).contains(&size), "{size}");
    assert!(s.metric("ledger_data_disk_available_bytes") < size * 0.05);
    let status = run(
        "ledgerctl",
        &["--url", &format!("http://{}", s.addr), "status"],
    );
    assert!(
        status.code == 1 && status.stdout.contains("the data dir's disk has"),
        "{}",
        status.stdout
    );
    // Space back: writes resume by themselves.
    fs.free();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.post(&s.writer, &json!([record("after-1", "gw")]));
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not resume: {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        s.request(
            "GET",
            "/v1/decisions/after-1",
            &[("Authorization", &reader)],
            b""
        )
        .status,
        200
    );
    assert!(s.metric("ledger_data_disk_available_bytes") > size * 0.5);
}
