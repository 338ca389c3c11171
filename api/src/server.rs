//! The router: every endpoint (specs/openapi.yaml) and the layers around
//! them (body limit, request timeout).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    let timeout = state.config.request_timeout;
    let max_body = state.config.max_body;
    Router::new()
        .route("/v1/decisions", post(crate::write::post_decisions))
        .route("/v1/opa/logs", post(crate::opa::post_logs))
        .route("/v1/kubernetes/audit", post(crate::kubernetes::post_audit))
        .route("/checkpoint", get(crate::read::checkpoint))
        .route("/tile/{*path}", get(crate::read::tile))
        .route("/v1/checkpoints/{size}", get(crate::read::checkpoint_at))
        .route("/v1/proof/consistency", get(crate::read::consistency))
        .route("/v1/decisions/{id}", get(crate::find::decision))
        .route("/v1/decisions/{id}/proof", get(crate::find::proof))
        .route(
            "/v1/decisions/{id}/evidence",
            get(crate::evidence::evidence),
        )
        .route("/v1/decisions/{id}/receipt", get(crate::evidence::receipt))
        .route("/v1/decisions/{id}/chain", get(crate::evidence::chain))
        .route("/v1/decisions/{id}/erasure", post(crate::erase::erase))
        .route("/v1/erasures", post(crate::erase::erase_many))
        .route("/v1/search", get(crate::find::search))
        .route("/v1/export", get(crate::export::export))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(crate::ops::readyz))
        .route("/metrics", get(crate::ops::metrics))
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_endpoint)
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
        // A body declared larger than the limit is refused before a byte
        // of it is read (a chunked one is cut where it passes the limit).
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                let declared = req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > max_body as u64) {
                    let mut r = ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        crate::ack::too_large(max_body),
                    )
                    .into_response();
                    r.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                    return r;
                }
                next.run(req).await
            },
        ))
        .with_state(state)
}

/// A path that is no endpoint: 404 with the reason, as every error.
async fn no_endpoint(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint {method} {} (the API: specs/openapi.yaml)",
        uri.path()
    ))
}

/// An endpoint asked with a method it does not take: 405 with the reason
/// (the `Allow` header names the methods it takes).
async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}
