//! The four vendor documents' requests (shared/seeds), run with `curl` exactly as
//! their readers paste them (only the host, ids and secrets changed), against
//! the real server: every path they name is served, and a wrong method on a
//! client endpoint gets an OAuth JSON error with `Allow` instead of an empty 405.
//!
//! Paths in the documents: `/connect/token` (Creative Force), `/oauth/token`
//! (Switch, Auth0's path), "the token endpoint" (Applixure); the revocation and
//! end-session URLs are left blank in the documents and are discovery's; the
//! gateway's `/v1/products/get-status` is the gateway's (crates/cli/tests/gateway.rs).

use std::process::Command;

use base64::Engine;
use serde_json::Value;

use crate::helpers::{TestApp, oauth_error};

/// Runs `curl` with `args` (as the document writes them, `--silent` and a
/// status line added); returns the status and the JSON body.
fn curl(args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--write-out", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status.parse().unwrap(), body)
}

/// [`curl`] off the async workers (the server runs on them).
async fn run(args: Vec<String>) -> (u16, Value) {
    tokio::task::spawn_blocking(move || curl(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

#[tokio::test]
async fn creative_force_client_credentials_curl_as_written() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let url = app.url("/connect/token");
    let (id, secret) = (
        format!("client_id={}", c.client_id),
        format!("client_secret={}", c.secret),
    );
    let args: Vec<String> = [
        "--location",
        "--request",
        "POST",
        url.as_str(),
        "--header",
        "User-Agent: TestClient/1.0",
        "--header",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-urlencode",
        "grant_type=client_credentials",
        "--data-urlencode",
        id.as_str(),
        "--data-urlencode",
        secret.as_str(),
        "--data-urlencode",
        "scope=cfgateway",
    ]
    .map(str::to_owned)
    .to_vec();
    let (status, body) = run(args).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "cfgateway");
}

#[tokio::test]
async fn switch_curl_posts_to_the_oauth_token_path_and_gets_the_same_answer() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let url = app.url("/oauth/token");
    let (id, secret, aud) = (
        format!("client_id={}", c.client_id),
        format!("client_secret={}", c.secret),
        format!("audience={}", api.audience),
    );
    let args: Vec<String> = [
        "--request",
        "POST",
        "--url",
        url.as_str(),
        "--header",
        "content-type: application/x-www-form-urlencoded",
        "--data",
        "grant_type=client_credentials",
        "--data",
        id.as_str(),
        "--data",
        secret.as_str(),
        "--data",
        aud.as_str(),
    ]
    .map(str::to_owned)
    .to_vec();
    let (status, body) = run(args).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let claims = crate::well_known::verify_with_jwks(
        &app,
        body["access_token"].as_str().unwrap(),
        &api.audience,
    )
    .await;
    assert_eq!(claims["client_id"], c.client_id.as_str());

    // Same handler, same refusals: a wrong secret at either path is the same 401.
    let wrong = [
        ("grant_type", "client_credentials"),
        ("client_id", c.client_id.as_str()),
        ("client_secret", "wrong"),
    ];
    for path in ["/oauth/token", "/connect/token"] {
        let resp = app
            .http
            .post(app.url(path))
            .form(&wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{path}");
        assert_eq!(
            body["error_description"], "unknown client or wrong client secret",
            "{path}"
        );
    }

    // Discovery keeps one canonical URL per endpoint.
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["token_endpoint"], app.url("/connect/token"));
    assert!(!doc.to_string().contains("/oauth/token"), "{doc}");
}

#[tokio::test]
async fn applixure_basic_auth_payload_and_creative_force_revocation_curl() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app
        .app("dev@acme.test", "cfgateway products:read", None, None)
        .await;
    // Applixure: the credential pair as HTTP Basic, the example payload's shape.
    let url = app.url("/connect/token");
    let user = format!("{}:{}", c.client_id, c.secret);
    let args: Vec<String> = [
        "--request",
        "POST",
        url.as_str(),
        "--user",
        user.as_str(),
        "--header",
        "Content-Type: application/x-www-form-urlencoded; charset=UTF-8",
        "--data",
        "grant_type=client_credentials&scope=cfgateway+products%3Aread",
    ]
    .map(str::to_owned)
    .to_vec();
    let (status, body) = run(args).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "cfgateway products:read");
    let token = body["access_token"].as_str().unwrap().to_owned();

    // Creative Force's revocation curl: a hand-made Basic header, form body.
    let url = app.url("/connect/revocation");
    let basic = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&user)
    );
    let tok = format!("token={token}");
    let args: Vec<String> = [
        "--location",
        "--request",
        "POST",
        url.as_str(),
        "--header",
        basic.as_str(),
        "--header",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-urlencode",
        tok.as_str(),
        "--data-urlencode",
        "token_type_hint=access_token",
    ]
    .map(str::to_owned)
    .to_vec();
    let (status, _) = run(args).await;
    assert_eq!(status, 200);
    let seen = app.introspect((&api.client_id, &api.secret), &token).await;
    assert_eq!(seen["active"], false, "{seen}");
}

#[tokio::test]
async fn a_wrong_method_on_a_client_endpoint_is_a_json_405_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        ("GET", "/connect/token"),
        ("GET", "/oauth/token"),
        ("PUT", "/connect/introspect"),
        ("DELETE", "/connect/revocation"),
    ] {
        let resp = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], "POST", "{method} {path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{method} {path}");
        assert!(body["correlation_id"].is_string(), "{body}");
    }
    let resp = app
        .http
        .get(app.url("/connect/token"))
        .send()
        .await
        .unwrap();
    oauth_error(resp, 405, "invalid_request").await;
}
