//! `ledgerctl mirror` killed (SIGKILL) at random moments of its syncs:
//! after every kill the mirror verifies offline as it stands (a copy of
//! the log at some signed checkpoint, never a half-written one), the next
//! sync completes it, every decision was printed (`--print`) at least
//! once across the kills, and a store restored from it audits clean and
//! holds every decision.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger_tests::{bin, crash_seed, next_random, ok, records, Server};

#[test]
fn a_mirror_killed_at_any_moment_holds_a_verified_copy_and_completes() {
    let cycles = ledger_tests::env_number("LEDGER_MIRROR_CRASH_CYCLES", 24);
    let mut x = crash_seed("mirror crash");
    let s = Server::with_config("checkpoint_interval_ms = 20\n", &[]);
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let key_file = s.data.join("log.pub");
    let key = key_file.to_str().unwrap();
    let url = format!("http://{}", s.addr);
    let mut size = 0u64;
    // Kills that left the mirror behind the log, and those of them that
    // left fetched files staged (killed inside a sync).
    let (mut killed, mut behind, mut staged) = (0, 0, 0);
    let mut took = Duration::from_millis(10);
    let printed = dir.path().join("printed.jsonl");
    for cycle in 0..cycles {
        // New leaves for this sync to fetch, some crossing a bundle.
        for part in 0..3 {
            s.append(&records(&format!("c{cycle}-{part}"), 700));
            size += 700;
        }
        s.covered(size);
        // Every other sync runs whole, so the mirror moves on and the
        // time a sync takes is known; the others are killed within it.
        // Each sync prints the decisions it proves (`--print jsonl`), all
        // into one file: across the kills, each at least once.
        let started = Instant::now();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&printed)
            .unwrap();
        let mut child = Command::new(bin("ledgerctl"))
            .args(ledger_tests::mirror_once_args(&url, key, &mirror))
            .args(["--print", "jsonl"])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if cycle % 2 == 0 {
            assert!(
                child.wait().unwrap().success(),
                "cycle {cycle}: the sync failed"
            );
            took = started.elapsed();
            continue;
        }
        let within = took.as_micros() as u64 * 5 / 4 + 1;
        std::thread::sleep(Duration::from_micros(next_random(&mut x) % within));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
        let held = std::fs::read_to_string(mirror.join("frontier")).ok();
        let held: u64 = held
            .and_then(|t| t.lines().next()?.parse().ok())
            .unwrap_or(0);
        if held < size {
            behind += 1;
            let staging = std::fs::read_dir(mirror.join("staging"));
            if staging.is_ok_and(|mut d| d.next().is_some()) {
                staged += 1;
            }
        }
        // As it stands: a copy of the log at some signed checkpoint.
        {
            let verdict = ok(
                "ledger-verify",
                &["mirror", mirror.to_str().unwrap(), "--key", key],
            );
            assert!(verdict.starts_with("OK"), "cycle {cycle}: {verdict}");
        }
    }
    assert!(
        killed > 0,
        "every sync ended before its kill: no kill tested"
    );
    // The next sync completes it, and every decision has been printed.
    let mut args = ledger_tests::mirror_once_args(&url, key, &mirror);
    args.extend(["--print", "jsonl"]);
    let last = ok("ledgerctl", &args);
    let mut seen = vec![false; size as usize];
    let all = std::fs::read_to_string(&printed).unwrap() + &last;
    for line in all.lines() {
        // A kill may cut the last line of a sync short.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        seen[v["index"].as_u64().unwrap() as usize] = true;
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} decisions never printed");
    let verdict = ok(
        "ledger-verify",
        &["mirror", mirror.to_str().unwrap(), "--key", key],
    );
    assert!(
        verdict.contains(&format!("signed at size {size} ")),
        "{verdict}"
    );
    // A store restored from it holds every decision.
    let restored = dir.path().join("restored");
    let audit = ledger_tests::restore_and_audit(&mirror, &restored);
    assert!(
        audit.contains(&format!("audit OK: {size} entries rehashed")),
        "{audit}"
    );
    let found = ok(
        "ledgerctl",
        &[
            "--data",
            restored.to_str().unwrap(),
            "decision",
            &format!("c{}-2-699", cycles - 1),
        ],
    );
    assert!(
        found.contains(&format!("index {}", size - 1)) || found.contains(&(size - 1).to_string()),
        "{found}"
    );
    eprintln!(
        "mirror crash: {cycles} cycles, {killed} syncs killed, {behind} left it behind the log, \
         {staged} of them with fetched files staged"
    );
}
