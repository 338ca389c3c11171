//! Compliance exports and responders' search end to end on the real
//! ledgerd: a window of a few hundred decisions (some break-glass, some
//! about one person) between decisions outside it. The export verifies as
//! complete and every file holds exactly the window; a changed byte, a
//! removed record and a reordered pair are refused; a filtered export
//! discloses one person's decisions only and still proves the window; the
//! report names the request whose policy engine and gateway disagreed; each
//! search filter finds exactly the decisions it should.

use std::path::Path;
use std::time::Duration;

use ledger_tests::{ok, run, Server};
use serde_json::{json, Value};
use verifier::VerifierKey;

fn decision(i: usize, phase: &str) -> Value {
    let dana = phase == "window" && i.is_multiple_of(9);
    let subject = if dana {
        "dana@example.com".to_string()
    } else {
        format!("user{}@example.com", i % 13)
    };
    let mut r = json!({
        "decision_id": format!("{phase}-{i}"), "time": "2026-11-23T07:00:00Z",
        "enforcer": {"id": format!("gw-{}", i % 3), "kind": "gateway"},
        "subject": {"type": "user", "id": subject, "identity_kind": if i.is_multiple_of(4) { "service_account" } else { "human" },
                    "owner": "team-a"},
        "action": {"name": if i.is_multiple_of(2) { "GET /v1/records" } else { "POST /v1/records" }},
        "resource": {"type": "api", "id": "records-api"},
        "context": {"request_id": format!("req-{phase}-{i}")},
        "policy": {"engine": "opa", "id": "records.authz", "version": "5"},
        "decision": if i.is_multiple_of(6) { "deny" } else { "allow" },
        "credential": {"kind": "token", "id_hash": format!("sha256:cred-{:04}-aaaaaaaa", i % 10),
                       "issued_at": "2026-11-23T06:59:00Z", "expires_at": "2026-11-23T07:04:00Z", "ttl_s": 300}
    });
    if phase == "window" && i.is_multiple_of(25) {
        r["emergency"] = json!({"break_glass": true, "justification": "incident", "ticket": format!("INC-{i}"),
                                "approved_by": "oncall-lead"});
    }
    if i.is_multiple_of(5) {
        r["subject"].as_object_mut().unwrap().remove("owner");
    }
    // dana in the other roles of an identity chain: the human an agent
    // acts for, and the accountable owner of a subject.
    if phase == "window" && i % 9 == 4 {
        r["delegation"] = json!([
            {"identity_kind": "human", "id": "dana@example.com"},
            {"identity_kind": "agent", "id": "agent:dana-assistant", "owner": "dana@example.com"}
        ]);
    }
    if phase == "window" && i % 9 == 7 && !i.is_multiple_of(5) {
        r["subject"]["owner"] = json!("dana@example.com");
    }
    if phase == "window" && i == 12 {
        // The policy engine of window-13's request, which denied (12 is a
        // multiple of 6) what that gateway allowed.
        r["enforcer"]["kind"] = json!("policy_engine");
        r["context"]["request_id"] = json!("req-window-13");
    }
    r
}

/// Exports `window` from `s` with one filter (`[flag, value]`) into
/// `out` with `ledgerctl export --url`, and verifies it: the verdict.
fn export_one(
    s: &Server,
    key_file: &str,
    window: [&str; 2],
    filter: [&str; 2],
    out: &Path,
) -> String {
    let url = format!("http://{}", s.addr);
    let mut args = vec![
        "--url", &url, "--token", &s.reader, "--key", key_file, "export",
    ];
    args.extend(["--from", window[0], "--to", window[1], filter[0], filter[1]]);
    args.extend(["--out", out.to_str().unwrap()]);
    ok("ledgerctl", &args);
    ok(
        "ledger-verify",
        &["export", out.to_str().unwrap(), "--key", key_file],
    )
}

