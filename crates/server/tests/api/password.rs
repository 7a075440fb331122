//! Forgotten passwords and invitations, end to end over HTTP: the e-mail
//! reaches a real SMTP server (the test's [`SmtpSink`]), and the link in it is
//! followed like a person would. Expiry moves the server's clock.

use std::time::Duration;

use gatehouse_core::clock::Clock;
use gatehouse_core::model::Actor;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::{Console, csrf_in, setup, setup_with};
use crate::helpers::{PASSWORD, TestApp, eventually};
use crate::smtp_sink::SmtpSink;

const NEW_PASSWORD: &str = "a much better passphrase";

async fn with_mail() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let mailer =
        gatehouse_server::mail::Mailer::new(&sink.url(), "Acme ID <id@acme.test>", None).unwrap();
    let (app, _) = setup_with(move |c| c.mail = Some(mailer)).await;
    (app, sink)
}

/// Asks for a reset link for `email` as the sign-in page's form would.
async fn forgot(c: &Console, email: &str) -> (StatusCode, String) {
    let resp = c
        .post("/password/forgot", "/password/forgot", &[("email", email)])
        .await;
    (resp.status(), resp.text().await.unwrap())
}

/// Opens the link's page; the form's CSRF token and the page.
async fn open(c: &Console, link: &str) -> (StatusCode, String) {
    let resp = c.http.get(link).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Sets `password` through the link's page.
async fn set(c: &Console, link: &str, password: &str, confirm: &str) -> (StatusCode, String) {
    let (status, page) = open(c, link).await;
    if status != StatusCode::OK {
        return (status, page);
    }
    let token = link.split("token=").nth(1).unwrap();
    let resp = c
        .http
        .post(c.url("/password/set"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("token", token),
            ("password", password),
            ("confirm", confirm),
        ])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Signs in on the console's page with `password`: the status and where to.
async fn sign_in(app: &TestApp, email: &str, password: &str) -> (StatusCode, String) {
    let c = Console::new(app);
    let resp = c
        .post(
            "/console/login",
            "/console",
            &[("email", email), ("password", password)],
        )
        .await;
    let to = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status(), to)
}

async fn actions(app: &TestApp) -> Vec<String> {
    let org = app.org("acme-studio").await;
    let events = app.s().audit_events(&org.id, None, 50).await.unwrap();
    events.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let (app, sink) = with_mail().await;
    let signed_in = Console::sign_in(&app, "ana@acme.test").await;
    assert_eq!(
        signed_in.get("/console").await.status(),
        StatusCode::SEE_OTHER
    );
    let c = Console::new(&app);
    let (status, page) = forgot(&c, "ANA@acme.test ").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Check your email"), "{page}");

    let mail = sink.next().await;
    assert_eq!(mail.to, vec!["ana@acme.test".to_owned()]);
    assert_eq!(mail.from, "id@acme.test");
    assert!(
        mail.header("Subject")
            .unwrap()
            .contains("Reset your password")
    );
    let link = mail.link(&format!("{}/password/set?token=", app.base));

    // Opening the link changes nothing; mismatched or short passwords are refused.
    let (status, page) = open(&c, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("ana@acme.test"), "{page}");
    let (status, page) = set(&c, &link, NEW_PASSWORD, "something else").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("not the same"), "{page}");
    let (status, page) = set(&c, &link, "short", "short").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at least 8 characters"), "{page}");
    assert_eq!(
        sign_in(&app, "ana@acme.test", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );

    let (status, page) = set(&c, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Password set"), "{page}");
    // Nobody was signed in by it, and the session made before it ended.
    assert_eq!(c.get("/console").await.status(), StatusCode::OK);
    assert!(c.page("/console").await.contains("Sign in"));
    assert_eq!(signed_in.get("/console").await.status(), StatusCode::OK);

    // Single use.
    let (status, page) = set(&c, &link, "yet another password", "yet another password").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("does not work any more"), "{page}");

    assert_eq!(
        sign_in(&app, "ana@acme.test", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&app, "ana@acme.test", NEW_PASSWORD).await,
        (StatusCode::SEE_OTHER, "/console".to_owned())
    );
    let done = actions(&app).await;
    for a in ["password.reset_requested", "password.reset_used"] {
        assert!(done.iter().any(|d| d == a), "{a} not in {done:?}");
    }
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let (app, sink) = with_mail().await;
    let c = Console::new(&app);
    let started = std::time::Instant::now();
    let (known_status, known) = forgot(&c, "ana@acme.test").await;
    let known_took = started.elapsed();
    let started = std::time::Instant::now();
    let (unknown_status, unknown) = forgot(&c, "nobody@acme.test").await;
    let unknown_took = started.elapsed();
    assert_eq!(known_status, unknown_status);
    assert_eq!(
        known.replace("ana@acme.test", "X"),
        unknown.replace("nobody@acme.test", "X")
    );
    // Both answer before any look-up or delivery (which run afterwards).
    assert!(known_took < Duration::from_secs(2) && unknown_took < Duration::from_secs(2));
    assert_eq!(sink.next().await.to, vec!["ana@acme.test".to_owned()]);
    assert!(sink.none_within(Duration::from_millis(800)).await.is_none());
}

#[tokio::test]
async fn a_new_request_replaces_the_earlier_link_and_links_expire_after_30_minutes() {
    let (app, sink) = with_mail().await;
    let c = Console::new(&app);
    let prefix = format!("{}/password/set?token=", app.base);
    forgot(&c, "ana@acme.test").await;
    let first = sink.next().await.link(&prefix);
    forgot(&c, "ana@acme.test").await;
    let second = sink.next().await.link(&prefix);
    assert_ne!(first, second);
    assert_eq!(open(&c, &first).await.0, StatusCode::NOT_FOUND);
    assert_eq!(open(&c, &second).await.0, StatusCode::OK);
    app.clock.advance(30 * 60 - 1);
    assert_eq!(open(&c, &second).await.0, StatusCode::OK);
    app.clock.advance(1);
    let (status, page) = set(&c, &second, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert_eq!(
        sign_in(&app, "ana@acme.test", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_reset_does_not_skip_the_second_factor() {
    let (app, sink) = with_mail().await;
    let ana = app.user_id("ana@acme.test").await;
    let now = app.clock.now();
    app.s().begin_totp(&ana, "sealed", now).await.unwrap();
    let ev = gatehouse_core::model::AuditEvent::new(&Actor::operator(), "", now, "test", "t", "t");
    app.s().confirm_totp(&ana, 1, &[], now, &ev).await.unwrap();
    let c = Console::new(&app);
    forgot(&c, "ana@acme.test").await;
    let link = sink
        .next()
        .await
        .link(&format!("{}/password/set?token=", app.base));
    let (status, page) = set(&c, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The new password leads to the second step, not into the console.
    let (status, to) = sign_in(&app, "ana@acme.test", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/signin/second-factor"), "{to}");
}

#[tokio::test]
async fn reset_requests_are_throttled_per_address_typed() {
    let (app, _sink) = with_mail().await;
    let c = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(forgot(&c, "ana@acme.test").await.0, StatusCode::OK);
    }
    let (status, page) = forgot(&c, "ana@acme.test").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Try again in"), "{page}");
    // Another address is not held back by it.
    assert_eq!(forgot(&c, "dev@acme.test").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_failed_delivery_is_audited_and_the_answer_stays_the_same() {
    let (app, sink) = with_mail().await;
    sink.refuse(true);
    let c = Console::new(&app);
    let (status, page) = forgot(&c, "ana@acme.test").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Check your email"));
    eventually("the failed delivery is audited", || async {
        actions(&app).await.iter().any(|a| a == "mail.send_failed")
    })
    .await;
}

#[tokio::test]
async fn the_admin_api_invites_by_mail_and_the_link_sets_the_first_password() {
    let (app, sink) = with_mail().await;
    let admin = crate::admin_api::admin_in(&app, "acme-studio", "root@acme.test").await;
    let resp = app
        .http
        .post(app.url("/api/v1/invitations"))
        .bearer_auth(&admin.token)
        .json(&json!({"email": "new@acme.test", "name": "New Person", "role": "developer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["sent"], true);
    assert!(body.get("link").is_none(), "{body}");
    assert_eq!(body["user"]["can_sign_in"], false);
    let mail = sink.next().await;
    assert_eq!(mail.to, vec!["new@acme.test".to_owned()]);
    let link = mail.link(&format!("{}/password/set?token=", app.base));
    let c = Console::new(&app);
    let (status, page) = open(&c, &link).await;
    assert!(page.contains("Choose your password"), "{page}");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        set(&c, &link, NEW_PASSWORD, NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    // 72 hours is long, but single use is single use.
    assert_eq!(open(&c, &link).await.0, StatusCode::NOT_FOUND);
    let u = app.user_by_email("new@acme.test").await.unwrap();
    assert!(u.password_hash.is_some());
    let done = actions(&app).await;
    for a in ["user.invite", "user.invitation_used"] {
        assert!(done.iter().any(|d| d == a), "{a} not in {done:?}");
    }
}

#[tokio::test]
async fn without_smtp_the_admin_gets_the_invitation_link_once() {
    let (app, _) = setup().await;
    // The admin API answers with the link.
    let admin = crate::admin_api::admin_in(&app, "acme-studio", "root@acme.test").await;
    let body: Value = app
        .http
        .post(app.url("/api/v1/invitations"))
        .bearer_auth(&admin.token)
        .json(&json!({"email": "api@acme.test", "role": "developer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["sent"], false);
    let link = body["link"].as_str().expect("a link").to_owned();
    assert!(link.starts_with(&format!("{}/password/set?token=", app.base)));
    let expires = body["expires_at"].as_i64().unwrap();
    assert_eq!(expires, app.clock.now() + 72 * 3600);

    // The console shows it once, on the page the invite form leads to.
    let console = Console::sign_in(&app, "admin@acme.test").await;
    let resp = console
        .post(
            "/console/users",
            "/console/users",
            &[
                ("email", "eve@acme.test"),
                ("name", ""),
                ("role", "developer"),
                ("groups", ""),
                ("password", ""),
                ("invite", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page_path = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(page_path.ends_with("/invitation"), "{page_path}");
    let page = console.page(&page_path).await;
    let shown = crate::console::by_id(&page, "invitation-link");
    assert!(
        shown.starts_with(&format!("{}/password/set?token=", app.base)),
        "{shown}"
    );
    assert_eq!(console.get(&page_path).await.status(), StatusCode::GONE);
    // The link works for the invited person.
    let c = Console::new(&app);
    let shown = html_escape::decode_html_entities(&shown).into_owned();
    assert_eq!(
        set(&c, &shown, NEW_PASSWORD, NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    assert_eq!(
        sign_in(&app, "eve@acme.test", NEW_PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
}

/// `POST /api/v1/invitations/{id}/resend` as `token`.
async fn resend(app: &TestApp, token: &str, user_id: &str) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/invitations/{user_id}/resend")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_resent_invitation_replaces_the_old_link_until_the_person_accepts() {
    let (app, sink) = with_mail().await;
    let mut admin = crate::admin_api::admin_in(&app, "acme-studio", "root@acme.test").await;
    let made: Value = app
        .http
        .post(app.url("/api/v1/invitations"))
        .bearer_auth(&admin.token)
        .json(&json!({"email": "new@acme.test", "role": "developer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = made["user"]["id"].as_str().unwrap().to_owned();
    let prefix = format!("{}/password/set?token=", app.base);
    let first = sink.next().await.link(&prefix);
    // The first link ran out unused; the admin sends another.
    app.clock.advance(73 * 3600);
    // (A token for now: the first one ran out too.)
    admin.token = crate::admin_api::admin_token(&app, &admin.client_id, &admin.secret).await;
    let c = Console::new(&app);
    assert_eq!(open(&c, &first).await.0, StatusCode::NOT_FOUND);
    let (status, body) = resend(&app, &admin.token, &user_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sent"], true);
    assert!(
        body.get("link").is_none(),
        "with SMTP the link is only mailed: {body}"
    );
    assert_eq!(body["expires_at"], app.clock.now() + 72 * 3600);
    let mail = sink.next().await;
    assert_eq!(mail.to, vec!["new@acme.test".to_owned()]);
    let second = mail.link(&prefix);
    // Once more: only the newest link works (one live link per person).
    let (status, _) = resend(&app, &admin.token, &user_id).await;
    assert_eq!(status, StatusCode::OK);
    let third = sink.next().await.link(&prefix);
    assert_ne!(second, third);
    assert_eq!(open(&c, &second).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        set(&c, &third, NEW_PASSWORD, NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    // Accepted: nothing to resend (and no link is made).
    let (status, body) = resend(&app, &admin.token, &user_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("has already accepted"),
        "{body}"
    );
    // Neither for a deactivated person, nor one the caller cannot see.
    let other = &admin;
    let made: Value = app
        .http
        .post(app.url("/api/v1/invitations"))
        .bearer_auth(&other.token)
        .json(&json!({"email": "later@acme.test", "role": "developer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sink.next().await;
    let later = made["user"]["id"].as_str().unwrap().to_owned();
    let off = app
        .http
        .patch(app.url(&format!("/api/v1/users/{later}")))
        .bearer_auth(&other.token)
        .json(&json!({"status": "deactivated"}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::OK);
    let (status, body) = resend(&app, &admin.token, &later).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("deactivated"),
        "{body}"
    );
    let (status, _) = resend(&app, &admin.token, "no-such-user").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let done = actions(&app).await;
    assert_eq!(
        done.iter()
            .filter(|a| *a == "user.invitation_resent")
            .count(),
        2,
        "{done:?}"
    );
}

#[tokio::test]
async fn without_smtp_the_console_resends_an_invitation_and_shows_the_new_link_once() {
    let (app, _) = setup().await;
    let console = Console::sign_in(&app, "admin@acme.test").await;
    let resp = console
        .post(
            "/console/users",
            "/console/users",
            &[
                ("email", "eve@acme.test"),
                ("name", ""),
                ("role", "developer"),
                ("groups", ""),
                ("password", ""),
                ("invite", "1"),
            ],
        )
        .await;
    let invitation = resp.headers()["location"].to_str().unwrap().to_owned();
    let first = crate::console::by_id(&console.page(&invitation).await, "invitation-link");
    let first = html_escape::decode_html_entities(&first).into_owned();
    let user_id = app.user_id("eve@acme.test").await;
    let user_page = format!("/console/users/{user_id}");
    assert!(console.page(&user_page).await.contains("Resend invitation"));

    let resp = console.post(&invitation, &user_page, &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], invitation.as_str());
    let second = crate::console::by_id(&console.page(&invitation).await, "invitation-link");
    let second = html_escape::decode_html_entities(&second).into_owned();
    assert_ne!(first, second);
    assert_eq!(
        console.get(&invitation).await.status(),
        StatusCode::GONE,
        "shown once"
    );
    let c = Console::new(&app);
    assert_eq!(open(&c, &first).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        set(&c, &second, NEW_PASSWORD, NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    // Accepted: the page offers no resend, and a forged post is refused.
    assert!(!console.page(&user_page).await.contains("Resend invitation"));
    let resp = console.post(&invitation, &user_page, &[]).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.text().await.unwrap().contains("has already accepted"));
    // Without the CSRF token nothing is sent.
    let forged = console
        .http
        .post(console.url(&invitation))
        .send()
        .await
        .unwrap();
    assert_ne!(forged.status(), StatusCode::SEE_OTHER);
}

/// A page form over the body bound is refused with the "too large" page, read
/// no further than the bound, and sends nothing (the sign-in pages' forms all
/// go through the same extractor).
#[tokio::test]
async fn a_page_form_over_the_body_bound_is_refused_and_does_nothing() {
    let (app, sink) = with_mail().await;
    let c = Console::new(&app);
    let padding = "a".repeat(2 * 1024 * 1024);
    let email = format!("ana@acme.test&padding={padding}");
    let (status, page) = forgot(&c, &email).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.contains("Request too large"), "{page}");
    assert!(sink.none_within(Duration::from_millis(800)).await.is_none());
    // The same form of a normal size is answered as usual.
    let (status, _) = forgot(&c, "ana@acme.test").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sink.next().await.to, vec!["ana@acme.test".to_owned()]);
}
