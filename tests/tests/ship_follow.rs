//! `ledgerctl ship --follow` on the real ledgerd: a file of JSON lines an
//! enforcer keeps appending to is shipped as it grows, while ledgerd is
//! stopped and started again, while the shipper is killed and started
//! again, through a rotation while it runs and one while it is stopped,
//! through a file cut and written again in place (`copytruncate`), past
//! lines that are no records, and killed at random moments while
//! the enforcer writes; every decision is logged exactly once.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use ledger_tests::{bin, wait_until, Server};

/// Appends decisions `<from>..<to>` as JSON lines to `path`.
fn write_lines(path: &Path, from: usize, to: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let records = ledger_tests::records("f", to);
    for r in &records.as_array().unwrap()[from..to] {
        writeln!(f, "{r}").unwrap();
    }
    f.sync_all().unwrap();
}

/// `ledgerctl ship --follow` of `file` to `addr`, its stderr in `log`.
fn follow(addr: &str, token: &str, file: &Path, log: &Path) -> Child {
    let url = format!("http://{addr}");
    Command::new(bin("ledgerctl"))
        .args(["--url", &url, "--token", token, "ship", "--follow"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn ledgerctl ship --follow")
}

/// Waits until `s` holds `n` decisions; the shipper's `log` if not.
fn logged(s: &Server, n: u64, what: &str, log: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.tree_size() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} decisions logged ({what}); the shipper said:\n{}",
            s.tree_size(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(s.tree_size(), n, "{what}: a decision logged twice");
}

/// Waits until the state file beside `file` says it was shipped to its
/// end: the shipper keeps the offset once ledgerd answered, a moment after
/// the decisions are in the log, and a kill before that would only make it
/// send the last batch again (answered as duplicates), from a file that
/// may be rotated meanwhile.
fn kept_to_end(file: &Path) {
    let meta = std::fs::metadata(file).unwrap();
    let (len, inode) = (meta.len(), std::os::unix::fs::MetadataExt::ino(&meta));
    let mut state = file.as_os_str().to_owned();
    state.push(".shipped");
    wait_until("the state at the file's end", || {
        let Ok(text) = std::fs::read_to_string(&state) else {
            return false;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["offset"].as_u64() == Some(len) && v["inode"].as_u64() == Some(inode)
    });
}

#[test]
fn a_followed_file_is_shipped_once_through_restarts_and_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    let (addr, writer) = (s.addr.clone(), s.writer.clone());
    let file = dir.path().join("decisions.jsonl");
    let log = dir.path().join("ship.log");
    write_lines(&file, 0, 300);
    let mut shipper = follow(&addr, &writer, &file, &log);
    logged(&s, 300, "what the file held", &log);
    write_lines(&file, 300, 500);
    logged(&s, 500, "appended while followed", &log);

    // ledgerd stopped: lines written meanwhile are shipped once it is back.
    s.stop();
    write_lines(&file, 500, 700);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let s = Server::start_on(&data, &addr, &[]);
    logged(&s, 700, "written while ledgerd was down", &log);

    // The shipper killed: started again, it resumes where it was.
    kept_to_end(&file);
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    write_lines(&file, 700, 800);
    let mut shipper = follow(&addr, &writer, &file, &log);
    logged(&s, 800, "written while the shipper was down", &log);

    // Rotated while followed: the old file's last lines, then the new file.
    let old = dir.path().join("decisions.jsonl.1");
    std::fs::rename(&file, &old).unwrap();
    write_lines(&old, 800, 850);
    write_lines(&file, 850, 900);
    logged(&s, 900, "a rotation while followed", &log);

    // Rotated while the shipper was stopped: the renamed file is finished
    // from where shipping stopped, then the new one read.
    kept_to_end(&file);
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    write_lines(&file, 900, 930);
    std::fs::rename(&file, dir.path().join("decisions.jsonl.2")).unwrap();
    write_lines(&file, 930, 950);
    let mut shipper = follow(&addr, &writer, &file, &log);
    logged(&s, 950, "a rotation while the shipper was stopped", &log);

    // Lines that are no records are passed over, and the rest go on.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        writeln!(f, "not json at all").unwrap();
        writeln!(f, "{{\"decision_id\": \"incomplete\"}}").unwrap();
    }
    write_lines(&file, 950, 1000);
    logged(&s, 1000, "lines after ones that are no records", &log);
    // The lines that are no records count in the offset kept.
    kept_to_end(&file);
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("is not a JSON record; passed over"), "{said}");
    assert!(said.contains("rejected: \"incomplete\""), "{said}");

    // One shipper a state file; stdin cannot be followed.
    let mut shipper = follow(&addr, &writer, &file, &log);
    wait_until("the shipper following", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("ship: following"))
    });
    let second = dir.path().join("second.log");
    let r = follow(&addr, &writer, &file, &second).wait().unwrap();
    let said = std::fs::read_to_string(&second).unwrap();
    assert!(
        !r.success() && said.contains("another ledgerctl ship --follow is shipping"),
        "{said}"
    );
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    let url = format!("http://{addr}");
    let r = ledger_tests::run(
        "ledgerctl",
        &["--url", &url, "--token", &writer, "ship", "--follow", "-"],
    );
    assert!(
        r.code != 0 && r.stderr.contains("--follow follows one file"),
        "{}",
        r.stderr
    );
}

