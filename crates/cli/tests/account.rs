//! The person's own account page (`/account`) against the real processes:
//! `gatehouse serve`, `gatehouse gateway` in front of an echoing upstream, and
//! a person in a cookie-keeping HTTP client or in headless Chromium. Revoking
//! an app on the page ends its refresh token at once and its JWT at the
//! gateway within a second; "sign out everywhere" ends another browser's
//! session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::browser::{browser, screenshots, start_chromedriver, user_with_password, wait_for};
use common::{BIN, Server, json, unescape_html};
use serde_json::Value;
use thirtyfour::prelude::*;

const AUD: &str = "https://gateway.acme.test";
const PASSWORD: &str = "correct horse battery";
const SCOPE: &str = "cfgateway offline_access openid";

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// An app's callback: answers every request with a small page.
fn callback_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
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
    format!("http://127.0.0.1:{port}/callback")
}

/// An upstream that answers 200 to everything.
fn upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
            });
        }
    });
    format!("http://{addr}")
}

/// The organization, a person with a password, the API (JWTs) and a code app.
struct Fixture {
    api: Value,
    app: Value,
    redirect_uri: String,
}

fn register(dir: &Path) -> Fixture {
    json(dir, &["org", "create", "--name", "Acme Studio", "--json"]);
    user_with_password(dir, "acme-studio", "dev@acme.test", "developer", PASSWORD);
    let api = json(
        dir,
        &[
            "api",
            "create",
            "--org",
            "acme-studio",
            "--name",
            "Gateway",
            "--audience",
            AUD,
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let redirect_uri = callback_server();
    let app = json(
        dir,
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
            "cfgateway",
            "--json",
        ],
    );
    Fixture {
        api,
        app,
        redirect_uri,
    }
}

fn authorize_url(server: &Server, f: &Fixture) -> String {
    reqwest::Url::parse_with_params(
        &server.url("/connect/authorize"),
        &[
            ("client_id", s(&f.app["client_id"])),
            ("redirect_uri", &f.redirect_uri),
            ("scope", SCOPE),
            ("response_type", "code"),
            ("state", "st-1"),
        ],
    )
    .unwrap()
    .to_string()
}

/// The value of `<input name="{name}" value="…">` in `html`.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[at..at + html[at..].find('>')?];
    let v = tag.find("value=\"")? + "value=\"".len();
    Some(unescape_html(&tag[v..v + tag[v..].find('"')?]))
}

