//! `GET /api/v1/openapi.json`: public, OpenAPI 3, and exactly the router's routes:
//! every documented path and method answers on the live server, every other
//! method on those paths is 405, and every path the admin router holds is
//! documented.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use super::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let r = call(app, None, Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    r.json
}

/// The paths the admin router serves, read from its route table.
fn router_paths() -> BTreeSet<String> {
    let (router, _) = gatehouse_server::admin_api::routes();
    let dump = format!("{router:?}");
    dump.split('"')
        .filter(|s| s.starts_with("/api/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn document_describes_the_api() {
    let (app, _a) = acme().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for f in ["type", "title", "status", "detail", "field"] {
        assert!(problem.get(f).is_some(), "Problem lacks {f}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let public = path == "/api/v1/openapi.json";
            assert_eq!(op.get("security").is_some(), !public, "{method} {path}");
            assert!(op["responses"].as_object().unwrap().len() >= if public { 1 } else { 3 });
            if ["post", "put", "patch"].contains(&method.as_str())
                && op.get("requestBody").is_some()
            {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(schema["$ref"].as_str().is_some(), "{method} {path}");
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "AppView",
        "RegisteredApp",
        "NewAppRequest",
        "AppPatch",
        "UserView",
        "NewUserRequest",
        "UserPatch",
        "RoleList",
        "GroupList",
        "AuditPage",
        "OrgView",
        "OrgSecurity",
        "IdentityProviderView",
        "IdentityProviderSet",
        "NewSecret",
        "AddedSecret",
        "SecretList",
        "NewInvitationRequest",
        "InvitationView",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    // The schemas of what is shown never have a place for a hash.
    let text = doc["components"].to_string();
    assert!(!text.contains("secret_hash") && !text.contains("password_hash"));
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let (app, _a) = acme().await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(router_paths(), documented);
    assert!(documented.len() >= 12, "{documented:?}");
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{client_id}", "some-app")
            .replace("{id}", "some-user")
            .replace("{secret_id}", "some-secret");
        for m in METHODS {
            let listed = item.get(m).is_some();
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let resp = app
                .http
                .request(method, app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            if listed {
                operations += 1;
                assert!(
                    status == 401 || (path.ends_with("openapi.json") && status == 200),
                    "{m} {path} is documented but answers {status}"
                );
            } else {
                assert_eq!(status, 405, "{m} {path} is served but not documented");
                assert_eq!(resp.headers()["content-type"], "application/problem+json");
            }
        }
    }
    assert_eq!(operations, 29, "{documented:?}");
}

/// OpenAPI 3.1 §4.8.17.1: `description` is REQUIRED on every response object
/// (code generators refuse a document without it).
#[tokio::test]
async fn every_response_object_has_a_description() {
    let (app, _a) = acme().await;
    let doc = document(&app).await;
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                let d = resp["description"].as_str().unwrap_or("");
                assert!(!d.trim().is_empty(), "{method} {path} {status}: {resp}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 40, "{seen} responses");
}
