//! A crash during erasures leaves a store that audits clean, and asking
//! again finishes them: ledgerd erases decision after decision (an
//! eraser's requests, one decision at a time, or three in one `POST
//! /v1/erasures` in the second round) and is killed with SIGKILL at a
//! random moment; the store must audit clean (an erasure whose record was
//! logged but not carried out is listed as pending, never a missing entry
//! without its record), and every erasure asked for again is done once.
//!
//! `LEDGER_CRASH_SEED` repeats a run's kill moments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledger_tests::{ok, records, try_http, Server};

/// Decisions logged; every seventh is erased.
const DECISIONS: usize = 350;

fn erase(addr: &str, token: &str, id: &str) -> Option<u16> {
    let auth = format!("Bearer {token}");
    try_http(
        addr,
        "POST",
        &format!("/v1/decisions/{id}/erasure"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"reason": "crash test"}"#,
    )
    .map(|r| r.status)
}

/// Erases `ids` in one `POST /v1/erasures`: how many were erased, if the
/// server answered 200.
fn erase_many(addr: &str, token: &str, ids: &[String]) -> Option<usize> {
    let auth = format!("Bearer {token}");
    let body = serde_json::json!({"decision_ids": ids, "reason": "crash test"}).to_string();
    let r = try_http(
        addr,
        "POST",
        "/v1/erasures",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )?;
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&r.text()).ok()?;
    let results = v["results"].as_array()?;
    Some(results.iter().filter(|a| a["index"].is_u64()).count())
}

/// The audit of the stopped store, and how many entries it says were erased.
fn audit(data: &str, what: &str) -> u64 {
    let out = ok("ledgerctl", &["--data", data, "audit"]);
    assert!(out.starts_with("audit OK"), "{what}: {out}");
    // "1 leaf's entry was erased, …", "2 leaves' entries were erased, …"
    out.lines()
        .find(|l| l.contains(" was erased,") || l.contains(" were erased,"))
        .map_or(0, |l| l.split(' ').next().unwrap().parse().unwrap())
}

#[test]
fn sigkill_during_erasures_leaves_a_store_that_audits_clean_and_asking_again_finishes_them() {
    let mut x = ledger_tests::crash_seed("erasure crash");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap().to_string();
    let config = dir.path().join("ledgerd.toml");
    std::fs::write(&config, "checkpoint_interval_ms = 50\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let s = Server::start_in(&data, &["--config", &config]);
    s.append(&records("a", DECISIONS));
    let eraser = s.add_token(&["--enforcer", "dpo@example.com", "--role", "eraser"]);
    let ids: Vec<String> = (0..DECISIONS)
        .step_by(7)
        .map(|i| format!("a-{i}"))
        .collect();
    let _ = s.stop();

    let mut asked = 0;
    for round in 0..3 {
        let s = Server::start_in(&data, &["--config", &config]);
        let stop = Arc::new(AtomicBool::new(false));
        let eraser_thread = {
            let (addr, token, ids, stop) =
                (s.addr.clone(), eraser.clone(), ids.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut done = 0;
                let at_once = if round == 1 { 3 } else { 1 };
                for batch in ids[asked..].chunks(at_once) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let erased = match at_once {
                        1 => (erase(&addr, &token, &batch[0]) == Some(200)).then_some(1),
                        _ => erase_many(&addr, &token, batch),
                    };
                    match erased {
                        Some(n) => {
                            done += n;
                            if n < batch.len() {
                                break;
                            }
                        }
                        None => break,
                    }
                }
                done
            })
        };
        let kill_after = Duration::from_millis(100 + ledger_tests::next_random(&mut x) % 900);
        std::thread::sleep(kill_after);
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        let done = eraser_thread.join().unwrap();
        let what = format!("round {round}, killed {kill_after:?} in, after {done} erasures");
        // Every erasure answered was carried out; one cut short is at most
        // pending.
        let erased = audit(&d, &what);
        assert!(erased as usize >= asked + done, "{what}: {erased} erased");
        eprintln!("erasure crash: {what}: {erased} erased");
        asked += done;
    }

    // Asked again: every erasure done, once.
    let s = Server::start_in(&data, &["--config", &config]);
    let size = s.tree_size();
    for id in &ids {
        assert_eq!(erase(&s.addr, &eraser, id), Some(200), "{id}");
    }
    let logged = s.tree_size() - size;
    let _ = s.stop();
    assert_eq!(audit(&d, "all asked again"), ids.len() as u64);
    // One record per erasure, whatever the crashes did.
    assert_eq!(
        size + logged,
        (DECISIONS + ids.len()) as u64,
        "records logged: {} before the last round, {logged} in it",
        size
    );
}
