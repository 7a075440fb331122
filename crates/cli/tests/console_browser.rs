//! A real headless Chromium in the console, as an organization admin: sign in,
//! Settings → Integrations → Registered apps → "Register app", read the
//! Application ID and Secret Key off the page, get a token with them over HTTP,
//! regenerate the secret and see the old token introspect as inactive, then read
//! both changes in the audit log; and a redirect URI the redirect-URI policy
//! rejects, explained beside its field. Screenshots of each page go to
//! `target/tmp/screenshots/console-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::browser::{browser, screenshots, start_chromedriver, user_with_password, wait_for};
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
