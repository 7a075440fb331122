//! `/api/v1/apps…`: register (secret once, and it works), list and show (never a
//! secret), edit, regenerate (old tokens end), on-behalf-of, disable/enable,
//! delete, and the 400/409/422 answers.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{CALLBACK, oauth_error};

fn cc_app(on_behalf_of: &str) -> Value {
    json!({
        "grant_type": "client_credentials",
        "name": "Inventory sync",
        "description": "Pulls products every night",
        "on_behalf_of": on_behalf_of,
        "scopes": ["cfgateway", "products:read"],
        "default_scopes": ["cfgateway"],
    })
}

/// Registers a client credentials app acting for the seed's developer.
async fn register(app: &TestApp, a: &Admin) -> (String, String) {
    let r = a
        .send(app, Method::POST, "/api/v1/apps", cc_app("dev@acme.test"))
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    (
        r.json["client_id"].as_str().unwrap().to_owned(),
        r.json["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn cc_token(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.token_form(Some((id, secret)), &[("grant_type", "client_credentials")])
        .await
}

#[tokio::test]
async fn registered_secret_works_once_shown_and_never_listed() {
    let (app, a) = acme().await;
    let r = a
        .send(&app, Method::POST, "/api/v1/apps", cc_app("dev@acme.test"))
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let id = r.json["client_id"].as_str().unwrap().to_owned();
    let secret = r.json["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/api/v1/apps/{id}").as_str());
    assert!(
        r.json["warning"]
            .as_str()
            .unwrap()
            .contains("not be shown again")
    );
    assert!(secret.len() >= 43, "256 bits, base64url: {secret}");
    assert_eq!(r.json["grant_type"], "client_credentials");
    assert_eq!(r.json["on_behalf_of"]["email"], "dev@acme.test");
    assert_eq!(r.json["scopes"], json!(["cfgateway", "products:read"]));
    assert_eq!(r.json["status"], "active");
    assert_eq!(r.headers["cache-control"], "no-store");

    let resp = cc_token(&app, &id, &secret).await;
    assert_eq!(resp.status(), 200);

    for path in ["/api/v1/apps".to_owned(), format!("/api/v1/apps/{id}")] {
        let r = a.get(&app, &path).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        assert!(!r.raw.contains(&secret), "{path} shows the secret");
        assert!(!r.raw.contains("secret"), "{path}: {}", r.raw);
        assert!(!r.raw.contains("hash"), "{path}: {}", r.raw);
    }
    let list = a.get(&app, "/api/v1/apps").await;
    let names: Vec<&str> = list.json["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Inventory sync"), "{names:?}");
    let shown = a.get(&app, &format!("/api/v1/apps/{id}")).await;
    assert_eq!(shown.json["description"], "Pulls products every night");
    assert_eq!(shown.json["default_scopes"], json!(["cfgateway"]));
    assert!(shown.json["created_at"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn authorization_code_app_with_redirect_uris() {
    let (app, a) = acme().await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/apps",
            json!({
                "grant_type": "authorization_code",
                "name": "Studio web",
                "redirect_uris": [CALLBACK],
                "post_logout_redirect_uris": ["https://sync.acme.test/bye"],
                "scopes": ["openid", "cfgateway"],
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    assert_eq!(r.json["grant_type"], "authorization_code");
    assert_eq!(r.json["redirect_uris"], json!([CALLBACK]));
    assert!(r.json["on_behalf_of"].is_null());
}

#[tokio::test]
async fn register_with_a_new_user_stores_both_or_neither() {
    let (app, a) = acme().await;
    let mut body = cc_app("x");
    body.as_object_mut().unwrap().remove("on_behalf_of");
    // The app is refused (unknown scope): the new user is not kept either.
    let mut refused = body.clone();
    refused["new_user"] = json!({"email": "ghost@acme.test", "role": "developer"});
    refused["scopes"] = json!(["nope:nope"]);
    let r = a.send(&app, Method::POST, "/api/v1/apps", refused).await;
    assert_eq!(r.problem(422)["field"], "scopes");
    let users = a.get(&app, "/api/v1/users").await;
    assert!(!users.raw.contains("ghost@acme.test"), "{}", users.raw);

    body["new_user"] = json!({"email": "robot@acme.test", "name": "Robot", "role": "developer"});
    let r = a
        .send(&app, Method::POST, "/api/v1/apps", body.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    assert_eq!(r.json["on_behalf_of"]["email"], "robot@acme.test");
    let users = a.get(&app, "/api/v1/users").await;
    assert!(users.raw.contains("robot@acme.test"));
    // The same email again: 409.
    let r = a.send(&app, Method::POST, "/api/v1/apps", body).await;
    r.problem(409);
}

#[tokio::test]
async fn bad_input_is_422_naming_the_field() {
    let (app, a) = acme().await;
    let cases = [
        (
            json!({"grant_type": "authorization_code", "name": "W", "redirect_uris": ["not a uri"], "scopes": ["cfgateway"]}),
            "redirect_uris",
        ),
        (
            json!({"grant_type": "authorization_code", "name": "W", "redirect_uris": ["https://a.test/cb#frag"], "scopes": ["cfgateway"]}),
            "redirect_uris",
        ),
        (
            json!({"grant_type": "client_credentials", "name": "M", "on_behalf_of": "dev@acme.test", "scopes": ["nope:nope"]}),
            "scopes",
        ),
        (
            json!({"grant_type": "client_credentials", "name": "M", "scopes": ["cfgateway"]}),
            "on_behalf_of",
        ),
        (
            json!({"grant_type": "client_credentials", "name": "M", "on_behalf_of": "nobody@acme.test", "scopes": ["cfgateway"]}),
            "on_behalf_of",
        ),
        (
            json!({"grant_type": "client_credentials", "name": "", "on_behalf_of": "dev@acme.test", "scopes": ["cfgateway"]}),
            "name",
        ),
        (
            json!({"grant_type": "client_credentials", "name": "M", "on_behalf_of": "dev@acme.test", "scopes": ["cfgateway products:read"]}),
            "scopes",
        ),
        (
            json!({"grant_type": "client_credentials", "name": "M", "on_behalf_of": "dev@acme.test", "scopes": ["cfgateway"], "colour": "red"}),
            "colour",
        ),
        (
            json!({"grant_type": "password", "name": "M", "scopes": ["cfgateway"]}),
            "grant_type",
        ),
        (json!({"name": "M", "scopes": ["cfgateway"]}), "grant_type"),
        (
            json!({"grant_type": "client_credentials", "name": "M", "new_user": {"email": "bad", "role": "developer"}, "scopes": ["cfgateway"]}),
            "new_user.email",
        ),
    ];
    for (body, field) in cases {
        let r = a
            .send(&app, Method::POST, "/api/v1/apps", body.clone())
            .await;
        assert_eq!(r.status, 422, "{body} → {}", r.raw);
        r.invalid(field);
    }
    // Nothing was half saved.
    let list = a.get(&app, "/api/v1/apps").await;
    assert_eq!(
        list.json["apps"].as_array().unwrap().len(),
        1,
        "{}",
        list.raw
    );
    let users = a.get(&app, "/api/v1/users").await;
    assert!(!users.raw.contains("\"bad\""));
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_are_400() {
    let (app, a) = acme().await;
    let resp = app
        .http
        .post(app.url("/api/v1/apps"))
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body(r#"{"grant_type": "client_credentials", "name": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );
    let resp = app
        .http
        .post(app.url("/api/v1/apps"))
        .bearer_auth(&a.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024));
    let resp = app
        .http
        .post(app.url("/api/v1/apps"))
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn regenerate_secret_ends_old_tokens() {
    let (app, a) = acme().await;
    let (id, old) = register(&app, &a).await;
    let body: Value = cc_token(&app, &id, &old).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.introspect((&id, &old), &token).await["active"], true);

    let r = a
        .bare(&app, Method::POST, &format!("/api/v1/apps/{id}/secret"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let new = r.json["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        r.json["warning"]
            .as_str()
            .unwrap()
            .contains("not be shown again")
    );
    assert!(r.json["tokens_ended"].as_str().unwrap().contains("ended"));
    // At once on this instance: no waiting for the change feed.
    assert_eq!(app.introspect((&id, &new), &token).await["active"], false);
    oauth_error(cc_token(&app, &id, &old).await, 401, "invalid_client").await;
    assert_eq!(cc_token(&app, &id, &new).await.status(), 200);
    let shown = a.get(&app, &format!("/api/v1/apps/{id}")).await;
    assert!(!shown.raw.contains(&new));
}

#[tokio::test]
async fn change_on_behalf_of_ends_old_tokens() {
    let (app, a) = acme().await;
    let (id, secret) = register(&app, &a).await;
    let body: Value = cc_token(&app, &id, &secret).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    app.user("ops@acme.test", "developer").await;
    let path = format!("/api/v1/apps/{id}/on-behalf-of");
    let r = a
        .send(&app, Method::PUT, &path, json!({"email": "ops@acme.test"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["on_behalf_of"]["email"], "ops@acme.test");
    assert!(r.json["tokens_ended"].as_str().is_some());
    // At once on this instance: no waiting for the change feed.
    assert_eq!(
        app.introspect((&id, &secret), &token).await["active"],
        false
    );
    a.send(
        &app,
        Method::PUT,
        &path,
        json!({"email": "ghost@acme.test"}),
    )
    .await
    .invalid("email");
    a.send(&app, Method::PUT, &path, json!({"mail": "ops@acme.test"}))
        .await
        .invalid("mail");
}

#[tokio::test]
async fn delete_ends_the_app() {
    let (app, a) = acme().await;
    let (id, secret) = register(&app, &a).await;
    let path = format!("/api/v1/apps/{id}");
    let r = a.bare(&app, Method::DELETE, &path).await;
    assert_eq!(r.status, 204, "{}", r.raw);
    a.get(&app, &path).await.problem(404);
    a.bare(&app, Method::DELETE, &path).await.problem(404);
    // At once on this instance: no waiting for the change feed.
    oauth_error(cc_token(&app, &id, &secret).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn unknown_app_is_404() {
    let (app, a) = acme().await;
    for (m, p) in [
        (Method::GET, "/api/v1/apps/nope"),
        (Method::DELETE, "/api/v1/apps/nope"),
        (Method::POST, "/api/v1/apps/nope/secret"),
        (Method::POST, "/api/v1/apps/nope/disable"),
        (Method::POST, "/api/v1/apps/nope/enable"),
    ] {
        a.bare(&app, m, p).await.problem(404);
    }
}

#[tokio::test]
async fn edit_app_changes_only_what_is_given() {
    let (app, a) = acme().await;
    let (id, _) = register(&app, &a).await;
    let path = format!("/api/v1/apps/{id}");
    let r = a
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"name": "Inventory sync v2", "description": null, "scopes": ["cfgateway"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["name"], "Inventory sync v2");
    assert!(r.json["description"].is_null());
    assert_eq!(r.json["scopes"], json!(["cfgateway"]));
    assert_eq!(r.json["default_scopes"], json!(["cfgateway"]));
    a.send(&app, Method::PATCH, &path, json!({"scopes": ["nope:nope"]}))
        .await
        .invalid("scopes");
    a.send(&app, Method::PATCH, &path, json!({"name": ""}))
        .await
        .invalid("name");
    let shown = a.get(&app, &path).await;
    assert_eq!(shown.json["name"], "Inventory sync v2");
}

#[tokio::test]
async fn disable_refuses_the_token_endpoint_until_enabled() {
    let (app, a) = acme().await;
    let (id, secret) = register(&app, &a).await;
    let r = a
        .bare(&app, Method::POST, &format!("/api/v1/apps/{id}/disable"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["status"], "disabled");
    app.caught_up().await;
    oauth_error(cc_token(&app, &id, &secret).await, 401, "invalid_client").await;
    let r = a
        .bare(&app, Method::POST, &format!("/api/v1/apps/{id}/enable"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["status"], "active");
    app.caught_up().await;
    assert_eq!(cc_token(&app, &id, &secret).await.status(), 200);
}

/// An id that is not UTF-8 (or longer than any id) is a problem document like
/// every other error, not axum's `400 text/plain`, and is never looked up.
#[tokio::test]
async fn an_id_that_is_not_utf8_or_too_long_is_a_404_problem() {
    let (app, a) = acme().await;
    let long = format!("/api/v1/apps/{}", "a".repeat(300));
    for path in ["/api/v1/apps/%FF%FE", "/api/v1/users/%FF%FE", long.as_str()] {
        a.get(&app, path).await.problem(404);
    }
    a.bare(&app, Method::DELETE, "/api/v1/apps/%C3%28")
        .await
        .problem(404);
    a.bare(&app, Method::POST, "/api/v1/apps/%FF%FE/secret")
        .await
        .problem(404);
}

#[tokio::test]
async fn require_par_is_shown_and_settable_on_code_apps_only() {
    let (app, a) = acme().await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/apps",
            json!({
                "grant_type": "authorization_code",
                "name": "Studio web",
                "redirect_uris": [CALLBACK],
                "scopes": ["openid", "cfgateway"],
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    assert_eq!(r.json["require_par"], false);
    let path = format!("/api/v1/apps/{}", r.json["client_id"].as_str().unwrap());
    let r = a
        .send(&app, Method::PATCH, &path, json!({"require_par": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["require_par"], true);
    assert_eq!(a.get(&app, &path).await.json["require_par"], true);

    let (cc, _) = register(&app, &a).await;
    a.send(
        &app,
        Method::PATCH,
        &format!("/api/v1/apps/{cc}"),
        json!({"require_par": true}),
    )
    .await
    .invalid("require_par");
}

#[tokio::test]
async fn require_dpop_is_shown_and_settable() {
    let (app, a) = acme().await;
    let (cc, _) = register(&app, &a).await;
    let path = format!("/api/v1/apps/{cc}");
    assert_eq!(a.get(&app, &path).await.json["require_dpop"], false);
    let r = a
        .send(&app, Method::PATCH, &path, json!({"require_dpop": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["require_dpop"], true);
    assert_eq!(a.get(&app, &path).await.json["require_dpop"], true);
}

#[tokio::test]
async fn exchange_audiences_are_shown_and_settable_on_token_exchange_apps_only() {
    let (app, a) = acme().await;
    let gw = "https://gateway.acme.test";
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/apps",
            json!({
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "name": "Storefront",
                "scopes": [],
                "exchange_audiences": [gw],
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    assert_eq!(
        r.json["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(r.json["exchange_audiences"], json!([gw]));
    let path = format!("/api/v1/apps/{}", r.json["client_id"].as_str().unwrap());
    let r = a
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"exchange_audiences": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["exchange_audiences"], json!([]));
    assert_eq!(
        a.get(&app, &path).await.json["exchange_audiences"],
        json!([])
    );
    // Only APIs of the organization.
    a.send(
        &app,
        Method::PATCH,
        &path,
        json!({"exchange_audiences": ["https://elsewhere.test"]}),
    )
    .await
    .invalid("exchange_audiences");
    // Only token exchange apps.
    let (cc, _) = register(&app, &a).await;
    a.send(
        &app,
        Method::PATCH,
        &format!("/api/v1/apps/{cc}"),
        json!({"exchange_audiences": [gw]}),
    )
    .await
    .invalid("exchange_audiences");
}
