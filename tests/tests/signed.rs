//! Records signed by their enforcer, end to end on the real ledgerd
//! (specs/signed-record.md): the enforcer makes a key, the operator
//! registers it (no restart), the enforcer's unsigned records are refused
//! and its signed ones logged; an auditor verifies the signature offline
//! with the enforcer's public key, and a signature that does not verify,
//! or is missing where it is required, fails the verification.

use ledger_tests::{ok, records, refused, run, wait_until, Server};

/// Writes the evidence file of `id` to `out` once a signed checkpoint
/// holds it (they are signed about every second).
fn evidence(s: &Server, id: &str, out: &str) {
    let url = format!("http://{}", s.addr);
    wait_until("a checkpoint holding the decision", || {
        run(
            "ledgerctl",
            &[
                "--url", &url, "--token", &s.reader, "--key", &s.key, "evidence", id, "--out", out,
            ],
        )
        .code
            == 0
    });
}

/// `ledgerctl --url … --token <writer> ship [--signing-key KEY] FILE`.
fn ship(s: &Server, key: Option<&str>, file: &str) -> ledger_tests::Run {
    let url = format!("http://{}", s.addr);
    let mut args = vec!["--url", &url, "--token", &s.writer, "ship"];
    if let Some(key) = key {
        args.extend(["--signing-key", key]);
    }
    args.push(file);
    run("ledgerctl", &args)
}

/// `ledger-verify <what> FILE --key <log key> <extra>…`.
fn verify(s: &Server, what: &str, file: &str, extra: &[&str]) -> ledger_tests::Run {
    let mut args = vec![what, file, "--key", &s.key];
    args.extend_from_slice(extra);
    run("ledger-verify", &args)
}

/// Asserts that `r` succeeded and its stdout contains `needle`.
fn says(r: ledger_tests::Run, needle: &str) {
    assert!(
        r.code == 0 && r.stdout.contains(needle),
        "exit {}, {needle:?} expected:\n{}{}",
        r.code,
        r.stdout,
        r.stderr
    );
}

/// Asserts that `r` failed naming `needle` on stderr.
fn fails(r: ledger_tests::Run, needle: &str) {
    assert!(
        r.code != 0 && r.stderr.contains(needle),
        "exit {}, {needle:?} expected on stderr:\n{}",
        r.code,
        r.stderr
    );
}