/// Writes decisions `<from>..<to>` as JSON lines to `path` in place of
/// what it held, in one write: cut to zero and written again at the same
/// inode (logrotate's `copytruncate`, with an enforcer that goes on
/// writing at once), so the file never looks shorter than it was.
fn write_again(path: &Path, from: usize, to: usize) {
    let records = ledger_tests::records("f", to);
    let text: String = records.as_array().unwrap()[from..to]
        .iter()
        .map(|r| format!("{r}\n"))
        .collect();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
    std::fs::write(path, text).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap()),
        inode
    );
}

#[test]
fn a_file_cut_and_written_past_where_it_was_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    let file = dir.path().join("decisions.jsonl");
    let log = dir.path().join("ship.log");
    write_lines(&file, 0, 100);
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(&s, 100, "what the file held", &log);
    // Twice as many lines in its place while it is followed.
    write_again(&file, 100, 300);
    logged(&s, 300, "written again in place while followed", &log);
    // And while the shipper is stopped.
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    write_again(&file, 300, 700);
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(
        &s,
        700,
        "written again in place while the shipper was stopped",
        &log,
    );
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("was cut and written again while stopped: reading it from its start"),
        "{said}"
    );
}

/// The shipper killed at random moments while an enforcer keeps writing,
/// and started again each time: every line is logged exactly once.
#[test]
fn a_shipper_killed_at_any_moment_loses_and_repeats_nothing() {
    killed_at_random_moments("ship --follow crash", false);
}

/// The shipper killed at random moments, and now and then left stopped a
/// while, as an enforcer writes and rotates its file every 150 lines to a
/// dated name (logrotate's `dateext`), so that rotations land while it
/// runs, while it is stopped, two or more while it is stopped, and kills
/// land while it ships what rotations left: every line logged exactly once.
#[test]
fn a_shipper_killed_at_any_moment_through_rotations_loses_nothing() {
    killed_at_random_moments("ship --follow rotations crash", true);
}