/// A browser without a window: a cookie jar and no automatic redirects.
fn http_browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in and allows the app in `b`; the tokens for the code.
fn sign_in_and_allow(b: &reqwest::blocking::Client, server: &Server, f: &Fixture) -> Value {
    let login = b
        .get(authorize_url(server, f))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let signed_in = b
        .post(server.url("/login"))
        .form(&[
            ("csrf_token", hidden(&login, "csrf_token").unwrap()),
            ("request", hidden(&login, "request").unwrap()),
            ("email", "dev@acme.test".into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .unwrap();
    // Straight back to the app when the person allowed it before.
    let back = if signed_in.status() == 303 {
        signed_in
    } else {
        let consent = signed_in.text().unwrap();
        b.post(server.url("/consent"))
            .form(&[
                ("csrf_token", hidden(&consent, "csrf_token").unwrap()),
                ("request", hidden(&consent, "request").unwrap()),
                ("decision", "allow".into()),
            ])
            .send()
            .unwrap()
    };
    assert_eq!(back.status(), 303);
    let to = reqwest::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    exchange(server, f, &code)
}

fn exchange(server: &Server, f: &Fixture, code: &str) -> Value {
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(s(&f.app["client_id"]), Some(s(&f.app["client_secret"])))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", f.redirect_uri.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// The refresh grant's answer: its status and `error`.
fn refresh(server: &Server, f: &Fixture, token: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(s(&f.app["client_id"]), Some(s(&f.app["client_secret"])))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    fn start(dir: &Path, server: &Server, api: &Value, upstream: &str) -> Gateway {
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args([
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--issuer",
                &server.base,
            ])
            .args(["--api-client-id", s(&api["client_id"])])
            .args(["--audience", AUD, "--upstream", upstream])
            .args(["--route", "GET /v1/*=cfgateway"])
            .env(
                "GATEHOUSE_GATEWAY_API_CLIENT_SECRET",
                s(&api["client_secret"]),
            )
            .env("GATEHOUSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("gateway exited before listening: {seen:?}"))
                .unwrap();
            seen.push(line.clone());
            if line.contains("gateway listening on") {
                break line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .unwrap()
                    .to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Gateway { child, base }
    }

    fn status(&self, token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .get(format!("{}/v1/products", self.base))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn revoking_an_app_on_the_account_page_ends_its_tokens_and_the_gateway_refuses_the_jwt_within_a_second()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let gw = Gateway::start(dir.path(), &server, &f.api, &upstream());
    let b = http_browser();
    let tokens = sign_in_and_allow(&b, &server, &f);
    let access = s(&tokens["access_token"]);
    let refresh_token = s(&tokens["refresh_token"]);
    assert_eq!(gw.status(access), 200);

    let page = b.get(server.url("/account")).send().unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(page.contains("Studio sync"), "{page}");
    let revoked = b
        .post(server.url("/account/apps/revoke"))
        .form(&[
            ("csrf_token", hidden(&page, "csrf_token").unwrap()),
            ("client_id", s(&f.app["client_id"]).to_owned()),
        ])
        .send()
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(revoked.status(), 303);
    // The refresh token is refused at once …
    let (status, body) = refresh(&server, &f, refresh_token);
    assert_eq!(
        (status, s(&body["error"])),
        (400, "invalid_grant"),
        "{body}"
    );
    // … and the gateway refuses the access token within a second.
    while gw.status(access) != 401 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the gateway still accepts the revoked app's token"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t0.elapsed();
    println!("revoked app's JWT refused at the gateway after {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_a_person_revokes_an_app_ends_another_session_and_signs_out_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let (_driver, port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(port, profile.path()).await;
    let shots = screenshots();
    let authorize = authorize_url(&server, &f);
    let outcome = async {
        web.goto(&authorize).await?;
        wait_for(&web, By::Id("email"))
            .await?
            .send_keys("dev@acme.test")
            .await?;
        web.find(By::Id("password"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        web.find(By::XPath("//button[normalize-space()='Sign in']"))
            .await?
            .click()
            .await?;
        wait_for(&web, By::XPath("//button[normalize-space()='Yes, Allow']"))
            .await?
            .click()
            .await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !web
            .current_url()
            .await?
            .as_str()
            .starts_with(&f.redirect_uri)
        {
            assert!(Instant::now() < deadline, "never reached the callback");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<_, WebDriverError>(())
    }
    .await;
    if let Err(e) = outcome {
        let _ = web.quit().await;
        panic!("{e}");
    }
    // Another browser signed in as the same person (a phone, say).
    let (other, f, server) = tokio::task::spawn_blocking(move || {
        let other = http_browser();
        sign_in_and_allow(&other, &server, &f);
        let shown = other.get(server.url("/account")).send().unwrap().status();
        assert_eq!(shown, 200, "the other browser is signed in");
        (other, f, server)
    })
    .await
    .unwrap();
    let outcome = async {
        web.goto(&server.url("/account")).await?;
        let app = wait_for(&web, By::Css("li.app")).await?;
        assert!(app.text().await?.contains("Studio sync"));
        web.screenshot(&shots.join("account-01-page.png")).await?;
        let sessions = web.find_all(By::Css("li.session")).await?;
        assert_eq!(sessions.len(), 2, "this browser and the other one");
        // This browser is marked and described from its User-Agent; the
        // other (an HTTP client sending none) is listed with its address.
        let mine = web.find(By::Css("li.session[data-this-browser]")).await?;
        let text = mine.text().await?;
        assert!(text.contains("Headless Chrome on Linux"), "{text}");
        assert!(text.contains("(this browser)"), "{text}");
        assert!(text.contains("from 127.0.0.1"), "{text}");
        assert!(text.contains("last seen"), "{text}");
        assert!(
            mine.find_all(By::Tag("button")).await?.is_empty(),
            "this browser's session is ended by signing out, not from the list"
        );
        web.find(By::Id("sessions"))
            .await?
            .screenshot(&shots.join("account-01-sessions.png"))
            .await?;
        let theirs = web
            .find(By::Css("li.session:not([data-this-browser])"))
            .await?;
        let text = theirs.text().await?;
        assert!(text.contains("Unknown browser"), "{text}");
        theirs
            .find(By::XPath(".//button[normalize-space()='Sign out']"))
            .await?
            .click()
            .await?;
        let notice = wait_for(&web, By::Id("notice")).await?;
        assert!(notice.text().await?.contains("That session is signed out"));
        web.screenshot(&shots.join("account-02-session-ended.png"))
            .await?;
        let sessions = web.find_all(By::Css("li.session")).await?;
        assert_eq!(sessions.len(), 1, "only this browser is left");
        let app = web.find(By::Css("li.app")).await?;
        app.find(By::XPath(".//button[normalize-space()='Revoke access']"))
            .await?
            .click()
            .await?;
        // The page before had a notice too: wait for the next page's.
        wait_for(&web, By::Id("no-apps")).await?;
        let notice = wait_for(&web, By::Id("notice")).await?;
        assert!(notice.text().await?.contains("access is revoked"));
        web.screenshot(&shots.join("account-03-revoked.png"))
            .await?;
        web.find(By::XPath(
            "//button[normalize-space()='Sign out everywhere']",
        ))
        .await?
        .click()
        .await?;
        let h1 = wait_for(
            &web,
            By::XPath("//h1[normalize-space()='Signed out everywhere']"),
        )
        .await?;
        web.screenshot(&shots.join("account-04-signed-out.png"))
            .await?;
        let main = web.find(By::Tag("main")).await?.text().await?;
        assert!(main.contains("1 session ended"), "{main}");
        let _ = h1;
        // This browser is signed out too.
        web.goto(&server.url("/account")).await?;
        let text = wait_for(&web, By::Tag("main")).await?.text().await?;
        assert!(text.contains("Sign in first"), "{text}");
        Ok::<_, WebDriverError>(())
    }
    .await;
    let _ = web.quit().await;
    outcome.unwrap();
    // The other browser's session was ended from the list.
    let account = server.url("/account");
    let status = tokio::task::spawn_blocking(move || {
        let r = other.get(account).send().unwrap().status().as_u16();
        drop(f);
        r
    })
    .await
    .unwrap();
    assert_eq!(status, 401);
    drop(server);
}
