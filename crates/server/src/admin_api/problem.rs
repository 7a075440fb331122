//! Errors of the admin API as `application/problem+json` (RFC 9457): one enum,
//! one exhaustive mapping to a status. Validation names the field; the store down
//! is 503 with `Retry-After`; anything unexpected is 500 with a correlation id
//! that is also logged (the detail itself never reaches the client). Every
//! problem carries the request's id as `correlation_id`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::admin::AdminError;
use gatehouse_core::ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The request field at fault (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's id (also its `x-request-id`): quote it when reporting a
    /// problem; the same id is on every log line of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

#[derive(Debug)]
pub enum ApiError {
    /// Malformed JSON, wrong content type, bad query string.
    BadRequest(String),
    /// The body is larger than the limit (bytes).
    TooLarge(usize),
    /// Well-formed but invalid input.
    Invalid {
        field: String,
        message: String,
    },
    /// The caller may not do this (missing permission).
    Forbidden(String),
    /// Unknown here, or another organization's.
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            AdminError::Invalid { field, message } => ApiError::invalid(field, message),
            AdminError::Conflict(what) => ApiError::Conflict(what),
            AdminError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
            StoreError::Internal(why) => ApiError::Internal(why),
        }
    }
}

/// A problem response with its content type, and `no-store`: admin answers are
/// never cached.
pub fn problem_response(status: StatusCode, problem: Problem) -> Response {
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn problem(status: StatusCode, detail: String, field: Option<String>) -> Problem {
    Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        field,
        correlation_id: crate::request_id::current(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail, field) = match self {
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, d, None),
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
                None,
            ),
            ApiError::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: {message}"),
                Some(field),
            ),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, d, None),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, d, None),
            ApiError::Conflict(d) => (StatusCode::CONFLICT, d, None),
            ApiError::Unavailable(why) => {
                tracing::warn!(reason = %why, "store unavailable");
                let mut r = problem_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the service is temporarily unavailable; retry shortly".into(),
                        None,
                    ),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                return r;
            }
            ApiError::Internal(why) => return internal(&why),
        };
        problem_response(status, problem(status, detail, field))
    }
}

fn internal(why: &str) -> Response {
    let id = crate::request_id::current_or_new();
    tracing::error!(correlation_id = %id, error = %why, "internal error in the admin API");
    let status = StatusCode::INTERNAL_SERVER_ERROR;
    let mut p = problem(
        status,
        format!("an unexpected error occurred; quote correlation id {id}"),
        None,
    );
    p.correlation_id = Some(id.clone());
    let mut r = problem_response(status, p);
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-correlation-id", v);
    }
    r
}
