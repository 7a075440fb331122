//! `POST /connect/token` with the client credentials grant: what the seeds promise.

use gatehouse_core::model::{SigningAlg, TokenFormat};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::Value;

use crate::helpers::TestApp;

/// oauth2's HTTP client interface over reqwest 0.13 (oauth2 ships an adapter for 0.12 only).
async fn send(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = req.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    Ok(out
        .body(resp.bytes().await?.to_vec())
        .expect("valid response"))
}

#[tokio::test]
async fn oauth2_crate_gets_a_token_with_basic_and_with_body_credentials() {
    let app = TestApp::spawn().await;
    let (_, user) = app.seed().await;
    let c = app
        .app(
            "dev@acme.test",
            "cfgateway products:read",
            Some("cfgateway"),
            None,
        )
        .await;
    assert_eq!(c.user_id, user);
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = BasicClient::new(ClientId::new(c.client_id.clone()))
            .set_client_secret(ClientSecret::new(c.secret.clone()))
            .set_token_uri(TokenUrl::new(app.url("/connect/token")).unwrap())
            .set_auth_type(auth.clone());
        let tok = client
            .exchange_client_credentials()
            .add_scope(Scope::new("products:read".into()))
            .request_async(&send)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        assert_eq!(tok.token_type(), &oauth2::basic::BasicTokenType::Bearer);
        assert_eq!(tok.expires_in(), Some(std::time::Duration::from_secs(3600)));
        assert!(tok.refresh_token().is_none());
        assert_eq!(
            tok.scopes().unwrap(),
            &vec![Scope::new("products:read".into())]
        );
    }
}

#[tokio::test]
async fn seed_request_with_body_credentials_gets_exactly_the_documented_reply() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    // The Creative Force seed's curl, field for field.
    let resp = app
        .http
        .post(app.url("/connect/token"))
        .header("User-Agent", "TestClient/1.0")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=cfgateway",
            c.client_id, c.secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "cfgateway");
}

#[tokio::test]
async fn default_scopes_apply_when_scope_is_omitted() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app
        .app(
            "dev@acme.test",
            "cfgateway products:read",
            Some("cfgateway"),
            None,
        )
        .await;
    assert_eq!(app.token(&c, &[]).await["scope"], "cfgateway");
}

#[tokio::test]
async fn scopes_the_app_may_not_have_are_dropped_and_the_reply_says_so() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    assert_eq!(
        app.token(&c, &[("scope", "cfgateway products:read")]).await["scope"],
        "cfgateway"
    );
}

#[tokio::test]
async fn switch_seed_audience_selects_the_api_and_resource_works_the_same() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let other = app
        .api(
            "https://reports.acme.test",
            "reports",
            TokenFormat::Jwt,
            SigningAlg::ES256,
        )
        .await;
    let c = app
        .app("dev@acme.test", "cfgateway reports", Some("reports"), None)
        .await;
    // The Switch seed sends only grant_type, client credentials in the body and audience.
    let resp = app
        .token_form(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.client_id),
                ("client_secret", &c.secret),
                ("audience", &other.audience),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "reports");
    let claims = crate::well_known::verify_with_jwks(
        &app,
        body["access_token"].as_str().unwrap(),
        &other.audience,
    )
    .await;
    assert_eq!(claims["aud"], "https://reports.acme.test");

    let body = app
        .token(
            &c,
            &[
                ("resource", "https://gateway.acme.test"),
                ("scope", "cfgateway"),
            ],
        )
        .await;
    let claims = crate::well_known::verify_with_jwks(
        &app,
        body["access_token"].as_str().unwrap(),
        "https://gateway.acme.test",
    )
    .await;
    assert_eq!(claims["scope"], "cfgateway");
}

#[tokio::test]
async fn the_apps_default_audience_is_used_without_audience() {
    let app = TestApp::spawn().await;
    app.seed().await;
    app.api(
        "https://reports.acme.test",
        "reports cfgateway-extra",
        TokenFormat::Jwt,
        SigningAlg::ES256,
    )
    .await;
    let c = app
        .app(
            "dev@acme.test",
            "cfgateway reports",
            Some("reports"),
            Some("https://reports.acme.test"),
        )
        .await;
    let body = app.token(&c, &[]).await;
    let claims = crate::well_known::verify_with_jwks(
        &app,
        body["access_token"].as_str().unwrap(),
        "https://reports.acme.test",
    )
    .await;
    assert_eq!(claims["scope"], "reports");
}

#[tokio::test]
async fn jwt_claims_follow_rfc_9068_and_carry_the_acting_users_role() {
    let app = TestApp::spawn().await;
    let (_, user) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let body = app.token(&c, &[]).await;
    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let claims =
        crate::well_known::verify_with_jwks(&app, token, "https://gateway.acme.test").await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["sub"], user);
    assert_eq!(claims["client_id"], c.client_id);
    assert_eq!(claims["scope"], "cfgateway");
    assert_eq!(claims["role"], "developer");
    assert_eq!(claims["permissions"], serde_json::json!(["developer_api"]));
    assert_eq!(claims["groups"], serde_json::json!(["ops"]));
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    assert_eq!(claims["org"], org.id);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 32);
}

#[tokio::test]
async fn every_signing_algorithm_verifies_against_the_jwks() {
    let app = TestApp::spawn().await;
    app.seed().await;
    for (alg, aud, scope) in [
        (SigningAlg::RS256, "https://rs.acme.test", "rs"),
        (SigningAlg::EdDSA, "https://ed.acme.test", "ed"),
        (SigningAlg::ES256, "https://es.acme.test", "es"),
    ] {
        app.api(aud, scope, TokenFormat::Jwt, alg).await;
        let c = app.app("dev@acme.test", scope, None, None).await;
        let body = app.token(&c, &[]).await;
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(token).unwrap().alg.to_owned(),
            match alg {
                SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
                SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
                SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
            }
        );
        let claims = crate::well_known::verify_with_jwks(&app, token, aud).await;
        assert_eq!(claims["scope"], scope);
    }
}

#[tokio::test]
async fn reference_tokens_are_opaque_and_introspect() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let api = app
        .api(
            "https://ref.acme.test",
            "ref",
            TokenFormat::Reference,
            SigningAlg::ES256,
        )
        .await;
    let c = app.app("dev@acme.test", "ref", None, None).await;
    let body = app.token(&c, &[]).await;
    let token = body["access_token"].as_str().unwrap();
    assert!(
        !token.contains('.'),
        "a reference token is not a JWT: {token}"
    );
    assert_eq!(token.len(), 43);
    let info = app.introspect((&api.client_id, &api.secret), token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "ref");
    assert_eq!(info["sub"], c.user_id);
}
