//! `POST /connect/revocation` (RFC 7009). A refresh token takes its whole family
//! (the grant) and the access tokens issued from it; an access token ends alone.
//! Unknown tokens get 200 too (§2.2): the answer reveals nothing.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gatehouse_core::discovery::REVOCATION_PATH;
use gatehouse_core::introspect::verified_claims;
use gatehouse_core::model::ChangeKind;
use gatehouse_core::ports::StoreError;
use gatehouse_core::{OAuthError, secret};

use crate::client_addr::ClientAddr;
use crate::error::HttpError;
use crate::extract::{ClientCredentials, OAuthForm};
use crate::routes::token::authenticate_app;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(REVOCATION_PATH, post(revoke))
}

async fn revoke(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, HttpError> {
    let creds = ClientCredentials::from_request(&headers, &form)?;
    let token = form.require("token")?.to_owned();
    let client = authenticate_app(&state, &creds, ip).await?;
    let me = client.app.client_id.as_str();
    let now = state.clock.now();
    let not_yours = || {
        HttpError::OAuth(OAuthError::unauthorized_client(
            "the token was not issued to this client",
        ))
    };
    // Try the hinted type first; fall back to the other (§2.1).
    let refresh_first = form.get("token_type_hint") != Some("access_token");
    for kind in if refresh_first {
        [true, false]
    } else {
        [false, true]
    } {
        if kind {
            match state.store.refresh_token(&secret::digest(&token)).await {
                Ok(rt) if rt.client_id == me => {
                    state.store.revoke_grant(&rt.grant_id, now).await?;
                    // Seen by this instance's caches at once, hint or not.
                    state.clients.invalidate(ChangeKind::Grant, &rt.grant_id);
                    return Ok(done());
                }
                Ok(_) => return Err(not_yours()),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        } else if let Some(claims) =
            verified_claims(&token, state.keys().as_ref(), state.store.as_ref()).await?
        {
            if claims.client_id != me {
                return Err(not_yours());
            }
            state
                .store
                .revoke_access_token(&claims.jti, &client.app.org_id, claims.exp, now)
                .await?;
            state.clients.invalidate(ChangeKind::Token, &claims.jti);
            return Ok(done());
        }
    }
    Ok(done())
}

fn done() -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
