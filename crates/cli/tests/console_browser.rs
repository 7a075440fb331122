//! A real headless Chromium in the console, as an organization admin: sign in,
//! Settings → Integrations → Registered apps → "Register app", read the
//! Application ID and Secret Key off the page, get a token with them over HTTP,
//! regenerate the secret and see the old token introspect as inactive, then read
//! both changes in the audit log; and a redirect URI the redirect-URI policy
//! rejects, explained beside its field; and the apps' usage on the home and an
//! app's page (across a restart), "Getting started", the register form's
//! fields per grant type, with every page shot at 1280 and 390 px and checked
//! with axe-core. Screenshots go to `target/tmp/screenshots/console-*.png` and
//! `usage-*-{1280,390}.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and axe-core from npm in
//! `~/.cache/gatehouse/axe` (`.ci/run` installs all three).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::browser::{
    browser, screenshots, shoot_and_check, start_chromedriver, user_with_password, wait_for,
};
use common::{Server, json};
use serde_json::Value;
use thirtyfour::prelude::*;

const PASSWORD: &str = "correct horse battery";

/// An org, its admin (with a password), a developer to act for, and an API:
/// returns the API's (client id, secret).
fn seed(d: &Path) -> (String, String) {
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    user_with_password(d, "acme-studio", "admin@acme.test", "admin", PASSWORD);
    json(
        d,
        &[
            "user",
            "create",
            "--org",
            "acme-studio",
            "--email",
            "dev@acme.test",
            "--role",
            "developer",
            "--json",
        ],
    );
    let api = json(
        d,
        &[
            "api",
            "create",
            "--org",
            "acme-studio",
            "--name",
            "Gateway",
            "--audience",
            "https://gateway.acme.test",
            "--scopes",
            "cfgateway products:read",
            "--json",
        ],
    );
    (
        api["client_id"].as_str().unwrap().to_owned(),
        api["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn sign_in(web: &WebDriver, server: &Server, shot: Option<&Path>) -> WebDriverResult<()> {
    web.goto(server.url("/console")).await?;
    let email = wait_for(web, By::Id("email")).await?;
    if let Some(p) = shot {
        web.screenshot(p).await?;
    }
    email.send_keys("admin@acme.test").await?;
    web.find(By::Id("password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    web.find(By::XPath("//button[normalize-space()='Sign in']"))
        .await?
        .click()
        .await?;
    wait_for(web, By::Id("register-app")).await?;
    Ok(())
}

async fn token(server: &Server, client_id: &str, secret: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(server.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "cfgateway"),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn introspect(server: &Server, api: &(String, String), token: &str) -> Value {
    reqwest::Client::new()
        .post(server.url("/connect/introspect"))
        .basic_auth(&api.0, Some(&api.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_registers_a_machine_app_gets_a_token_and_regenerates_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = seed(dir.path());
    let (_driver, port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(port, profile.path()).await;
    let shots = screenshots();
    let outcome = async {
        sign_in(&web, &server, Some(&shots.join("console-01-login.png"))).await?;
        // Signed in, the organization's home; its apps are one link away.
        web.find(By::LinkText("All registered apps"))
            .await?
            .click()
            .await?;
        wait_for(&web, By::XPath("//h1[normalize-space()='Registered apps']")).await?;
        let crumbs = web.find(By::ClassName("crumbs")).await?.text().await?;
        assert_eq!(crumbs, "Settings → Integrations → Registered apps");
        web.screenshot(&shots.join("console-02-apps.png")).await?;
        web.find(By::Id("register-app")).await?.click().await?;
        let name = wait_for(&web, By::Id("name")).await?;
        web.find(By::Id("grant-cc")).await?.click().await?;
        name.send_keys("Nightly sync").await?;
        web.find(By::Id("description"))
            .await?
            .send_keys("Copies orders every night")
            .await?;
        web.find(By::XPath(
            "//select[@id='on_behalf_of']/option[@value='dev@acme.test']",
        ))
        .await?
        .click()
        .await?;
        web.find(By::Id("scope-cfgateway")).await?.click().await?;
        web.find(By::XPath(
            "//select[@id='audience']/option[@value='https://gateway.acme.test']",
        ))
        .await?
        .click()
        .await?;
        web.screenshot(&shots.join("console-03-register-app.png"))
            .await?;
        web.find(By::XPath("//button[normalize-space()='REGISTER APP']"))
            .await?
            .click()
            .await?;
        let secret = wait_for(&web, By::Id("client-secret"))
            .await?
            .text()
            .await?;
        let client_id = web.find(By::Id("client-id")).await?.text().await?;
        let main = web.find(By::Tag("main")).await?.text().await?;
        assert!(
            main.contains("This secret will not be shown again"),
            "{main}"
        );
        assert!(
            web.find(By::Css("button[data-copy='client-secret']"))
                .await
                .is_ok()
        );
        web.screenshot(&shots.join("console-04-secret.png")).await?;
        // Post/Redirect/Get: reloading re-posts nothing and shows the secret no more.
        web.refresh().await?;
        let main = web.find(By::Tag("main")).await?.text().await?;
        assert!(main.contains("no longer shown"), "{main}");
        assert!(!main.contains(&secret), "{main}");
        web.goto(&format!("{}/console/apps/{client_id}", server.base))
            .await?;

        let first = token(&server, &client_id, &secret).await;
        let old = first["access_token"].as_str().unwrap().to_owned();
        assert_eq!(introspect(&server, &api, &old).await["active"], true);

        wait_for(&web, By::Id("regenerate")).await?;
        web.screenshot(&shots.join("console-05-app.png")).await?;
        web.find(By::Id("regenerate")).await?.click().await?;
        let confirm = wait_for(&web, By::Id("confirm")).await?;
        let warning = web.find(By::ClassName("warning")).await?.text().await?;
        assert!(
            warning.contains("Tokens issued so far end now"),
            "{warning}"
        );
        web.screenshot(&shots.join("console-06-regenerate.png"))
            .await?;
        confirm.click().await?;
        let new_secret = wait_for(&web, By::Id("client-secret"))
            .await?
            .text()
            .await?;
        assert_ne!(new_secret, secret);
        web.screenshot(&shots.join("console-07-new-secret.png"))
            .await?;

        // The old token ends at once (the server follows its change feed).
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let seen = introspect(&server, &api, &old).await;
            if seen["active"] == false {
                break;
            }
            assert!(Instant::now() < deadline, "old token still active: {seen}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        token(&server, &client_id, &new_secret).await;

        // Both changes are in the audit log, newest first, with who and where.
        web.find(By::LinkText("Audit log")).await?.click().await?;
        let table = wait_for(&web, By::Id("audit")).await?.text().await?;
        let rotated = table.find("app.rotate_secret").expect("rotation logged");
        let registered = table.find("app.register").expect("registration logged");
        assert!(rotated < registered, "newest first: {table}");
        assert!(
            table.contains("admin@acme.test (user)") && table.contains("127.0.0.1"),
            "{table}"
        );
        web.screenshot(&shots.join("console-08-audit.png")).await?;
        Ok::<_, WebDriverError>(())
    }
    .await;
    let _ = web.quit().await;
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_redirect_uri_is_explained_on_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    seed(dir.path());
    let (_driver, port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(port, profile.path()).await;
    let shots = screenshots();
    // The redirect-URI policy refuses `.internal` hosts (no DNS lookup needed).
    let rejected = "https://app.internal/cb";
    let outcome = async {
        sign_in(&web, &server, None).await?;
        web.find(By::Id("register-app")).await?.click().await?;
        let name = wait_for(&web, By::Id("name")).await?;
        web.find(By::Id("grant-ac")).await?.click().await?;
        name.send_keys("Studio sync").await?;
        web.find(By::Id("redirect_uris"))
            .await?
            .send_keys(rejected)
            .await?;
        web.find(By::Id("scope-cfgateway")).await?.click().await?;
        web.find(By::Id("scope-openid")).await?.click().await?;
        web.find(By::XPath("//button[normalize-space()='REGISTER APP']"))
            .await?
            .click()
            .await?;
        let error = wait_for(&web, By::Id("redirect_uris-error"))
            .await?
            .text()
            .await?;
        assert!(
            error.contains(rejected) && error.contains("`.internal` hosts are not allowed"),
            "{error}"
        );
        // The explanation sits right after the field, and the input is kept.
        let field = web.find(By::Id("redirect_uris")).await?;
        assert_eq!(field.prop("value").await?.as_deref(), Some(rejected));
        assert!(
            field
                .class_name()
                .await?
                .unwrap_or_default()
                .contains("invalid")
        );
        let after = web
            .find(By::XPath(
                "//textarea[@id='redirect_uris']/following-sibling::*[1]",
            ))
            .await?;
        assert_eq!(after.id().await?.as_deref(), Some("redirect_uris-error"));
        after.scroll_into_view().await?;
        assert_eq!(
            web.find(By::Id("name"))
                .await?
                .prop("value")
                .await?
                .as_deref(),
            Some("Studio sync")
        );
        assert!(web.find(By::Id("grant-ac")).await?.is_selected().await?);
        web.screenshot(&shots.join("console-09-rejected-redirect-uri.png"))
            .await?;
        Ok::<_, WebDriverError>(())
    }
    .await;
    let _ = web.quit().await;
    outcome.unwrap();
}

/// `app register` of a machine app acting for the developer: (client id, secret).
fn machine_app(d: &Path, name: &str) -> (String, String) {
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            name,
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A token request with a wrong secret: 401.
async fn wrong_secret(server: &Server, client_id: &str) {
    let resp = reqwest::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(client_id, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// The home's rows (app name, tokens, failed), top to bottom, once `want` holds
/// (reloading: the figures appear after a housekeeping flush).
async fn home_rows_when(
    web: &WebDriver,
    server: &Server,
    want: impl Fn(&[(String, String, String)]) -> bool,
) -> WebDriverResult<Vec<(String, String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        web.goto(server.url("/console")).await?;
        let mut rows = Vec::new();
        for tr in web.find_all(By::Css("#activity > tbody > tr")).await? {
            let cell = |c: &'static str| {
                let tr = tr.clone();
                async move { tr.find(By::Css(c)).await?.text().await }
            };
            rows.push((
                cell(".app-name").await?,
                cell("td.tokens").await?,
                cell("td.failed").await?,
            ));
        }
        if want(&rows) {
            return Ok(rows);
        }
        assert!(
            Instant::now() < deadline,
            "home never showed the counts: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The app page's chart: its accessible name and description, and today's row
/// of the figures table.
async fn chart_of(
    web: &WebDriver,
    server: &Server,
    client_id: &str,
) -> WebDriverResult<(String, Vec<String>)> {
    web.goto(server.url(&format!("/console/apps/{client_id}")))
        .await?;
    let svg = wait_for(web, By::Css("#usage svg[role='img']")).await?;
    let labelled = svg.attr("aria-labelledby").await?.unwrap_or_default();
    assert_eq!(labelled, "usage-title usage-desc");
    let desc = web.find(By::Id("usage-desc")).await?;
    let desc = desc.prop("textContent").await?.unwrap_or_default();
    let title = web.find(By::Id("usage-title")).await?;
    let title = title.prop("textContent").await?.unwrap_or_default();
    assert!(title.contains("per day, last 30 days"), "{title}");
    let last = web
        .find(By::Css("#usage-figures tbody tr:last-child"))
        .await?;
    let mut cells = Vec::new();
    for td in last.find_all(By::Tag("td")).await? {
        cells.push(td.prop("textContent").await?.unwrap_or_default());
    }
    Ok((desc, cells))
}

/// Usage on the console: tokens issued and failed authentications show on the
/// organization's home (most active app first) and on the app's page (an SVG
/// chart whose text alternative carries the figures) after a housekeeping
/// flush, and survive a restart of the server on the same SQLite file.
/// "Getting started" names the client id and never the secret. The register
/// form shows only the chosen grant type's fields, without a script. Every
/// page is shot at 1280 and 390 px (`target/tmp/screenshots/usage-*.png`) and
/// passes axe-core with no serious or critical violation.
#[tokio::test(flavor = "multi_thread")]
async fn usage_getting_started_and_the_pages_pass_axe_at_both_widths() {
    let dir = tempfile::tempdir().unwrap();
    let fast = ["--housekeeping-interval-ms", "200"];
    let server = Server::start(dir.path(), &fast);
    seed(dir.path());
    let (busy, busy_secret) = machine_app(dir.path(), "Nightly sync");
    let (quiet, quiet_secret) = machine_app(dir.path(), "Label printer");
    machine_app(dir.path(), "Unused app");
    for _ in 0..3 {
        token(&server, &busy, &busy_secret).await;
    }
    token(&server, &quiet, &quiet_secret).await;
    wrong_secret(&server, &busy).await;
    wrong_secret(&server, &busy).await;
    // Unknown client ids are not counted anywhere.
    wrong_secret(&server, "no-such-app").await;

    let (_driver, port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(port, profile.path()).await;
    let shots = screenshots();
    let outcome = async {
        web.goto(server.url("/console")).await?;
        wait_for(&web, By::Id("email")).await?;
        shoot_and_check(&web, &shots, "usage-01-login").await?;
        sign_in(&web, &server, None).await?;
        // The home: most active first, the unused app last.
        let rows = home_rows_when(&web, &server, |r| {
            r.first().is_some_and(|f| f.1 == "3" && f.2 == "2")
        })
        .await?;
        let row = |n: &str, t: &str, f: &str| (n.to_owned(), t.to_owned(), f.to_owned());
        assert_eq!(
            rows,
            vec![
                row("Nightly sync", "3", "2"),
                row("Label printer", "1", "0"),
                row("Unused app", "0", "0")
            ]
        );
        let home_svgs = web.find_all(By::Css("#activity svg[role='img']")).await?;
        assert_eq!(home_svgs.len(), 3);
        shoot_and_check(&web, &shots, "usage-02-home").await?;

        // The app's page: the chart and its text alternative.
        let (desc, today) = chart_of(&web, &server, &busy).await?;
        assert!(
            desc.contains("3 tokens issued and 2 failed authentications"),
            "{desc}"
        );
        assert_eq!(today[1..], ["3".to_owned(), "2".to_owned()], "{today:?}");
        // Getting started: this app's id and this server's token URL; the
        // secret never (only its placeholder).
        let curl = web.find(By::Id("gs-token")).await?.text().await?;
        assert!(curl.contains(&format!("client_id={busy}")), "{curl}");
        assert!(curl.contains(&server.url("/connect/token")), "{curl}");
        assert!(curl.contains("https://gateway.acme.test"), "{curl}");
        assert!(curl.contains("$CLIENT_SECRET"), "{curl}");
        let source = web.source().await?;
        assert!(!source.contains(&busy_secret), "the secret is on the page");
        shoot_and_check(&web, &shots, "usage-03-app").await?;

        // The other pages.
        for (path, name) in [
            ("/console/apps", "usage-04-apps"),
            ("/console/users", "usage-05-users"),
            ("/console/roles", "usage-06-roles"),
            ("/console/audit", "usage-07-audit"),
            (
                &*format!("/console/apps/{busy}/rotate"),
                "usage-08-regenerate",
            ),
            (&*format!("/console/apps/{busy}/delete"), "usage-09-delete"),
        ] {
            web.goto(server.url(path)).await?;
            wait_for(&web, By::Tag("h1")).await?;
            shoot_and_check(&web, &shots, name).await?;
        }

        // The register form: only the chosen grant type's fields (CSS only).
        web.goto(server.url("/console/apps/new")).await?;
        let shown = |id: &'static str| {
            let web = web.clone();
            async move { web.find(By::Id(id)).await?.is_displayed().await }
        };
        // Client Credentials is chosen to begin with (the guides' first flow).
        assert!(web.find(By::Id("grant-cc")).await?.is_selected().await?);
        assert!(shown("on_behalf_of").await?);
        assert!(!shown("redirect_uris").await? && !shown("new_user_email").await?);
        shoot_and_check(&web, &shots, "usage-10-register").await?;
        web.find(By::XPath(
            "//select[@id='on_behalf_of']/option[@value='__new__']",
        ))
        .await?
        .click()
        .await?;
        assert!(shown("new_user_email").await? && shown("new_user_role").await?);
        shoot_and_check(&web, &shots, "usage-11-register-new-user").await?;
        web.find(By::Id("grant-ac")).await?.click().await?;
        assert!(shown("redirect_uris").await?);
        assert!(!shown("on_behalf_of").await? && !shown("new_user_email").await?);
        shoot_and_check(&web, &shots, "usage-12-register-code").await?;
        // Scope descriptions are plain words, no Markdown.
        let label = web
            .find(By::Css("label[for='scope-cfgateway']"))
            .await?
            .text()
            .await?;
        assert!(label.contains("use Gateway on your behalf"), "{label}");
        let scopes = web.find(By::Css("fieldset.scopes")).await?.text().await?;
        assert!(!scopes.contains('`') && !scopes.contains("**"), "{scopes}");
        // Registering still works with the hidden fields, and the one-time
        // secret page passes too.
        web.find(By::Id("grant-cc")).await?.click().await?;
        web.find(By::XPath(
            "//select[@id='on_behalf_of']/option[@value='dev@acme.test']",
        ))
        .await?
        .click()
        .await?;
        web.find(By::Id("name"))
            .await?
            .send_keys("Night owl")
            .await?;
        web.find(By::Id("scope-cfgateway")).await?.click().await?;
        web.find(By::Id("register")).await?.click().await?;
        wait_for(&web, By::Id("client-secret")).await?;
        shoot_and_check(&web, &shots, "usage-13-secret").await?;
        Ok::<_, WebDriverError>(())
    }
    .await;
    if let Err(e) = outcome {
        let _ = web.quit().await;
        panic!("{e}");
    }

    // A real restart on the same SQLite file: the counts are still there, and
    // new ones add to the day's.
    assert!(server.interrupt().success());
    let server = Server::start(dir.path(), &fast);
    token(&server, &busy, &busy_secret).await;
    let outcome = async {
        // The session lives in the database: it may well outlast the restart.
        web.goto(server.url("/console")).await?;
        if web.find(By::Id("email")).await.is_ok() {
            sign_in(&web, &server, None).await?;
        }
        home_rows_when(&web, &server, |r| {
            r.first()
                .is_some_and(|f| f.0 == "Nightly sync" && f.1 == "4" && f.2 == "2")
        })
        .await?;
        let (desc, today) = chart_of(&web, &server, &busy).await?;
        assert!(
            desc.contains("4 tokens issued and 2 failed authentications"),
            "{desc}"
        );
        assert_eq!(today[1..], ["4".to_owned(), "2".to_owned()], "{today:?}");
        Ok::<_, WebDriverError>(())
    }
    .await;
    let _ = web.quit().await;
    outcome.unwrap();
}
