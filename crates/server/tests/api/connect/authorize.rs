//! `/connect/authorize`, `/login` and `/consent`: the pages a person goes through,
//! and every way the request can fail: a page for what cannot be trusted with a
//! redirect, an error redirect (with `state` and `iss`) for everything else.

use gatehouse_core::admin;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::UserStatus;
use gatehouse_store_sql::SqliteOptions;

use crate::browser::{
    Browser, callback_params, code_for, expect_error_page, expect_error_redirect, sets_cookie,
};
use crate::helpers::{CALLBACK, PASSWORD, TestApp, WebApp, authorize_params, code_params};

async fn setup() -> (TestApp, WebApp, Browser) {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    (app, web, browser)
}

// ---- requests that must not redirect -------------------------------------

#[tokio::test]
async fn unknown_client_gets_an_error_page_and_no_redirect() {
    let (_app, web, browser) = setup().await;
    let page = browser
        .authorize(&authorize_params(&web).set("client_id", "no-such-app"))
        .await;
    expect_error_page(&page, 400, "not registered");
}

#[tokio::test]
async fn missing_client_id_gets_an_error_page_and_no_redirect() {
    let (_app, web, browser) = setup().await;
    let page = browser
        .authorize(&authorize_params(&web).without("client_id"))
        .await;
    expect_error_page(&page, 400, "client_id");
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let (_app, web, browser) = setup().await;
    for uri in [
        "https://evil.test/callback",
        "https://sync.acme.test/callback/",
        "https://sync.acme.test/callback?next=/admin",
        "https://SYNC.acme.test/callback",
        "http://sync.acme.test/callback",
    ] {
        let page = browser
            .authorize(&authorize_params(&web).set("redirect_uri", uri))
            .await;
        expect_error_page(&page, 400, "redirect URI is not registered");
        // Not even an error redirect may go there.
        assert!(!page.body.contains("evil.test"), "{uri}: {}", page.body);
    }
}

/// RFC 9700 §4.11.2: error redirects happen without interaction, so they must
/// only ever reach a URI the (authenticated, audited) tenant registered exactly.
/// Every kind of error: near matches get the error page, the exact URI gets the
/// redirect, to exactly that URI.
#[tokio::test]
async fn error_redirects_go_only_to_the_exactly_registered_uri() {
    let (_app, web, browser) = setup().await;
    let errors = [
        ("response_type", "token"),
        ("scope", "no-such-scope"),
        ("prompt", "none"),
        ("request", "eyJhbGciOiJub25lIn0.e30."),
        ("code_challenge_method", "plain"),
    ];
    let near = [
        "https://sync.acme.test/callback/",
        "https://sync.acme.test/callback?x=1",
        "https://sync.acme.test/callback#f",
        "https://sync.acme.test:443/callback",
        "https://sync.acme.test./callback",
        "https://sync.acme.test/Callback",
        "https://sync.acme.test/callback/../callback",
        "https://sync.acme.test%2F@evil.test/callback",
        "https://evil.test/callback",
    ];
    for (k, v) in errors {
        for uri in near {
            let page = browser
                .authorize(&authorize_params(&web).set(k, v).set("redirect_uri", uri))
                .await;
            assert!(page.headers.get("location").is_none(), "{k}={v} {uri}");
            assert_eq!(page.status, 400, "{k}={v} {uri}: {page:?}");
        }
        let page = browser.authorize(&authorize_params(&web).set(k, v)).await;
        let to = page.redirect();
        let mut bare = to.clone();
        bare.set_query(None);
        assert_eq!(bare.as_str(), CALLBACK, "{k}={v}");
        assert!(page.callback().get("error").is_some(), "{k}={v}");
    }
}

