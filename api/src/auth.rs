//! Bearer tokens on requests (specs/tokens.md).

use axum::http::{header, HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{Role, TokenEntry};

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
