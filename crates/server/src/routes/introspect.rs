//! `POST /connect/introspect` (RFC 7662), for APIs (their own credentials, tokens
//! addressed to them) and apps (their own tokens).

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::discovery::INTROSPECT_PATH;
use gatehouse_core::introspect::{Introspector, introspect};
use gatehouse_core::ports::StoreError;
use gatehouse_core::secret;

use crate::client_addr::ClientAddr;
use crate::error::HttpError;
use crate::extract::{ClientCredentials, OAuthForm};
use crate::routes::token::{authenticate_app, failed};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(INTROSPECT_PATH, post(introspection))
}

async fn introspection(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, HttpError> {
    let creds = ClientCredentials::from_request(&headers, &form)?;
    let token = form.require("token")?;
    let who = authenticate(&state, &creds, ip).await?;
    let answer = introspect(
        token,
        &who,
        state.clock.now(),
        state.keys().as_ref(),
        state.store.as_ref(),
        &state.clients,
    )
    .await?;
    let mut resp = Json(answer).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// An API by its own credentials, else an app. The secret is checked first; only
/// a wrong one meets the failure throttle (see [`crate::ratelimit`]).
pub(crate) async fn authenticate(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<Introspector, HttpError> {
    if let Some(wait) = state.limiter.flooded(ip) {
        return Err(HttpError::Throttled(wait));
    }
    match state.store.api_by_client_id(&creds.client_id).await {
        Ok(api) => {
            if creds
                .secret
                .as_deref()
                .is_some_and(|s| secret::verify(s, &api.secret_hash))
            {
                return Ok(Introspector::Api(api));
            }
            failed(state, creds, ip).await
        }
        Err(StoreError::NotFound) => Ok(Introspector::App(
            authenticate_app(state, creds, ip).await?.app.clone(),
        )),
        Err(e) => Err(e.into()),
    }
}
