//! `POST /connect/token` (RFC 6749 §3.2): the authenticated client's request goes
//! to [`token_endpoint::handle`] in one call; the answer carries
//! `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::discovery::TOKEN_PATH;
use gatehouse_core::introspect::LiveTokens;
use gatehouse_core::request::{TOKEN_TYPE_ACCESS_TOKEN, TokenRequest};
use gatehouse_core::token_endpoint::{self, Issuer, TokenSet};

use crate::client_auth::AuthenticatedClient;
use crate::error::HttpError;
use crate::state::AppState;

/// The introspection endpoint authenticates apps the same way.
pub(crate) use crate::client_auth::{authenticate_app, failed};

pub fn router() -> Router<AppState> {
    Router::new().route(TOKEN_PATH, post(token))
}

/// Also served at [`crate::routes::OAUTH_TOKEN_PATH`] (lib.rs).
pub(crate) async fn token(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    AuthenticatedClient {
        client,
        request,
        secret_id,
    }: AuthenticatedClient<TokenRequest>,
) -> Result<Response, HttpError> {
    // RFC 9449 §5: a proof binds what is issued now to its key.
    let jkt = match state.token_request_key(&headers, uri.path()) {
        Ok(None) if client.app.require_dpop => {
            let refused = crate::dpop::TokenEndpointRefusal {
                error: gatehouse_core::dpop::ProofError::Missing,
                nonce: state.dpop_nonce(),
            };
            return Ok(refused.into_response());
        }
        Ok(jkt) => jkt,
        Err(refused) => return Ok(refused.into_response()),
    };
    let policy = state.config.policy();
    let keys = state.keys();
    let issuer = Issuer {
        store: state.store.as_ref(),
        signer: keys.as_ref(),
        policy: &policy,
        now: state.clock.now(),
        secret_id: secret_id.as_deref(),
        dpop_jkt: jkt.as_deref(),
    };
    // A token exchange presents tokens, read as introspection reads them.
    let tokens = LiveTokens {
        signer: keys.as_ref(),
        store: state.store.as_ref(),
        contexts: &state.clients,
    };
    let set = token_endpoint::handle(&request, &client, &issuer, &tokens).await?;
    state.usage.issued(&client.app.client_id, issuer.now);
    state.metrics.record_token(&request, &client, &set.scope);
    let exchanged = matches!(request, TokenRequest::TokenExchange(_));
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    let mut resp = respond(
        set,
        exchanged.then_some(TOKEN_TYPE_ACCESS_TOKEN),
        token_type,
    );
    // §8: the next nonce, for the client's next proof.
    if let Some(n) = state
        .dpop_nonce()
        .and_then(|n| HeaderValue::from_str(&n).ok())
    {
        resp.headers_mut().insert("dpop-nonce", n);
    }
    Ok(resp)
}

/// The RFC 6749 §5.1 answer (with RFC 8693 §2.2.1's `issued_token_type` for a
/// token exchange). Fields in alphabetical order, as the `json!` object this
/// replaces wrote them (a struct serialises without building a map).
#[derive(serde::Serialize)]
struct Answer {
    access_token: String,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    token_type: &'static str,
}

fn respond(
    set: TokenSet,
    issued_token_type: Option<&'static str>,
    token_type: &'static str,
) -> Response {
    let body = Answer {
        access_token: set.access_token,
        expires_in: set.expires_in,
        id_token: set.id_token,
        issued_token_type,
        refresh_token: set.refresh_token,
        scope: set.scope.to_string(),
        token_type,
    };
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