/// Whether dana is anyone in the record's identity chain: the subject,
/// its owner, or an actor.
fn about_dana(r: &Value) -> bool {
    let dana = "dana@example.com";
    r["subject"]["id"] == dana
        || r["subject"]["owner"] == dana
        || r["delegation"]
            .as_array()
            .is_some_and(|hops| hops.iter().any(|h| h["id"] == dana))
}

fn post(s: &Server, token: &str, records: Vec<Value>) {
    let auth = format!("Bearer {token}");
    let r = s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Value::Array(records).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn get_json(s: &Server, path: &str) -> Value {
    let auth = format!("Bearer {}", s.reader);
    let r = s.request("GET", path, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Every decision id a search finds, all pages.
fn found(s: &Server, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get_json(s, &format!("/v1/search?{query}&limit=37{cursor}"));
        for r in page["results"].as_array().unwrap() {
            ids.push(r["decision_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_u64() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => return ids,
        }
    }
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The byte ranges of leaves.cbor's items.
fn items(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let before = rest.len();
        verifier::cbor::decode_next(&mut rest).unwrap();
        let start = data.len() - before;
        out.push(start..data.len() - rest.len());
    }
    out
}

/// A copy of an export with the leaves (and lines) rearranged by `edit`,
/// every digest and count restated so that only the proof can object.
fn tampered(dir: &Path, to: &Path, edit: impl Fn(&mut Vec<Vec<u8>>)) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["checkpoint", "report.html"] {
        std::fs::copy(dir.join(f), to.join(f)).unwrap();
    }
    let leaves = std::fs::read(dir.join("leaves.cbor")).unwrap();
    let mut parts: Vec<Vec<u8>> = items(&leaves)
        .into_iter()
        .map(|r| leaves[r].to_vec())
        .collect();
    edit(&mut parts);
    std::fs::write(to.join("leaves.cbor"), parts.concat()).unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for name in ["decisions.jsonl", "ocsf.jsonl", "decisions.csv"] {
        let all = lines(dir, name);
        let (head, body) = if name.ends_with("csv") {
            (vec![all[0].clone()], all[1..].to_vec())
        } else {
            (vec![], all)
        };
        let mut body: Vec<Vec<u8>> = body.into_iter().map(String::into_bytes).collect();
        edit(&mut body);
        let text: String = head
            .into_iter()
            .map(String::into_bytes)
            .chain(body)
            .map(|l| String::from_utf8(l).unwrap() + "\n")
            .collect();
        std::fs::write(to.join(name), &text).unwrap();
    }
    for name in [
        "leaves.cbor",
        "decisions.jsonl",
        "ocsf.jsonl",
        "decisions.csv",
    ] {
        let bytes = std::fs::read(to.join(name)).unwrap();
        manifest["files"][name] = serde_json::to_value(verifier::export::digest(&bytes)).unwrap();
    }
    let n = parts.len() as u64;
    manifest["counts"] = json!({"leaves": n, "disclosed": n, "withheld": 0});
    std::fs::write(
        to.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_window_exports_complete_and_searches_find_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    let key_file = dir.path().join("log.pub");
    std::fs::write(&key_file, &s.key).unwrap();
    let key_file = key_file.to_str().unwrap().to_string();
    let url = format!("http://{}", s.addr);
    // Before the window, the window (300), after it.
    post(
        &s,
        &s.writer,
        (0..120).map(|i| decision(i, "before")).collect(),
    );
    std::thread::sleep(Duration::from_millis(20));
    for chunk in 0..3 {
        post(
            &s,
            &s.writer,
            (chunk * 100..chunk * 100 + 100)
                .map(|i| decision(i, "window"))
                .collect(),
        );
    }
    std::thread::sleep(Duration::from_millis(20));
    post(
        &s,
        &s.writer,
        (0..80).map(|i| decision(i, "after")).collect(),
    );
    s.covered(500);
    let received = |id: &str| {
        get_json(&s, &format!("/v1/decisions/{id}"))["received_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (t0, t1) = (received("window-0"), received("after-0"));
    assert!(received("before-119") < t0);

    // The whole window, over HTTP.
    let out = dir.path().join("all");
    let r = run(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.reader,
            "--key",
            &key_file,
            "export",
            "--from",
            &t0,
            "--to",
            &t1,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let verdict = ok(
        "ledger-verify",
        &["export", out.to_str().unwrap(), "--key", &key_file],
    );
    assert!(verdict.starts_with(&format!("OK: export complete: 300 decisions received in [{t0}, {t1}), leaves 120..420 of tree size 500")), "{verdict}");
    let jsonl = lines(&out, "decisions.jsonl");
    let ids: Vec<String> = jsonl
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["decision_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        (0..300).map(|i| format!("window-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(lines(&out, "decisions.csv").len(), 301);
    assert_eq!(lines(&out, "ocsf.jsonl").len(), 300);
    assert_eq!(
        items(&std::fs::read(out.join("leaves.cbor")).unwrap()).len(),
        300
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("Break-glass and just-in-time access (12)"),
        "every 25th of 300"
    );
    assert!(
        report.contains("Requests whose enforcers disagreed (a policy engine")
            && report.contains("<td>policy engine and gate disagree</td><td>window-12, window-13</td><td>request_id req-window-13: the policy engine (policy_engine gw-0, decision window-12) denied what the gate (gateway gw-1, decision window-13) allowed</td>"),
        "{report}"
    );
    assert!(
        verdict.contains("; 1 finding between decisions of one request"),
        "{verdict}"
    );
    assert!(
        !report.contains("http://") && !report.contains("https://") && !report.contains("<script"),
        "self-contained"
    );

    // A changed byte, a removed record, a reordered pair: refused.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in [
        "manifest.json",
        "checkpoint",
        "leaves.cbor",
        "decisions.jsonl",
        "decisions.csv",
        "ocsf.jsonl",
        "report.html",
    ] {
        std::fs::copy(out.join(f), bad.join(f)).unwrap();
    }
    let mut leaves = std::fs::read(bad.join("leaves.cbor")).unwrap();
    leaves[1000] ^= 0x01;
    std::fs::write(bad.join("leaves.cbor"), leaves).unwrap();
    let r = run(
        "ledger-verify",
        &["export", bad.to_str().unwrap(), "--key", &key_file],
    );
    assert!(r.code == 1 && r.stderr.contains("FAILED"), "{}", r.stderr);
    let removed = dir.path().join("removed");
    tampered(&out, &removed, |parts| {
        parts.remove(150);
    });
    let r = run(
        "ledger-verify",
        &["export", removed.to_str().unwrap(), "--key", &key_file],
    );
    assert!(r.code == 1 && r.stderr.contains("FAILED"), "{}", r.stderr);
    let swapped = dir.path().join("swapped");
    tampered(&out, &swapped, |parts| parts.swap(10, 11));
    let r = run(
        "ledger-verify",
        &["export", swapped.to_str().unwrap(), "--key", &key_file],
    );
    assert!(r.code == 1 && r.stderr.contains("FAILED"), "{}", r.stderr);
    let untouched = dir.path().join("untouched");
    tampered(&out, &untouched, |_| {});
    ok(
        "ledger-verify",
        &["export", untouched.to_str().unwrap(), "--key", &key_file],
    );

    // One person's decisions only: the window is still proven whole.
    let dana = dir.path().join("dana");
    let window = [t0.as_str(), t1.as_str()];
    let verdict = export_one(
        &s,
        &key_file,
        window,
        ["--subject", "dana@example.com"],
        &dana,
    );
    assert!(
        verdict.contains("300 decisions received in")
            && verdict.contains(
                "filtered (subject=dana@example.com): 34 disclosed and matching, 266 withheld"
            ),
        "{verdict}"
    );
    let leaves = std::fs::read(dana.join("leaves.cbor")).unwrap();
    assert!(
        !String::from_utf8_lossy(&leaves).contains("user1"),
        "no one else is disclosed"
    );
    assert_eq!(lines(&dana, "decisions.jsonl").len(), 34);
    // A data-subject request: dana in any role, from the store.
    let person = dir.path().join("person");
    let verdict = export_one(
        &s,
        &key_file,
        window,
        ["--person", "dana@example.com"],
        &person,
    );
    let about: Vec<Value> = (0..300)
        .map(|i| decision(i, "window"))
        .filter(about_dana)
        .collect();
    assert!(about.len() > 34, "dana in more roles than the subject's");
    assert!(
        verdict.contains(&format!(
            "filtered (person=dana@example.com): {} disclosed and matching",
            about.len()
        )),
        "{verdict}"
    );
    let disclosed = lines(&person, "decisions.jsonl");
    assert_eq!(disclosed.len(), about.len());
    for line in &disclosed {
        let l: Value = serde_json::from_str(line).unwrap();
        assert!(about_dana(&l["record"]), "{line}");
    }

    // Search: each filter finds exactly its decisions.
    let all: Vec<(String, Value)> = (0..120)
        .map(|i| (format!("before-{i}"), decision(i, "before")))
        .chain((0..300).map(|i| (format!("window-{i}"), decision(i, "window"))))
        .chain((0..80).map(|i| (format!("after-{i}"), decision(i, "after"))))
        .collect();
    let expect = |f: &dyn Fn(&Value) -> bool| -> Vec<String> {
        all.iter()
            .filter(|(_, r)| f(r))
            .map(|(id, _)| id.clone())
            .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "credential=sha256:cred-0003-aaaaaaaa",
            expect(&|r| r["credential"]["id_hash"] == "sha256:cred-0003-aaaaaaaa"),
        ),
        (
            "break_glass=true",
            expect(&|r| r["emergency"]["break_glass"] == true),
        ),
        (
            "identity_kind=service_account",
            expect(&|r| r["subject"]["identity_kind"] == "service_account"),
        ),
        (
            "owner=team-a&decision=deny",
            expect(&|r| r["subject"]["owner"] == "team-a" && r["decision"] == "deny"),
        ),
        ("enforcer=gw-2", expect(&|r| r["enforcer"]["id"] == "gw-2")),
        (
            "submitted_by=local-enforcer&action=POST%20%2Fv1%2Frecords",
            expect(&|r| r["action"]["name"] == "POST /v1/records"),
        ),
        ("person=dana%40example.com", expect(&about_dana)),
        (
            "subject=dana%40example.com&break_glass=true",
            expect(&|r| {
                r["subject"]["id"] == "dana@example.com" && r["emergency"]["break_glass"] == true
            }),
        ),
    ];
    for (query, want) in cases {
        assert!(!want.is_empty(), "{query}");
        assert_eq!(found(&s, query), want, "{query}");
    }
    let window = found(&s, &format!("received_from={t0}&received_to={t1}"));
    assert_eq!(
        window,
        (0..300).map(|i| format!("window-{i}")).collect::<Vec<_>>()
    );
    // A record-time-only query pages through everything instead of refusing.
    assert_eq!(found(&s, "from=2026-11-23T06:00:00Z").len(), 500);
    // Pinned to a checkpoint: stable as the log grows, and named.
    let pinned = get_json(
        &s,
        "/v1/search?subject=user3%40example.com&at=500&limit=1000",
    );
    assert_eq!(pinned["checkpoint"]["size"], 500);
    post(&s, &s.writer, vec![decision(3, "later")]);
    let again = get_json(
        &s,
        "/v1/search?subject=user3%40example.com&at=500&limit=1000",
    );
    assert_eq!(again["results"], pinned["results"]);
    assert_eq!(
        get_json(&s, "/v1/search?subject=user3%40example.com&limit=1000")["results"]
            .as_array()
            .unwrap()
            .len(),
        pinned["results"].as_array().unwrap().len() + 1
    );
    let auth = format!("Bearer {}", s.reader);
    for bad in [
        "identity_kind=robot",
        "break_glass=maybe",
        "at=99999",
        "received_from=yesterday",
        "colour=red",
    ] {
        let r = s.request(
            "GET",
            &format!("/v1/search?{bad}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = s.request("GET", "/v1/search?at=499", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 404, "no checkpoint at 499: {}", r.text());
    let table = ok(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.reader,
            "search",
            "--break-glass",
            "--subject",
            "dana@example.com",
        ],
    );
    assert!(
        table.lines().next().unwrap().contains("decision_id") && table.contains("window-0"),
        "a table: {table}"
    );

    // The same window from the data dir, once the server is gone.
    s.stop();
    let local = dir.path().join("local");
    ok(
        "ledgerctl",
        &[
            "--data",
            data.to_str().unwrap(),
            "export",
            "--from",
            &t0,
            "--to",
            &t1,
            "--out",
            local.to_str().unwrap(),
        ],
    );
    let verdict = ok(
        "ledger-verify",
        &["export", local.to_str().unwrap(), "--key", &key_file],
    );
    assert!(
        verdict.contains("complete: 300 decisions received in")
            && verdict.contains("leaves 120..420 of tree size 501"),
        "{verdict}"
    );
    assert_eq!(
        std::fs::read(local.join("decisions.jsonl")).unwrap(),
        std::fs::read(out.join("decisions.jsonl")).unwrap()
    );
}

/// Successive exports (a month, then the next) are of one log that only
/// grew: a consistency proof between their checkpoints, from the log,
/// verifies against the two packages' own checkpoint files.
#[test]
fn successive_exports_are_proven_of_one_growing_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    let key_file = dir.path().join("log.pub");
    std::fs::write(&key_file, &s.key).unwrap();
    let key = key_file.to_str().unwrap();
    let url = format!("http://{}", s.addr);
    let received = |id: &str| {
        get_json(&s, &format!("/v1/decisions/{id}"))["received_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let export = |from: &str, to: &str, out: &Path| {
        let args = [
            "--url",
            &url,
            "--token",
            &s.reader,
            "--key",
            key,
            "export",
            "--from",
            from,
            "--to",
            to,
            "--out",
            out.to_str().unwrap(),
        ];
        assert_eq!(run("ledgerctl", &args).code, 0);
        let signed = std::fs::read(out.join("checkpoint")).unwrap();
        verifier::checkpoint::open(&signed, &VerifierKey::parse(&s.key).unwrap())
            .unwrap()
            .size
    };
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    post(
        &s,
        &s.writer,
        (0..50).map(|i| decision(i, "first")).collect(),
    );
    std::thread::sleep(Duration::from_millis(20));
    post(
        &s,
        &s.writer,
        (0..10).map(|i| decision(i, "between")).collect(),
    );
    s.covered(60);
    let old = export(&received("first-0"), &received("between-0"), &first);
    post(
        &s,
        &s.writer,
        (0..50).map(|i| decision(i, "second")).collect(),
    );
    std::thread::sleep(Duration::from_millis(20));
    post(
        &s,
        &s.writer,
        (0..10).map(|i| decision(i, "after")).collect(),
    );
    s.covered(120);
    let new = export(&received("second-0"), &received("after-0"), &second);
    assert!(old < new, "{old} {new}");
    // A consistency proof from `from` to the second package's size, made
    // by the log, checked against the two packages' checkpoint files.
    let (a, b) = (first.join("checkpoint"), second.join("checkpoint"));
    let joined = |from: u64, name: &str| {
        let proof = dir.path().join(name);
        let (from, to) = (from.to_string(), new.to_string());
        let out = proof.to_str().unwrap();
        ok(
            "ledgerctl",
            &[
                "--url",
                &url,
                "--key",
                key,
                "prove-consistency",
                &from,
                &to,
                "--out",
                out,
            ],
        );
        let files = [a.to_str().unwrap(), b.to_str().unwrap(), out];
        let mut args = vec!["consistency", "--key", key];
        args.extend(files);
        run("ledger-verify", &args)
    };
    let r = joined(old, "first-second.proof");
    assert!(
        r.code == 0 && r.stdout.starts_with("OK"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // A proof from another size does not join the two packages.
    let r = joined(old - 1, "wrong.proof");
    assert_ne!(r.code, 0, "{}", r.stdout);
}
