//! `POST /connect/token` with `grant_type=authorization_code`: the reply, and every
//! way redeeming a code must fail (RFC 6749 §4.1.3, §10.5; RFC 7636 §4.6).

use gatehouse_store_sql::SqliteOptions;
use serde_json::Value;

use crate::browser::{Browser, code_for};
use crate::helpers::{
    CALLBACK, TestApp, WebApp, authorize_params, code_params, oauth_error, refresh_params,
};

/// Turns PKCE off for `web` (new authorization code apps require it).
async fn optional_pkce(app: &TestApp, web: &WebApp) {
    use gatehouse_core::clock::{Clock, SystemClock};
    gatehouse_core::admin::update_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &gatehouse_core::model::Actor::operator(),
        &web.client_id,
        gatehouse_core::admin::AppEdit {
            require_pkce: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.caught_up().await;
}

async fn setup() -> (TestApp, WebApp, String) {
    let (app, web, _) = TestApp::web_setup().await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web),
        "ana@acme.test",
    )
    .await;
    (app, web, code)
}

#[tokio::test]
async fn code_exchange_returns_access_refresh_and_id_tokens() {
    let (app, web, code) = setup().await;
    let resp = app.web_token(&web, &code_params(&code)).await;
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
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let mut scope: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["cfgateway", "offline_access", "openid"]);
}

