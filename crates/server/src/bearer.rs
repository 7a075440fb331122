//! RFC 6750 bearer tokens: [`BearerToken`] takes the access token from the
//! `Authorization` header (§2.1) or, on routes that accept it, from the form body
//! ([`BearerTokenOrForm`], §2.2); [`BearerError`] is the one error type of every
//! bearer-protected resource, and the one place its `WWW-Authenticate` challenge
//! (§3) is built. It parses HTTP only: whether a token is live is core's question.
//!
//! The body differs by surface (userinfo answers RFC 6749 JSON, the admin API a
//! problem document), so [`BearerError`] renders the JSON form itself and gives
//! the admin API its status, description and challenge to wrap.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::form::Form;

/// The challenge's `realm` (RFC 6750 §3).
const REALM: &str = "gatehouse";

/// An access token sent as `Authorization: Bearer <token>` (RFC 6750 §2.1).
/// Deliberately no `Debug`: it is a credential.
pub struct BearerToken(pub String);

impl BearerToken {
    /// The token of an `Authorization: Bearer …` header (the scheme is
    /// case-insensitive, RFC 7235 §2.1); `None` without one.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| Self(token.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = BearerError;

    #[tracing::instrument(level = "debug", skip_all)]
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, BearerError> {
        Self::from_headers(&parts.headers).ok_or_else(BearerError::missing)
    }
}

/// The token from the header or from an `access_token` form parameter (RFC 6750
/// §2.2), for routes that accept the latter; sending it both ways is
/// `invalid_request` (§2: "MUST NOT use more than one method").
pub struct BearerTokenOrForm(pub BearerToken);

/// Why [`BearerTokenOrForm`] refused: the body could not be read, or RFC 6750.
pub enum BearerRejection {
    Body(Response),
    Bearer(BearerError),
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        match self {
            BearerRejection::Body(r) => r,
            BearerRejection::Bearer(e) => e.into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for BearerTokenOrForm {
    type Rejection = BearerRejection;

    #[tracing::instrument(level = "debug", skip_all)]
    async fn from_request(req: Request, state: &S) -> Result<Self, BearerRejection> {
        let in_header = BearerToken::from_headers(req.headers());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| BearerRejection::Body(e.into_response()))?;
        let in_body = Form::parse(&body)
            .ok()
            .and_then(|f| f.get("access_token").map(|t| BearerToken(t.to_owned())));
        match (in_header, in_body) {
            (Some(_), Some(_)) => Err(BearerRejection::Bearer(BearerError::invalid_request(
                "send the token once",
            ))),
            (Some(t), None) | (None, Some(t)) => Ok(Self(t)),
            (None, None) => Err(BearerRejection::Bearer(BearerError::missing())),
        }
    }
}

/// The error codes of RFC 6750 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerErrorCode {
    /// 400: a malformed request (e.g. the token sent twice).
    InvalidRequest,
    /// 401: expired, revoked, malformed or otherwise invalid.
    InvalidToken,
    /// 403: valid, but without the scope the resource needs.
    InsufficientScope,
}

impl BearerErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }
}

/// A bearer-protected resource refused the request (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerError {
    /// `None` when no token was sent: §3.1 says the challenge then carries no
    /// error code.
    pub code: Option<BearerErrorCode>,
    pub description: &'static str,
    /// The scope the resource needs, named in `insufficient_scope` challenges.
    pub scope: Option<&'static str>,
}

impl BearerError {
    /// No token at all: 401 with a bare challenge.
    pub fn missing() -> Self {
        Self {
            code: None,
            description: "an access token is required",
            scope: None,
        }
    }

    pub fn invalid_request(description: &'static str) -> Self {
        Self::coded(BearerErrorCode::InvalidRequest, description)
    }

    pub fn invalid_token(description: &'static str) -> Self {
        Self::coded(BearerErrorCode::InvalidToken, description)
    }

    /// The token lacks `scope`, which the challenge names.
    pub fn insufficient_scope(scope: &'static str, description: &'static str) -> Self {
        Self {
            scope: Some(scope),
            ..Self::coded(BearerErrorCode::InsufficientScope, description)
        }
    }

    fn coded(code: BearerErrorCode, description: &'static str) -> Self {
        Self {
            code: Some(code),
            description,
            scope: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code
            .map_or(StatusCode::UNAUTHORIZED, BearerErrorCode::status)
    }

    /// `Bearer realm="gatehouse"[, error="…", error_description="…"[, scope="…"]]`.
    pub fn challenge(&self) -> HeaderValue {
        let mut value = format!("Bearer realm=\"{REALM}\"");
        if let Some(code) = self.code {
            value.push_str(&format!(
                ", error=\"{}\", error_description=\"{}\"",
                code.as_str(),
                quotable(self.description)
            ));
            if let Some(scope) = self.scope {
                value.push_str(&format!(", scope=\"{}\"", quotable(scope)));
            }
        }
        // Every character is printable ASCII (see `quotable`), so this cannot fail.
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
    }

    /// Puts the challenge on `resp` (a body built by the surface).
    pub fn challenge_on(&self, mut resp: Response) -> Response {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge());
        resp
    }
}

/// RFC 6750 §3: `error_description` and `scope` values are quoted strings of
/// %x20-21 / %x23-5B / %x5D-7E: anything else becomes `?`.
fn quotable(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '?',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// The RFC 6749-style JSON body (`error`, `error_description`) with the challenge.
/// Without a token the body still says what is missing, as `invalid_request`.
impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let code = self.code.unwrap_or(BearerErrorCode::InvalidRequest);
        let body = crate::error::oauth_error_body(code.as_str(), self.description);
        self.challenge_on((self.status(), Json(body)).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_other_schemes_are_no_token() {
        assert_eq!(
            BearerToken::from_headers(&headers("bEaReR abc")).unwrap().0,
            "abc"
        );
        assert!(BearerToken::from_headers(&headers("Basic abc")).is_none());
        assert!(BearerToken::from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn challenges_follow_rfc6750_section_3() {
        assert_eq!(
            BearerError::missing().challenge(),
            "Bearer realm=\"gatehouse\""
        );
        assert_eq!(BearerError::missing().status(), 401);
        let e = BearerError::insufficient_scope("openid", "needs \"openid\"");
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.challenge(),
            "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", \
             error_description=\"needs ?openid?\", scope=\"openid\""
        );
        assert_eq!(BearerError::invalid_request("x").status(), 400);
        assert_eq!(
            BearerError::invalid_token("gone…")
                .challenge()
                .to_str()
                .unwrap(),
            "Bearer realm=\"gatehouse\", error=\"invalid_token\", error_description=\"gone?\""
        );
    }
}
