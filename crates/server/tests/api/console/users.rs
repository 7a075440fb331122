//! Users, roles and groups of the organization, over HTTP.

use reqwest::StatusCode;

use super::{Console, setup};

#[tokio::test]
async fn an_admin_creates_and_deactivates_users_and_sees_role_permissions() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let html = c.page("/console/users").await;
    assert!(html.contains("dev@acme.test") && html.contains("ana@acme.test"));
    let resp = c
        .post(
            "/console/users",
            "/console/users",
            &[
                ("email", "new@acme.test"),
                ("name", "New Person"),
                ("role", "developer"),
                ("groups", "ops, qa"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let user = app.user_by_email("new@acme.test").await.unwrap();
    assert_eq!(user.groups, ["ops", "qa"]);
    let resp = c
        .post(
            &format!("/console/users/{}/status", user.id),
            "/console/users",
            &[("status", "deactivated")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.s().user_by_id(&user.id).await.unwrap().status,
        gatehouse_core::model::UserStatus::Deactivated
    );
    // A bad email comes back beside its field, the rest kept.
    let resp = c
        .post(
            "/console/users",
            "/console/users",
            &[
                ("email", "not-an-email"),
                ("name", "Keep Me"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(super::by_id(&html, "email-error").contains("not a valid email"));
    assert!(html.contains("value=\"Keep Me\""));
    // The same email twice is a conflict shown on the form.
    let resp = c
        .post(
            "/console/users",
            "/console/users",
            &[("email", "ana@acme.test"), ("role", "member")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);

    let roles = c.page("/console/roles").await;
    assert!(roles.contains("apps:manage") && roles.contains("developer_api"));
    assert!(roles.contains("<li>ops</li>") && roles.contains("<li>qa</li>"));
}

#[tokio::test]
async fn an_admin_changes_a_users_role_and_groups() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let ana = app.user_by_email("ana@acme.test").await.unwrap();
    let html = c.page("/console/users").await;
    // Each row's form offers the organization's roles, the user's own selected.
    let row = &html[html.find(&format!("id=\"access-{}\"", ana.id)).unwrap()..];
    let row = &row[..row.find("</form>").unwrap()];
    assert!(
        row.contains("<option value=\"developer\" selected>"),
        "{row}"
    );
    assert!(row.contains("<option value=\"admin\">") && row.contains("<option value=\"member\">"));

    let action = format!("/console/users/{}/access", ana.id);
    let resp = c
        .post(
            &action,
            "/console/users",
            &[("role", "member"), ("groups", "ops, design")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/console/users?done=access");
    let stored = app.s().user_by_id(&ana.id).await.unwrap();
    assert_eq!(stored.role, "member");
    assert_eq!(stored.groups, ["ops", "design"]);
    let html = c.page("/console/users?done=access").await;
    assert!(html.contains("Role and groups changed"));
    assert!(html.contains(&format!(
        "id=\"groups-{}\" name=\"groups\" value=\"ops, design\"",
        ana.id
    )));
    assert!(c.page("/console/audit").await.contains("user.set_access"));

    // An unknown role is refused on the user's row, what was typed kept.
    let resp = c
        .post(
            &action,
            "/console/users",
            &[("role", "wizard"), ("groups", "ops, qa")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    let error = super::by_id(&html, &format!("access-{}-error", ana.id));
    assert!(
        error.contains("is not a role of this organization"),
        "{error}"
    );
    assert!(html.contains(&format!(
        "id=\"groups-{}\" name=\"groups\" value=\"ops, qa\"",
        ana.id
    )));
    let stored = app.s().user_by_id(&ana.id).await.unwrap();
    assert_eq!(stored.role, "member", "unchanged");
    assert_eq!(stored.groups, ["ops", "design"]);
    // A group name too long is refused too; no groups at all is fine.
    let long = "g".repeat(65);
    let resp = c
        .post(
            &action,
            "/console/users",
            &[("role", "member"), ("groups", &long)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = c
        .post(
            &action,
            "/console/users",
            &[("role", "developer"), ("groups", "")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(app.s().user_by_id(&ana.id).await.unwrap().groups.is_empty());
}

#[tokio::test]
async fn another_organizations_users_cannot_be_given_a_role() {
    let (app, _) = setup().await;
    let (their_user, _) = super::other_org(&app).await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    for id in [their_user.as_str(), "no-such-user"] {
        let resp = c
            .post(
                &format!("/console/users/{id}/access"),
                "/console/users",
                &[("role", "member"), ("groups", "mine")],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{id}");
    }
    let bob = app.s().user_by_id(&their_user).await.unwrap();
    assert_eq!(bob.role, "admin");
    assert!(bob.groups.is_empty());
    // A developer (no users:manage) is refused outright.
    let ana = app.user_by_email("ana@acme.test").await.unwrap();
    // The sign-in form's token stays this browser's CSRF token.
    let d = Console::new(&app);
    let token = d.csrf("/console").await;
    let resp = d
        .http
        .post(d.url("/console/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "ana@acme.test"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = d
        .http
        .post(d.url(&format!("/console/users/{}/access", ana.id)))
        .form(&[("csrf_token", token.as_str()), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.s().user_by_id(&ana.id).await.unwrap().role, "developer");
}
