//! Token requests parsed from a strict form into one typed enum, so grant dispatch
//! is an exhaustive `match` (kanidm). An unknown `grant_type` is refused here.

use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::scope::ScopeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    ClientCredentials(ClientCredentialsRequest),
    AuthorizationCode(AuthorizationCodeRequest),
    RefreshToken(RefreshTokenRequest),
}

/// RFC 6749 §4.1.3 (with RFC 7636 §4.5's `code_verifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRequest {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// RFC 6749 §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRequest {
    pub refresh_token: String,
    /// A narrower scope than the one granted, if asked.
    pub scope: Option<ScopeSet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    pub scope: Option<ScopeSet>,
    /// The API asked for, by `audience` (Auth0 style) or `resource` (RFC 8707).
    pub target: Option<String>,
}

impl TokenRequest {
    pub fn parse(form: &Form) -> Result<Self, OAuthError> {
        let grant_type = form.require("grant_type")?;
        match grant_type {
            "client_credentials" => Ok(Self::ClientCredentials(ClientCredentialsRequest {
                scope: form.get("scope").map(ScopeSet::parse).transpose()?,
                target: target(form)?,
            })),
            "authorization_code" => Ok(Self::AuthorizationCode(AuthorizationCodeRequest {
                code: form.require("code")?.to_owned(),
                redirect_uri: form.get("redirect_uri").map(str::to_owned),
                code_verifier: form.get("code_verifier").map(str::to_owned),
            })),
            "refresh_token" => Ok(Self::RefreshToken(RefreshTokenRequest {
                refresh_token: form.require("refresh_token")?.to_owned(),
                scope: form.get("scope").map(ScopeSet::parse).transpose()?,
            })),
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type `{}` is not supported; use client_credentials, authorization_code or refresh_token",
                    other
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(60)
                        .collect::<String>()
                ),
            )),
        }
    }
}

/// `audience` and `resource` name the same thing; one token has one audience.
fn target(form: &Form) -> Result<Option<String>, OAuthError> {
    let resources = form.get_all("resource");
    if resources.len() > 1 {
        return Err(OAuthError::invalid_target(
            "only one `resource` per token request is supported: a token has one audience",
        ));
    }
    let resource = resources.first().map(String::as_str);
    if let Some(r) = resource {
        // RFC 8707 §2: an absolute URI without a fragment.
        let absolute = r.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        });
        if !absolute || r.contains('#') {
            return Err(OAuthError::invalid_target(
                "`resource` must be an absolute URI without a fragment (RFC 8707 §2)",
            ));
        }
    }
    match (form.get("audience"), resource) {
        (Some(a), Some(r)) if a != r => Err(OAuthError::invalid_target(
            "`audience` and `resource` name different APIs",
        )),
        (Some(a), _) => Ok(Some(a.to_owned())),
        (None, r) => Ok(r.map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&Form::parse(body.as_bytes())?)
    }

    #[test]
    fn missing_grant_type_is_invalid_request() {
        assert_eq!(
            parse("scope=a").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn unknown_grant_type_is_unsupported() {
        assert_eq!(
            parse("grant_type=password").unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
    }

    #[test]
    fn audience_or_resource_select_the_target() {
        let Ok(TokenRequest::ClientCredentials(r)) =
            parse("grant_type=client_credentials&audience=https%3A%2F%2Fa")
        else {
            panic!()
        };
        assert_eq!(r.target.as_deref(), Some("https://a"));
        let Ok(TokenRequest::ClientCredentials(r)) =
            parse("grant_type=client_credentials&resource=https%3A%2F%2Fa")
        else {
            panic!()
        };
        assert_eq!(r.target.as_deref(), Some("https://a"));
    }

    #[test]
    fn conflicting_or_relative_targets_are_invalid_target() {
        for body in [
            "grant_type=client_credentials&audience=https%3A%2F%2Fa&resource=https%3A%2F%2Fb",
            "grant_type=client_credentials&resource=relative",
            "grant_type=client_credentials&resource=https%3A%2F%2Fa%23frag",
            "grant_type=client_credentials&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb",
        ] {
            assert_eq!(
                parse(body).unwrap_err().code,
                ErrorCode::InvalidTarget,
                "{body}"
            );
        }
    }
}
