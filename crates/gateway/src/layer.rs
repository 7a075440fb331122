//! The HTTP face of validation: bearer-token extraction (RFC 6750 §2.1), the
//! answers when a token is refused (§3: 401 `invalid_token`, 403
//! `insufficient_scope`; 503 when the gateway cannot vouch for a token), a tower
//! [`Layer`] that guards any service, and the [`Principal`] axum extractor.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::dpop::{self, ProofError};
use serde_json::json;
use tower::{Layer, Service};

use crate::principal::Principal;
use crate::request_id::with_correlation_id;
use crate::validator::Validator;
use crate::verify::TokenError;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a usable bearer credential (another scheme, several headers, junk).
    BadHeader,
    Invalid(TokenError),
    /// The token is good but lacks this scope.
    InsufficientScope(String),
    /// The gateway cannot decide now (issuer unreachable, feed lost too long).
    Unavailable(&'static str),
    /// A DPoP-bound token without a good proof of its key (RFC 9449 §7.1).
    Dpop(ProofError),
    /// A DPoP-bound token sent as a bearer token (§7.2), or an unbound one as DPoP.
    Binding(&'static str),
}

impl Rejection {
    /// A fixed word for the refusal (the metrics' `outcome` label).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Missing => "missing_token",
            Rejection::BadHeader => "bad_authorization_header",
            Rejection::Invalid(e) => e.reason(),
            Rejection::InsufficientScope(_) => "insufficient_scope",
            Rejection::Unavailable(_) => "unavailable",
            Rejection::Dpop(e) => e.reason(),
            Rejection::Binding(_) => "dpop_binding",
        }
    }

    fn description(&self) -> String {
        match self {
            Rejection::Missing => "no bearer token in the Authorization header".into(),
            Rejection::BadHeader => "the Authorization header must be one `Bearer <token>`".into(),
            Rejection::Invalid(e) => e.to_string(),
            Rejection::InsufficientScope(s) => format!("the `{s}` scope is required"),
            Rejection::Unavailable(why) => (*why).into(),
            Rejection::Dpop(e) => e.to_string(),
            Rejection::Binding(why) => (*why).into(),
        }
    }

    /// The RFC 6750 answer, with `realm` in the challenge.
    pub fn into_response_for(self, realm: &str) -> Response {
        let description = self.description().replace(['"', '\\'], "'");
        let (status, error, scope) = match &self {
            Rejection::Unavailable(_) => {
                let mut resp = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(with_correlation_id(json!({"error": "temporarily_unavailable", "error_description": description}))),
                )
                    .into_response();
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            }
            Rejection::InsufficientScope(s) => {
                (StatusCode::FORBIDDEN, "insufficient_scope", Some(s.clone()))
            }
            // RFC 6750 §3.1: a request with no credentials gets no error code.
            Rejection::Missing => return missing_token(realm, &description),
            Rejection::Dpop(e) => return dpop_challenge(realm, e.code(), &description),
            Rejection::Binding(_) => return dpop_challenge(realm, "invalid_token", &description),
            _ => (StatusCode::UNAUTHORIZED, "invalid_token", None),
        };
        let realm = realm.replace(['"', '\\'], "'");
        let mut challenge = format!(
            r#"Bearer realm="{realm}", error="{error}", error_description="{description}""#
        );
        let mut body = json!({"error": error, "error_description": description});
        if let Some(s) = scope {
            challenge.push_str(&format!(r#", scope="{s}""#));
            body["scope"] = s.into();
        }
        let mut resp = (status, axum::Json(with_correlation_id(body))).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn missing_token(realm: &str, description: &str) -> Response {
    let realm = realm.replace(['"', '\\'], "'");
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(with_correlation_id(
            json!({"error_description": description}),
        )),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(r#"Bearer realm="{realm}""#)) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// RFC 9449 §7.1: a `DPoP` challenge naming the accepted proof algorithms.
fn dpop_challenge(realm: &str, error: &str, description: &str) -> Response {
    let realm = realm.replace(['"', '\\'], "'");
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(with_correlation_id(
            json!({"error": error, "error_description": description}),
        )),
    )
        .into_response();
    let challenge = format!(
        r#"DPoP realm="{realm}", error="{error}", error_description="{description}", algs="{}""#,
        dpop::ALGS_LIST
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The access token of a request and whether it came as `DPoP` (RFC 9449 §7.1)
/// rather than `Bearer` (RFC 6750 §2.1); schemes are case-insensitive.
pub fn access_token(headers: &HeaderMap) -> Result<(&str, bool), Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Rejection::Missing)?;
    if values.next().is_some() {
        return Err(Rejection::BadHeader);
    }
    let value = value.to_str().map_err(|_| Rejection::BadHeader)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::BadHeader)?;
    let dpop = if scheme.eq_ignore_ascii_case("bearer") {
        false
    } else if scheme.eq_ignore_ascii_case("dpop") {
        true
    } else {
        return Err(Rejection::BadHeader);
    };
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(Rejection::BadHeader);
    }
    Ok((token, dpop))
}

/// The bearer token of a request (RFC 6750 §2.1); the scheme is case-insensitive.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Rejection::Missing)?;
    if values.next().is_some() {
        return Err(Rejection::BadHeader);
    }
    let value = value.to_str().map_err(|_| Rejection::BadHeader)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::BadHeader)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::BadHeader);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(Rejection::BadHeader);
    }
    Ok(token)
}

