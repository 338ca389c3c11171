//! ledgerctl and ledger-verify end to end, on a temp data dir.

use std::path::Path;

use ledger_tests::{ok, refused, run};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = ok(
            "ledgerctl",
            &[
                "keygen",
                "--origin",
                "cli.example/log",
                "--out",
                p(&f.data()),
            ],
        );
        assert!(out.starts_with("cli.example/log+"));
        f
    }
    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
    fn ctl(&self, args: &[&str]) -> String {
        let data = self.data();
        let mut all = vec!["--data", p(&data)];
        all.extend_from_slice(args);
        ok("ledgerctl", &all)
    }
    fn ctl_run(&self, args: &[&str]) -> ledger_tests::Run {
        let data = self.data();
        let mut all = vec!["--data", p(&data)];
        all.extend_from_slice(args);
        run("ledgerctl", &all)
    }
    /// `ledgerctl --data <data> args…` fails naming `needle`.
    fn ctl_refused(&self, args: &[&str], needle: &str) {
        let data = self.data();
        let mut all = vec!["--data", p(&data)];
        all.extend_from_slice(args);
        ledger_tests::refused("ledgerctl", &all, needle)
    }
    fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.path(name), data).unwrap();
        self.path(name)
    }
    fn key(&self) -> String {
        self.data().join("log.pub").to_str().unwrap().to_string()
    }
}

/// A decision record (JSON) with this id.
fn record(id: &str) -> String {
    serde_json::json!({
        "decision_id": id, "time": "2026-11-23T07:00:00.123Z",
        "enforcer": {"id": "gw-1", "kind": "gateway"},
        "subject": {"type": "user", "id": "alice@example.com", "identity_kind": "human",
                    "owner": "alice@example.com"},
        "action": {"name": "read"}, "resource": {"type": "api", "id": "orders"},
        "context": {"request_id": format!("req-{id}"), "trace_id": "trace-cli"},
        "policy": {"engine": "opa", "id": "orders.authz", "version": "7"}, "decision": "allow"
    })
    .to_string()
}

