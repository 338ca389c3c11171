//! Evidence for responders and auditors: one decision's evidence file
//! (specs/evidence.md), its COSE receipt (specs/receipt.md), and the chain
//! bundle of the decisions linked to it (specs/chain.md).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ingest::chain::{collect, HOP_LIMIT};

use crate::auth::authorize;
use crate::error::ApiError;
use crate::params::Params;
use crate::peer::Peer;
use crate::state::{attachment, blocking, AppState};
use crate::tokens::Role;

/// `GET /v1/decisions/<id>/evidence[?size=N]`: the evidence file against the
/// latest checkpoint, or the one signed at `size`.
pub(crate) async fn evidence(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &peer, Role::Reader)?;
    q.only(&["size"])?;
    let size = crate::state::requested_size(q.get("size"))?;
    let index = state.find_decision(&id)?;
    let size = state.checkpoint_for(index, size)?;
    let text = blocking(move || Ok(state.log.evidence(index, Some(size))?.to_text())).await?;
    Ok(attachment(
        "text/plain; charset=utf-8",
        &format!("{index}.evidence"),
        text,
    ))
}

/// `GET /v1/decisions/<id>/receipt`: a COSE receipt in the tree of the
/// latest checkpoint, signed now.
pub(crate) async fn receipt(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &peer, Role::Reader)?;
    let index = state.find_decision(&id)?;
    state.checkpoint_for(index, None)?;
    let bytes = blocking(move || {
        Ok(state
            .log
            .receipt(index, state.signers.get().current())?
            .encode())
    })
    .await?;
    Ok(attachment(
        verifier::receipt::MEDIA_TYPE,
        &format!("{index}.cose"),
        bytes,
    ))
}

/// `GET /v1/decisions/<id>/chain`: the decisions linked to this one, each
/// proven against the latest checkpoint, at most [`HOP_LIMIT`].
pub(crate) async fn chain(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &peer, Role::Reader)?;
    let index = state.find_decision(&id)?;
    let size = state.checkpoint_for(index, None)?;
    let text = blocking(move || {
        let chain = collect(&state.indexes, index, size, HOP_LIMIT)?;
        let bundle = state
            .log
            .chain_bundle(&chain.indexes, chain.truncated, Some(size))?;
        Ok(bundle.to_text())
    })
    .await?;
    Ok(attachment(
        "text/plain; charset=utf-8",
        &format!("{index}.chain"),
        text,
    ))
}