impl Validator {
    /// Validates the request's access token (a bound one with its DPoP proof
    /// for `method` and `uri`) and checks it holds every scope of `required`.
    pub async fn authorize(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        required: &[String],
    ) -> Result<Principal, Rejection> {
        let (token, dpop) = access_token(headers)?;
        let principal = self.validate(token).await?;
        match (&principal.dpop_jkt, dpop) {
            (Some(jkt), true) => self.check_proof(method, uri, headers, token, jkt)?,
            (Some(_), false) => {
                return Err(Rejection::Binding(
                    "this token is DPoP-bound: send it as `Authorization: DPoP` with a proof",
                ));
            }
            (None, true) => return Err(Rejection::Binding("this token is not DPoP-bound")),
            (None, false) => {}
        }
        if let Some(missing) = principal.missing_scope(required) {
            return Err(Rejection::InsufficientScope(missing.to_owned()));
        }
        Ok(principal)
    }

    /// A tower layer that lets through only requests with a valid token holding
    /// `required` scopes, and puts the [`Principal`] in the request extensions.
    pub fn layer(&self, required: &[&str]) -> RequireToken {
        RequireToken {
            validator: self.clone(),
            required: required.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// See [`Validator::layer`].
#[derive(Clone)]
pub struct RequireToken {
    validator: Validator,
    required: Arc<[String]>,
}

impl<S> Layer<S> for RequireToken {
    type Service = RequireTokenService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireTokenService {
            inner,
            guard: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequireTokenService<S> {
    inner: S,
    guard: RequireToken,
}

impl<S> Service<Request> for RequireTokenService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone is the one that was polled ready (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            match guard
                .validator
                .authorize(req.method(), req.uri(), req.headers(), &guard.required)
                .await
            {
                Ok(p) => {
                    req.extensions_mut().insert(p);
                    inner.call(req).await
                }
                Err(r) => Ok(r.into_response_for(guard.validator.realm())),
            }
        })
    }
}

/// In a handler behind [`RequireToken`] (or the gateway): the caller.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Rejection::Missing.into_response_for("api"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_follows_rfc_6750() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Err(Rejection::Missing));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&h), Ok("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), Err(Rejection::BadHeader));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(bearer_token(&h), Err(Rejection::BadHeader));
    }

    #[test]
    fn refusals_carry_the_challenge() {
        let r = Rejection::InsufficientScope("cfgateway".into()).into_response_for("gw");
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="gw", error="insufficient_scope", error_description="the `cfgateway` scope is required", scope="cfgateway""#
        );
        let r = Rejection::Invalid(TokenError::Expired).into_response_for("gw");
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        let r = Rejection::Missing.into_response_for("gw");
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="gw""#
        );
        let r = Rejection::Unavailable("down").into_response_for("gw");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
