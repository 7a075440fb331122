//! `POST /connect/token` (RFC 6749 §3.2). Parses the request, authenticates the
//! client (throttling repeated failures), dispatches on the grant exhaustively and
//! answers with `Cache-Control: no-store`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::context::{ClientContext, ContextSource};
use gatehouse_core::discovery::TOKEN_PATH;
use gatehouse_core::exchange::{self, TokenSet};
use gatehouse_core::grant::authorization_code::CodeExchange;
use gatehouse_core::grant::client_credentials;
use gatehouse_core::limits::logged;
use gatehouse_core::model::AppStatus;
use gatehouse_core::ports::StoreError;
use gatehouse_core::request::TokenRequest;
use gatehouse_core::token::mint;
use gatehouse_core::{OAuthError, secret};
use serde_json::json;

use crate::client_addr::ClientAddr;
use crate::error::HttpError;
use crate::extract::{ClientCredentials, OAuthForm};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(TOKEN_PATH, post(token))
}

async fn token(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, HttpError> {
    let request = TokenRequest::parse(&form)?;
    let creds = ClientCredentials::from_request(&headers, &form)?;
    let client = authenticate_app(&state, &creds, ip).await?;
    let now = state.clock.now();
    let policy = state.config.policy();
    let store = state.store.as_ref();
    let ring = state.keys();
    let keys = ring.as_ref();
    let set = match request {
        TokenRequest::ClientCredentials(r) => {
            let plan = client_credentials::decide(&client, &r, &state.config.issuer)?;
            let minted = mint(plan, &state.config.issuer, now, keys)
                .map_err(|e| HttpError::Internal(e.to_string()))?;
            if let Some(record) = &minted.reference {
                store.insert_reference_token(record).await?;
            }
            TokenSet {
                access_token: minted.access_token,
                expires_in: minted.expires_in,
                scope: minted.scope,
                refresh_token: None,
                id_token: None,
            }
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let req = CodeExchange {
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_deref(),
            };
            exchange::exchange_code(store, keys, &client, &code, req, &policy, now).await?
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            exchange::refresh(
                store,
                keys,
                &client,
                &refresh_token,
                scope.as_ref(),
                &policy,
                now,
            )
            .await?
        }
    };
    Ok(respond(set))
}

/// Verifies the app's secret against its cached context, before any throttle:
/// the right secret is never refused because of failures (its own or anyone
/// else's). A wrong one fills the limiter's buckets, and answers 429 instead of
/// 401 once one is full. Only an address far past its burst
/// ([`crate::ratelimit::FailureLimiter::flooded`]) is refused before checking.
#[tracing::instrument(level = "debug", skip_all, fields(client_id = %logged(&creds.client_id)))]
pub async fn authenticate_app(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<Arc<ClientContext>, HttpError> {
    if let Some(wait) = state.limiter.flooded(ip) {
        return Err(HttpError::Throttled(wait));
    }
    let Some(presented) = creds.secret.as_deref() else {
        return Err(OAuthError::invalid_client(
            "this client must authenticate with its client secret",
        )
        .into());
    };
    // A disabled app is refused whatever it asks (its tokens ended when it was
    // disabled); the secret was right, so this is no guessing failure.
    let used = |ctx: Arc<ClientContext>| {
        if ctx.app.status != AppStatus::Active {
            return Err(OAuthError::invalid_client("this app is disabled").into());
        }
        state.usage.record(&ctx.app.client_id, state.clock.now());
        Ok(ctx)
    };
    match state.clients.client_context(&creds.client_id).await {
        Ok(ctx) if secret::verify(presented, &ctx.app.secret_hash) => return used(ctx),
        // The cached secret may be older than one rotated a moment ago elsewhere:
        // check the store before calling it a failure.
        Ok(_) => match state.clients.reload(&creds.client_id).await {
            Ok(ctx) if secret::verify(presented, &ctx.app.secret_hash) => return used(ctx),
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        },
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    failed(state, creds, ip).await
}

/// A failed client authentication: logged (bounded, escaped), counted, and
/// answered 401, or 429 once the client id's or the address's bucket is full.
pub(crate) async fn failed<T>(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<T, HttpError> {
    tracing::info!(client_id = %logged(&creds.client_id), %ip, "client authentication failed");
    match state.limiter.record_failure(ip, &creds.client_id).await {
        Some(wait) => Err(HttpError::Throttled(wait)),
        None => Err(OAuthError::invalid_client("unknown client or wrong client secret").into()),
    }
}

fn respond(set: TokenSet) -> Response {
    let mut body = json!({
        "access_token": set.access_token,
        "token_type": "Bearer",
        "expires_in": set.expires_in,
        "scope": set.scope.to_string(),
    });
    if let Some(rt) = set.refresh_token {
        body["refresh_token"] = rt.into();
    }
    if let Some(id) = set.id_token {
        body["id_token"] = id.into();
    }
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
