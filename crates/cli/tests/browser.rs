//! A real headless Chromium signs in and allows an app, as the seed walks a user
//! through it: the authorize URL, "Sign in", "Yes, Allow", then the code arrives at
//! the app's redirect URI and is exchanged with the seed's token request.
//! Screenshots of each page are saved under `target/tmp/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../server/tests/api/smtp_sink.rs"]
mod smtp_sink;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::browser::{browser, screenshots, start_chromedriver};
use common::{Server, base32, json, totp_at, unix_now};
use serde_json::Value;
use thirtyfour::prelude::*;

/// A sign-in or second-step page's refusal. `[role=alert]` alone also matches
/// the passkey script's hidden error paragraph, on the page before the form is
/// sent, and so raced the navigation (a stale element, CI on 9c63c5b).
const REFUSAL: &str = "p.error[role=alert]:not([data-passkey-error])";

/// An `h1` reading `text`: waiting for any `h1` after pressing a button finds
/// the old page's at once, whose text then races the navigation.
fn heading(text: &str) -> By {
    By::XPath(format!("//h1[normalize-space()='{text}']"))
}

/// A stand-in for the app's callback: answers every request with a small page.
fn callback_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<html><body><h1>Callback received</h1></body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_signs_in_allows_the_app_and_the_code_is_exchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let d = dir.path();
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    let user = {
        let mut child = Command::new(common::BIN)
            .current_dir(d)
            .args([
                "user",
                "create",
                "--org",
                "acme-studio",
                "--email",
                "dev@acme.test",
                "--role",
                "developer",
                "--password-stdin",
                "--json",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "correct horse battery").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    json(
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
            "cfgateway",
            "--json",
        ],
    );
    let cb_port = callback_server();
    let redirect_uri = format!("http://127.0.0.1:{cb_port}/callback");
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Studio sync",
            "--description",
            "Syncs your studio nightly",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &redirect_uri,
            // The callback is a local server: development mode allows it.
            "--dev",
            // This flow runs without PKCE (new code apps require it by default).
            "--require-pkce",
            "false",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let client_id = app["client_id"].as_str().unwrap();
    let secret = app["client_secret"].as_str().unwrap();

    let (_driver, driver_port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(driver_port, profile.path()).await;
    let shots = screenshots();
    let authorize = format!(
        "{}/connect/authorize?client_id={client_id}&redirect_uri={}&scope=cfgateway%20offline_access%20openid&response_type=code&state=s-123",
        server.base,
        redirect_uri.replace(':', "%3A").replace('/', "%2F")
    );
    let outcome = async {
        web.goto(&authorize).await?;
        web.screenshot(&shots.join("01-login.png")).await?;
        web.query(By::Id("email"))
            .wait(Duration::from_secs(20), Duration::from_millis(50))
            .first()
            .await?
            .send_keys("dev@acme.test")
            .await?;
        web.find(By::Id("password"))
            .await?
            .send_keys("correct horse battery")
            .await?;
        web.find(By::XPath("//button[normalize-space()='Sign in']"))
            .await?
            .click()
            .await?;
        // The click returns before the next page has loaded: wait for it.
        let allow = web
            .query(By::XPath("//button[normalize-space()='Yes, Allow']"))
            .wait(Duration::from_secs(20), Duration::from_millis(50))
            .first()
            .await?;
        let text = web.find(By::Tag("main")).await?.text().await?;
        web.screenshot(&shots.join("02-consent.png")).await?;
        assert!(
            text.contains("Studio sync") && text.contains("Syncs your studio nightly"),
            "{text}"
        );
        assert!(
            web.find(By::XPath("//button[normalize-space()='No']"))
                .await
                .is_ok()
        );
        allow.click().await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let landed = loop {
            let url = web.current_url().await?;
            if url.as_str().starts_with(&redirect_uri) {
                break url;
            }
            assert!(
                Instant::now() < deadline,
                "never reached the callback; at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        web.screenshot(&shots.join("03-callback.png")).await?;
        Ok::<_, WebDriverError>(landed)
    }
    .await;
    let _ = web.quit().await;
    let landed = outcome.unwrap();
    let params: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "s-123");
    assert_eq!(params["scope"], "cfgateway offline_access openid");
    assert_eq!(params["iss"], server.base);

    // The seed's token request, with the code read from the address bar.
    let tokens: Value = reqwest::Client::new()
        .post(server.url("/connect/token"))
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "cfgateway offline_access openid"),
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let userinfo: Value = reqwest::Client::new()
        .get(server.url("/connect/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], user["id"]);
}

/// Types `text` into the field `id` and presses the button labelled `button`.
async fn fill_and_press(
    web: &WebDriver,
    id: &str,
    text: &str,
    button: &str,
) -> WebDriverResult<()> {
    common::browser::wait_for(web, By::Id(id))
        .await?
        .send_keys(text)
        .await?;
    web.find(By::XPath(format!("//button[normalize-space()='{button}']")))
        .await?
        .click()
        .await
}

/// Waits until the address bar shows the app's callback; its query parameters.
async fn landed_at(
    web: &WebDriver,
    prefix: &str,
) -> WebDriverResult<std::collections::HashMap<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = web.current_url().await?;
        if url.as_str().starts_with(prefix) {
            return Ok(url.query_pairs().into_owned().collect());
        }
        assert!(
            Instant::now() < deadline,
            "never reached the callback; at {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_sets_up_an_authenticator_app_and_signs_in_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let d = dir.path();
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    common::browser::user_with_password(
        d,
        "acme-studio",
        "dev@acme.test",
        "developer",
        "correct horse battery",
    );
    let cb_port = callback_server();
    let redirect_uri = format!("http://127.0.0.1:{cb_port}/callback");
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Studio sync",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &redirect_uri,
            "--dev",
            "--require-pkce",
            "false",
            "--scopes",
            "openid",
            "--json",
        ],
    );
    let client_id = app["client_id"].as_str().unwrap().to_owned();
    let secret = app["client_secret"].as_str().unwrap().to_owned();
    let authorize = format!(
        "{}/connect/authorize?client_id={client_id}&redirect_uri={}&scope=openid&response_type=code&state=s-1",
        server.base,
        redirect_uri.replace(':', "%3A").replace('/', "%2F")
    );
    let (_driver, driver_port) = start_chromedriver();
    let shots = screenshots();

    // 1. Sign in with the password, then set up the authenticator app.
    let profile = tempfile::tempdir().unwrap();
    let web = browser(driver_port, profile.path()).await;
    let enrolled = async {
        web.goto(&authorize).await?;
        common::browser::wait_for(&web, By::Id("email"))
            .await?
            .send_keys("dev@acme.test")
            .await?;
        fill_and_press(&web, "password", "correct horse battery", "Sign in").await?;
        common::browser::wait_for(&web, By::XPath("//button[normalize-space()='Yes, Allow']"))
            .await?
            .click()
            .await?;
        landed_at(&web, &redirect_uri).await?;
        web.goto(&format!("{}/account/security", server.base))
            .await?;
        common::browser::wait_for(
            &web,
            By::XPath("//button[normalize-space()='Set up an authenticator app']"),
        )
        .await?
        .click()
        .await?;
        let key = common::browser::wait_for(&web, By::Id("totp-secret"))
            .await?
            .text()
            .await?;
        let qr = web.find(By::Id("totp-qr")).await?;
        assert!(
            qr.attr("src")
                .await?
                .unwrap_or_default()
                .starts_with("data:image/svg+xml;base64,")
        );
        // The QR code is drawn: the image loaded with its size.
        let loaded = web
            .execute(
                "return document.getElementById('totp-qr').naturalWidth > 0",
                vec![],
            )
            .await?;
        assert_eq!(loaded.json(), &Value::Bool(true));
        web.screenshot(&shots.join("mfa-01-setup.png")).await?;
        let key = base32(&key);
        fill_and_press(&web, "code", &totp_at(&key, unix_now()), "Confirm").await?;
        let codes = common::browser::wait_for(&web, By::Id("recovery-codes"))
            .await?
            .text()
            .await?;
        web.screenshot(&shots.join("mfa-02-recovery-codes.png"))
            .await?;
        Ok::<_, WebDriverError>((key, codes))
    }
    .await;
    let _ = web.quit().await;
    let (key, codes) = enrolled.unwrap();
    assert_eq!(
        codes.lines().filter(|l| !l.trim().is_empty()).count(),
        10,
        "{codes}"
    );

    // 2. A new browser: the password, then the code the app shows.
    let profile = tempfile::tempdir().unwrap();
    let web = browser(driver_port, profile.path()).await;
    let signed_in = async {
        web.goto(&authorize).await?;
        common::browser::wait_for(&web, By::Id("email"))
            .await?
            .send_keys("dev@acme.test")
            .await?;
        fill_and_press(&web, "password", "correct horse battery", "Sign in").await?;
        // A wrong code first: refused, the page says so.
        fill_and_press(&web, "code", "000000", "Verify").await?;
        let alert = common::browser::wait_for(&web, By::Css(REFUSAL))
            .await?
            .text()
            .await?;
        assert!(alert.contains("not right"), "{alert}");
        web.screenshot(&shots.join("mfa-03-second-step.png"))
            .await?;
        // The step after the one enrolment used (within the ±1 drift window).
        fill_and_press(&web, "code", &totp_at(&key, unix_now() + 30), "Verify").await?;
        // The app was allowed at the first sign-in: straight back to it.
        landed_at(&web, &redirect_uri).await
    }
    .await;
    let _ = web.quit().await;
    let params = signed_in.unwrap();
    assert_eq!(params["state"], "s-1");
    let tokens: Value = reqwest::Client::new()
        .post(server.url("/connect/token"))
        .form(&[
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine;
    let id = tokens["id_token"].as_str().expect("id_token");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");
}

/// Chromium's virtual authenticator (WebDriver §"Virtual Authenticators",
/// `POST /session/{id}/webauthn/authenticator`), sent raw to chromedriver: a
/// platform authenticator that keeps discoverable credentials and verifies the
/// user (as a fingerprint or screen lock would) without asking.
async fn add_virtual_authenticator(driver_port: u16, web: &WebDriver) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{driver_port}/session/{}/webauthn/authenticator",
            web.session_id()
        ))
        .json(&serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no authenticator: {r}"))
        .to_owned()
}

/// The credentials the virtual authenticator holds.
async fn authenticator_credentials(driver_port: u16, web: &WebDriver, id: &str) -> Vec<Value> {
    let r: Value = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{driver_port}/session/{}/webauthn/authenticator/{id}/credentials",
            web.session_id()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["value"].as_array().cloned().unwrap_or_default()
}

/// Signs out through the end-session page.
async fn sign_out(web: &WebDriver, site: &str) -> WebDriverResult<()> {
    web.goto(&format!("{site}/connect/endsession")).await?;
    common::browser::wait_for(web, By::XPath("//button[normalize-space()='Sign out']"))
        .await?
        .click()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while web
        .find(By::XPath("//button[normalize-space()='Sign out']"))
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "sign-out did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_registers_a_passkey_signs_in_with_it_alone_and_a_removed_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // WebAuthn needs a domain name (not an IP address) as the relying party:
    // the issuer is http://localhost:<port>, served on 127.0.0.1:<port>.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = format!("http://localhost:{port}");
    let _server = Server::start_on(d, &format!("127.0.0.1:{port}"), &["--issuer", &site]);
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    common::browser::user_with_password(
        d,
        "acme-studio",
        "dev@acme.test",
        "admin",
        "correct horse battery",
    );
    let cb_port = callback_server();
    let redirect_uri = format!("http://127.0.0.1:{cb_port}/callback");
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Studio sync",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &redirect_uri,
            "--dev",
            "--require-pkce",
            "false",
            "--scopes",
            "openid",
            "--json",
        ],
    );
    let client_id = app["client_id"].as_str().unwrap().to_owned();
    let secret = app["client_secret"].as_str().unwrap().to_owned();
    let authorize = format!(
        "{site}/connect/authorize?client_id={client_id}&redirect_uri={}&scope=openid&response_type=code&state=pk-1",
        redirect_uri.replace(':', "%3A").replace('/', "%2F")
    );
    let (_driver, driver_port) = start_chromedriver();
    let shots = screenshots();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(driver_port, profile.path()).await;
    let authenticator = add_virtual_authenticator(driver_port, &web).await;

    let run = async {
        // 1. The password, then a passkey on the account page.
        web.goto(&authorize).await?;
        common::browser::wait_for(&web, By::Id("email"))
            .await?
            .send_keys("dev@acme.test")
            .await?;
        fill_and_press(&web, "password", "correct horse battery", "Sign in").await?;
        common::browser::wait_for(&web, By::XPath("//button[normalize-space()='Yes, Allow']"))
            .await?
            .click()
            .await?;
        landed_at(&web, &redirect_uri).await?;
        web.goto(&format!("{site}/account/security")).await?;
        fill_and_press(&web, "passkey-name", "Chromium key", "Add a passkey").await?;
        let notice = common::browser::wait_for(&web, By::Id("passkey-notice"))
            .await?
            .text()
            .await?;
        assert!(notice.contains("Passkey added"), "{notice}");
        web.screenshot(&shots.join("passkey-01-added.png")).await?;
        let creds = authenticator_credentials(driver_port, &web, &authenticator).await;
        assert_eq!(creds.len(), 1, "{creds:?}");
        assert_eq!(creds[0]["isResidentCredential"], true, "{creds:?}");

        // 2. Signed out, then the passkey alone, offered by the e-mail field's
        // autofill (conditional UI): Chromium's virtual authenticator chooses
        // its only passkey at once, as a person would from the list; nothing
        // is typed or pressed.
        sign_out(&web, &site).await?;
        web.goto(&authorize).await?;
        let params = landed_at(&web, &redirect_uri).await?;
        // The same at the console's sign-in: its home opens.
        sign_out(&web, &site).await?;
        web.goto(&format!("{site}/console")).await?;
        common::browser::wait_for(&web, By::XPath("//h1[normalize-space()='Overview']")).await?;
        web.screenshot(&shots.join("passkey-02-console.png"))
            .await?;

        // 3. Removed on the account page (still signed in with it), then refused.
        web.goto(&format!("{site}/account/security")).await?;
        common::browser::wait_for(
            &web,
            By::XPath("//button[normalize-space()='Remove Chromium key']"),
        )
        .await?
        .click()
        .await?;
        let status = common::browser::wait_for(&web, By::Id("passkey-status"))
            .await?
            .text()
            .await?;
        assert!(status.contains("No passkeys yet"), "{status}");
        sign_out(&web, &site).await?;
        web.goto(&authorize).await?;
        // The autofill's passkey again, now unknown here.
        // The server's answer (not the script's own message line).
        let alert = common::browser::wait_for(
            &web,
            By::Css("p.error[role=alert]:not([data-passkey-error])"),
        )
        .await?
        .text()
        .await?;
        web.screenshot(&shots.join("passkey-03-removed-refused.png"))
            .await?;
        assert!(alert.contains("not accepted"), "{alert}");
        assert!(web.current_url().await?.as_str().starts_with(&site));
        Ok::<_, WebDriverError>(params)
    }
    .await;
    let _ = web.quit().await;
    let params = run.unwrap();
    assert_eq!(params["state"], "pk-1");
    let tokens: Value = reqwest::Client::new()
        .post(format!("{site}/connect/token"))
        .form(&[
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine;
    let id = tokens["id_token"].as_str().expect("id_token");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "mfa"]));
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");
    assert_eq!(claims["iss"], site);
}

