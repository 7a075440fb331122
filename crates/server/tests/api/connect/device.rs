//! The device authorization grant (RFC 8628), end to end over HTTP: a device
//! asks `/connect/deviceauthorization` for codes, a person signs in at
//! `/device`, confirms the code and allows (or denies), and the device polls
//! `/connect/token` through `authorization_pending`, `slow_down`,
//! `access_denied` and `expired_token` to its tokens, once. Wrong codes are
//! throttled; a person of another organization cannot approve; an app without
//! the grant is refused; revoking the grant ends the device's tokens.

use gatehouse_core::admin::{self, NewApp, NewUser};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::{Actor, GrantType};
use serde_json::Value;

use crate::browser::{Browser, Page};
use crate::helpers::{ApiCreds, PASSWORD, TestApp, WebApp};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The seed, `ana@acme.test` (developer, password) and a device app "Studio
/// TV" allowed `cfgateway`.
async fn setup() -> (TestApp, WebApp, ApiCreds) {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let dev = device_app(&app).await;
    (app, dev, api)
}

/// The device app "Studio TV" of `acme-studio`, allowed `cfgateway`.
pub(crate) async fn device_app(app: &TestApp) -> WebApp {
    let (registered, secret) = admin::register_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        NewApp {
            org: &app.org("acme-studio").await,
            name: "Studio TV",
            description: Some("Shows the studio's bookings."),
            grant: GrantType::DeviceCode,
            on_behalf_of: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: "cfgateway",
            default_scopes: None,
            audience: None,
            exchange_audiences: vec![],
        },
    )
    .await
    .unwrap();
    WebApp {
        client_id: registered.client_id,
        secret: secret.expose().to_owned(),
    }
}

/// `POST /connect/deviceauthorization` as `dev` (client_secret_basic).
pub(crate) async fn ask(app: &TestApp, dev: &WebApp, scope: &str) -> reqwest::Response {
    app.http
        .post(app.url("/connect/deviceauthorization"))
        .basic_auth(&dev.client_id, Some(&dev.secret))
        .form(&[("scope", scope)])
        .send()
        .await
        .unwrap()
}

/// Codes for `scope`, asserting RFC 8628 §3.2's answer.
pub(crate) async fn codes(app: &TestApp, dev: &WebApp, scope: &str) -> Value {
    let resp = ask(app, dev, scope).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9, "{body}");
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .replace('-', "")
            .bytes()
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)),
        "{user_code}"
    );
    assert_eq!(body["verification_uri"], app.url("/device"));
    assert_eq!(
        body["verification_uri_complete"],
        format!("{}?user_code={user_code}", app.url("/device"))
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    assert!(body["device_code"].as_str().unwrap().len() >= 43);
    body
}

