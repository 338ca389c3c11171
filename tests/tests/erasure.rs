//! Erasure end to end on the real ledgerd (specs/erasure.md): a
//! data-protection officer's token erases one decision; it is gone from
//! reads and searches, the ledger's record of the erasure is there to
//! read, the served log, a mirror and a store restored from it audit
//! clean, and an export of a window holding it verifies as complete with
//! one erased. Refusals: other roles, unknown ids, bad bodies, a legal
//! hold, a writer token posing as the ledger.

use ledger_tests::{ok, records, run, Server, Tmpfs};
use serde_json::{json, Value};

fn get(s: &Server, token: &str, path: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let r = s.request("GET", path, &[("Authorization", &auth)], b"");
    (r.status, r.text())
}

fn post_erasure(s: &Server, token: &str, id: &str, body: &str) -> (u16, String) {
    post(s, token, &format!("/v1/decisions/{id}/erasure"), body)
}

fn post(s: &Server, token: &str, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let r = s.request(
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    (r.status, r.text())
}

#[test]
fn an_erased_decision_is_gone_and_its_erasure_is_proven() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    let key_file = dir.path().join("log.pub");
    std::fs::write(&key_file, &s.key).unwrap();
    let key = key_file.to_str().unwrap();
    s.append(&records("a", 300));
    let mut carol = records("z", 1);
    carol[0]["subject"]["id"] = json!("zcarol@example.org");
    s.append(&carol);
    s.append(&records("b", 300));
    let url = format!("http://{}", s.addr);
    let eraser = s.add_token(&["--enforcer", "dpo@example.com", "--role", "eraser"]);
    // ledgerctl against this ledgerd with `token`.
    let ctl = |token: &str, args: &[&str]| {
        let mut all = vec!["--url", &url, "--token", token];
        all.extend_from_slice(args);
        ok("ledgerctl", &all)
    };

    // Only an eraser token erases; the ledger's name is nobody's to write as.
    let (status, _) = post_erasure(&s, &s.reader, "z-0", r#"{"reason": "r"}"#);
    assert_eq!(status, 403);
    let r = run(
        "ledgerctl",
        &[
            "--data",
            s.data.to_str().unwrap(),
            "token",
            "add",
            "--enforcer",
            "ledger",
            "--role",
            "writer",
        ],
    );
    assert!(
        r.code != 0 && r.stderr.contains("the ledger's own"),
        "{}",
        r.stderr
    );
    let (status, body) = post_erasure(&s, &eraser, "nope", r#"{"reason": "r"}"#);
    assert_eq!(status, 404, "{body}");
    let (status, body) = post_erasure(&s, &eraser, "z-0", r#"{"why": "r"}"#);
    assert!(status == 400 && body.contains("reason"), "{body}");
    // A ticket is a text field like any other: 1 to 1,024 bytes.
    let long = format!(r#"{{"reason": "r", "ticket": "{}"}}"#, "t".repeat(1025));
    for (ticket, problem) in [
        (
            r#"{"reason": "r", "ticket": ""}"#,
            "ticket must not be empty",
        ),
        (long.as_str(), "ticket is 1025 bytes; at most 1024"),
    ] {
        let (status, body) = post_erasure(&s, &eraser, "z-0", ticket);
        assert!(status == 400 && body.contains(problem), "{body}");
    }
    let size = s.tree_size();
    // A mirror that holds the decision before it is erased.
    let early = dir.path().join("early-mirror");
    let mirror_once = |to: &std::path::Path, prune: bool| {
        let mut args = vec!["--url", &url, "--key", key, "--data", to.to_str().unwrap()];
        args.extend(["mirror", "--once"]);
        if prune {
            args.push("--prune");
        }
        ok("ledgerctl", &args)
    };
    ledger_tests::wait_until("a checkpoint of every decision", || {
        get(&s, &s.reader, "/v1/decisions/b-299/proof").0 == 200
    });
    mirror_once(&early, false);
    let (_, found) = get(&s, &s.reader, "/v1/search?subject=zcarol@example.org");
    assert!(found.contains("\"index\":300"), "{found}");

    let said = ctl(
        &eraser,
        &[
            "erase",
            "z-0",
            "--reason",
            "GDPR art. 17",
            "--ticket",
            "DSR-9",
        ],
    );
    assert!(
        said.contains("erased leaf 300 (z-0)") && said.contains("ledger-erasure-300 is leaf 601"),
        "{said}"
    );
    assert_eq!(s.tree_size(), size + 1);
    // Again: the same answer, nothing appended.
    let (status, body) = post_erasure(&s, &eraser, "z-0", r#"{"reason": "again"}"#);
    assert_eq!(status, 200, "{body}");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["erased"], "before");
    assert_eq!(again["erasure"]["index"], 601);
    assert_eq!(s.tree_size(), size + 1);

    // Gone from reads and searches (once a checkpoint covers it).
    ledger_tests::wait_until("a checkpoint past the erasure", || {
        get(&s, &s.reader, "/v1/decisions/z-0/evidence").0 != 503
    });
    for path in [
        "/v1/decisions/z-0",
        "/v1/decisions/z-0/evidence",
        "/v1/decisions/z-0/chain",
    ] {
        let (status, body) = get(&s, &s.reader, path);
        assert!(
            status == 410 && body.contains("erased"),
            "{path}: {status} {body}"
        );
    }
    let (_, found) = get(&s, &s.reader, "/v1/search?subject=zcarol@example.org");
    assert!(found.contains("\"results\":[]"), "{found}");
    // The proofs of its leaf are still served: its hash stays.
    for path in ["/v1/decisions/z-0/proof", "/v1/decisions/z-0/receipt"] {
        assert_eq!(get(&s, &s.reader, path).0, 200, "{path}");
    }
    // The erasure record says who asked, why, under which ticket.
    let (status, record) = get(&s, &s.reader, "/v1/decisions/ledger-erasure-300");
    assert_eq!(status, 200);
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["submitted_by"], "ledger");
    assert_eq!(record["record"]["subject"]["id"], "dpo@example.com");
    assert_eq!(record["record"]["reasons"], json!(["GDPR art. 17"]));
    assert_eq!(record["record"]["context"]["ticket"], "DSR-9");
    assert_eq!(record["record"]["resource"]["id"], "300");

    // A legal hold keeps what it covers.
    ok(
        "ledgerctl",
        &[
            "--data",
            s.data.to_str().unwrap(),
            "hold",
            "place",
            "--since",
            "2020-01-01T00:00:00Z",
            "--reason",
            "case 7",
        ],
    );
    let (status, body) = post_erasure(&s, &eraser, "a-5", r#"{"reason": "r"}"#);
    assert!(status == 409 && body.contains("case 7"), "{body}");

    // The served log audits clean, and says what was erased.
    let audited = ok("ledgerctl", &["--url", &url, "--key", key, "audit"]);
    assert!(audited.contains("1 leaf's entry was erased"), "{audited}");
    // A mirror, and a store restored from it, too.
    let mirror = dir.path().join("mirror");
    mirror_once(&mirror, false);
    let m = ok(
        "ledger-verify",
        &["mirror", mirror.to_str().unwrap(), "--key", key],
    );
    assert!(m.contains("1 leaf's entry was erased"), "{m}");
    // The mirror made before keeps the entry, and says so, until it
    // follows the log's erasures.
    mirror_once(&early, false);
    let m = ok(
        "ledger-verify",
        &["mirror", early.to_str().unwrap(), "--key", key],
    );
    assert!(
        m.contains("1 leaf named by an erasure record still has its entry here (leaf 300)"),
        "{m}"
    );
    let held = std::fs::read(early.join("tile/entries/001")).unwrap();
    assert!(held.windows(6).any(|w| w == b"zcarol"));
    let followed = mirror_once(&early, true);
    assert!(
        followed.contains("erased the entries of 1 leaf,"),
        "{followed}"
    );
    let m = ok(
        "ledger-verify",
        &["mirror", early.to_str().unwrap(), "--key", key],
    );
    assert!(m.contains("1 leaf's entry was erased"), "{m}");
    let held = std::fs::read(early.join("tile/entries/001")).unwrap();
    assert!(!held.windows(6).any(|w| w == b"zcarol"));
    // An export of a window holding it: complete, one erased.
    let export = |from: &str, name: &str| {
        let out = dir.path().join(name);
        let out = out.to_str().unwrap();
        let args = ["--url", &url, "--token", &s.reader, "--key", key, "export"];
        let window = ["--from", from, "--to", "2100-01-01T00:00:00Z", "--out", out];
        ok("ledgerctl", &[&args[..], &window[..]].concat());
        let verdict = ok("ledger-verify", &["export", out, "--key", key]);
        (std::path::PathBuf::from(out), verdict)
    };
    let (out, verdict) = export("2020-01-01T00:00:00Z", "export");
    assert!(verdict.contains("; 1 erased"), "{verdict}");
    let jsonl = std::fs::read_to_string(out.join("decisions.jsonl")).unwrap();
    assert!(!jsonl.contains("zcarol"));
    assert_eq!(jsonl.lines().count(), 601);
    // A window that starts just after it: the erased leaf is the leaf
    // before, carried by its hash and dated by its record.
    let (_, record) = get(&s, &s.reader, "/v1/decisions/ledger-erasure-300");
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let erased_at = record["record"]["resource"]["properties"]["received_at"]
        .as_str()
        .unwrap();
    let erased_at = verifier::timestamp::Timestamp::parse_text(erased_at).unwrap();
    let from = verifier::timestamp::Timestamp::from_unix_nanos(erased_at.unix_nanos() + 1)
        .unwrap()
        .canonical();
    let (_, verdict) = export(&from, "export-after");
    assert!(
        verdict.contains("leaves 301..")
            && verdict.contains("; the leaf just before the window was erased: carried by its hash, dated by its erasure record"),
        "{verdict}"
    );
    // Every decision a search finds, through ledgerd, several at a time.
    let found = ctl(
        &s.reader,
        &["search", "--subject", "u5", "--json", "--limit", "1000"],
    );
    let list = dir.path().join("u5.jsonl");
    let first: Vec<&str> = found.lines().take(12).collect();
    std::fs::write(&list, first.join("\n")).unwrap();
    // The hold released.
    std::fs::remove_file(s.data.join("holds")).unwrap();
    let started = std::time::Instant::now();
    let list = list.to_str().unwrap();
    let said = ctl(
        &eraser,
        &["erase", "--ids-from", list, "--reason", "GDPR art. 17: u5"],
    );
    eprintln!("12 erasures through ledgerd took {:?}", started.elapsed());
    assert!(said.ends_with("12 erased now, 0 before\n"), "{said}");
    let (_, found) = get(&s, &s.reader, "/v1/search?subject=u5&limit=1000");
    assert_eq!(found.matches("\"index\"").count(), 66 - 12, "{found}");
    // Counted for the alert that asks a person to review them.
    assert_eq!(s.metric("ledger_erasures_total"), 13.0);
    let status = run(
        "ledgerctl",
        &["--url", &url, "--token", &s.reader, "--key", key, "status"],
    );
    assert!(
        status
            .stdout
            .contains("erasures: 13 decisions erased since ledgerd started"),
        "{}",
        status.stdout
    );
    // Several in one request: each answered as alone.
    let (status, body) = post(
        &s,
        &eraser,
        "/v1/erasures",
        r#"{"decision_ids": ["z-0", "nope", "ledger-erasure-300"], "reason": "r"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let r = v["results"].as_array().unwrap();
    assert_eq!(
        (r[0]["erased"].as_str(), r[0]["index"].as_u64()),
        (Some("before"), Some(300)),
        "{body}"
    );
    assert_eq!(
        [r[1]["status"].as_u64(), r[2]["status"].as_u64()],
        [Some(404), Some(409)],
        "{body}"
    );
    assert!(
        r[2]["error"]
            .as_str()
            .unwrap()
            .contains("ledger's own record"),
        "{body}"
    );
    for (token, body, want) in [
        (&eraser, r#"{"decision_ids": [], "reason": "r"}"#, 400),
        (&eraser, r#"{"ids": ["z-0"], "reason": "r"}"#, 400),
        (
            &eraser,
            r#"{"decision_ids": ["z-0", "nope"], "reason": "r", "ticket": ""}"#,
            400,
        ),
        (
            &s.reader,
            r#"{"decision_ids": ["z-0"], "reason": "r"}"#,
            403,
        ),
    ] {
        let (status, answer) = post(&s, token, "/v1/erasures", body);
        assert_eq!(status, want, "{body}: {answer}");
    }
    // ledgerctl: an id refused does not stop the others, and is named.
    let r = run(
        "ledgerctl",
        &[
            "--url", &url, "--token", &eraser, "--key", key, "erase", "nope", "z-0", "--reason",
            "r",
        ],
    );
    assert!(
        r.code != 0
            && r.stdout.contains("leaf 300 (z-0) was erased before")
            && r.stderr.contains("not erased: nope: refused (404)"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let many: Vec<String> = (0..1001).map(|i| format!("x-{i}")).collect();
    let body = serde_json::json!({"decision_ids": many, "reason": "r"}).to_string();
    let (status, answer) = post(&s, &eraser, "/v1/erasures", &body);
    assert!(status == 400 && answer.contains("1 to 1000"), "{answer}");
    s.stop();

    let data = dir.path().join("data");
    let audited = ok("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(
        audited.contains("13 leaves' entries were erased"),
        "{audited}"
    );
    let restored = dir.path().join("restored");
    let audited = ledger_tests::restore_and_audit(&mirror, &restored);
    assert!(audited.contains("1 leaf's entry was erased"), "{audited}");
    std::fs::copy(data.join("log.key"), restored.join("log.key")).unwrap();
    let r = run(
        "ledgerctl",
        &[
            "--data",
            restored.to_str().unwrap(),
            "evidence",
            "z-0",
            "--out",
            dir.path().join("z.evidence").to_str().unwrap(),
        ],
    );
    assert!(r.code != 0 && r.stderr.contains("erased"), "{}", r.stderr);
    // Erasing on a stopped store: who asks must be said.
    let r = run(
        "ledgerctl",
        &[
            "--data",
            data.to_str().unwrap(),
            "erase",
            "b-1",
            "--reason",
            "r",
        ],
    );
    assert!(
        r.code != 0 && r.stderr.contains("--requested-by"),
        "{}",
        r.stderr
    );
    // A ticket no record can hold: refused once, before anything is planned.
    let d = data.to_str().unwrap();
    let args = ["--data", d, "erase", "b-1", "b-2", "--reason", "r"];
    let r = run(
        "ledgerctl",
        &[&args[..], &["--requested-by", "dpo", "--ticket", ""]].concat(),
    );
    assert!(
        r.code != 0 && r.stderr.matches("ticket must not be empty").count() == 1,
        "{}",
        r.stderr
    );
    let said = ok(
        "ledgerctl",
        &[
            "--data",
            data.to_str().unwrap(),
            "erase",
            "b-1",
            "--reason",
            "r",
            "--requested-by",
            "dpo@example.com",
        ],
    );
    assert!(said.contains("erased leaf 302 (b-1)"), "{said}");
    let audited = ok("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(
        audited.contains("14 leaves' entries were erased"),
        "{audited}"
    );

    // Every decision about one person, as a search finds them.
    let d = data.to_str().unwrap();
    let search = |s: &str| {
        ok(
            "ledgerctl",
            &[
                "--data",
                d,
                "search",
                "--subject",
                s,
                "--json",
                "--limit",
                "1000",
            ],
        )
    };
    let found = search("u4");
    // records() gives subject u(i % 9): 33 of a-0..299, 33 of b-0..299.
    assert_eq!(found.lines().count(), 66, "{found}");
    let list = dir.path().join("u4.jsonl");
    let first: Vec<&str> = found.lines().take(12).collect();
    std::fs::write(&list, first.join("\n")).unwrap();
    let said = ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "erase",
            "b-1",
            "--ids-from",
            list.to_str().unwrap(),
            "--reason",
            "GDPR art. 17: u4",
            "--requested-by",
            "dpo@example.com",
        ],
    );
    assert!(said.ends_with("12 erased now, 1 before\n"), "{said}");
    assert_eq!(search("u4").lines().count(), 66 - 12);
    let audited = ok("ledgerctl", &["--data", d, "audit"]);
    assert!(
        audited.contains("26 leaves' entries were erased"),
        "{audited}"
    );
}

/// An erasure on a disk too full for its compaction (which rewrites the
/// SST file that held the erased entry) is answered, and what the
/// compaction was to take off the disk stays owed, through tries that
/// fail again; once there is room, ledgerd does it by itself, without a
/// restart or another erasure.
#[test]
fn an_erasure_that_finds_the_disk_full_is_compacted_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("fs"), 200) else {
        return;
    };
    let s = Server::start_in(&fs.0.join("data"), &[]);
    // 32 MB of decisions that do not compress: SST files of ~14 MB (one
    // a memtable), which a compaction cannot rewrite in 8 MiB.
    for b in 0..80u64 {
        s.append(&incompressible(b));
    }
    let eraser = s.add_token(&["--enforcer", "dpo@example.com", "--role", "eraser"]);
    fs.fill(8);
    let (status, body) = post_erasure(&s, &eraser, "b0-10", r#"{"reason": "r"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.metric("ledger_compactions_owed"), 1.0);
    // Tried again 10 s later, on a disk still full: still owed, and tried
    // again after that.
    std::thread::sleep(std::time::Duration::from_secs(12));
    assert_eq!(s.metric("ledger_compactions_owed"), 1.0);

    fs.free();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.metric("ledger_compactions_owed") > 0.0 {
        assert!(std::time::Instant::now() < deadline, "still owed");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, _) = get(&s, &s.reader, "/v1/decisions/b0-10");
    assert_eq!(status, 410);
}

/// 200 decisions `b<b>-<i>` of 2 KiB each that do not compress.
fn incompressible(b: u64) -> Value {
    let mut batch = records(&format!("b{b}"), 200);
    for (i, r) in batch.as_array_mut().unwrap().iter_mut().enumerate() {
        let pad: String = (0..32u64)
            .map(|j| verifier::leaf_hash(&[b, i as u64, j].map(u64::to_be_bytes).concat()).to_hex())
            .collect();
        r["extensions"] = json!({ "pad": pad });
    }
    batch
}

/// `ledgerctl erase --data` on a disk too full for the erasure's
/// compaction: the erasure is done and recorded, and the command says the
/// bytes are left and exits non-zero (`prune` says the same, through the
/// same check); run again once there is room, it finishes the compaction
/// first.
#[test]
fn ledgerctl_erase_on_a_full_disk_says_the_bytes_are_left() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("fs"), 200) else {
        return;
    };
    let data = fs.0.join("data");
    let d = data.to_str().unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "keygen", "--origin", "full.example/log"],
    );
    let lines: String = (0..80)
        .flat_map(|b| incompressible(b).as_array().unwrap().clone())
        .map(|r| format!("{r}\n"))
        .collect();
    let file = dir.path().join("decisions.jsonl");
    std::fs::write(&file, lines).unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "append", file.to_str().unwrap()],
    );
    // Opened once more, so that what the write-ahead log held is in SST
    // files before the disk fills (opening replays it into one).
    ok("ledgerctl", &["--data", d, "checkpoint"]);
    fs.fill(8);
    let erase = [
        "--data",
        d,
        "erase",
        "b0-10",
        "--reason",
        "r",
        "--requested-by",
        "dpo",
    ];
    let r = run("ledgerctl", &erase);
    assert!(
        r.code != 0
            && r.stdout.contains("erased leaf 10 (b0-10)")
            && r.stderr
                .contains("the removal is done and recorded, but the compaction"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    fs.free();
    let said = ok("ledgerctl", &erase);
    assert!(said.contains("finishing the compactions"), "{said}");
}
