//! The soak's short form on the real ledgerd: a fixed rate for a few
//! seconds, nothing refused, every acknowledged record in the tree, the
//! queue bounded. The long form (minutes, with RSS flatness judged) is
//! `ledgerctl soak` with its defaults (docs/reliability.md).

use ledger_tests::{run, Server};

#[test]
fn a_short_soak_at_a_fixed_rate_passes() {
    let s = Server::start(&[]);
    let url = format!("http://{}", s.addr);
    let r = run(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.writer,
            "soak",
            "--rate",
            "4000",
            "--duration",
            "6s",
            "--batch",
            "50",
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("soak: 24000 records acknowledged"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("requests refused 0"), "{}", r.stdout);
    assert!(r.stdout.contains("soak: passed"), "{}", r.stdout);
    // Bad options are refused with a reason.
    let r = run(
        "ledgerctl",
        &[
            "--url",
            &url,
            "--token",
            &s.writer,
            "soak",
            "--duration",
            "0s",
        ],
    );
    assert!(
        r.code != 0 && r.stderr.contains("at least 1s"),
        "{}",
        r.stderr
    );
    let r = run(
        "ledgerctl",
        &["--url", &url, "--token", &s.writer, "soak", "--rate", "0"],
    );
    assert!(
        r.code != 0 && r.stderr.contains("at least 1"),
        "{}",
        r.stderr
    );
}
