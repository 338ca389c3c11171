//! Recovery from damaged storage, end to end: a mirror follows ledgerd
//! through its tiles and refuses a log that forked; a store that lost its
//! newest leaves is refused on start, naming what was lost; a store rebuilt
//! from the mirror lets ledgerd go on with the same log.

use std::path::Path;
use std::time::{Duration, Instant};

use ledger_tests::{ok, records, run, Server};
use serde_json::Value;
use verifier::VerifierKey;

/// The latest checkpoint once it covers `size`.
fn checkpoint(s: &Server, size: u64) -> (u64, String) {
    let key = VerifierKey::parse(&s.key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let cp = verifier::checkpoint::open(&s.request("GET", "/checkpoint", &[], b"").body, &key)
            .unwrap();
        if cp.size >= size {
            return (cp.size, cp.root.to_base64());
        }
        assert!(Instant::now() < deadline, "no checkpoint of {size}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mirror(s: &Server, dir: &Path, key: &str) -> ledger_tests::Run {
    let url = format!("http://{}", s.addr);
    run("ledgerctl", &ledger_tests::mirror_once_args(&url, key, dir))
}

/// `ledgerctl --data DATA restore --mirror MIRROR`.
fn restore(data: &Path, mirror: &Path) -> ledger_tests::Run {
    run(
        "ledgerctl",
        &[
            "--data",
            data.to_str().unwrap(),
            "restore",
            "--mirror",
            mirror.to_str().unwrap(),
        ],
    )
}

fn decision(s: &Server, id: &str) -> Value {
    let auth = format!("Bearer {}", s.reader);
    serde_json::from_slice(
        &s.request(
            "GET",
            &format!("/v1/decisions/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .body,
    )
    .unwrap()
}

/// A ledgerd on a data dir in a temp dir; where its mirror goes; the
/// verifier key as a file.
fn logged() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    Server,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let (data, mirror_dir) = (dir.path().join("data"), dir.path().join("mirror"));
    let s = Server::start_in(&data, &[]);
    let key_file = dir.path().join("log.pub");
    std::fs::write(&key_file, &s.key).unwrap();
    let key = key_file.to_str().unwrap().to_string();
    (dir, data, mirror_dir, s, key)
}

/// Every file under `dir`, by its path, with its bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_mirror_restores_the_same_log_and_refuses_forks() {
    let (dir, data, mirror_dir, s, key) = logged();
    s.append(&records("a", 700));
    checkpoint(&s, 700);
    let r = mirror(&s, &mirror_dir, &key);
    assert!(
        r.code == 0 && r.stdout.contains("700 leaves"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // Incrementally: the partial bundle is fetched again, the rest is new.
    s.append(&records("b", 300));
    let (size, root) = checkpoint(&s, 1000);
    let r = mirror(&s, &mirror_dir, &key);
    assert!(
        r.code == 0 && r.stdout.contains(&format!("{size} leaves")) && r.stdout.contains("(+"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let before = decision(&s, "b-299");
    // The served log extends a checkpoint seen before.
    let early = dir.path().join("checkpoint-700");
    std::fs::copy(mirror_dir.join("checkpoints/700"), &early).unwrap();
    let served = ok(
        "ledgerctl",
        &[
            "--url",
            &format!("http://{}", s.addr),
            "--key",
            &key,
            "audit",
            "--checkpoint",
            early.to_str().unwrap(),
        ],
    );
    assert!(
        served.contains("the 1 checkpoint given was reached"),
        "{served}"
    );

    // A log with the same key and other leaves: not an extension.
    let forked_data = dir.path().join("forked");
    std::fs::create_dir_all(&forked_data).unwrap();
    for f in ["log.key", "log.pub"] {
        std::fs::copy(data.join(f), forked_data.join(f)).unwrap();
    }
    let forked = Server::start_in(&forked_data, &[]);
    forked.append(&records("z", 900));
    checkpoint(&forked, 900);
    // A checkpoint of the fork, as an auditor might hold one.
    let forked_cp = dir.path().join("forked-checkpoint-900");
    std::fs::write(
        &forked_cp,
        forked.request("GET", "/checkpoint", &[], b"").body,
    )
    .unwrap();
    forked.append(&records("y", 300));
    checkpoint(&forked, 1200);
    let unforked = files(&mirror_dir);
    let r = mirror(&forked, &mirror_dir, &key);
    assert!(
        r.code != 0 && r.stderr.contains("not an append-only extension"),
        "{}",
        r.stderr
    );
    drop(forked);
    // Not a file of the fork's stored or left staged.
    assert!(files(&mirror_dir) == unforked, "the mirror's files changed");
    assert!(
        std::fs::read_to_string(mirror_dir.join("checkpoint"))
            .unwrap()
            .contains(&format!("\n{size}\n")),
        "the mirror is unchanged"
    );

    // The store is lost; a new one is rebuilt from the mirror.
    let (writer, reader) = (s.writer.clone(), s.reader.clone());
    s.stop();
    std::fs::remove_dir_all(data.join("db")).unwrap();
    let restored = dir.path().join("restored");
    // A damaged mirror: the restore fails, and leaves no store behind that
    // ledgerd would start on (it would extend a shorter history).
    // The mirror audits clean: every entry, every kept checkpoint.
    let audit = |m: &Path| {
        run(
            "ledgerctl",
            &["audit", "--mirror", m.to_str().unwrap(), "--key", &key],
        )
    };
    let r = audit(&mirror_dir);
    assert!(
        r.code == 0 && r.stdout.contains(&format!("{size} entries of the mirror")),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // The same audit with the verifier alone, as an auditor runs it; an
    // earlier checkpoint they hold is reached on the way, one of the fork
    // is not.
    let verify = |m: &Path, extra: &[&str]| {
        let mut args = vec!["mirror", "--key", key.as_str()];
        args.extend_from_slice(extra);
        args.push(m.to_str().unwrap());
        run("ledger-verify", &args)
    };
    let r = verify(&mirror_dir, &["--checkpoint", early.to_str().unwrap()]);
    assert!(
        r.code == 0
            && r.stdout.contains(&format!(
                "{size} entries rehashed to the root signed at size {size} ({root})"
            ))
            && r.stdout.contains("and 1 given reached on the way"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = verify(&mirror_dir, &["--checkpoint", forked_cp.to_str().unwrap()]);
    assert!(
        r.code == 1
            && r.stderr
                .contains("do not hash to the root signed at size 900"),
        "{}",
        r.stderr
    );
    // A changed checkpoint kept for an older size fails it.
    let forged = dir.path().join("forged-checkpoint-mirror");
    copy_dir(&mirror_dir, &forged);
    let kept = forged.join("checkpoints/700");
    let text = std::fs::read_to_string(&kept).unwrap();
    std::fs::write(&kept, text.replacen("\n700\n", "\n699\n", 1)).unwrap();
    let r = audit(&forged);
    assert!(r.code != 0 && r.stderr.contains("size 700"), "{}", r.stderr);
    let r = verify(&forged, &[]);
    assert!(r.code == 1 && r.stderr.contains("size 700"), "{}", r.stderr);
    let damaged = dir.path().join("damaged-mirror");
    copy_dir(&mirror_dir, &damaged);
    let bundle = damaged.join("tile/entries/000");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&bundle, bytes).unwrap();
    let r = audit(&damaged);
    assert!(
        r.code != 0 && r.stderr.contains("audit FAILED"),
        "{}",
        r.stderr
    );
    let r = verify(&damaged, &[]);
    assert!(
        r.code == 1 && r.stderr.contains("do not hash to the root signed at size"),
        "{}",
        r.stderr
    );
    let missing = dir.path().join("missing-bundle-mirror");
    copy_dir(&mirror_dir, &missing);
    std::fs::remove_file(missing.join("tile/entries/001")).unwrap();
    let r = verify(&missing, &[]);
    assert!(
        r.code == 1 && r.stderr.contains("the mirror has no tile/entries/001"),
        "{}",
        r.stderr
    );
    let r = restore(&restored, &damaged);
    assert!(
        r.code != 0 && r.stderr.contains("do not hash"),
        "{}",
        r.stderr
    );
    assert!(
        !restored.join("db").exists(),
        "a failed restore left a store"
    );
    // The same directory then takes a good restore.
    let r = restore(&restored, &mirror_dir);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("restored {size} leaves")),
        "{}",
        r.stdout
    );
    for f in ["log.key", "tokens"] {
        std::fs::copy(data.join(f), restored.join(f)).unwrap();
    }
    assert!(ok(
        "ledgerctl",
        &["--data", restored.to_str().unwrap(), "audit"]
    )
    .starts_with(&format!("audit OK: {size} entries")));
    // The restored store extends the checkpoint held, and not the fork's.
    let held = |cp: &Path| {
        run(
            "ledgerctl",
            &[
                "--data",
                restored.to_str().unwrap(),
                "audit",
                "--checkpoint",
                cp.to_str().unwrap(),
            ],
        )
    };
    let r = held(&early);
    assert!(
        r.code == 0 && r.stdout.contains("the 1 checkpoint given was reached"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = held(&forked_cp);
    assert!(
        r.code != 0
            && r.stderr
                .contains("does not have the root signed at size 900"),
        "{}",
        r.stderr
    );
    let r = run(
        "ledgerctl",
        &[
            "audit",
            "--mirror",
            mirror_dir.to_str().unwrap(),
            "--key",
            &key,
            "--checkpoint",
            forked_cp.to_str().unwrap(),
        ],
    );
    assert!(
        r.code != 0
            && r.stderr
                .contains("do not hash to the root signed at size 900"),
        "{}",
        r.stderr
    );
    let mut s2 = Server::start_in(&restored, &[]);
    (s2.writer, s2.reader) = (writer, reader);
    let (size2, root2) = checkpoint(&s2, size);
    assert_eq!((size2, root2), (size, root), "the same log, the same root");
    let after = decision(&s2, "b-299");
    assert_eq!(
        (after["index"].clone(), after["leaf_hash"].clone()),
        (before["index"].clone(), before["leaf_hash"].clone())
    );
    // Retries are still duplicates; new records go on after the old ones.
    s2.append(&records("b", 10));
    s2.append(&records("c", 5));
    assert_eq!(decision(&s2, "c-0")["index"], size);
    let (size3, _) = checkpoint(&s2, size + 5);
    assert_eq!(size3, size + 5);
    // The new checkpoint extends the old one, as the mirror checks.
    let r = mirror(&s2, &mirror_dir, &key);
    assert!(r.code == 0, "{}", r.stderr);
}

#[test]
fn a_store_that_lost_its_newest_leaves_is_refused_and_says_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    s.append(&records("a", 300));
    checkpoint(&s, 300);
    let (writer, reader) = (s.writer.clone(), s.reader.clone());
    s.stop();
    // The store as it was at 300 leaves.
    let old = dir.path().join("old-db");
    copy_dir(&data.join("db"), &old);
    let mut s = Server::start_in(&data, &[]);
    (s.writer, s.reader) = (writer, reader);
    s.append(&records("b", 200));
    checkpoint(&s, 500);
    s.stop();
    // The store goes back to 300 leaves (as a damaged WAL replays only
    // part of itself), while the log had signed 500.
    let witness = std::fs::read(data.join("db").join("last-checkpoint")).unwrap();
    std::fs::remove_dir_all(data.join("db")).unwrap();
    copy_dir(&old, &data.join("db"));
    std::fs::write(data.join("db").join("last-checkpoint"), witness).unwrap();
    let out = std::process::Command::new(ledger_tests::bin("ledgerd"))
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("holds 300 leaves, but the log signed a checkpoint of 500")
            && err.contains("leaves 300..500 are lost")
            && err.contains("ledgerctl restore"),
        "{err}"
    );
    let r = run("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(
        r.code != 0 && r.stderr.contains("leaves 300..500 are lost"),
        "{}",
        r.stderr
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// One `ledgerctl mirror` writes a mirror at a time: while one follows the
/// log, another on the same directory stops at once, naming the lock, and
/// writes nothing; once the first is gone, the next one runs.
#[test]
fn a_second_mirror_on_the_same_directory_is_refused() {
    let (_dir, _data, mirror_dir, s, key) = logged();
    s.append(&records("m", 50));
    checkpoint(&s, 50);
    let mut follower = std::process::Command::new(ledger_tests::bin("ledgerctl"))
        .args(["--url", &format!("http://{}", s.addr), "--key", &key])
        .args(["--data", mirror_dir.to_str().unwrap(), "mirror"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The follower has the lock once it has written its first checkpoint
    // (nothing else writes this mirror), and holds it while it runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mirror_dir.join("checkpoint").exists() {
        assert!(Instant::now() < deadline, "the follower never synced");
        assert!(
            follower.try_wait().unwrap().is_none(),
            "the follower stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = mirror(&s, &mirror_dir, &key);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("another ledgerctl mirror is using"),
        "{}",
        refused.stderr
    );
    follower.kill().unwrap();
    follower.wait().unwrap();
    let r = mirror(&s, &mirror_dir, &key);
    assert!(
        r.code == 0 && r.stdout.contains("50 leaves"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

/// `mirror --print`: each decision a sync proves, on stdout as an export
/// writes it (the JSON line is what `GET /v1/decisions/{id}` answers), the
/// next sync only the new ones; the mirror's own lines go to stderr.
#[test]
fn a_mirror_prints_each_decision_it_proves_for_a_siem() {
    let (dir, _data, mirror_dir, s, key) = logged();
    let print = |m: &Path, form: &str| {
        run(
            "ledgerctl",
            &[
                "--url",
                &format!("http://{}", s.addr),
                "--key",
                &key,
                "--data",
                m.to_str().unwrap(),
                "mirror",
                "--once",
                "--print",
                form,
            ],
        )
    };
    let printed = |r: &ledger_tests::Run| -> Vec<Value> {
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // A whole entry bundle and part of the next.
    s.append(&records("p", 300));
    checkpoint(&s, 300);
    let r = print(&mirror_dir, "jsonl");
    assert!(r.stderr.contains("300 leaves"), "{}", r.stderr);
    let lines = printed(&r);
    assert_eq!(lines.len(), 300);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line, &decision(&s, &format!("p-{i}")), "line {i}");
    }
    s.append(&records("q", 20));
    checkpoint(&s, 320);
    let lines = printed(&print(&mirror_dir, "jsonl"));
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["record"]["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, (0..20).map(|i| format!("q-{i}")).collect::<Vec<_>>());
    assert!(printed(&print(&mirror_dir, "jsonl")).is_empty());
    // OCSF, from the start, in a mirror of its own.
    let lines = printed(&print(&dir.path().join("ocsf-mirror"), "ocsf"));
    assert_eq!(lines.len(), 320);
    assert!(
        lines.iter().all(|l| l["class_uid"] == 6003),
        "{:?}",
        lines[0]
    );
}
