//! Discovery documents and the JWKS, judged by jsonwebtoken (which the server does
//! not use for signing) through the published keys only.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::helpers::TestApp;

/// Verifies `token` with the key the JWKS publishes for its `kid`, checking iss, aud, exp.
pub async fn verify_with_jwks(app: &TestApp, token: &str, audience: &str) -> Value {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let jwks: JwkSet = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&app.base]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .claims
}

#[tokio::test]
async fn openid_configuration_and_rfc8414_metadata_describe_the_server() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], app.base);
        assert_eq!(doc["token_endpoint"], app.url("/connect/token"));
        assert_eq!(doc["jwks_uri"], app.url("/.well-known/jwks.json"));
        assert_eq!(
            doc["introspection_endpoint"],
            app.url("/connect/introspect")
        );
        // RFC 9126 §5: the endpoint, and that the server does not require it of every app.
        assert_eq!(
            doc["pushed_authorization_request_endpoint"],
            app.url("/connect/par")
        );
        assert_eq!(doc["require_pushed_authorization_requests"], false);
        assert!(
            doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&"client_credentials".into())
        );
        // RFC 8693 §2.1's grant type.
        assert!(
            doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&"urn:ietf:params:oauth:grant-type:token-exchange".into())
        );
        // RFC 8628 §4.
        assert_eq!(
            doc["device_authorization_endpoint"],
            app.url("/connect/deviceauthorization")
        );
        assert!(
            doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&"urn:ietf:params:oauth:grant-type:device_code".into())
        );
        assert!(
            doc["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&"client_secret_basic".into())
        );
    }
}

#[tokio::test]
async fn jwks_publishes_public_keys_only() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().unwrap().len() >= 16);
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                k.get(private).is_none(),
                "private member {private} published: {k}"
            );
        }
    }
    // And jsonwebtoken can use every one of them.
    let set: JwkSet = serde_json::from_value(jwks).unwrap();
    for jwk in &set.keys {
        DecodingKey::from_jwk(jwk).unwrap();
    }
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}
