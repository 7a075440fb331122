//! Extractors: HTTP parsing only, no protocol decisions.
//!
//! - [`OAuthForm`]: a bounded, strictly parsed `application/x-www-form-urlencoded`
//!   UTF-8 body (repeated parameters refused by `gatehouse_core::form`);
//! - [`ClientCredentials`]: client authentication as presented, by HTTP Basic with
//!   form-encoded id and secret (RFC 6749 §2.3.1) or in the body, never both;
//!   a client id longer than [`MAX_CLIENT_ID`] is refused here. Verifying them
//!   is [`crate::client_auth`]'s.
//!
//! The client's address is [`crate::client_addr::ClientAddr`].

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use gatehouse_core::OAuthError;
use gatehouse_core::basic_auth::parse_basic;
use gatehouse_core::client_assertion::{self, ASSERTION_TYPE_JWT_BEARER, MAX_ASSERTION_LEN};
use gatehouse_core::form::Form;
use gatehouse_core::limits::{MAX_CLIENT_ID, logged};

use crate::error::HttpError;
use crate::state::AppState;

pub struct OAuthForm(pub Form);

impl FromRequest<AppState> for OAuthForm {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, HttpError> {
        check_content_type(req.headers())?;
        let limit = state.config.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit");
                if too_large {
                    HttpError::TooLarge(limit)
                } else {
                    HttpError::OAuth(OAuthError::invalid_request(
                        "the request body could not be read",
                    ))
                }
            })?;
        Ok(OAuthForm(Form::parse(&bytes)?))
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let wrong = || {
        HttpError::OAuth(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded in UTF-8 (RFC 6749 §3.2)",
        ))
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(wrong)?;
    let mut parts = ct.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    {
        return Err(wrong());
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(wrong());
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    /// `private_key_jwt` (RFC 7523 §2.2): a signed assertion in the body.
    PrivateKeyJwt,
}

/// Client credentials as presented; the secret and assertion are never logged.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: AuthMethod,
    /// The `client_assertion` of [`AuthMethod::PrivateKeyJwt`].
    pub assertion: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &logged(&self.client_id))
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn from_request(headers: &HeaderMap, form: &Form) -> Result<Self, OAuthError> {
        Self::from_parts(headers.get(header::AUTHORIZATION), form)
    }

    /// From the `Authorization` header's value (if any) and the form.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn from_parts(
        authorization: Option<&HeaderValue>,
        form: &Form,
    ) -> Result<Self, OAuthError> {
        let creds = Self::presented(authorization, form)?;
        // No real client id is this long: refuse it before it is looked up,
        // counted or logged.
        if creds.client_id.len() > MAX_CLIENT_ID {
            return Err(OAuthError::invalid_client(format!(
                "the client id is longer than {MAX_CLIENT_ID} bytes"
            )));
        }
        Ok(creds)
    }

    fn presented(authorization: Option<&HeaderValue>, form: &Form) -> Result<Self, OAuthError> {
        if form.get("client_assertion_type").is_some() || form.get("client_assertion").is_some() {
            return Self::assertion(authorization, form);
        }
        let basic = match authorization {
            Some(v) => Some(parse_basic(v.as_bytes())?),
            None => None,
        };
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        match basic {
            Some((id, secret)) => {
                if body_secret.is_some() {
                    return Err(OAuthError::invalid_request(
                        "client credentials were sent both in the Authorization header and in the body; use one",
                    ));
                }
                if body_id.is_some_and(|b| b != id) {
                    return Err(OAuthError::invalid_request(
                        "`client_id` in the body differs from the Authorization header",
                    ));
                }
                Ok(Self {
                    client_id: id,
                    secret: Some(secret),
                    method: AuthMethod::Basic,
                    assertion: None,
                })
            }
            None => match body_id {
                Some(id) => Ok(Self {
                    client_id: id.to_owned(),
                    secret: body_secret.map(str::to_owned),
                    method: AuthMethod::Post,
                    assertion: None,
                }),
                None => Err(OAuthError::invalid_client(
                    "client authentication is required: HTTP Basic with the client id and secret, or client_id and client_secret in the body",
                )),
            },
        }
    }

    /// `client_assertion_type` + `client_assertion` (RFC 7521 §4.2, RFC 7523
    /// §2.2), as the only credentials: with a Basic header or a secret too it is
    /// `invalid_request`. `client_id` is optional; without it the app is the one
    /// the assertion's (unverified, for now) `sub` names.
    fn assertion(authorization: Option<&HeaderValue>, form: &Form) -> Result<Self, OAuthError> {
        if authorization.is_some() || form.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "a client assertion was sent with other client credentials; use one method",
            ));
        }
        match form.get("client_assertion_type") {
            Some(ASSERTION_TYPE_JWT_BEARER) => {}
            Some(_) => {
                return Err(OAuthError::invalid_client(format!(
                    "unsupported `client_assertion_type`: only {ASSERTION_TYPE_JWT_BEARER}"
                )));
            }
            None => {
                return Err(OAuthError::invalid_request(
                    "`client_assertion` needs `client_assertion_type`",
                ));
            }
        }
        let assertion = form.get("client_assertion").ok_or_else(|| {
            OAuthError::invalid_request("`client_assertion_type` needs `client_assertion`")
        })?;
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(OAuthError::invalid_client(format!(
                "the client assertion is longer than {MAX_ASSERTION_LEN} bytes"
            )));
        }
        let client_id = match form.get("client_id") {
            Some(id) => id.to_owned(),
            None => client_assertion::subject(assertion).ok_or_else(|| {
                OAuthError::invalid_client(
                    "the client assertion names no client (`sub`) and no `client_id` was sent",
                )
            })?,
        };
        Ok(Self {
            client_id,
            secret: None,
            method: AuthMethod::PrivateKeyJwt,
            assertion: Some(assertion.to_owned()),
        })
    }
}
