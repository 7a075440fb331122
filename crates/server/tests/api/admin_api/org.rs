//! `GET /api/v1/org`, `/roles`, `/groups`, `/audit`.

use reqwest::Method;
use serde_json::{Value, json};

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

#[tokio::test]
async fn audit_log_records_every_app_change_with_who_and_where() {
    let (app, a) = acme().await;
    let b = bolt(&app).await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/apps",
            json!({"grant_type": "client_credentials", "name": "Audited",
                   "on_behalf_of": "dev@acme.test", "scopes": ["cfgateway"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let secret = r.json["client_secret"].as_str().unwrap().to_owned();
    let id = r.json["client_id"].as_str().unwrap().to_owned();
    let p = format!("/api/v1/apps/{id}");
    a.send(&app, Method::PATCH, &p, json!({"name": "Audited 2"}))
        .await;
    a.bare(&app, Method::POST, &format!("{p}/secret")).await;
    a.send(
        &app,
        Method::PUT,
        &format!("{p}/on-behalf-of"),
        json!({"email": "root@acme.test"}),
    )
    .await;
    a.bare(&app, Method::POST, &format!("{p}/disable")).await;
    a.bare(&app, Method::POST, &format!("{p}/enable")).await;
    assert_eq!(a.bare(&app, Method::DELETE, &p).await.status, 204);
    let page = a.get(&app, "/api/v1/audit?limit=200").await;
    let mine: Vec<&Value> = page.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .collect();
    let actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "app.delete",
            "app.enable",
            "app.disable",
            "app.set_on_behalf_of",
            "app.rotate_secret",
            "app.update",
            "app.register"
        ]
    );
    for e in &mine {
        assert_eq!(e["actor"]["kind"], "app", "{e}");
        assert_eq!(e["actor"]["id"], a.client_id.as_str(), "{e}");
        assert_eq!(e["actor"]["name"], "Admin automation", "{e}");
        assert_eq!(e["address"], "127.0.0.1", "{e}");
        assert!(e["at"].as_i64().unwrap() > 0);
        assert!(!e["detail"].as_str().unwrap().is_empty());
    }
    // Never a secret in the log, and nothing of another organization's.
    assert!(!page.raw.contains(&secret));
    assert!(!page.raw.contains("bolt"), "{}", page.raw);
    let theirs = b.admin.get(&app, "/api/v1/audit").await;
    assert!(!theirs.raw.contains(&id));
}

#[tokio::test]
async fn the_sign_in_policy_requires_a_second_factor() {
    let (app, a) = acme().await;
    let r = a.get(&app, "/api/v1/org/security").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        r.json,
        json!({"require_mfa": false, "require_mfa_roles": []})
    );
    let r = a
        .send(
            &app,
            Method::PUT,
            "/api/v1/org/security",
            json!({"require_mfa": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        r.json,
        json!({"require_mfa": true, "require_mfa_roles": []})
    );
    assert_eq!(
        a.get(&app, "/api/v1/org/security").await.json["require_mfa"],
        true
    );
    let events = a.get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(
        events.json["events"][0]["action"], "org.require_mfa",
        "{}",
        events.raw
    );
    // Unknown fields are refused, nothing changes.
    let r = a
        .send(
            &app,
            Method::PUT,
            "/api/v1/org/security",
            json!({"require_mfa": false, "x": 1}),
        )
        .await;
    assert!(r.status == 400 || r.status == 422, "{}", r.raw);
    assert_eq!(
        a.get(&app, "/api/v1/org/security").await.json["require_mfa"],
        true
    );
    // An app acting for someone without `users:manage` may read, not change it.
    let apps_only = org_with_app_admin_only(&app).await;
    let r = apps_only
        .send(
            &app,
            Method::PUT,
            "/api/v1/org/security",
            json!({"require_mfa": false}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.raw);
}

#[tokio::test]
async fn the_identity_provider_is_set_read_without_its_secret_and_removed() {
    let (app, a) = acme().await;
    let path = "/api/v1/org/identity-provider";
    assert_eq!(a.get(&app, path).await.status, 404);
    let body = json!({"issuer": "https://login.acme.test/", "client_id": "gatehouse",
        "client_secret": "s3cret-at-the-idp", "domains": ["Acme.TEST", "acme.test"]});
    let r = a.send(&app, Method::PUT, path, body).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["issuer"], "https://login.acme.test");
    assert_eq!(r.json["domains"], json!(["acme.test"]));
    assert_eq!(r.json["allow_passwords"], false);
    assert_eq!(r.json["default_role"], "member");
    assert_eq!(
        r.json["redirect_uri"],
        format!("{}/upstream/callback", app.base)
    );
    let shown = a.get(&app, path).await;
    assert!(!shown.raw.contains("s3cret"), "{}", shown.raw);
    // Sealed at rest, and opens only for this organization.
    let stored = app.store.upstream_provider(&a.org_id).await.unwrap();
    assert!(!stored.sealed_client_secret.contains("s3cret"));
    let aad = gatehouse_core::upstream::secret_aad(&a.org_id);
    assert_eq!(
        app.kek.open(&aad, &stored.sealed_client_secret).unwrap(),
        b"s3cret-at-the-idp"
    );
    assert!(app.kek.open("other", &stored.sealed_client_secret).is_err());
    // A change without a secret keeps it; bad fields are 422 naming them.
    assert_eq!(r.json["trust_upstream_mfa"], false, "off unless asked");
    let keep = json!({"issuer": "https://login.acme.test", "client_id": "gatehouse",
        "domains": ["acme.test"], "allow_passwords": true, "default_role": "developer",
        "trust_upstream_mfa": true});
    let r = a.send(&app, Method::PUT, path, keep).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["trust_upstream_mfa"], true);
    assert_eq!(a.get(&app, path).await.json["trust_upstream_mfa"], true);
    let events = a.get(&app, "/api/v1/audit?limit=1").await;
    assert!(
        events.json["events"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("multi-factor sign-ins count as multi-factor here"),
        "{}",
        events.raw
    );
    let again = app.store.upstream_provider(&a.org_id).await.unwrap();
    assert_eq!(again.sealed_client_secret, stored.sealed_client_secret);
    for (field, bad) in [
        (
            "issuer",
            json!({"issuer": "http://login.acme.test", "client_id": "g", "domains": ["acme.test"]}),
        ),
        (
            "domains",
            json!({"issuer": "https://login.acme.test", "client_id": "g", "domains": ["acme"]}),
        ),
        (
            "default_role",
            json!({"issuer": "https://login.acme.test", "client_id": "g", "domains": ["acme.test"], "default_role": "boss"}),
        ),
    ] {
        let r = a.send(&app, Method::PUT, path, bad).await;
        assert_eq!(r.status, 422, "{}", r.raw);
        assert_eq!(r.json["field"], field, "{}", r.raw);
    }
    let events = a.get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(events.json["events"][0]["action"], "org.upstream_set");
    // Someone without `users:manage` may not change it.
    let apps_only = org_with_app_admin_only(&app).await;
    let r = apps_only.bare(&app, Method::DELETE, path).await;
    assert_eq!(r.status, 403, "{}", r.raw);
    let r = a.bare(&app, Method::DELETE, path).await;
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(a.get(&app, path).await.status, 404);
}
