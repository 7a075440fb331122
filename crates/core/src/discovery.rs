//! Endpoint paths (the single source the router also uses) and the metadata
//! documents built from them: OpenID Connect Discovery 1.0 and RFC 8414. They list
//! what is implemented, and nothing else.

use serde_json::{Value, json};

pub const TOKEN_PATH: &str = "/connect/token";
pub const AUTHORIZE_PATH: &str = "/connect/authorize";
pub const INTROSPECT_PATH: &str = "/connect/introspect";
pub const REVOCATION_PATH: &str = "/connect/revocation";
pub const REVOCATION_FEED_PATH: &str = "/connect/revocations";
pub const USERINFO_PATH: &str = "/connect/userinfo";
pub const ENDSESSION_PATH: &str = "/connect/endsession";
/// Pushed authorization requests (RFC 9126).
pub const PAR_PATH: &str = "/connect/par";
/// Device authorization requests (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION_PATH: &str = "/connect/deviceauthorization";
/// Where people enter a device's user code (RFC 8628 §3.2 `verification_uri`).
pub const DEVICE_VERIFICATION_PATH: &str = "/device";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// Where the admin REST API lives; `{issuer}/api/v1` is also its tokens' audience.
pub const ADMIN_API_PATH: &str = "/api/v1";

pub fn metadata(issuer: &str, api_scopes: &[String]) -> Value {
    let issuer = issuer.trim_end_matches('/');
    let url = |p: &str| format!("{issuer}{p}");
    let mut scopes: Vec<String> = crate::grant::scopes::OIDC_SCOPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    scopes.push(crate::grant::scopes::SCOPE_ADMIN.to_owned());
    for s in api_scopes {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        crate::client_assertion::PRIVATE_KEY_JWT,
    ];
    let auth_algs = crate::client_assertion::SIGNING_ALGS;
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(AUTHORIZE_PATH),
        "pushed_authorization_request_endpoint": url(PAR_PATH),
        // Server-wide; an app can be made to require them (RFC 9126 §5).
        "require_pushed_authorization_requests": false,
        "token_endpoint": url(TOKEN_PATH),
        "device_authorization_endpoint": url(DEVICE_AUTHORIZATION_PATH),
        "introspection_endpoint": url(INTROSPECT_PATH),
        "revocation_endpoint": url(REVOCATION_PATH),
        "gatehouse_revocation_feed_endpoint": url(REVOCATION_FEED_PATH),
        "userinfo_endpoint": url(USERINFO_PATH),
        // Which access tokens userinfo takes (no standard field says this).
        "gatehouse_userinfo_accepts": {
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid",
            "default_audience": url(USERINFO_PATH),
        },
        "end_session_endpoint": url(ENDSESSION_PATH),
        "jwks_uri": url(JWKS_PATH),
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::request::GRANT_TOKEN_EXCHANGE,
            crate::request::GRANT_DEVICE_CODE,
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": auth_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": auth_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": auth_algs,
        "scopes_supported": scopes,
        "claims_supported": crate::claims::supported(),
        "acr_values_supported": [crate::claims::ACR_PASSWORD, crate::claims::ACR_MFA],
        "code_challenge_methods_supported": ["S256"],
        // RFC 9449 §5.1: proofs are accepted at the token endpoint.
        "dpop_signing_alg_values_supported": crate::dpop::ALGS,
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}
