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

#[tokio::test]
async fn an_admin_sees_and_edits_a_users_profile_on_their_page() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let ana = app.user_by_email("ana@acme.test").await.unwrap();
    let page_path = format!("/console/users/{}", ana.id);
    // The users list links to each user's page.
    assert!(
        c.page("/console/users")
            .await
            .contains(&format!("href=\"{page_path}\""))
    );
    let html = c.page(&page_path).await;
    assert_eq!(super::by_id(&html, "user-id"), ana.id);
    assert!(html.contains("action=\"/console/users/") && html.contains("/profile\""));

    let post = |fields: Vec<(&'static str, &'static str)>| {
        let (c, page_path, ana) = (&c, &page_path, &ana);
        async move {
            c.post(
                &format!("/console/users/{}/profile", ana.id),
                page_path,
                &fields,
            )
            .await
        }
    };
    let resp = post(vec![
        ("name", "Ana Lima"),
        ("given_name", "Ana"),
        ("family_name", "Lima"),
        ("locale", "pt-BR"),
        ("zoneinfo", "America/Sao_Paulo"),
        ("email_verified", "yes"),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()["location"],
        format!("{page_path}?done=profile").as_str()
    );
    let stored = app.s().user_by_id(&ana.id).await.unwrap();
    assert_eq!(stored.profile.given_name.as_deref(), Some("Ana"));
    assert_eq!(
        stored.profile.zoneinfo.as_deref(),
        Some("America/Sao_Paulo")
    );
    assert!(stored.profile.email_verified);
    let html = c.page(&format!("{page_path}?done=profile")).await;
    assert!(html.contains("Profile saved."));
    assert!(html.contains("value=\"America/Sao_Paulo\"") && html.contains(" checked"));

    // A bad time zone comes back beside its field, with what was typed; nothing changes.
    let resp = post(vec![
        ("name", "Ana Lima"),
        ("given_name", "Anita"),
        ("locale", "pt-BR"),
        ("zoneinfo", "Sao Paulo"),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        super::by_id(&html, "zoneinfo-error").contains("IANA time zone"),
        "{html}"
    );
    assert!(html.contains("value=\"Anita\""));
    assert_eq!(app.s().user_by_id(&ana.id).await.unwrap(), stored);

    // Blank fields clear; the unchecked box takes the verification back.
    let resp = post(vec![("name", "Ana Lima"), ("given_name", "Ana")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cleared = app.s().user_by_id(&ana.id).await.unwrap();
    assert_eq!(
        (
            cleared.profile.family_name,
            cleared.profile.locale,
            cleared.profile.email_verified
        ),
        (None, None, false)
    );

    // Without the CSRF token the change is refused.
    let resp = c
        .http
        .post(c.url(&format!("/console/users/{}/profile", ana.id)))
        .form(&[("name", "Mallory")])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(
        app.s().user_by_id(&ana.id).await.unwrap().name.as_deref(),
        Some("Ana Lima")
    );
}

#[tokio::test]
async fn another_organizations_user_page_is_not_found() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (other_user, _) = super::other_org(&app).await;
    assert_eq!(
        c.get(&format!("/console/users/{other_user}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_admin_sets_and_removes_the_identity_provider_in_the_console() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let users = c.page("/console/users").await;
    assert!(users.contains("/console/identity-provider"));
    let page = "/console/identity-provider";
    let html = c.page(page).await;
    assert!(super::by_id(&html, "provider-state").contains("Not set up"));
    assert!(html.contains(&format!("{}/upstream/callback", app.base)));
    // A bad field is shown beside it, nothing is stored.
    let bad = [
        ("issuer", "http://login.acme.test"),
        ("client_id", "gatehouse"),
        ("client_secret", "idp-secret"),
        ("domains", "acme.test"),
        ("default_role", "member"),
    ];
    let r = c.post(page, page, &bad).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("id=\"issuer-error\""));
    let org = app.org("acme-studio").await;
    assert!(app.store.upstream_provider(&org.id).await.is_err());
    let good = [
        ("issuer", "https://login.acme.test"),
        ("client_id", "gatehouse"),
        ("client_secret", "idp-secret"),
        ("domains", "acme.test, acme.example"),
        ("default_role", "developer"),
    ];
    let r = c.post(page, page, &good).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let stored = app.store.upstream_provider(&org.id).await.unwrap();
    assert_eq!(stored.domains, ["acme.test", "acme.example"]);
    assert!(!stored.allow_passwords);
    assert!(!stored.trust_upstream_mfa, "unticked: not trusted");
    assert_eq!(stored.default_role, "developer");
    let html = c.page(page).await;
    assert!(super::by_id(&html, "provider-state").contains("Set up"));
    assert!(!html.contains("idp-secret"));
    assert!(!html.contains("name=\"trust_upstream_mfa\" checked"));
    // The checkbox trusts the provider's multi-factor sign-ins, and shows it.
    let trusted = [
        ("issuer", "https://login.acme.test"),
        ("client_id", "gatehouse"),
        ("domains", "acme.test"),
        ("default_role", "developer"),
        ("trust_upstream_mfa", "on"),
    ];
    let r = c.post(page, page, &trusted).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        app.store
            .upstream_provider(&org.id)
            .await
            .unwrap()
            .trust_upstream_mfa
    );
    assert!(
        c.page(page)
            .await
            .contains("name=\"trust_upstream_mfa\" checked")
    );
    let r = c.post("/console/identity-provider/remove", page, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(app.store.upstream_provider(&org.id).await.is_err());
}

/// Passwords turned off for the organization's domains hold on every
/// surface: the console's sign-in refuses the right password (and says why,
/// only then), a wrong one is the usual answer, and other domains are untouched.
#[tokio::test]
async fn passwords_turned_off_for_a_domain_are_refused_at_the_console_too() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let page = "/console/identity-provider";
    let off = [
        ("issuer", "https://login.acme.test"),
        ("client_id", "gatehouse"),
        ("client_secret", "idp-secret"),
        ("domains", "acme.test"),
        ("default_role", "developer"),
    ];
    assert_eq!(
        c.post(page, page, &off).await.status(),
        StatusCode::SEE_OTHER
    );
    let html = c.page(page).await;
    assert!(html.contains("passwords-off-warning"));

    let fresh = Console::new(&app);
    let right = fresh
        .post(
            "/console/login",
            "/console",
            &[
                ("email", "ana@acme.test"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    assert_eq!(right.status(), StatusCode::FORBIDDEN);
    assert!(right.text().await.unwrap().contains("turned passwords off"));
    let wrong = fresh
        .post(
            "/console/login",
            "/console",
            &[("email", "ana@acme.test"), ("password", "not the password")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!wrong.text().await.unwrap().contains("turned passwords off"));
    // Allowed again: the same password signs in.
    let on = [
        ("issuer", "https://login.acme.test"),
        ("client_id", "gatehouse"),
        ("domains", "acme.test"),
        ("allow_passwords", "on"),
        ("default_role", "developer"),
    ];
    assert_eq!(
        c.post(page, page, &on).await.status(),
        StatusCode::SEE_OTHER
    );
    Console::sign_in(&app, "ana@acme.test").await;
}
