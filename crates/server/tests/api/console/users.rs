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
    let user = app.s().user_by_email("new@acme.test").await.unwrap();
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
