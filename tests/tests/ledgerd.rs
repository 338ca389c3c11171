//! ledgerd end to end on 127.0.0.1 with a temp data dir: enforcers ship
//! records, auditors verify every one from tiles alone, responders find and
//! prove them, and every class of bad request is refused with a reason.

use std::time::{Duration, Instant};

use ledger_tests::Server;
use serde_json::{json, Value};
use verifier::inclusion::verify_inclusion;
use verifier::tile::{Tile, TileHashReader};
use verifier::{checkpoint, leaf_hash, VerifierKey};

fn record(id: &str, subject: &str, actor: &str) -> Value {
    json!({
        "decision_id": id, "time": "2026-11-23T07:00:00.123Z",
        "enforcer": {"id": "gw-1", "kind": "gateway"},
        "subject": {"type": "user", "id": subject, "identity_kind": "human", "owner": subject},
        "delegation": [{"identity_kind": "agent", "id": actor}],
        "action": {"name": "read"}, "resource": {"type": "api", "id": "orders"},
        "context": {"request_id": format!("req-{id}")},
        "policy": {"engine": "opa", "id": "orders.authz", "version": "7"}, "decision": "allow"
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn post_json(s: &Server, token: &str, body: &Value) -> ledger_tests::Response {
    let auth = bearer(token);
    s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

fn json_of(r: &ledger_tests::Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.text()))
}

/// Waits (bounded) until the signed checkpoint covers `size` entries.
fn checkpoint_covering(
    s: &Server,
    key: &VerifierKey,
    size: u64,
) -> (checkpoint::Checkpoint, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.request("GET", "/checkpoint", &[], b"");
        assert_eq!(r.status, 200);
        let cp = checkpoint::open(&r.body, key).expect("checkpoint verifies with the log key");
        if cp.size >= size {
            return (cp, r.text());
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint covering {size} within 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ship_verify_from_tiles_find_and_prove() {
    let s = Server::start(&[]);
    let key = VerifierKey::parse(&s.key).unwrap();

    // JSON array, CBOR map, CBOR sequence.
    let batch: Vec<Value> = (0..300)
        .map(|i| record(&format!("d{i}"), &format!("user{}", i % 7), "agent-x"))
        .collect();
    let r = post_json(&s, &s.writer, &Value::Array(batch));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r)["appended"], 300);
    let cbor = |v: &Value| {
        let mut b = Vec::new();
        ciborium::into_writer(v, &mut b).unwrap();
        b
    };
    let auth = bearer(&s.writer);
    let r = s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/cbor"),
        ],
        &cbor(&record("c1", "carol", "agent-y")),
    );
    assert_eq!(
        (r.status, json_of(&r)["results"][0]["index"].clone()),
        (200, json!(300)),
        "{}",
        r.text()
    );
    let post_sequence = |records: &[(&str, &str)]| {
        let seq: Vec<u8> = records
            .iter()
            .flat_map(|(id, actor)| cbor(&record(id, "sam", actor)))
            .collect();
        s.request(
            "POST",
            "/v1/decisions",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/cbor-seq"),
            ],
            &seq,
        )
    };
    let r = post_sequence(&[("s1", "agent-y"), ("s2", "agent-z")]);
    assert_eq!(json_of(&r)["appended"], 2, "{}", r.text());
    // An id only the ledger's own records may have is refused in a
    // sequence too, read as it arrives; the record after it is taken.
    let r = post_sequence(&[("ledger-retention-256", "agent-y"), ("s3", "agent-w")]);
    let answer = json_of(&r);
    assert_eq!(
        (&answer["appended"], &answer["rejected"]),
        (&json!(1), &json!(1)),
        "{}",
        r.text()
    );
    assert!(
        answer["results"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ledger's own records"),
        "{}",
        r.text()
    );
    let total = 304u64;

    // Auditor: checkpoint + tiles only, every leaf verified.
    let (cp, cp_text) = checkpoint_covering(&s, &key, total);
    assert_eq!(cp.size, total);
    let reader = TileHashReader::new(cp.size, |t: &Tile| {
        let r = s.request("GET", &format!("/{}", t.path()), &[], b"");
        if r.status == 200 {
            Ok(r.body)
        } else {
            Err(format!("{}: {}", r.status, r.text()))
        }
    });
    assert_eq!(verifier::tree::root(&reader, cp.size).unwrap(), cp.root);
    let mut leaves = Vec::new();
    for bundle in 0..=((total - 1) / 256) {
        let width = (total - bundle * 256).min(256);
        let t = Tile {
            kind: verifier::tile::TileKind::Entries,
            index: bundle,
            width: width as u16,
        };
        let r = s.request("GET", &format!("/{}", t.path()), &[], b"");
        assert_eq!(r.status, 200);
        let full = width == 256;
        assert_eq!(
            r.header("cache-control").unwrap().contains("immutable"),
            full
        );
        leaves.extend(
            verifier::tile::decode_bundle(&r.body)
                .unwrap()
                .into_iter()
                .map(|e| e.to_vec()),
        );
    }
    assert_eq!(leaves.len() as u64, total);
    for (i, leaf) in leaves.iter().enumerate() {
        let proof = verifier::tree::inclusion_proof(&reader, i as u64, cp.size).unwrap();
        verify_inclusion(&leaf_hash(leaf), i as u64, cp.size, &proof, &cp.root).unwrap();
        let env = verifier::envelope::Envelope::decode(leaf).unwrap();
        assert_eq!(
            env.submitted_by, "local-enforcer",
            "the authenticated enforcer, not the declared one"
        );
    }

    // Responder: the record, its exact leaf bytes, and a tlog-proof.
    let rauth = bearer(&s.reader);
    let r = s.request("GET", "/v1/decisions/c1", &[("Authorization", &rauth)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = json_of(&r);
    assert_eq!(
        (j["index"].clone(), j["record"]["subject"]["id"].clone()),
        (json!(300), json!("carol"))
    );
    let leaf = s.request(
        "GET",
        "/v1/decisions/c1",
        &[("Authorization", &rauth), ("Accept", "application/cbor")],
        b"",
    );
    assert_eq!(leaf.body, leaves[300]);
    let proof = s.request(
        "GET",
        "/v1/decisions/c1/proof",
        &[("Authorization", &rauth)],
        b"",
    );
    assert_eq!(proof.status, 200, "{}", proof.text());
    let verified = verifier::tlog_proof::verify(&proof.body, &leaf.body, &key).unwrap();
    assert_eq!(verified.size, cp.size);
    let old = s.request(
        "GET",
        &format!("/v1/decisions/d5/proof?size={}", cp.size),
        &[("Authorization", &rauth)],
        b"",
    );
    verifier::tlog_proof::verify(&old.body, &leaves[5], &key).unwrap();

    // Search, paged, in log order.
    let r = s.request(
        "GET",
        "/v1/search?subject=user3&limit=20",
        &[("Authorization", &rauth)],
        b"",
    );
    let j = json_of(&r);
    let idx: Vec<u64> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        idx,
        (0..300).filter(|i| i % 7 == 3).take(20).collect::<Vec<_>>()
    );
    let next = j["next_cursor"].as_u64().unwrap();
    let r = s.request(
        "GET",
        &format!("/v1/search?subject=user3&limit=100&cursor={next}"),
        &[("Authorization", &rauth)],
        b"",
    );
    assert_eq!(json_of(&r)["results"].as_array().unwrap().len(), 43 - 20);
    let r = s.request(
        "GET",
        "/v1/search?actor=agent-y",
        &[("Authorization", &rauth)],
        b"",
    );
    assert_eq!(json_of(&r)["results"].as_array().unwrap().len(), 2);
    let r = s.request(
        "GET",
        "/v1/search?request_id=req-s2&policy=orders.authz&version=7",
        &[("Authorization", &rauth)],
        b"",
    );
    assert_eq!(json_of(&r)["results"][0]["decision_id"], "s2");

    // Consistency between two checkpoints.
    let r = post_json(&s, &s.writer, &record("late", "zed", "agent-q"));
    assert_eq!(r.status, 200);
    let (cp2, cp2_text) = checkpoint_covering(&s, &key, total + 1);
    let c = s.request(
        "GET",
        &format!("/v1/proof/consistency?from={}&to={}", cp.size, cp2.size),
        &[],
        b"",
    );
    assert_eq!(c.status, 200, "{}", c.text());
    let file = verifier::consistency_file::ConsistencyFile::parse(&c.body).unwrap();
    file.verify(cp_text.as_bytes(), cp2_text.as_bytes(), &key)
        .unwrap();
    let past = s.request("GET", &format!("/v1/checkpoints/{}", cp.size), &[], b"");
    assert_eq!(past.text(), cp_text);
    assert_eq!(s.request("GET", "/v1/checkpoints/2", &[], b"").status, 404);

    let m = s.request("GET", "/metrics", &[], b"").text();
    assert!(m.contains("ledger_records_appended_total 305"), "{m}");
    // Every group commit's synced write is in the histograms, with its
    // WAL part: as many in the last bucket as were counted.
    let value = |name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {m}"))
    };
    for h in ["ledger_synced_write_seconds", "ledger_wal_write_seconds"] {
        let count = value(&format!("{h}_count"));
        assert!(count >= 1.0, "{m}");
        assert_eq!(value(&format!("{h}_bucket{{le=\"+Inf\"}}")), count, "{m}");
        assert!(
            value(&format!("{h}_bucket{{le=\"0.001\"}}")) <= count,
            "{m}"
        );
    }
    assert!(
        value("ledger_wal_write_seconds_sum") <= value("ledger_synced_write_seconds_sum"),
        "{m}"
    );
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(s.request("GET", "/readyz", &[], b"").status, 200);
    assert_handler_thread_slices(&s, false);
    assert_eq!(s.stop(), Some(0), "graceful shutdown exits 0");
}

