//! Responders: a decision by id, its proof, and search over the indexes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use ingest::query::{self, Query as SearchQuery};
use ledger::Log;

use crate::auth::authorize;
use crate::error::ApiError;
use crate::params::Params;
use crate::peer::Peer;
use crate::state::{attachment, AppState};
use crate::tokens::Role;

/// A leaf as JSON ([`verifier::json::logged_json`]).
fn leaf_json(log: &Log, index: u64) -> Result<String, ApiError> {
    verifier::json::logged_json(index, &log.entry(index)?).map_err(ApiError::internal)
}

/// `GET /v1/decisions/<id>`: JSON, or the exact leaf bytes with
/// `Accept: application/cbor`.
pub(crate) async fn decision(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &peer, Role::Reader)?;
    let index = state.find_decision(&id)?;
    let wants_cbor = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/cbor"));
    if wants_cbor {
        let leaf = state.log.entry(index)?;
        let hash = verifier::leaf_hash(&leaf).to_hex();
        return Ok((
            [
                (header::CONTENT_TYPE, "application/cbor".to_string()),
                (
                    header::HeaderName::from_static("x-ledger-index"),
                    index.to_string(),
                ),
                (header::HeaderName::from_static("x-ledger-leaf-hash"), hash),
            ],
            leaf,
        )
            .into_response());
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        leaf_json(&state.log, index)?,
    )
        .into_response())
}

/// `GET /v1/decisions/<id>/proof[?size=N]`: a C2SP tlog-proof against the
/// latest checkpoint, or the one signed at `size`.
pub(crate) async fn proof(
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
    let proof = state.log.tlog_proof(index, Some(size))?;
    Ok(attachment(
        "text/plain; charset=utf-8",
        &format!("{index}.tlog-proof"),
        proof.to_text(),
    ))
}

/// Largest page of search results.
const MAX_LIMIT: usize = 1000;

/// `GET /v1/search?<filters>&limit=&cursor=`: the filters of
/// [`ingest::query::PARAMS`], combined; `at=<size>` pins the query to the
/// checkpoint signed at that size, which the answer names.
pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Peer,
    q: Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &peer, Role::Reader)?;
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        q.get(name)
            .map(|s| {
                verifier::checkpoint::parse_decimal(s)
                    .ok_or_else(|| ApiError::bad(format!("{name} must be a decimal")))
            })
            .transpose()
    };
    let sq = SearchQuery::from_params(
        q.0.iter()
            .filter(|(k, _)| k.as_str() != "limit" && k.as_str() != "cursor")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(ApiError::bad)?;
    let limit = number("limit")?.map_or(100, |l| (l as usize).clamp(1, MAX_LIMIT));
    let cursor = number("cursor")?;
    let (log, indexes) = (state.log.clone(), state.indexes.clone());
    let size = state.log.size();
    if let Some(at) = sq.at.filter(|&at| at > size) {
        return Err(query::QueryError::AtBeyondLog { at, size }.into());
    }
    let pinned = sq.at.map(|at| state.log.checkpoint_at(at)).transpose()?;
    let body = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let page = query::search(&indexes, &sq, cursor, limit)?;
        let mut body = String::from("{\"results\":[");
        for (n, &i) in page.indexes.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&leaf_json(&log, i)?);
        }
        body.push_str("],\"next_cursor\":");
        body.push_str(&page.next.map_or("null".into(), |n| n.to_string()));
        body.push_str(&format!(",\"size\":{}", page.size));
        if let Some(cp) = pinned {
            body.push_str(",\"checkpoint\":");
            body.push_str(
                &serde_json::json!({
                    "size": cp.checkpoint.size,
                    "root": cp.checkpoint.root.to_base64(),
                    "signed": cp.cosigned(),
                })
                .to_string(),
            );
        }
        body.push('}');
        Ok(body)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
