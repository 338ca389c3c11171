//! Rotating the log's signing key end to end (specs/keys.md, "Rotation"),
//! on the real binaries: `ledgerctl key next` and a restart make ledgerd
//! sign every checkpoint with both keys (the current one at once), a
//! witness given both keys goes on cosigning, a mirror moves to the new key
//! through a checkpoint signed by both, and after `key promote` the log
//! signs with the new key alone while its history stays verifiable: old
//! evidence with the old key, the mirror's audit and a restore through
//! `log.retired`. The same steps taken while ledgerd runs apply within a
//! second, without a restart.

use std::path::Path;

use ledger_tests::{ok, records, refused, run, Server, Witness};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ledger-verify checkpoint` of the server's `/checkpoint` with `key`.
fn verify_checkpoint(s: &Server, file: &Path, key: &str) -> ledger_tests::Run {
    std::fs::write(file, s.request("GET", "/checkpoint", &[], b"").body).unwrap();
    run("ledger-verify", &["checkpoint", path(file), "--key", key])
}

/// `ledger-verify evidence` of `file` with the log's `key` and the
/// witness's `witness`.
fn verify_evidence(file: &Path, key: &str, witness: &str) -> ledger_tests::Run {
    run(
        "ledger-verify",
        &["evidence", path(file), "--key", key, "--witness", witness],
    )
}

#[test]
fn a_key_rotation_keeps_the_log_verifiable_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let data = at("data");
    let ctl_data = |args: &[&str]| {
        let mut all = vec!["--data", path(&data)];
        all.extend_from_slice(args);
        ok("ledgerctl", &all)
    };
    let old = ok(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "rotating.test/log",
            "--out",
            path(&data),
        ],
    )
    .trim()
    .to_string();
    let w_key = ledger_tests::witness_keygen("witness.test/w", &at("w"));

    // Before: the old key signs; a witness and a mirror follow it.
    let w = Witness::start(&at("w"), &old, &[]);
    let s = Server::start_in(&data, &["--witness", &w.url, &w_key]);
    s.append(&records("a", 30));
    ledger_tests::cosigned(&s, "witness.test/w", 30);
    // A reader keeps the checkpoint it saw, signed by the old key alone.
    assert_eq!(
        verify_checkpoint(&s, &at("before.checkpoint"), &old).code,
        0
    );
    s.ctl(
        &old,
        &["evidence", "a-3", "--out", path(&at("before.evidence"))],
    );
    let url = format!("http://{}", s.addr);
    let (writer, reader) = (s.writer.clone(), s.reader.clone());
    // Tokens are printed on the first start only.
    let restart = |w: &Witness| {
        let mut s = Server::start_in(&data, &["--witness", &w.url, &w_key]);
        (s.writer, s.reader) = (writer.clone(), reader.clone());
        s
    };
    let mirror_once = |m: &str, key: &str, url: &str| {
        run(
            "ledgerctl",
            &[
                "--url",
                url,
                "--token",
                &reader,
                "--key",
                key,
                "--data",
                path(&at(m)),
                "mirror",
                "--once",
            ],
        )
    };
    // Two mirrors; the second will not follow the log through the rotation.
    for m in ["mirror", "mirror2"] {
        let r = mirror_once(m, &old, &url);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    s.stop();

    // Begin: the next key; ledgerd restarted signs with both at once.
    let new = ctl_data(&["key", "next"]).trim().to_string();
    assert_ne!(new, old);
    assert!(new.starts_with("rotating.test/log+"), "{new}");
    let list = ctl_data(&["key", "list"]);
    assert_eq!(list, format!("current {old}\nnext {new}\n"));
    refused(
        "ledgerctl",
        &["--data", path(&data), "key", "next"],
        "under way already",
    );
    drop(w);
    // The witness is given both keys; its state (size 30) carries over.
    let w = Witness::start(&at("w"), &old, &["--log", &new]);
    let s = restart(&w);
    for key in [&old, &new] {
        let r = verify_checkpoint(&s, &at("handover"), key);
        assert_eq!(r.code, 0, "{key}: {}", r.stderr);
    }
    assert_eq!(s.tree_size(), 30, "handed over with no new leaf");
    s.append(&records("b", 20));
    ledger_tests::cosigned(&s, "witness.test/w", 50);
    // Evidence made now carries both lines: either key verifies it, and
    // the other key's line is named, not taken for a witness.
    s.ctl(
        &old,
        &["evidence", "b-3", "--out", path(&at("during.evidence"))],
    );
    for key in [&old, &new] {
        assert_eq!(verify_checkpoint(&s, &at("during"), key).code, 0);
        let r = verify_evidence(&at("during.evidence"), key, &w_key);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("the log's other key"), "{}", r.stdout);
    }
    // The mirror takes it with the old key, then moves to the new one.
    let url = format!("http://{}", s.addr);
    let r = mirror_once("mirror", &old, &url);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = mirror_once("mirror", &new, &url);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("now follows the key"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(at("mirror").join("log.retired")).unwrap(),
        format!("{old}\n")
    );
    // A mirror that holds no checkpoint signed by both refuses the new
    // key, saying why, and stays as it was.
    let r = mirror_once("mirror2", &new, &url);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not signed by"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(at("mirror2").join("log.pub")).unwrap(),
        format!("{old}\n")
    );
    s.stop();

    // Promote: the new key alone signs from the next start.
    let out = ctl_data(&["key", "promote"]);
    assert_eq!(out, format!("current {new}\nretired {old}\n"));
    assert!(!data.join("log.next.key").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("log.pub")).unwrap(),
        format!("{new}\n")
    );
    refused(
        "ledgerctl",
        &["--data", path(&data), "key", "promote"],
        "key next",
    );
    let s = restart(&w);
    assert_eq!(s.key, new);
    s.append(&records("c", 10));
    ledger_tests::cosigned(&s, "witness.test/w", 60);
    assert_eq!(verify_checkpoint(&s, &at("after"), &new).code, 0);
    let r = verify_checkpoint(&s, &at("after"), &old);
    assert_eq!(r.code, 1, "the retired key does not sign: {}", r.stdout);
    // The log only grew across the rotation: the checkpoint kept from
    // before (old key) and the one now (new key), each with its key.
    s.ctl(
        &new,
        &[
            "prove-consistency",
            "30",
            "60",
            "--out",
            path(&at("30-60.proof")),
        ],
    );
    let across = |old_key: &str| {
        run(
            "ledger-verify",
            &[
                "consistency",
                "--key",
                &new,
                "--old-key",
                old_key,
                path(&at("before.checkpoint")),
                path(&at("after")),
                path(&at("30-60.proof")),
            ],
        )
    };
    let r = across(&old);
    assert!(
        r.code == 0 && r.stdout.contains("extends size 30"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        across(&new).code,
        1,
        "the old checkpoint is not the new key's"
    );

    // History: evidence made before verifies with the old key; evidence of
    // the same decision made now, with the new key and the witness.
    let r = verify_evidence(&at("before.evidence"), &old, &w_key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.ctl(
        &new,
        &["evidence", "a-3", "--out", path(&at("after.evidence"))],
    );
    let r = verify_evidence(&at("after.evidence"), &new, &w_key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("cosigned by witness.test/w"),
        "{}",
        r.stdout
    );

    // The mirror follows with the new key; its audit reads log.retired.
    let url = format!("http://{}", s.addr);
    let r = mirror_once("mirror", &new, &url);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = ok("ledgerctl", &["audit", "--mirror", path(&at("mirror"))]);
    assert!(out.contains("audit OK: 60 entries"), "{out}");
    // The served log audits with the new key and the retired one.
    let out = s.ctl(&new, &["audit", "--retired-key", &old]);
    assert!(out.contains("audit OK"), "{out}");
    s.stop();

    // A store restored from the mirror keeps the retired key and audits.
    let restored = at("restored");
    ok(
        "ledgerctl",
        &[
            "--data",
            path(&restored),
            "restore",
            "--mirror",
            path(&at("mirror")),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(restored.join("log.retired")).unwrap(),
        format!("{old}\n")
    );
    let out = ok("ledgerctl", &["--data", path(&restored), "audit"]);
    assert!(out.contains("audit OK: 60 entries"), "{out}");
}

/// `key next` and `key promote` while ledgerd runs: within a second it
/// signs with both keys (the last checkpoint at once, so an idle log hands
/// over), then with the new key alone; key files that do not load are
/// named and the keys in use kept; writes and proofs go on throughout.
#[test]
fn a_key_rotation_takes_effect_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let data = at("data");
    let ctl_data = |args: &[&str]| {
        let mut all = vec!["--data", path(&data)];
        all.extend_from_slice(args);
        ok("ledgerctl", &all)
    };
    let s = Server::start_in(&data, &[]);
    let old = s.key.clone();
    s.append(&records("h", 10));
    ledger_tests::wait_until("the first checkpoint", || {
        verify_checkpoint(&s, &at("cp"), &old)
            .stdout
            .contains("size 10")
    });
    let verifies = |key: &str| verify_checkpoint(&s, &at("cp"), key).code == 0;

    // Begin: the last checkpoint is signed by the next key too, with no
    // new record and no restart.
    let new = ctl_data(&["key", "next"]).trim().to_string();
    assert!(!verifies(&new), "not before the change is read");
    ledger_tests::wait_until("the hand-over checkpoint", || verifies(&new));
    assert!(verifies(&old));
    s.append(&records("i", 5));
    let evidence = at("i.evidence");
    ledger_tests::wait_until("a checkpoint of 15", || {
        run(
            "ledgerctl",
            &[
                "--url",
                &format!("http://{}", s.addr),
                "--token",
                &s.reader,
                "--key",
                &new,
                "evidence",
                "i-4",
                "--out",
                path(&evidence),
            ],
        )
        .code
            == 0
    });
    for key in [&old, &new] {
        let r = run(
            "ledger-verify",
            &["evidence", path(&evidence), "--key", key],
        );
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }

    // A key file that does not load: named, the keys in use kept.
    let retired = data.join("log.retired");
    std::fs::write(&retired, "not a key\n").unwrap();
    s.append(&records("j", 1));
    ledger_tests::wait_until("a checkpoint of 16 signed by both", || {
        verify_checkpoint(&s, &at("cp"), &old)
            .stdout
            .contains("size 16")
            && verifies(&new)
    });
    std::fs::remove_file(&retired).unwrap();

    // Promote: the new key alone signs the next checkpoints. ledgerd reads
    // the promotion within a second, and a checkpoint signed before then is
    // signed by both keys (valid, and not signed again): while the newest
    // checkpoint is such a one, another record makes the next.
    ctl_data(&["key", "promote"]);
    s.append(&records("k", 1));
    let mut more = 0;
    ledger_tests::wait_until("a checkpoint by the new key alone", || {
        let size = s.tree_size();
        let newest = verify_checkpoint(&s, &at("cp"), &new)
            .stdout
            .contains(&format!("size {size}"));
        if newest && verifies(&old) {
            more += 1;
            s.append(&records(&format!("k{more}"), 1));
            return false;
        }
        newest && !verifies(&old)
    });
    let receipt = at("k.cose");
    let leaf = at("k.leaf");
    let url = format!("http://{}", s.addr);
    let remote = ["--url", url.as_str(), "--token", &s.reader, "--key", &new];
    ok(
        "ledgerctl",
        &[&remote[..], &["receipt", "k-0", "--out", path(&receipt)]].concat(),
    );
    ok(
        "ledgerctl",
        &[&remote[..], &["decision", "k-0", "--leaf", path(&leaf)]].concat(),
    );
    let r = run(
        "ledger-verify",
        &[
            "receipt",
            path(&receipt),
            "--leaf",
            path(&leaf),
            "--key",
            &new,
        ],
    );
    assert_eq!(
        r.code, 0,
        "the receipt is signed by the new key: {}{}",
        r.stdout, r.stderr
    );
    // The history is still read: a checkpoint signed by the old key alone.
    let r = run(
        "ledgerctl",
        &[&remote[..], &["checkpoint", "--size", "10"]].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.ctl(&new, &["audit", "--retired-key", &old]);
}
