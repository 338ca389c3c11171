//! By default the pipeline leaves the host's scheduling alone: every
//! thread keeps the process's priority and time slice. With
//! `thread_priorities` they run at the CPU priorities
//! docs/design/ingest.md gives them: the committer highest, the batcher
//! and the acknowledger next, span builds lowest; without the right to
//! raise a priority (no `CAP_SYS_NICE`) the pipeline still appends. The
//! stages then also get the short time slice of `ingest::sched` (where the
//! kernel shows it).

use std::sync::Arc;

use ingest::index::INGEST_CFS;
use ingest::pipeline::{COMMITTER_NICE, INDEXER_NICE, STAGE_NICE};
use ingest::{Indexes, Pipeline, PipelineConfig};
use ledger::Log;

/// (name, nice) of every thread of this process, from /proc.
fn threads() -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task").path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the command name: state is field 3, nice field 19.
        let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        let nice = rest.split_whitespace().nth(19 - 3).expect("nice field");
        out.push((
            comm.trim().to_string(),
            nice.parse().expect("nice is a number"),
        ));
    }
    out
}

/// Whether this process may raise a thread's priority: tried on a thread
/// of its own, which then ends.
fn may_raise() -> bool {
    std::thread::spawn(|| {
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), -1).is_ok()
    })
    .join()
    .expect("probe thread")
}

/// One after the other: both pipelines' threads have the same names, and
/// tests of one file share a process.
#[test]
fn priorities_are_raised_only_when_asked() {
    check_priorities(false);
    check_priorities(true);
}

fn check_priorities(raised: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = verifier::SignerKey::from_seed("priority.test/log", &[3; 32]).expect("key");
    let log = Arc::new(
        Log::open_with(&dir.path().join("db"), &signer.verifier(), INGEST_CFS).expect("open"),
    );
    let indexes = Indexes::open(log).expect("indexes");
    let config = PipelineConfig {
        thread_priorities: raised,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::start(indexes, None, config);
    // The threads set their own priority as they start.
    let want = [
        ("ledger-writer", COMMITTER_NICE),
        ("ledger-batcher", STAGE_NICE),
        ("ledger-acks", STAGE_NICE),
        ("ledger-indexer", INDEXER_NICE),
    ];
    let raise = raised && may_raise();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = threads();
        let got: Vec<(&str, Option<i32>)> = want
            .iter()
            .map(|(name, _)| {
                let nice = seen.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                (*name, nice)
            })
            .collect();
        let expected: Vec<(&str, Option<i32>)> = want
            .iter()
            .map(|&(name, nice)| {
                let nice = if !raised || (nice < 0 && !raise) {
                    0
                } else {
                    nice
                };
                (name, Some(nice))
            })
            .collect();
        if got == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "thread priorities {got:?}, expected {expected:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The threads an ack waits for take a CPU as soon as they wake; span
    // builds keep the default slice.
    let short = ingest::sched::LATENCY_SLICE.as_nanos() as u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task").path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let Some(slice) = ingest::sched::shown_slice(&path) else {
            continue;
        };
        let slice = slice.as_nanos() as u64;
        match name.trim() {
            "ledger-writer" | "ledger-batcher" | "ledger-acks" if raised => {
                assert_eq!(slice, short, "{name}")
            }
            "ledger-writer" | "ledger-batcher" | "ledger-acks" => {
                assert!(slice > short, "{name}: {slice}")
            }
            "ledger-indexer" => assert!(slice > short, "{name}: {slice}"),
            // Default: no thread of the pipeline has the short slice.
            _ => {}
        }
    }
    pipeline.shutdown();
}
