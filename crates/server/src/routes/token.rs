//! `POST /connect/token` (RFC 6749 §3.2): the authenticated client's request goes
//! to [`token_endpoint::handle`] in one call; the answer carries
//! `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::discovery::TOKEN_PATH;
use gatehouse_core::request::TokenRequest;
use gatehouse_core::token_endpoint::{self, Issuer, TokenSet};
use serde_json::json;

use crate::client_auth::AuthenticatedClient;
use crate::error::HttpError;
use crate::state::AppState;

/// The introspection endpoint authenticates apps the same way.
pub(crate) use crate::client_auth::{authenticate_app, failed};

pub fn router() -> Router<AppState> {
    Router::new().route(TOKEN_PATH, post(token))
}

async fn token(
    State(state): State<AppState>,
    AuthenticatedClient { client, request }: AuthenticatedClient<TokenRequest>,
) -> Result<Response, HttpError> {
    let policy = state.config.policy();
    let keys = state.keys();
    let issuer = Issuer {
        store: state.store.as_ref(),
        signer: keys.as_ref(),
        policy: &policy,
        now: state.clock.now(),
    };
    let set = token_endpoint::handle(&request, &client, &issuer).await?;
    Ok(respond(set))
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
