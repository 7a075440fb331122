//! `GET /health` on the gateway: whether the revocation feed is followed, how long
//! since it last answered, and how many signing keys are cached. 200 while the
//! feed is fresh; 503 with `"feed": "stale"` once it has been lost too long (JWTs
//! still validate with the cached keys; only tokens newer than the last sync are
//! refused).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::validator::Validator;

pub async fn health(State(v): State<Validator>) -> Response {
    let h = v.health();
    let status = if h.feed == "stale" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "feed": h.feed,
        "last_sync_age_secs": h.last_sync_age_secs,
        "keys": h.keys,
        "cursor": h.cursor,
        "revoked": {
            "clients": h.revoked_clients,
            "inactive_users": h.inactive_users,
            "grants": h.revoked_grants,
            "tokens": h.revoked_tokens,
        },
    });
    (status, axum::Json(body)).into_response()
}
