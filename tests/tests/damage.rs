//! A store whose files the disk damaged: RocksDB's block checksums find
//! it, the error names the store and what to do, `/metrics` counts it,
//! `ledgerctl audit` fails on it, nothing is appended twice meanwhile, and
//! damaged indexes are rebuilt from the leaves: by a running ledgerd
//! beside the ones in use, by `ledgerctl reindex`, or when the store is
//! next opened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ledger_tests::{next_random, ok, records, refused, run, Server};

/// Past one index span (65,536 leaves), so that one is built into the
/// index database's files.
const RECORDS: usize = 70_000;
/// Every this many records are looked up.
const STEP: usize = 97;

/// A data dir in `dir` holding the `RECORDS` decisions `d-<i>`, appended
/// with `ledgerctl append`.
fn store(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    ok(
        "ledgerctl",
        &["keygen", "--origin", "damage.example/log", "--out", d],
    );
    let file = dir.join("records.jsonl");
    let lines: Vec<String> = records("d", RECORDS)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "append", file.to_str().unwrap()],
    );
    ok("ledgerctl", &["--data", d, "checkpoint"]);
    data
}

/// The SST files in `dir`, smallest first.
fn ssts(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    assert!(!files.is_empty(), "no SST file in {}", dir.display());
    files.sort_by_key(|p| p.metadata().unwrap().len());
    files
}

/// The largest SST file in `dir`.
fn largest_sst(dir: &Path) -> PathBuf {
    ssts(dir).pop().unwrap()
}

/// The smallest SST file in `dir`.
fn smallest_sst(dir: &Path) -> PathBuf {
    ssts(dir).remove(0)
}

/// Flips one byte every `every` bytes of `file`, past its first and
/// before its last 4 KiB: what a failing disk or a stray write does.
fn damage(file: &Path, every: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    let len = bytes.len();
    assert!(len > 3 * every, "{} is only {len} bytes", file.display());
    for at in (4096..len - 4096).step_by(every) {
        bytes[at] ^= 0xff;
    }
    std::fs::write(file, bytes).unwrap();
}

/// `GET /v1/decisions/d-<i>` for every `STEP`th record: its status and body.
fn look_up(s: &Server, token: &str) -> Vec<(usize, u16, String)> {
    let auth = format!("Bearer {token}");
    (0..RECORDS)
        .step_by(STEP)
        .map(|i| {
            let r = s.request(
                "GET",
                &format!("/v1/decisions/d-{i}"),
                &[("Authorization", &auth)],
                b"",
            );
            (i, r.status, r.text())
        })
        .collect()
}

/// Asserts that `ledgerctl status` of `s` exits 1 with an attention line
/// saying `what`.
fn needs_a_person(s: &Server, what: &str) {
    let status = run(
        "ledgerctl",
        &["--url", &format!("http://{}", s.addr), "status"],
    );
    assert!(
        status.code == 1 && status.stdout.contains(what),
        "{}",
        status.stdout
    );
}

/// What [`running_on_damage`] gives: the data dir, the ledgerd on it, a
/// reader and a relay token, and what [`look_up`] met.
type OnDamage = (PathBuf, Server, String, String, Vec<(usize, u16, String)>);

/// A ledgerd on a store of `dir` whose built span's `decisions` file (the
/// largest in db/index) is damaged, and the lookups: some met the damage.
fn running_on_damage(dir: &Path) -> OnDamage {
    let data = store(dir);
    damage(&largest_sst(&data.join("db/index")), 50_000);
    let s = Server::start_in(&data, &[]);
    let reader = s.add_token(&["--enforcer", "responder", "--role", "reader"]);
    let writer = s.add_token(&["--enforcer", "relay", "--role", "relay"]);
    let answers = look_up(&s, &reader);
    assert!(
        answers.iter().any(|(_, st, _)| *st == 500),
        "no lookup met the damage"
    );
    (data, s, reader, writer, answers)
}

