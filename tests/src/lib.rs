//! Helpers for the end-to-end tests: locate and run the workspace binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a workspace binary (`ledgerctl`, `ledgerd`, `ledger-verify`) in the
/// same target directory as the running test. `cargo test --workspace` builds
/// them before running tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace` (or `make test`)",
        path.display()
    );
    path
}

/// The result of running a binary.
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `name args…` and collects its output.
pub fn run(name: &str, args: &[&str]) -> Run {
    Command::new(bin(name))
        .args(args)
        .output()
        .expect("spawn")
        .into()
}

/// Runs `name args…`, asserting exit 0; returns stdout.
pub fn ok(name: &str, args: &[&str]) -> String {
    let r = run(name, args);
    assert_eq!(
        r.code, 0,
        "{name} {args:?} failed:\n{}{}",
        r.stdout, r.stderr
    );
    r.stdout
}
