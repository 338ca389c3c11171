//! A crash during a prune leaves a store that opens, audits clean and
//! answers only for kept leaves, and the next prune completes it:
//! `ledgerctl prune` is killed with SIGKILL at a random moment, the store
//! checked, the prune run again to its end and the store checked again,
//! for horizons moving forward through the log (the first kept leaf inside
//! a built index span, whose postings are rewritten, and past it). Each
//! first kept leaf gets one retention record, however often its prune was
//! cut short.
//!
//! `LEDGER_CRASH_SEED` repeats a run's kill moments.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_tests::{bin, now, ok, records, refused, run};
use serde_json::Value;

/// Decisions a batch; leaf `b * BATCH + i` holds `b<b>-<i>`.
const BATCH: u64 = 10_000;
/// Batches: 70,000 leaves, so the first index span (65,536) is built.
const BATCHES: u64 = 7;

fn id_of(leaf: u64) -> String {
    format!("b{}-{}", leaf / BATCH, leaf % BATCH)
}

/// The leaves `search --subject u0` must return once the entries below
/// `kept` are gone (`records` gives subject `u{i % 9}`).
fn subject_u0(kept: u64) -> Vec<u64> {
    (kept..BATCH * BATCHES)
        .filter(|l| (l % BATCH).is_multiple_of(9))
        .collect()
}

fn search_u0(d: &str) -> Vec<u64> {
    let out = ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "search",
            "--subject",
            "u0",
            "--json",
            "--limit",
            "100000",
        ],
    );
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["index"].as_u64().unwrap()
        })
        .collect()
}

/// Where `ledgerctl decision` finds `id`: `None` if it is not found.
fn found_at(d: &str, id: &str) -> Option<u64> {
    let r = run("ledgerctl", &["--data", d, "decision", id]);
    if r.code != 0 {
        return None;
    }
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["index"].as_u64()
}

/// What holds at any moment: the store opens and audits clean (every
/// leaf, kept or pruned, against every stored hash and checkpoint); search
/// returns exactly the kept leaves of a first kept leaf `k`, a whole
/// bundle at most `at_most`; the first kept decision, if found, is at its
/// leaf (a prune deletes a step's ids before its entries, so a crash in
/// between leaves them unfound until the next prune). Returns `k`.
fn consistent(d: &str, at_most: u64, what: &str) -> u64 {
    let audit = run("ledgerctl", &["--data", d, "audit"]);
    assert!(
        audit.code == 0 && audit.stdout.starts_with("audit OK"),
        "{what}: {}{}",
        audit.stdout,
        audit.stderr
    );
    let found = search_u0(d);
    let k = found.first().map_or(0, |&f| f - f % 256);
    assert!(
        k <= at_most && k.is_multiple_of(256),
        "{what}: first kept {k}"
    );
    assert_eq!(found, subject_u0(k), "{what}: search");
    let at = found_at(d, &id_of(k));
    assert!(at.is_none() || at == Some(k), "{what}: {at:?}");
    k
}

/// After a completed prune to `k`: the id of the leaf before it is gone
/// from the idempotency index, and the reason names `k`.
fn pruned_to(d: &str, k: u64, what: &str) {
    assert_eq!(consistent(d, k, what), k, "{what}");
    assert_eq!(found_at(d, &id_of(k)), Some(k), "{what}");
    let r = run("ledgerctl", &["--data", d, "decision", &id_of(k - 1)]);
    assert!(
        r.code != 0 && r.stderr.contains(&format!("leaves below {k} were removed")),
        "{what}: {}{}",
        r.stdout,
        r.stderr
    );
}

fn fill(dir: &Path, d: &str) -> Vec<String> {
    ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "keygen",
            "--origin",
            "prune-crash.example/log",
            "--out",
            d,
        ],
    );
    let mut starts = Vec::new();
    for b in 0..BATCHES {
        let file = dir.join(format!("b{b}.json"));
        std::fs::write(&file, records(&format!("b{b}"), BATCH as usize).to_string()).unwrap();
        // Before every leaf of batch b, after every leaf of the ones before.
        starts.push(now());
        ok(
            "ledgerctl",
            &["--data", d, "append", file.to_str().unwrap()],
        );
    }
    starts
}

#[test]
fn sigkill_during_a_prune_leaves_a_consistent_store_and_the_next_prune_completes_it() {
    let mut x = ledger_tests::crash_seed("prune crash");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let starts = fill(dir.path(), d);
    assert_eq!(consistent(d, 0, "filled"), 0);

    // How long a whole prune takes here, to kill within it.
    let mut took = Duration::from_millis(300);
    let mut killed_running = 0;
    for b in 1..BATCHES {
        let want = b * BATCH / 256 * 256;
        let kill_after = took.mul_f64((ledger_tests::next_random(&mut x) % 1000) as f64 / 1000.0);
        let mut child = Command::new(bin("ledgerctl"))
            .args(["--data", d, "prune", "--before", &starts[b as usize]])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(kill_after);
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let what = format!("killed {kill_after:?} into the prune to {want}");
        consistent(d, want, &what);

        let started = Instant::now();
        let out = ok(
            "ledgerctl",
            &["--data", d, "prune", "--before", &starts[b as usize]],
        );
        took = started.elapsed();
        assert!(
            out.contains(&format!("the first kept leaf is {want}")),
            "{what}: {out}"
        );
        pruned_to(d, want, &format!("{what}, then completed"));
        // Its retention record, logged once however often it was asked.
        assert!(
            found_at(d, &format!("ledger-retention-{want}"))
                .is_some_and(|at| at >= BATCH * BATCHES),
            "{what}: no retention record of {want}"
        );
    }
    eprintln!(
        "prune crash: {} prunes, {killed_running} killed while running",
        BATCHES - 1
    );
    // A retry of a removed decision is refused, not appended again: it
    // was decided before the first kept decision was received.
    let file = dir.path().join("again.json");
    let again: Value = records("b0", 1);
    std::fs::write(&file, again.to_string()).unwrap();
    refused(
        "ledgerctl",
        &["--data", d, "append", file.to_str().unwrap()],
        "when the first decision this ledger keeps was received",
    );
    assert_eq!(found_at(d, "b0-0"), None);
}