/// Waits until `s` has no indexes marked damaged (rebuilt beside while
/// it runs, or never damaged), and none is being rebuilt.
fn rebuilt(s: &Server) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while s.metric("ledger_indexes_marked_damaged") != 0.0
        || s.metric("ledger_indexes_rebuilding") != 0.0
    {
        assert!(std::time::Instant::now() < deadline, "not rebuilt in time");
        assert_eq!(s.metric("ledger_index_rebuilds_failed_total"), 0.0);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn damaged_indexes_are_named_counted_and_rebuilt_from_the_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let (data, s, reader, writer, answers) = running_on_damage(dir.path());
    let d = data.to_str().unwrap();
    let remedy = "ledgerctl --data <dir> reindex";

    // A lookup that meets a damaged block is a 500 naming the remedy,
    // counted in /metrics; the others are found.
    let damaged: Vec<_> = answers.iter().filter(|(_, st, _)| *st == 500).collect();
    for (i, status, body) in &answers {
        assert!(
            *status == 200 || (*status == 500 && body.contains(remedy)),
            "d-{i}: {status} {body}"
        );
    }
    assert!(s.metric("ledger_storage_damaged_total") >= damaged.len() as f64);
    needs_a_person(&s, "damaged data found in the store");
    // A retry of a decision whose id lies in a damaged block cannot be
    // told from a new one: it fails (or, once ledgerd has rebuilt the
    // indexes beside, is a duplicate), and nothing is appended twice.
    let (i, _, _) = damaged[0];
    let retry = records("d", i + 1)[i].clone();
    let r = s.post(&writer, &retry);
    assert!(
        r.status == 500 || r.text().contains("\"duplicate\":1"),
        "{} {}",
        r.status,
        r.text()
    );
    assert_eq!(s.tree_size(), RECORDS as u64);
    s.stop();
    // On the stopped store (damaged again, whether or not ledgerd had
    // rebuilt them: at other bytes, not to flip the first ones back), the
    // audit reads every block and finds the damage.
    damage(&largest_sst(&data.join("db/index")), 49_999);
    let _ = std::fs::remove_file(data.join("db/index.damaged"));
    refused("ledgerctl", &["--data", d, "audit"], remedy);
    assert!(data.join("db/index.damaged").exists());

    // Rebuilt from the leaves: the audit passes, every decision is found,
    // and the retry is a duplicate.
    let out = ok("ledgerctl", &["--data", d, "reindex"]);
    assert!(
        out.contains(&format!("rebuilt the indexes of leaves 0..{RECORDS}")),
        "{out}"
    );
    let audit = ok("ledgerctl", &["--data", d, "audit"]);
    assert!(
        audit.contains("indexes: ") && audit.contains("checksums match"),
        "{audit}"
    );
    let s = Server::start_in(&data, &[]);
    for (i, status, body) in look_up(&s, &reader) {
        assert_eq!(status, 200, "d-{i}: {body}");
    }
    let r = s.post(&writer, &retry);
    assert!(r.text().contains("\"duplicate\":1"), "{}", r.text());
    assert_eq!(s.metric("ledger_storage_damaged_total"), 0.0);
    assert!(!data.join("db/index.damaged").exists());
}

#[test]
fn indexes_found_damaged_at_runtime_are_rebuilt_while_ledgerd_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The blocks ledgerd reads only now, long after it started.
    let (data, s, reader, writer, answers) = running_on_damage(dir.path());
    let damaged: Vec<_> = answers.iter().filter(|(_, st, _)| *st == 500).collect();
    assert!(
        damaged[0]
            .2
            .contains("a running ledgerd does it beside the ones in use"),
        "{}",
        damaged[0].2
    );
    // Marked (synced) when first met, with what was found.
    let mark = data.join("db/index.damaged");
    let (i, _, _) = damaged[0];
    let retry = records("d", i + 1)[i].clone();

    // Rebuilt from the leaves beside the damaged ones and put in their
    // place, while writes go on: no restart.
    let more = records("n", 2_000);
    for batch in more.as_array().unwrap().chunks(100) {
        let r = s.post(&writer, &serde_json::Value::Array(batch.to_vec()));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    rebuilt(&s);
    assert_eq!(s.metric("ledger_index_rebuilds_total"), 1.0);
    assert!(!mark.exists());
    for (i, status, body) in look_up(&s, &reader) {
        assert_eq!(status, 200, "d-{i}: {body}");
    }
    for i in (0..2_000).step_by(97) {
        let r = s.request(
            "GET",
            &format!("/v1/decisions/n-{i}"),
            &[("Authorization", &format!("Bearer {reader}"))],
            b"",
        );
        assert_eq!(r.status, 200, "n-{i}: {}", r.text());
    }
    let r = s.post(&writer, &retry);
    assert!(r.text().contains("\"duplicate\":1"), "{}", r.text());
    assert_eq!(s.tree_size(), RECORDS as u64 + 2_000);
    assert!(s.metric("ledger_storage_damaged_total") >= 1.0);
    s.stop();
    assert!(!data.join("db/index.rebuilding").exists() && !data.join("db/index.old").exists());
    let audit = ok("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
    assert!(audit.contains("checksums match"), "{audit}");
}

#[test]
fn a_damaged_log_is_named_and_sent_to_its_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    let d = data.to_str().unwrap();
    damage(&largest_sst(&data.join("db")), 50_000);
    let remedy = "restore it from a mirror";
    refused("ledgerctl", &["--data", d, "audit"], remedy);
    // The indexes are made from the leaves: not from damaged ones.
    refused("ledgerctl", &["--data", d, "reindex"], remedy);
}

