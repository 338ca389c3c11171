//! ledgerd starting and stopping, end to end: bad settings, a store that
//! another process holds or that is of another log, the commands it
//! prints for a new user, and a store made under a key that was there
//! before it.

use ledger_tests::Server;

#[test]
fn bad_settings_stop_ledgerd_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledgerd.toml");
    let data = dir.path().join("data");
    for (text, named) in [
        (
            "blocking_threads = 0\n",
            "blocking_threads must be at least 1",
        ),
        (
            "checkpoint_interval_ms = 0\n",
            "checkpoint_interval_ms must be",
        ),
        ("no_such_key = 1\n", "unknown field `no_such_key`"),
    ] {
        std::fs::write(&config, text).unwrap();
        let args = [
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ];
        ledger_tests::refused("ledgerd", &args, named);
        let r = ledger_tests::run("ledgerd", &args);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn a_store_in_use_or_of_another_log_is_refused_in_one_line() {
    let s = Server::start(&[]);
    let data = s.data.to_str().unwrap();
    let one_line = |name: &str, args: &[&str], needle: &str| {
        let r = ledger_tests::run(name, args);
        assert!(r.code != 0, "{name} {args:?} should fail");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line, not\n{}", r.stderr);
        assert!(lines[0].starts_with(&format!("{name}: ")), "{}", lines[0]);
        assert!(lines[0].contains(needle), "{}", lines[0]);
        // Each cause once, not repeated by the errors that quote it.
        assert_eq!(lines[0].matches(needle).count(), 1, "{}", lines[0]);
    };
    let second = ["--data", data, "--listen", "127.0.0.1:0"];
    one_line("ledgerd", &second, "the store is open in another process");
    one_line(
        "ledgerctl",
        &["--data", data, "checkpoint"],
        "the store is open in another process",
    );
    let other = [
        "--data",
        data,
        "--listen",
        "127.0.0.1:0",
        "--origin",
        "other.example/log",
    ];
    one_line("ledgerd", &other, "not \"other.example/log\"");
    // The server holding the store is unharmed.
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
}

/// Starts ledgerd on `data` (without a PATH), reads what it prints up to
/// its last start-up line, stops it with SIGTERM; returns its stdout lines
/// and its whole log (stderr).
fn start_and_stop(data: &std::path::Path) -> (Vec<String>, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(ledger_tests::bin("ledgerd"))
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env_remove("PATH")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let last = line.trim_start().contains("ledger-verify evidence");
        lines.push(line);
        if last {
            break;
        }
    }
    // SIGTERM: a clean stop, whose log ends the stderr stream.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    child.wait().unwrap();
    (lines, log)
}

/// The commands ledgerd prints at start run as printed: the tools built
/// beside it are named by a path that exists (or by their name when the
/// PATH finds them), and its log on a pipe carries no colour codes. A
/// store made under a key it made itself is no cause for a warning.
#[test]
fn the_commands_printed_at_start_name_tools_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, log) = start_and_stop(&dir.path().join("data"));
    let tools: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|first| first.ends_with("ledgerctl") || first.ends_with("ledger-verify"))
        .collect();
    assert_eq!(tools.len(), 2, "{lines:?}");
    for t in &tools {
        assert!(
            std::path::Path::new(t).is_file(),
            "{t}: printed, but not there (run from {:?})",
            std::env::current_dir().unwrap()
        );
    }
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log:\n{log}"
    );
    assert!(!log.contains("no store"), "{log}");
}

/// A key that was there before the store (after `ledgerctl keygen`, or a
/// log whose store is gone): ledgerd warns that it begins the log at size
/// 0, and points to restoring it.
#[test]
fn a_store_made_under_an_existing_key_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ledger_tests::ok(
        "ledgerctl",
        &[
            "keygen",
            "--origin",
            "kept.example/log",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    let (_, log) = start_and_stop(&data);
    assert!(
        log.contains("holds the key of log kept.example/log but no store")
            && log.contains("ledgerctl restore"),
        "{log}"
    );
    // Once the store is there, no warning.
    let (_, log) = start_and_stop(&data);
    assert!(!log.contains("no store"), "{log}");
}

/// The sample settings file in examples/ is one ledgerd takes.
#[test]
fn the_example_settings_file_starts_ledgerd() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ledgerd.toml");
    let s = Server::start(&["--config", example.to_str().unwrap()]);
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
}

/// The sample systemd unit is one systemd accepts (checked with
/// `systemd-analyze verify` where the machine has it), run on this build.
#[test]
fn the_example_systemd_unit_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("examples/ledgerd.service")).unwrap();
    let ledgerd = ledger_tests::bin("ledgerd");
    let unit = unit.replace("/usr/local/bin/ledgerd", ledgerd.to_str().unwrap());
    assert!(
        unit.contains(ledgerd.to_str().unwrap()),
        "ExecStart names ledgerd"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledgerd.service");
    std::fs::write(&path, unit).unwrap();
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
    else {
        eprintln!("systemd-analyze is not on this machine: the unit is not checked");
        return;
    };
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
