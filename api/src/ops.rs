//! Operations: `/readyz` and `/metrics` (Prometheus).

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
    let text = format!(
        "# TYPE ledger_records_appended_total counter\nledger_records_appended_total {}\n\
         # TYPE ledger_records_rejected_total counter\nledger_records_rejected_total {}\n\
         # TYPE ledger_records_duplicate_total counter\nledger_records_duplicate_total {}\n\
         # TYPE ledger_records_conflict_total counter\nledger_records_conflict_total {}\n\
         # TYPE ledger_records_failed_total counter\nledger_records_failed_total {}\n\
         # TYPE ledger_records_failed_disk_full_total counter\nledger_records_failed_disk_full_total {}\n\
         # TYPE ledger_queue_depth gauge\nledger_queue_depth {}\n\
         # TYPE ledger_commit_batch_records summary\nledger_commit_batch_records_sum {}\nledger_commit_batch_records_count {}\n\
         # TYPE ledger_commit_seconds summary\nledger_commit_seconds_sum {:.6}\nledger_commit_seconds_count {}\n\
         # TYPE ledger_tree_size gauge\nledger_tree_size {}\n\
         # TYPE ledger_checkpoint_size gauge\nledger_checkpoint_size {checkpoint}\n\
         # TYPE ledger_checkpoint_age_seconds gauge\nledger_checkpoint_age_seconds {age:.3}\n\
         # TYPE ledger_clock_held_commits_total counter\nledger_clock_held_commits_total {}\n\
         # TYPE ledger_index_unbuilt_leaves gauge\nledger_index_unbuilt_leaves {unbuilt}\n\
         # TYPE ledger_connections_refused_total counter\nledger_connections_refused_total {}\n\
         # TYPE ledger_tls_handshakes_failed_total counter\nledger_tls_handshakes_failed_total {}\n\
         # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
         # TYPE ledger_process_peak_resident_memory_bytes gauge\nledger_process_peak_resident_memory_bytes {}\n",
        c(&s.appended),
        state.rejected.load(Ordering::Relaxed),
        c(&s.duplicates),
        c(&s.conflicts),
        c(&s.failed),
        c(&s.failed_disk_full),
        c(&s.queued),
        c(&s.appended),
        c(&s.commits),
        s.write_micros.load(Ordering::Relaxed) as f64 / 1e6,
        c(&s.commits),
        state.log.size(),
        c(&s.clock_held),
        crate::listen::REFUSED_CONNECTIONS.load(Ordering::Relaxed),
        crate::listen::FAILED_HANDSHAKES.load(Ordering::Relaxed),
        resident_kib("VmRSS:") * 1024,
        resident_kib("VmHWM:") * 1024,
    );
    let mem = state.log.memory();
    let text = text
        + &format!(
            "# TYPE ledger_rocksdb_memory_bytes gauge\n\
             ledger_rocksdb_memory_bytes{{part=\"memtables\"}} {}\n\
             ledger_rocksdb_memory_bytes{{part=\"table_readers\"}} {}\n\
             ledger_rocksdb_memory_bytes{{part=\"block_cache\"}} {}\n",
            mem.memtables, mem.table_readers, mem.block_cache
        );
    let synced = state.log.synced_writes();
    let text = text
        + &histogram("ledger_synced_write_seconds", &synced.total)
        + &histogram("ledger_wal_write_seconds", &synced.wal);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A size from `/proc/self/status` (`VmRSS:` now, `VmHWM:` the peak), in
/// KiB; 0 where there is no such file.
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
fn histogram(name: &str, d: &ledger::Durations) -> String {
    let mut out = format!("# TYPE {name} histogram\n");
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
