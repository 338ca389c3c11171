//! What every handler shares: the log, its indexes, the pipeline, the
//! tokens, the signing key, and the HTTP settings.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ingest::Pipeline;
use ledger::keys::SharedSigners;
use ledger::Log;

use crate::error::ApiError;
use crate::tokens::TokenStore;

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
    /// The keys of the enforcers whose records must come signed.
    pub enforcer_keys: crate::enforcers::EnforcerKeyStore,
    /// The record rates of the tokens that have one.
    pub quotas: crate::quota::Quotas,
    /// Records appended per writer, and when each last wrote.
    pub senders: crate::senders::Senders,
    /// HTTP settings.
    pub config: ServerConfig,
    /// Records refused by validation (for /metrics).
    pub rejected: std::sync::atomic::AtomicU64,
    /// Records signed by their enforcer whose signature verified (for
    /// /metrics; appended or duplicate).
    pub signed: std::sync::atomic::AtomicU64,
    /// The log's signing keys (COSE receipts are signed on request with
    /// the current one); replaced when a rotation step is made.
    pub signers: SharedSigners,
    /// The witnesses asked to cosign each checkpoint.
    pub witnesses: crate::witnesses::Witnesses,
    /// The data dir (legal holds are read from it).
    pub data: std::path::PathBuf,
}

impl AppState {
    /// The leaf index of the decision with this `decision_id`; 404 if none.
    pub fn find_decision(&self, decision_id: &str) -> Result<u64, ApiError> {
        self.indexes
            .lookup_decision(decision_id)?
            .map(|(index, _)| index)
            .ok_or_else(|| ApiError::not_found(self.indexes.not_found(decision_id)))
    }

    /// The tree size to prove leaf `index` at: `size` if the client asked
    /// for one (a decimal; it must be a signed checkpoint's); else, with
    /// witnesses, the newest checkpoint all of them cosigned if it covers
    /// the leaf; else the latest signed checkpoint's, which must cover the
    /// leaf (503 until the next checkpoint does).
    pub fn checkpoint_for(&self, index: u64, size: Option<u64>) -> Result<u64, ApiError> {
        if let Some(s) = size {
            return Ok(s);
        }
        if let Some(s) = self.witnesses.all_cosigned().filter(|s| *s > index) {
            return Ok(s);
        }
        match self.log.latest_checkpoint() {
            Some(c) if c.checkpoint.size > index => Ok(c.checkpoint.size),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("decision {index} is not yet in a signed checkpoint; checkpoints are signed about every second"),
            )),
        }
    }
}

/// The `size` a request pins its proof to, if any: checked before
/// anything is looked up.
pub fn requested_size(size: Option<&String>) -> Result<Option<u64>, ApiError> {
    size.map(|s| {
        verifier::checkpoint::parse_decimal(s)
            .ok_or_else(|| ApiError::bad(format!("size must be a decimal tree size, not {s:?}")))
    })
    .transpose()
}

/// A file to download: its media type, name and bytes.
pub fn attachment(
    content_type: &str,
    filename: &str,
    body: impl Into<axum::body::Body>,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// The `since` (Unix seconds) of the legal hold that stopped the last
/// retention pass short, 0 if none did (`ledger_retention_held_since_seconds`).
pub static RETENTION_HELD_SINCE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// Decisions whose entries this ledgerd erased (`ledger_erasures_total`).
pub static ERASURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Retention passes that failed (`ledger_retention_failed_passes_total`).
pub static RETENTION_FAILED_PASSES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// When the last retention pass ended without an error, Unix seconds (0:
/// none yet).
pub static RETENTION_LAST_PASS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// 1 while the last retention pass failed (`ledger_retention_failing`).
pub static RETENTION_FAILING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs storage work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::error::ApiError> + Send + 'static,
) -> Result<T, crate::error::ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(crate::error::ApiError::internal)?
}

/// Sleeps `d`, or less if the server stops meanwhile (`state` gone):
/// `false` then. What the background jobs wait with, so that a stopping
/// ledgerd is not held by their pauses.
pub fn pause_while_serving(state: &std::sync::Weak<AppState>, d: std::time::Duration) -> bool {
    const SLICE: std::time::Duration = std::time::Duration::from_millis(50);
    let until = std::time::Instant::now() + d;
    loop {
        if state.strong_count() == 0 {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(SLICE.min(until - now));
    }
}
