//! Every bad request the token endpoint must refuse, with RFC 6749 §5.2 bodies.

use gatehouse_core::admin::{self, NewApp};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::{GrantType, UserStatus};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Client, TestApp};

async fn setup() -> (TestApp, Client) {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app
        .app(
            "dev@acme.test",
            "cfgateway products:read",
            Some("cfgateway"),
            None,
        )
        .await;
    (app, c)
}

/// Asserts status, `error` and the no-store headers, and pins the body.
async fn expect(resp: reqwest::Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    crate::helpers::pin_error(&body);
    body
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let (app, c) = setup().await;
    let r = app
        .token_form(Some((&c.client_id, &c.secret)), &[("scope", "cfgateway")])
        .await;
    let body = expect(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("grant_type")
    );
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let (app, c) = setup().await;
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[("grant_type", "password")],
        )
        .await;
    expect(r, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
}

#[tokio::test]
async fn an_app_not_allowed_the_grant_is_unauthorized_client() {
    let (app, _) = setup().await;
    let (web, secret) = admin::register_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        NewApp {
            org: &app.org("acme-studio").await,
            name: "Studio sync",
            description: None,
            grant: GrantType::AuthorizationCode,
            on_behalf_of: None,
            redirect_uris: vec!["https://sync.acme.test/callback".into()],
            post_logout_redirect_uris: vec![],
            scopes: "cfgateway",
            default_scopes: None,
            audience: None,
            exchange_audiences: vec![],
        },
    )
    .await
    .unwrap();
    let r = app
        .token_form(
            Some((&web.client_id, secret.expose())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    expect(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

#[tokio::test]
async fn wrong_secret_with_basic_is_401_with_a_basic_challenge() {
    let (app, c) = setup().await;
    let r = app
        .token_form(
            Some((&c.client_id, "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    expect(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn unknown_client_in_the_body_is_invalid_client() {
    let (app, _) = setup().await;
    let r = app
        .token_form(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
        )
        .await;
    expect(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn no_client_authentication_is_invalid_client() {
    let (app, _) = setup().await;
    let r = app
        .token_form(None, &[("grant_type", "client_credentials")])
        .await;
    expect(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = app
        .token_form(
            None,
            &[("grant_type", "client_credentials"), ("client_id", "x")],
        )
        .await;
    expect(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn credentials_in_header_and_body_at_once_are_invalid_request() {
    let (app, c) = setup().await;
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.client_id),
                ("client_secret", &c.secret),
            ],
        )
        .await;
    expect(r, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn malformed_basic_headers_are_invalid_client() {
    let (app, _) = setup().await;
    for value in [
        "Basic",
        "Basic !!!notbase64",
        "Basic bm9jb2xvbg==",
        "Bearer abc",
    ] {
        let r = app
            .http
            .post(app.url("/connect/token"))
            .header("authorization", value)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        expect(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

#[tokio::test]
async fn non_form_bodies_are_invalid_request() {
    let (app, c) = setup().await;
    for (ct, body) in [
        (
            "application/json",
            r#"{"grant_type":"client_credentials"}"#.to_owned(),
        ),
        (
            "application/x-www-form-urlencoded; charset=iso-8859-1",
            "grant_type=client_credentials".to_owned(),
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&scope=%FF%FE".to_owned(),
        ),
    ] {
        let r = app
            .http
            .post(app.url("/connect/token"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        expect(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    // No content type at all.
    let r = app
        .http
        .post(app.url("/connect/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    expect(r, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let (app, c) = setup().await;
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "cfgateway"),
                ("scope", "products:read"),
            ],
        )
        .await;
    let body = expect(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("scope")
    );
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let (app, c) = setup().await;
    let big = "x".repeat(70 * 1024);
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[("grant_type", "client_credentials"), ("junk", &big)],
        )
        .await;
    expect(r, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
}

#[tokio::test]
async fn scope_errors_are_invalid_scope() {
    let (app, c) = setup().await;
    // Defined by no API.
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "cfgateway nosuch"),
            ],
        )
        .await;
    let body = expect(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("nosuch")
    );
    // Defined, but nothing the app may have.
    let narrow = app.app("dev@acme.test", "cfgateway", None, None).await;
    let r = app
        .token_form(
            Some((&narrow.client_id, &narrow.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "products:read"),
            ],
        )
        .await;
    expect(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // Malformed scope token.
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "bad\"scope"),
            ],
        )
        .await;
    expect(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

#[tokio::test]
async fn unknown_audience_or_resource_is_invalid_target() {
    let (app, c) = setup().await;
    for (k, v) in [
        ("audience", "https://nowhere.test"),
        ("resource", "https://nowhere.test"),
        ("resource", "not-a-uri"),
    ] {
        let r = app
            .token_form(
                Some((&c.client_id, &c.secret)),
                &[("grant_type", "client_credentials"), (k, v)],
            )
            .await;
        expect(r, StatusCode::BAD_REQUEST, "invalid_target").await;
    }
}

#[tokio::test]
async fn a_deactivated_on_behalf_user_makes_token_requests_fail_with_invalid_grant() {
    let (app, c) = setup().await;
    app.token(&c, &[]).await;
    admin::set_user_status(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &app.user_id("dev@acme.test").await,
        UserStatus::Deactivated,
    )
    .await
    .unwrap();
    app.caught_up().await;
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let body = expect(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("deactivated")
    );
}

#[tokio::test]
async fn garbage_never_gets_a_5xx() {
    let (app, c) = setup().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"&&&===&".to_vec(),
        b"%".to_vec(),
        b"grant_type=%".to_vec(),
        b"grant_type=client_credentials&scope=%00".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x3d],
        format!("grant_type=client_credentials&scope={}", "a ".repeat(4000)).into_bytes(),
        format!(
            "grant_type=client_credentials&resource={}",
            "https://x/".repeat(800)
        )
        .into_bytes(),
    ];
    for b in bodies {
        let r = app
            .http
            .post(app.url("/connect/token"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b.clone())
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "{:?} → {}",
            String::from_utf8_lossy(&b),
            r.status()
        );
    }
    let r = app
        .http
        .get(app.url("/connect/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}
