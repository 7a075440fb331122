//! `GET/POST /connect/userinfo` (OpenID Connect Core §5.3) with RFC 6750 errors.
//! It takes live access tokens (`typ: at+jwt` or reference) that a user granted
//! through the authorization code or refresh token grant with `openid`, whatever
//! API they are for (the userinfo audience by default); machine tokens are
//! `invalid_token` here. Discovery says so (`gatehouse_userinfo_accepts`).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use gatehouse_core::claims::userinfo_claims;
use gatehouse_core::discovery::USERINFO_PATH;
use gatehouse_core::introspect::live_claims;
use gatehouse_core::ports::StoreError;
use gatehouse_core::scope::ScopeSet;

use crate::bearer::{BearerError, BearerToken, BearerTokenOrForm};
use crate::error::HttpError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(USERINFO_PATH, get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(State(state): State<AppState>, token: BearerToken) -> Response {
    userinfo(&state, token).await
}

async fn userinfo_post(
    State(state): State<AppState>,
    BearerTokenOrForm(token): BearerTokenOrForm,
) -> Response {
    userinfo(&state, token).await
}

const INVALID: &str = "the access token is expired, revoked or invalid";

async fn userinfo(state: &AppState, token: BearerToken) -> Response {
    let claims = match live_claims(
        token.as_str(),
        state.clock.now(),
        state.keys().as_ref(),
        state.store.as_ref(),
        &state.clients,
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return BearerError::invalid_token(INVALID).into_response(),
        Err(e) => return HttpError::from(e).into_response(),
    };
    // Only a token a user granted (authorization code, refresh) speaks for that
    // user: a client credentials token, for whatever API, is not a userinfo token.
    if claims.gid.is_none() {
        return BearerError::invalid_token(
            "userinfo accepts only access tokens a user granted (authorization code or refresh token)",
        )
        .into_response();
    }
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return BearerError::insufficient_scope(
            "openid",
            "userinfo needs a user's token with the openid scope",
        )
        .into_response();
    }
    match state.store.user_by_id(&claims.sub).await {
        Ok(user) => {
            let mut r = Json(userinfo_claims(&user, &scope)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(StoreError::NotFound) => {
            BearerError::invalid_token("the user no longer exists").into_response()
        }
        Err(e) => HttpError::from(e).into_response(),
    }
}
