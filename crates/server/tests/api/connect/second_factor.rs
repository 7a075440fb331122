//! Second factors (issue 15 §1, TOTP): enrolment on `/account/security`, the
//! second step after the password, replay and throttling, recovery codes, the
//! organization's policy, `amr`/`acr` in the ID token and `acr_values` step-up.
//! Codes are computed here by an independent RFC 6238 implementation (HMAC-SHA-1
//! from aws-lc-rs, not the server's totp-rs), checked against the RFC's vectors.

use aws_lc_rs::hmac;
use gatehouse_core::admin;
use gatehouse_core::clock::Clock;
use gatehouse_core::model::Actor;
use gatehouse_store_sql::SqliteOptions;
use serde_json::{Value, json};

use crate::browser::{Browser, Page, callback_params};
use crate::helpers::{PASSWORD, Params, TestApp, WebApp, authorize_params, code_params};

/// RFC 4648 base32 (no padding) to bytes.
fn base32(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238 with HMAC-SHA-1, 30-second steps, 6 digits (RFC 4226 §5.3).
fn totp_at(key: &[u8], t: i64) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mac = hmac::sign(&k, &((t / 30) as u64).to_be_bytes());
    let h = mac.as_ref();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

#[test]
fn the_tests_own_totp_matches_rfc6238_appendix_b() {
    let key = b"12345678901234567890";
    for (t, code) in [
        (59, "287082"),
        (1111111109, "081804"),
        (2000000000, "279037"),
    ] {
        assert_eq!(totp_at(key, t), code);
    }
    assert_eq!(base32("GEZDGNBVGY3TQOJQ"), b"1234567890");
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let a = s.find(start).unwrap_or_else(|| panic!("{start} in {s}")) + start.len();
    let b = s[a..].find(end).unwrap() + a;
    &s[a..b]
}

/// What enrolment showed: the secret and the recovery codes.
pub(crate) struct Enrolled {
    secret: Vec<u8>,
    codes: Vec<String>,
    /// The page with the recovery codes.
    page: Page,
}

impl Enrolled {
    fn code(&self, app: &TestApp) -> String {
        totp_at(&self.secret, app.clock.now())
    }
}

/// Sets up an authenticator app on `/account/security` from `path` (the status
/// page) in `browser`, confirming it with a code of the server's current step.
pub(crate) async fn enrol_from(app: &TestApp, browser: &Browser, path: &str) -> Enrolled {
    let status = browser.get(&app.url(path)).await;
    assert_eq!(status.status, 200, "{status:?}");
    assert!(
        status.body.contains("No authenticator app is set up"),
        "{}",
        status.body
    );
    let mut form = vec![(
        "csrf_token".to_owned(),
        status.hidden("csrf_token").unwrap(),
    )];
    if let Some(next) = status.hidden("next") {
        form.push(("next".into(), next));
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let setup = browser.post("/account/security/totp", &pairs).await;
    assert_eq!(setup.status, 200, "{setup:?}");
    assert!(
        setup.body.contains("src=\"data:image/svg+xml;base64,"),
        "QR code drawn here"
    );
    let secret = base32(between(&setup.body, "id=\"totp-secret\">", "<"));
    assert_eq!(secret.len(), 20);
    // A wrong first code does not confirm it.
    let csrf = setup.hidden("csrf_token").unwrap();
    let mut confirm = vec![("csrf_token", csrf.as_str()), ("code", "000000")];
    let next = setup.hidden("next");
    if let Some(n) = &next {
        confirm.push(("next", n));
    }
    let wrong = browser
        .post("/account/security/totp/confirm", &confirm)
        .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let code = totp_at(&secret, app.clock.now());
    confirm[1].1 = &code;
    let done = browser
        .post("/account/security/totp/confirm", &confirm)
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    let list = between(&done.body, "<ul id=\"recovery-codes\">", "</ul>");
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    Enrolled {
        secret,
        codes,
        page: done,
    }
}

/// Signs in through the authorization endpoint (password) in `browser`, so its
/// session can reach `/account/security`; then enrols there.
async fn sign_in_and_enrol(app: &TestApp, web: &WebApp, browser: &Browser) -> Enrolled {
    browser
        .sign_in_and_allow(&authorize_params(web), "ana@acme.test")
        .await;
    enrol_from(app, browser, "/account/security").await
}

/// The `Location` of a 303 (relative to the server), as a URL.
fn location(app: &TestApp, p: &Page) -> url::Url {
    assert_eq!(p.status, 303, "{p:?}");
    let base = url::Url::parse(&app.base).unwrap();
    base.join(p.headers["location"].to_str().unwrap()).unwrap()
}

fn is_code_page(p: &Page) -> bool {
    p.body.contains("action=\"/login/second-factor\"")
}

/// Posts `code` on the authorization endpoint's second-step page.
async fn second_step(browser: &Browser, page: &Page, code: &str) -> Page {
    assert!(is_code_page(page), "not the code page: {page:?}");
    let csrf = page.hidden("csrf_token").unwrap();
    let request = page.hidden("request").unwrap();
    browser
        .post(
            "/login/second-factor",
            &[("csrf_token", &csrf), ("request", &request), ("code", code)],
        )
        .await
}

/// Authorize with `params` and the password: the page after the password.
async fn password_step(browser: &Browser, params: &Params) -> Page {
    let page = browser.authorize(params).await;
    browser.login(&page, "ana@acme.test", PASSWORD).await
}

/// From a page after the last sign-in step: consent if asked, the code, tokens.
async fn finish(app: &TestApp, web: &WebApp, browser: &Browser, mut page: Page) -> Value {
    if page.is_consent() {
        page = browser.consent(&page, "allow").await;
    }
    let code = callback_params(&page.redirect())
        .get("code")
        .expect("code")
        .to_owned();
    let resp = app.web_token(web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn id_claims(tokens: &Value) -> Value {
    use base64::Engine;
    let jwt = tokens["id_token"].as_str().expect("id_token");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let org = app.org("acme-studio").await;
    admin::audit_log(app.s(), &Actor::operator(), &org, None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

async fn setup() -> (TestApp, WebApp) {
    let (app, _, _) = TestApp::web_setup().await;
    let web = app.web_app("openid cfgateway").await;
    (app, web)
}

fn oidc(web: &WebApp) -> Params {
    authorize_params(web).set("scope", "openid cfgateway")
}

#[tokio::test]
async fn enrolled_people_sign_in_with_a_code_and_the_id_token_says_mfa() {
    let (app, web) = setup().await;
    // Before: a password sign-in.
    let b0 = Browser::new(&app);
    let t0 = finish(&app, &web, &b0, password_step(&b0, &oidc(&web)).await).await;
    let c0 = id_claims(&t0);
    assert_eq!(c0["amr"], json!(["pwd"]));
    assert_eq!(c0["acr"], "urn:gatehouse:acr:pwd");

    let enrolled = sign_in_and_enrol(&app, &web, &Browser::new(&app)).await;
    assert!(
        audit_actions(&app)
            .await
            .contains(&"mfa.totp_enrolled".to_owned())
    );
    app.clock.advance(30);

    let b = Browser::new(&app);
    let asked = password_step(&b, &oidc(&web)).await;
    assert_eq!(asked.status, 200);
    assert!(is_code_page(&asked), "{asked:?}");
    // No session yet: the authorization endpoint still asks for the password.
    let again = b.authorize(&oidc(&web)).await;
    assert!(again.is_login(), "{again:?}");
    let wrong = second_step(&b, &asked, "123456").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("That code is not right"),
        "{}",
        wrong.body
    );
    let ok = second_step(&b, &wrong, &enrolled.code(&app)).await;
    let t = finish(&app, &web, &b, ok).await;
    let c = id_claims(&t);
    assert_eq!(c["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(c["acr"], "urn:gatehouse:acr:mfa");
    let actions = audit_actions(&app).await;
    assert!(
        actions.contains(&"signin.second_factor_failed".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_code_works_once_even_within_its_window() {
    let (app, web) = setup().await;
    let enrolled = sign_in_and_enrol(&app, &web, &Browser::new(&app)).await;
    app.clock.advance(30);
    let code = enrolled.code(&app);
    let first = Browser::new(&app);
    let page = password_step(&first, &oidc(&web)).await;
    let ok = second_step(&first, &page, &code).await;
    assert!(ok.is_consent() || ok.status == 303, "{ok:?}");
    // The same code from another browser, within the same step: refused.
    let thief = Browser::new(&app);
    let page = password_step(&thief, &oidc(&web)).await;
    let replay = second_step(&thief, &page, &code).await;
    assert_eq!(replay.status, 401);
    assert!(replay.body.contains("used already"), "{}", replay.body);
    // An earlier step's code (within the drift window) is refused too: only
    // steps after the last accepted one count.
    let earlier = totp_at(&enrolled.secret, app.clock.now() - 30);
    let late = second_step(&thief, &replay, &earlier).await;
    assert_eq!(late.status, 401);
    // The next step's code works (drift of one step ahead).
    let ahead = totp_at(&enrolled.secret, app.clock.now() + 30);
    let ok = second_step(&thief, &late, &ahead).await;
    assert!(ok.is_consent() || ok.status == 303, "{ok:?}");
}

#[tokio::test]
async fn each_recovery_code_works_once() {
    let (app, web) = setup().await;
    let enrolled = sign_in_and_enrol(&app, &web, &Browser::new(&app)).await;
    let rc = enrolled.codes[3].clone();
    let b = Browser::new(&app);
    let page = password_step(&b, &oidc(&web)).await;
    // Typed in capitals and without dashes: the same code.
    let ok = second_step(&b, &page, &rc.replace('-', "").to_uppercase()).await;
    let t = finish(&app, &web, &b, ok).await;
    assert_eq!(id_claims(&t)["amr"], json!(["pwd", "otp", "mfa"]));
    let again = Browser::new(&app);
    let page = password_step(&again, &oidc(&web)).await;
    let used = second_step(&again, &page, &rc).await;
    assert_eq!(used.status, 401, "{used:?}");
    let another = second_step(&again, &used, &enrolled.codes[4]).await;
    assert!(another.is_consent() || another.status == 303, "{another:?}");
    let actions = audit_actions(&app).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "mfa.recovery_code_used")
            .count(),
        2,
        "{actions:?}"
    );
    // The page counts what is left.
    let status = again.get(&app.url("/account/security")).await;
    assert!(
        status.body.contains("Recovery codes left: 8"),
        "{}",
        status.body
    );
}

#[tokio::test]
async fn wrong_codes_are_throttled_with_retry_after() {
    let app = TestApp::spawn_with(
        |c| c.login_failures_per_account = 3,
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("openid cfgateway").await;
    let enrolled = sign_in_and_enrol(&app, &web, &Browser::new(&app)).await;
    app.clock.advance(30);
    let b = Browser::new(&app);
    let mut page = password_step(&b, &oidc(&web)).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        page = second_step(&b, &page, "000001").await;
        statuses.push(page.status.as_u16());
    }
    // Three failures per account are allowed, and the wrong code typed while
    // enrolling was one: two more, then 429.
    assert_eq!(statuses, [401, 401, 429]);
    assert!(page.body.contains("Too many wrong codes"), "{}", page.body);
    // While throttled, even the right code is not checked…
    let blocked = second_step(&b, &page, &enrolled.code(&app)).await;
    assert_eq!(blocked.status, 429);
    assert!(
        blocked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(
        blocked.body.contains("Too many wrong codes"),
        "{}",
        blocked.body
    );
    // Another address is not blocked by this one's failures per address, but the
    // account's bucket is shared: a guesser cannot spread over addresses.
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let elsewhere = Browser::from(&app, Some(other), Default::default());
    let page = password_step(&elsewhere, &oidc(&web)).await;
    let refused = second_step(&elsewhere, &page, "000002").await;
    assert_eq!(refused.status, 429, "{refused:?}");
}

#[tokio::test]
async fn an_organization_that_requires_mfa_leads_people_to_enrol_first() {
    let (app, web) = setup().await;
    let org = app.org("acme-studio").await;
    admin::set_requires_mfa(app.s(), app.clock.now(), &Actor::operator(), &org, true)
        .await
        .unwrap();
    let b = Browser::new(&app);
    let after_password = password_step(&b, &oidc(&web)).await;
    // Led to the enrolment page, the request carried in `next`.
    let to = location(&app, &after_password);
    assert_eq!(to.path(), "/account/security");
    // Not signed in yet: the authorization endpoint asks for the password.
    assert!(b.authorize(&oidc(&web)).await.is_login());
    let path = format!("/account/security?{}", to.query().unwrap());
    let status = b.get(&app.url(&path)).await;
    assert!(
        status
            .body
            .contains("Your organization requires two-step verification"),
        "{}",
        status.body
    );
    let enrolled = enrol_from(&app, &b, &path).await;
    // "Continue" goes back to the authorization request, now signed in with both.
    let next = between(&enrolled.page.body, "id=\"continue\" href=\"", "\"");
    let next = crate::browser::unescape(next);
    assert!(next.starts_with("/connect/authorize?"), "{next}");
    let back = b.get(&app.url(&next)).await;
    let t = finish(&app, &web, &b, back).await;
    assert_eq!(id_claims(&t)["acr"], "urn:gatehouse:acr:mfa");
}

#[tokio::test]
async fn acr_values_mfa_steps_up_a_password_session() {
    let (app, web) = setup().await;
    // A password session from before the authenticator was set up elsewhere.
    let b = Browser::new(&app);
    let t = finish(&app, &web, &b, password_step(&b, &oidc(&web)).await).await;
    assert_eq!(id_claims(&t)["acr"], "urn:gatehouse:acr:pwd");
    let enrolled = sign_in_and_enrol(&app, &web, &Browser::new(&app)).await;
    app.clock.advance(30);
    // prompt=none cannot ask: interaction_required.
    let silent = b
        .authorize(
            &oidc(&web)
                .set("acr_values", "urn:gatehouse:acr:mfa")
                .set("prompt", "none"),
        )
        .await;
    assert_eq!(
        callback_params(&silent.redirect()).get("error"),
        Some("interaction_required")
    );
    let asked = b
        .authorize(&oidc(&web).set("acr_values", "urn:gatehouse:acr:mfa"))
        .await;
    assert!(is_code_page(&asked), "{asked:?}");
    let ok = second_step(&b, &asked, &enrolled.code(&app)).await;
    let t = finish(&app, &web, &b, ok).await;
    let c = id_claims(&t);
    assert_eq!(c["acr"], "urn:gatehouse:acr:mfa");
    assert_eq!(c["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn an_essential_mfa_acr_leads_a_person_without_a_factor_to_enrol() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    let essential = oidc(&web).set(
        "claims",
        r#"{"id_token":{"acr":{"essential":true,"values":["urn:gatehouse:acr:mfa"]}}}"#,
    );
    let page = password_step(&b, &essential).await;
    assert_eq!(location(&app, &page).path(), "/account/security");
    // Without one, no code is issued for it.
    let silent = b.authorize(&essential.clone().set("prompt", "none")).await;
    let back = callback_params(&silent.redirect());
    assert_eq!(back.get("code"), None, "{back:?}");
    assert!(back.get("error").is_some(), "{back:?}");
}

#[tokio::test]
async fn removing_the_factor_needs_the_password_or_a_code() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    let enrolled = sign_in_and_enrol(&app, &web, &b).await;
    let status = b.get(&app.url("/account/security")).await;
    assert!(status.body.contains("An authenticator app is set up"));
    let csrf = status.hidden("csrf_token").unwrap();
    let wrong = b
        .post(
            "/account/security/totp/remove",
            &[("csrf_token", &csrf), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("was not removed"));
    let csrf = wrong.hidden("csrf_token").unwrap();
    let gone = b
        .post(
            "/account/security/totp/remove",
            &[("csrf_token", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(gone.status, 200);
    assert!(
        gone.body.contains("No authenticator app is set up"),
        "{}",
        gone.body
    );
    assert!(
        audit_actions(&app)
            .await
            .contains(&"mfa.totp_removed".to_owned())
    );
    let _ = enrolled;
    // The password alone signs in again.
    let again = Browser::new(&app);
    let page = password_step(&again, &oidc(&web)).await;
    assert!(!is_code_page(&page), "{page:?}");
    // A forged form (no CSRF token) changes nothing.
    let forged = b.post("/account/security/totp", &[]).await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn the_admin_api_sets_the_policy_and_discovery_lists_both_acrs() {
    let (app, _web) = setup().await;
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["acr_values_supported"],
        json!(["urn:gatehouse:acr:pwd", "urn:gatehouse:acr:mfa"])
    );
    let org = app.org("acme-studio").await;
    assert!(
        !admin::requires_mfa(app.s(), &Actor::operator(), &org)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_console_sign_in_asks_for_the_code_too() {
    let (app, web) = setup().await;
    let enrolled = sign_in_and_enrol(&app, &web, &Browser::new(&app)).await;
    app.clock.advance(30);
    let b = Browser::new(&app);
    let login = b.get(&app.url("/console")).await;
    let csrf = login.hidden("csrf_token").unwrap();
    let after = b
        .post(
            "/console/login",
            &[
                ("csrf_token", &csrf),
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let to = location(&app, &after);
    assert_eq!(to.path(), "/signin/second-factor");
    // No session yet: the console still shows the sign-in form.
    assert!(
        b.get(&app.url("/console"))
            .await
            .body
            .contains("action=\"/console/login\"")
    );
    let page = b.get(to.as_str()).await;
    assert_eq!(page.status, 200);
    let csrf = page.hidden("csrf_token").unwrap();
    let next = page.hidden("next").unwrap();
    assert_eq!(next, "/console");
    let wrong = b
        .post(
            "/signin/second-factor",
            &[("csrf_token", &csrf), ("next", &next), ("code", "999999")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let ok = b
        .post(
            "/signin/second-factor",
            &[
                ("csrf_token", &csrf),
                ("next", &next),
                ("code", &enrolled.code(&app)),
            ],
        )
        .await;
    assert_eq!(location(&app, &ok).path(), "/console");
    // An open redirect is not possible through `next`.
    assert_eq!(second_factor_next("//evil.test/x"), "/account/security");
}

fn second_factor_next(n: &str) -> &str {
    gatehouse_server::second_factor::local_next(Some(n))
}
