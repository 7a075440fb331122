//! `POST /connect/par` (RFC 9126): an authenticated client pushes its
//! authorization request and gets a one-time `request_uri` for the browser.
//! Client authentication, its throttling and the error format are the token
//! endpoint's ([`AuthenticatedClient`]); the checks are the authorization
//! endpoint's, made in [`par::push`]. The answer carries `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::discovery::PAR_PATH;
use gatehouse_core::par::{self, PushRequest};

use crate::client_auth::AuthenticatedClient;
use crate::error::HttpError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(PAR_PATH, post(push))
}

/// RFC 9126 §2.2's answer.
#[derive(serde::Serialize)]
struct Answer {
    request_uri: String,
    expires_in: i64,
}

async fn push(
    State(state): State<AppState>,
    AuthenticatedClient {
        client, request, ..
    }: AuthenticatedClient<PushRequest>,
) -> Result<Response, HttpError> {
    let now = state.clock.now();
    let pushed = par::push(
        state.store.as_ref(),
        &request,
        &client,
        par::DEFAULT_TTL,
        now,
    )
    .await?;
    let body = Answer {
        request_uri: pushed.request_uri,
        expires_in: pushed.expires_in,
    };
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
