//! A person's browser and an app's callback, without a real browser: the
//! pieces the sign-in-through-a-provider tests (`upstream.rs`, `upstream_node.rs`)
//! drive Gatehouse's pages with.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;

use base64::Engine;
use reqwest::blocking::{Client, Response};
use serde_json::Value;

use super::unescape_html;

/// A stand-in for the app's callback: answers every request with a small page.
pub fn callback_server() -> u16 {
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

/// A browser-like client: a cookie jar, redirects followed except to the app.
pub fn browser_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|a| {
            if a.url().path() == "/callback" {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .unwrap()
}

/// A hidden (or prefilled) input's value in a page.
pub fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(unescape_html(&rest[..rest.find('"')?]))
}

/// Posts the page's form (its `csrf_token` and `request`) with `extra` to `to`.
pub fn post_form(c: &Client, to: &str, page: &str, extra: &[(&str, &str)]) -> Response {
    let mut form: Vec<(String, String)> = vec![(
        "csrf_token".into(),
        field(page, "csrf_token").expect("a csrf token"),
    )];
    if let Some(r) = field(page, "request") {
        form.push(("request".into(), r));
    }
    for (k, v) in extra {
        form.push(((*k).into(), (*v).into()));
    }
    c.post(to).form(&form).send().unwrap()
}

/// `pairs` as a URL query.
pub fn form_query(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap().to_owned()
}

/// The app's side of a code flow: the code in `r` (the redirect to the app's
/// callback, with `state` `s-42`) exchanged at `token_url` as the confidential
/// app `client_id`; the ID token's claims.
pub fn id_token_after(
    r: Response,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    redirect_uri: &str,
) -> Value {
    assert!(r.status().is_redirection(), "{:?}", r.text());
    let to = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s-42");
    let tokens: Value = Client::new()
        .post(token_url)
        .basic_auth(client_id, Some(client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = tokens["id_token"].as_str().expect("an id_token");
    let payload = id.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