#[test]
fn an_enforcers_signed_records_verify_offline_and_its_unsigned_ones_are_refused() {
    let s = Server::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    let data = s.data.to_str().unwrap().to_string();
    let write = |name: &str, prefix: &str, n: usize| {
        std::fs::write(w(name), records(prefix, n).to_string()).unwrap();
        w(name)
    };
    let (key, public) = (w("gw/enforcer.key"), w("gw/enforcer.pub"));

    // The enforcer `gw` makes its key; before it is registered, its
    // unsigned records are taken.
    ok(
        "ledgerctl",
        &["enforcer", "keygen", "--name", "gw", "--out", &w("gw")],
    );
    let public_line = std::fs::read_to_string(&public).unwrap();
    s.append(&records("before", 2));

    // The operator registers it: from then on (no restart) gw must sign.
    ok("ledgerctl", &["--data", &data, "enforcer", "add", &public]);
    let listed = ok("ledgerctl", &["--data", &data, "enforcer", "list"]);
    assert!(listed.contains(public_line.trim()), "{listed}");
    let plain = write("plain.json", "plain", 3);
    fails(ship(&s, None, &plain), "its records must come signed");
    assert_eq!(s.tree_size(), 2, "nothing unsigned of gw was appended");

    // Signed with `ledgerctl sign`, then shipped; and signed on the way.
    let signed = w("signed.cbor");
    ok(
        "ledgerctl",
        &["sign", "--signing-key", &key, "--out", &signed, &plain],
    );
    says(ship(&s, None, &signed), "3 appended");
    says(
        ship(&s, Some(&key), &write("more.json", "more", 2)),
        "2 appended",
    );
    // A retry of a signed record is a duplicate, not a second leaf.
    says(ship(&s, None, &signed), "3 duplicate");

    // Signed with another key under gw's name: refused.
    ok(
        "ledgerctl",
        &["enforcer", "keygen", "--name", "gw", "--out", &w("thief")],
    );
    let forged = write("forged.json", "forged", 1);
    fails(
        ship(&s, Some(&w("thief/enforcer.key")), &forged),
        "which is not a key of enforcer",
    );
    assert_eq!(s.tree_size(), 7);
    // /metrics counts the keys and the signatures checked (duplicates too).
    assert_eq!(s.metric("ledger_enforcer_keys"), 1.0);
    assert_eq!(s.metric("ledger_records_signed_total"), 8.0);

    // An auditor verifies the evidence offline with gw's public key.
    let ev = w("plain-1.ev");
    evidence(&s, "plain-1", &ev);
    let required = ["--enforcer-key", public.as_str(), "--require-signed"];
    says(
        verify(&s, "evidence", &ev, &required),
        "signed by its enforcer gw, key",
    );
    let json = verify(
        &s,
        "evidence",
        &ev,
        &["--enforcer-key", public_line.trim(), "--json"],
    );
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["enforcer_signature"]["status"], "verified");
    // Without gw's key, the signature is named but not counted.
    says(verify(&s, "evidence", &ev, &[]), "NOT CHECKED");
    // The thief's key under gw's name does not verify it.
    let thief = w("thief/enforcer.pub");
    fails(
        verify(&s, "evidence", &ev, &["--enforcer-key", &thief]),
        "which is not a key of enforcer",
    );
    // A record logged before gw signed fails --require-signed.
    evidence(&s, "before-0", &w("before-0.ev"));
    fails(
        verify(&s, "evidence", &w("before-0.ev"), &required),
        "not signed by its enforcer",
    );

    // A COSE receipt of the leaf: the same account, the same check.
    s.ctl(&s.key, &["receipt", "plain-1", "--out", &w("plain-1.cose")]);
    s.ctl(
        &s.key,
        &["decision", "plain-1", "--leaf", &w("plain-1.leaf")],
    );
    let leaf = [
        "--leaf",
        &w("plain-1.leaf"),
        required[0],
        required[1],
        required[2],
    ];
    says(
        verify(&s, "receipt", &w("plain-1.cose"), &leaf),
        "signed by its enforcer gw, key",
    );
    fails(
        verify(
            &s,
            "receipt",
            &w("plain-1.cose"),
            &["--leaf", &w("plain-1.leaf"), "--enforcer-key", &thief],
        ),
        "which is not a key of enforcer",
    );

    // Chains carry the signatures of their hops.
    s.ctl(&s.key, &["chain", "more-0", "--out", &w("chain")]);
    says(
        verify(&s, "chain", &w("chain"), &required),
        "[signed: verified]",
    );

    // An export counts and checks them; --require-signed names the two
    // decisions logged before gw signed.
    s.ctl(
        &s.key,
        &[
            "export",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "now",
            "--out",
            &w("export"),
        ],
    );
    let gw = ["--enforcer-key", public.as_str()];
    says(
        verify(&s, "export", &w("export"), &gw),
        "5 signed by their enforcers (5 verified with the enforcer keys given, 0 not checked), 2 unsigned",
    );
    fails(
        verify(&s, "export", &w("export"), &required),
        "2 of its 7 disclosed decisions are not signed",
    );
    fails(
        verify(&s, "export", &w("export"), &["--enforcer-key", &thief]),
        "which is not a key of enforcer",
    );

    // Removing the key takes gw's unsigned records again.
    ok("ledgerctl", &["--data", &data, "enforcer", "remove", "gw"]);
    assert_eq!(s.metric("ledger_enforcer_keys"), 0.0);
    says(ship(&s, None, &plain), "3 duplicate");
    s.append(&records("after", 1));
    assert_eq!(s.tree_size(), 8);
}

#[test]
fn bad_enforcer_keys_and_records_are_named() {
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    ok(
        "ledgerctl",
        &["enforcer", "keygen", "--name", "gw", "--out", &w("gw")],
    );
    // A record of another enforcer is not signed with gw's key.
    let mut other = records("x", 1);
    other[0]["enforcer"]["id"] = "gw-2".into();
    std::fs::write(w("other.json"), other.to_string()).unwrap();
    refused(
        "ledgerctl",
        &[
            "sign",
            "--signing-key",
            &w("gw/enforcer.key"),
            "--out",
            &w("o.cbor"),
            &w("other.json"),
        ],
        "record 0: its enforcer.id is \"gw-2\", but the key is \"gw\"'s",
    );
    assert!(
        !work.path().join("o.cbor").exists(),
        "no partial output is left"
    );
    // An invalid record is named with its problem.
    let mut bad = records("y", 2);
    bad[1]["decision"] = "maybe".into();
    std::fs::write(w("bad.json"), bad.to_string()).unwrap();
    refused(
        "ledgerctl",
        &[
            "sign",
            "--signing-key",
            &w("gw/enforcer.key"),
            &w("bad.json"),
        ],
        "record 1",
    );
    // A public key is not a signing key; a garbled key is not registered.
    std::fs::set_permissions(
        w("gw/enforcer.pub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    refused(
        "ledgerctl",
        &[
            "sign",
            "--signing-key",
            &w("gw/enforcer.pub"),
            &w("bad.json"),
        ],
        "not an enforcer signing key",
    );
    let data = w("data");
    refused(
        "ledgerctl",
        &["--data", &data, "enforcer", "add", "gw+00000000+AAAA"],
        "not a verifier key",
    );
    refused(
        "ledgerctl",
        &["--data", &data, "enforcer", "remove", "nobody"],
        "no enforcer key is named",
    );
    // ledgerd does not start on a key file that does not load.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(work.path().join("data/enforcer-keys"), "not a key\n").unwrap();
    let r = run(
        "ledgerd",
        &[
            "--data",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "t.example/log",
        ],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("enforcer-keys"), "{}", r.stderr);
}
