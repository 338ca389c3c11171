//! Bearer tokens on requests (specs/tokens.md).

use axum::http::{header, HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::peer::Peer;
use crate::state::AppState;
use crate::tokens::{Role, TokenEntry};

/// Checks the bearer token for `role` (a relay token may do what a writer
/// token may): 401 without a valid token (or a token bound to a client
/// certificate that `peer` did not present), 403 for the wrong role.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    peer: &Peer,
    role: Role,
) -> Result<TokenEntry, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
    let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
    let entry = state
        .tokens
        .authenticate(token.trim(), now, peer.0.as_deref())
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let allowed = entry.role == role || (role == Role::Writer && entry.role.writes());
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} token cannot do this; {} token is needed",
                with_article(entry.role.as_str()),
                with_article(role.as_str())
            ),
        ));
    }
    Ok(entry)
}

/// "a reader", "an eraser".
fn with_article(role: &str) -> String {
    match role.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => format!("an {role}"),
        false => format!("a {role}"),
    }
}
