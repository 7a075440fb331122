//! Usage on the console: counted in memory on the token path, written by the
//! housekeeping, shown on the organization's home (most active first) and on
//! the app's page (an SVG chart with its figures as text), and "Getting
//! started" commands that name the app and never its secret.

use std::time::Duration;

use gatehouse_core::clock::{Clock, SystemClock};
use reqwest::StatusCode;

use super::apps::register;
use super::{Console, setup_with};
use crate::helpers::TestApp;

/// Polls the store until the housekeeping has written `want` (tokens, failed)
/// for `client_id` today.
async fn flushed(app: &TestApp, client_id: &str, want: (i64, i64)) {
    let org = app.org("acme-studio").await;
    let today = SystemClock.now().div_euclid(86_400);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = app.s().app_usage(&org.id, today - 29).await.unwrap();
        let got = rows
            .iter()
            .filter(|r| r.client_id == client_id)
            .fold((0, 0), |(t, f), r| {
                (t + r.tokens_issued, f + r.failed_auths)
            });
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{client_id}: {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wrong_secret(app: &TestApp, client_id: &str) {
    let resp = app
        .token_form(
            Some((client_id, "not-the-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

async fn token(app: &TestApp, client_id: &str, secret: &str) {
    let resp = app
        .token_form(
            Some((client_id, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn usage_is_counted_written_by_the_housekeeping_and_charted_with_its_figures() {
    let (app, _) = setup_with(|c| c.housekeeping_every = Duration::from_millis(50)).await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (quiet, quiet_secret, _, _) = register(&c, "Label printer").await;
    let (busy, busy_secret, _, _) = register(&c, "Nightly sync").await;
    let (_unused, _, _, _) = register(&c, "Unused app").await;
    for _ in 0..2 {
        token(&app, &busy, &busy_secret).await;
    }
    wrong_secret(&app, &busy).await;
    token(&app, &quiet, &quiet_secret).await;
    // An unknown client id is counted nowhere (it cannot grow the counters).
    wrong_secret(&app, "no-such-app").await;
    flushed(&app, &busy, (2, 1)).await;
    flushed(&app, &quiet, (1, 0)).await;
    flushed(&app, "no-such-app", (0, 0)).await;

    // The home: every app, the most active first.
    let home = c.page("/console").await;
    let at = |name: &str| {
        home.find(&format!(">{name}</a>"))
            .unwrap_or_else(|| panic!("{name} not on {home}"))
    };
    assert!(at("Nightly sync") < at("Label printer"));
    assert!(at("Label printer") < at("Unused app"));
    assert_eq!(home.matches(r#"<svg role="img""#).count(), 3);

    // The app's page: the chart, named and described, and the day's figures.
    let page = c.page(&format!("/console/apps/{busy}")).await;
    assert!(page.contains(r#"<svg role="img" aria-labelledby="usage-title usage-desc""#));
    assert!(
        page.contains("2 tokens issued and 1 failed authentications"),
        "{page}"
    );
    let figures = &page[page.find(r#"<table id="usage-figures">"#).unwrap()..];
    let rows = &figures[..figures.find("</tbody>").unwrap()];
    assert_eq!(rows.matches("<tr><td>").count(), 30, "{rows}");
    let today = rows.rsplit("<tr>").next().unwrap().trim_end();
    assert!(today.ends_with("</td><td>2</td><td>1</td></tr>"), "{today}");
    // Getting started: this app and this server; the secret never.
    assert!(page.contains(&format!("client_id={busy}")));
    assert!(page.contains(&format!("{}/connect/token", app.base)));
    assert!(page.contains("https://gateway.acme.test"));
    assert!(page.contains("$CLIENT_SECRET"));
    assert!(!page.contains(&busy_secret));
}

#[tokio::test]
async fn getting_started_for_a_code_app_gives_its_authorization_url_with_pkce() {
    let (app, _) = setup_with(|_| {}).await;
    let web = app.web_app("cfgateway openid offline_access").await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let page = c.page(&format!("/console/apps/{}", web.client_id)).await;
    let callback = url::form_urlencoded::byte_serialize(crate::helpers::CALLBACK.as_bytes())
        .collect::<String>();
    let authorize = format!(
        "{}/connect/authorize?client_id={}&#38;response_type=code&#38;redirect_uri={callback}&#38;scope=",
        app.base, web.client_id
    );
    assert!(page.contains(&authorize), "{authorize} not in {page}");
    assert!(page.contains("code_challenge_method=S256"));
    assert!(page.contains("grant_type=authorization_code"));
    assert!(page.contains("grant_type=refresh_token"));
    assert!(!page.contains(&web.secret));
}

#[tokio::test]
async fn failed_authentications_are_counted_only_for_apps_that_exist() {
    // The default housekeeping (a minute) leaves the counters in memory here.
    let (app, _) = setup_with(|_| {}).await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (known, known_secret, _, _) = register(&c, "Nightly sync").await;
    for i in 0..5 {
        wrong_secret(&app, &format!("guessed-{i}")).await;
    }
    wrong_secret(&app, &known).await;
    token(&app, &known, &known_secret).await;
    let taken = app.state.usage.take();
    let ids: Vec<&str> = taken.counts.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(ids, [known.as_str()], "{:?}", taken.counts);
    assert_eq!(
        (taken.counts[0].tokens_issued, taken.counts[0].failed_auths),
        (1, 1)
    );
}
