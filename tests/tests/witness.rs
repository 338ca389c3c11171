//! Witnesses end to end: `ledgerctl witness serve` cosigns the checkpoints
//! of a real ledgerd (C2SP tlog-witness), the cosignatures reach
//! `/checkpoint`, evidence, chain bundles and exports, `ledger-verify
//! --witness` checks them, and a fork of the log under the same key is
//! refused by the witness, also after the witness restarts.

use std::path::Path;

use ledger_tests::{ok, records, run, Server, Witness};
use serde_json::Value;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ledgerctl export` of every decision the server `s` logged, into `out`.
fn export_all(s: &Server, log_key: &str, out: &Path) {
    s.ctl(
        log_key,
        &[
            "export",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--out",
            path(out),
        ],
    );
}

/// `ledger-verify <what> <file> --key <log_key> <extra…>`.
fn verify_with(log_key: &str, what: &str, file: &Path, extra: &[&str]) -> ledger_tests::Run {
    let mut args = vec![what, path(file), "--key", log_key];
    args.extend_from_slice(extra);
    run("ledger-verify", &args)
}

#[test]
fn a_witness_cosigns_every_checkpoint_and_refuses_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let data = at("data");
    let log_key = ok(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "witnessed.test/log",
            "--out",
            path(&data),
        ],
    )
    .trim()
    .to_string();
    let w1_key = ledger_tests::witness_keygen("witness.test/w1", &at("w1"));
    // A second witness that never runs: a quorum of both is not met.
    let w2_key = ledger_tests::witness_keygen("witness.test/w2", &at("w2"));
    let w1 = Witness::start(&at("w1"), &log_key, &[]);

    let s = Server::start_in(&data, &["--witness", &w1.url, &w1_key]);
    s.append(&records("a", 40));
    ledger_tests::cosigned(&s, "witness.test/w1", 40);
    ledger_tests::assert_metrics_described(&s.request("GET", "/metrics", &[], b"").text());

    // /checkpoint carries the cosignature; ledger-verify checks it.
    let verify = |what: &str, file: &Path, extra: &[&str]| verify_with(&log_key, what, file, extra);
    std::fs::write(
        at("checkpoint"),
        s.request("GET", "/checkpoint", &[], b"").body,
    )
    .unwrap();
    let out = verify("checkpoint", &at("checkpoint"), &["--witness", &w1_key]).stdout;
    assert!(out.contains("cosigned by witness.test/w1 at "), "{out}");

    // Evidence, chain bundles and exports carry it too.
    s.ctl(
        &log_key,
        &["evidence", "a-7", "--out", path(&at("a.evidence"))],
    );
    let out = verify("evidence", &at("a.evidence"), &[]).stdout;
    assert!(
        out.contains("not checked (give their keys with --witness): witness.test/w1"),
        "{out}"
    );
    let out = verify("evidence", &at("a.evidence"), &["--witness", &w1_key]).stdout;
    assert!(out.contains("cosigned by witness.test/w1"), "{out}");
    let both = ["--witness", &w1_key, "--witness", &w2_key];
    let r = verify("evidence", &at("a.evidence"), &both);
    assert!(
        r.code == 1
            && r.stderr
                .contains("1 of the 2 cosignatures wanted (none from witness.test/w2)"),
        "exit {}: {}",
        r.code,
        r.stderr
    );
    let r = verify(
        "evidence",
        &at("a.evidence"),
        &[&both[..], &["--quorum", "1"]].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.ctl(&log_key, &["chain", "a-7", "--out", path(&at("a.chain"))]);
    let out = verify("chain", &at("a.chain"), &["--witness", &w1_key]).stdout;
    assert!(out.contains("cosigned by witness.test/w1"), "{out}");
    export_all(&s, &log_key, &at("export"));
    let out = verify("export", &at("export"), &["--witness", &w1_key]).stdout;
    assert!(
        out.contains("complete") && out.contains("cosigned by witness.test/w1"),
        "{out}"
    );

    // ledgerctl asks for cosignatures too: what it fetches, and what a
    // mirror takes.
    let w1_file = at("w1").join("witness.pub");
    s.ctl(
        &log_key,
        &[
            "--witness",
            path(&w1_file),
            "evidence",
            "a-7",
            "--out",
            path(&at("b.evidence")),
        ],
    );
    let url = format!("http://{}", s.addr);
    let two = |args: &[&str]| {
        let mut all = vec!["--url", &url, "--token", &s.reader, "--key", &log_key];
        all.extend_from_slice(&["--witness", &w1_key, "--witness", &w2_key]);
        all.extend_from_slice(args);
        run("ledgerctl", &all)
    };
    let r = two(&["evidence", "a-7", "--out", path(&at("c.evidence"))]);
    assert!(
        r.code != 0 && r.stderr.contains("none from witness.test/w2"),
        "{}",
        r.stderr
    );
    assert!(!at("c.evidence").exists());
    s.ctl(
        &log_key,
        &[
            "--witness",
            &w1_key,
            "--data",
            path(&at("mirror")),
            "mirror",
            "--once",
        ],
    );
    let mirrored = std::fs::read_to_string(at("mirror").join("checkpoint")).unwrap();
    assert!(
        mirrored.contains("\n40\n") && mirrored.contains("— witness.test/w1 "),
        "{mirrored}"
    );
    let r = two(&["--data", path(&at("mirror")), "mirror", "--once"]);
    assert!(
        r.code != 0
            && r.stderr.contains("is not taken yet")
            && r.stderr.contains("stays at size 40"),
        "{}",
        r.stderr
    );

    // Proofs and exports are pinned to the newest checkpoint every witness
    // cosigned when that holds what they prove: with the witness down,
    // a-7's evidence is still cosigned (size 45), and so is an export of a
    // window that ends within it; a later decision's evidence is proven by
    // the newest checkpoint, which no witness cosigned.
    s.append(&records("mid", 5));
    ledger_tests::cosigned(&s, "witness.test/w1", 45);
    drop(w1);
    s.append(&records("late", 2));
    ledger_tests::wait_until("a checkpoint of 47", || {
        s.metric("ledger_checkpoint_size") >= 47.0
    });
    s.ctl(
        &log_key,
        &["evidence", "a-7", "--out", path(&at("a2.evidence"))],
    );
    let out = verify("evidence", &at("a2.evidence"), &["--witness", &w1_key]).stdout;
    assert!(
        out.contains("cosigned by witness.test/w1") && out.contains("tree size 45,"),
        "{out}"
    );
    let mid: Value = serde_json::from_str(&s.ctl(&log_key, &["decision", "mid-0"])).unwrap();
    let to = mid["received_at"].as_str().unwrap();
    s.ctl(
        &log_key,
        &[
            "--witness",
            &w1_key,
            "export",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            to,
            "--out",
            path(&at("early")),
        ],
    );
    let out = verify("export", &at("early"), &["--witness", &w1_key]).stdout;
    assert!(
        out.contains("complete: 40 decisions") && out.contains("tree size 45"),
        "{out}"
    );
    s.ctl(
        &log_key,
        &["evidence", "late-1", "--out", path(&at("late.evidence"))],
    );
    let r = verify("evidence", &at("late.evidence"), &["--witness", &w1_key]);
    assert!(
        r.code == 1 && r.stderr.contains("0 of the 1 cosignatures wanted"),
        "{}",
        r.stderr
    );
    let w1 = Witness::start(&at("w1"), &log_key, &[]);

    // A restart: ledgerd keeps no witness state of its own; the witness's
    // 409 tells it where to prove consistency from.
    let writer = s.writer.clone();
    let again = |url: &str| {
        let mut s = Server::start_in(&data, &["--witness", url, &w1_key]);
        s.writer = writer.clone();
        s
    };
    assert_eq!(s.stop(), Some(0));
    let s = again(&w1.url);
    s.append(&records("b", 25));
    ledger_tests::cosigned(&s, "witness.test/w1", 72);
    assert_eq!(
        ledger_tests::witness_metric(&s, "ledger_witness_failures_total", "witness.test/w1"),
        0
    );

    // A fork: the same key, another history. The witness holds size 72 of
    // the real log and refuses it, now and after it restarts.
    let fork = at("fork");
    std::fs::create_dir_all(&fork).unwrap();
    for f in ["log.key", "log.pub"] {
        std::fs::copy(data.join(f), fork.join(f)).unwrap();
    }
    let mut perms = std::fs::metadata(fork.join("log.key"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(fork.join("log.key"), perms).unwrap();
    let forked = Server::start_in(&fork, &["--witness", &w1.url, &w1_key]);
    forked.append(&records("other", 70));
    let refused_fork = |f: &Server| {
        ledger_tests::witness_failed(f, "witness.test/w1");
        assert_eq!(
            ledger_tests::witness_metric(f, "ledger_witness_cosigned_size", "witness.test/w1"),
            0
        );
        let cp = f.request("GET", "/checkpoint", &[], b"").text();
        assert!(!cp.contains("witness.test/w1"), "{cp}");
    };
    refused_fork(&forked);
    let fork_writer = forked.writer.clone();
    drop(forked);
    drop(w1);
    let w1 = Witness::start(&at("w1"), &log_key, &[]);
    let mut forked = Server::start_in(&fork, &["--witness", &w1.url, &w1_key]);
    forked.writer = fork_writer;
    forked.append(&records("more", 5));
    refused_fork(&forked);
    // The real log goes on being cosigned by the restarted witness.
    drop(s);
    let s = again(&w1.url);
    s.append(&records("c", 3));
    ledger_tests::cosigned(&s, "witness.test/w1", 75);
}

/// An ML-DSA-44 witness (C2SP tlog-cosignature subtree/v1, which the spec
/// recommends for new witnesses) cosigns beside an Ed25519 one: ledgerd
/// verifies and keeps both cosignatures, and ledger-verify checks both in
/// evidence and exports.
#[test]
fn an_ml_dsa_44_witness_cosigns_beside_an_ed25519_one() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let data = at("data");
    let log_key = ok(
        "ledgerctl",
        &["keygen", "--origin", "pq.test/log", "--out", path(&data)],
    )
    .trim()
    .to_string();
    let ed_key = ledger_tests::witness_keygen("witness.test/ed", &at("ed"));
    let keygen_pq = |name: &str, out: &str| {
        ok(
            "ledgerctl",
            &[
                "witness",
                "keygen",
                "--alg",
                "ml-dsa-44",
                "--name",
                name,
                "--out",
                path(&at(out)),
            ],
        )
        .trim()
        .to_string()
    };
    let pq_key = keygen_pq("witness.test/pq", "pq");
    // The public key is type 0x06 with 1312 key bytes: base64 of 1313
    // bytes, whose first six bits (of 0x06) are 000001, "B".
    let raw = pq_key.splitn(3, '+').nth(2).unwrap();
    assert!(
        raw.starts_with('B') && raw.len() == 1313_usize.div_ceil(3) * 4,
        "{pq_key}"
    );
    // Another ML-DSA key under the same name: its cosignature is not there.
    let other_pq = keygen_pq("witness.test/pq", "pq-other");

    let ed = Witness::start(&at("ed"), &log_key, &[]);
    let pq = Witness::start(&at("pq"), &log_key, &[]);
    let s = Server::start_in(
        &data,
        &["--witness", &ed.url, &ed_key, "--witness", &pq.url, &pq_key],
    );
    s.append(&records("q", 12));
    ledger_tests::cosigned(&s, "witness.test/ed", 12);
    ledger_tests::cosigned(&s, "witness.test/pq", 12);

    let verify = |what: &str, file: &Path, extra: &[&str]| verify_with(&log_key, what, file, extra);
    let pq_file = at("pq").join("witness.pub");
    let both = ["--witness", &ed_key, "--witness", path(&pq_file)];
    std::fs::write(
        at("checkpoint"),
        s.request("GET", "/checkpoint", &[], b"").body,
    )
    .unwrap();
    let r = verify("checkpoint", &at("checkpoint"), &both);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("witness.test/ed at ") && r.stdout.contains("witness.test/pq at "),
        "{}",
        r.stdout
    );

    s.ctl(
        &log_key,
        &["evidence", "q-3", "--out", path(&at("q.evidence"))],
    );
    let r = verify("evidence", &at("q.evidence"), &both);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("witness.test/pq at "), "{}", r.stdout);
    // Only the Ed25519 key given: the ML-DSA line is named, not checked.
    let r = verify("evidence", &at("q.evidence"), &["--witness", &ed_key]);
    assert!(
        r.code == 0
            && r.stdout
                .contains("not checked (give their keys with --witness): witness.test/pq"),
        "{}",
        r.stdout
    );
    // The other key of the same name did not cosign it.
    let r = verify("evidence", &at("q.evidence"), &["--witness", &other_pq]);
    assert!(
        r.code == 1 && r.stderr.contains("none from witness.test/pq"),
        "exit {}: {}",
        r.code,
        r.stderr
    );
    // A flipped byte in the ML-DSA cosignature fails the evidence.
    let text = std::fs::read_to_string(at("q.evidence")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("\u{2014} witness.test/pq "))
        .unwrap();
    let (head, sig) = line.split_at(line.len() - 40);
    let flipped = sig.replacen(
        sig.chars().nth(5).unwrap(),
        if sig.chars().nth(5) == Some('A') {
            "B"
        } else {
            "A"
        },
        1,
    );
    std::fs::write(
        at("bad.evidence"),
        text.replacen(line, &format!("{head}{flipped}"), 1),
    )
    .unwrap();
    let r = verify("evidence", &at("bad.evidence"), &both);
    assert!(
        r.code == 1
            && r.stderr
                .contains("cosignature by witness.test/pq does not verify"),
        "exit {}: {}",
        r.code,
        r.stderr
    );

    export_all(&s, &log_key, &at("export"));
    let r = verify("export", &at("export"), &both);
    assert!(
        r.code == 0 && r.stdout.contains("complete") && r.stdout.contains("witness.test/pq at "),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn witness_settings_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wkey = ok(
        "ledgerctl",
        &[
            "witness",
            "keygen",
            "--name",
            "witness.test/w1",
            "--out",
            path(&dir.path().join("w")),
        ],
    )
    .trim()
    .to_string();
    let data = dir.path().join("data");
    for (args, needle) in [
        (
            vec!["--witness", "ftp://127.0.0.1:1", wkey.as_str()],
            "must begin with http:// or https://",
        ),
        (
            vec![
                "--witness",
                "http://127.0.0.1:1",
                "witness.test/w1+00000000+AAAA",
            ],
            "the key of witness http://127.0.0.1:1",
        ),
        (
            vec![
                "--witness",
                "http://127.0.0.1:1",
                wkey.as_str(),
                "--witness",
                "http://127.0.0.1:2",
                wkey.as_str(),
            ],
            "witness witness.test/w1 is given twice",
        ),
    ] {
        let mut all = vec!["--data", path(&data), "--listen", "127.0.0.1:0"];
        all.extend(args);
        let r = run("ledgerd", &all);
        assert!(
            r.code == 1 && r.stderr.contains(needle),
            "{all:?}: exit {}\n{}",
            r.code,
            r.stderr
        );
    }
    // A log's key where a witness key is wanted names both kinds.
    let log_key = ok(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "x.test/log",
            "--out",
            path(&dir.path().join("k")),
        ],
    );
    let r = run(
        "ledgerd",
        &[
            "--data",
            path(&data),
            "--listen",
            "127.0.0.1:0",
            "--witness",
            "http://127.0.0.1:1",
            log_key.trim(),
        ],
    );
    assert!(
        r.code == 1 && r.stderr.contains("0x04 or 0x06: a witness's"),
        "{}",
        r.stderr
    );
    // A witness in the config file that does not answer: ledgerd runs,
    // and counts the failures.
    let s = Server::with_config(
        &format!("[[witness]]\nurl = \"http://127.0.0.1:1\"\nkey = \"{wkey}\"\n"),
        &[],
    );
    s.append(&records("x", 3));
    ledger_tests::witness_failed(&s, "witness.test/w1");
    assert_eq!(s.tree_size(), 3);
    assert_eq!(
        s.stop(),
        Some(0),
        "a stop does not wait on a failing witness"
    );

    // ledger-verify: a quorum larger than the keys given.
    let cp = dir.path().join("cp");
    std::fs::write(&cp, "x\n").unwrap();
    let r = run(
        "ledger-verify",
        &[
            "checkpoint",
            "--key",
            log_key.trim(),
            "--witness",
            &wkey,
            "--quorum",
            "2",
            path(&cp),
        ],
    );
    assert!(
        r.code == 2
            && r.stderr
                .contains("a quorum of 2 needs at least 2 witness keys"),
        "{}",
        r.stderr
    );
    // A witness that is given no log to follow, or a bad one.
    let r = run(
        "ledgerctl",
        &[
            "witness",
            "serve",
            "--dir",
            path(&dir.path().join("w")),
            "--log",
            "nonsense",
        ],
    );
    assert!(r.code != 0 && r.stderr.contains("--log"), "{}", r.stderr);
}