#[tokio::test]
async fn without_redirect_uri_the_only_registered_one_is_used() {
    let (app, web, browser) = setup().await;
    let back = browser
        .sign_in_and_allow(
            &authorize_params(&web).without("redirect_uri"),
            "ana@acme.test",
        )
        .await;
    let p = callback_params(&back);
    // Then the token request must not name one either (RFC 6749 §4.1.3).
    let resp = app
        .web_token(
            &web,
            &code_params(p.get("code").unwrap()).without("redirect_uri"),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

// ---- errors redirected to the app, with state ----------------------------

#[tokio::test]
async fn unsupported_response_type_redirects_with_the_state() {
    let (app, web, browser) = setup().await;
    for rt in ["token", "id_token", "code id_token"] {
        let page = browser
            .authorize(&authorize_params(&web).set("response_type", rt))
            .await;
        expect_error_redirect(&app, &page, "unsupported_response_type");
    }
}

#[tokio::test]
async fn missing_response_type_redirects_invalid_request() {
    let (app, web, browser) = setup().await;
    let page = browser
        .authorize(&authorize_params(&web).without("response_type"))
        .await;
    let p = expect_error_redirect(&app, &page, "invalid_request");
    assert!(
        p.get("error_description")
            .unwrap()
            .contains("response_type")
    );
}

#[tokio::test]
async fn undefined_or_not_allowed_scope_redirects_invalid_scope() {
    let (app, web, browser) = setup().await;
    // Defined by no API…
    let page = browser
        .authorize(&authorize_params(&web).set("scope", "openid admin:everything"))
        .await;
    expect_error_redirect(&app, &page, "invalid_scope");
    // …defined, but the app may not have it.
    let page = browser
        .authorize(&authorize_params(&web).set("scope", "openid products:read"))
        .await;
    expect_error_redirect(&app, &page, "invalid_scope");
}

#[tokio::test]
async fn plain_pkce_and_malformed_challenges_redirect_invalid_request() {
    let (app, web, browser) = setup().await;
    for p in [
        authorize_params(&web).set("code_challenge_method", "plain"),
        authorize_params(&web).set("code_challenge", "too-short"),
        authorize_params(&web).without("code_challenge"),
    ] {
        let page = browser.authorize(&p).await;
        expect_error_redirect(&app, &page, "invalid_request");
    }
}

#[tokio::test]
async fn unknown_prompts_redirect_invalid_request() {
    let (app, web, browser) = setup().await;
    for p in [
        authorize_params(&web).set("prompt", "select_account"),
        authorize_params(&web).set("prompt", "none login"),
        authorize_params(&web).set("max_age", "-1"),
    ] {
        let page = browser.authorize(&p).await;
        expect_error_redirect(&app, &page, "invalid_request");
    }
}

/// OpenID Connect Core §3.1.2.6: each kind of request object has its own error.
#[tokio::test]
async fn request_and_request_uri_redirect_their_not_supported_errors() {
    let (app, web, browser) = setup().await;
    let page = browser
        .authorize(&authorize_params(&web).set("request", "eyJhbGciOiJub25lIn0.e30."))
        .await;
    expect_error_redirect(&app, &page, "request_not_supported");
    let page = browser
        .authorize(&authorize_params(&web).set("request_uri", "https://sync.acme.test/req/1"))
        .await;
    expect_error_redirect(&app, &page, "request_uri_not_supported");
    let meta: serde_json::Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["request_parameter_supported"], false);
    assert_eq!(meta["request_uri_parameter_supported"], false);
}

#[tokio::test]
async fn state_is_echoed_exactly_however_it_is_spelled() {
    let (_app, web, browser) = setup().await;
    let st = "a b&c=d/é?#%20";
    let page = browser
        .authorize(
            &authorize_params(&web)
                .set("state", st)
                .set("response_type", "token"),
        )
        .await;
    assert_eq!(page.callback().get("state"), Some(st));
    let back = browser
        .sign_in_and_allow(&authorize_params(&web).set("state", st), "ana@acme.test")
        .await;
    assert_eq!(callback_params(&back).get("state"), Some(st));
}

#[tokio::test]
async fn overlong_state_gets_an_error_page() {
    let (_app, web, browser) = setup().await;
    let page = browser
        .authorize(&authorize_params(&web).set("state", &"s".repeat(1025)))
        .await;
    expect_error_page(&page, 400, "state");
}

#[tokio::test]
async fn markup_in_the_request_is_escaped_on_the_pages() {
    let (_app, web, browser) = setup().await;
    // A form POST can carry characters a URL would have encoded.
    let raw = format!(
        "{}&login_hint=\"><script>alert(1)</script>",
        authorize_params(&web).set("state", "<b>\"'&").query()
    );
    let resp = browser
        .http
        .post(_app.url("/connect/authorize"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    let page = crate::browser::Page::read(resp).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert_eq!(page.hidden("request").unwrap(), raw);
    assert_eq!(
        page.hidden("email").unwrap(),
        "\"><script>alert(1)</script>"
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_redirects_login_required() {
    let (app, web, browser) = setup().await;
    let page = browser
        .authorize(&authorize_params(&web).set("prompt", "none"))
        .await;
    expect_error_redirect(&app, &page, "login_required");
}

#[tokio::test]
async fn prompt_none_signed_in_without_consent_redirects_consent_required() {
    let (app, web, browser) = setup().await;
    // Signed in, but consent only for a smaller request.
    browser
        .sign_in_and_allow(
            &authorize_params(&web).set("scope", "openid"),
            "ana@acme.test",
        )
        .await;
    let page = browser
        .authorize(&authorize_params(&web).set("prompt", "none"))
        .await;
    expect_error_redirect(&app, &page, "consent_required");
    // With consent it answers silently.
    let page = browser
        .authorize(
            &authorize_params(&web)
                .set("scope", "openid")
                .set("prompt", "none"),
        )
        .await;
    assert!(page.callback().get("code").is_some());
}

/// OpenID Connect Core §3.1.2.1: prompt=none never shows a page; a deactivated
/// account is not signed in (and its session ends).
#[tokio::test]
async fn prompt_none_for_a_deactivated_user_redirects_login_required() {
    let (app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
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
    let page = browser
        .authorize(&authorize_params(&web).set("prompt", "none"))
        .await;
    expect_error_redirect(&app, &page, "login_required");
    assert!(
        sets_cookie(&page, "gatehouse_session").is_some(),
        "{page:?}"
    );
}

#[tokio::test]
async fn prompt_none_for_a_user_who_may_not_authorize_redirects_access_denied() {
    let (app, web, browser) = setup().await;
    app.password_user("max@acme.test", "member").await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let refused = browser.login(&page, "max@acme.test", PASSWORD).await;
    expect_error_page(&refused, 403, "Developer API permission");
    // Still signed in: a silent request goes back to the app, never to a page.
    let page = browser
        .authorize(&authorize_params(&web).set("prompt", "none"))
        .await;
    expect_error_redirect(&app, &page, "access_denied");
}

/// Silent authentication for another account than the signed-in one would need
/// the user to switch accounts: `interaction_required`, never a page.
#[tokio::test]
async fn prompt_none_with_a_login_hint_for_another_account_redirects_interaction_required() {
    let (app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let page = browser
        .authorize(
            &authorize_params(&web)
                .set("prompt", "none")
                .set("login_hint", "bo@acme.test"),
        )
        .await;
    expect_error_redirect(&app, &page, "interaction_required");
    // The signed-in account's own hint (any case) answers silently.
    let page = browser
        .authorize(
            &authorize_params(&web)
                .set("prompt", "none")
                .set("login_hint", "Ana@Acme.test"),
        )
        .await;
    assert!(page.callback().get("code").is_some(), "{page:?}");
}

#[tokio::test]
async fn prompt_none_with_a_too_old_sign_in_redirects_login_required() {
    let (app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    app.clock.advance(120);
    let page = browser
        .authorize(
            &authorize_params(&web)
                .set("max_age", "60")
                .set("prompt", "none"),
        )
        .await;
    expect_error_redirect(&app, &page, "login_required");
}

// ---- the pages -------------------------------------------------------------

#[tokio::test]
async fn login_page_carries_csrf_and_the_request_and_prefills_the_login_hint() {
    let (_app, web, browser) = setup().await;
    let params = authorize_params(&web).set("login_hint", "ana@acme.test");
    let page = browser.authorize(&params).await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let csrf = sets_cookie(&page, "gatehouse_csrf").expect("csrf cookie");
    assert!(csrf.contains("HttpOnly"), "{csrf}");
    assert!(csrf.contains("SameSite=Lax"), "{csrf}");
    // The form token is bound to the cookie (an HMAC under it), not the cookie itself.
    let token = page.hidden("csrf_token").unwrap();
    assert_eq!(token.len(), 43, "{token}");
    assert_ne!(
        token,
        csrf["gatehouse_csrf=".len()..].split(';').next().unwrap()
    );
    assert_eq!(page.hidden("request").unwrap(), params.query());
    assert_eq!(page.hidden("email").unwrap(), "ana@acme.test");
    assert!(sets_cookie(&page, "gatehouse_session").is_none());
}

#[tokio::test]
async fn authorize_by_form_post_works_like_get() {
    let (_app, web, browser) = setup().await;
    let page = browser
        .post("/connect/authorize", &authorize_params(&web).pairs())
        .await;
    assert_eq!(page.status, 200);
    let consent = browser.login(&page, "ana@acme.test", PASSWORD).await;
    let back = browser.consent(&consent, "allow").await.callback();
    assert!(back.get("code").is_some());
    assert_eq!(back.get("state"), Some("st-8f2a"));
}

#[tokio::test]
async fn wrong_password_is_401_login_page_keeping_the_email() {
    let (_app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    for (email, password) in [
        ("ana@acme.test", "incorrect horse"),
        ("nobody@acme.test", PASSWORD),
        // The seed's developer has no password at all.
        ("dev@acme.test", ""),
    ] {
        let again = browser.login(&page, email, password).await;
        assert_eq!(again.status, 401, "{email}");
        again.assert_login_form();
        assert!(again.body.contains("Wrong email or password."));
        assert_eq!(again.hidden("email").unwrap(), email);
        assert_eq!(
            again.hidden("request").unwrap(),
            authorize_params(&web).query()
        );
        assert!(sets_cookie(&again, "gatehouse_session").is_none());
    }
    // The right password still works afterwards.
    let consent = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert!(consent.is_consent(), "{consent:?}");
    let session = sets_cookie(&consent, "gatehouse_session").expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
}

#[tokio::test]
async fn email_is_matched_case_insensitively() {
    let (_app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let consent = browser.login(&page, " Ana@ACME.test ", PASSWORD).await;
    assert!(consent.is_consent(), "{consent:?}");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_with_retry_after() {
    let app = TestApp::spawn_with(
        |c| c.login_failures_per_account = 3,
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let browser = Browser::new(&app);
    let page = browser.authorize(&authorize_params(&web)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(browser.login(&page, "ana@acme.test", "nope").await.status);
    }
    // Three failures are allowed; the fourth in the window is throttled.
    assert_eq!(statuses, [401, 401, 401, 429]);
    // While throttled, even the right password is not checked.
    let blocked = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert_eq!(blocked.status, 429);
    blocked.assert_login_form();
    assert!(blocked.body.contains("Too many failed sign-ins"));
    let wait: u64 = blocked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
}

#[tokio::test]
async fn deny_redirects_access_denied_with_the_state() {
    let (app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let consent = browser.login(&page, "ana@acme.test", PASSWORD).await;
    let denied = browser.consent(&consent, "deny").await;
    expect_error_redirect(&app, &denied, "access_denied");
    // Nothing was remembered: the next request asks again.
    let again = browser.authorize(&authorize_params(&web)).await;
    assert!(again.is_consent(), "{again:?}");
}

#[tokio::test]
async fn user_without_developer_api_gets_a_403_page_linking_back_with_access_denied() {
    let (app, web, browser) = setup().await;
    app.password_user("max@acme.test", "member").await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let refused = browser.login(&page, "max@acme.test", PASSWORD).await;
    expect_error_page(&refused, 403, "Developer API permission");
    assert!(refused.body.contains("max@acme.test"));
    let link = url::Url::parse(&refused.link().expect("a link back")).unwrap();
    let p = callback_params(&link);
    assert_eq!(p.get("error"), Some("access_denied"));
    assert_eq!(p.get("state"), Some("st-8f2a"));
    assert_eq!(p.get("iss"), Some(app.base.as_str()));
    assert_eq!(p.get("code"), None);
    // Posting the consent form anyway (forged) does not produce a code either. The
    // token from before sign-in ended with it (the CSRF cookie is rotated at sign-in)…
    let stale = page.hidden("csrf_token").unwrap();
    let refused = browser
        .post(
            "/consent",
            &[
                ("csrf_token", &stale),
                ("request", &authorize_params(&web).query()),
                ("decision", "allow"),
            ],
        )
        .await;
    expect_error_page(&refused, 403, "Form expired");
    // …and with a token of this session (from any of its pages) it is refused too.
    let csrf = browser
        .authorize(&authorize_params(&web).set("prompt", "login"))
        .await
        .hidden("csrf_token")
        .unwrap();
    let forged = browser
        .post(
            "/consent",
            &[
                ("csrf_token", &csrf),
                ("request", &authorize_params(&web).query()),
                ("decision", "allow"),
            ],
        )
        .await;
    // The member is signed in now, so the refusal goes back to the app as access_denied.
    let location = forged.headers.get("location").expect("an error redirect");
    let p = callback_params(&url::Url::parse(location.to_str().unwrap()).unwrap());
    assert_eq!(p.get("error"), Some("access_denied"));
    assert_eq!(p.get("code"), None);
}

#[tokio::test]
async fn missing_or_wrong_csrf_token_is_403() {
    let (app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let request = page.hidden("request").unwrap();
    let good = page.hidden("csrf_token").unwrap();
    // Right length, differing only in the last character.
    let wrong = format!("{}A", &good[..good.len() - 1]);
    let wrong = if wrong == good {
        format!("{}B", &good[..good.len() - 1])
    } else {
        wrong
    };
    for csrf in [None, Some(""), Some(wrong.as_str())] {
        let mut form = vec![
            ("request", request.as_str()),
            ("email", "ana@acme.test"),
            ("password", PASSWORD),
        ];
        if let Some(c) = csrf {
            form.push(("csrf_token", c));
        }
        let refused = browser.post("/login", &form).await;
        expect_error_page(&refused, 403, "Form expired");
        assert!(sets_cookie(&refused, "gatehouse_session").is_none());
    }
    // A browser without the cookie (another site's form) is refused too.
    let stranger = Browser::new(&app);
    let refused = stranger
        .post(
            "/login",
            &[
                ("csrf_token", good.as_str()),
                ("request", request.as_str()),
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    expect_error_page(&refused, 403, "Form expired");
    // And the consent form checks it as well.
    let consent = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert!(consent.is_consent());
    let refused = browser
        .post(
            "/consent",
            &[("request", request.as_str()), ("decision", "allow")],
        )
        .await;
    expect_error_page(&refused, 403, "Form expired");
}

#[tokio::test]
async fn cross_site_origin_is_refused_even_with_the_right_token() {
    let (app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let resp = browser
        .http
        .post(app.url("/login"))
        .header("Origin", "https://evil.test")
        .form(&[
            ("csrf_token", page.hidden("csrf_token").unwrap().as_str()),
            ("request", page.hidden("request").unwrap().as_str()),
            ("email", "ana@acme.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn a_tampered_request_field_is_validated_again() {
    let (_app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let csrf = page.hidden("csrf_token").unwrap();
    let evil = authorize_params(&web).set("redirect_uri", "https://evil.test/cb");
    let refused = browser
        .post(
            "/login",
            &[
                ("csrf_token", csrf.as_str()),
                ("request", &evil.query()),
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    expect_error_page(&refused, 400, "redirect URI is not registered");
}

// ---- sessions and remembered consent ---------------------------------------

#[tokio::test]
async fn consent_is_remembered_and_the_next_request_goes_straight_back() {
    let (app, web, browser) = setup().await;
    let code1 = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let page = browser
        .authorize(&authorize_params(&web).set("state", "second"))
        .await;
    let back = page.callback();
    assert_eq!(back.get("state"), Some("second"));
    let code2 = back.get("code").unwrap();
    assert_ne!(code1, code2);
    assert_eq!(app.web_token(&web, &code_params(code2)).await.status(), 200);
    // A smaller request is covered by the consent too.
    let page = browser
        .authorize(&authorize_params(&web).set("scope", "openid cfgateway"))
        .await;
    assert!(page.callback().get("code").is_some());
}

#[tokio::test]
async fn signing_in_with_remembered_consent_keeps_the_browser_signed_in() {
    let (app, web, first) = setup().await;
    code_for(&first, &authorize_params(&web), "ana@acme.test").await;
    // Another browser (or the same one later): sign in, consent is remembered.
    let browser = Browser::new(&app);
    let login = browser.authorize(&authorize_params(&web)).await;
    let back = browser.login(&login, "ana@acme.test", PASSWORD).await;
    assert!(back.callback().get("code").is_some());
    assert!(
        sets_cookie(&back, "gatehouse_session").is_some(),
        "signed in, but no session cookie: {back:?}"
    );
    let again = browser.authorize(&authorize_params(&web)).await;
    assert!(again.callback().get("code").is_some(), "{again:?}");
}

#[tokio::test]
async fn signing_in_again_renews_the_session_for_max_age() {
    let (app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    app.clock.advance(120);
    let login = browser
        .authorize(&authorize_params(&web).set("prompt", "login"))
        .await;
    let back = browser.login(&login, "ana@acme.test", PASSWORD).await;
    assert!(back.callback().get("code").is_some());
    // Signed in a moment ago: max_age=60 is satisfied.
    let page = browser
        .authorize(&authorize_params(&web).set("max_age", "60"))
        .await;
    assert_eq!(page.status, 303, "asked to sign in again: {page:?}");
}

#[tokio::test]
async fn consent_is_asked_again_when_the_scopes_grow() {
    let app = TestApp::spawn().await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway products:read").await;
    let browser = Browser::new(&app);
    code_for(
        &browser,
        &authorize_params(&web).set("scope", "openid cfgateway"),
        "ana@acme.test",
    )
    .await;
    // Same scopes: straight back.
    let page = browser
        .authorize(&authorize_params(&web).set("scope", "openid cfgateway"))
        .await;
    assert!(page.callback().get("code").is_some());
    // One more API scope: the consent page, naming it.
    let page = browser
        .authorize(&authorize_params(&web).set("scope", "openid cfgateway products:read"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.is_consent(), "{page:?}");
    assert!(page.body.contains("products:read"));
    let back = browser.consent(&page, "allow").await.callback();
    let mut scope: Vec<&str> = back.get("scope").unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["cfgateway", "openid", "products:read"]);
    // offline_access is a new scope too.
    let page = browser.authorize(&authorize_params(&web)).await;
    assert!(page.is_consent(), "{page:?}");
}

#[tokio::test]
async fn prompt_consent_asks_again_and_prompt_login_signs_in_again() {
    let (_app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let page = browser
        .authorize(&authorize_params(&web).set("prompt", "consent"))
        .await;
    assert!(page.is_consent(), "{page:?}");
    let page = browser
        .authorize(&authorize_params(&web).set("prompt", "login"))
        .await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
    // Signing in again goes straight back: consent was given.
    let back = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert!(back.callback().get("code").is_some());
}

#[tokio::test]
async fn max_age_older_than_the_sign_in_asks_to_sign_in_again() {
    let (app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    app.clock.advance(120);
    let fresh_enough = browser
        .authorize(&authorize_params(&web).set("max_age", "300"))
        .await;
    assert!(fresh_enough.callback().get("code").is_some());
    let too_old = browser
        .authorize(&authorize_params(&web).set("max_age", "60"))
        .await;
    assert_eq!(too_old.status, 200);
    too_old.assert_login_form();
}

#[tokio::test]
async fn the_session_ends_after_session_ttl() {
    let app = TestApp::spawn_with(|c| c.session_ttl = 600, SqliteOptions::default()).await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let browser = Browser::new(&app);
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    app.clock.advance(599);
    assert!(
        browser
            .authorize(&authorize_params(&web))
            .await
            .callback()
            .get("code")
            .is_some()
    );
    app.clock.advance(2);
    let page = browser.authorize(&authorize_params(&web)).await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
}

#[tokio::test]
async fn a_deactivated_user_cannot_sign_in_and_loses_the_session() {
    let (app, web, browser) = setup().await;
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
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
    let page = browser.authorize(&authorize_params(&web)).await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
    assert!(page.body.contains("This account is deactivated."));
    let again = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("Wrong email or password."));
}

#[tokio::test]
async fn consent_after_the_session_ended_asks_to_sign_in_again() {
    let (app, web, browser) = setup().await;
    let page = browser.authorize(&authorize_params(&web)).await;
    let consent = browser.login(&page, "ana@acme.test", PASSWORD).await;
    assert!(consent.is_consent());
    app.clock.advance(12 * 3600 + 1);
    let page = browser.consent(&consent, "allow").await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
    assert!(page.body.contains("Please sign in again."));
}

#[tokio::test]
async fn the_code_redirect_has_exactly_code_scope_state_iss() {
    let (app, web, browser) = setup().await;
    let back = browser
        .sign_in_and_allow(&authorize_params(&web), "ana@acme.test")
        .await;
    assert!(back.as_str().starts_with(&format!("{CALLBACK}?")));
    assert_eq!(back.fragment(), None);
    let p = callback_params(&back);
    assert_eq!(p.names(), ["code", "scope", "state", "iss"]);
    assert_eq!(p.get("code").unwrap().len(), 43);
    assert_eq!(p.get("iss"), Some(app.base.as_str()));
}
