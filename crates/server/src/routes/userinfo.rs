//! `GET/POST /connect/userinfo` (OpenID Connect Core §5.3) with RFC 6750 errors.
//! It takes live access tokens (`typ: at+jwt` or reference) that a user granted
//! through the authorization code or refresh token grant with `openid`, whatever
//! API they are for (the userinfo audience by default); machine tokens are
//! `invalid_token` here. Discovery says so (`gatehouse_userinfo_accepts`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use gatehouse_core::discovery::USERINFO_PATH;
use gatehouse_core::form::Form;
use gatehouse_core::id_token::user_claims;
use gatehouse_core::introspect::live_claims;
use gatehouse_core::ports::StoreError;
use gatehouse_core::scope::ScopeSet;

use crate::error::HttpError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(USERINFO_PATH, get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&state, bearer(&headers)).await
}

async fn userinfo_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // RFC 6750 §2.2: the token may come in a form body instead of the header.
    let from_body = Form::parse(&body)
        .ok()
        .and_then(|f| f.get("access_token").map(str::to_owned));
    match (bearer(&headers), from_body) {
        (Some(_), Some(_)) => challenge(
            StatusCode::BAD_REQUEST,
            Some(("invalid_request", "send the token once")),
        ),
        (Some(t), None) | (None, Some(t)) => userinfo(&state, Some(t)).await,
        (None, None) => userinfo(&state, None).await,
    }
}

/// The token from `Authorization: Bearer …`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn userinfo(state: &AppState, token: Option<String>) -> Response {
    let Some(token) = token else {
        return challenge(StatusCode::UNAUTHORIZED, None);
    };
    let claims = match live_claims(
        &token,
        state.clock.now(),
        state.keys().as_ref(),
        state.store.as_ref(),
        &state.clients,
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some((
                    "invalid_token",
                    "the access token is expired, revoked or invalid",
                )),
            );
        }
        Err(e) => return HttpError::from(e).into_response(),
    };
    // Only a token a user granted (authorization code, refresh) speaks for that
    // user: a client credentials token, for whatever API, is not a userinfo token.
    if claims.gid.is_none() {
        return challenge(
            StatusCode::UNAUTHORIZED,
            Some((
                "invalid_token",
                "userinfo accepts only access tokens a user granted (authorization code or refresh token)",
            )),
        );
    }
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "userinfo needs a user's token with the openid scope",
            )),
        );
    }
    match state.store.user_by_id(&claims.sub).await {
        Ok(user) => {
            let mut r = Json(user_claims(&user, &scope)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(StoreError::NotFound) => challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", "the user no longer exists")),
        ),
        Err(e) => HttpError::from(e).into_response(),
    }
}

/// RFC 6750 §3: `WWW-Authenticate: Bearer realm=…, error=…, error_description=…`.
pub fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let mut value = String::from("Bearer realm=\"gatehouse\"");
    if let Some((code, desc)) = error {
        value.push_str(&format!(", error=\"{code}\", error_description=\"{desc}\""));
        if code == "insufficient_scope" {
            value.push_str(", scope=\"openid\"");
        }
    }
    let body = match error {
        Some((code, desc)) => serde_json::json!({"error": code, "error_description": desc}),
        None => {
            serde_json::json!({"error": "invalid_request", "error_description": "an access token is required"})
        }
    };
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}
