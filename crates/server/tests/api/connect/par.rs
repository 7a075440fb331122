//! `POST /connect/par` (RFC 9126) and `/connect/authorize?client_id&request_uri`:
//! a pushed request leads through sign-in and consent to tokens; a reference
//! works once, for its client, for a minute; a push is refused with the JSON
//! error the authorization endpoint would have redirected; client
//! authentication fails and is throttled as at the token endpoint; an app that
//! requires pushed requests refuses plain ones.

use gatehouse_core::admin::{self, AppEdit};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_store_sql::SqliteOptions;
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{Browser, callback_params, expect_error_page, expect_error_redirect};
use crate::helpers::{
    CALLBACK, PASSWORD, Params, TestApp, WebApp, authorize_params, code_params, oauth_error,
};

const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// Pushes `params` as `web`, authenticating with HTTP Basic.
async fn push(app: &TestApp, web: &WebApp, params: &Params) -> reqwest::Response {
    app.http
        .post(app.url("/connect/par"))
        .basic_auth(&web.client_id, Some(&web.secret))
        .form(&params.pairs())
        .send()
        .await
        .unwrap()
}

/// Pushes `params` and returns the `request_uri`, asserting RFC 9126 §2.2's answer.
async fn pushed(app: &TestApp, web: &WebApp, params: &Params) -> String {
    let resp = push(app, web, params).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 60, "{body}");
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    let random = uri.strip_prefix(URN).expect("an RFC 9126 URN");
    assert!(random.len() >= 22, "at least 128 bits: {uri}");
    uri
}

fn by_reference(web: &WebApp, request_uri: &str) -> Params {
    Params::new()
        .set("client_id", &web.client_id)
        .set("request_uri", request_uri)
}

async fn edit(app: &TestApp, web: &WebApp, edit: AppEdit<'_>) {
    admin::update_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        &web.client_id,
        edit,
    )
    .await
    .unwrap();
    app.caught_up().await;
}

#[tokio::test]
async fn a_pushed_request_signs_in_consents_and_redeems_for_tokens() {
    let (app, web, _) = TestApp::web_setup().await;
    let uri = pushed(&app, &web, &authorize_params(&web)).await;
    let browser = Browser::new(&app);
    // What else the URL says is ignored (RFC 9126 §4): the pushed request wins.
    let tampered = by_reference(&web, &uri)
        .set("redirect_uri", "https://evil.test/callback")
        .set("scope", "openid")
        .set("state", "forged");
    let page = browser.authorize(&tampered).await;
    assert!(page.is_login(), "{page:?}");
    // The forms carry the request sealed: neither readable nor changeable.
    let carried = page.hidden("request").unwrap();
    assert!(!carried.contains("cfgateway") && !carried.contains("st-8f2a"));
    let page = browser.login(&page, "ana@acme.test", PASSWORD).await;
    let page = browser.consent(&page, "allow").await;
    let back = page.redirect();
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    let p = callback_params(&back);
    assert_eq!(p.get("state"), Some("st-8f2a"));
    assert_eq!(p.get("scope"), Some("cfgateway offline_access openid"));
    let resp = app
        .web_token(&web, &code_params(p.get("code").unwrap()))
        .await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    assert!(tokens["access_token"].is_string() && tokens["id_token"].is_string());
}

#[tokio::test]
async fn a_sealed_request_changed_in_the_form_is_refused() {
    let (app, web, _) = TestApp::web_setup().await;
    let uri = pushed(&app, &web, &authorize_params(&web)).await;
    let browser = Browser::new(&app);
    let page = browser.authorize(&by_reference(&web, &uri)).await;
    let carried = page.hidden("request").unwrap();
    let csrf = page.hidden("csrf_token").unwrap();
    let mut flipped = carried.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let page = browser
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("request", &flipped),
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    expect_error_page(&page, 400, "Go back to the app");
}

#[tokio::test]
async fn a_request_uri_works_once() {
    let (app, web, _) = TestApp::web_setup().await;
    let uri = pushed(&app, &web, &authorize_params(&web)).await;
    let browser = Browser::new(&app);
    assert!(
        browser
            .authorize(&by_reference(&web, &uri))
            .await
            .is_login()
    );
    let again = Browser::new(&app)
        .authorize(&by_reference(&web, &uri))
        .await;
    expect_error_page(&again, 400, "already used");
    // Opened twice: a security event of the app's organization, without the reference.
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    let events = app.s().audit_events(&org.id, None, 50).await.unwrap();
    let e = events
        .iter()
        .find(|e| e.action == "par.replayed")
        .unwrap_or_else(|| panic!("no par.replayed in {events:?}"));
    assert_eq!(e.actor_id, web.client_id);
    assert!(!e.detail.contains(&uri));
}

#[tokio::test]
async fn a_request_uri_expires_after_sixty_seconds() {
    let (app, web, _) = TestApp::web_setup().await;
    let uri = pushed(&app, &web, &authorize_params(&web)).await;
    app.clock.advance(60);
    let page = Browser::new(&app)
        .authorize(&by_reference(&web, &uri))
        .await;
    expect_error_page(&page, 400, "expired");
}

