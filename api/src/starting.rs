//! What ledgerd answers while it opens its store.
//!
//! ledgerd listens before it opens the store, so that it answers from the
//! moment it starts. Opening is quick unless the indexes must be built
//! from the leaves: after indexes RocksDB could not open were deleted, or
//! a store restored from hashes and entries, it reads every leaf (about
//! 18 minutes at 10^8 leaves). Until the store is open:
//!
//! - `GET /healthz` answers `200` with what it is doing (the process is
//!   alive: a liveness probe must not kill it mid-build, which would
//!   start the build again);
//! - `GET /readyz` answers `503` with the same reason;
//! - `GET /metrics` has `ledger_starting 1`, the tree size and the leaf
//!   up to which the indexes have been read (`ledger_index_rebuilt_to_leaf`);
//! - every other request is answered `503` with `Retry-After` and the
//!   reason: nothing is written, and nothing is answered from indexes
//!   that do not yet hold every leaf (a retry would be appended twice, a
//!   search would miss decisions).
//!
//! Then [`Switch::open`] hands every request to the service's router.
//! [`open_store`] opens the store, reporting to [`Opening`].

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::future::{BoxFuture, FutureExt};
use ingest::index::INGEST_CFS;
use ingest::Indexes;
use ledger::keys::LogKeys;
use ledger::{LedgerError, Log};
use tower::{Service, ServiceExt};

use crate::error::ApiError;
use crate::ops::{prometheus, sample, HELP_DAMAGED, HELP_STARTING, HELP_TREE_SIZE};

/// Seconds a client waits before asking again while ledgerd opens.
pub const STARTING_RETRY_AFTER: u64 = 5;

/// What the opening of the store is doing, for the answers above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// Opening the log and checking its last checkpoint.
    Log = 0,
    /// Reading the leaves past the built index spans into the indexes.
    Indexes = 1,
    /// Building the indexes from every leaf: the ones in place could not
    /// be opened, and were deleted.
    Rebuilding = 2,
}

/// How far the opening has got: written by the thread that opens the
/// store, read by the answers.
#[derive(Debug, Default)]
pub struct Opening {
    step: AtomicU8,
    /// Leaves in the log (0 until it is open).
    pub size: AtomicU64,
    /// The leaf up to which the leaves past the built spans were read.
    pub indexed_to: AtomicU64,
}

impl Opening {
    /// Records that the opening has reached `step`.
    pub fn step(&self, step: Step) {
        self.step.store(step as u8, Ordering::Relaxed);
    }

    /// What it is doing, in a sentence.
    pub fn doing(&self) -> String {
        let (size, at) = (
            self.size.load(Ordering::Relaxed),
            self.indexed_to.load(Ordering::Relaxed),
        );
        match self.step.load(Ordering::Relaxed) {
            s if s == Step::Log as u8 => "opening the log".to_string(),
            s if s == Step::Indexes as u8 => format!("reading the leaves past the built index spans into the indexes (leaf {at} of {size})"),
            _ => format!("building the indexes from the log's leaves, as the ones in place could not be opened (leaf {at} of {size})"),
        }
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        for (name, help, value) in [
            ("ledger_starting", HELP_STARTING, 1),
            ("ledger_tree_size", HELP_TREE_SIZE, self.size.load(Ordering::Relaxed)),
            ("ledger_index_rebuilt_to_leaf", "the leaf up to which the indexes have been read from the leaves while ledgerd opens", self.indexed_to.load(Ordering::Relaxed)),
        ] {
            sample(&mut text, name, "gauge", help, value);
        }
        sample(
            &mut text,
            "ledger_storage_damaged_total",
            "counter",
            HELP_DAMAGED,
            ledger::damage_seen(),
        );
        text
    }

    /// The answer to `req` while the store is not open yet.
    fn answer(&self, req: &Request) -> Response {
        let doing = self.doing();
        match req.uri().path() {
            "/healthz" => format!("starting: {doing}\n").into_response(),
            "/metrics" => prometheus(self.metrics()),
            _ => ApiError {
                retry_after: Some(STARTING_RETRY_AFTER),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("ledgerd is starting: {doing}; nothing was written, retry later"),
                )
            }
            .into_response(),
        }
    }
}

