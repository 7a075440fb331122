//! People and organizations (issue 10 items 3 and 9): an email address is unique
//! per organization, not across the installation, and a person authorizes only
//! their own organization's apps.

use gatehouse_core::admin::{self, NewApp, NewUser};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::{Actor, GrantType};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::admin_in;
use crate::browser::{Browser, callback_params, expect_error_redirect};
use crate::console::{Console, csrf_in};
use crate::helpers::{CALLBACK, PASSWORD, TestApp, WebApp, authorize_params, code_params};

/// A second organization `bolt-works` with an authorization code app redirecting
/// to [`CALLBACK`], allowed the seed's `cfgateway` scope name on its own API.
async fn bolt_web_app(app: &TestApp) -> WebApp {
    let now = SystemClock.now();
    let op = Actor::operator();
    admin::create_org(app.s(), now, &op, "Bolt Works", None)
        .await
        .unwrap();
    admin::create_api(
        app.s(),
        now,
        &op,
        admin::NewApi {
            org: &app.org("bolt-works").await,
            name: "Bolt API",
            audience: "https://api.bolt.test",
            scopes: "bolts:read",
            token_format: gatehouse_core::model::TokenFormat::Jwt,
            signing_alg: gatehouse_core::model::SigningAlg::ES256,
            access_token_ttl: 3600,
        },
    )
    .await
    .unwrap();
    let (web, secret) = admin::register_app(
        app.s(),
        now,
        &app.policy,
        &op,
        NewApp {
            org: &app.org("bolt-works").await,
            name: "Bolt sync",
            description: None,
            grant: GrantType::AuthorizationCode,
            on_behalf_of: None,
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            scopes: "bolts:read",
            default_scopes: None,
            audience: None,
            exchange_audiences: vec![],
        },
    )
    .await
    .unwrap();
    WebApp {
        client_id: web.client_id,
        secret: secret.expose().to_owned(),
    }
}

async fn bolt_user(app: &TestApp, email: &str, password: &str) -> String {
    admin::create_user(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        NewUser {
            org: &app.org("bolt-works").await,
            email,
            name: None,
            role: "developer",
            groups: vec![],
            password: Some(password),
            profile: Default::default(),
        },
    )
    .await
    .unwrap()
    .id
}

fn bolt_params(web: &WebApp) -> crate::helpers::Params {
    authorize_params(web).set("scope", "bolts:read openid")
}