#[tokio::test]
async fn another_clients_request_uri_is_refused_and_left_usable() {
    let (app, web, _) = TestApp::web_setup().await;
    let other = app.web_app("cfgateway").await;
    let uri = pushed(&app, &web, &authorize_params(&web)).await;
    let page = Browser::new(&app)
        .authorize(&by_reference(&other, &uri))
        .await;
    expect_error_page(&page, 400, "expired or was already used");
    let page = Browser::new(&app)
        .authorize(&by_reference(&web, &uri))
        .await;
    assert!(page.is_login(), "{page:?}");
}

#[tokio::test]
async fn bad_client_authentication_is_401_and_throttled_like_the_token_endpoint() {
    let app = TestApp::spawn_with(|c| c.failures_per_address = 3, SqliteOptions::default()).await;
    app.seed().await;
    let web = app.web_app("cfgateway").await;
    let wrong = WebApp {
        client_id: web.client_id.clone(),
        secret: "guess".into(),
    };
    let resp = push(&app, &wrong, &authorize_params(&web)).await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    oauth_error(resp, 401, "invalid_client").await;
    // No credentials at all is invalid_client too (and not counted).
    let anonymous = app
        .http
        .post(app.url("/connect/par"))
        .form(&authorize_params(&web).without("client_id").pairs())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    for _ in 0..2 {
        let r = push(&app, &wrong, &authorize_params(&web)).await;
        assert_eq!(r.status(), 401);
    }
    let r = push(&app, &wrong, &authorize_params(&web)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // The right secret is never refused for others' failures.
    assert_eq!(
        push(&app, &web, &authorize_params(&web)).await.status(),
        201
    );
}

#[tokio::test]
async fn invalid_pushed_parameters_get_the_error_authorize_would_redirect() {
    let (app, web, _) = TestApp::web_setup().await;
    let cases = [
        (authorize_params(&web).set("scope", "nope"), "invalid_scope"),
        (
            authorize_params(&web).set("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            authorize_params(&web).set("code_challenge_method", "plain"),
            "invalid_request",
        ),
        // New code apps require PKCE: the app's rule applies to a push too.
        (
            authorize_params(&web)
                .without("code_challenge")
                .without("code_challenge_method"),
            "invalid_request",
        ),
    ];
    for (params, error) in cases {
        let page = Browser::new(&app).authorize(&params).await;
        let redirected = callback_params(&page.redirect());
        assert_eq!(redirected.get("error"), Some(error));
        let resp = push(&app, &web, &params).await;
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body = oauth_error(resp, 400, error).await;
        assert_eq!(
            body["error_description"].as_str(),
            redirected.get("error_description"),
            "the same words as authorize's"
        );
    }
    // What authorize shows on a page (an unregistered redirect URI) is a JSON
    // invalid_request here: never a redirect.
    let resp = push(
        &app,
        &web,
        &authorize_params(&web).set("redirect_uri", "https://evil.test/callback"),
    )
    .await;
    assert!(resp.headers().get("location").is_none());
    oauth_error(resp, 400, "invalid_request").await;
    // RFC 9126 §2.1: no request_uri inside a push.
    let resp = push(
        &app,
        &web,
        &authorize_params(&web).set("request_uri", &format!("{URN}x")),
    )
    .await;
    oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn an_app_that_requires_par_refuses_plain_requests() {
    let (app, web, _) = TestApp::web_setup().await;
    edit(
        &app,
        &web,
        AppEdit {
            require_par: Some(true),
            ..AppEdit::default()
        },
    )
    .await;
    let browser = Browser::new(&app);
    let page = browser.authorize(&authorize_params(&web)).await;
    expect_error_redirect(&app, &page, "invalid_request");
    // Before the redirect URI is known to be the app's: a page, no redirect.
    let page = browser
        .authorize(&authorize_params(&web).set("redirect_uri", "https://evil.test/callback"))
        .await;
    expect_error_page(&page, 400, "not registered");
    // Pushed, the same request goes through.
    let uri = pushed(&app, &web, &authorize_params(&web)).await;
    let page = browser.authorize(&by_reference(&web, &uri)).await;
    assert!(page.is_login(), "{page:?}");
    let page = browser.login(&page, "ana@acme.test", PASSWORD).await;
    let page = browser.consent(&page, "allow").await;
    assert!(callback_params(&page.redirect()).get("code").is_some());
}

#[tokio::test]
async fn oversized_inputs_are_refused() {
    let (app, web, _) = TestApp::web_setup().await;
    let long_state = "s".repeat(5 * 1024);
    let resp = push(
        &app,
        &web,
        &authorize_params(&web).set("state", &long_state),
    )
    .await;
    oauth_error(resp, 400, "invalid_request").await;
    let huge = "x".repeat(70 * 1024);
    let resp = push(&app, &web, &authorize_params(&web).set("junk", &huge)).await;
    oauth_error(resp, 413, "invalid_request").await;
    let long_uri = format!("{URN}{}", "a".repeat(300));
    let page = Browser::new(&app)
        .authorize(&by_reference(&web, &long_uri))
        .await;
    expect_error_page(&page, 400, "expired or was already used");
}

#[tokio::test]
async fn a_client_credentials_app_cannot_push() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let machine = app.app("dev@acme.test", "cfgateway", None, None).await;
    let web = WebApp {
        client_id: machine.client_id.clone(),
        secret: machine.secret.clone(),
    };
    let params = Params::new()
        .set("response_type", "code")
        .set("redirect_uri", CALLBACK)
        .set("scope", "cfgateway");
    let resp = push(&app, &web, &params).await;
    assert!(resp.status().is_client_error());
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}
