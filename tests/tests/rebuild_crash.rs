//! The operator's rebuilds killed (SIGKILL) at random moments:
//! `ledgerctl reindex` (the indexes made again from the leaves),
//! `ledgerctl restore` (a store made from a mirror) and `ledgerctl export`.
//! After kills, ledgerd starts on the reindexed store and finds every
//! decision, a retry is still a duplicate, and the store audits clean; a
//! restore killed leaves no store to start on (or, past its last step, a
//! whole one), and the next one completes; an export killed leaves a package with its manifest only
//! when the package verifies, and run again completes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger_tests::{bin, crash_seed, next_random, ok, records, Server};

const BATCHES: usize = 40;

/// The time `ledgerctl args` takes once whole, and a quarter more: the
/// window kills land in.
fn window(args: &[&str]) -> u64 {
    let started = Instant::now();
    ok("ledgerctl", args);
    started.elapsed().as_micros() as u64 * 5 / 4 + 1
}

/// Starts `ledgerctl args` and kills it at a random moment within
/// `window` µs: whether it was still running then, and whether it had
/// ended well.
fn killed_run(args: &[&str], window: u64, x: &mut u64) -> (bool, bool) {
    let mut child = Command::new(bin("ledgerctl"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_micros(next_random(x) % window));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    (running, child.wait().unwrap().success())
}

/// Every decision `subject` was about, counted through the search's pages.
fn search_count(s: &Server, subject: &str) -> usize {
    let auth = format!("Bearer {}", s.reader);
    let (mut count, mut cursor) = (0, String::new());
    loop {
        let path = format!("/v1/search?subject={subject}&limit=1000{cursor}");
        let r = s.request("GET", &path, &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let page: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        count += page["results"].as_array().unwrap().len();
        match page["next_cursor"].as_u64() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return count,
        }
    }
}

/// ledgerd on `data` holds `BATCHES` × 1,000 decisions, each found;
/// `tokens` are its writer and reader tokens, if it has them already.
fn holds_every_decision(data: &Path, tokens: Option<(&str, &str)>) {
    let mut s = Server::start_in(data, &[]);
    if let Some((writer, reader)) = tokens {
        (s.writer, s.reader) = (writer.to_string(), reader.to_string());
    }
    let writer = s.writer.clone();
    let auth = format!("Bearer {}", s.reader);
    for b in 0..BATCHES {
        for i in [0, 499, 999] {
            let path = format!("/v1/decisions/b{b}-{i}");
            let r = s.request("GET", &path, &[("Authorization", &auth)], b"");
            assert_eq!(r.status, 200, "{path}: {}", r.text());
        }
    }
    // subject u3: i % 9 == 3, 111 of each 1,000.
    assert_eq!(search_count(&s, "u3"), BATCHES * 111);
    // A retry is answered as the duplicate it is.
    let r = s.post(&writer, &records("b7", 20));
    assert_eq!(r.status, 200, "{}", r.text());
    let answer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(answer["duplicate"], 20, "{answer}");
    assert_eq!(s.tree_size(), (BATCHES * 1000) as u64);
    s.stop();
    let audit = ok("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(audit.contains("audit OK"), "{audit}");
}

#[test]
fn a_reindex_restore_or_export_killed_at_any_moment_is_finished_by_the_next_run() {
    let kills = ledger_tests::env_number("LEDGER_REBUILD_CRASH_CYCLES", 8);
    let mut x = crash_seed("rebuild crash");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    let (writer, reader) = (s.writer.clone(), s.reader.clone());
    for b in 0..BATCHES {
        s.append(&records(&format!("b{b}"), 1000));
    }
    s.covered((BATCHES * 1000) as u64);
    let mirror = dir.path().join("mirror");
    let url = format!("http://{}", s.addr);
    let key_file = data.join("log.pub");
    let key = key_file.to_str().unwrap();
    ok(
        "ledgerctl",
        &ledger_tests::mirror_once_args(&url, key, &mirror),
    );
    s.stop();

    let d = data.to_str().unwrap();
    // Each killed reindex: ledgerd started on what it left finds all.
    let reindex = ["--data", d, "reindex"];
    let within = window(&reindex);
    let mut killed = 0;
    for _ in 0..kills {
        killed += killed_run(&reindex, within, &mut x).0 as usize;
        holds_every_decision(&data, Some((&writer, &reader)));
    }

    // Each killed restore leaves no store, and the next one into the same
    // directory completes; or, killed after it moved the store into
    // place, a whole one.
    let m = mirror.to_str().unwrap();
    let whole = dir.path().join("whole");
    let within = window(&["--data", whole.to_str().unwrap(), "restore", "--mirror", m]);
    let mut restores_killed = 0;
    let mut restored = whole;
    for k in 0..kills {
        restored = dir.path().join(format!("restored-{k}"));
        let restore = [
            "--data",
            restored.to_str().unwrap(),
            "restore",
            "--mirror",
            m,
        ];
        let (running, done) = killed_run(&restore, within, &mut x);
        restores_killed += running as usize;
        if !done {
            if restored.join("db").exists() {
                // Killed after its commit (`db.restoring` renamed to
                // `db`): the store is whole.
                let audit = ok("ledgerctl", &["--data", restore[1], "audit"]);
                let whole = format!("audit OK: {} entries rehashed", BATCHES * 1000);
                assert!(audit.contains(&whole), "{audit}");
            } else {
                ok("ledgerctl", &restore);
            }
        }
    }
    // Each killed export leaves a package with its manifest, which then
    // verifies, or none, and the export run again completes.
    let window = [
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2030-01-01T00:00:00Z",
    ];
    let export = |out: &Path| -> Vec<String> {
        let mut args = vec!["--data".to_string(), d.to_string(), "export".into()];
        args.extend(window.iter().map(|a| a.to_string()));
        args.extend(["--out".into(), out.to_str().unwrap().to_string()]);
        args
    };
    let args = export(&dir.path().join("export-whole"));
    let within = self::window(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut exports_killed = 0;
    for k in 0..kills {
        let out = dir.path().join(format!("export-{k}"));
        let args = export(&out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        exports_killed += killed_run(&args, within, &mut x).0 as usize;
        if !out.join("manifest.json").exists() {
            ok("ledgerctl", &args);
        }
        let verdict = ok(
            "ledger-verify",
            &["export", out.to_str().unwrap(), "--key", key],
        );
        assert!(verdict.contains("complete"), "{verdict}");
    }
    std::fs::copy(data.join("log.key"), restored.join("log.key")).unwrap();
    let mut perms = std::fs::metadata(restored.join("log.key"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(restored.join("log.key"), perms).unwrap();
    holds_every_decision(&restored, None);
    eprintln!(
        "rebuild crash: {killed} of {kills} reindexes, {restores_killed} restores and {exports_killed} exports killed while running"
    );
    assert!(killed > 0, "no reindex was killed while it ran");
}