#[test]
fn indexes_too_damaged_to_open_are_rebuilt_when_ledgerd_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    // Every block of the built span's postings damaged, its mark (which
    // opening the indexes reads) with them: the indexes cannot be opened.
    damage(&smallest_sst(&data.join("db/index")), 512);
    let d = data.to_str().unwrap();
    refused("ledgerctl", &["--data", d, "decision", "d-1"], "reindex");
    // ledgerd answers while it rebuilds them from the leaves: alive,
    // not ready, its progress in /metrics, and a write refused with a
    // reason to retry (nothing appended).
    let starting = Server::spawn_on(&data, "127.0.0.1:0", &[]);
    let writer = ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "token",
            "add",
            "--enforcer",
            "gw",
            "--role",
            "writer",
        ],
    );
    let auth = format!("Bearer {}", writer.trim());
    let retry = records("late", 1)[0].to_string();
    let (mut refused_writes, mut progress, mut status) = (0, Vec::new(), None);
    let url = format!("http://{}", starting.addr);
    loop {
        let health = ledger_tests::http(&starting.addr, "GET", "/healthz", &[], b"");
        assert_eq!(health.status, 200, "{}", health.text());
        if !health.text().starts_with("starting: ") {
            break;
        }
        // Each answer may come from after the store opened.
        let ready = ledger_tests::http(&starting.addr, "GET", "/readyz", &[], b"");
        if ready.status == 200 {
            break;
        }
        assert!(
            ready.text().contains("ledgerd is starting"),
            "{}",
            ready.text()
        );
        let m = ledger_tests::http(&starting.addr, "GET", "/metrics", &[], b"").text();
        if m.lines().any(|l| l == "ledger_starting 1") {
            let at = |name: &str| -> u64 {
                m.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                    .unwrap_or_else(|| panic!("{name} in {m}"))
            };
            progress.push((at("ledger_tree_size"), at("ledger_index_rebuilt_to_leaf")));
            if status.is_none() {
                status = Some(run("ledgerctl", &["--url", &url, "status"]));
            }
        }
        let w = ledger_tests::http(
            &starting.addr,
            "POST",
            "/v1/decisions",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            retry.as_bytes(),
        );
        if w.status == 503 && w.text().contains("ledgerd is starting") {
            assert_eq!(w.header("retry-after"), Some("5"), "{:?}", w.headers);
            refused_writes += 1;
        } else {
            // Opened between the two requests.
            assert_eq!(w.status, 200, "{}", w.text());
        }
    }
    assert!(
        refused_writes > 0,
        "no write was answered while the indexes were rebuilt"
    );
    let read = |&(size, at): &(u64, u64)| size == RECORDS as u64 && at > 0 && at <= size;
    assert!(progress.iter().any(read), "{progress:?}");
    // `ledgerctl status` says so, and that it needs a person (unless the
    // store opened while it asked).
    let status = status.expect("ledgerctl status run while starting");
    if status.stdout.contains("starting: ") {
        assert_ne!(status.code, 0, "{}", status.stdout);
        assert!(
            status.stdout.contains("attention: ledgerd is not ready"),
            "{}",
            status.stdout
        );
    } else {
        assert!(
            status.stdout.contains(" entries"),
            "{}{}",
            status.stdout,
            status.stderr
        );
    }
    // Then it counts the damage (so the alert fires) and answers for
    // every decision; the refused write was not appended, and is when
    // sent again.
    let s = starting.served();
    assert_eq!(s.metric("ledger_starting"), 0.0);
    let r = s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        retry.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.metric("ledger_tree_size"), RECORDS as f64 + 1.0);
    let reader = s.add_token(&["--enforcer", "responder", "--role", "reader"]);
    for (i, status, body) in look_up(&s, &reader) {
        assert_eq!(status, 200, "d-{i}: {body}");
    }
    assert!(s.metric("ledger_storage_damaged_total") >= 1.0);
    s.stop();
    let audit = ok("ledgerctl", &["--data", d, "audit"]);
    assert!(audit.contains("checksums match"), "{audit}");
}

