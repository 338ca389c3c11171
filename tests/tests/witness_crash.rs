//! A witness (`ledgerctl witness serve`) killed (SIGKILL) at random
//! moments while a ledgerd under load asks it to cosign a checkpoint every
//! 20 ms, and started again on its address: each time, it takes up from
//! the state it kept and cosigns the log's newest checkpoint again (never
//! refusing it, as it would a fork), and what it cosigned verifies.

use std::time::Duration;

use ledger_tests::{cosigned, crash_seed, next_random, ok, records, Server, Witness};

#[test]
fn a_witness_killed_at_any_moment_goes_on_cosigning_the_same_log() {
    let cycles = ledger_tests::env_number("LEDGER_WITNESS_CRASH_CYCLES", 10);
    let mut x = crash_seed("witness crash");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "keygen", "--origin", "witnessed.test/log"],
    );
    let log_key = data.join("log.pub");
    let log_key = log_key.to_str().unwrap();
    let wdir = dir.path().join("w");
    let w_key = ledger_tests::witness_keygen("witness.test/w", &wdir);
    let w_key = w_key.as_str();
    let mut witness = Witness::start(&wdir, log_key, &[]);
    let url = witness.url.clone();
    let listen = url.strip_prefix("http://").unwrap().to_string();
    let config = dir.path().join("ledgerd.toml");
    std::fs::write(&config, "checkpoint_interval_ms = 20\n").unwrap();
    let s = Server::start_in(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--witness",
            &url,
            w_key,
        ],
    );
    let mut size = 0;
    for cycle in 0..cycles {
        // Appends while the checkpoints it is asked to cosign go by.
        for part in 0..4 {
            s.append(&records(&format!("c{cycle}-{part}"), 100));
            size += 100;
            std::thread::sleep(Duration::from_micros(next_random(&mut x) % 30_000));
        }
        witness.kill9();
        witness = Witness::start_on(&wdir, log_key, &listen, &[]);
        cosigned(&s, "witness.test/w", size);
    }
    // What it cosigned verifies with its key.
    let evidence = dir.path().join("last.evidence");
    s.ctl(
        log_key,
        &[
            "evidence",
            &format!("c{}-3-99", cycles - 1),
            "--out",
            evidence.to_str().unwrap(),
        ],
    );
    let key_file = wdir.join("witness.pub");
    let verdict = ok(
        "ledger-verify",
        &[
            "evidence",
            evidence.to_str().unwrap(),
            "--key",
            log_key,
            "--witness",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(verdict.contains("witness.test/w"), "{verdict}");
    drop(witness);
}