#[test]
fn append_prove_and_verify_offline() {
    let f = Fixture::new();
    let files: Vec<String> = (0..5)
        .map(|i| f.write(&format!("r{i}.json"), record(&format!("d{i}")).as_bytes()))
        .collect();
    let refs: Vec<&str> = std::iter::once("append")
        .chain(files.iter().map(|s| s.as_str()))
        .collect();
    assert_eq!(
        f.ctl(&refs),
        "appended 0 d0\nappended 1 d1\nappended 2 d2\nappended 3 d3\nappended 4 d4\n"
    );
    // The same path as HTTP ingest: a retry is a duplicate, and the record
    // is found through the indexes.
    assert_eq!(f.ctl(&["append", &files[1]]), "duplicate 1 d1\n");
    let found = f.ctl(&["search", "--request-id", "req-d2", "--json"]);
    assert!(
        found.contains("\"index\":2") && found.contains("\"submitted_by\":\"ledgerctl\""),
        "{found}"
    );
    let cp1 = f.ctl(&["checkpoint"]);
    let cp1_file = f.write("cp1", cp1.as_bytes());
    assert!(ok(
        "ledger-verify",
        &["checkpoint", "--key", &f.key(), &cp1_file]
    )
    .contains("size 5"));

    // `decision` prints the record and writes the exact leaf bytes.
    let leaves: Vec<String> = (0..5).map(|i| f.path(&format!("leaf{i}.cbor"))).collect();
    for (i, leaf) in leaves.iter().enumerate() {
        let shown = f.ctl(&["decision", &format!("d{i}"), "--leaf", leaf]);
        let j: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(j["index"], i);
        assert_eq!(j["record"]["subject"]["id"], "alice@example.com");
    }
    let proof = f.path("e3.tlog-proof");
    f.ctl(&["prove", "3", "--out", &proof]);
    let verdict = ok(
        "ledger-verify",
        &["proof", "--key", &f.key(), "--entry", &leaves[3], &proof],
    );
    assert!(verdict.starts_with("OK: entry is leaf 3"), "{verdict}");
    assert!(
        verdict.contains("decision d3: allow"),
        "the record it proves: {verdict}"
    );
    // The key string works as well as the key file.
    let key_line = std::fs::read_to_string(f.key()).unwrap();
    ok(
        "ledger-verify",
        &[
            "proof",
            "--key",
            key_line.trim(),
            "--entry",
            &leaves[3],
            &proof,
        ],
    );
    // The wrong entry, a tampered proof, another log's key: all fail with exit 1.
    let r = run(
        "ledger-verify",
        &["proof", "--key", &f.key(), "--entry", &leaves[2], &proof],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("FAILED") && r.stderr.contains("root"),
        "{}",
        r.stderr
    );
    let text = std::fs::read_to_string(&proof)
        .unwrap()
        .replace("index 3", "index 2");
    let bad = f.write("bad.tlog-proof", text.as_bytes());
    assert_eq!(
        run(
            "ledger-verify",
            &["proof", "--key", &f.key(), "--entry", &leaves[3], &bad]
        )
        .code,
        1
    );
    let other = Fixture::new();
    let r = run(
        "ledger-verify",
        &[
            "proof",
            "--key",
            &other.key(),
            "--entry",
            &leaves[3],
            &proof,
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no signature by a known key"),
        "{}",
        r.stderr
    );
    // Unreadable inputs are exit 2.
    assert_eq!(
        run(
            "ledger-verify",
            &["proof", "--key", "nonsense", "--entry", &leaves[3], &proof]
        )
        .code,
        2
    );

    // Evidence, a receipt and the chain, offline from the store.
    let ev = f.path("d3.evidence");
    f.ctl(&["evidence", "d3", "--out", &ev]);
    let out = ok("ledger-verify", &["evidence", &ev, "--key", &f.key()]);
    assert!(
        out.starts_with("OK: evidence verified\ndecision d3: allow"),
        "{out}"
    );
    assert!(
        out.contains("submitted by ledgerctl (as authenticated)"),
        "{out}"
    );
    let json = ok(
        "ledger-verify",
        &["evidence", &ev, "--key", &f.key(), "--json"],
    );
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (j["verified"].clone(), j["index"].clone()),
        (serde_json::json!(true), serde_json::json!(3))
    );
    let cose = f.path("d3.cose");
    f.ctl(&["receipt", "d3", "--out", &cose]);
    let out = ok(
        "ledger-verify",
        &["receipt", &cose, "--leaf", &leaves[3], "--key", &f.key()],
    );
    assert!(
        out.contains("the leaf is at index 3 of tree size 5"),
        "{out}"
    );
    let r = run(
        "ledger-verify",
        &["receipt", &cose, "--leaf", &leaves[4], "--key", &f.key()],
    );
    assert!(
        r.code == 1 && r.stderr.contains("signature"),
        "{}",
        r.stderr
    );
    let chain = f.path("d3.chain");
    f.ctl(&["chain", "d3", "--out", &chain]);
    let out = ok("ledger-verify", &["chain", &chain, "--key", &f.key()]);
    assert!(
        out.contains("chain of 5 decisions (complete)"),
        "trace-cli links all five: {out}"
    );
    refused(
        "ledgerctl",
        &["--data", p(&f.data()), "evidence", "nope"],
        "no decision with id \"nope\"",
    );

    // Grow the log, then prove the new checkpoint extends the old one.
    let more = f.write(
        "more.jsonl",
        format!("{}\n{}\n", record("d5"), record("d6")).as_bytes(),
    );
    f.ctl(&["append", &more]);
    let cp2_file = f.write("cp2", f.ctl(&["checkpoint"]).as_bytes());
    let cons = f.path("5-7.proof");
    f.ctl(&["prove-consistency", "5", "7", "--out", &cons]);
    let verdict = ok(
        "ledger-verify",
        &[
            "consistency",
            "--key",
            &f.key(),
            &cp1_file,
            &cp2_file,
            &cons,
        ],
    );
    assert!(verdict.contains("size 7 extends size 5"), "{verdict}");
    let r = run(
        "ledger-verify",
        &[
            "consistency",
            "--key",
            &f.key(),
            &cp2_file,
            &cp1_file,
            &cons,
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    // An old checkpoint is still served and still proves old entries.
    assert_eq!(f.ctl(&["checkpoint", "--size", "5"]), cp1);
    let old_proof = f.path("old.tlog-proof");
    f.ctl(&["prove", "0", "--size", "5", "--out", &old_proof]);
    f.ctl(&["decision", "d0", "--leaf", &leaves[0]]);
    ok(
        "ledger-verify",
        &[
            "proof",
            "--key",
            &f.key(),
            "--entry",
            &leaves[0],
            &old_proof,
        ],
    );

    assert!(f.ctl(&["audit"]).starts_with("audit OK: 7 entries"));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let f = Fixture::new();
    let mut big: serde_json::Value = serde_json::from_str(&record("big")).unwrap();
    big["extensions"] = serde_json::json!({"blob": "x".repeat(65_536)});
    let big = f.write("big.json", big.to_string().as_bytes());
    let small = f.write("small.json", record("fine").as_bytes());
    let r = f.ctl_run(&["append", &small, &big]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("65535") && r.stderr.contains("nothing was appended"),
        "{}",
        r.stderr
    );
    let mut bad: serde_json::Value = serde_json::from_str(&record("bad")).unwrap();
    bad["subject"]["identity_kind"] = serde_json::json!("robot");
    let two = f.write("two.jsonl", format!("{}\n{bad}\n", record("ok")).as_bytes());
    let r = f.ctl_run(&["append", &two]);
    assert!(
        r.code != 0 && r.stderr.contains("subject.identity_kind"),
        "{}",
        r.stderr
    );
    let raw = f.write("raw", b"entry bytes, not a record");
    let r = f.ctl_run(&["append", &raw]);
    assert!(r.code != 0 && r.stderr.contains("CBOR"), "{}", r.stderr);
    assert!(f.ctl(&["checkpoint"]).contains("\n0\n"), "nothing appended");
    let r = f.ctl_run(&["prove", "0"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("beyond the tree size"), "{}", r.stderr);
    let r = f.ctl_run(&["prove-consistency", "3", "1"]);
    assert_ne!(r.code, 0);
    let r = f.ctl_run(&["append", &f.path("missing")]);
    assert!(r.code != 0 && r.stderr.contains("missing"), "{}", r.stderr);
    f.ctl_refused(&["search", "--limit", "0"], "--limit");
    // An empty filter (an unset shell variable) would find nothing, and an
    // empty window holds nothing: both are refused, not answered empty.
    f.ctl_refused(&["search", "--subject", ""], "subject is empty");
    let t = "2026-11-01T00:00:00Z";
    f.ctl_refused(
        &["search", "--received-from", t, "--received-to", t],
        "received_from must be before",
    );
    f.ctl_refused(
        &["search", "--received-from", "yesterday"],
        "span back from now such as 2h",
    );
    let out = f.path("empty-filter");
    let window = ["export", "--from", t, "--to", "2026-12-01T00:00:00Z"];
    f.ctl_refused(
        &[&window[..], &["--actor", "", "--out", &out]].concat(),
        "--actor is empty",
    );
    // ledger-verify reads a file whole only up to a bound, and a key file
    // only as far as a key can be: an endless input is refused (exit 2).
    let r = run(
        "ledger-verify",
        &["evidence", "/dev/zero", "--key", &f.key()],
    );
    assert!(
        r.code == 2 && r.stderr.contains("over 256 MiB"),
        "{}",
        r.stderr
    );
    let r = run(
        "ledger-verify",
        &["checkpoint", "--key", "/dev/zero", &f.key()],
    );
    assert!(
        r.code == 2 && r.stderr.contains("verifier key"),
        "{}",
        r.stderr
    );
    // A key string with a damaged character: said to be a bad key, not a
    // missing file.
    let key = std::fs::read_to_string(f.key()).unwrap();
    let damaged = format!("{}{}", &key.trim()[..key.trim().len() - 2], "AA");
    let r = run(
        "ledger-verify",
        &["checkpoint", "--key", &damaged, &f.key()],
    );
    assert!(
        r.code == 2 && r.stderr.contains("is not a verifier key ("),
        "{}",
        r.stderr
    );
    let r = run("ledgerctl", &["--data", &f.path("nokeys"), "checkpoint"]);
    assert!(
        r.code != 0 && r.stderr.contains("ledgerctl keygen"),
        "{}",
        r.stderr
    );
    let r = run(
        "ledgerctl",
        &["keygen", "--origin", "has space", "--out", &f.path("k")],
    );
    assert!(
        r.code != 0 && r.stderr.contains("invalid key name"),
        "{}",
        r.stderr
    );
    let r = run(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "cli.example/log",
            "--out",
            p(&f.data()),
        ],
    );
    assert!(
        r.code != 0
            && r.stderr.contains("already holds a log key")
            && r.stderr.contains("key next"),
        "keygen never overwrites: {}",
        r.stderr
    );
    // Without --out, the keys go into --data.
    let fresh = f.path("fresh");
    let line = ok(
        "ledgerctl",
        &["--data", &fresh, "keygen", "--origin", "fresh.example/log"],
    );
    let public = std::fs::read_to_string(Path::new(&fresh).join("log.pub")).unwrap();
    assert_eq!(public.trim(), line.trim());
    let r = run("ledgerctl", &["paced-sync", "--options", "recycle,bogus"]);
    assert!(
        r.code != 0 && r.stderr.contains("\"bogus\""),
        "{}",
        r.stderr
    );
    let r = run("ledgerctl", &["paced-sync", "--rate", "0"]);
    assert!(r.code != 0 && r.stderr.contains("--rate"), "{}", r.stderr);
    // A short run prints its percentiles.
    let r = run(
        "ledgerctl",
        &[
            "paced-sync",
            "--options",
            "ledger",
            "--seconds",
            "0.2",
            "--rate",
            "6400",
        ],
    );
    assert!(r.code == 0 && r.stdout.contains("p99"), "{}", r.stderr);
}

/// Runs `name args…` with a stdout whose reader is already gone, as
/// `ledgerctl search | head` leaves it once head has read enough.
fn run_into_closed_pipe(name: &str, args: &[&str]) -> std::process::Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors on success, checked here; each
    // is then owned once.
    let (reader, writer) = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(reader);
    std::process::Command::new(ledger_tests::bin(name))
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_the_commands_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let f = Fixture::new();
    let lines: Vec<String> = (0..3).map(|i| record(&format!("c{i}"))).collect();
    let file = f.write("records.jsonl", lines.join("\n").as_bytes());
    let data = f.data();
    // ledgerctl ends by SIGPIPE, as Unix filters do, without a panic; the
    // records are appended all the same, or not at all.
    for args in [
        vec!["append", &file],
        vec!["search", "--subject", "alice@example.com"],
    ] {
        let mut all = vec!["--data", p(&data)];
        all.extend(args.iter().copied());
        let out = run_into_closed_pipe("ledgerctl", &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {stderr}"
        );
    }
    f.ctl(&["append", &file]);
    let found = f.ctl(&["search", "--subject", "alice@example.com", "--json"]);
    assert_eq!(found.lines().count(), 3, "{found}");
    // ledger-verify's verdict and exit code stand without a reader.
    let cp = f.write("cp", f.ctl(&["checkpoint"]).as_bytes());
    let out = run_into_closed_pipe("ledger-verify", &["checkpoint", "--key", &f.key(), &cp]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn audit_reports_a_tampered_entry() {
    let f = Fixture::new();
    // 300 entries: leaf 9 is in the first full hash tile, which is stored
    // (a leaf in the partial tile would change the root computed when the
    // log is opened, and the audit would report the signed root instead).
    let lines: Vec<String> = (0..300).map(|i| record(&format!("e{i}"))).collect();
    let file = f.write("records.jsonl", lines.join("\n").as_bytes());
    f.ctl(&["append", &file]);
    f.ctl(&["checkpoint"]);
    {
        let db_path = f.data().join("db");
        // One column family (the indexes and checkpoints are in their own
        // databases, in db/index and db/checkpoints).
        let db = rocksdb::DB::open(&rocksdb::Options::default(), &db_path).unwrap();
        // Entries are stored in chunks of up to 16 of one append, keyed
        // `p` ‖ first leaf (8 BE) ‖ 0xff (specs/storage.md): leaf 9 is in
        // the chunk with the greatest key at or below its own.
        let mut at = vec![b'p'];
        at.extend_from_slice(&9u64.to_be_bytes());
        at.push(0xff);
        let (key, chunk) = db
            .iterator(rocksdb::IteratorMode::From(
                &at,
                rocksdb::Direction::Reverse,
            ))
            .next()
            .unwrap()
            .unwrap();
        let first = u64::from_be_bytes(key[1..9].try_into().unwrap()) as usize;
        let mut entries: Vec<&[u8]> = verifier::tile::decode_bundle(&chunk).unwrap();
        assert!(first <= 9 && 9 < first + entries.len());
        entries[9 - first] = b"rewritten history";
        let bundle = verifier::tile::encode_bundle(entries).unwrap();
        db.put(&key, bundle).unwrap();
    }
    let r = f.ctl_run(&["audit"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("audit FAILED") && r.stderr.contains("first bad leaf 9"),
        "{}",
        r.stderr
    );
}

#[test]
fn bench_warms_up_and_paces_as_asked() {
    // Small and bounded: every store is in a temp dir, nothing leaves the
    // process.
    let out = ok(
        "ledgerctl",
        &[
            "bench",
            "--records",
            "3000",
            "--rounds",
            "2",
            "--concurrency",
            "4",
            "--batch",
            "50",
            "--warmup",
            "1000",
            "--paced",
            "20000",
            // More than --records: the paced phase's ids must stay clear of
            // the warm-up's (a duplicate is not appended, and fails the run).
            "--paced-records",
            "4500",
        ],
    );
    assert!(out.contains("warm-up: 1000 records"), "{out}");
    // Two rounds, each the ledger then raw RocksDB; the medians compared.
    for round in ["round 1/2: ledger ", "round 2/2: ledger "] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(round) && l.contains("raw RocksDB")),
            "{out}"
        );
    }
    assert!(!out.contains("round 3/"), "{out}");
    assert!(out.contains("ratio:"), "{out}");
    assert!(
        out.contains("sustained peak, counting the index builds:"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("paced:")
            && l.contains(" 20000 records/s offered, 4500 records")
            && l.contains("p99.9")),
        "{out}"
    );
    assert!(!out.contains("half peak:"), "{out}");

    let out = ok(
        "ledgerctl",
        &["bench-proofs", "--sizes", "100,300", "--samples", "20"],
    );
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("300 ")) && out.contains("evidence p50 is"),
        "{out}"
    );
    refused(
        "ledgerctl",
        &["bench-proofs", "--sizes", "300,100"],
        "--sizes",
    );

    for bad in ["0", "-5", "NaN", "lots"] {
        let arg = format!("--paced={bad}");
        refused("ledgerctl", &["bench", "--records", "10", &arg], "--paced");
    }
    refused(
        "ledgerctl",
        &["bench", "--records", "10", "--paced-records=0"],
        "--paced-records",
    );
    refused(
        "ledgerctl",
        &["bench", "--records", "10", "--rounds=0"],
        "--rounds",
    );
    let remote = ["--url", "http://127.0.0.1:9", "bench", "--rounds", "2"];
    refused("ledgerctl", &remote, "--rounds");
    let remote = ["--url", "http://127.0.0.1:9", "bench", "--warmup", "10"];
    refused("ledgerctl", &remote, "--warmup");
    let remote = ["--url", "http://127.0.0.1:9", "bench", "--rounds", "2"];
    refused("ledgerctl", &remote, "--rounds");
    // Nothing listening: said at once, before any record is made.
    refused(
        "ledgerctl",
        &["--url", "http://127.0.0.1:9", "bench"],
        "no answer from ledgerd",
    );
}
