//! Operations: `/readyz` and `/metrics` (Prometheus).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let queued = state.pipeline.stats().queued.load(Ordering::Relaxed);
    if state.log.latest_checkpoint().is_some() {
        format!("ready: size {}, {queued} queued\n", state.log.size()).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no checkpoint signed yet").into_response()
    }
}

/// `# HELP` of the metrics `/metrics` has both while ledgerd opens its
/// store ([`crate::starting`]) and once it serves.
pub(crate) const HELP_STARTING: &str = "1 while ledgerd opens its store (every request but /healthz and /metrics is answered 503 meanwhile), 0 once it serves";
pub(crate) const HELP_TREE_SIZE: &str = "leaves in the log";
pub(crate) const HELP_DAMAGED: &str = "reads and writes that found data of the store damaged (a checksum mismatch), and indexes rebuilt at start because they were found damaged before: the log's error line says which store and what to do";

/// Adds one sample of metric `name` of `kind` (`counter`, `gauge`) to the
/// Prometheus text `text`, with its HELP and TYPE lines.
pub(crate) fn sample(
    text: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(
        text,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// `text` answered as Prometheus text.
pub(crate) fn prometheus(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let s = state.pipeline.stats();
    let c = |a: &std::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed);
    let checkpoint = state
        .log
        .latest_checkpoint()
        .map_or(0, |c| c.checkpoint.size);
    let signed_at = s.last_checkpoint_unix_ms.load(Ordering::Relaxed);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let age = if signed_at == 0 {
        0.0
    } else {
        now_ms.saturating_sub(signed_at) as f64 / 1e3
    };
    // Leaves whose index span is not built yet (held in memory); past
    // the pipeline's bound, writes are refused with 503 until it falls.
    let unbuilt = state.indexes.unbuilt();
    let (disk_free, disk_size) = disk_space(&state.data);
    let mut text = String::new();
    let counters: [(&str, &str, u64); 16] = [
        ("ledger_records_signed_total", "records signed by their enforcer whose signature verified (appended or duplicate)", state.signed.load(Ordering::Relaxed)),
        ("ledger_records_appended_total", "records appended to the log", c(&s.appended) as u64),
        ("ledger_records_rejected_total", "records refused by the checks (nothing appended)", state.rejected.load(Ordering::Relaxed)),
        ("ledger_records_duplicate_total", "retries answered as duplicates of a logged decision_id", c(&s.duplicates) as u64),
        ("ledger_records_conflict_total", "records refused: their decision_id was logged with other content", c(&s.conflicts) as u64),
        ("ledger_records_failed_total", "records of group commits that failed (nothing of them appended)", c(&s.failed) as u64),
        ("ledger_records_failed_disk_full_total", "of those, records whose commit failed for want of disk space", c(&s.failed_disk_full) as u64),
        ("ledger_clock_held_commits_total", "group commits whose leaves took the ledger clock's time because the host clock read earlier", c(&s.clock_held) as u64),
        ("ledger_requests_over_rate_total", "write requests answered 429: their token was over its record rate (nothing of them appended)", state.quotas.refused()),
        ("ledger_connections_refused_total", "connections answered 503 and closed over max_connections", crate::listen::REFUSED_CONNECTIONS.load(Ordering::Relaxed)),
        ("ledger_erasures_total", "decisions whose entries were erased (each names its erasure record: ledgerctl search --action ledger.erase)", crate::state::ERASURES.load(Ordering::Relaxed)),
        ("ledger_retention_failed_passes_total", "retention passes that failed (see the log); nothing more is removed until one succeeds", crate::state::RETENTION_FAILED_PASSES.load(Ordering::Relaxed)),
        ("ledger_storage_damaged_total", HELP_DAMAGED, ledger::damage_seen()),
        ("ledger_index_rebuilds_total", "damaged indexes rebuilt from the leaves and put in place while ledgerd ran", crate::repair::REBUILDS.load(Ordering::Relaxed)),
        ("ledger_index_rebuilds_failed_total", "rebuilds of damaged indexes that failed (see the log); each is tried again a minute later", crate::repair::REBUILDS_FAILED.load(Ordering::Relaxed)),
        ("ledger_tls_handshakes_failed_total", "TLS handshakes that failed or were not done within header_timeout_ms", crate::listen::FAILED_HANDSHAKES.load(Ordering::Relaxed)),
    ];
    for (name, help, value) in counters {
        sample(&mut text, name, "counter", help, value);
    }
    let owed = state.log.compactions_owed().map_or(0, |o| o.count());
    let gauges: [(&str, &str, String); 23] = [
        ("ledger_starting", HELP_STARTING, "0".to_string()),
        ("ledger_enforcer_keys", "enforcer keys registered: their enforcers' records must come signed", state.enforcer_keys.current().keys().len().to_string()),
        ("ledger_queue_depth", "records queued for a group commit", c(&s.queued).to_string()),
        ("ledger_tree_size", HELP_TREE_SIZE, state.log.size().to_string()),
        ("ledger_indexes_marked_damaged", "1 from when damage is found in the indexes (db/index.damaged) until they are rebuilt from the leaves, which ledgerd does while it runs", u8::from(state.log.indexes_marked_damaged()).to_string()),
        ("ledger_indexes_rebuilding", "1 while ledgerd rebuilds damaged indexes from the leaves beside the ones in use", crate::repair::REBUILDING.load(Ordering::Relaxed).to_string()),
        ("ledger_index_rebuilt_to_leaf", "the leaf up to which the running rebuild has made the built spans again (0: none runs); it ends near the tree size less the unbuilt leaves", state.indexes.rebuilt_to().to_string()),
        ("ledger_compactions_owed", "compactions that take removed bytes off the disk (a prune's, an erasure's, an index family's whole one) and have not run to their end: running, or cut short by a stop, a crash or a failure (a full disk) and not yet done again (after a start, or while ledgerd runs after a failure)", owed.to_string()),
        ("ledger_first_kept_leaf", "leaves below it had their entries removed by retention (their hashes stay)", state.log.first_kept().to_string()),
        ("ledger_retention_last_pass_timestamp_seconds", "when the last retention pass ended without an error (Unix seconds; 0: none yet, or no --retention)", crate::state::RETENTION_LAST_PASS.load(Ordering::Relaxed).to_string()),
        ("ledger_retention_failing", "1 while the last retention pass failed (see the log): decisions past the retention period are kept", crate::state::RETENTION_FAILING.load(Ordering::Relaxed).to_string()),
        ("ledger_retention_held_since_seconds", "0, or when the decisions kept by the legal hold that stopped the last retention pass begin (Unix seconds)", crate::state::RETENTION_HELD_SINCE.load(Ordering::Relaxed).to_string()),
        ("ledger_checkpoint_size", "tree size of the latest signed checkpoint", checkpoint.to_string()),
        ("ledger_checkpoint_age_seconds", "seconds since the latest checkpoint was signed (one is signed only when the tree grew)", format!("{age:.3}")),
        ("ledger_index_unbuilt_leaves", "leaves whose responder index span is not built yet (held in memory)", unbuilt.to_string()),
        ("ledger_data_disk_available_bytes", "bytes free to ledgerd on the file system of the data dir (an append-only log only grows: writes are answered 507 when it is full)", disk_free.to_string()),
        ("ledger_scrub_running", "1 while a scrub reads every block of the store", crate::repair::SCRUBBING.load(Ordering::Relaxed).to_string()),
        ("ledger_scrub_last_completed_timestamp_seconds", "when the last scrub read the whole store with every checksum matching (Unix seconds; 0: never)", crate::repair::SCRUB_LAST.load(Ordering::Relaxed).to_string()),
        ("ledger_scrub_read_bytes", "bytes of keys and values the running scrub has read (0: none runs)", crate::repair::SCRUB_READ.load(Ordering::Relaxed).to_string()),
        ("ledger_scrub_interval_seconds", "how often the store is scrubbed (--scrub-every; 0: off)", crate::repair::SCRUB_EVERY.load(Ordering::Relaxed).to_string()),
        ("ledger_data_disk_size_bytes", "size of the file system of the data dir", disk_size.to_string()),
        ("process_resident_memory_bytes", "resident memory of ledgerd", (resident_kib("VmRSS:") * 1024).to_string()),
        ("ledger_process_peak_resident_memory_bytes", "peak resident memory of ledgerd", (resident_kib("VmHWM:") * 1024).to_string()),
    ];
    for (name, help, value) in gauges {
        sample(&mut text, name, "gauge", help, value);
    }
    let _ = write!(
        text,
        "# HELP ledger_commit_batch_records records in each group commit\n\
         # TYPE ledger_commit_batch_records summary\n\
         ledger_commit_batch_records_sum {}\nledger_commit_batch_records_count {}\n\
         # HELP ledger_commit_seconds time in the synced write of each group commit\n\
         # TYPE ledger_commit_seconds summary\n\
         ledger_commit_seconds_sum {:.6}\nledger_commit_seconds_count {}\n",
        c(&s.appended),
        c(&s.commits),
        s.write_micros.load(Ordering::Relaxed) as f64 / 1e6,
        c(&s.commits),
    );
    let mut decisions = String::new();
    for (d, n) in ingest::record::DECISIONS.iter().zip(&s.decisions) {
        let _ = writeln!(
            decisions,
            "ledger_decisions_appended_total{{decision=\"{d}\"}} {}",
            c(n)
        );
    }
    let _ = write!(
        text,
        "# HELP ledger_decisions_appended_total records appended, by decision\n\
         # TYPE ledger_decisions_appended_total counter\n{decisions}\
         # HELP ledger_break_glass_appended_total break-glass records appended (break_glass.used)\n\
         # TYPE ledger_break_glass_appended_total counter\n\
         ledger_break_glass_appended_total {}\n",
        c(&s.break_glass)
    );
    let witnesses = state.witnesses.status();
    if !witnesses.is_empty() {
        let mut sizes = String::new();
        let mut failures = String::new();
        for w in witnesses {
            let name = crate::senders::label(&w.name);
            let _ = writeln!(
                sizes,
                "ledger_witness_cosigned_size{{witness=\"{name}\"}} {}",
                w.cosigned_size.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                failures,
                "ledger_witness_failures_total{{witness=\"{name}\"}} {}",
                w.failures.load(Ordering::Relaxed)
            );
        }
        let _ = write!(
            text,
            "# HELP ledger_witness_cosigned_size tree size of the newest checkpoint each witness cosigned\n\
             # TYPE ledger_witness_cosigned_size gauge\n{sizes}\
             # HELP ledger_witness_failures_total requests to each witness that brought no valid cosignature\n\
             # TYPE ledger_witness_failures_total counter\n{failures}"
        );
    }
    text.push_str(&state.senders.metrics());
    let mem = state.log.memory();
    let text = text
        + &format!(
            "# HELP ledger_rocksdb_memory_bytes RocksDB memory by part, within the memory budget\n\
             # TYPE ledger_rocksdb_memory_bytes gauge\n\
             ledger_rocksdb_memory_bytes{{part=\"memtables\"}} {}\n\
             ledger_rocksdb_memory_bytes{{part=\"table_readers\"}} {}\n\
             ledger_rocksdb_memory_bytes{{part=\"block_cache\"}} {}\n",
            mem.memtables, mem.table_readers, mem.block_cache
        );
    let synced = state.log.synced_writes();
    let text =
        text + &histogram(
            "ledger_synced_write_seconds",
            "each group commit's synced RocksDB write",
            &synced.total,
        ) + &histogram(
            "ledger_wal_write_seconds",
            "each group commit's write-ahead-log write and sync",
            &synced.wal,
        );
    prometheus(text)
}

/// A size from `/proc/self/status` (`VmRSS:` now, `VmHWM:` the peak), in
/// KiB; 0 where there is no such file.
/// Bytes free to an unprivileged writer, and the size, of the file
/// system holding `dir` (0 and 0 if it cannot be asked).
fn disk_space(dir: &std::path::Path) -> (u64, u64) {
    match rustix::fs::statvfs(dir) {
        Ok(st) => (
            st.f_bavail.saturating_mul(st.f_frsize),
            st.f_blocks.saturating_mul(st.f_frsize),
        ),
        Err(_) => (0, 0),
    }
}

fn resident_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A Prometheus histogram of durations (cumulative buckets, in seconds):
/// `ledger_synced_write_seconds` is each group commit's synced RocksDB
/// write, `ledger_wal_write_seconds` its write-ahead-log write and sync.
/// Their difference over 10 ms is a stall inside RocksDB; both over it, a
/// slow disk.
fn histogram(name: &str, help: &str, d: &ledger::Durations) -> String {
    let mut out = format!("# HELP {name} {help}\n# TYPE {name} histogram\n");
    let mut cumulative = 0;
    for (bound, count) in ledger::BUCKET_BOUNDS_MICROS.iter().zip(d.buckets) {
        cumulative += count;
        out += &format!(
            "{name}_bucket{{le=\"{}\"}} {cumulative}\n",
            *bound as f64 / 1e6
        );
    }
    out += &format!(
        "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {:.6}\n{name}_count {}\n",
        d.count(),
        d.sum_micros as f64 / 1e6,
        d.count()
    );
    out
}
