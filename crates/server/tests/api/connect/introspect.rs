//! `POST /connect/introspect` (RFC 7662), and the moments the seeds say tokens end.

use gatehouse_core::admin;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::UserStatus;

use crate::helpers::TestApp;

#[tokio::test]
async fn an_api_sees_its_tokens_active_with_their_claims() {
    let app = TestApp::spawn().await;
    let (api, user) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let info = app.introspect((&api.client_id, &api.secret), &token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], c.client_id);
    assert_eq!(info["sub"], user);
    assert_eq!(info["aud"], api.audience);
    assert_eq!(info["scope"], "cfgateway");
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["role"], "developer");
    // The app may introspect its own token.
    assert_eq!(
        app.introspect((&c.client_id, &c.secret), &token).await["active"],
        true
    );
}

#[tokio::test]
async fn tokens_of_others_and_junk_are_inactive() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let other_api = app
        .api(
            "https://other.acme.test",
            "other",
            gatehouse_core::model::TokenFormat::Jwt,
            gatehouse_core::model::SigningAlg::ES256,
        )
        .await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let d = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.introspect((&other_api.client_id, &other_api.secret), &token)
            .await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        app.introspect((&d.client_id, &d.secret), &token).await["active"],
        false
    );
    for junk in ["abc", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        assert_eq!(
            app.introspect((&api.client_id, &api.secret), junk).await["active"],
            false,
            "{junk}"
        );
    }
    // A forged signature.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &forged).await["active"],
        false
    );
}

#[tokio::test]
async fn introspection_needs_valid_credentials() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let r = app
        .http
        .post(app.url("/connect/introspect"))
        .basic_auth(&api.client_id, Some("wrong"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/connect/introspect"))
        .basic_auth(&api.client_id, Some(&api.secret))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn tokens_end_after_their_lifetime() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(3599);
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        true
    );
    app.clock.advance(1);
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        false
    );
}

#[tokio::test]
async fn rotate_secret_ends_tokens_and_the_old_secret_at_once() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_secret =
        admin::rotate_secret(app.s(), SystemClock.now(), &Actor::operator(), &c.client_id)
            .await
            .unwrap();
    // The new secret works immediately, even before the change feed is read.
    let fresh = crate::helpers::Client {
        client_id: c.client_id.clone(),
        secret: new_secret.expose().to_owned(),
        user_id: c.user_id.clone(),
    };
    let new_token = app.token(&fresh, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.caught_up().await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        false
    );
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &new_token)
            .await["active"],
        true
    );
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn changing_the_on_behalf_user_ends_tokens() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let ops = app.user("ops@acme.test", "admin").await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    admin::set_on_behalf_of(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &c.client_id,
        "ops@acme.test",
    )
    .await
    .unwrap();
    app.caught_up().await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        false
    );
    let again = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let info = app.introspect((&api.client_id, &api.secret), &again).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], ops);
    assert_eq!(info["role"], "admin");
}

#[tokio::test]
async fn deactivating_the_user_or_deleting_the_app_ends_tokens() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    app.user("ops@acme.test", "developer").await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let d = app.app("ops@acme.test", "cfgateway", None, None).await;
    let t1 = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t2 = app.token(&d, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    admin::set_user_status(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &app.user_id("dev@acme.test").await,
        UserStatus::Deactivated,
    )
    .await
    .unwrap();
    admin::delete_app(app.s(), SystemClock.now(), &Actor::operator(), &d.client_id)
        .await
        .unwrap();
    app.caught_up().await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &t1).await["active"],
        false
    );
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &t2).await["active"],
        false
    );
    let r = app
        .token_form(
            Some((&d.client_id, &d.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
}

/// Issue 10 item 13: a deactivation ends tokens for good. Re-activating the
/// person revives neither the machine tokens acting for them nor the tokens
/// they granted an app; tokens issued after the re-activation work.
#[tokio::test]
async fn reactivating_a_user_does_not_revive_tokens_the_deactivation_ended() {
    let app = TestApp::spawn().await;
    let (api, user) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let machine = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &machine)
            .await["active"],
        true
    );
    let now = app.clock.now();
    for status in [UserStatus::Deactivated, UserStatus::Active] {
        admin::set_user_status(app.s(), now, &Actor::operator(), &user, status)
            .await
            .unwrap();
    }
    app.caught_up().await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &machine)
            .await,
        serde_json::json!({"active": false})
    );
    // A token issued after the re-activation is good.
    app.clock.advance(1);
    let fresh = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &fresh).await["active"],
        true
    );
}

#[tokio::test]
async fn reactivating_a_person_does_not_revive_the_tokens_they_granted() {
    let (app, web, user) = TestApp::web_setup().await;
    let tokens = crate::browser::tokens_for(&app, &web, "ana@acme.test").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    let now = app.clock.now();
    for status in [UserStatus::Deactivated, UserStatus::Active] {
        admin::set_user_status(app.s(), now, &Actor::operator(), &user, status)
            .await
            .unwrap();
    }
    app.caught_up().await;
    assert_eq!(app.userinfo(access).await.status(), 401);
    assert_eq!(
        app.introspect((&web.client_id, &web.secret), access).await,
        serde_json::json!({"active": false})
    );
}
