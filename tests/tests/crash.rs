//! A crash at any instant loses nothing acknowledged, and every checkpoint
//! after restart is consistent with every one before: ledgerd is killed
//! with SIGKILL at a random moment of a bounded load on 127.0.0.1 (with a
//! checkpoint signed every 20 ms, so kills land in commits and signings
//! alike), restarted, and checked, cycle after cycle.
//!
//! `make test` runs 5 cycles. The long form (docs/reliability.md):
//! `LEDGER_CRASH_CYCLES=100 cargo test -p ledger-tests --test crash -- --nocapture`;
//! `LEDGER_CRASH_SEED` repeats a run's kill moments.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_tests::{try_http, Server};
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

/// An acknowledged record: its index and leaf hash, as the ack said.
type Acks = HashMap<String, (u64, String)>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift: the kill moments of a run, from its seed.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Four writers sending 20 records a request until the server is gone
/// (bounded: 200 requests each); their acknowledgements.
fn load(
    addr: &str,
    writer: &str,
    cycle: u64,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<Mutex<Acks>>) {
    let acks = Arc::new(Mutex::new(Acks::new()));
    let workers = (0..4)
        .map(|w| {
            let (addr, writer, acks) = (addr.to_string(), writer.to_string(), acks.clone());
            std::thread::spawn(move || {
                for n in 0..200 {
                    let ids: Vec<String> =
                        (0..20).map(|i| format!("c{cycle}-w{w}-n{n}-{i}")).collect();
                    let body = Value::Array(ids.iter().map(|id| record(id)).collect()).to_string();
                    let auth = format!("Bearer {writer}");
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ];
                    let Some(r) =
                        try_http(&addr, "POST", "/v1/decisions", &headers, body.as_bytes())
                    else {
                        return;
                    };
                    if r.status != 200 {
                        return;
                    }
                    let j: Value = serde_json::from_slice(&r.body).unwrap();
                    let mut acks = acks.lock().unwrap();
                    for res in j["results"].as_array().unwrap() {
                        acks.insert(
                            res["decision_id"].as_str().unwrap().to_string(),
                            (
                                res["index"].as_u64().unwrap(),
                                res["leaf_hash"].as_str().unwrap().to_string(),
                            ),
                        );
                    }
                }
            })
        })
        .collect();
    (workers, acks)
}

