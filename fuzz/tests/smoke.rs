//! The bounded fuzz run of `make test`: for every target, each seed of
//! `corpus/<target>/` and each input of `regressions/<target>/` (crashes
//! found before), then random mutations of the seeds for a fixed number of
//! inputs. A panic fails the test, naming the target and the file the
//! input was saved to (`target/fuzz-failures/`); copy that file into
//! `regressions/<target>/` once the bug is fixed.
//!
//! `LEDGER_FUZZ_INPUTS` sets the mutations per target (default 10,000);
//! `LEDGER_FUZZ_SEED` the mutator's seed (default: a fixed one, so a run
//! is repeatable; `random` for a new one each run).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ledger_fuzz::mutate::{mutate, Rng};
use ledger_fuzz::TARGETS;

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .map(|p| {
                    let b = std::fs::read(&p).unwrap();
                    (p, b)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn saved(target: &str, input: &[u8]) -> PathBuf {
    let dir = here().join("../target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{target}-{h:016x}"));
    std::fs::write(&path, input).unwrap();
    path
}

thread_local! {
    /// Whether this thread is running a target: its panics are caught and
    /// reported with the input, so the hook need not print them.
    static INSIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that is quiet inside a target and the
/// default one elsewhere (a failing test's own message still prints).
fn quiet_inside_targets() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !INSIDE.with(|c| c.get()) || std::env::var_os("LEDGER_FUZZ_VERBOSE").is_some() {
                default(info);
            }
        }));
    });
}

fn run(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("a target of that name");
    let seeds = files(&here().join("corpus").join(name));
    assert!(!seeds.is_empty(), "no seeds in corpus/{name}");
    let regressions = files(&here().join("regressions").join(name));
    quiet_inside_targets();
    let check = |input: &[u8], what: &str| {
        INSIDE.with(|c| c.set(true));
        let result = catch_unwind(AssertUnwindSafe(|| target(input)));
        INSIDE.with(|c| c.set(false));
        if result.is_err() {
            panic!(
                "{name} panicked on {what}; input saved to {}",
                saved(name, input).display()
            );
        }
    };
    for (path, input) in seeds.iter().chain(&regressions) {
        check(input, &path.display().to_string());
    }
    let inputs: usize = std::env::var("LEDGER_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed = match std::env::var("LEDGER_FUZZ_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        Some(s) => s.parse().unwrap_or(1),
        None => 0x001e_d6e5,
    };
    let mut rng = Rng::new(seed ^ name.len() as u64);
    for i in 0..inputs {
        let a = &seeds[rng.below(seeds.len())].1;
        let b = &seeds[rng.below(seeds.len())].1;
        let input = mutate(&mut rng, a, b);
        check(&input, &format!("mutation {i} (LEDGER_FUZZ_SEED={seed})"));
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_run_here() {
            let here: &[&str] = &[$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(here.contains(name), "{name} has no test in smoke.rs");
            }
        }
    };
}

targets!(
    record_cbor,
    record_json,
    cbor_seq,
    record_fast,
    opa_event,
    kubernetes_audit,
    search_params,
    cbor,
    leaf,
    note,
    tlog_proof,
    consistency,
    tiles,
    evidence,
    chain,
    receipt,
    export,
    witness,
    client_cert,
    signed_record,
);
