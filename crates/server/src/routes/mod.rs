//! Route groups, one module each, each exposing `router()`.

pub mod authorize;
pub mod endsession;
pub mod health;
pub mod introspect;
pub mod revocation;
pub mod revocations;
pub mod token;
pub mod userinfo;
pub mod well_known;

use axum::Json;
use axum::http::StatusCode;

pub async fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(crate::error::oauth_error_body(
            "not_found",
            "no such endpoint",
        )),
    )
}
