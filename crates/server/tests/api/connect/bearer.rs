//! RFC 6750 at userinfo, through the one bearer extractor: the token in the
//! header (§2.1) or the form body (§2.2), never both (§2), and the challenge of
//! §3 (bare without a token, with the error code otherwise).

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::tokens_for;
use crate::helpers::TestApp;

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/connect/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\""
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "an access token is required");
}

#[tokio::test]
async fn the_token_in_the_form_body_is_accepted() {
    let (app, web, _) = TestApp::web_setup().await;
    let tokens = tokens_for(&app, &web, "ana@acme.test").await;
    let token = tokens["access_token"].as_str().unwrap();
    let r = app
        .http
        .post(app.url("/connect/userinfo"))
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert!(info["sub"].is_string(), "{info}");
}

#[tokio::test]
async fn a_token_sent_twice_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .post(app.url("/connect/userinfo"))
        .bearer_auth("one")
        .form(&[("access_token", "two")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\", error=\"invalid_request\", \
         error_description=\"send the token once\""
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn an_unknown_token_is_401_invalid_token() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/connect/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\", error=\"invalid_token\", \
         error_description=\"the access token is expired, revoked or invalid\""
    );
}
