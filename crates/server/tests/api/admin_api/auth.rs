//! Getting a `gatehouse:admin` token, and the admin API's RFC 6750 answers to
//! missing, bad, ended and insufficient tokens.

use reqwest::Method;
use serde_json::Value;

use super::*;
use crate::helpers::oauth_error;

fn unverified_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn admin_token_is_for_the_admin_api_and_listed_in_discovery() {
    let (app, a) = acme().await;
    let claims = unverified_claims(&a.token);
    assert_eq!(claims["aud"], format!("{}/api/v1", app.base));
    assert_eq!(claims["scope"], ADMIN_SCOPE);
    assert_eq!(claims["org"], a.org_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let meta: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        meta["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&ADMIN_SCOPE.into()),
        "{meta}"
    );
    let r = a.get(&app, "/api/v1/org").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["slug"], "acme-studio");
}

#[tokio::test]
async fn admin_scope_is_refused_without_apps_manage_and_when_mixed() {
    let (app, a) = acme().await;
    user_in(&app, "acme-studio", "plain@acme.test", "developer").await;
    let (id, secret) = admin_app(&app, "acme-studio", "plain@acme.test").await;
    let resp = app
        .token_form(
            Some((&id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", ADMIN_SCOPE)],
        )
        .await;
    let body = oauth_error(resp, 400, "invalid_scope").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("apps:manage"),
        "{body}"
    );
    let resp = app
        .token_form(
            Some((&a.client_id, &a.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "gatehouse:admin cfgateway"),
            ],
        )
        .await;
    oauth_error(resp, 400, "invalid_scope").await;
}

#[tokio::test]
async fn missing_token_is_401_without_an_error_attribute() {
    let (app, _a) = acme().await;
    let r = call(&app, None, Method::GET, "/api/v1/apps", None).await;
    r.problem(401);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"gatehouse\"");
}

#[tokio::test]
async fn bad_token_is_401_invalid_token() {
    let (app, a) = acme().await;
    // A signature character changed (not the last one, whose low bits are padding).
    let mut forged: Vec<char> = a.token.chars().collect();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for token in ["nonsense", forged.as_str()] {
        let r = call(&app, Some(token), Method::GET, "/api/v1/apps", None).await;
        r.problem(401);
        let challenge = r.headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(
                "Bearer realm=\"gatehouse\", error=\"invalid_token\", error_description=\""
            ),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn token_without_the_admin_scope_is_403_insufficient_scope() {
    let (app, _a) = acme().await;
    let dev = app.user("ops@acme.test", "admin").await;
    let _ = dev;
    let c = app.app("ops@acme.test", "cfgateway", None, None).await;
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(&app, Some(&token), Method::GET, "/api/v1/apps", None).await;
    r.problem(403);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"gatehouse:admin\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn rotated_app_token_is_401_at_once() {
    let (app, a) = acme().await;
    assert_eq!(a.get(&app, "/api/v1/apps").await.status, 200);
    let op = gatehouse_core::model::Actor::operator();
    gatehouse_core::admin::rotate_secret(app.s(), app.clock.now(), &op, &a.client_id)
        .await
        .unwrap();
    // Changed under the server, as another instance would: the change feed tells it.
    app.caught_up().await;
    let r = a.get(&app, "/api/v1/apps").await;
    r.problem(401);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn deactivated_on_behalf_user_ends_admin_tokens() {
    let (app, a) = acme().await;
    let uid = app.user_id("root@acme.test").await;
    gatehouse_core::admin::set_user_status(
        app.s(),
        app.clock.now(),
        &gatehouse_core::model::Actor::operator(),
        &uid,
        gatehouse_core::model::UserStatus::Deactivated,
    )
    .await
    .unwrap();
    app.caught_up().await;
    a.get(&app, "/api/v1/org").await.problem(401);
}

#[tokio::test]
async fn losing_apps_manage_is_403_at_once() {
    let (app, a) = acme().await;
    assert_eq!(a.get(&app, "/api/v1/org").await.status, 200);
    let uid = app.user_id("root@acme.test").await;
    gatehouse_core::admin::set_user_access(
        app.s(),
        app.clock.now(),
        &gatehouse_core::model::Actor::operator(),
        &uid,
        "developer",
        vec![],
    )
    .await
    .unwrap();
    app.caught_up().await;
    let r = a.get(&app, "/api/v1/org").await;
    r.problem(403);
    assert!(
        r.json["detail"].as_str().unwrap().contains("apps:manage"),
        "{}",
        r.raw
    );
    // And no new admin token either.
    let resp = app
        .token_form(
            Some((&a.client_id, &a.secret)),
            &[("grant_type", "client_credentials"), ("scope", ADMIN_SCOPE)],
        )
        .await;
    oauth_error(resp, 400, "invalid_scope").await;
}
