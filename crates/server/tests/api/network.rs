//! The network edge, as an attacker meets it: whose address a request counts
//! against (directly and behind a trusted load balancer), throttling that never
//! refuses the right secret or locks a person out, identifiers bounded before
//! they are looked up or stored, and connections that cannot be held open by
//! sending slowly.

use std::time::{Duration, Instant};

use gatehouse_server::config::parse_proxy;
use gatehouse_store_sql::SqliteOptions;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::Browser;
use crate::helpers::{PASSWORD, Params, TestApp, authorize_params, oauth_error};

const LB: &str = "127.0.0.1/32";

fn forwarded_for(addr: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_str(addr).unwrap());
    h
}

/// A client whose requests carry `X-Forwarded-For: addr` (as a load balancer
/// in front of the server would add).
fn behind_lb(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(forwarded_for(addr))
        .build()
        .unwrap()
}

async fn token(http: &reqwest::Client, app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    http.post(app.url("/connect/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// Wrong secrets until the answer is 429; how many it took.
async fn fail_until_throttled(http: &reqwest::Client, app: &TestApp, id: &str) -> usize {
    for n in 1..=100 {
        let r = token(http, app, id, "guess").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            return n;
        }
        assert_eq!(r.status(), 401);
    }
    panic!("never throttled");
}

#[tokio::test]
async fn behind_a_load_balancer_one_tenants_guessing_throttles_only_that_tenant() {
    let app = TestApp::spawn_with(
        |c| {
            c.trusted_proxies = vec![parse_proxy(LB).unwrap()];
            c.failures_per_address = 3;
        },
        SqliteOptions::default(),
    )
    .await;
    let (api, _) = app.seed().await;
    let victim = app.app("dev@acme.test", "cfgateway", None, None).await;
    let attacker = behind_lb("203.0.113.66");
    // Every request arrives from the load balancer's address (127.0.0.1); only
    // the forwarded address tells the attacker apart.
    for id in ["a", "b", "c"] {
        assert_eq!(token(&attacker, &app, id, "x").await.status(), 401);
    }
    assert_eq!(
        token(&attacker, &app, "d", "x").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let tenant = behind_lb("198.51.100.7");
    let ok = token(&tenant, &app, &victim.client_id, &victim.secret).await;
    assert_eq!(ok.status(), 200);
    let jwt = ok.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let introspected = tenant
        .post(app.url("/connect/introspect"))
        .basic_auth(&api.client_id, Some(&api.secret))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(introspected.status(), 200);
    assert_eq!(introspected.json::<Value>().await.unwrap()["active"], true);
    // IPv6 counts per /64: another address of the attacker's /64 is the same
    // client; the next /64 is not.
    let v6 = |a: &str| behind_lb(a);
    for (i, a) in ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            token(&v6(a), &app, &format!("v{i}"), "x").await.status(),
            401
        );
    }
    assert_eq!(
        token(&v6("2001:db8::ffff"), &app, "v9", "x").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        token(&v6("2001:db8:0:1::1"), &app, "w", "x").await.status(),
        401
    );
}

#[tokio::test]
async fn a_forwarded_header_from_an_untrusted_peer_changes_nothing() {
    let app = TestApp::spawn_with(|c| c.failures_per_address = 3, SqliteOptions::default()).await;
    app.seed().await;
    // No trusted proxies: a client writing a fresh X-Forwarded-For each time is
    // still its own address, and runs into its bucket.
    for (n, id) in ["a", "b", "c", "d"].iter().enumerate() {
        let forged = behind_lb(&format!("192.0.2.{n}"));
        let status = token(&forged, &app, id, "x").await.status();
        let expected = if n < 3 { 401 } else { 429 };
        assert_eq!(status.as_u16(), expected, "request {n}");
    }
}

#[tokio::test]
async fn the_right_secret_is_never_429_whatever_failed_before() {
    let app = TestApp::spawn_with(
        |c| {
            c.failures_per_client = 3;
            c.failures_per_address = 4;
        },
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let http = reqwest::Client::new();
    // The client id's bucket full (someone guessing its secret)…
    assert_eq!(fail_until_throttled(&http, &app, &c.client_id).await, 4);
    // …and this very address's bucket full too.
    assert_eq!(token(&http, &app, "other", "x").await.status(), 429);
    assert_eq!(
        token(&http, &app, &c.client_id, "guess").await.status(),
        429
    );
    // The right secret from the same address still gets its token.
    assert_eq!(
        token(&http, &app, &c.client_id, &c.secret).await.status(),
        200
    );
}

/// Posts a sign-in for `email` from `browser`; the status.
async fn sign_in(browser: &Browser, params: &Params, email: &str, password: &str) -> StatusCode {
    let page = browser.authorize(params).await;
    browser.login(&page, email, password).await.status
}

async fn lockout_setup(trusted: bool) -> (TestApp, Params) {
    let app = TestApp::spawn_with(
        |c| {
            c.login_failures_per_account = 3;
            if trusted {
                c.trusted_proxies = vec![parse_proxy(LB).unwrap()];
            }
        },
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    (app, authorize_params(&web))
}

/// The attacker fails against ana@ until refused, then keeps going; ana, from
/// an address that never failed, signs in at once with her password.
async fn stranger_cannot_lock_out(params: &Params, attacker: Browser, ana: Browser) {
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            sign_in(&attacker, params, "ana@acme.test", "wrong")
                .await
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..4], [401, 401, 401, 429]);
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right password is refused from the address that guessed.
    assert_eq!(
        sign_in(&attacker, params, "ana@acme.test", PASSWORD).await,
        429
    );
    let started = Instant::now();
    let page = ana.authorize(params).await;
    let signed_in = ana.login(&page, "ana@acme.test", PASSWORD).await;
    assert!(signed_in.is_consent(), "{signed_in:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stranger_guessing_a_password_cannot_lock_its_owner_out() {
    let (app, params) = lockout_setup(false).await;
    // Two clients on two addresses: 127.0.0.2 guesses, ana comes from 127.0.0.1.
    let attacker = Browser::from(&app, Some("127.0.0.2".parse().unwrap()), HeaderMap::new());
    let ana = Browser::new(&app);
    stranger_cannot_lock_out(&params, attacker, ana).await;
}

#[tokio::test]
async fn behind_a_load_balancer_a_stranger_cannot_lock_a_person_out_either() {
    let (app, params) = lockout_setup(true).await;
    let attacker = Browser::from(&app, None, forwarded_for("203.0.113.66"));
    let ana = Browser::from(&app, None, forwarded_for("198.51.100.7"));
    stranger_cannot_lock_out(&params, attacker, ana).await;
}

#[tokio::test]
async fn over_long_identifiers_are_refused_before_lookup_and_never_stored() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let web = app.web_app("cfgateway").await;
    let http = reqwest::Client::new();
    // 100 KB in Basic, 2 KB in the body: refused as invalid_client, not counted.
    let huge = "i".repeat(100_000);
    for _ in 0..5 {
        oauth_error(token(&http, &app, &huge, "x").await, 401, "invalid_client").await;
    }
    let body_id = "j".repeat(2_000);
    let r = http
        .post(app.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", body_id.as_str()),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    let err = oauth_error(r, 401, "invalid_client").await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("longer than 256 bytes"),
        "{err}"
    );
    // A long but acceptable unknown id is counted under a fixed-size key.
    let long_ok = "k".repeat(256);
    assert_eq!(token(&http, &app, &long_ok, "x").await.status(), 401);
    if app.sqlite.is_some() {
        let mut db = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
        let keys: Vec<(String,)> = sqlx::query_as("SELECT key FROM throttle")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}: one address, one client id");
        assert!(keys.iter().all(|(k,)| k.len() <= 64), "{keys:?}");
    }
    // At the authorization endpoint: client_id, login_hint, state, nonce.
    let browser = Browser::new(&app);
    let page = browser
        .authorize(&authorize_params(&web).set("client_id", &"c".repeat(257)))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("longer than 256 bytes"), "{page:?}");
    let page = browser
        .authorize(&authorize_params(&web).set("login_hint", &"h".repeat(321)))
        .await;
    let back = page.callback();
    assert_eq!(back.get("error"), Some("invalid_request"));
    assert!(
        back.get("error_description")
            .unwrap()
            .contains("login_hint")
    );
    let page = browser
        .authorize(&authorize_params(&web).set("nonce", &"n".repeat(1025)))
        .await;
    assert_eq!(page.callback().get("error"), Some("invalid_request"));
    let page = browser
        .authorize(&authorize_params(&web).set("state", &"s".repeat(1025)))
        .await;
    assert_eq!(page.status, 400);
    // A sign-in email longer than any address: refused, nothing looked up.
    let page = browser.authorize(&authorize_params(&web)).await;
    let email = format!("{}@acme.test", "e".repeat(320));
    let refused = browser.login(&page, &email, "x").await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("too long"), "{refused:?}");
}