/// Stopped while it builds its indexes from the leaves, ledgerd exits at
/// once (it does not finish the build first); the next start builds them
/// and finds every decision.
#[test]
fn ledgerd_stopped_while_it_opens_its_store_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    std::fs::remove_dir_all(data.join("db/index")).unwrap();
    let starting = Server::spawn_on(&data, "127.0.0.1:0", &[]);
    let health = ledger_tests::http(&starting.addr, "GET", "/healthz", &[], b"");
    assert!(health.text().starts_with("starting: "), "{}", health.text());
    // Nothing printed of a store opened: it stopped before.
    let (code, printed) = starting.stop();
    assert_eq!(code, Some(0), "{printed}");
    assert!(!printed.contains(" entries, listening on"), "{printed}");
    let s = Server::start_in(&data, &[]);
    let reader = s.add_token(&["--enforcer", "responder", "--role", "reader"]);
    for (i, status, body) in look_up(&s, &reader) {
        assert_eq!(status, 200, "d-{i}: {body}");
    }
}

#[test]
fn ledgerd_stopped_while_it_rebuilds_damaged_indexes_ends_the_rebuild_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    let (mark, spare) = (
        data.join("db/index.damaged"),
        data.join("db/index.rebuilding"),
    );
    let metric = |m: &str, name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    // The rebuild of 70,000 leaves takes a fraction of a second: tried
    // again until the stop falls during one.
    for _ in 0..8 {
        std::fs::write(&mark, "marked by the test").unwrap();
        let s = Server::spawn_on(&data, "127.0.0.1:0", &[]);
        let mut during = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let m = ledger_tests::http(&s.addr, "GET", "/metrics", &[], b"").text();
            if metric(&m, "ledger_indexes_rebuilding") == 1.0 && spare.exists() {
                during = true;
                break;
            }
            if metric(&m, "ledger_index_rebuilds_total") >= 1.0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let (code, printed) = s.stop();
        assert_eq!(code, Some(0), "{printed}");
        if !during {
            continue;
        }
        // The rebuild stopped before ledgerd exited: the database it was
        // making is deleted, the mark stays for the next start.
        assert!(!spare.exists());
        assert!(mark.exists());
        let s = Server::start_in(&data, &[]);
        rebuilt(&s);
        let reader = s.add_token(&["--enforcer", "responder", "--role", "reader"]);
        for (i, status, body) in look_up(&s, &reader) {
            assert_eq!(status, 200, "d-{i}: {body}");
        }
        return;
    }
    panic!("no stop fell during a rebuild in 8 tries");
}

