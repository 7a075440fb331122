//! `POST /connect/token` with `grant_type=refresh_token`: rotation, reuse
//! detection (the whole family dies), scope narrowing, and the end of the
//! authorization when the user or the app goes away.

use gatehouse_core::admin;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::UserStatus;
use gatehouse_store_sql::SqliteOptions;
use serde_json::Value;

use crate::browser::tokens_for;
use crate::helpers::{TestApp, WebApp, oauth_error, refresh_params};

async fn setup() -> (TestApp, WebApp, Value) {
    let (app, web, _) = TestApp::web_setup().await;
    let tokens = tokens_for(&app, &web, "ana@acme.test").await;
    (app, web, tokens)
}

fn rt(v: &Value) -> &str {
    v["refresh_token"].as_str().expect("a refresh token")
}

fn at(v: &Value) -> &str {
    v["access_token"].as_str().expect("an access token")
}

async fn refresh_ok(app: &TestApp, web: &WebApp, token: &str) -> Value {
    let resp = app.web_token(web, &refresh_params(token)).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_issues_new_tokens() {
    let (app, web, first) = setup().await;
    let second = refresh_ok(&app, &web, rt(&first)).await;
    assert_ne!(rt(&second), rt(&first));
    assert_ne!(at(&second), at(&first));
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 3600);
    assert_eq!(second["scope"], first["scope"]);
    assert!(second["id_token"].is_string(), "{second}");
    assert_eq!(app.userinfo(at(&second)).await.status(), 200);
    // And the successor rotates in turn.
    let third = refresh_ok(&app, &web, rt(&second)).await;
    assert_ne!(rt(&third), rt(&second));
}

#[tokio::test]
async fn reused_refresh_token_is_invalid_grant_and_revokes_the_whole_family() {
    let (app, web, first) = setup().await;
    let second = refresh_ok(&app, &web, rt(&first)).await;
    assert_eq!(app.userinfo(at(&second)).await.status(), 200);

    let body = oauth_error(
        app.web_token(&web, &refresh_params(rt(&first))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // The successor is dead too, and so are the access tokens of the family.
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&second))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.userinfo(at(&second)).await.status(), 401);
    assert_eq!(app.userinfo(at(&first)).await.status(), 401);
}

#[tokio::test]
async fn another_family_survives_a_reuse() {
    let (app, web, first) = setup().await;
    let other = tokens_for(&app, &web, "ana@acme.test").await;
    refresh_ok(&app, &web, rt(&first)).await;
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&first))).await,
        400,
        "invalid_grant",
    )
    .await;
    refresh_ok(&app, &web, rt(&other)).await;
}

#[tokio::test]
async fn refresh_with_a_wider_scope_is_invalid_scope_and_keeps_the_token() {
    let app = TestApp::spawn().await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway products:read").await;
    let first = tokens_for(&app, &web, "ana@acme.test").await;
    for wider in [
        "cfgateway products:read offline_access openid",
        "cfgateway offline_access openid profile",
        "undefined:scope",
    ] {
        oauth_error(
            app.web_token(&web, &refresh_params(rt(&first)).set("scope", wider))
                .await,
            400,
            "invalid_scope",
        )
        .await;
    }
    // A refused request does not use the token up.
    refresh_ok(&app, &web, rt(&first)).await;
}

#[tokio::test]
async fn refresh_with_a_narrower_scope_narrows_the_tokens_and_keeps_the_family() {
    let (app, web, first) = setup().await;
    let narrow = app
        .web_token(&web, &refresh_params(rt(&first)).set("scope", "cfgateway"))
        .await;
    assert_eq!(narrow.status(), 200);
    let narrow: Value = narrow.json().await.unwrap();
    let mut scope: Vec<&str> = narrow["scope"].as_str().unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["cfgateway", "offline_access"]);
    assert!(narrow.get("id_token").is_none(), "no openid, no ID token");
    let claims =
        crate::well_known::verify_with_jwks(&app, at(&narrow), "https://gateway.acme.test").await;
    assert_eq!(claims["scope"], "cfgateway offline_access");
    // Without openid, userinfo refuses the access token.
    assert_eq!(app.userinfo(at(&narrow)).await.status(), 403);
    // The narrowed refresh token cannot widen back.
    oauth_error(
        app.web_token(
            &web,
            &refresh_params(rt(&narrow)).set("scope", "cfgateway offline_access openid"),
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
}

#[tokio::test]
async fn refresh_fails_after_the_user_is_deactivated() {
    let (app, web, first) = setup().await;
    admin::set_user_status(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &app.user_id("ana@acme.test").await,
        UserStatus::Deactivated,
    )
    .await
    .unwrap();
    app.caught_up().await;
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&first))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.userinfo(at(&first)).await.status(), 401);
    // Reactivated, nothing the deactivation ended comes back (issue 10 item 13):
    // the grant was revoked with it, so the refresh token and access token stay dead.
    admin::set_user_status(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &app.user_id("ana@acme.test").await,
        UserStatus::Active,
    )
    .await
    .unwrap();
    app.caught_up().await;
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&first))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.userinfo(at(&first)).await.status(), 401);
}

