//! Shared state, authentication, errors, and the router.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ingest::Pipeline;
use ledger::Log;

use crate::tokens::{Role, TokenEntry, TokenStore};

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Serve `/checkpoint` and `/tile/…` without a token.
    pub public_reads: bool,
    /// Largest request body accepted (413 beyond).
    pub max_body: usize,
    /// A request taking longer is answered 503.
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_reads: true,
            max_body: 16 << 20,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    /// The log.
    pub log: Arc<Log>,
    /// Its decision indexes.
    pub indexes: Arc<ingest::Indexes>,
    /// The ingest pipeline.
    pub pipeline: Pipeline,
    /// Bearer tokens.
    pub tokens: TokenStore,
    /// HTTP settings.
    pub config: ServerConfig,
    /// Records refused by validation (for /metrics).
    pub rejected: std::sync::atomic::AtomicU64,
}

/// An error answer: status and a reason, sent as `{"error": reason}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Why.
    pub reason: String,
}

impl ApiError {
    /// An error with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason: reason.into(),
        }
    }
    pub(crate) fn bad(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, reason)
    }
    pub(crate) fn not_found(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, reason)
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<ledger::LedgerError> for ApiError {
    fn from(e: ledger::LedgerError) -> ApiError {
        use ledger::LedgerError::*;
        match e {
            OutOfRange { .. } | SizeOrder { .. } => ApiError::bad(e.to_string()),
            NoCheckpoint(_) | Tile(_) => ApiError::not_found(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.reason }).to_string();
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

/// Checks the bearer token for `role`: 401 without a valid token, 403 for
/// the wrong role.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
) -> Result<TokenEntry, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
    let entry = state
        .tokens
        .authenticate(token.trim())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token"))?;
    if entry.role != role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "a {} token cannot do this; a {} token is needed",
                entry.role.as_str(),
                role.as_str()
            ),
        ));
    }
    Ok(entry)
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    let timeout = state.config.request_timeout;
    let max_body = state.config.max_body;
    Router::new()
        .route("/v1/decisions", post(crate::write::post_decisions))
        .route("/v1/opa/logs", post(crate::opa::post_logs))
        .route("/checkpoint", get(crate::read::checkpoint))
        .route("/tile/{*path}", get(crate::read::tile))
        .route("/v1/checkpoints/{size}", get(crate::read::checkpoint_at))
        .route("/v1/proof/consistency", get(crate::read::consistency))
        .route("/v1/decisions/{id}", get(crate::find::decision))
        .route("/v1/decisions/{id}/proof", get(crate::find::proof))
        .route("/v1/search", get(crate::find::search))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| async move {
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "request timed out")
                        .into_response(),
                }
            },
        ))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let queued = state.pipeline.stats().queued.load(Ordering::Relaxed);
    if state.log.latest_checkpoint().is_some() {
        format!("ready: size {}, {queued} queued\n", state.log.size()).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no checkpoint signed yet").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
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
         # TYPE ledger_queue_depth gauge\nledger_queue_depth {}\n\
         # TYPE ledger_commit_batch_records summary\nledger_commit_batch_records_sum {}\nledger_commit_batch_records_count {}\n\
         # TYPE ledger_commit_seconds summary\nledger_commit_seconds_sum {:.6}\nledger_commit_seconds_count {}\n\
         # TYPE ledger_tree_size gauge\nledger_tree_size {}\n\
         # TYPE ledger_checkpoint_size gauge\nledger_checkpoint_size {checkpoint}\n\
         # TYPE ledger_checkpoint_age_seconds gauge\nledger_checkpoint_age_seconds {age:.3}\n\
         # TYPE ledger_index_unbuilt_leaves gauge\nledger_index_unbuilt_leaves {unbuilt}\n",
        c(&s.appended),
        state.rejected.load(Ordering::Relaxed),
        c(&s.duplicates),
        c(&s.conflicts),
        c(&s.queued),
        c(&s.appended),
        c(&s.commits),
        s.write_micros.load(Ordering::Relaxed) as f64 / 1e6,
        c(&s.commits),
        state.log.size(),
    );
    let synced = state.log.synced_writes();
    let text = text
        + &histogram("ledger_synced_write_seconds", &synced.total)
        + &histogram("ledger_wal_write_seconds", &synced.wal);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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
