//! The introspection cache: an answer it remembers must end the moment the store
//! says so on this instance, with no wait for the change feed's poll.

use gatehouse_core::model::{SigningAlg, TokenFormat};
use reqwest::Method;

use crate::admin_api::acme;
use crate::helpers::{ApiCreds, Client, TestApp, WebApp};

fn access_token(body: &serde_json::Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

/// Introspects twice (the second answer comes from the cache) and checks both.
async fn active_twice(app: &TestApp, api: &ApiCreds, token: &str) {
    for _ in 0..2 {
        let info = app.introspect((&api.client_id, &api.secret), token).await;
        assert_eq!(info["active"], true, "{info}");
    }
}

/// RFC 7009 revocation of an access token by the app it was issued to.
async fn revoke(app: &TestApp, c: &Client, token: &str) {
    let owner = WebApp {
        client_id: c.client_id.clone(),
        secret: c.secret.clone(),
    };
    let resp = app.revoke(&owner, token, Some("access_token")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_revoked_jwt_is_inactive_at_the_very_next_introspection() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = access_token(&app.token(&c, &[]).await);
    let other = access_token(&app.token(&c, &[]).await);
    active_twice(&app, &api, &token).await;
    active_twice(&app, &api, &other).await;
    revoke(&app, &c, &token).await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await,
        serde_json::json!({"active": false})
    );
    // Only the revoked token ended.
    active_twice(&app, &api, &other).await;
}

#[tokio::test]
async fn a_revoked_reference_token_is_inactive_at_the_very_next_introspection() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let api = app
        .api(
            "https://ref.acme.test",
            "refdata",
            TokenFormat::Reference,
            SigningAlg::ES256,
        )
        .await;
    let c = app.app("dev@acme.test", "refdata", None, None).await;
    let token = access_token(&app.token(&c, &[]).await);
    assert_eq!(token.matches('.').count(), 0, "a reference token: {token}");
    active_twice(&app, &api, &token).await;
    revoke(&app, &c, &token).await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        false
    );
}

#[tokio::test]
async fn a_cached_api_still_needs_its_right_secret() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = access_token(&app.token(&c, &[]).await);
    active_twice(&app, &api, &token).await;
    let wrong = app
        .http
        .post(app.url("/connect/introspect"))
        .basic_auth(&api.client_id, Some("not-the-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    active_twice(&app, &api, &token).await;
}

#[tokio::test]
async fn an_expired_cached_token_is_inactive() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = access_token(&app.token(&c, &[]).await);
    active_twice(&app, &api, &token).await;
    app.clock.advance(3600);
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        false
    );
}

#[tokio::test]
async fn rotating_an_app_secret_through_the_admin_api_ends_its_introspection_at_once() {
    let (app, admin) = acme().await;
    let api = app
        .api(
            "https://ref.acme.test",
            "refdata",
            TokenFormat::Reference,
            SigningAlg::ES256,
        )
        .await;
    let c = app.app("dev@acme.test", "refdata", None, None).await;
    let token = access_token(&app.token(&c, &[]).await);
    active_twice(&app, &api, &token).await;
    // The app asks about its own token, twice: its answer is cached too.
    for _ in 0..2 {
        let own = app.introspect((&c.client_id, &c.secret), &token).await;
        assert_eq!(own["active"], true, "{own}");
    }
    let path = format!("/api/v1/apps/{}/secret", c.client_id);
    assert_eq!(admin.bare(&app, Method::POST, &path).await.status, 200);
    // The old secret is refused and the token ended, on the very next request.
    let old = app
        .http
        .post(app.url("/connect/introspect"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        false
    );
}

/// A token the cache holds as active for its own API is still nobody else's:
/// another API and another app introspecting it get `active: false`, whoever
/// asked first.
#[tokio::test]
async fn a_cached_answer_is_shown_only_to_those_who_may_see_the_token() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let other_api = app
        .api(
            "https://other.acme.test",
            "other",
            TokenFormat::Jwt,
            SigningAlg::ES256,
        )
        .await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let d = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = access_token(&app.token(&c, &[]).await);
    active_twice(&app, &api, &token).await;
    assert_eq!(
        app.introspect((&other_api.client_id, &other_api.secret), &token)
            .await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        app.introspect((&d.client_id, &d.secret), &token).await,
        serde_json::json!({"active": false})
    );
    // The app it was issued to sees it, from the same cached entry.
    assert_eq!(
        app.introspect((&c.client_id, &c.secret), &token).await["active"],
        true
    );
}

/// A reference token's cached answer ends when the secret it was issued with is
/// retired under the server (as the CLI or another instance would), or when
/// that secret's grace period runs out; the other secret's token stays active.
#[tokio::test]
async fn a_cached_reference_token_ends_with_the_secret_it_was_issued_with() {
    use gatehouse_core::admin;
    use gatehouse_core::clock::Clock;
    use gatehouse_core::model::Actor;

    let app = TestApp::spawn().await;
    app.seed().await;
    let api = app
        .api(
            "https://ref.acme.test",
            "refdata",
            TokenFormat::Reference,
            SigningAlg::ES256,
        )
        .await;
    let c = app.app("dev@acme.test", "refdata", None, None).await;
    let old = access_token(&app.token(&c, &[]).await);
    let op = Actor::operator();
    let first_id = admin::active_secrets(app.s(), app.clock.now(), &op, &c.client_id)
        .await
        .unwrap()[0]
        .id
        .clone();
    app.clock.advance(1);
    let (second_id, second) = admin::add_secret(app.s(), app.clock.now(), &op, &c.client_id, None)
        .await
        .unwrap();
    let second = Client {
        client_id: c.client_id.clone(),
        secret: second.expose().to_owned(),
        user_id: String::new(),
    };
    let new = access_token(&app.token(&second, &[]).await);
    active_twice(&app, &api, &old).await;
    active_twice(&app, &api, &new).await;

    admin::retire_secret(app.s(), app.clock.now(), &op, &c.client_id, &first_id)
        .await
        .unwrap();
    app.caught_up().await;
    let seen = app.introspect((&api.client_id, &api.secret), &old).await;
    assert_eq!(seen["active"], false, "{seen}");
    active_twice(&app, &api, &new).await;

    // A grace period on the remaining one: a third secret, and the second's
    // token (answered, maybe cached, meanwhile) ends at the expiry by itself.
    admin::add_secret(app.s(), app.clock.now(), &op, &c.client_id, Some(30))
        .await
        .unwrap();
    app.caught_up().await;
    active_twice(&app, &api, &new).await;
    app.clock.advance(30);
    let seen = app.introspect((&api.client_id, &api.secret), &new).await;
    assert_eq!(seen["active"], false, "{seen} (secret {})", second_id.id);
}
