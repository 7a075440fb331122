//! The one mapping from outcomes to HTTP responses. Every arm is explicit (no
//! catch-all), so adding an error forces a decision about its status.
//!
//! - OAuth errors: RFC 6749 §5.2 JSON; `invalid_client` is 401 with a Basic
//!   challenge (required when the header was used, and HTTP requires a challenge
//!   on every 401);
//! - throttling: 429, the store unavailable: 503, both with `Retry-After`;
//! - anything unexpected: 500 with a correlation id that is also logged.
//!
//! Every JSON error carries the request's id as `correlation_id`
//! ([`crate::request_id`]).

use std::any::Any;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::ports::StoreError;
use gatehouse_core::{ErrorCode, OAuthError};
use serde_json::json;

use crate::metrics::StoreFailure;
use crate::ratelimit::RetryAfter;

#[derive(Debug)]
pub enum HttpError {
    OAuth(OAuthError),
    /// The request body exceeded the limit.
    TooLarge(usize),
    Throttled(RetryAfter),
    Unavailable(String),
    Internal(String),
    /// The store failed underneath: answered as `Unavailable` or `Internal`,
    /// and counted by kind in the metrics.
    Store(StoreError),
}

impl From<OAuthError> for HttpError {
    fn from(e: OAuthError) -> Self {
        HttpError::OAuth(e)
    }
}

impl From<gatehouse_core::token_endpoint::TokenError> for HttpError {
    fn from(e: gatehouse_core::token_endpoint::TokenError) -> Self {
        use gatehouse_core::token_endpoint::TokenError;
        match e {
            TokenError::OAuth(o) => HttpError::OAuth(o),
            TokenError::Store(s) => s.into(),
            TokenError::Mint(m) => HttpError::Internal(m.to_string()),
        }
    }
}

impl From<gatehouse_core::par::PushError> for HttpError {
    fn from(e: gatehouse_core::par::PushError) -> Self {
        use gatehouse_core::par::PushError;
        match e {
            PushError::OAuth(o) => HttpError::OAuth(o),
            PushError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        HttpError::Store(e)
    }
}

fn oauth_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidGrant
        | ErrorCode::UnauthorizedClient
        | ErrorCode::UnsupportedGrantType
        | ErrorCode::InvalidScope
        | ErrorCode::InvalidTarget
        | ErrorCode::UnsupportedResponseType
        | ErrorCode::UnsupportedTokenType
        | ErrorCode::LoginRequired
        | ErrorCode::ConsentRequired
        | ErrorCode::InteractionRequired
        | ErrorCode::RequestNotSupported
        | ErrorCode::RequestUriNotSupported
        // RFC 8628 §3.5: the device's polling answers are RFC 6749 §5.2 errors (400).
        | ErrorCode::AccessDenied
        | ErrorCode::AuthorizationPending
        | ErrorCode::SlowDown
        | ErrorCode::ExpiredToken => StatusCode::BAD_REQUEST,
    }
}

/// RFC 6749 §5.2's members, plus the request's id as `correlation_id` (extra
/// members are allowed) so any error can be found in the log.
fn body(code: &str, description: &str) -> Json<serde_json::Value> {
    Json(oauth_error_body(code, description))
}

/// The JSON of an OAuth error, for every surface that answers one.
pub fn oauth_error_body(code: &str, description: &str) -> serde_json::Value {
    let mut body = json!({ "error": code, "error_description": description });
    if let Some(id) = crate::request_id::current() {
        body["correlation_id"] = id.into();
    }
    body
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = match self {
            HttpError::OAuth(e) => {
                let mut r =
                    (oauth_status(e.code), body(e.code.as_str(), &e.description)).into_response();
                if e.code == ErrorCode::InvalidClient {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"gatehouse\", charset=\"UTF-8\""),
                    );
                }
                r
            }
            HttpError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    "invalid_request",
                    &format!("the request body is larger than {limit} bytes"),
                ),
            )
                .into_response(),
            HttpError::Throttled(RetryAfter(secs)) => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    body(
                        "temporarily_unavailable",
                        &format!("too many failed client authentications; retry in {secs} s"),
                    ),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                r
            }
            HttpError::Unavailable(why) => unavailable(&why),
            HttpError::Internal(why) => internal(&why),
            HttpError::Store(e) => {
                let (mut r, kind) = match e {
                    StoreError::Unavailable(why) => {
                        (unavailable(&why), crate::metrics::STORE_UNAVAILABLE)
                    }
                    StoreError::NotFound | StoreError::Conflict(_) | StoreError::Internal(_) => {
                        (internal(&e.to_string()), crate::metrics::STORE_INTERNAL)
                    }
                };
                r.extensions_mut().insert(StoreFailure(kind));
                r
            }
        };
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp.headers_mut()
            .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        resp
    }
}

/// 503 with `Retry-After`: the store is unreachable or overloaded.
fn unavailable(why: &str) -> Response {
    tracing::warn!(reason = %why, "store unavailable");
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        body(
            "temporarily_unavailable",
            "the service is temporarily unavailable; retry shortly",
        ),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

/// 500: the request's id is the correlation id, in the log line, the body and
/// `x-correlation-id` (kept for clients that read it; equal to `x-request-id`).
fn internal(why: &str) -> Response {
    let id = crate::request_id::current_or_new();
    tracing::error!(correlation_id = %id, error = %why, "internal error");
    let mut r = (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({
            "error": "server_error",
            "error_description": format!("an unexpected error occurred; quote correlation id {id}"),
            "correlation_id": id,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-correlation-id", v);
    }
    r
}

/// A handler panicked: answer 500 like any internal error, never drop the connection.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    internal(&format!("handler panicked: {what}"))
}
