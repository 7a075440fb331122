//! `GET /api/v1/org`, `/roles`, `/groups`, `/audit`.

use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn org_roles_and_groups() {
    let (app, a) = acme().await;
    let org = a.get(&app, "/api/v1/org").await;
    assert_eq!(org.status, 200, "{}", org.raw);
    assert_eq!(org.json["name"], "Acme Studio");
    assert_eq!(org.json["id"], a.org_id.as_str());
    let roles = a.get(&app, "/api/v1/roles").await;
    let admin = roles.json["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()
        .clone();
    assert!(
        admin["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("apps:manage"))
    );
    let groups = a.get(&app, "/api/v1/groups").await;
    assert_eq!(groups.json["groups"], json!(["ops"]));
}

#[tokio::test]
async fn audit_log_shows_each_change() {
    let (app, a) = acme().await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/users",
            json!({"email": "kai@acme.test", "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let uid = r.json["id"].as_str().unwrap().to_owned();
    a.send(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{uid}"),
        json!({"status": "deactivated"}),
    )
    .await;
    let page = a.get(&app, "/api/v1/audit?limit=2").await;
    assert_eq!(page.status, 200, "{}", page.raw);
    let events = page.json["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{}", page.raw);
    assert!(
        events[0]["seq"].as_i64() > events[1]["seq"].as_i64(),
        "newest first"
    );
    let e = &events[1];
    assert_eq!(e["actor"]["kind"], "app");
    assert_eq!(e["actor"]["id"], a.client_id.as_str());
    assert_eq!(e["address"], "127.0.0.1");
    assert!(e["at"].as_i64().unwrap() > 0);
    assert!(e["action"].as_str().unwrap().contains("user"), "{e}");
    assert!(e["target"].as_str().is_some());
    let before = page.json["next_before"].as_i64().unwrap();
    let older = a
        .get(&app, &format!("/api/v1/audit?before={before}&limit=200"))
        .await;
    assert_eq!(older.status, 200);
    a.get(&app, "/api/v1/audit?limit=201")
        .await
        .invalid("limit");
    a.get(&app, "/api/v1/audit?limit=x").await.problem(400);
}