/// `LEDGER_SHIP_CRASH_CYCLES` (12) kills of the shipper at random moments
/// while an enforcer writes 50 lines every 10 ms (400 a kill), its file
/// rotated every 150 lines if `rotating`; then every line must be logged,
/// once.
fn killed_at_random_moments(seed: &str, rotating: bool) {
    let kills = ledger_tests::env_number("LEDGER_SHIP_CRASH_CYCLES", 12);
    let mut x = ledger_tests::crash_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    let file = dir.path().join("decisions.jsonl");
    let log = dir.path().join("ship.log");
    std::fs::write(&file, b"").unwrap();
    let total = kills * 400;
    let writer = {
        let (file, dir) = (file.clone(), dir.path().to_path_buf());
        std::thread::spawn(move || {
            for from in (0..total).step_by(50) {
                write_lines(&file, from, from + 50);
                if rotating && (from / 50) % 3 == 2 {
                    let rotated = dir.join(format!("decisions.jsonl-{:04}", from / 150));
                    std::fs::rename(&file, rotated).unwrap();
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    for _ in 0..kills {
        let mut shipper = follow(&s.addr, &s.writer, &file, &log);
        let wait = 20 + ledger_tests::next_random(&mut x) % 150;
        std::thread::sleep(std::time::Duration::from_millis(wait));
        shipper.kill().unwrap();
        shipper.wait().unwrap();
        if rotating {
            // Stopped a while now and then: several rotations meanwhile.
            let stopped = ledger_tests::next_random(&mut x) % 3 * 40;
            std::thread::sleep(std::time::Duration::from_millis(stopped));
        }
    }
    writer.join().unwrap();
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(&s, total as u64, "after the kills", &log);
    shipper.kill().unwrap();
    shipper.wait().unwrap();
}

/// Rotations while the shipper was stopped beyond the first: logrotate's
/// numbered files shifted twice, a `copytruncate` copy, and the file
/// shipped last compressed away. What is still there as lines is shipped
/// once, and what is not is said.
#[test]
fn files_several_rotations_left_while_stopped_are_shipped_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    let file = dir.path().join("decisions.jsonl");
    let log = dir.path().join("ship.log");
    let at = |name: &str| dir.path().join(name);
    let stop = |shipper: &mut Child| {
        kept_to_end(&file);
        shipper.kill().unwrap();
        shipper.wait().unwrap();
    };
    write_lines(&file, 0, 100);
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(&s, 100, "what the file held", &log);

    // Rotated twice: the file is `.2` now, with lines after the offset;
    // `.1` and the new file were never seen.
    stop(&mut shipper);
    write_lines(&file, 100, 120);
    std::fs::rename(&file, at("decisions.jsonl.1")).unwrap();
    write_lines(&file, 120, 150);
    std::fs::rename(at("decisions.jsonl.1"), at("decisions.jsonl.2")).unwrap();
    std::fs::rename(&file, at("decisions.jsonl.1")).unwrap();
    write_lines(&file, 150, 170);
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(&s, 170, "two rotations while the shipper was stopped", &log);
    said(&log, "decisions.jsonl.1 was rotated from");

    // copytruncate: the lines since the offset are in the copy.
    stop(&mut shipper);
    write_lines(&file, 170, 190);
    std::fs::copy(&file, at("decisions.jsonl-copied")).unwrap();
    std::fs::write(&file, b"").unwrap();
    write_lines(&file, 190, 200);
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(
        &s,
        200,
        "a copytruncate while the shipper was stopped",
        &log,
    );
    said(&log, "decisions.jsonl-copied was rotated from");

    // The file shipped last compressed (gone as lines): its last lines are
    // lost, and said to be; the new file is shipped.
    stop(&mut shipper);
    write_lines(&file, 200, 210);
    std::fs::rename(&file, at("decisions.jsonl.3")).unwrap();
    std::fs::write(at("decisions.jsonl.3.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
    // (The new file made first: it does not take the old one's inode.)
    let rest = ledger_tests::records("f", 220);
    let mut f = std::fs::File::create(&file).unwrap();
    for r in &rest.as_array().unwrap()[210..220] {
        writeln!(f, "{r}").unwrap();
    }
    drop(f);
    std::fs::remove_file(at("decisions.jsonl.3")).unwrap();
    let mut shipper = follow(&s.addr, &s.writer, &file, &log);
    logged(
        &s,
        210,
        "the new file after the shipped one was compressed",
        &log,
    );
    said(&log, "lines written to it after byte");
    said(&log, "decisions.jsonl.3.gz was rotated from");
    shipper.kill().unwrap();
    shipper.wait().unwrap();
}

/// Asserts that the shipper's stderr in `log` holds `line`.
fn said(log: &Path, line: &str) {
    let said = std::fs::read_to_string(log).unwrap();
    assert!(said.contains(line), "{line}:\n{said}");
}
