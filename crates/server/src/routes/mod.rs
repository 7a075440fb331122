//! Route groups, one module each, each exposing `router()`.

pub mod authorize;
pub mod device;
pub mod endsession;
pub mod health;
pub mod introspect;
pub mod par;
pub mod revocation;
pub mod revocations;
pub mod token;
pub mod userinfo;
pub mod well_known;

use axum::Json;
use axum::http::StatusCode;

/// The token endpoint's second path (Auth0's), for documents written for it.
pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";

/// 405 for a wrong method on a client endpoint: an RFC 6749 §5.2-shaped JSON
/// body (axum adds `Allow` with the methods the route takes).
pub async fn method_not_allowed() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(crate::error::oauth_error_body(
            "invalid_request",
            "this endpoint accepts POST only",
        )),
    )
}

pub async fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(crate::error::oauth_error_body(
            "not_found",
            "no such endpoint",
        )),
    )
}
