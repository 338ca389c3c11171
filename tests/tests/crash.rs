//! A crash at any instant loses nothing acknowledged, and every checkpoint
//! after restart is consistent with every one before: ledgerd is killed with
//! SIGKILL in the middle of a bounded load on 127.0.0.1, restarted, and
//! checked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_tests::{ok, try_http, Server};
use serde_json::{json, Value};
use verifier::{checkpoint, VerifierKey};

fn record(id: &str) -> Value {
    json!({
        "decision_id": id, "time": "2026-11-23T07:00:00Z",
        "enforcer": {"id": "gw", "kind": "gateway"},
        "subject": {"type": "user", "id": "u", "identity_kind": "human", "owner": "u"},
        "action": {"name": "read"}, "resource": {"type": "api", "id": "r"},
        "policy": {"engine": "opa", "id": "p", "version": "1"}, "decision": "allow"
    })
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start_in(&data, &[]);
    let (writer, reader, key) = (
        first.writer.clone(),
        first.reader.clone(),
        first.key.clone(),
    );
    let key = VerifierKey::parse(&key).unwrap();
    let mut server = Some(first);
    let mut seen_checkpoints: Vec<String> = Vec::new();
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3u64 {
        let s = server
            .take()
            .unwrap_or_else(|| Server::start_in(&data, &[]));
        let addr = s.addr.clone();
        let acks = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop_at = Instant::now() + Duration::from_millis(400 + 300 * round);
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (addr, writer, acks) = (addr.clone(), writer.clone(), acks.clone());
                std::thread::spawn(move || {
                    // Bounded: at most 200 requests per worker, and only until the kill.
                    for n in 0..200 {
                        let ids: Vec<String> =
                            (0..20).map(|i| format!("r{round}-w{w}-n{n}-{i}")).collect();
                        let body =
                            Value::Array(ids.iter().map(|id| record(id)).collect()).to_string();
                        let auth = format!("Bearer {writer}");
                        let headers = [
                            ("Authorization", auth.as_str()),
                            ("Content-Type", "application/json"),
                        ];
                        match try_http(&addr, "POST", "/v1/decisions", &headers, body.as_bytes()) {
                            Some(r) if r.status == 200 => acks.lock().unwrap().extend(ids),
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        while Instant::now() < stop_at {
            let r = s.request("GET", "/checkpoint", &[], b"");
            if r.status == 200 {
                seen_checkpoints.push(r.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        s.kill9();
        for w in workers {
            let _ = w.join();
        }
        acknowledged.extend(acks.lock().unwrap().drain(..));
    }

    // Restart: every acknowledged record is there, the log audits clean, and
    // the new checkpoint extends every checkpoint seen before the crashes.
    let s = Server::start_in(&data, &[]);
    assert!(
        !acknowledged.is_empty(),
        "the load produced acknowledgements"
    );
    let rauth = format!("Bearer {reader}");
    for id in &acknowledged {
        let r = s.request(
            "GET",
            &format!("/v1/decisions/{id}"),
            &[("Authorization", &rauth)],
            b"",
        );
        assert_eq!(r.status, 200, "acknowledged {id} lost: {}", r.text());
    }
    let size = s.request("GET", "/metrics", &[], b"").text();
    let size: u64 = size
        .lines()
        .find_map(|l| l.strip_prefix("ledger_tree_size "))
        .unwrap()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let latest = loop {
        let text = s.request("GET", "/checkpoint", &[], b"").text();
        let cp = checkpoint::open(text.as_bytes(), &key).unwrap();
        if cp.size >= size {
            break (cp, text);
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    };
    seen_checkpoints.dedup();
    for old in &seen_checkpoints {
        let o = checkpoint::open(old.as_bytes(), &key).unwrap();
        let proof = s.request(
            "GET",
            &format!("/v1/proof/consistency?from={}&to={}", o.size, latest.0.size),
            &[],
            b"",
        );
        let file = verifier::consistency_file::ConsistencyFile::parse(&proof.body).unwrap();
        file.verify(old.as_bytes(), latest.1.as_bytes(), &key)
            .unwrap_or_else(|e| panic!("checkpoint at {} not extended: {e}", o.size));
    }
    assert_eq!(s.stop(), Some(0));
    let out = ok("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(out.starts_with("audit OK"), "{out}");
}
