//! `POST /connect/introspect` (RFC 7662), for APIs (their own credentials, tokens
//! addressed to them) and apps (their own tokens).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gatehouse_core::discovery::INTROSPECT_PATH;
use gatehouse_core::introspect::Introspector;
use gatehouse_core::model::Api;
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
    // One look at the feed for both caches (a `stat` of SQLite's change mark).
    let trusted = state.clients.current().await;
    let who = authenticate_trusting(&state, &creds, ip, trusted).await?;
    let answer = state
        .introspection
        .answer(token, &who, trusted, &state)
        .await?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok((headers, answer).into_response())
}

/// An API by its own credentials, else an app. The secret is checked first; only
/// a wrong one meets the failure throttle (see [`crate::ratelimit`]). An API
/// whose secret checked out is cached (never a failure); a secret the cached
/// record refuses is checked against the store before it counts as wrong.
pub(crate) async fn authenticate(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<Introspector, HttpError> {
    let trusted = state.clients.current().await;
    authenticate_trusting(state, creds, ip, trusted).await
}

/// [`authenticate`], using the API cache only when `trusted` ([`crate::cache::ClientCache::current`]).
async fn authenticate_trusting(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
    trusted: bool,
) -> Result<Introspector, HttpError> {
    if let Some(wait) = state.limiter.flooded(ip) {
        return Err(HttpError::Throttled(wait));
    }
    let right = |api: &Api| {
        creds
            .secret
            .as_deref()
            .is_some_and(|s| secret::verify(s, &api.secret_hash))
    };
    if trusted
        && let Some(api) = state.introspection.api(&creds.client_id)
        && right(&api)
    {
        return Ok(Introspector::Api(Api::clone(&api)));
    }
    let epoch = state.introspection.epoch();
    match state.store.api_by_client_id(&creds.client_id).await {
        Ok(api) => {
            if right(&api) {
                if trusted {
                    state
                        .introspection
                        .remember_api(Arc::new(api.clone()), epoch);
                }
                return Ok(Introspector::Api(api));
            }
            failed(state, creds, ip).await
        }
        Err(StoreError::NotFound) => Ok(Introspector::App(
            authenticate_app(state, creds, ip).await?.0.app.clone(),
        )),
        Err(e) => Err(e.into()),
    }
}