/// The sign-in page's "Forgot your password?", the e-mail (read from a real SMTP
/// server), the link's page; then the new password signs in and the old does not.
#[tokio::test(flavor = "multi_thread")]
async fn a_person_resets_a_forgotten_password_from_the_sign_in_page() {
    let sink = smtp_sink::SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = sink.url();
    let server = Server::start(
        d,
        &["--smtp-url", &url, "--smtp-from", "Acme ID <id@acme.test>"],
    );
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    common::browser::user_with_password(
        d,
        "acme-studio",
        "admin@acme.test",
        "admin",
        "correct horse battery",
    );
    let (_driver, driver_port) = start_chromedriver();
    let shots = screenshots();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(driver_port, profile.path()).await;
    let wait = common::browser::wait_for;
    let outcome = async {
        web.goto(&server.url("/console")).await?;
        wait(&web, By::LinkText("Forgot your password?"))
            .await?
            .click()
            .await?;
        fill_and_press(&web, "email", "admin@acme.test", "Send the link").await?;
        // The next page's heading, not the one of the page the form was on.
        let said = wait(&web, heading("Check your email"))
            .await?
            .text()
            .await?;
        assert_eq!(said, "Check your email");
        web.screenshot(&shots.join("reset-01-asked.png")).await?;
        let mail = sink.next().await;
        assert_eq!(mail.to, vec!["admin@acme.test".to_owned()]);
        let link = mail.link(&server.url("/password/set?token="));
        web.goto(&link).await?;
        wait(&web, By::Id("password"))
            .await?
            .send_keys("a much better passphrase")
            .await?;
        fill_and_press(
            &web,
            "confirm",
            "a much better passphrase",
            "Set the password",
        )
        .await?;
        // The next page's heading, not the one of the page the form was on.
        let said = wait(&web, heading("Password set")).await?.text().await?;
        assert_eq!(said, "Password set");
        web.screenshot(&shots.join("reset-02-done.png")).await?;
        // Not signed in by it: the way on is the sign-in page.
        web.find(By::LinkText("Sign in")).await?.click().await?;
        // The old password no longer works…
        wait(&web, By::Id("email"))
            .await?
            .send_keys("admin@acme.test")
            .await?;
        fill_and_press(&web, "password", "correct horse battery", "Sign in").await?;
        let alert = wait(&web, By::Css(REFUSAL)).await?.text().await?;
        assert!(alert.contains("Wrong email or password"), "{alert}");
        // …the new one does.
        let email = web.find(By::Id("email")).await?;
        email.clear().await?;
        email.send_keys("admin@acme.test").await?;
        fill_and_press(&web, "password", "a much better passphrase", "Sign in").await?;
        wait(&web, By::Id("register-app")).await?;
        // The used link is dead.
        web.goto(&link).await?;
        // The next page's heading, not the one of the page the form was on.
        let said = wait(&web, heading("This link does not work any more"))
            .await?
            .text()
            .await?;
        assert_eq!(said, "This link does not work any more");
        Ok::<_, WebDriverError>(link)
    }
    .await;
    let _ = web.quit().await;
    let link = outcome.unwrap();
    // The link's token never reached the server's (debug) log.
    let token = link.split("token=").nth(1).unwrap();
    let log = server.log();
    assert!(log.contains("password set with a link"), "{log}");
    assert!(!log.contains(token), "{log}");
}
