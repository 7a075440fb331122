//! People's profile claims (OpenID Connect Core §5.1): what userinfo answers per
//! scope (§5.4), what the `claims` parameter puts in the ID token (§5.5), `acr`
//! and `amr`, and what discovery says of them. The ID token is judged by the
//! `openidconnect` crate, verified through discovery and the JWKS.

use gatehouse_core::admin::{self, ProfileEdit};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::browser::{Browser, code_for, expect_error_redirect};
use crate::helpers::{CALLBACK, TestApp, WebApp, authorize_params, code_params, send};

/// Ana's profile, as an admin set it.
async fn with_profile(app: &TestApp, user: &str) {
    let edit = ProfileEdit {
        name: Some(Some("Ana Lima".into())),
        given_name: Some(Some("Ana".into())),
        family_name: Some(Some("Lima".into())),
        locale: Some(Some("pt-BR".into())),
        zoneinfo: Some(Some("America/Sao_Paulo".into())),
        email_verified: Some(true),
    };
    admin::update_user_profile(app.s(), SystemClock.now(), &Actor::operator(), user, &edit)
        .await
        .unwrap();
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// The claims of an ID token, unverified (the openidconnect test verifies).
fn payload(id_token: &str) -> Value {
    use base64::Engine;
    let part = id_token.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// The token endpoint's reply for a sign-in with `params`.
async fn tokens(app: &TestApp, web: &WebApp, params: &crate::helpers::Params) -> Value {
    let code = code_for(&Browser::new(app), params, "ana@acme.test").await;
    let resp = app.web_token(web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn claims_asked_for_by_name_are_in_the_id_token_openidconnect_verifies() {
    let (app, web, user) = TestApp::web_setup().await;
    with_profile(&app, &user).await;
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &send)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(web.client_id.clone()),
        Some(ClientSecret::new(web.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let requested = json!({"id_token": {
        "given_name": null,
        "family_name": {"essential": true},
        "locale": null,
        "zoneinfo": null,
        "email": null,
        "email_verified": {"essential": true},
        "updated_at": null,
        "nickname": null,
    }});
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_extra_param("claims", requested.to_string())
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new(&app);
    let mut page = browser.get(url.as_str()).await;
    if page.is_login() {
        page = browser
            .login(&page, "ana@acme.test", crate::helpers::PASSWORD)
            .await;
    }
    if page.is_consent() {
        page = browser.consent(&page, "allow").await;
    }
    let back = page.callback();
    let tokens = client
        .exchange_code(AuthorizationCode::new(back.get("code").unwrap().into()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(claims.subject().as_str(), user);
    let given = claims.given_name().and_then(|n| n.get(None)).unwrap();
    assert_eq!(given.as_str(), "Ana");
    let family = claims.family_name().and_then(|n| n.get(None)).unwrap();
    assert_eq!(family.as_str(), "Lima");
    assert_eq!(claims.locale().unwrap().as_str(), "pt-BR");
    assert_eq!(claims.zoneinfo().unwrap().as_str(), "America/Sao_Paulo");
    assert_eq!(claims.email().unwrap().as_str(), "ana@acme.test");
    assert_eq!(claims.email_verified(), Some(true));
    assert!(claims.updated_at().is_some());
    // Not asked for: not in the ID token (Core §5.4: userinfo has it).
    assert!(claims.name().is_none());
    assert!(claims.preferred_username().is_none());
    // The sign-in: a password.
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        gatehouse_core::claims::ACR_PASSWORD
    );
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(amr, ["pwd"]);
    // An unknown claim name is ignored, not an error, and not in the token.
    let raw = payload(&id_token.to_string());
    assert!(raw.get("nickname").is_none(), "{raw}");
    assert!(raw["updated_at"].as_i64().is_some_and(|t| t > 0), "{raw}");

    // userinfo, judged by the same crate: every claim the scopes allow.
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).unwrap().as_str(),
        "Ana Lima"
    );
    assert_eq!(info.zoneinfo().unwrap().as_str(), "America/Sao_Paulo");
    assert_eq!(info.email_verified(), Some(true));
    assert_eq!(info.updated_at(), claims.updated_at());
}

#[tokio::test]
async fn without_the_claims_parameter_the_id_token_has_no_profile_but_acr_and_amr() {
    let (app, web, user) = TestApp::web_setup().await;
    with_profile(&app, &user).await;
    let t = tokens(
        &app,
        &web,
        &authorize_params(&web).set("scope", "openid profile email"),
    )
    .await;
    let id = payload(s(&t, "id_token"));
    for absent in ["name", "given_name", "email", "locale", "updated_at"] {
        assert!(id.get(absent).is_none(), "{absent}: {id}");
    }
    assert_eq!(id["acr"], gatehouse_core::claims::ACR_PASSWORD);
    assert_eq!(id["amr"], json!(["pwd"]));
    // The refreshed ID token keeps what the authorization asked for.
    let asked = authorize_params(&web)
        .set("scope", "openid profile offline_access")
        .set("claims", r#"{"id_token":{"given_name":null}}"#);
    let t = tokens(&app, &web, &asked).await;
    assert_eq!(payload(s(&t, "id_token"))["given_name"], "Ana");
    let resp = app
        .web_token(
            &web,
            &crate::helpers::refresh_params(s(&t, "refresh_token")),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let refreshed: Value = resp.json().await.unwrap();
    let id = payload(s(&refreshed, "id_token"));
    assert_eq!(id["given_name"], "Ana");
    assert_eq!(id["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn the_claims_parameter_never_widens_the_scopes() {
    let (app, web, user) = TestApp::web_setup().await;
    with_profile(&app, &user).await;
    // Only `openid`: neither email nor profile claims, whatever the parameter asks.
    let asked = authorize_params(&web).set("scope", "openid").set(
        "claims",
        r#"{"id_token":{"email":{"essential":true},"given_name":null},"userinfo":{"email":null}}"#,
    );
    let t = tokens(&app, &web, &asked).await;
    let id = payload(s(&t, "id_token"));
    assert!(
        id.get("email").is_none() && id.get("given_name").is_none(),
        "{id}"
    );
    let info: Value = app
        .userinfo(s(&t, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info, json!({"sub": user}));
}

#[tokio::test]
async fn userinfo_answers_per_scope_and_omits_what_has_no_value() {
    let (app, web, user) = TestApp::web_setup().await;
    // Ana has a name and a locale, no given or family name, no time zone.
    let edit = ProfileEdit {
        locale: Some(Some("fr-CA".into())),
        ..ProfileEdit::default()
    };
    let ana =
        admin::update_user_profile(app.s(), SystemClock.now(), &Actor::operator(), &user, &edit)
            .await
            .unwrap();
    let updated_at = ana.profile.updated_at;
    let info = |scope: &'static str| {
        let (app, web) = (&app, &web);
        async move {
            let t = tokens(app, web, &authorize_params(web).set("scope", scope)).await;
            let resp = app.userinfo(s(&t, "access_token")).await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        info("openid profile").await,
        json!({
            "sub": user,
            "name": "Ana Lima",
            "preferred_username": "ana@acme.test",
            "locale": "fr-CA",
            "updated_at": updated_at,
        })
    );
    assert_eq!(
        info("openid email").await,
        json!({"sub": user, "email": "ana@acme.test", "email_verified": false})
    );
}

#[tokio::test]
async fn a_claims_parameter_that_is_not_json_redirects_invalid_request() {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    for bad in [
        "not json",
        r#"{"id_token":["email"]}"#,
        r#"{"id_token":{"email":{"essential":"yes"}}}"#,
    ] {
        let page = browser
            .authorize(&authorize_params(&web).set("claims", bad))
            .await;
        let p = page.callback();
        assert_eq!(p.get("error"), Some("invalid_request"), "{bad}: {p:?}");
        assert_eq!(p.get("state"), Some("st-8f2a"));
    }
    // Bounded: a huge parameter is refused the same way.
    let huge = format!(
        r#"{{"id_token":{{"name":{{"value":"{}"}}}}}}"#,
        "x".repeat(5000)
    );
    let page = browser
        .authorize(&authorize_params(&web).set("claims", &huge))
        .await;
    expect_error_redirect(&app, &page, "invalid_request");
}

#[tokio::test]
async fn an_essential_acr_that_cannot_be_met_fails_a_voluntary_one_is_answered() {
    let (app, web, _) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    let page = browser
        .authorize(&authorize_params(&web).set(
            "claims",
            r#"{"id_token":{"acr":{"essential":true,"values":["urn:example:mfa"]}}}"#,
        ))
        .await;
    expect_error_redirect(&app, &page, "access_denied");
    // Voluntary (`acr_values`, or `acr` not essential): the sign-in's acr is sent.
    let asked = authorize_params(&web)
        .set("acr_values", "urn:example:mfa")
        .set(
            "claims",
            r#"{"id_token":{"acr":{"values":["urn:example:mfa"]}}}"#,
        );
    let t = tokens(&app, &web, &asked).await;
    assert_eq!(
        payload(s(&t, "id_token"))["acr"],
        gatehouse_core::claims::ACR_PASSWORD
    );
}

#[tokio::test]
async fn discovery_lists_the_claims_and_the_claims_parameter_truthfully() {
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
    assert_eq!(doc["claims_parameter_supported"], true);
    assert_eq!(
        doc["acr_values_supported"],
        json!([
            gatehouse_core::claims::ACR_PASSWORD,
            gatehouse_core::claims::ACR_MFA
        ])
    );
    let mut supported: Vec<&str> = doc["claims_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    supported.sort_unstable();
    let mut expected = vec![
        "acr",
        "amr",
        "at_hash",
        "aud",
        "auth_time",
        "email",
        "email_verified",
        "exp",
        "family_name",
        "given_name",
        "iat",
        "iss",
        "locale",
        "name",
        "nonce",
        "preferred_username",
        "sid",
        "sub",
        "updated_at",
        "zoneinfo",
    ];
    expected.sort_unstable();
    assert_eq!(supported, expected);
}

#[tokio::test]
async fn a_sub_asked_for_by_value_is_answered_only_for_that_user() {
    let (app, web, user) = TestApp::web_setup().await;
    let browser = Browser::new(&app);
    code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let asking = |sub: &str| {
        authorize_params(&web).set(
            "claims",
            &json!({"id_token": {"sub": {"value": sub}}}).to_string(),
        )
    };
    // Signed in as Ana, asked for Ana: silently answered.
    let page = browser
        .authorize(&asking(&user).set("prompt", "none"))
        .await;
    assert!(page.callback().get("code").is_some(), "{page:?}");
    // Asked for someone else (Core §5.5.1): no positive answer for Ana.
    let page = browser
        .authorize(&asking("someone-else").set("prompt", "none"))
        .await;
    expect_error_redirect(&app, &page, "login_required");
    let page = browser.authorize(&asking("someone-else")).await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
    assert!(
        page.body.contains("asked for another account"),
        "{}",
        page.body
    );
}