/// The service ledgerd listens with: the answers above until
/// [`Switch::open`] gives it the router, then the router's answers.
#[derive(Clone)]
pub struct Switch {
    opening: Arc<Opening>,
    app: Arc<RwLock<Option<Router>>>,
}

impl Switch {
    /// Answers as a store still opening, reporting `opening`.
    pub fn new(opening: Arc<Opening>) -> Switch {
        Switch {
            opening,
            app: Arc::default(),
        }
    }

    /// A router that hands every request to this switch.
    pub fn router(&self) -> Router {
        Router::new().fallback_service(self.clone())
    }

    /// The store is open: every request from now on goes to `app`.
    pub fn open(&self, app: Router) {
        *self.app.write().unwrap_or_else(|p| p.into_inner()) = Some(app);
    }

    /// Lets go of the router given to [`Switch::open`] (and the state it
    /// holds), once nothing is served any more.
    pub fn close(&self) {
        self.app.write().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Service<Request> for Switch {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let app = self.app.read().unwrap_or_else(|p| p.into_inner()).clone();
        match app {
            Some(app) => app.oneshot(req).boxed(),
            None => std::future::ready(Ok(self.opening.answer(&req))).boxed(),
        }
    }
}

/// Why [`open_store`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The log or its indexes did not open (another process holds the
    /// store, it is of another log, its log is damaged, …).
    #[error("opening the log and its indexes in {path}")]
    Open {
        /// The store.
        path: String,
        /// What failed.
        #[source]
        source: LedgerError,
    },
    /// Indexes RocksDB could not open could not be deleted.
    #[error("deleting the damaged indexes in {path}")]
    Discard {
        /// The index database.
        path: String,
        /// What failed.
        #[source]
        source: LedgerError,
    },
    /// Building the indexes again from the leaves failed.
    #[error("rebuilding the indexes in {path}")]
    Rebuild {
        /// The index database.
        path: String,
        /// What failed.
        #[source]
        source: LedgerError,
    },
}

/// Opens the log in `db` and its indexes, keeping `spares` span indexes
/// paged in, and reports how far it got in `opening`.
///
/// Indexes found damaged while the store last ran are opened as they are
/// and rebuilt beside while ledgerd serves (`Log::open_keeping_marked`,
/// [`crate::repair`]). Indexes RocksDB cannot open are deleted and built
/// again from the leaves, which is all they hold (what `ledgerctl
/// reindex` does), before the store is served: without the `decisions`
/// index a write cannot be told from a retry. The damage is logged and
/// counted in `/metrics`, so that someone checks the disk.
pub fn open_store(
    db: &Path,
    keys: &LogKeys,
    spares: usize,
    opening: &Opening,
) -> Result<(Arc<Log>, Arc<Indexes>), OpenError> {
    let open = |step: Step| {
        opening.step(Step::Log);
        let log = Arc::new(Log::open_keeping_marked(db, keys, INGEST_CFS)?);
        opening.size.store(log.size(), Ordering::Relaxed);
        opening.indexed_to.store(0, Ordering::Relaxed);
        opening.step(step);
        let indexes = Indexes::open_with_spares(log.clone(), spares, &opening.indexed_to)?;
        Ok::<_, LedgerError>((log, indexes))
    };
    let index = ledger::index_dir(db).display().to_string();
    match open(Step::Indexes) {
        Err(LedgerError::Damaged {
            store: ledger::Store::Indexes,
            source,
        }) => {
            // Closed by now: nothing of the failed open holds the store.
            tracing::error!(
                "the indexes in {index} are damaged ({source}): rebuilding them from the log's leaves; check the disk"
            );
            ledger::discard_indexes(db).map_err(|source| OpenError::Discard {
                path: index.clone(),
                source,
            })?;
            let rebuilt = open(Step::Rebuilding).map_err(|source| OpenError::Rebuild {
                path: index.clone(),
                source,
            })?;
            tracing::warn!("the indexes in {index} were rebuilt from the leaves");
            Ok(rebuilt)
        }
        opened => opened.map_err(|source| OpenError::Open {
            path: db.display().to_string(),
            source,
        }),
    }
}
