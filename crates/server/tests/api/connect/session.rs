//! What a signed-in user's tokens and session meet afterwards: userinfo (RFC 6750
//! errors), revocation (RFC 7009), RP-initiated logout, and the discovery entries
//! that announce them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{Browser, code_for, expect_error_page, sets_cookie, tokens_for};
use crate::helpers::{
    BYE, PASSWORD, Params, TestApp, WebApp, authorize_params, code_params, oauth_error,
    refresh_params,
};

async fn setup() -> (TestApp, WebApp, Value) {
    let (app, web, _) = TestApp::web_setup().await;
    let tokens = tokens_for(&app, &web, "ana@acme.test").await;
    (app, web, tokens)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Asserts a 401 with `WWW-Authenticate: Bearer …, error="invalid_token"`; pins the body.
async fn expect_invalid_token(resp: reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    crate::helpers::pin_error(&body);
}

// ---- userinfo ----------------------------------------------------------------

#[tokio::test]
async fn userinfo_returns_the_claims_the_scopes_allow() {
    let (app, web, user) = TestApp::web_setup().await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web).set("scope", "openid profile email"),
        "ana@acme.test",
    )
    .await;
    let tokens: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let resp = app.userinfo(s(&tokens, "access_token")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let info: Value = resp.json().await.unwrap();
    let updated_at = app.s().user_by_id(&user).await.unwrap().profile.updated_at;
    assert_eq!(
        info,
        serde_json::json!({
            "sub": user,
            "email": "ana@acme.test",
            "email_verified": false,
            "preferred_username": "ana@acme.test",
            "name": "Ana Lima",
            // Core §5.1: a number of seconds (the creation, for a profile never edited).
            "updated_at": updated_at,
        })
    );
    // POST with the token in the body (RFC 6750 §2.2) answers the same.
    let resp = app
        .http
        .post(app.url("/connect/userinfo"))
        .form(&[("access_token", s(&tokens, "access_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), info);
}

#[tokio::test]
async fn userinfo_with_only_openid_returns_just_the_subject() {
    let (app, _, tokens) = setup().await;
    let info: Value = app
        .userinfo(s(&tokens, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    let obj = info.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["sub"]);
}

#[tokio::test]
async fn userinfo_without_a_token_is_401_with_a_bare_challenge() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(app.url("/connect/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\""
    );
}

#[tokio::test]
async fn userinfo_with_a_garbage_token_is_401_invalid_token() {
    let (app, _, tokens) = setup().await;
    expect_invalid_token(app.userinfo("garbage").await).await;
    expect_invalid_token(app.userinfo("a.b.c").await).await;
    // A refresh token is not an access token.
    expect_invalid_token(app.userinfo(s(&tokens, "refresh_token")).await).await;
    // Neither is the ID token.
    expect_invalid_token(app.userinfo(s(&tokens, "id_token")).await).await;
}

#[tokio::test]
async fn userinfo_with_a_revoked_token_is_401_invalid_token() {
    let (app, web, tokens) = setup().await;
    let access = s(&tokens, "access_token");
    assert_eq!(app.userinfo(access).await.status(), 200);
    let resp = app.revoke(&web, access, Some("access_token")).await;
    assert_eq!(resp.status(), 200);
    expect_invalid_token(app.userinfo(access).await).await;
}

#[tokio::test]
async fn userinfo_with_an_expired_token_is_401_invalid_token() {
    let (app, _, tokens) = setup().await;
    app.clock.advance(3601);
    expect_invalid_token(app.userinfo(s(&tokens, "access_token")).await).await;
}

#[tokio::test]
async fn userinfo_refuses_tokens_without_openid_with_403_insufficient_scope() {
    let (app, web, _) = TestApp::web_setup().await;
    let code = code_for(
        &Browser::new(&app),
        &authorize_params(&web).set("scope", "cfgateway"),
        "ana@acme.test",
    )
    .await;
    let tokens: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let resp = app.userinfo(s(&tokens, "access_token")).await;
    assert_eq!(resp.status(), 403);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
}

/// A client credentials token (here of another API) speaks for no user: it is
/// not a userinfo token at all, so 401 `invalid_token`, not 403.
#[tokio::test]
async fn userinfo_refuses_a_client_credentials_token_of_another_api_with_401() {
    let (app, _web, _) = TestApp::web_setup().await;
    let other = app
        .api(
            "https://billing.acme.test",
            "billing:read",
            gatehouse_core::model::TokenFormat::Jwt,
            gatehouse_core::model::SigningAlg::ES256,
        )
        .await;
    let machine = app
        .app("ana@acme.test", "billing:read", None, Some(&other.audience))
        .await;
    let cc = app.token(&machine, &[("scope", "billing:read")]).await;
    expect_invalid_token(app.userinfo(s(&cc, "access_token")).await).await;
    let machine = app.app("ana@acme.test", "cfgateway", None, None).await;
    let cc = app.token(&machine, &[]).await;
    expect_invalid_token(app.userinfo(s(&cc, "access_token")).await).await;
    let meta: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["gatehouse_userinfo_accepts"]["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
}

/// RFC 9068 §4: only `typ: at+jwt` is an access token. An ID token, signed by the
/// same keys, is refused as a bearer token by introspection, userinfo and the
/// admin API alike.
#[tokio::test]
async fn an_id_token_is_not_an_access_token_anywhere() {
    let (app, web, tokens) = setup().await;
    let id_token = s(&tokens, "id_token");
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "JWT");
    // The app the ID token is for asks about it: not active.
    let answer = app
        .introspect((&web.client_id, &web.secret), id_token)
        .await;
    assert_eq!(answer, serde_json::json!({"active": false}));
    // Its own access token is, for comparison.
    let answer = app
        .introspect((&web.client_id, &web.secret), s(&tokens, "access_token"))
        .await;
    assert_eq!(answer["active"], true);
    expect_invalid_token(app.userinfo(id_token).await).await;
    let resp = app
        .http
        .get(app.url("/api/v1/apps"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn userinfo_with_the_token_both_in_header_and_body_is_400() {
    let (app, _, tokens) = setup().await;
    let access = s(&tokens, "access_token");
    let resp = app
        .http
        .post(app.url("/connect/userinfo"))
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    crate::helpers::pin_error(&body);
}

// ---- revocation ----------------------------------------------------------------

#[tokio::test]
async fn revocation_with_a_wrong_client_secret_is_401_and_revokes_nothing() {
    let (app, web, tokens) = setup().await;
    let impostor = WebApp {
        client_id: web.client_id.clone(),
        secret: "wrong-secret".into(),
    };
    let resp = app
        .revoke(&impostor, s(&tokens, "refresh_token"), None)
        .await;
    oauth_error(resp, 401, "invalid_client").await;
    assert_eq!(
        app.web_token(&web, &refresh_params(s(&tokens, "refresh_token")))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn revoking_an_unknown_token_is_200() {
    let (app, web, _) = setup().await;
    for hint in [None, Some("access_token"), Some("refresh_token")] {
        let resp = app.revoke(&web, "never-issued", hint).await;
        assert_eq!(resp.status(), 200, "{hint:?}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn revocation_without_a_token_is_invalid_request() {
    let (app, web, _) = setup().await;
    let resp = app
        .http
        .post(app.url("/connect/revocation"))
        .basic_auth(&web.client_id, Some(&web.secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_family_and_its_access_tokens() {
    let (app, web, tokens) = setup().await;
    let other = tokens_for(&app, &web, "ana@acme.test").await;
    // Hint or not, wrong hint or right: the token is found.
    let resp = app
        .revoke(&web, s(&tokens, "refresh_token"), Some("access_token"))
        .await;
    assert_eq!(resp.status(), 200);
    oauth_error(
        app.web_token(&web, &refresh_params(s(&tokens, "refresh_token")))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    expect_invalid_token(app.userinfo(s(&tokens, "access_token")).await).await;
    // Revoking again is still 200; another authorization is untouched.
    assert_eq!(
        app.revoke(&web, s(&tokens, "refresh_token"), None)
            .await
            .status(),
        200
    );
    assert_eq!(app.userinfo(s(&other, "access_token")).await.status(), 200);
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token_working() {
    let (app, web, tokens) = setup().await;
    let resp = app.revoke(&web, s(&tokens, "access_token"), None).await;
    assert_eq!(resp.status(), 200);
    expect_invalid_token(app.userinfo(s(&tokens, "access_token")).await).await;
    let resp = app
        .web_token(&web, &refresh_params(s(&tokens, "refresh_token")))
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn another_client_cannot_revoke_the_tokens() {
    let (app, web, tokens) = setup().await;
    let other = app.web_app("cfgateway").await;
    for token in ["refresh_token", "access_token"] {
        let resp = app.revoke(&other, s(&tokens, token), None).await;
        assert_eq!(resp.status(), 400, "{token}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized_client", "{token}");
        crate::helpers::pin_error(&body);
    }
    assert_eq!(app.userinfo(s(&tokens, "access_token")).await.status(), 200);
    assert_eq!(
        app.web_token(&web, &refresh_params(s(&tokens, "refresh_token")))
            .await
            .status(),
        200
    );
}

// ---- end session -------------------------------------------------------------

/// A browser signed in through the flow, and the ID token it got.
async fn signed_in() -> (TestApp, WebApp, Browser, Value) {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let tokens: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    (app, web, browser, tokens)
}

fn endsession(app: &TestApp, p: &Params) -> String {
    format!("{}?{}", app.url("/connect/endsession"), p.query())
}

#[tokio::test]
async fn end_session_with_a_hint_signs_out_and_returns_with_the_state() {
    let (app, web, browser, tokens) = signed_in().await;
    let page = browser
        .get(&endsession(
            &app,
            &Params::new()
                .set("id_token_hint", s(&tokens, "id_token"))
                .set("post_logout_redirect_uri", BYE)
                .set("state", "bye state/1"),
        ))
        .await;
    assert_eq!(
        page.redirect().as_str(),
        format!("{BYE}?state=bye%20state%2F1")
    );
    let cleared = sets_cookie(&page, "gatehouse_session").expect("session cookie cleared");
    assert!(
        cleared.contains("Max-Age=0") || cleared.contains("1970"),
        "{cleared}"
    );
    // Signed out: the login page again, even with the old cookie replayed.
    let login = browser.authorize(&authorize_params(&web)).await;
    assert_eq!(login.status, 200);
    login.assert_login_form();
    // Tokens already issued stay valid (RP-Initiated Logout ends the session only).
    assert_eq!(app.userinfo(s(&tokens, "access_token")).await.status(), 200);
}

#[tokio::test]
async fn an_ended_session_cookie_replayed_is_not_a_session() {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    let login = browser.authorize(&authorize_params(&web)).await;
    let consent = browser.login(&login, "ana@acme.test", PASSWORD).await;
    let session = sets_cookie(&consent, "gatehouse_session").expect("session cookie");
    let value = session["gatehouse_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let code = browser.consent(&consent, "allow").await.callback();
    let tokens: Value = app
        .web_token(&web, &code_params(code.get("code").unwrap()))
        .await
        .json()
        .await
        .unwrap();
    // Signs out without a return URI: a page says so.
    let out = browser
        .get(&endsession(
            &app,
            &Params::new().set("id_token_hint", s(&tokens, "id_token")),
        ))
        .await;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("You are signed out"), "{}", out.body);
    // The old cookie, sent by hand, no longer stands for a session.
    let replay = app
        .http
        .get(format!(
            "{}?{}",
            app.url("/connect/authorize"),
            authorize_params(&web).query()
        ))
        .header("Cookie", format!("gatehouse_session={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    let body = replay.text().await.unwrap();
    assert!(body.contains("action=\"/login\""), "{body}");
}

#[tokio::test]
async fn end_session_with_an_unregistered_return_uri_is_400_and_keeps_the_session() {
    let (app, web, browser, tokens) = signed_in().await;
    for uri in ["https://evil.test/bye", "https://sync.acme.test/callback"] {
        let page = browser
            .get(&endsession(
                &app,
                &Params::new()
                    .set("id_token_hint", s(&tokens, "id_token"))
                    .set("post_logout_redirect_uri", uri),
            ))
            .await;
        expect_error_page(&page, 400, "not registered");
    }
    let still = browser.authorize(&authorize_params(&web)).await;
    assert!(still.callback().get("code").is_some());
}

#[tokio::test]
async fn end_session_with_a_forged_hint_or_other_client_id_is_400() {
    let (app, web, browser, tokens) = signed_in().await;
    let id_token = s(&tokens, "id_token");
    // Same header and payload, signature of something else.
    let mut parts: Vec<&str> = id_token.split('.').collect();
    let access = s(&tokens, "access_token");
    parts[2] = access.split('.').nth(2).unwrap();
    let forged = parts.join(".");
    let page = browser
        .get(&endsession(
            &app,
            &Params::new()
                .set("id_token_hint", &forged)
                .set("post_logout_redirect_uri", BYE),
        ))
        .await;
    expect_error_page(&page, 400, "not issued by this server");
    let page = browser
        .get(&endsession(
            &app,
            &Params::new()
                .set("id_token_hint", id_token)
                .set("client_id", "someone-else")
                .set("post_logout_redirect_uri", BYE),
        ))
        .await;
    expect_error_page(&page, 400, "client_id");
    let still = browser.authorize(&authorize_params(&web)).await;
    assert!(still.callback().get("code").is_some());
}

/// An access token is signed by the same keys, but it is not an ID token: it
/// neither signs anyone out nor names an app to return to.
#[tokio::test]
async fn end_session_with_an_access_token_as_hint_is_400_and_keeps_the_session() {
    let (app, web, browser, tokens) = signed_in().await;
    let page = browser
        .get(&endsession(
            &app,
            &Params::new().set("id_token_hint", s(&tokens, "access_token")),
        ))
        .await;
    expect_error_page(&page, 400, "not an ID token");
    assert!(
        sets_cookie(&page, "gatehouse_session").is_none(),
        "{page:?}"
    );
    let still = browser.authorize(&authorize_params(&web)).await;
    assert!(still.callback().get("code").is_some());
}

/// A hint naming someone else (another user, or an earlier session of this one)
/// does not sign this browser out: the user is asked first.
#[tokio::test]
async fn end_session_with_a_hint_for_another_session_asks_first() {
    let (app, web, victim, _) = signed_in().await;
    app.password_user("bo@acme.test", "developer").await;
    let attacker = Browser::new(&app);
    let code = code_for(&attacker, &authorize_params(&web), "bo@acme.test").await;
    let theirs: Value = app
        .web_token(&web, &code_params(&code))
        .await
        .json()
        .await
        .unwrap();
    let link = endsession(
        &app,
        &Params::new()
            .set("id_token_hint", s(&theirs, "id_token"))
            .set("post_logout_redirect_uri", BYE),
    );
    let page = victim.get(&link).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    assert!(
        sets_cookie(&page, "gatehouse_session").is_none(),
        "{page:?}"
    );
    let still = victim.authorize(&authorize_params(&web)).await;
    assert!(still.callback().get("code").is_some());
    // The same user's ID token from an earlier session (another `sid`) asks too.
    let old_hint = s(&theirs, "id_token").to_owned();
    let out = attacker
        .get(&endsession(
            &app,
            &Params::new().set("id_token_hint", &old_hint),
        ))
        .await;
    assert!(out.body.contains("You are signed out"), "{}", out.body);
    code_for(&attacker, &authorize_params(&web), "bo@acme.test").await;
    let page = attacker
        .get(&endsession(
            &app,
            &Params::new().set("id_token_hint", &old_hint),
        ))
        .await;
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    let still = attacker.authorize(&authorize_params(&web)).await;
    assert!(still.callback().get("code").is_some());
}

#[tokio::test]
async fn end_session_without_a_hint_asks_first_and_the_form_needs_csrf() {
    let (app, web, browser, _) = signed_in().await;
    let page = browser
        .get(&endsession(
            &app,
            &Params::new()
                .set("client_id", &web.client_id)
                .set("post_logout_redirect_uri", BYE)
                .set("state", "s1"),
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    // Still signed in until confirmed.
    let still = browser.authorize(&authorize_params(&web)).await;
    assert!(still.callback().get("code").is_some());
    let fields =
        ["post_logout_redirect_uri", "client_id", "state"].map(|f| (f, page.hidden(f).unwrap()));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser.post("/connect/endsession", &form).await;
    expect_error_page(&refused, 403, "Form expired");
    let csrf = page.hidden("csrf_token").unwrap();
    form.push(("csrf_token", &csrf));
    let done = browser.post("/connect/endsession", &form).await;
    assert_eq!(done.redirect().as_str(), format!("{BYE}?state=s1"));
    let login = browser.authorize(&authorize_params(&web)).await;
    login.assert_login_form();
}

// ---- discovery -----------------------------------------------------------------

#[tokio::test]
async fn discovery_lists_the_browser_flow_endpoints() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["authorization_endpoint"], app.url("/connect/authorize"));
    assert_eq!(doc["userinfo_endpoint"], app.url("/connect/userinfo"));
    assert_eq!(doc["revocation_endpoint"], app.url("/connect/revocation"));
    assert_eq!(doc["end_session_endpoint"], app.url("/connect/endsession"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let grants = doc["grant_types_supported"].as_array().unwrap();
    for g in ["authorization_code", "refresh_token"] {
        assert!(grants.iter().any(|x| x == g), "{g}");
    }
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
}
