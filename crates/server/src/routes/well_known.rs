//! Discovery (OpenID Connect Discovery 1.0, RFC 8414) and the JWKS.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::discovery::{
    JWKS_PATH, OAUTH_METADATA_PATH, OPENID_CONFIGURATION_PATH, metadata,
};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(OPENID_CONFIGURATION_PATH, get(discovery))
        .route(OAUTH_METADATA_PATH, get(discovery))
        .route(JWKS_PATH, get(jwks))
}

async fn discovery(State(state): State<AppState>) -> Response {
    let mut doc = metadata(&state.config.issuer, &[]);
    // OpenID Connect Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
    // Said explicitly either way, so a client never assumes it (turned off
    // with `serve --backchannel-logout=false`).
    let on = state.config.backchannel.enabled;
    doc["backchannel_logout_supported"] = on.into();
    doc["backchannel_logout_session_supported"] = on.into();
    cacheable(Json(doc).into_response())
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut r = cacheable(Json(state.keys().jwks(state.clock.now())).into_response());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    r
}

/// Clients refetch on an unknown `kid`, so five minutes is safe across rotation.
fn cacheable(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
