//! `GET/POST /connect/userinfo` (OpenID Connect Core §5.3) with RFC 6750 errors.
//! It takes live access tokens (`typ: at+jwt` or reference) that a user granted
//! through the authorization code or refresh token grant with `openid`, whatever
//! API they are for (the userinfo audience by default); machine tokens are
//! `invalid_token` here. Discovery says so (`gatehouse_userinfo_accepts`).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use gatehouse_core::claims::userinfo_claims;
use gatehouse_core::discovery::USERINFO_PATH;
use gatehouse_core::introspect::live_claims;
use gatehouse_core::ports::StoreError;
use gatehouse_core::scope::ScopeSet;

use crate::bearer::{BearerError, BearerRejection, BearerToken, BearerTokenOrForm};
use crate::error::HttpError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(USERINFO_PATH, get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = match dpop_token(&headers) {
        Some(t) => Presented::Dpop(t),
        None => match BearerToken::from_headers(&headers) {
            Some(t) => Presented::Bearer(t),
            None => return BearerError::missing().into_response(),
        },
    };
    userinfo(&state, &headers, "GET", presented).await
}

async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    token: Result<BearerTokenOrForm, BearerRejection>,
) -> Response {
    let presented = match (dpop_token(&headers), token) {
        (Some(t), _) => Presented::Dpop(t),
        (None, Ok(BearerTokenOrForm(t))) => Presented::Bearer(t),
        (None, Err(e)) => return e.into_response(),
    };
    userinfo(&state, &headers, "POST", presented).await
}

/// How the token came: RFC 6750 or RFC 9449 §7.1 (`Authorization: DPoP …`).
enum Presented {
    Bearer(BearerToken),
    Dpop(String),
}

/// The token of an `Authorization: DPoP <token>` header.
fn dpop_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("dpop")
        .then(|| token.trim().to_owned())
}

/// RFC 9449 §7.1: a refused proof, or a bound token without one.
fn dpop_refusal(error: &str, description: &str) -> Response {
    let body = crate::error::oauth_error_body(error, description);
    let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    let challenge = format!(
        r#"DPoP error="{error}", error_description="{description}", algs="{}""#,
        gatehouse_core::dpop::ALGS_LIST
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

const INVALID: &str = "the access token is expired, revoked or invalid";

async fn userinfo(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    presented: Presented,
) -> Response {
    let (token, dpop) = match &presented {
        Presented::Bearer(t) => (t.as_str(), false),
        Presented::Dpop(t) => (t.as_str(), true),
    };
    let claims = match live_claims(
        token,
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
    // RFC 9449 §7.1: a bound token comes with a proof of its key, and only so.
    match (&claims.cnf, dpop) {
        (Some(cnf), true) => {
            if let Err(e) = state.resource_proof(headers, method, USERINFO_PATH, token, &cnf.jkt) {
                return dpop_refusal(e.code(), &e.to_string());
            }
        }
        (Some(_), false) => {
            return dpop_refusal(
                "invalid_token",
                "this token is DPoP-bound: send it as `Authorization: DPoP` with a proof",
            );
        }
        (None, true) => {
            return dpop_refusal("invalid_token", "this token is not DPoP-bound");
        }
        (None, false) => {}
    }
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
