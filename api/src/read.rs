//! The log as C2SP tlog-tiles (`/checkpoint`, `/tile/…`), past checkpoints
//! and consistency proofs: what auditors and any tlog client read.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use verifier::consistency_file::ConsistencyFile;
use verifier::tile::{Tile, TILE_WIDTH};

use crate::auth::authorize;
use crate::error::ApiError;
use crate::params::Params;
use crate::peer::Peer;
use crate::state::AppState;
use crate::tokens::Role;

fn public_or_reader(state: &AppState, headers: &HeaderMap, peer: &Peer) -> Result<(), ApiError> {
    if state.config.public_reads {
        return Ok(());
    }
    authorize(state, headers, peer, Role::Reader).map(|_| ())
}

fn text(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// `GET /checkpoint`: the latest signed checkpoint.
pub(crate) async fn checkpoint(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
) -> Result<Response, ApiError> {
    public_or_reader(&state, &headers, &peer)?;
    let cp = state.log.latest_checkpoint().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no checkpoint signed yet")
    })?;
    Ok(text(cp.cosigned(), "no-cache"))
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`.
pub(crate) async fn tile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    public_or_reader(&state, &headers, &peer)?;
    let tile = Tile::parse_path(&format!("tile/{path}"))
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    let log = state.log.clone();
    let data = tokio::task::spawn_blocking(move || log.tile(&tile))
        .await
        .map_err(ApiError::internal)??;
    // A full tile never changes; a partial one is replaced as the log grows.
    let cache = if u64::from(tile.width) == TILE_WIDTH {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        data,
    )
        .into_response())
}

/// `GET /v1/checkpoints/<size>`: the checkpoint signed at that size.
pub(crate) async fn checkpoint_at(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(size): Path<String>,
) -> Result<Response, ApiError> {
    public_or_reader(&state, &headers, &peer)?;
    let size = verifier::checkpoint::parse_decimal(&size)
        .ok_or_else(|| ApiError::bad("size must be a decimal"))?;
    // Not immutable: witnesses' cosignatures are added as they arrive.
    Ok(text(state.log.checkpoint_at(size)?.cosigned(), "no-cache"))
}

/// `GET /v1/proof/consistency?from=<m>&to=<n>`: a consistency proof file.
pub(crate) async fn consistency(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    q: Params,
) -> Result<Response, ApiError> {
    public_or_reader(&state, &headers, &peer)?;
    q.only(&["from", "to"])?;
    let size = |name: &str| {
        q.get(name)
            .and_then(|v| verifier::checkpoint::parse_decimal(v))
            .ok_or_else(|| ApiError::bad(format!("{name} must be a decimal tree size")))
    };
    let (old, new) = (size("from")?, size("to")?);
    let log = state.log.clone();
    let proof = tokio::task::spawn_blocking(move || log.consistency_proof(old, new))
        .await
        .map_err(ApiError::internal)??;
    Ok(text(
        ConsistencyFile {
            old_size: old,
            new_size: new,
            proof,
        }
        .to_text(),
        "public, max-age=31536000, immutable",
    ))
}
