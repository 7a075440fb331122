//! One request id per request (`x-request-id`), the correlation id of every
//! error body: the id in a body is the id in the response's header; a client's
//! id is kept only if it is short and plain, otherwise replaced.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

fn header_id(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_oauth_error_carries_the_responses_request_id() {
    let app = TestApp::spawn().await;
    let r = app
        .token_form(None, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let id = header_id(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["correlation_id"], id.as_str());
}

#[tokio::test]
async fn a_clients_plain_request_id_is_kept_and_echoed() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/connect/userinfo"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_id(&r), "trace-42.a_b");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["correlation_id"], "trace-42.a_b");
}

#[tokio::test]
async fn a_hostile_request_id_is_replaced() {
    let app = TestApp::spawn().await;
    for hostile in [
        "a".repeat(65),
        "x\" onload=\"alert(1)".to_owned(),
        "../../etc/passwd".to_owned(),
        "id with spaces".to_owned(),
    ] {
        let r = app
            .http
            .get(app.url("/no/such/endpoint"))
            .header("x-request-id", &hostile)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let id = header_id(&r);
        assert_ne!(id, hostile);
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{id}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["correlation_id"], id.as_str());
    }
}

#[tokio::test]
async fn every_response_gets_a_fresh_id_of_its_own() {
    let app = TestApp::spawn().await;
    let a = app.http.get(app.url("/health")).send().await.unwrap();
    let b = app.http.get(app.url("/health")).send().await.unwrap();
    assert_ne!(header_id(&a), header_id(&b));
}

#[tokio::test]
async fn an_admin_api_problem_carries_the_request_id() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/api/v1/apps"))
        .header("x-request-id", "admin-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_id(&r), "admin-1");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["correlation_id"], "admin-1");
}

#[tokio::test]
async fn an_html_error_page_shows_the_request_id() {
    let app = TestApp::spawn().await;
    // An authorization request without a client is answered with an error page.
    let r = app
        .http
        .get(app.url("/connect/authorize"))
        .header("x-request-id", "page-7")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(header_id(&r), "page-7");
    let html = r.text().await.unwrap();
    assert!(html.contains("Request id: page-7"), "{html}");
}
