//! OpenID Connect Back-Channel Logout 1.0, end to end: apps register a logout
//! URI; when a person's session ends (RP-initiated logout, an admin
//! deactivating them) every app that session signed into receives a logout
//! token, POSTed from the durable queue with retries, also after a restart.
//! Each app here is a real HTTP server (axum on loopback) that verifies the
//! token with jsonwebtoken against the published JWKS only — not the server's
//! own JOSE code — and checks every claim the spec requires (§2.4, §2.6).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use gatehouse_core::admin::{self, BackchannelEdit};
use gatehouse_core::backchannel::BackchannelLogout;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::model::Actor;
use gatehouse_server::{AppState, ServerConfig};
use gatehouse_store_sql::SqliteOptions;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_api::admin_in;
use crate::browser::{Browser, code_for};
use crate::helpers::{Params, TestApp, WebApp, authorize_params, code_params, eventually};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A relying party's back-channel logout endpoint: records every
/// `logout_token` it receives (and refuses anything else with 400).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener).await
    }

    async fn on(listener: tokio::net::TcpListener) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<String>>> = Arc::default();
        let router = axum::Router::new()
            .route("/bc", post(receive))
            .with_state(got.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            port,
            got,
            _stop: tx,
        }
    }

    fn uri(&self) -> String {
        uri(self.port)
    }

    fn tokens(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        eventually(
            &format!("{n} logout token(s) at port {}", self.port),
            || async { self.got.lock().unwrap().len() >= n },
        )
        .await;
        self.tokens()
    }
}

fn uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}/bc")
}

