//! `Id`: the `{client_id}` / `{id}` segment of an admin API path. axum's own
//! `Path` answers a segment that is not UTF-8 with `400 text/plain`; here every
//! failure is a problem document like the rest of the API, and an id no record
//! could have (not UTF-8, over-long) is 404 before any lookup.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::problem::ApiError;

/// Longer than any id Gatehouse makes (UUIDs, 43-character client ids).
const MAX_ID_LEN: usize = 256;

pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if id.len() <= MAX_ID_LEN => Ok(Id(id)),
            _ => Err(ApiError::NotFound(
                "not found (no resource has this id)".into(),
            )),
        }
    }
}

/// The `{client_id}/…/{secret_id}` segments of a path, checked as [`Id`] checks one.
pub struct IdPair(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((a, b))) if a.len() <= MAX_ID_LEN && b.len() <= MAX_ID_LEN => Ok(IdPair(a, b)),
            _ => Err(ApiError::NotFound(
                "not found (no resource has this id)".into(),
            )),
        }
    }
}