/// Only with `--thread-priorities` do the runtime's threads (request
/// handlers, lookups) and the pipeline's stages get `ingest::sched`'s short
/// time slice; by default they keep the host's. Checked where the kernel
/// shows slices (`se.slice`, Linux 6.12 and later).
fn assert_handler_thread_slices(s: &Server, short_expected: bool) {
    let short = ingest::sched::LATENCY_SLICE.as_nanos() as u64;
    let tasks = std::path::PathBuf::from(format!("/proc/{}/task", s.child.id()));
    let mut seen = 0;
    for task in std::fs::read_dir(&tasks).unwrap() {
        let path = task.unwrap().path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let Some(slice) = ingest::sched::shown_slice(&path) else {
            continue;
        };
        let slice = slice.as_nanos() as u64;
        let name = name.trim();
        if name.starts_with("tokio-r")
            || ["ledger-writer", "ledger-batcher", "ledger-acks"].contains(&name)
        {
            assert_eq!(slice == short, short_expected, "{name}: {slice} ns");
            seen += 1;
        }
    }
    if ingest::sched::shown_slice(std::path::Path::new("/proc/self")).is_some() {
        assert!(seen >= 4, "runtime and stage threads: {seen}");
    }
}

#[test]
fn thread_priorities_are_opt_in() {
    let s = Server::start(&["--thread-priorities"]);
    let r = post_json(&s, &s.writer, &record("prio-1", "u", "a"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_handler_thread_slices(&s, true);
}

#[test]
fn duplicates_conflicts_and_bad_requests() {
    let s = Server::start(&[]);
    let r = post_json(&s, &s.writer, &record("a", "u", "x"));
    assert_eq!(r.status, 200);
    let first = json_of(&r)["results"][0].clone();
    let r = post_json(&s, &s.writer, &record("a", "u", "x"));
    let again = json_of(&r)["results"][0].clone();
    assert_eq!(
        (
            again["status"].clone(),
            again["index"].clone(),
            again["leaf_hash"].clone()
        ),
        (
            json!("duplicate"),
            first["index"].clone(),
            first["leaf_hash"].clone()
        )
    );
    let r = post_json(&s, &s.writer, &record("a", "someone-else", "x"));
    assert_eq!(r.status, 409, "{}", r.text());

    // Mixed batch: good ones in, bad one reported by position.
    let mut bad = record("b2", "u", "x");
    bad["decision"] = json!("maybe");
    let r = post_json(
        &s,
        &s.writer,
        &json!([record("b1", "u", "x"), bad, record("b3", "u", "x")]),
    );
    let j = json_of(&r);
    assert_eq!(
        (r.status, j["appended"].clone(), j["rejected"].clone()),
        (200, json!(2), json!(1))
    );
    assert_eq!(
        j["results"][1]["reason"],
        "decision: \"maybe\" is not one of allow, deny"
    );

    let auth = bearer(&s.writer);
    let cases: Vec<(u16, ledger_tests::Response)> = vec![
        (
            401,
            s.request(
                "POST",
                "/v1/decisions",
                &[("Content-Type", "application/json")],
                b"{}",
            ),
        ),
        (
            401,
            s.request(
                "POST",
                "/v1/decisions",
                &[
                    ("Authorization", "Bearer dlt_nope"),
                    ("Content-Type", "application/json"),
                ],
                b"{}",
            ),
        ),
        (403, post_json(&s, &s.reader, &record("r", "u", "x"))),
        (
            415,
            s.request(
                "POST",
                "/v1/decisions",
                &[("Authorization", &auth), ("Content-Type", "text/plain")],
                b"hi",
            ),
        ),
        (
            400,
            s.request(
                "POST",
                "/v1/decisions",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                b"{not json",
            ),
        ),
        (
            400,
            s.request(
                "POST",
                "/v1/decisions",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/cbor"),
                ],
                &[0xff],
            ),
        ),
        (
            400,
            s.request(
                "POST",
                "/v1/decisions",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                b"[]",
            ),
        ),
        (400, post_json(&s, &s.writer, &json!({"decision_id": "z"}))),
        (
            413,
            s.request(
                "POST",
                "/v1/decisions",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                &vec![b' '; 17 << 20],
            ),
        ),
        (401, s.request("GET", "/v1/decisions/a", &[], b"")),
        (
            403,
            s.request("GET", "/v1/decisions/a", &[("Authorization", &auth)], b""),
        ),
        (
            404,
            s.request(
                "GET",
                "/v1/decisions/nope",
                &[("Authorization", &bearer(&s.reader))],
                b"",
            ),
        ),
        (
            400,
            s.request(
                "GET",
                "/v1/search?colour=red",
                &[("Authorization", &bearer(&s.reader))],
                b"",
            ),
        ),
        (
            400,
            s.request(
                "GET",
                "/v1/search?version=1",
                &[("Authorization", &bearer(&s.reader))],
                b"",
            ),
        ),
        (
            400,
            s.request(
                "GET",
                "/v1/search?from=yesterday",
                &[("Authorization", &bearer(&s.reader))],
                b"",
            ),
        ),
        (404, s.request("GET", "/tile/0/x000/001", &[], b"")),
        (404, s.request("GET", "/tile/0/001", &[], b"")),
        (
            400,
            s.request("GET", "/v1/proof/consistency?from=5&to=2", &[], b""),
        ),
        (
            400,
            s.request("GET", "/v1/proof/consistency?from=1", &[], b""),
        ),
    ];
    for (i, (want, r)) in cases.iter().enumerate() {
        assert_eq!(r.status, *want, "case {i}: {}", r.text());
        if *want != 413 {
            assert!(
                json_of(r)["error"].is_string() || json_of(r)["results"].is_array(),
                "case {i} has a reason"
            );
        }
    }
    // Nothing of the refused requests was appended: a, b1, b3.
    let m = s.request("GET", "/metrics", &[], b"").text();
    assert!(m.contains("ledger_tree_size 3\n"), "{m}");
    // Far below a span: all three wait in memory for their span's build.
    assert!(m.contains("ledger_index_unbuilt_leaves 3\n"), "{m}");
    // The host clock did not go back.
    assert!(m.contains("ledger_clock_held_commits_total 0\n"), "{m}");
    ledger_tests::assert_metrics_described(&m);
}

#[test]
fn tokens_are_managed_without_restart_and_data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    let data = s.data.to_str().unwrap().to_string();
    let out = ledger_tests::ok(
        "ledgerctl",
        &[
            "--data",
            &data,
            "token",
            "add",
            "--enforcer",
            "gw-1",
            "--role",
            "writer",
        ],
    );
    let token = out.lines().last().unwrap().to_string();
    let r = post_json(&s, &token, &record("t1", "u", "x"));
    assert_eq!(r.status, 200, "{}", r.text());
    let list = ledger_tests::ok("ledgerctl", &["--data", &data, "token", "list"]);
    let id = list
        .lines()
        .find(|l| l.ends_with("writer gw-1"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(!list.contains(&token), "only hashes are stored");
    ledger_tests::ok("ledgerctl", &["--data", &data, "token", "revoke", &id]);
    let r = post_json(&s, &token, &record("t2", "u", "x"));
    assert_eq!(r.status, 401, "revoked without restart: {}", r.text());
    let r = ledger_tests::run(
        "ledgerctl",
        &[
            "--data",
            &data,
            "token",
            "add",
            "--enforcer",
            "x",
            "--role",
            "admin",
        ],
    );
    assert!(
        r.code != 0 && r.stderr.contains("writer, relay, reader or eraser"),
        "{}",
        r.stderr
    );

    // Restart on the same data: the record is still there, retries still dedup.
    let writer = s.writer.clone();
    assert_eq!(s.stop(), Some(0));
    let s2 = Server::start_in(&dir.path().join("data"), &[]);
    let r = post_json(&s2, &writer, &record("t1", "u", "x"));
    assert_eq!(
        json_of(&r)["results"][0]["status"],
        "duplicate",
        "{}",
        r.text()
    );
}

#[test]
fn cbor_sequences_stream_and_stop_cleanly() {
    let s = Server::with_config(
        // Two blocking threads: parsing and submitting share them.
        "max_body_bytes = 200000\ncheckpoint_interval_ms = 100\nblocking_threads = 2\n",
        &[],
    );
    let auth = bearer(&s.writer);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/cbor-seq"),
    ];
    let item = |i: usize| {
        let mut b = Vec::new();
        ciborium::into_writer(&record(&format!("q{i}"), "seq", "agent"), &mut b).unwrap();
        b
    };
    // 600 records (several groups queued while the body arrives).
    let body: Vec<u8> = (0..600).flat_map(item).collect();
    let r = s.request("POST", "/v1/decisions", &headers, &body);
    assert_eq!(
        (r.status, json_of(&r)["appended"].clone()),
        (200, json!(600)),
        "{}",
        r.text()
    );
    // A truncated last item is reported; the complete ones go in.
    let mut cut = [item(600), item(601)].concat();
    cut.truncate(cut.len() - 3);
    let j = json_of(&s.request("POST", "/v1/decisions", &headers, &cut));
    assert_eq!(
        (j["appended"].clone(), j["rejected"].clone()),
        (json!(1), json!(1)),
        "{j}"
    );
    assert_eq!(
        j["results"][1]["reason"],
        "the body ends inside a CBOR item"
    );
    // A malformed item ends the stream.
    let bad = [item(602), vec![0xff], item(603)].concat();
    let j = json_of(&s.request("POST", "/v1/decisions", &headers, &bad));
    assert_eq!(
        (
            j["appended"].clone(),
            j["results"].as_array().unwrap().len()
        ),
        (json!(1), 2),
        "{j}"
    );
    // Over the body limit: 413, with what was read before the limit reported.
    let big: Vec<u8> = (1000..2000).flat_map(item).collect();
    let r = s.request("POST", "/v1/decisions", &headers, &big);
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn a_full_queue_is_503_with_retry_after() {
    // The writer holds a batch open for 2 s waiting for more, so the queue
    // (5 records) is still full when the second request comes.
    let s = Server::with_config("queue_capacity = 5\nbatch_delay_us = 2000000\n", &[]);
    let first: Vec<Value> = (0..5).map(|i| record(&format!("f{i}"), "u", "a")).collect();
    let (addr, writer) = (s.addr.clone(), s.writer.clone());
    let t = std::thread::spawn(move || {
        let auth = format!("Bearer {writer}");
        let body = Value::Array(first).to_string();
        ledger_tests::http(
            &addr,
            "POST",
            "/v1/decisions",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    });
    // Once the five are queued (polled: a loaded machine may take a moment).
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.metric("ledger_queue_depth") < 5.0 {
        assert!(Instant::now() < deadline, "the first request never queued");
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = post_json(&s, &s.writer, &record("late", "u", "a"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(json_of(&r)["error"]
        .as_str()
        .unwrap()
        .contains("nothing of this request was appended"));
    assert_eq!(json_of(&t.join().unwrap())["appended"], 5);
    let r = post_json(&s, &s.writer, &record("late", "u", "a"));
    assert_eq!(
        r.status,
        200,
        "accepted once the queue drained: {}",
        r.text()
    );
}

#[test]
fn private_reads_need_a_reader_token() {
    let s = Server::start(&["--private-reads"]);
    for path in [
        "/checkpoint",
        "/tile/entries/000.p/1",
        "/v1/proof/consistency?from=0&to=0",
    ] {
        assert_eq!(s.request("GET", path, &[], b"").status, 401, "{path}");
    }
    let r = post_json(&s, &s.writer, &record("p1", "u", "a"));
    assert_eq!(r.status, 200);
    let rauth = bearer(&s.reader);
    assert_eq!(
        s.request("GET", "/checkpoint", &[("Authorization", &rauth)], b"")
            .status,
        200
    );
    assert_eq!(
        s.request(
            "GET",
            "/tile/entries/000.p/1",
            &[("Authorization", &rauth)],
            b""
        )
        .status,
        200
    );
    let wauth = bearer(&s.writer);
    assert_eq!(
        s.request("GET", "/checkpoint", &[("Authorization", &wauth)], b"")
            .status,
        403
    );
}

/// `/metrics` counts appended decisions by decision, and break-glass ones
/// (what `LedgerBreakGlassUsed` in examples/alerts.yaml fires on); retries
/// and refused records are not counted.
#[test]
fn metrics_count_appended_decisions_and_break_glass_use() {
    let s = Server::start(&[]);
    let mut body = Vec::new();
    for i in 0..5 {
        let mut r = record(&format!("m-{i}"), "ann", "agent:a");
        if i >= 3 {
            r["decision"] = json!("deny");
        }
        if i == 4 {
            r["emergency"] = json!({"break_glass": true, "justification": "outage INC-7"});
        }
        body.push(r);
    }
    // One refused (no decision), and m-0 twice: one appended.
    let mut bad = record("m-bad", "ann", "agent:a");
    bad.as_object_mut().unwrap().remove("decision");
    body.push(bad);
    body.push(record("m-0", "ann", "agent:a"));
    let r = post_json(&s, &s.writer, &Value::Array(body));
    assert_eq!(json_of(&r)["appended"], 5, "{}", r.text());
    // A retry of the whole body appends nothing and counts nothing.
    let again: Vec<Value> = (0..5)
        .map(|i| record(&format!("m-{i}"), "ann", "agent:a"))
        .collect();
    post_json(&s, &s.writer, &Value::Array(again[..3].to_vec()));
    let m = s.request("GET", "/metrics", &[], b"").text();
    ledger_tests::assert_metrics_described(&m);
    assert_eq!(
        s.metric("ledger_decisions_appended_total{decision=\"allow\"}"),
        3.0
    );
    assert_eq!(
        s.metric("ledger_decisions_appended_total{decision=\"deny\"}"),
        2.0
    );
    assert_eq!(s.metric("ledger_break_glass_appended_total"), 1.0);
}
