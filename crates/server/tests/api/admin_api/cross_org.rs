//! An admin of one organization asking for anything of another gets 404, whatever
//! the id and the method, and the other organization's records stay as they were.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// Bolt's records as its own admin sees them.
async fn snapshot(app: &TestApp, b: &OrgFixture) -> (Value, Value) {
    let apps = b.admin.get(app, "/api/v1/apps").await;
    let users = b.admin.get(app, "/api/v1/users").await;
    assert_eq!(apps.status, 200, "{}", apps.raw);
    (apps.json, users.json)
}

#[tokio::test]
async fn another_orgs_ids_are_404_and_left_unchanged() {
    let (app, a) = acme().await;
    let b = bolt(&app).await;
    let before = snapshot(&app, &b).await;
    let app_path = format!("/api/v1/apps/{}", b.app_client_id);
    let admin_app_path = format!("/api/v1/apps/{}", b.admin.client_id);
    let user_path = format!("/api/v1/users/{}", b.user_id);
    let mut calls: Vec<(Method, String, Option<Value>)> = Vec::new();
    for p in [&app_path, &admin_app_path] {
        calls.extend([
            (Method::GET, p.clone(), None),
            (Method::PATCH, p.clone(), Some(json!({"name": "pwned"}))),
            (Method::POST, format!("{p}/secret"), None),
            (
                Method::PUT,
                format!("{p}/on-behalf-of"),
                Some(json!({"email": "root@acme.test"})),
            ),
            (Method::POST, format!("{p}/disable"), None),
            (Method::POST, format!("{p}/enable"), None),
            (Method::DELETE, p.clone(), None),
        ]);
    }
    calls.extend([
        (Method::GET, user_path.clone(), None),
        (
            Method::PATCH,
            user_path.clone(),
            Some(json!({"status": "deactivated"})),
        ),
        (
            Method::PATCH,
            user_path.clone(),
            Some(json!({"role": "admin"})),
        ),
    ]);
    for (m, p, body) in calls {
        let r = call(&app, Some(&a.token), m.clone(), &p, body).await;
        assert_eq!(r.status, 404, "{m} {p}: {}", r.raw);
        r.problem(404);
        assert!(!r.raw.contains("Bolt"), "{m} {p} leaks: {}", r.raw);
    }
    // Acme's lists hold nothing of Bolt's.
    let apps = a.get(&app, "/api/v1/apps").await;
    assert!(!apps.raw.contains(&b.app_client_id) && !apps.raw.contains("Bolt"));
    let users = a.get(&app, "/api/v1/users").await;
    assert!(!users.raw.contains("bolt.test"));
    assert_eq!(a.get(&app, "/api/v1/org").await.json["slug"], "acme-studio");
    // Bolt is untouched: same records, its app still gets tokens, its admin still works.
    assert_eq!(snapshot(&app, &b).await, before);
    let resp = app
        .token_form(
            Some((&b.app_client_id, &b.app_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        b.admin.get(&app, "/api/v1/org").await.json["slug"],
        b.org.slug.as_str()
    );
}

#[tokio::test]
async fn registering_cannot_reach_another_orgs_users() {
    let (app, a) = acme().await;
    let _b = bolt(&app).await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/apps",
            json!({"grant_type": "client_credentials", "name": "Sneaky",
                   "on_behalf_of": "root@bolt.test", "scopes": ["cfgateway"]}),
        )
        .await;
    r.invalid("on_behalf_of");
}
