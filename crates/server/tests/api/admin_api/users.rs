//! `/api/v1/users…`: list, create (with a password: can sign in), show, change
//! role/groups/status; `users:manage` required for changes.

use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn create_list_show_and_deactivate() {
    let (app, a) = acme().await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/users",
            json!({"email": "Ana@Acme.test", "name": "Ana Lima", "role": "developer",
                   "groups": ["design"], "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"],
        format!("/api/v1/users/{id}").as_str()
    );
    assert_eq!(r.json["email"], "ana@acme.test");
    assert_eq!(r.json["can_sign_in"], true);
    assert_eq!(r.json["status"], "active");
    assert!(
        !r.raw.contains("horse") && !r.raw.contains("argon2"),
        "{}",
        r.raw
    );

    let list = a.get(&app, "/api/v1/users").await;
    assert_eq!(list.status, 200);
    assert!(list.raw.contains("ana@acme.test") && list.raw.contains("dev@acme.test"));
    assert!(!list.raw.contains("argon2") && !list.raw.contains("password"));

    let path = format!("/api/v1/users/{id}");
    let shown = a.get(&app, &path).await;
    assert_eq!(shown.json["groups"], json!(["design"]));
    assert_eq!(shown.json["role"], "developer");

    let r = a
        .send(&app, Method::PATCH, &path, json!({"status": "deactivated"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["status"], "deactivated");
    assert_eq!(a.get(&app, &path).await.json["status"], "deactivated");
    let r = a
        .send(&app, Method::PATCH, &path, json!({"status": "active"}))
        .await;
    assert_eq!(r.json["status"], "active");
}

#[tokio::test]
async fn role_and_groups_change() {
    let (app, a) = acme().await;
    let uid = user_in(&app, "acme-studio", "kai@acme.test", "member").await;
    let path = format!("/api/v1/users/{uid}");
    let r = a
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"role": "developer", "groups": ["ops", "qa"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["role"], "developer");
    assert_eq!(r.json["groups"], json!(["ops", "qa"]));
    a.send(&app, Method::PATCH, &path, json!({"role": "emperor"}))
        .await
        .invalid("role");
    let groups = a.get(&app, "/api/v1/groups").await;
    assert_eq!(groups.json["groups"], json!(["ops", "qa"]));
}

#[tokio::test]
async fn bad_user_input() {
    let (app, a) = acme().await;
    for (body, field) in [
        (json!({"email": "nope", "role": "developer"}), "email"),
        (json!({"email": "x@acme.test", "role": "emperor"}), "role"),
        (json!({"email": "x@acme.test"}), "role"),
        (
            json!({"email": "x@acme.test", "role": "member", "admin": true}),
            "admin",
        ),
    ] {
        a.send(&app, Method::POST, "/api/v1/users", body)
            .await
            .invalid(field);
    }
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/users",
            json!({"email": "dev@acme.test", "role": "member"}),
        )
        .await;
    r.problem(409);
    let uid = user_in(&app, "acme-studio", "kai@acme.test", "member").await;
    a.send(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{uid}"),
        json!({"status": "asleep"}),
    )
    .await
    .invalid("status");
    a.get(&app, "/api/v1/users/nope").await.problem(404);
    a.send(
        &app,
        Method::PATCH,
        "/api/v1/users/nope",
        json!({"status": "active"}),
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn user_changes_need_users_manage() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let a = org_with_app_admin_only(&app).await;
    // Reading is fine with apps:manage alone…
    assert_eq!(a.get(&app, "/api/v1/users").await.status, 200);
    // …changing users is not.
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/users",
            json!({"email": "x@cobalt.test", "role": "member"}),
        )
        .await;
    let p = r.problem(403);
    assert!(p["detail"].as_str().unwrap().contains("users:manage"));
    let uid = user_in(&app, "cobalt", "kai@cobalt.test", "member").await;
    a.send(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{uid}"),
        json!({"status": "deactivated"}),
    )
    .await
    .problem(403);
    let users = a.get(&app, "/api/v1/users").await;
    assert!(!users.raw.contains("x@cobalt.test"));
}

#[tokio::test]
async fn profile_claims_are_created_changed_cleared_and_checked() {
    let (app, a) = acme().await;
    let r = a
        .send(
            &app,
            Method::POST,
            "/api/v1/users",
            json!({"email": "zoe@acme.test", "name": "Zoë Martin", "role": "member",
                   "given_name": "Zoë", "family_name": "Martin", "locale": "fr-CA",
                   "zoneinfo": "America/Toronto", "email_verified": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    for (k, v) in [
        ("name", json!("Zoë Martin")),
        ("given_name", json!("Zoë")),
        ("family_name", json!("Martin")),
        ("locale", json!("fr-CA")),
        ("zoneinfo", json!("America/Toronto")),
        ("email_verified", json!(true)),
    ] {
        assert_eq!(r.json[k], v, "{k}: {}", r.raw);
    }
    let created_at = r.json["created_at"].as_i64().unwrap();
    assert_eq!(r.json["updated_at"].as_i64(), Some(created_at));
    let path = format!("/api/v1/users/{}", r.json["id"].as_str().unwrap());

    // A change: `null` clears, absent stays, role and profile together.
    let r = a
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"family_name": null, "locale": "fr", "email_verified": false, "role": "developer"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.json["family_name"], Value::Null);
    assert_eq!(r.json["locale"], "fr");
    assert_eq!(r.json["given_name"], "Zoë");
    assert_eq!(r.json["email_verified"], false);
    assert_eq!(r.json["role"], "developer");
    assert!(r.json["updated_at"].as_i64().unwrap() >= created_at);
    let stored = app
        .s()
        .user_by_email(&app.org("acme-studio").await.id, "zoe@acme.test")
        .await
        .unwrap();
    assert_eq!(stored.profile.family_name, None);
    assert_eq!(stored.profile.locale.as_deref(), Some("fr"));
    // Audited, naming the fields (never their values).
    let log = app.s().audit_events(&stored.org_id, None, 5).await.unwrap();
    let event = log
        .iter()
        .find(|e| e.action == "user.update_profile")
        .unwrap();
    assert_eq!(
        event.detail,
        "changed family_name, locale, email_verified of `zoe@acme.test`"
    );

    // Bad values: 422 naming the field, and nothing changes.
    for (body, field) in [
        (json!({"locale": "fr_CA"}), "locale"),
        (json!({"zoneinfo": "Paris"}), "zoneinfo"),
        (json!({"zoneinfo": "Europe/../etc"}), "zoneinfo"),
        (json!({"given_name": "a\u{7}b"}), "given_name"),
        (json!({"family_name": "x".repeat(101)}), "family_name"),
        (json!({"nickname": "Zo"}), "nickname"),
        (json!({"locale": "fr-CA", "role": "emperor"}), "role"),
    ] {
        a.send(&app, Method::PATCH, &path, body)
            .await
            .invalid(field);
    }
    // Status stays a change of its own.
    a.send(
        &app,
        Method::PATCH,
        &path,
        json!({"status": "deactivated", "locale": "de"}),
    )
    .await
    .invalid("status");
    let after = a.get(&app, &path).await;
    assert_eq!(after.json["locale"], "fr");
    assert_eq!(after.json["status"], "active");
    a.send(
        &app,
        Method::POST,
        "/api/v1/users",
        json!({"email": "bad@acme.test", "role": "member", "zoneinfo": "not a zone"}),
    )
    .await
    .invalid("zoneinfo");
}

#[tokio::test]
async fn the_openapi_document_describes_the_profile_fields() {
    let (app, _) = acme().await;
    let doc = call(&app, None, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json;
    let schemas = &doc["components"]["schemas"];
    let fields = [
        "name",
        "given_name",
        "family_name",
        "locale",
        "zoneinfo",
        "email_verified",
    ];
    for schema in ["UserView", "NewUserRequest", "UserPatch"] {
        for field in fields {
            assert!(
                schemas[schema]["properties"].get(field).is_some(),
                "{schema}.{field}: {}",
                schemas[schema]
            );
        }
    }
    assert!(
        schemas["UserView"]["properties"]
            .get("updated_at")
            .is_some()
    );
    // What is answered always: the verification flag and when the profile changed.
    let required = schemas["UserView"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("email_verified")) && required.contains(&json!("updated_at")));
}