#[tokio::test]
async fn refresh_fails_after_the_app_is_deleted() {
    let (app, web, first) = setup().await;
    admin::delete_app(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &web.client_id,
    )
    .await
    .unwrap();
    app.caught_up().await;
    // The app no longer exists, so it cannot even authenticate.
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&first))).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(app.userinfo(at(&first)).await.status(), 401);
}

#[tokio::test]
async fn rotating_the_app_secret_ends_its_refresh_tokens() {
    let (app, web, first) = setup().await;
    let secret = admin::rotate_secret(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &web.client_id,
    )
    .await
    .unwrap();
    app.caught_up().await;
    let web = WebApp {
        client_id: web.client_id.clone(),
        secret: secret.expose().to_owned(),
    };
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&first))).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_token_presented_by_another_client_is_invalid_grant_and_stays_valid() {
    let (app, web, first) = setup().await;
    let thief = app.web_app("cfgateway").await;
    oauth_error(
        app.web_token(&thief, &refresh_params(rt(&first))).await,
        400,
        "invalid_grant",
    )
    .await;
    refresh_ok(&app, &web, rt(&first)).await;
}

#[tokio::test]
async fn refresh_token_expires_after_refresh_ttl() {
    let app = TestApp::spawn_with(|c| c.refresh_ttl = 600, SqliteOptions::default()).await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let first = tokens_for(&app, &web, "ana@acme.test").await;
    app.clock.advance(599);
    let second = refresh_ok(&app, &web, rt(&first)).await;
    // The successor gets a full lifetime of its own.
    app.clock.advance(599);
    let third = refresh_ok(&app, &web, rt(&second)).await;
    app.clock.advance(601);
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&third))).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn unknown_or_missing_refresh_token_is_refused() {
    let (app, web, _) = setup().await;
    oauth_error(
        app.web_token(&web, &refresh_params("not-a-refresh-token"))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        app.web_token(&web, &refresh_params("x").without("refresh_token"))
            .await,
        400,
        "invalid_request",
    )
    .await;
}

/// Issue 10 item 5: a scope taken from the app after the authorization is not
/// minted again through refresh (RFC 6749 §6: never more than granted, and never
/// more than the app may have now); with none of its API scopes left, the
/// family cannot be refreshed at all.
#[tokio::test]
async fn scopes_removed_from_the_app_are_not_minted_by_refresh() {
    use crate::browser::{Browser, code_for};
    use crate::helpers::{authorize_params, code_params};

    let (app, _, _) = TestApp::web_setup().await;
    let web = app.web_app("cfgateway products:read").await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web).set("scope", "cfgateway products:read offline_access"),
        "ana@acme.test",
    )
    .await;
    let resp = app.web_token(&web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["scope"], "cfgateway products:read offline_access");

    let edit = |scopes: &'static str| admin::AppEdit {
        scopes: Some(scopes),
        ..Default::default()
    };
    admin::update_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        &web.client_id,
        edit("cfgateway"),
    )
    .await
    .unwrap();
    app.caught_up().await;
    let second = refresh_ok(&app, &web, rt(&first)).await;
    assert_eq!(second["scope"], "cfgateway offline_access");
    // Asking for the removed scope back is a widening.
    oauth_error(
        app.web_token(
            &web,
            &refresh_params(rt(&second)).set("scope", "cfgateway products:read"),
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;

    // Nothing this family was granted is allowed any more.
    let third = refresh_ok(&app, &web, rt(&second)).await;
    admin::update_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        &web.client_id,
        edit("products:read"),
    )
    .await
    .unwrap();
    app.caught_up().await;
    oauth_error(
        app.web_token(&web, &refresh_params(rt(&third))).await,
        400,
        "invalid_grant",
    )
    .await;
}

/// Issue 10 item 5: however often it is rotated, a refresh-token family ends
/// `refresh_family_max_age` after the authorization.
#[tokio::test]
async fn a_refresh_family_ends_at_its_absolute_lifetime() {
    let app = TestApp::spawn_with(
        |c| c.refresh_family_max_age = 1000,
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let first = tokens_for(&app, &web, "ana@acme.test").await;
    app.clock.advance(600);
    let second = refresh_ok(&app, &web, rt(&first)).await;
    app.clock.advance(399);
    let third = refresh_ok(&app, &web, rt(&second)).await;
    app.clock.advance(1);
    let body = oauth_error(
        app.web_token(&web, &refresh_params(rt(&third))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("maximum age"),
        "{body}"
    );
}