/// Item 9: two organizations each create `ana@…` (201 both: no 409 telling one
/// tenant the address exists in another), and each signs in to its own org's app.
#[tokio::test]
async fn two_organizations_may_have_the_same_email_and_each_signs_in_to_its_own() {
    let (app, acme_web, acme_ana) = TestApp::web_setup().await;
    let bolt_web = bolt_web_app(&app).await;
    let acme_admin = admin_in(&app, "acme-studio", "root@acme.test").await;
    let bolt_admin = admin_in(&app, "bolt-works", "root@bolt.test").await;
    for admin in [&acme_admin, &bolt_admin] {
        let r = admin
            .send(
                &app,
                Method::POST,
                "/api/v1/users",
                json!({"email": "kai@shared.test", "role": "developer", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.raw);
    }
    // The Acme account `ana@acme.test` has a namesake at Bolt with its own password.
    let bolt_ana = bolt_user(&app, "ana@acme.test", "bolt's own password").await;
    assert_ne!(bolt_ana, acme_ana);

    // Each app's sign-in finds the account of its own organization.
    let browser = Browser::new(&app);
    let page = browser.authorize(&bolt_params(&bolt_web)).await;
    let page = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert_eq!(page.status, 401, "Acme's password is not Bolt's account's");
    let page = browser
        .login(&page, "ana@acme.test", "bolt's own password")
        .await;
    let page = browser.consent(&page, "allow").await;
    let code = page.callback().get("code").unwrap().to_owned();
    let tokens: Value = app
        .web_token(&bolt_web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let seen = app
        .introspect(
            (&bolt_web.client_id, &bolt_web.secret),
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(seen["sub"], bolt_ana.as_str());
    assert_eq!(seen["org"], bolt_admin.org_id.as_str());

    let acme = Browser::new(&app);
    let back = acme
        .sign_in_and_allow(&authorize_params(&acme_web), "ana@acme.test")
        .await;
    let code = callback_params(&back).get("code").unwrap().to_owned();
    let tokens: Value = app
        .web_token(&acme_web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let seen = app
        .introspect(
            (&acme_web.client_id, &acme_web.secret),
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(seen["sub"], acme_ana.as_str());
}

/// Item 9, the console (no app to name the organization): the password picks the
/// account; when it fits accounts of several organizations, the form asks for
/// the organization, and only then.
#[tokio::test]
async fn console_sign_in_asks_for_the_organization_only_when_the_password_fits_several() {
    let (app, _, _) = TestApp::web_setup().await;
    bolt_web_app(&app).await;
    app.password_user("root@acme.test", "admin").await;
    // Same address and password in both organizations.
    bolt_user(&app, "root@acme.test", PASSWORD).await;
    let console = Console::new(&app);
    let csrf = console.csrf("/console").await;
    let form = |org: Option<&'static str>| {
        let mut f = vec![
            ("csrf_token", csrf.clone()),
            ("email", "root@acme.test".to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        if let Some(o) = org {
            f.push(("organization", o.to_owned()));
        }
        f
    };
    let resp = console
        .http
        .post(console.url("/console/login"))
        .form(&form(None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("several organizations"), "{html}");
    assert!(html.contains("name=\"organization\""), "{html}");
    let resp = console
        .http
        .post(console.url("/console/login"))
        .form(&form(Some("acme-studio")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console");

    // A wrong password is wrong whatever the organization; an address with one
    // account needs no organization (ana is in Acme only).
    let other = Console::new(&app);
    let csrf = csrf_in(&other.page("/console").await);
    let wrong = other
        .http
        .post(other.url("/console/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "root@acme.test"),
            ("password", "not it at all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let html = wrong.text().await.unwrap();
    assert!(!html.contains("several organizations"), "{html}");
    Console::sign_in(&app, "ana@acme.test").await;
}

/// Item 3: a person of Acme cannot authorize Bolt's app: their Acme password at
/// Bolt's sign-in fails like a wrong password, an Acme session is not taken for
/// a Bolt account, and a consent posted with it never yields a code.
#[tokio::test]
async fn a_person_cannot_authorize_another_organizations_app() {
    let (app, acme_web, _) = TestApp::web_setup().await;
    let bolt_web = bolt_web_app(&app).await;
    let browser = Browser::new(&app);

    // Signing in at Bolt's app with an Acme account: refused as unknown.
    let page = browser.authorize(&bolt_params(&bolt_web)).await;
    let page = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert_eq!(page.status, 401);
    assert!(
        page.body.contains("Wrong email or password"),
        "{}",
        page.body
    );

    // Signed in to Acme (through Acme's app), Bolt's request shows the sign-in
    // form again, not a consent page nor a code.
    let back = browser
        .sign_in_and_allow(&authorize_params(&acme_web), "ana@acme.test")
        .await;
    assert!(callback_params(&back).get("code").is_some());
    let page = browser.authorize(&bolt_params(&bolt_web)).await;
    assert!(page.is_login(), "{page:?}");
    let silent = browser
        .authorize(&bolt_params(&bolt_web).set("prompt", "none"))
        .await;
    expect_error_redirect(&app, &silent, "login_required");

    // A consent of that shape (Acme session, Bolt request) is access_denied.
    let csrf = page.hidden("csrf_token").unwrap();
    let request = page.hidden("request").unwrap();
    let page = browser
        .post(
            "/consent",
            &[
                ("csrf_token", csrf.as_str()),
                ("request", request.as_str()),
                ("decision", "allow"),
            ],
        )
        .await;
    expect_error_redirect(&app, &page, "access_denied");
}
