//! Regression tests for what the `admin_json` fuzz target and the schemathesis
//! run (issue 12) found in the admin API: bodies of a shape the schema does not
//! allow are refused and change nothing, and the document declares the type
//! errors are really sent with.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{Admin, acme, user_in};
use crate::helpers::TestApp;

/// What the org holds, as the API lists it: compared before and after a refusal.
async fn state(app: &TestApp, a: &Admin) -> (Value, Value, Value) {
    let apps = a.get(app, "/api/v1/apps").await;
    let users = a.get(app, "/api/v1/users").await;
    let audit = a.get(app, "/api/v1/audit").await;
    (apps.json, users.json, audit.json)
}

/// serde's derive reads a struct from an array of its fields in order: the
/// array stood in for `{"email": …, "name": …, "role": …, …}` and made a user.
#[tokio::test]
async fn an_array_is_not_an_object_body() {
    let (app, a) = acme().await;
    let before = state(&app, &a).await;
    let body = json!(["array@acme.test", null, "member", [], null]);
    let r = a.send(&app, Method::POST, "/api/v1/users", body).await;
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("expected struct"),
        "{}",
        r.raw
    );
    assert_eq!(state(&app, &a).await, before);
}

/// The same inside a body: `new_user` as an array made the app and its user.
#[tokio::test]
async fn a_nested_array_is_not_an_object() {
    let (app, a) = acme().await;
    let before = state(&app, &a).await;
    let body = json!({
        "grant_type": "client_credentials",
        "name": "Sync",
        "new_user": ["bot@acme.test", null, "developer"],
        "scopes": ["cfgateway"],
    });
    let r = a.send(&app, Method::POST, "/api/v1/apps", body).await;
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(r.json["field"], "new_user", "{}", r.raw);
    assert_eq!(state(&app, &a).await, before);
}

/// A unit enum read from `{"variant": null}` (serde_json's externally tagged
/// form): `{"status": {"deactivated": null}}` deactivated the user.
#[tokio::test]
async fn an_enum_is_only_a_string() {
    let (app, a) = acme().await;
    let uid = user_in(&app, "acme-studio", "enum@acme.test", "member").await;
    let before = state(&app, &a).await;
    let path = format!("/api/v1/users/{uid}");
    let body = json!({"status": {"deactivated": null}});
    let r = a.send(&app, Method::PATCH, &path, body).await;
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(r.json["field"], "status", "{}", r.raw);
    let body = json!({"grant_type": {"client_credentials": null}, "name": "x", "scopes": []});
    let r = a.send(&app, Method::POST, "/api/v1/apps", body).await;
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(r.json["field"], "grant_type", "{}", r.raw);
    assert_eq!(state(&app, &a).await, before);
    // The string form still works.
    let r = a
        .send(&app, Method::PATCH, &path, json!({"status": "deactivated"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["status"], "deactivated");
}

/// Errors are sent as `application/problem+json`; the document said
/// `application/json`, so a client validating responses against it (as
/// schemathesis does) found every error nonconforming.
#[tokio::test]
async fn errors_are_declared_as_problem_documents() {
    let (app, a) = acme().await;
    let doc = a.get(&app, "/api/v1/openapi.json").await.json;
    let mut errors = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                if !status.starts_with(['4', '5']) {
                    continue;
                }
                let types: Vec<&String> = resp["content"].as_object().unwrap().keys().collect();
                assert_eq!(
                    types,
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                errors += 1;
            }
        }
    }
    assert!(errors > 50, "{errors}");
}