#[tokio::test]
async fn without_openid_or_offline_access_there_is_no_id_or_refresh_token() {
    let (app, web, _) = TestApp::web_setup().await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web).set("scope", "cfgateway"),
        "ana@acme.test",
    )
    .await;
    let body: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "cfgateway");
    assert!(body.get("id_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn replayed_code_is_invalid_grant_and_revokes_the_tokens_it_issued() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web),
        "ana@acme.test",
    )
    .await;
    let first: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    let seen = app.introspect((&api.client_id, &api.secret), access).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], web.client_id);

    let replay = app.web_token(&web, &code_params(&code)).await;
    let body = oauth_error(replay, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // Everything the first exchange issued is dead.
    assert_eq!(app.userinfo(access).await.status(), 401);
    let seen = app.introspect((&api.client_id, &api.secret), access).await;
    assert_eq!(seen, serde_json::json!({"active": false}));
    oauth_error(
        app.web_token(&web, &refresh_params(refresh)).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn wrong_pkce_verifier_is_invalid_grant_and_burns_the_code() {
    let (app, web, code) = setup().await;
    let wrong = "x".repeat(43);
    let body = oauth_error(
        app.web_token(&web, &code_params(&code).set("code_verifier", &wrong))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );
    // One attempt per code: the right verifier is too late now.
    oauth_error(
        app.web_token(&web, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn missing_verifier_when_a_challenge_was_sent_is_invalid_grant() {
    let (app, web, code) = setup().await;
    let body = oauth_error(
        app.web_token(&web, &code_params(&code).without("code_verifier"))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );
}

#[tokio::test]
async fn verifier_without_a_challenge_is_invalid_grant() {
    let (app, web, _) = TestApp::web_setup().await;
    optional_pkce(&app, &web).await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web)
            .without("code_challenge")
            .without("code_challenge_method"),
        "ana@acme.test",
    )
    .await;
    oauth_error(
        app.web_token(&web, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn without_pkce_on_either_side_the_code_still_works() {
    let (app, web, _) = TestApp::web_setup().await;
    optional_pkce(&app, &web).await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web)
            .without("code_challenge")
            .without("code_challenge_method"),
        "ana@acme.test",
    )
    .await;
    let resp = app
        .web_token(&web, &code_params(&code).without("code_verifier"))
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn code_expires_after_code_ttl() {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    let early = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let late = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    app.clock.advance(1799);
    assert_eq!(
        app.web_token(&web, &code_params(&early)).await.status(),
        200
    );
    app.clock.advance(2);
    let body = oauth_error(
        app.web_token(&web, &code_params(&late)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn a_configured_code_ttl_is_honoured() {
    let app = TestApp::spawn_with(|c| c.code_ttl = 5, SqliteOptions::default()).await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web),
        "ana@acme.test",
    )
    .await;
    app.clock.advance(6);
    oauth_error(
        app.web_token(&web, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn redirect_uri_mismatch_at_the_token_endpoint_is_invalid_grant() {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    for wrong in [Some("https://sync.acme.test/other"), Some(""), None] {
        let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
        let form = match wrong {
            Some(u) => code_params(&code).set("redirect_uri", u),
            None => code_params(&code).without("redirect_uri"),
        };
        let body = oauth_error(app.web_token(&web, &form).await, 400, "invalid_grant").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("redirect_uri"),
            "{wrong:?}: {body}"
        );
    }
    let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let ok = app
        .web_token(&web, &code_params(&code).set("redirect_uri", CALLBACK))
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_code_issued_to_another_client_is_invalid_grant() {
    let (app, _, code) = setup().await;
    let thief = app.web_app("cfgateway").await;
    oauth_error(
        app.web_token(&thief, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn unknown_or_missing_code_is_refused() {
    let (app, web, _) = setup().await;
    oauth_error(
        app.web_token(&web, &code_params("not-a-code")).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        app.web_token(&web, &code_params("x").without("code")).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_and_leaves_the_code_usable() {
    let (app, web, code) = setup().await;
    let resp = app
        .token_form(
            Some((&web.client_id, "wrong-secret")),
            &code_params(&code).pairs(),
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    crate::helpers::pin_error(&body);
    assert_eq!(app.web_token(&web, &code_params(&code)).await.status(), 200);
}

#[tokio::test]
async fn id_token_carries_nonce_auth_time_sid_and_the_app_as_audience() {
    let (app, web, code) = setup().await;
    let body: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let claims = crate::well_known::verify_with_jwks(
        &app,
        body["id_token"].as_str().unwrap(),
        &web.client_id,
    )
    .await;
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims["sid"].as_str().unwrap().len() >= 16);
    assert_eq!(
        jsonwebtoken::decode_header(body["id_token"].as_str().unwrap())
            .unwrap()
            .alg,
        jsonwebtoken::Algorithm::RS256
    );
}

/// Issue 10 item 12: a code is bound to the app's credential generation, so a
/// secret rotation or a disable/enable between authorize and exchange ends it.
#[tokio::test]
async fn a_code_issued_before_the_apps_credentials_changed_does_not_redeem() {
    use gatehouse_core::admin;
    use gatehouse_core::clock::{Clock, SystemClock};
    use gatehouse_core::model::{Actor, AppStatus};

    let (app, mut web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    let op = Actor::operator();

    // Rotated secret: the new secret authenticates, the old code is refused.
    let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let secret = admin::rotate_secret(app.s(), SystemClock.now(), &op, &web.client_id)
        .await
        .unwrap();
    web.secret = secret.expose().to_owned();
    let body = oauth_error(
        app.web_token(&web, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("credentials changed"),
        "{body}"
    );

    // Disabled and enabled again: the code issued before stays dead.
    let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    for status in [AppStatus::Disabled, AppStatus::Active] {
        admin::set_app_status(app.s(), SystemClock.now(), &op, &web.client_id, status)
            .await
            .unwrap();
    }
    app.caught_up().await;
    oauth_error(
        app.web_token(&web, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;

    // A code issued under the current generation still works.
    let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    assert_eq!(app.web_token(&web, &code_params(&code)).await.status(), 200);
}

/// PKCE can be required per app, and is for new authorization code apps: an
/// authorization request without `code_challenge` is an error redirect
/// (`invalid_request`, "PKCE is required") and no code is issued; once the admin
/// makes it optional, the same request works.
#[tokio::test]
async fn an_app_that_requires_pkce_refuses_authorization_without_a_challenge() {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    let no_pkce = authorize_params(&web)
        .without("code_challenge")
        .without("code_challenge_method");
    let page = browser.authorize(&no_pkce).await;
    let back = crate::browser::expect_error_redirect(&app, &page, "invalid_request");
    assert!(
        back.get("error_description")
            .unwrap()
            .contains("PKCE is required"),
        "{back:?}"
    );
    assert!(
        app.s()
            .app_by_client_id(&web.client_id)
            .await
            .unwrap()
            .require_pkce
    );

    // Shown and changed through the admin API.
    let admin = crate::admin_api::admin_in(&app, "acme-studio", "root@acme.test").await;
    let path = format!("/api/v1/apps/{}", web.client_id);
    assert_eq!(admin.get(&app, &path).await.json["require_pkce"], true);
    let r = admin
        .send(
            &app,
            reqwest::Method::PATCH,
            &path,
            serde_json::json!({"require_pkce": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["require_pkce"], false);
    app.caught_up().await;
    let code = code_for(&browser, &no_pkce, "ana@acme.test").await;
    let resp = app
        .web_token(&web, &code_params(&code).without("code_verifier"))
        .await;
    assert_eq!(resp.status(), 200);
}

/// A replayed code and a reused refresh token are security events in the app's
/// organization's audit log.
#[tokio::test]
async fn replays_and_reuse_are_security_events_in_the_audit_log() {
    let (app, web, code) = setup().await;
    let first: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    let resp = app.web_token(&web, &refresh_params(refresh)).await;
    assert_eq!(resp.status(), 200);
    oauth_error(
        app.web_token(&web, &refresh_params(refresh)).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        app.web_token(&web, &code_params(&code)).await,
        400,
        "invalid_grant",
    )
    .await;
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    let events = app.s().audit_events(&org.id, None, 50).await.unwrap();
    for action in ["refresh.reused", "code.replayed"] {
        let e = events
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} in {events:?}"));
        assert_eq!(e.actor_id, web.client_id);
        assert!(!e.detail.contains(refresh) && !e.detail.contains(&code));
    }
}
