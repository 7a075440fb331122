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
    TokenExchange(TokenExchangeRequest),
    DeviceCode(DeviceCodeRequest),
}

/// RFC 8628 §3.4's grant type.
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.4: the device polls with its device code.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCodeRequest {
    pub device_code: String,
}

impl std::fmt::Debug for DeviceCodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodeRequest")
            .field("device_code", &"[redacted]")
            .finish()
    }
}

/// RFC 8693 §2.1's grant type and the token types Gatehouse takes and issues.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// RFC 8693 §2.1. The token types are checked here: Gatehouse exchanges its
/// own access tokens (a JWT access token may also be typed `jwt`) for an
/// access token, nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenExchangeRequest {
    pub subject_token: String,
    pub actor_token: Option<String>,
    pub scope: Option<ScopeSet>,
    /// The API asked for, by `audience` or `resource` (one, as for client credentials).
    pub target: Option<String>,
}

impl std::fmt::Debug for TokenExchangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchangeRequest")
            .field("subject_token", &"[redacted]")
            .field(
                "actor_token",
                &self.actor_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("target", &self.target)
            .finish()
    }
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
            GRANT_TOKEN_EXCHANGE => Ok(Self::TokenExchange(token_exchange(form)?)),
            GRANT_DEVICE_CODE => {
                let device_code = form.require("device_code")?;
                if device_code.len() > crate::grant::device_code::MAX_DEVICE_CODE {
                    return Err(OAuthError::invalid_request(format!(
                        "`device_code` is longer than {} bytes",
                        crate::grant::device_code::MAX_DEVICE_CODE
                    )));
                }
                Ok(Self::DeviceCode(DeviceCodeRequest {
                    device_code: device_code.to_owned(),
                }))
            }
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type `{}` is not supported; use client_credentials, authorization_code, refresh_token, {GRANT_TOKEN_EXCHANGE} or {GRANT_DEVICE_CODE}",
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

/// RFC 8693 §2.1: `subject_token` and its type are required; `actor_token`
/// needs its type; only access tokens are taken and issued.
fn token_exchange(form: &Form) -> Result<TokenExchangeRequest, OAuthError> {
    let token = |name: &str, value: &str| {
        if value.len() > crate::introspect::MAX_TOKEN_LEN {
            Err(OAuthError::invalid_request(format!(
                "`{name}` is longer than {} bytes",
                crate::introspect::MAX_TOKEN_LEN
            )))
        } else {
            Ok(value.to_owned())
        }
    };
    let token_type = |name: &'static str| -> Result<(), OAuthError> {
        match form.require(name)? {
            TOKEN_TYPE_ACCESS_TOKEN | TOKEN_TYPE_JWT => Ok(()),
            _ => Err(OAuthError::invalid_request(format!(
                "`{name}` must be {TOKEN_TYPE_ACCESS_TOKEN}: only Gatehouse access tokens can be exchanged"
            ))),
        }
    };
    let subject_token = token("subject_token", form.require("subject_token")?)?;
    token_type("subject_token_type")?;
    let actor_token = match form.get("actor_token") {
        Some(t) => {
            token_type("actor_token_type")?;
            Some(token("actor_token", t)?)
        }
        None if form.get("actor_token_type").is_some() => {
            return Err(OAuthError::invalid_request(
                "`actor_token_type` was given without `actor_token` (RFC 8693 §2.1)",
            ));
        }
        None => None,
    };
    if let Some(t) = form.get("requested_token_type")
        && t != TOKEN_TYPE_ACCESS_TOKEN
    {
        return Err(OAuthError::invalid_request(format!(
            "`requested_token_type` must be {TOKEN_TYPE_ACCESS_TOKEN}: only access tokens are issued"
        )));
    }
    Ok(TokenExchangeRequest {
        subject_token,
        actor_token,
        scope: form.get("scope").map(ScopeSet::parse).transpose()?,
        target: target(form)?,
    })
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

    const EXCHANGE: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange";
    const AT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";

    #[test]
    fn token_exchange_needs_a_subject_token_of_an_access_token_type() {
        let ok = format!(
            "{EXCHANGE}&subject_token=t&subject_token_type={AT}&audience=https%3A%2F%2Fb&scope=a"
        );
        let Ok(TokenRequest::TokenExchange(r)) = parse(&ok) else {
            panic!()
        };
        assert_eq!(
            (r.subject_token.as_str(), r.target.as_deref()),
            ("t", Some("https://b"))
        );
        assert!(
            !format!("{r:?}").contains("\"t\""),
            "the token is never printed"
        );
        let jwt = format!(
            "{EXCHANGE}&subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
        );
        assert!(parse(&jwt).is_ok());
        for bad in [
            format!("{EXCHANGE}&subject_token_type={AT}"),
            format!("{EXCHANGE}&subject_token=t"),
            format!(
                "{EXCHANGE}&subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token"
            ),
            format!("{EXCHANGE}&subject_token=t&subject_token_type={AT}&actor_token=a"),
            format!("{EXCHANGE}&subject_token=t&subject_token_type={AT}&actor_token_type={AT}"),
            format!(
                "{EXCHANGE}&subject_token=t&subject_token_type={AT}&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"
            ),
            format!(
                "{EXCHANGE}&subject_token={}&subject_token_type={AT}",
                "x".repeat(crate::introspect::MAX_TOKEN_LEN + 1)
            ),
        ] {
            assert_eq!(
                parse(&bad).unwrap_err().code,
                ErrorCode::InvalidRequest,
                "{bad:.200}"
            );
        }
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
