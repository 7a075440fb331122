//! Endpoint paths (the single source the router also uses) and the metadata
//! documents built from them: OpenID Connect Discovery 1.0 and RFC 8414.

use serde_json::{Value, json};

pub const TOKEN_PATH: &str = "/connect/token";
pub const AUTHORIZE_PATH: &str = "/connect/authorize";
pub const INTROSPECT_PATH: &str = "/connect/introspect";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

pub fn metadata(issuer: &str) -> Value {
    let issuer = issuer.trim_end_matches('/');
    let url = |p: &str| format!("{issuer}{p}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(AUTHORIZE_PATH),
        "token_endpoint": url(TOKEN_PATH),
        "introspection_endpoint": url(INTROSPECT_PATH),
        "jwks_uri": url(JWKS_PATH),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "client_id", "scope", "org", "role", "permissions", "groups"],
        "code_challenge_methods_supported": ["S256"],
    })
}