/// Reads from `stream` until the server closes it; what it sent, and when.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "still open after {within:?}");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn half_sent_requests_and_idle_connections_are_closed_on_time() {
    let app = TestApp::spawn_with(
        |c| {
            c.header_read_timeout = Duration::from_millis(400);
            c.body_read_timeout = Duration::from_millis(400);
            c.idle_timeout = Duration::from_millis(1200);
        },
        SqliteOptions::default(),
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Headers never finished.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Headers sent, the body trickles and stops short.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // A connection that never sends anything: the head timeout, from the accept.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1100), "{took:?}");
    // A finished request on a keep-alive connection, then silence: the idle
    // timeout, not the (shorter) head timeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took >= Duration::from_millis(1100), "{took:?}");
}

/// A load balancer (AWS's idle timeout is 60 s) or a client pool (reqwest's and
/// Go's: 90 s) reuses a connection it has kept idle for a while. Had the server
/// closed it at the head timeout, that reuse would race the close and fail (a
/// 502 at the balancer). So: idle past the head timeout, the connection still
/// serves; and a head that then trickles is still cut at the head timeout,
/// counted from its first byte.
#[tokio::test]
async fn a_keep_alive_connection_outlives_the_head_timeout_but_not_a_slow_head() {
    let app = TestApp::spawn_with(
        |c| {
            c.header_read_timeout = Duration::from_millis(300);
            c.idle_timeout = Duration::from_secs(30);
        },
        SqliteOptions::default(),
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let get = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut status = [0u8; 12];
    for _ in 0..2 {
        s.write_all(get).await.unwrap();
        s.read_exact(&mut status).await.unwrap();
        assert_eq!(&status, b"HTTP/1.1 200");
        // Drain the rest of the answer, then idle three head timeouts.
        let mut rest = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(100), s.read(&mut rest)).await;
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    // Still open: a third request is answered.
    s.write_all(get).await.unwrap();
    s.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    let mut rest = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(100), s.read(&mut rest)).await;
    // Now a head that starts and never ends: closed about a head timeout later.
    s.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(!answer.contains("HTTP/1.1"), "{answer}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
}

#[tokio::test]
async fn past_the_cap_the_longest_idle_connection_makes_room() {
    let app = TestApp::spawn_with(
        |c| {
            c.max_connections = 1;
            c.header_read_timeout = Duration::from_secs(30);
        },
        SqliteOptions::default(),
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    first.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    // The first connection idles on keep-alive, holding the only slot: a new
    // client is served at once (not after the 30 s idle timeout) because the
    // idle one is closed to make room, so held connections lock nobody out.
    let status = tokio::time::timeout(Duration::from_secs(5), reqwest::get(app.url("/health")))
        .await
        .expect("a new client waited behind an idle connection")
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let (rest, _) = read_until_closed(&mut first, Duration::from_secs(5)).await;
    assert!(!rest.contains("HTTP/1.1"), "{rest}");
}

#[tokio::test]
async fn behind_a_load_balancer_the_audit_log_records_the_client_address() {
    let app = TestApp::spawn_with(
        |c| c.trusted_proxies = vec![parse_proxy(LB).unwrap()],
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    let admin = crate::admin_api::admin_in(&app, "acme-studio", "root@acme.test").await;
    let r = behind_lb("198.51.100.7")
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin.token)
        .json(&serde_json::json!({"email": "kai@acme.test", "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let page: Value = reqwest::Client::new()
        .get(app.url("/api/v1/audit?limit=1"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"][0]["address"], "198.51.100.7", "{page}");
}
