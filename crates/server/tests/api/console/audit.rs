//! The audit log page, over HTTP.

use reqwest::StatusCode;

use super::apps::register;
use super::{Console, other_org, setup};

/// The rows of the audit table, newest first.
fn rows(html: &str) -> Vec<&str> {
    let Some(at) = html.find("<tbody>") else {
        return Vec::new();
    };
    html[at..].split("<tr>").skip(1).collect()
}

#[tokio::test]
async fn the_audit_log_shows_who_did_what_when_and_from_where() {
    let (app, _) = setup().await;
    let (_, their_app) = other_org(&app).await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, _, _, _) = register(&c, "Nightly sync").await;
    let rotate = format!("/console/apps/{client_id}/rotate");
    let resp = c.post(&rotate, &rotate, &[("confirm", "yes")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    let html = c.page("/console/audit").await;
    assert!(html.contains("href=\"/console/audit\""), "nav link");
    assert!(html.contains("Audit log"));
    let rows = rows(&html);
    let rotated = rows
        .iter()
        .position(|r| r.contains("app.rotate_secret"))
        .unwrap_or_else(|| panic!("no rotation in {html}"));
    let registered = rows
        .iter()
        .position(|r| r.contains("app.register") && r.contains("Nightly sync"))
        .unwrap_or_else(|| panic!("no registration in {html}"));
    assert!(rotated < registered, "newest first");
    for i in [rotated, registered] {
        let row = rows[i];
        assert!(row.contains("admin@acme.test"), "{row}");
        assert!(row.contains("(user)"), "{row}");
        assert!(row.contains("127.0.0.1"), "{row}");
        assert!(row.contains(" UTC"), "{row}");
    }
    // The other organization's events never show.
    assert!(!html.contains("Their app") && !html.contains(&their_app));
    assert!(!html.contains("bob@other.test") && !html.contains("Other Org"));
    // One page holds everything: no "Older" link.
    assert!(!html.contains("id=\"older\""));
}

#[tokio::test]
async fn older_pages_follow_before_and_bad_values_are_refused() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    // Enough changes for more than one page (50 a page).
    let (client_id, _, _, _) = register(&c, "Nightly sync").await;
    let rotate = format!("/console/apps/{client_id}/rotate");
    for _ in 0..50 {
        let resp = c.post(&rotate, &rotate, &[("confirm", "yes")]).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    }
    let html = c.page("/console/audit").await;
    assert_eq!(rows(&html).len(), 50);
    let older = super::by_id(&html, "older");
    assert_eq!(older, "Older");
    let at = html.find("/console/audit?before=").unwrap();
    let link = &html[at..at + html[at..].find('"').unwrap()];
    let page2 = c.page(link).await;
    let rest = rows(&page2);
    assert!(!rest.is_empty() && rest.len() < 50, "{}", rest.len());
    assert!(
        rest.iter().any(|r| r.contains("app.register")),
        "the oldest changes are on the older page"
    );
    assert!(!page2.contains("id=\"older\""));

    for bad in ["0", "-5", "abc", "99999999999999999999"] {
        let resp = c.get(&format!("/console/audit?before={bad}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "before={bad}");
    }
}

#[tokio::test]
async fn a_developer_cannot_read_the_audit_log() {
    let (app, _) = setup().await;
    let c = Console::new(&app);
    assert_eq!(
        c.get("/console/audit").await.status(),
        StatusCode::SEE_OTHER
    );
    let c = Console::sign_in(&app, "ana@acme.test").await;
    assert_eq!(
        c.get("/console/audit").await.status(),
        StatusCode::FORBIDDEN
    );
}

/// Sign-ins are security events: who, from where, succeeded or failed (and why),
/// through the console and the authorization endpoint alike. Guesses at unknown
/// addresses belong to no organization and are not written.
#[tokio::test]
async fn sign_ins_and_failed_sign_ins_are_in_the_audit_log() {
    let (app, _) = setup().await;
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    let before = app
        .s()
        .audit_events(&org.id, None, 500)
        .await
        .unwrap()
        .len();
    let c = Console::new(&app);
    for (email, password) in [("ana@acme.test", "wrong"), ("nobody@acme.test", "wrong")] {
        let resp = c
            .post(
                "/console/login",
                "/console",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    Console::sign_in(&app, "admin@acme.test").await;
    // The authorization endpoint's sign-in page writes the same event.
    let web = app.web_app("cfgateway").await;
    let browser = crate::browser::Browser::new(&app);
    crate::browser::code_for(
        &browser,
        &crate::helpers::authorize_params(&web),
        "ana@acme.test",
    )
    .await;
    let log = app.s().audit_events(&org.id, None, 500).await.unwrap();
    let signins: Vec<_> = log[..log.len() - before]
        .iter()
        .filter(|e| e.action.starts_with("signin."))
        .map(|e| (e.action.as_str(), e.actor_name.as_str(), e.address.as_str()))
        .collect();
    assert_eq!(
        signins,
        [
            ("signin.succeeded", "ana@acme.test", "127.0.0.1"),
            ("signin.succeeded", "admin@acme.test", "127.0.0.1"),
            ("signin.failed", "ana@acme.test", "127.0.0.1"),
        ]
    );
    let failed = log.iter().find(|e| e.action == "signin.failed").unwrap();
    assert_eq!(failed.detail, "sign-in refused: wrong password");
    assert_eq!(failed.target, app.user_id("ana@acme.test").await);
    // And the console's audit page shows them.
    let admin = Console::sign_in(&app, "admin@acme.test").await;
    let html = admin.page("/console/audit").await;
    assert!(html.contains("signin.failed"), "{html}");
}