#[test]
fn ledgerd_killed_while_it_rebuilds_damaged_indexes_starts_on_whole_ones() {
    let cycles = ledger_tests::env_number("LEDGER_INDEX_REBUILD_CRASH_CYCLES", 4);
    let mut x = ledger_tests::crash_seed("index rebuild");
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    let (mut rebuilding, mut placed, mut served_marked) = (0, 0, 0);
    for cycle in 0..cycles {
        // Damaged at other bytes each time, in whatever files the last
        // rebuild made.
        damage(&largest_sst(&data.join("db/index")), 50_000 - cycle);
        let s = Server::start_in(&data, &[]);
        let reader = s.add_token(&["--enforcer", "responder", "--role", "reader"]);
        assert!(look_up(&s, &reader).iter().any(|(_, st, _)| *st == 500));
        // Killed at a random moment of the rebuild that meeting the
        // damage began (or just after it).
        std::thread::sleep(Duration::from_millis(next_random(&mut x) % 1_500));
        if s.metric("ledger_indexes_rebuilding") == 1.0 {
            rebuilding += 1;
        }
        if s.metric("ledger_index_rebuilds_total") == 1.0 {
            placed += 1;
        }
        s.kill9();
        // Started again on what the kill left, at once: indexes still
        // marked are served while they are rebuilt beside; then every
        // decision is found.
        let s = Server::start_in(&data, &[]);
        if s.metric("ledger_indexes_marked_damaged") == 1.0 {
            served_marked += 1;
        }
        rebuilt(&s);
        for (i, status, body) in look_up(&s, &reader) {
            assert_eq!(status, 200, "cycle {cycle}: d-{i}: {body}");
        }
        s.stop();
        assert!(!data.join("db/index.rebuilding").exists() && !data.join("db/index.old").exists());
        assert!(!data.join("db/index.damaged").exists());
        let audit = ok("ledgerctl", &["--data", data.to_str().unwrap(), "audit"]);
        assert!(audit.contains("checksums match"), "{audit}");
    }
    eprintln!(
        "{cycles} kills: {rebuilding} while rebuilding, {placed} after a rebuild was put in place; \
         {served_marked} restarts served on marked indexes while rebuilding them"
    );
}

#[test]
fn ledgerd_logs_what_the_storage_says_of_damaged_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    std::fs::write(
        data.join("db/index.damaged"),
        "the indexes (db/index) are damaged",
    )
    .unwrap();
    // Its log (stderr), without RUST_LOG: the storage crate's warning is
    // in it, then the rebuild's.
    let mut child = std::process::Command::new(ledger_tests::bin("ledgerd"))
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut said = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !said.contains("put them in place") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => said = said + &line + "\n",
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        said.contains("serving with them while they are rebuilt"),
        "{said}"
    );
    assert!(
        said.contains("rebuilt the indexes of leaves 0..65536"),
        "{said}"
    );
}

#[test]
fn a_scrub_finds_damage_no_request_met_and_the_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = store(dir.path());
    damage(&largest_sst(&data.join("db/index")), 50_000);
    // Nothing is asked: the scrub, every second here, reads every block.
    let s = Server::start_in(&data, &["--scrub-every", "1s"]);
    assert_eq!(s.metric("ledger_scrub_interval_seconds"), 1.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while s.metric("ledger_index_rebuilds_total") < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not found and rebuilt in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.metric("ledger_storage_damaged_total") >= 1.0);
    // The next scrub reads the whole store, every checksum matching.
    while s.metric("ledger_scrub_last_completed_timestamp_seconds") == 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no clean scrub in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let reader = s.add_token(&["--enforcer", "responder", "--role", "reader"]);
    for (i, status, body) in look_up(&s, &reader) {
        assert_eq!(status, 200, "d-{i}: {body}");
    }
    let url = format!("http://{}", s.addr);
    let status = run("ledgerctl", &["--url", &url, "status"]);
    assert!(
        status.stdout.contains("scrub: last read the whole store"),
        "{}",
        status.stdout
    );
    s.stop();
    let kept: u64 = std::fs::read_to_string(data.join("scrubbed"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(kept > 1_700_000_000, "{kept}");
    // Started again, it keeps when the store was last scrubbed; and with
    // `off`, it never scrubs.
    let s = Server::start_in(&data, &["--scrub-every", "off"]);
    assert_eq!(s.metric("ledger_scrub_interval_seconds"), 0.0);
    let url = format!("http://{}", s.addr);
    let status = run("ledgerctl", &["--url", &url, "status"]);
    assert!(status.stdout.contains("scrub: off\n"), "{}", status.stdout);
    s.stop();
    // A period that is none is refused.
    let bad = run(
        "ledgerd",
        &["--data", data.to_str().unwrap(), "--scrub-every", "weekly"],
    );
    assert!(
        bad.code != 0 && bad.stderr.contains("--scrub-every"),
        "{}",
        bad.stderr
    );
}