/// The record `id` as the server has it: (index, leaf hash).
fn logged(s: &Server, reader: &str, id: &str) -> Option<(u64, String)> {
    let auth = format!("Bearer {reader}");
    let r = s.request(
        "GET",
        &format!("/v1/decisions/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    if r.status != 200 {
        return None;
    }
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    Some((j["index"].as_u64()?, j["leaf_hash"].as_str()?.to_string()))
}

/// The newest checkpoint, once it covers the whole log.
fn settled(s: &Server, key: &VerifierKey) -> (checkpoint::Checkpoint, String) {
    let size = s.tree_size();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = s.request("GET", "/checkpoint", &[], b"").text();
        let cp = checkpoint::open(text.as_bytes(), key).unwrap();
        if cp.size >= size {
            return (cp, text);
        }
        assert!(Instant::now() < deadline, "no checkpoint of {size}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let cycles = env("LEDGER_CRASH_CYCLES", 5);
    let seed = env(
        "LEDGER_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("crash: {cycles} cycles, LEDGER_CRASH_SEED={seed}");
    let mut x = seed;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("ledgerd.toml");
    std::fs::write(&config, "checkpoint_interval_ms = 20\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let first = Server::start_in(&data, &args);
    let (writer, reader) = (first.writer.clone(), first.reader.clone());
    let key = VerifierKey::parse(&first.key).unwrap();
    let mut server = Some(first);
    let mut seen_checkpoints: Vec<String> = Vec::new();
    let mut acknowledged = Acks::new();
    for cycle in 0..cycles {
        let s = server.take().unwrap_or_else(|| {
            let mut s = Server::start_in(&data, &args);
            (s.writer, s.reader) = (writer.clone(), reader.clone());
            s
        });
        // What survived the last kill: the last cycle's acks at their
        // indexes and leaf hashes, a retry of some a duplicate, and every
        // checkpoint seen so far extended by the newest.
        let (latest, latest_text) = settled(&s, &key);
        for old in &seen_checkpoints {
            let o = checkpoint::open(old.as_bytes(), &key).unwrap();
            let proof = s.request(
                "GET",
                &format!("/v1/proof/consistency?from={}&to={}", o.size, latest.size),
                &[],
                b"",
            );
            let file = verifier::consistency_file::ConsistencyFile::parse(&proof.body).unwrap();
            file.verify(old.as_bytes(), latest_text.as_bytes(), &key)
                .unwrap_or_else(|e| {
                    panic!("cycle {cycle}: checkpoint at {} not extended: {e}", o.size)
                });
        }
        seen_checkpoints.clear();
        seen_checkpoints.push(latest_text);
        let prefix = format!("c{}-", cycle.wrapping_sub(1));
        for (id, want) in acknowledged
            .iter()
            .filter(|(id, _)| id.starts_with(&prefix))
        {
            assert_eq!(
                logged(&s, &reader, id).as_ref(),
                Some(want),
                "cycle {cycle}: acknowledged {id}"
            );
        }
        if let Some(id) = acknowledged.keys().next() {
            let auth = format!("Bearer {writer}");
            let r = s.request(
                "POST",
                "/v1/decisions",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                record(id).to_string().as_bytes(),
            );
            let j: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                j["results"][0]["status"], "duplicate",
                "cycle {cycle}: a retry of {id}"
            );
            assert_eq!(j["results"][0]["index"].as_u64(), Some(acknowledged[id].0));
        }
        // Load, then a kill at a random moment of it.
        let (workers, acks) = load(&s.addr, &writer, cycle);
        let kill_at = Instant::now() + Duration::from_millis(30 + next(&mut x) % 400);
        while Instant::now() < kill_at {
            let r = s.request("GET", "/checkpoint", &[], b"");
            if r.status == 200 {
                seen_checkpoints.push(r.text());
            }
            std::thread::sleep(Duration::from_millis(1 + next(&mut x) % 15));
        }
        s.kill9();
        for w in workers {
            let _ = w.join();
        }
        acknowledged.extend(acks.lock().unwrap().drain());
    }

    // At the end: every record acknowledged in any cycle is at its index and
    // leaf hash, no decision is in the log twice, and the log audits clean.
    let mut s = Server::start_in(&data, &args);
    (s.writer, s.reader) = (writer.clone(), reader.clone());
    assert!(
        !acknowledged.is_empty(),
        "the load produced acknowledgements"
    );
    for (id, want) in &acknowledged {
        assert_eq!(
            logged(&s, &reader, id).as_ref(),
            Some(want),
            "acknowledged {id} lost"
        );
    }
    let (latest, _) = settled(&s, &key);
    let mut ids = std::collections::HashSet::new();
    for tile in verifier::tile::entry_bundles(0, latest.size) {
        let bundle = s
            .request("GET", &format!("/{}", tile.path()), &[], b"")
            .body;
        for leaf in verifier::tile::decode_bundle_of(&tile, &bundle).unwrap() {
            let d = verifier::decision::LoggedDecision::from_leaf(leaf).unwrap();
            assert!(
                ids.insert(d.decision.decision_id.clone()),
                "{} is in the log twice",
                d.decision.decision_id
            );
        }
    }
    eprintln!(
        "crash: {cycles} cycles, {} acknowledged records all found, {} leaves, none twice",
        acknowledged.len(),
        latest.size
    );
    assert_eq!(s.stop(), Some(0));
    // Audited clean, and received_at never went back across the restarts
    // (the audit warns on stderr where it does).
    let r = ledger_tests::run("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(
        r.code == 0 && r.stdout.starts_with("audit OK"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("received before"), "{}", r.stderr);
}