/// §2.5: a form POST with one `logout_token`.
async fn receive(
    State(got): State<Arc<Mutex<Vec<String>>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    if headers["content-type"] != "application/x-www-form-urlencoded" {
        return StatusCode::BAD_REQUEST;
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    match pairs.as_slice() {
        [(k, v)] if k == "logout_token" => {
            got.lock().unwrap().push(v.clone());
            StatusCode::OK
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// §2.6: verifies the logout token as a relying party would, with jsonwebtoken
/// and the JWKS only; returns its claims.
async fn verify_logout_token(app: &TestApp, token: &str, client_id: &str) -> Value {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let jwks: JwkSet = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[&app.base]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .claims;
    assert_eq!(claims["events"], json!({ EVENT: {} }), "{claims}");
    assert!(
        claims.get("nonce").is_none(),
        "§2.4: a logout token has no nonce: {claims}"
    );
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() >= 16),
        "{claims}"
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(
        exp > iat && exp - iat <= 300,
        "a short-lived token: {claims}"
    );
    claims
}

/// Registers `uri` as the app's back-channel logout URI (the admin rules).
async fn register(app: &TestApp, client_id: &str, uri: &str) {
    admin::set_backchannel_logout(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        client_id,
        BackchannelEdit {
            uri: Some(uri.into()),
            session_required: Some(true),
        },
    )
    .await
    .unwrap();
}

/// Development mode (loopback URIs, as every test app here listens on),
/// quick retries, and a worker that looks at the queue often.
fn tune(c: &mut ServerConfig) {
    c.dev = true;
    c.backchannel.retry_base = 1;
    c.backchannel.poll = Duration::from_millis(50);
    c.backchannel.timeout = Duration::from_secs(2);
}

async fn spawn(t: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let app = TestApp::spawn_with(t, SqliteOptions::default()).await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    app
}

/// Signs in through `browser` (once) and into `web`: the ID token's claims
/// (verified) and the ID token itself.
async fn sign_into(app: &TestApp, browser: &Browser, web: &WebApp) -> (Value, String) {
    let code = code_for(browser, &authorize_params(web), "ana@acme.test").await;
    let resp = app.web_token(web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let claims = crate::well_known::verify_with_jwks(app, &id_token, &web.client_id).await;
    assert!(
        claims["sid"].as_str().is_some(),
        "ID tokens carry sid: {claims}"
    );
    (claims, id_token)
}

async fn end_session(app: &TestApp, browser: &Browser, id_token: &str) {
    let page = browser
        .get(&format!(
            "{}?{}",
            app.url("/connect/endsession"),
            Params::new().set("id_token_hint", id_token).query()
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("You are signed out"), "{}", page.body);
}

async fn deliveries(
    app: &TestApp,
    client_id: &str,
) -> Vec<gatehouse_core::backchannel::LogoutDelivery> {
    app.s().logout_deliveries(client_id, 10).await.unwrap()
}

#[tokio::test]
async fn end_session_notifies_every_app_the_session_signed_into_and_no_other() {
    let app = spawn(tune).await;
    let (a, b, c) = (
        app.web_app("cfgateway").await,
        app.web_app("cfgateway").await,
        app.web_app("cfgateway").await,
    );
    let (ra, rb, rc) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    register(&app, &a.client_id, &ra.uri()).await;
    register(&app, &b.client_id, &rb.uri()).await;
    register(&app, &c.client_id, &rc.uri()).await;
    let browser = Browser::new(&app);
    let (id_a, token_a) = sign_into(&app, &browser, &a).await;
    let (id_b, _) = sign_into(&app, &browser, &b).await;
    assert_eq!(id_a["sid"], id_b["sid"], "one session, two apps");

    end_session(&app, &browser, &token_a).await;

    for (r, web, id) in [(&ra, &a, &id_a), (&rb, &b, &id_b)] {
        let got = r.wait_for(1).await;
        let claims = verify_logout_token(&app, &got[0], &web.client_id).await;
        assert_eq!(claims["sid"], id["sid"], "{claims}");
        assert_eq!(claims["sub"], id["sub"], "{claims}");
        assert_eq!(claims["aud"], web.client_id.as_str());
    }
    // Exactly one each, nothing queued for the app the session never used.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ra.tokens().len(), 1);
    assert_eq!(rb.tokens().len(), 1);
    assert!(rc.tokens().is_empty());
    assert!(deliveries(&app, &c.client_id).await.is_empty());
    let done = deliveries(&app, &a.client_id).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status.as_str(), "delivered");
    assert_eq!(done[0].last_status, Some(200));
    // Discovery says so.
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn a_receiver_down_at_first_gets_the_token_after_a_retry() {
    let app = spawn(tune).await;
    let a = app.web_app("cfgateway").await;
    // A port nothing listens on yet.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    register(&app, &a.client_id, &uri(port)).await;
    let browser = Browser::new(&app);
    let (id, token) = sign_into(&app, &browser, &a).await;
    end_session(&app, &browser, &token).await;

    // The first attempt fails (connection refused) and is recorded as such.
    eventually("a failed first attempt", || async {
        deliveries(&app, &a.client_id)
            .await
            .first()
            .is_some_and(|d| d.attempts >= 1)
    })
    .await;
    let d = &deliveries(&app, &a.client_id).await[0];
    assert_eq!(d.status.as_str(), "pending");
    assert_eq!(d.last_error.as_deref(), Some("could not connect"));

    let r = Receiver::on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    )
    .await;
    // The retry is due a second later (the server's clock is the test's).
    app.clock.advance(1);
    let got = r.wait_for(1).await;
    let claims = verify_logout_token(&app, &got[0], &a.client_id).await;
    assert_eq!(claims["sid"], id["sid"]);
    eventually("the delivery recorded", || async {
        deliveries(&app, &a.client_id).await[0].status.as_str() == "delivered"
    })
    .await;
    assert!(deliveries(&app, &a.client_id).await[0].attempts >= 2);
}

#[tokio::test]
async fn a_logout_queued_before_a_restart_is_delivered_by_the_next_instance() {
    // The first instance delivers nothing (as if it stopped right after the logout).
    let app = spawn(|c| {
        tune(c);
        c.backchannel.deliver = false;
    })
    .await;
    let a = app.web_app("cfgateway").await;
    let r = Receiver::start().await;
    register(&app, &a.client_id, &r.uri()).await;
    let browser = Browser::new(&app);
    let (id, token) = sign_into(&app, &browser, &a).await;
    end_session(&app, &browser, &token).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(r.tokens().is_empty());
    assert_eq!(
        deliveries(&app, &a.client_id).await[0].status.as_str(),
        "pending"
    );

    // The next instance on the same database picks the row up at start.
    let mut config = ServerConfig::new(&app.base);
    tune(&mut config);
    let keys = KeyRing::load(app.s(), &app.kek).await.unwrap();
    let next = AppState::start(
        app.store.clone(),
        keys,
        app.kek.clone(),
        app.clock.clone(),
        config,
    )
    .await;
    let got = r.wait_for(1).await;
    let claims = verify_logout_token(&app, &got[0], &a.client_id).await;
    assert_eq!(claims["sid"], id["sid"]);
    drop(next);
}

#[tokio::test]
async fn deactivating_the_person_notifies_the_apps_they_are_signed_into() {
    let app = spawn(tune).await;
    let a = app.web_app("cfgateway").await;
    let r = Receiver::start().await;
    let admin = admin_in(&app, "acme-studio", "root@acme.test").await;
    // Registered through the admin API, shown by it.
    let path = format!("/api/v1/apps/{}", a.client_id);
    let set = admin
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"backchannel_logout_uri": r.uri()}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.raw);
    assert_eq!(set.json["backchannel_logout_uri"], r.uri());
    assert_eq!(set.json["backchannel_logout_session_required"], false);
    let browser = Browser::new(&app);
    let (id, _) = sign_into(&app, &browser, &a).await;
    let user = app.user_id("ana@acme.test").await;

    let off = admin
        .send(
            &app,
            Method::PATCH,
            &format!("/api/v1/users/{user}"),
            json!({"status": "deactivated"}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.raw);

    let got = r.wait_for(1).await;
    let claims = verify_logout_token(&app, &got[0], &a.client_id).await;
    assert_eq!(claims["sid"], id["sid"]);
    assert_eq!(claims["sub"], user.as_str());
    // The session is over too: the browser is asked to sign in again, and that
    // end (the session's own) tells the app nothing more.
    assert!(browser.authorize(&authorize_params(&a)).await.is_login());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.tokens().len(), 1);
    assert_eq!(deliveries(&app, &a.client_id).await.len(), 1);
    eventually("the delivery listed as delivered", || async {
        let list = admin
            .get(&app, &format!("{path}/backchannel-logout-deliveries"))
            .await;
        list.json["deliveries"][0]["status"] == "delivered"
    })
    .await;
    let list = admin
        .get(&app, &format!("{path}/backchannel-logout-deliveries"))
        .await;
    assert_eq!(list.json["deliveries"][0]["last_status"], 200);
    assert_eq!(list.json["deliveries"][0]["sid"], id["sid"]);
}

#[tokio::test]
async fn private_and_loopback_logout_uris_are_refused_outside_development_mode() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let a = app.web_app("cfgateway").await;
    let admin = admin_in(&app, "acme-studio", "root@acme.test").await;
    let path = format!("/api/v1/apps/{}", a.client_id);
    for (uri, why) in [
        ("http://127.0.0.1:8080/bc", "must use https"),
        ("https://127.0.0.1/bc", "IP addresses are not allowed"),
        ("https://10.0.0.5/bc", "IP addresses are not allowed"),
        (
            "https://169.254.169.254/latest/meta-data",
            "IP addresses are not allowed",
        ),
        ("https://localhost/bc", "`localhost` is not allowed"),
        (
            "https://metadata.internal/bc",
            "`.internal` hosts are not allowed",
        ),
        ("https://nowhere.acme.test/bc", "does not resolve"),
    ] {
        let r = admin
            .send(
                &app,
                Method::PATCH,
                &path,
                json!({"backchannel_logout_uri": uri}),
            )
            .await;
        assert_eq!(r.status, 422, "{uri}: {}", r.raw);
        assert_eq!(r.json["field"], "backchannel_logout_uri", "{}", r.raw);
        assert!(
            r.json["detail"].as_str().unwrap().contains(why),
            "{uri}: {}",
            r.raw
        );
    }
    assert!(
        app.s()
            .backchannel_logout(&a.client_id)
            .await
            .unwrap()
            .is_none()
    );
    // A public https name is accepted; null removes it.
    let ok = admin
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"backchannel_logout_uri": "https://sync.acme.test/bc"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.raw);
    assert_eq!(
        ok.json["backchannel_logout_uri"],
        "https://sync.acme.test/bc"
    );
    let gone = admin
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"backchannel_logout_uri": null}),
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.raw);
    assert!(
        gone.json.get("backchannel_logout_uri").is_none(),
        "{}",
        gone.raw
    );
    // A client credentials app signs no one in.
    let m = app.app("dev@acme.test", "cfgateway", None, None).await;
    let r = admin
        .send(
            &app,
            Method::PATCH,
            &format!("/api/v1/apps/{}", m.client_id),
            json!({"backchannel_logout_uri": "https://sync.acme.test/bc"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(r.json["field"], "backchannel_logout_uri", "{}", r.raw);
}

#[tokio::test]
async fn a_loopback_uri_in_the_queue_is_not_called_outside_development_mode() {
    // As if stored while the server ran in development mode: the worker checks
    // the target again at call time and refuses it.
    let app = spawn(|c| {
        c.backchannel.retry_base = 1;
        c.backchannel.max_attempts = 2;
        c.backchannel.poll = Duration::from_millis(50);
    })
    .await;
    let a = app.web_app("cfgateway").await;
    let r = Receiver::start().await;
    let audit = gatehouse_core::model::AuditEvent::new(&Actor::operator(), "", 0, "test", "", "");
    app.s()
        .set_backchannel_logout(
            &a.client_id,
            Some(&BackchannelLogout {
                uri: r.uri(),
                session_required: false,
            }),
            &audit,
        )
        .await
        .unwrap();
    let browser = Browser::new(&app);
    let (_, token) = sign_into(&app, &browser, &a).await;
    end_session(&app, &browser, &token).await;
    eventually("a refused first attempt", || async {
        deliveries(&app, &a.client_id)
            .await
            .first()
            .is_some_and(|d| d.attempts == 1)
    })
    .await;
    app.clock.advance(1);
    eventually("the delivery given up", || async {
        deliveries(&app, &a.client_id)
            .await
            .first()
            .is_some_and(|d| d.status.as_str() == "failed")
    })
    .await;
    let d = &deliveries(&app, &a.client_id).await[0];
    assert_eq!(d.attempts, 2);
    assert!(
        d.last_error.as_deref().unwrap().starts_with("refused:"),
        "{d:?}"
    );
    assert!(r.tokens().is_empty(), "never called");
    // The final failure is a security event in the app's organization's audit log.
    let org = app.org("acme-studio").await;
    let events = app.s().audit_events(&org.id, None, 20).await.unwrap();
    let e = events
        .iter()
        .find(|e| e.action == "app.backchannel_logout_failed")
        .expect("an audit event");
    assert_eq!(e.target, a.client_id);
    assert!(e.detail.contains("after 2 attempts"), "{}", e.detail);
}

#[tokio::test]
async fn a_delivery_is_leased_to_one_instance_at_a_time() {
    let app = spawn(|c| {
        tune(c);
        c.backchannel.deliver = false;
    })
    .await;
    let a = app.web_app("cfgateway").await;
    register(&app, &a.client_id, &uri(9)).await;
    let browser = Browser::new(&app);
    let (_, token) = sign_into(&app, &browser, &a).await;
    end_session(&app, &browser, &token).await;
    let now = app.clock.now();
    // Two instances claim at once: one gets the row.
    let (x, y) = tokio::join!(
        app.s().claim_logout_deliveries("x", now, now + 60, 10),
        app.s().claim_logout_deliveries("y", now, now + 60, 10),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 1, "{x:?} {y:?}");
    let (holder, seq) = if x.is_empty() {
        ("y", y[0].seq)
    } else {
        ("x", x[0].seq)
    };
    assert!(
        app.s()
            .claim_logout_deliveries("z", now + 59, now + 119, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Its holder died: once the lease has run out, another instance takes it over…
    let z = app
        .s()
        .claim_logout_deliveries("z", now + 60, now + 120, 10)
        .await
        .unwrap();
    assert_eq!(z.len(), 1);
    // …and the late holder can no longer record an outcome.
    let late = app
        .s()
        .finish_logout_delivery(
            seq,
            holder,
            &gatehouse_core::backchannel::Outcome::Delivered { status: 200 },
            now + 61,
        )
        .await;
    assert!(
        matches!(late, Err(gatehouse_core::ports::StoreError::NotFound)),
        "{late:?}"
    );
    app.s()
        .finish_logout_delivery(
            seq,
            "z",
            &gatehouse_core::backchannel::Outcome::Delivered { status: 200 },
            now + 61,
        )
        .await
        .unwrap();
    assert_eq!(
        deliveries(&app, &a.client_id).await[0].status.as_str(),
        "delivered"
    );
}

#[tokio::test]
async fn an_admin_sets_and_removes_the_logout_uri_on_the_consoles_app_page() {
    let (app, _) = crate::console::setup().await;
    let c = crate::console::Console::sign_in(&app, "admin@acme.test").await;
    let web = app.web_app("cfgateway").await;
    let page = format!("/console/apps/{}", web.client_id);
    let action = format!("{page}/edit");
    let form = |bc: &'static str| {
        vec![
            ("name", "Studio sync 2"),
            ("redirect_uris", crate::helpers::CALLBACK),
            ("backchannel_logout_uri", bc),
        ]
    };
    // A private address is refused beside the field, and nothing is saved.
    let resp = c.post(&action, &page, &form("https://10.0.0.5/bc")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    let error = crate::console::by_id(&html, "backchannel_logout_uri-error");
    assert!(error.contains("IP addresses are not allowed"), "{error}");
    assert_eq!(
        app.s().app_by_client_id(&web.client_id).await.unwrap().name,
        "Studio sync"
    );
    // A public https name is saved and shown.
    let resp = c
        .post(&action, &page, &form("https://sync.acme.test/bc"))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let html = c.page(&page).await;
    assert_eq!(
        crate::console::by_id(&html, "backchannel-logout-uri"),
        "https://sync.acme.test/bc"
    );
    assert_eq!(
        app.s()
            .backchannel_logout(&web.client_id)
            .await
            .unwrap()
            .unwrap()
            .uri,
        "https://sync.acme.test/bc"
    );
    assert!(
        c.page("/console/audit")
            .await
            .contains("back-channel logout URI set")
    );
    // An empty box removes it.
    let resp = c.post(&action, &page, &form("")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        app.s()
            .backchannel_logout(&web.client_id)
            .await
            .unwrap()
            .is_none()
    );
}

/// The default session lifetime (`ServerConfig::session_ttl`).
const SESSION_TTL: i64 = 12 * 3600;

#[tokio::test]
async fn an_expired_session_that_comes_back_tells_its_apps_once() {
    let app = spawn(tune).await;
    let a = app.web_app("cfgateway").await;
    let r = Receiver::start().await;
    register(&app, &a.client_id, &r.uri()).await;
    let browser = Browser::new(&app);
    let (id, _) = sign_into(&app, &browser, &a).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(r.tokens().is_empty(), "a live session tells nothing");

    // The session's lifetime runs out; its cookie comes back.
    app.clock.advance(SESSION_TTL);
    assert!(browser.authorize(&authorize_params(&a)).await.is_login());
    let got = r.wait_for(1).await;
    let claims = verify_logout_token(&app, &got[0], &a.client_id).await;
    assert_eq!(claims["sid"], id["sid"], "{claims}");
    assert_eq!(claims["sub"], id["sub"], "{claims}");
    // Once: the cookie again, and the sweep, find nothing more to tell.
    assert!(browser.authorize(&authorize_params(&a)).await.is_login());
    let (swept, logouts) = app
        .s()
        .sweep_expired_sessions(app.clock.now(), 100)
        .await
        .unwrap();
    assert_eq!((swept, logouts), (0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.tokens().len(), 1);
    assert_eq!(deliveries(&app, &a.client_id).await.len(), 1);
}

#[tokio::test]
async fn the_sweep_tells_the_apps_of_a_session_that_never_comes_back() {
    let app = spawn(|c| {
        tune(c);
        c.housekeeping_every = Duration::from_millis(100);
    })
    .await;
    let (a, b) = (
        app.web_app("cfgateway").await,
        app.web_app("cfgateway").await,
    );
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    register(&app, &a.client_id, &ra.uri()).await;
    register(&app, &b.client_id, &rb.uri()).await;
    let gone = Browser::new(&app);
    let (id_a, _) = sign_into(&app, &gone, &a).await;
    let (id_b, _) = sign_into(&app, &gone, &b).await;
    assert_eq!(id_a["sid"], id_b["sid"]);
    // Half a lifetime later another browser signs in: its session lives on.
    app.clock.advance(SESSION_TTL / 2);
    let stays = Browser::new(&app);
    let (later, _) = sign_into(&app, &stays, &a).await;
    assert_ne!(later["sid"], id_a["sid"]);

    // The first session's lifetime runs out; its browser never returns.
    app.clock.advance(SESSION_TTL / 2);
    for (r, web, id) in [(&ra, &a, &id_a), (&rb, &b, &id_b)] {
        let got = r.wait_for(1).await;
        let claims = verify_logout_token(&app, &got[0], &web.client_id).await;
        assert_eq!(claims["sid"], id["sid"], "{claims}");
        assert_eq!(claims["sub"], id["sub"], "{claims}");
    }
    // Later rounds tell nothing more, and the live session is untouched.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ra.tokens().len(), 1);
    assert_eq!(rb.tokens().len(), 1);
    assert!(!stays.authorize(&authorize_params(&a)).await.is_login());
    assert!(gone.authorize(&authorize_params(&a)).await.is_login());
    assert_eq!(ra.tokens().len(), 1);
}

#[tokio::test]
async fn an_expired_session_claimed_by_several_instances_at_once_is_told_once() {
    let app = spawn(|c| {
        tune(c);
        c.backchannel.deliver = false;
    })
    .await;
    let a = app.web_app("cfgateway").await;
    register(&app, &a.client_id, &uri(9)).await;
    let mut digests = Vec::new();
    for _ in 0..3 {
        let browser = Browser::new(&app);
        sign_into(&app, &browser, &a).await;
    }
    let user = app.user_id("ana@acme.test").await;
    for s in app
        .s()
        .user_sessions(&user, app.clock.now(), 10)
        .await
        .unwrap()
    {
        digests.push(s.id_digest);
    }
    assert_eq!(digests.len(), 3);
    app.clock.advance(SESSION_TTL);
    let now = app.clock.now();
    // Two instances sweep while a request brings one of the cookies back.
    let (x, y, z) = tokio::join!(
        app.s().sweep_expired_sessions(now, 100),
        app.s().sweep_expired_sessions(now, 100),
        app.s().expire_session(&digests[0], now),
    );
    let (x, y, z) = (x.unwrap(), y.unwrap(), z.unwrap());
    assert_eq!(x.0 + y.0 + u64::from(z > 0), 3, "{x:?} {y:?} {z}");
    assert_eq!(x.1 + y.1 + z, 3, "{x:?} {y:?} {z}");
    let queued = deliveries(&app, &a.client_id).await;
    assert_eq!(queued.len(), 3, "one per session: {queued:?}");
    let mut sids: Vec<_> = queued.iter().map(|d| d.sid.clone()).collect();
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), 3);
}

#[tokio::test]
async fn turned_off_nothing_is_queued_or_sent_and_new_logout_uris_are_refused() {
    let app = spawn(|c| {
        tune(c);
        c.backchannel.enabled = false;
    })
    .await;
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["backchannel_logout_supported"], false);
    assert_eq!(doc["backchannel_logout_session_supported"], false);

    let a = app.web_app("cfgateway").await;
    let r = Receiver::start().await;
    let admin = admin_in(&app, "acme-studio", "root@acme.test").await;
    let path = format!("/api/v1/apps/{}", a.client_id);
    let refused = admin
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"backchannel_logout_uri": r.uri()}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.raw);
    assert_eq!(refused.json["field"], "backchannel_logout_uri");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("back-channel logout is turned off"),
        "{}",
        refused.raw
    );
    assert!(
        app.s()
            .backchannel_logout(&a.client_id)
            .await
            .unwrap()
            .is_none()
    );
    // A registration kept from before it was turned off stays (and can be
    // re-sent unchanged) but is inert.
    let audit = gatehouse_core::model::AuditEvent::new(&Actor::operator(), "", 0, "test", "", "");
    app.s()
        .set_backchannel_logout(
            &a.client_id,
            Some(&BackchannelLogout {
                uri: r.uri(),
                session_required: false,
            }),
            &audit,
        )
        .await
        .unwrap();
    let kept = admin
        .send(
            &app,
            Method::PATCH,
            &path,
            json!({"backchannel_logout_uri": r.uri()}),
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.raw);

    // Neither an ended session nor an expired one queues anything.
    let browser = Browser::new(&app);
    let (_, token) = sign_into(&app, &browser, &a).await;
    end_session(&app, &browser, &token).await;
    let other = Browser::new(&app);
    sign_into(&app, &other, &a).await;
    app.clock.advance(SESSION_TTL);
    assert!(other.authorize(&authorize_params(&a)).await.is_login());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(deliveries(&app, &a.client_id).await.is_empty());
    assert!(r.tokens().is_empty());
}