/// The device polls the token endpoint.
pub(crate) async fn poll(app: &TestApp, dev: &WebApp, device_code: &str) -> reqwest::Response {
    app.token_form(
        Some((&dev.client_id, &dev.secret)),
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await
}

/// Asserts an RFC 6749 §5.2 error (400 unless said) with this `error`.
async fn refused(resp: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

impl Page {
    pub(crate) fn is_device_login(&self) -> bool {
        self.body.contains("action=\"/device/login\"")
    }
    pub(crate) fn is_code_form(&self) -> bool {
        self.body.contains("action=\"/device\"") && self.body.contains("name=\"user_code\"")
    }
    pub(crate) fn is_device_consent(&self) -> bool {
        self.body.contains("action=\"/device/consent\"")
            && self.body.contains(">Yes, Allow</button>")
    }
}

/// Opens `verification_uri_complete` and signs in as `email`: the code form.
async fn sign_in(browser: &Browser, link: &str, email: &str) -> Page {
    let page = browser.get(link).await;
    assert!(page.is_device_login(), "{page:?}");
    let csrf = page.hidden("csrf_token").unwrap();
    let request = page.hidden("request").unwrap();
    let page = browser
        .post(
            "/device/login",
            &[
                ("csrf_token", csrf.as_str()),
                ("request", request.as_str()),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(page.is_code_form(), "{page:?}");
    page
}

/// Submits `code` on the code form `page`.
pub(crate) async fn enter(browser: &Browser, page: &Page, code: &str) -> Page {
    let csrf = page.hidden("csrf_token").unwrap();
    browser
        .post(
            "/device",
            &[("csrf_token", csrf.as_str()), ("user_code", code)],
        )
        .await
}

/// Presses Allow (`allow`) or No (`deny`) on the device's consent page.
pub(crate) async fn decide(browser: &Browser, page: &Page, decision: &str) -> Page {
    assert!(page.is_device_consent(), "{page:?}");
    let csrf = page.hidden("csrf_token").unwrap();
    let request = page.hidden("request").unwrap();
    browser
        .post(
            "/device/consent",
            &[
                ("csrf_token", csrf.as_str()),
                ("request", request.as_str()),
                ("decision", decision),
            ],
        )
        .await
}

/// Ana opens the link, signs in, confirms the prefilled code and decides.
async fn person_decides(app: &TestApp, started: &Value, decision: &str) -> Page {
    let browser = Browser::new(app);
    let link = started["verification_uri_complete"].as_str().unwrap();
    let form = sign_in(&browser, link, "ana@acme.test").await;
    // Prefilled, but only submitting it goes on (RFC 8628 §5.4).
    assert_eq!(
        form.hidden("user_code").as_deref(),
        started["user_code"].as_str()
    );
    let code = form.hidden("user_code").unwrap();
    let consent = enter(&browser, &form, &code.to_lowercase()).await;
    assert!(consent.body.contains("Studio TV"), "{consent:?}");
    assert!(consent.body.contains("cfgateway"), "{consent:?}");
    decide(&browser, &consent, decision).await
}

#[tokio::test]
async fn a_device_gets_tokens_once_the_person_signs_in_and_allows() {
    let (app, dev, api) = setup().await;
    let started = codes(&app, &dev, "cfgateway openid offline_access").await;
    let device_code = started["device_code"].as_str().unwrap();
    refused(
        poll(&app, &dev, device_code).await,
        400,
        "authorization_pending",
    )
    .await;

    let done = person_decides(&app, &started, "allow").await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Device connected"), "{done:?}");

    app.clock.advance(5);
    let resp = poll(&app, &dev, device_code).await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let mut scope: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["cfgateway", "offline_access", "openid"]);
    assert!(tokens["id_token"].is_string(), "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    let seen = app.introspect((&api.client_id, &api.secret), at).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["sub"], app.user_id("ana@acme.test").await);

    // Used once: polling again is invalid_grant.
    app.clock.advance(5);
    refused(poll(&app, &dev, device_code).await, 400, "invalid_grant").await;

    // The refresh token refreshes, as the code flow's does.
    let refreshed = app
        .token_form(
            Some((&dev.client_id, &dev.secret)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);

    // The approval is in the organization's audit log, without the codes.
    let org = app.org("acme-studio").await;
    let events = app.s().audit_events(&org.id, None, 50).await.unwrap();
    let e = events
        .iter()
        .find(|e| e.action == "device.approved")
        .expect("an approval event");
    assert_eq!(e.actor_name, "ana@acme.test");
    assert!(!e.detail.contains(started["user_code"].as_str().unwrap()));
}

#[tokio::test]
async fn without_offline_access_or_openid_only_an_access_token_is_issued() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    person_decides(&app, &started, "allow").await;
    let resp = poll(&app, &dev, started["device_code"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["scope"], "cfgateway");
    assert!(tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none());
}

#[tokio::test]
async fn polling_faster_than_the_interval_is_slow_down_and_the_interval_grows() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    let device_code = started["device_code"].as_str().unwrap();
    refused(
        poll(&app, &dev, device_code).await,
        400,
        "authorization_pending",
    )
    .await;
    app.clock.advance(2);
    let body = refused(poll(&app, &dev, device_code).await, 400, "slow_down").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds"),
        "{body}"
    );
    // 5 s is now too fast (§3.5: the interval grew by 5 s)…
    app.clock.advance(5);
    refused(poll(&app, &dev, device_code).await, 400, "slow_down").await;
    // …and 15 s (the interval after two slow-downs) is fine.
    app.clock.advance(15);
    refused(
        poll(&app, &dev, device_code).await,
        400,
        "authorization_pending",
    )
    .await;
}

#[tokio::test]
async fn a_denial_is_access_denied() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    let done = person_decides(&app, &started, "deny").await;
    assert!(done.body.contains("Access denied"), "{done:?}");
    refused(
        poll(&app, &dev, started["device_code"].as_str().unwrap()).await,
        400,
        "access_denied",
    )
    .await;
    let org = app.org("acme-studio").await;
    let events = app.s().audit_events(&org.id, None, 50).await.unwrap();
    assert!(events.iter().any(|e| e.action == "device.denied"));
}

#[tokio::test]
async fn after_ten_minutes_the_codes_are_expired() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    let device_code = started["device_code"].as_str().unwrap();
    app.clock.advance(601);
    refused(poll(&app, &dev, device_code).await, 400, "expired_token").await;
    // The person is too late as well.
    let browser = Browser::new(&app);
    let link = started["verification_uri_complete"].as_str().unwrap();
    let form = sign_in(&browser, link, "ana@acme.test").await;
    let page = enter(&browser, &form, started["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("not valid or has expired"), "{page:?}");
}

#[tokio::test]
async fn unknown_device_codes_are_invalid_grant() {
    let (app, dev, _) = setup().await;
    refused(poll(&app, &dev, "not-a-code").await, 400, "invalid_grant").await;
    let long = "x".repeat(500);
    refused(poll(&app, &dev, &long).await, 400, "invalid_request").await;
    // Another app's device code is unknown to this one.
    let started = codes(&app, &dev, "cfgateway").await;
    let other = app.web_app("cfgateway").await;
    refused(
        poll(&app, &other, started["device_code"].as_str().unwrap()).await,
        400,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn an_app_without_the_grant_is_unauthorized_client() {
    let (app, _, _) = setup().await;
    let web = app.web_app("cfgateway").await;
    refused(
        ask(&app, &web, "cfgateway").await,
        400,
        "unauthorized_client",
    )
    .await;
    // Bad credentials are the token endpoint's 401.
    let resp = app
        .http
        .post(app.url("/connect/deviceauthorization"))
        .basic_auth(&web.client_id, Some("wrong"))
        .form(&[("scope", "cfgateway")])
        .send()
        .await
        .unwrap();
    refused(resp, 401, "invalid_client").await;
}

#[tokio::test]
async fn scopes_are_checked_as_the_code_flow_checks_them() {
    let (app, dev, _) = setup().await;
    refused(ask(&app, &dev, "bogus:scope").await, 400, "invalid_scope").await;
    // The app's defaults when no scope is asked.
    let resp = app
        .http
        .post(app.url("/connect/deviceauthorization"))
        .basic_auth(&dev.client_id, Some(&dev.secret))
        .form(&[("client_id", dev.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn wrong_user_codes_are_throttled_per_person() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    let browser = Browser::new(&app);
    let form = sign_in(&browser, &app.url("/device"), "ana@acme.test").await;
    assert_eq!(form.hidden("user_code").as_deref(), Some(""));
    for wrong in [
        "BBBB-BBBB",
        "not a code",
        "CCCC-CCCC",
        "DDDD-DDDD",
        "FFFF-FFFF",
    ] {
        let page = enter(&browser, &form, wrong).await;
        assert_eq!(page.status, 400, "{page:?}");
        assert!(page.body.contains("not valid or has expired"), "{page:?}");
    }
    // Now even the right code waits: guessing stays slow.
    let page = enter(&browser, &form, started["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 429, "{page:?}");
    assert!(page.headers.contains_key("retry-after"));
    assert!(page.body.contains("Too many wrong codes"), "{page:?}");
}

#[tokio::test]
async fn a_person_of_another_organization_cannot_approve() {
    let (app, dev, _) = setup().await;
    let now = SystemClock.now();
    let op = Actor::operator();
    admin::create_org(app.s(), now, &op, "Bolt Works", None)
        .await
        .unwrap();
    admin::create_user(
        app.s(),
        now,
        &op,
        NewUser {
            org: &app.org("bolt-works").await,
            email: "bo@bolt.test",
            name: None,
            role: "admin",
            groups: vec![],
            password: Some(PASSWORD),
            profile: Default::default(),
        },
    )
    .await
    .unwrap();
    let started = codes(&app, &dev, "cfgateway").await;
    let browser = Browser::new(&app);
    let link = started["verification_uri_complete"].as_str().unwrap();
    let form = sign_in(&browser, link, "bo@bolt.test").await;
    let page = enter(&browser, &form, started["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 400);
    assert!(!page.is_device_consent());
    // A consent posted anyway is refused and changes nothing.
    let csrf = page.hidden("csrf_token").unwrap();
    let code = started["user_code"].as_str().unwrap().replace('-', "");
    let page = browser
        .post(
            "/device/consent",
            &[
                ("csrf_token", csrf.as_str()),
                ("request", code.as_str()),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(page.status, 400, "{page:?}");
    refused(
        poll(&app, &dev, started["device_code"].as_str().unwrap()).await,
        400,
        "authorization_pending",
    )
    .await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    let browser = Browser::new(&app);
    sign_in(&browser, &app.url("/device"), "ana@acme.test").await;
    let page = browser
        .post(
            "/device",
            &[("user_code", started["user_code"].as_str().unwrap())],
        )
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn revoking_the_grant_ends_the_devices_tokens() {
    let (app, dev, api) = setup().await;
    let started = codes(&app, &dev, "cfgateway offline_access").await;
    person_decides(&app, &started, "allow").await;
    let resp = poll(&app, &dev, started["device_code"].as_str().unwrap()).await;
    let tokens: Value = resp.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), at).await["active"],
        true
    );
    let resp = app.revoke(&dev, rt, Some("refresh_token")).await;
    assert_eq!(resp.status(), 200);
    app.caught_up().await;
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), at).await["active"],
        false
    );
    let again = app
        .token_form(
            Some((&dev.client_id, &dev.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    refused(again, 400, "invalid_grant").await;
}

#[tokio::test]
async fn consents_posted_with_guessed_codes_are_throttled_too() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    let browser = Browser::new(&app);
    let form = sign_in(&browser, &app.url("/device"), "ana@acme.test").await;
    let csrf = form.hidden("csrf_token").unwrap();
    let post = |code: &'static str| {
        let csrf = csrf.clone();
        let browser = &browser;
        async move {
            browser
                .post(
                    "/device/consent",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("request", code),
                        ("decision", "allow"),
                    ],
                )
                .await
        }
    };
    for guess in ["BBBBBBBB", "CCCCCCCC", "DDDDDDDD", "FFFFFFFF", "GGGGGGGG"] {
        assert_eq!(post(guess).await.status, 400);
    }
    assert_eq!(post("HHHHHHHH").await.status, 429);
    // Nothing was approved.
    refused(
        poll(&app, &dev, started["device_code"].as_str().unwrap()).await,
        400,
        "authorization_pending",
    )
    .await;
}

#[tokio::test]
async fn wrong_user_codes_are_throttled_per_address_across_people() {
    let (app, dev, _) = setup().await;
    let started = codes(&app, &dev, "cfgateway").await;
    // Four people at one address spend its 20 wrong codes (5 each, their own limit).
    for n in 1..=4 {
        let email = format!("p{n}@acme.test");
        app.password_user(&email, "developer").await;
        let browser = Browser::new(&app);
        let form = sign_in(&browser, &app.url("/device"), &email).await;
        for _ in 0..5 {
            assert_eq!(enter(&browser, &form, "BBBB-BBBB").await.status, 400);
        }
    }
    // A fifth person there waits, even with the right code.
    app.password_user("p5@acme.test", "developer").await;
    let browser = Browser::new(&app);
    let form = sign_in(&browser, &app.url("/device"), "p5@acme.test").await;
    let page = enter(&browser, &form, started["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 429, "{page:?}");
}
