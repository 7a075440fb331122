//! CSRF on the console's forms, as an attacker would try it: an opaque `Origin`,
//! a CSRF cookie planted in the victim's browser (with the token that goes with
//! it), a token from before sign-in, and the cookie's name and attributes.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::{Console, csrf_in, other_org, setup};
use crate::helpers::{PASSWORD, TestApp};

/// `name=value` pairs of every `Set-Cookie` of a response.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, String)> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let full = v.to_str().unwrap().to_owned();
            let pair = full.split(';').next().unwrap().to_owned();
            let (n, val) = pair.split_once('=').unwrap();
            (n.to_owned(), val.to_owned(), full)
        })
        .collect()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, _)| v)
}

/// Signs in by hand: (session cookie, CSRF cookie) as the browser now holds them.
async fn sign_in_by_hand(app: &TestApp, email: &str) -> (String, String) {
    let page = app.http.get(app.url("/console")).send().await.unwrap();
    let csrf_cookie = cookie(page.headers(), "gatehouse_csrf").unwrap();
    let token = csrf_in(&page.text().await.unwrap());
    let resp = app
        .http
        .post(app.url("/console/login"))
        .header("cookie", format!("gatehouse_csrf={csrf_cookie}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = cookie(resp.headers(), "gatehouse_session").unwrap();
    let csrf = cookie(resp.headers(), "gatehouse_csrf").unwrap_or(csrf_cookie);
    (session, csrf)
}

fn register_fields(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant", "client_credentials"),
        ("name", name),
        ("on_behalf_of", "dev@acme.test"),
        ("scope:cfgateway", "on"),
        ("audience", "https://gateway.acme.test"),
    ]
}

async fn org_app_count(app: &TestApp) -> usize {
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    app.s().apps_for_org(&org.id).await.unwrap().len()
}

/// `Origin: null` (a sandboxed frame, a `data:` page) is no proof of our own page.
#[tokio::test]
async fn a_null_origin_is_refused_even_with_the_right_token() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let token = c.csrf("/console/apps/new").await;
    let mut fields = vec![("csrf_token", token.as_str())];
    fields.extend(register_fields("Sneaky"));
    let resp = c
        .http
        .post(c.url("/console/apps"))
        .header("origin", "null")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    for site in ["cross-site", "same-site", "none"] {
        let resp = c
            .http
            .post(c.url("/console/apps"))
            .header("origin", "null")
            .header("sec-fetch-site", site)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{site}");
    }
    let resp = c
        .http
        .post(c.url("/console/apps"))
        .header("sec-fetch-site", "cross-site")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(org_app_count(&app).await, 0);
    // Only the browser's own word that the post is same-origin outweighs `null`.
    let resp = c
        .http
        .post(c.url("/console/apps"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(org_app_count(&app).await, 1);
}

/// An attacker who can plant a cookie (a sibling subdomain, a plain-HTTP
/// response) knows their own CSRF cookie and its token; bound to their session,
/// the pair is useless in the victim's.
#[tokio::test]
async fn a_planted_csrf_cookie_with_its_token_fails_in_another_session() {
    let (app, _) = setup().await;
    let (victim_session, _) = sign_in_by_hand(&app, "admin@acme.test").await;
    // The attacker's own pair, from a signed-out page and from their own session.
    let page = app.http.get(app.url("/console")).send().await.unwrap();
    let planted = cookie(page.headers(), "gatehouse_csrf").unwrap();
    let token = csrf_in(&page.text().await.unwrap());
    other_org(&app).await;
    let (mallory_session, mallory_csrf) = sign_in_by_hand(&app, "bob@other.test").await;
    let page = app
        .http
        .get(app.url("/console/apps"))
        .header(
            "cookie",
            format!("gatehouse_session={mallory_session}; gatehouse_csrf={mallory_csrf}"),
        )
        .send()
        .await
        .unwrap();
    let mallory_token = csrf_in(&page.text().await.unwrap());
    for (csrf_cookie, token) in [(&planted, &token), (&mallory_csrf, &mallory_token)] {
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend(register_fields("Planted"));
        let resp = app
            .http
            .post(app.url("/console/apps"))
            .header(
                "cookie",
                format!("gatehouse_session={victim_session}; gatehouse_csrf={csrf_cookie}"),
            )
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(org_app_count(&app).await, 0);
}

/// Signing in replaces the CSRF cookie; tokens from before sign-in stop working.
#[tokio::test]
async fn signing_in_rotates_the_csrf_cookie_and_ends_earlier_tokens() {
    let (app, _) = setup().await;
    let c = Console::new(&app);
    let page = c.get("/console").await;
    let before = cookie(page.headers(), "gatehouse_csrf").unwrap();
    let old_token = csrf_in(&page.text().await.unwrap());
    let resp = c
        .http
        .post(c.url("/console/login"))
        .form(&[
            ("csrf_token", old_token.as_str()),
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let after = cookie(resp.headers(), "gatehouse_csrf").expect("a new CSRF cookie");
    assert_ne!(after, before);
    let resp = c
        .http
        .post(c.url("/console/logout"))
        .form(&[("csrf_token", old_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.get("/console/apps").await.status(),
        200,
        "still signed in"
    );
    let resp = c.post("/console/logout", "/console/apps", &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

/// On an HTTPS issuer the cookie is `__Host-` prefixed: Secure, Path=/, no Domain.
#[tokio::test]
async fn on_an_https_issuer_the_csrf_cookie_is_host_prefixed() {
    let app = TestApp::spawn_with(
        |c| c.issuer = "https://id.acme.test".into(),
        Default::default(),
    )
    .await;
    app.seed().await;
    app.password_user("admin@acme.test", "admin").await;
    let page = app.http.get(app.url("/console")).send().await.unwrap();
    let all = set_cookies(page.headers());
    let (_, value, full) = all
        .iter()
        .find(|(n, _, _)| n == "__Host-gatehouse_csrf")
        .unwrap_or_else(|| panic!("{all:?}"))
        .clone();
    assert!(full.contains("Secure") && full.contains("Path=/"), "{full}");
    assert!(!full.to_ascii_lowercase().contains("domain="), "{full}");
    assert!(
        !all.iter().any(|(n, _, _)| n == "gatehouse_csrf"),
        "{all:?}"
    );
    // The prefixed cookie is the one that is checked.
    let token = csrf_in(&page.text().await.unwrap());
    let resp = app
        .http
        .post(app.url("/console/login"))
        .header("cookie", format!("__Host-gatehouse_csrf={value}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = app
        .http
        .post(app.url("/console/login"))
        .header("cookie", format!("gatehouse_csrf={value}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
