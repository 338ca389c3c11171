//! The soak's short form on the real ledgerd: a fixed rate for a few
//! seconds, nothing refused, every acknowledged record in the tree, the
//! queue bounded. The long form (minutes, with RSS flatness judged) is
//! `ledgerctl soak` with its defaults (docs/reliability.md).

use ledger_tests::{ok, refused, Server};

/// `ledgerctl --url … --token … soak args…`.
fn soak<'a>(s: &'a Server, url: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--url", url, "--token", &s.writer, "soak"];
    v.extend_from_slice(args);
    v
}

#[test]
fn a_short_soak_at_a_fixed_rate_passes() {
    let s = Server::start(&[]);
    let url = format!("http://{}", s.addr);
    let run = [
        "--rate",
        "4000",
        "--duration",
        "6s",
        "--batch",
        "50",
        "--concurrency",
        "2",
    ];
    let out = ok("ledgerctl", &soak(&s, &url, &run));
    assert!(out.contains("soak: 24000 records acknowledged"), "{out}");
    assert!(out.contains("requests refused 0"), "{out}");
    assert!(out.contains("soak: passed"), "{out}");
    // Bad options are refused with a reason.
    refused(
        "ledgerctl",
        &soak(&s, &url, &["--duration", "0s"]),
        "at least 1s",
    );
    refused("ledgerctl", &soak(&s, &url, &["--rate", "0"]), "at least 1");
}
