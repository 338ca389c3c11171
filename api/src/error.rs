//! Error answers: a status and a reason, sent as `{"error": reason}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Seconds a writer waits after a 507 (the disk is full) before trying
/// again: space is freed by people, not in a moment.
pub const DISK_FULL_RETRY_AFTER: &str = "10";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Why.
    pub reason: String,
    /// Seconds to send in `Retry-After`, if not the status's default.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }
    /// 429: a token over its record rate, which may send again in `wait`.
    pub(crate) fn over_rate(
        who: &crate::tokens::TokenEntry,
        wait: std::time::Duration,
    ) -> ApiError {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: format!(
                "token {} is over its rate of {} records a second; send again in {secs} s (nothing of this request was appended)",
                who.id,
                who.rate.unwrap_or(0)
            ),
            retry_after: Some(secs),
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
            OutOfRange { .. } | SizeOrder { .. } | ErasedAfter { .. } => {
                ApiError::bad(e.to_string())
            }
            NoCheckpoint(_) | Tile(_) => ApiError::not_found(e.to_string()),
            // The retention record is logged, not yet in a checkpoint.
            WindowPruned {
                record: Some(_), ..
            } => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            },
            Pruned { .. } | WindowPruned { .. } | Erased { .. } => {
                ApiError::new(StatusCode::GONE, e.to_string())
            }
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
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::INSUFFICIENT_STORAGE {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(DISK_FULL_RETRY_AFTER),
            );
        }
        r
    }
}

impl From<ingest::query::QueryError> for ApiError {
    fn from(e: ingest::query::QueryError) -> ApiError {
        use ingest::query::QueryError::*;
        match e {
            VersionWithoutPolicy | AtBeyondLog { .. } => ApiError::bad(e.to_string()),
            AtNotIndexed { .. } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            Ledger(e) => e.into(),
        }
    }
}
