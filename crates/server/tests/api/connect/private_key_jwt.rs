//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9) at the
//! token, introspection, revocation and PAR endpoints, with assertions made by
//! Python authlib (`private_key_jwt.py` beside this file: an implementation
//! independent of Gatehouse's), and the attacks an assertion must withstand:
//! replay, another audience, iss ≠ sub, long-lived or expired assertions, `none`
//! and HS256-with-the-public-key, foreign keys, another app's assertion, a
//! secret for a key-only app, a `jwks_uri` on a private address. A `jwks_uri`
//! is served by a test HTTP server to show a new `kid` being picked up.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use gatehouse_core::admin::{self, AdminError, NewApp};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::{Actor, ClientKeys, GrantType};
use gatehouse_store_sql::SqliteOptions;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A key pair made by joserfc: the private JWK (for signing) and the public one.
struct Key {
    private: Value,
    public: Value,
    alg: &'static str,
}

fn script() -> String {
    format!(
        "{}/tests/api/connect/private_key_jwt.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn python(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("python3")
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "authlib failed (pip install authlib): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn keygen(alg: &'static str, kid: &str) -> Key {
    let v: Value = serde_json::from_str(&python(&["keygen", alg, kid], "")).unwrap();
    Key {
        private: v["private"].clone(),
        public: v["public"].clone(),
        alg,
    }
}

fn jwks(keys: &[&Key]) -> String {
    json!({"keys": keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>()}).to_string()
}

/// An assertion by authlib's `private_key_jwt_sign`, with claim overrides.
fn assertion(key: &Key, client_id: &str, aud: &str, claims: Value) -> String {
    sign(key, client_id, aud, claims, json!({}), 120, "authlib")
}

fn sign(
    key: &Key,
    client_id: &str,
    aud: &str,
    claims: Value,
    header: Value,
    expires_in: i64,
    mode: &str,
) -> String {
    let req = json!({
        "key": if mode == "hmac" { &key.public } else { &key.private },
        "client_id": client_id, "aud": aud, "alg": key.alg,
        "claims": claims, "header": header, "expires_in": expires_in, "mode": mode,
    });
    python(&["sign"], &req.to_string())
}

/// The seed and a client credentials app authenticating with `keys`.
async fn key_app(app: &TestApp, keys: ClientKeys) -> String {
    admin::register_key_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        new_app(&app.org("acme-studio").await),
        keys,
    )
    .await
    .unwrap()
    .client_id
}

fn new_app(org: &gatehouse_core::model::Org) -> NewApp<'_> {
    NewApp {
        org,
        name: "Key sync",
        description: None,
        grant: GrantType::ClientCredentials,
        on_behalf_of: Some("dev@acme.test"),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        scopes: "cfgateway",
        default_scopes: None,
        audience: None,
        exchange_audiences: vec![],
    }
}

/// The server's clock is fixed at its start; assertions carry the real time
/// (authlib's `iat`). Brings the server up to it (never back), so a slow
/// machine's keygen does not make `iat` look like the future.
fn catch_up(app: &TestApp) {
    let lag = SystemClock.now() - app.clock.now();
    if lag > 0 {
        app.clock.advance(lag);
    }
}

async fn with_assertion(
    app: &TestApp,
    path: &str,
    client_assertion: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", client_assertion),
    ];
    form.extend_from_slice(extra);
    catch_up(app);
    let resp = app
        .http
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn token(app: &TestApp, client_assertion: &str) -> (u16, Value) {
    with_assertion(
        app,
        "/connect/token",
        client_assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// Asserts a 401 `invalid_client` whose description contains `why`.
fn refused(got: (u16, Value), why: &str) {
    let (status, body) = got;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains(why), "expected `{why}` in: {d}");
}

#[tokio::test]
async fn authlib_assertions_get_tokens_and_work_at_introspection_and_revocation() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    for alg in ["ES256", "RS256", "PS256", "EdDSA"] {
        let key = keygen(alg, &format!("{alg}-1"));
        let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&key]))).await;
        // Both audiences a client may use: the token endpoint, and the issuer.
        let at_token = assertion(&key, &client_id, &app.url("/connect/token"), json!({}));
        let (status, body) = token(&app, &at_token).await;
        assert_eq!(status, 200, "{alg}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        let access = body["access_token"].as_str().unwrap().to_owned();
        let at_issuer = assertion(&key, &client_id, &app.base, json!({}));
        assert_eq!(token(&app, &at_issuer).await.0, 200, "{alg}: aud = issuer");
        // `aud` as an array holding the token endpoint; client_id sent too.
        let listed = assertion(
            &key,
            &client_id,
            "ignored",
            json!({"aud": [app.url("/connect/token")]}),
        );
        let (status, body) = with_assertion(
            &app,
            "/connect/token",
            &listed,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
            ],
        )
        .await;
        assert_eq!(status, 200, "{alg}: aud array: {body}");
        // The token is live to its API, and the app may introspect and revoke it
        // with assertions too.
        let live = app.introspect((&api.client_id, &api.secret), &access).await;
        assert_eq!(live["active"], true, "{live}");
        assert!(live.get("csid").is_none(), "no secret named: {live}");
        let a = assertion(&key, &client_id, &app.url("/connect/token"), json!({}));
        let (status, mine) =
            with_assertion(&app, "/connect/introspect", &a, &[("token", &access)]).await;
        assert_eq!(status, 200, "{mine}");
        assert_eq!(mine["active"], true, "{mine}");
        let a = assertion(&key, &client_id, &app.url("/connect/token"), json!({}));
        let (status, _) =
            with_assertion(&app, "/connect/revocation", &a, &[("token", &access)]).await;
        assert_eq!(status, 200);
        let gone = app.introspect((&api.client_id, &api.secret), &access).await;
        assert_eq!(gone["active"], false, "{alg}: revoked: {gone}");
    }
}

#[tokio::test]
async fn forged_replayed_and_misaddressed_assertions_are_invalid_client() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let key = keygen("ES256", "k1");
    let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&key]))).await;
    let other_key = keygen("ES256", "k1");
    let other_id = key_app(&app, ClientKeys::Jwks(jwks(&[&other_key]))).await;
    let aud = app.url("/connect/token");

    // Replay: the same assertion twice.
    let once = assertion(&key, &client_id, &aud, json!({}));
    assert_eq!(token(&app, &once).await.0, 200);
    refused(token(&app, &once).await, "used before");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another audience",
            assertion(&key, &client_id, "https://other.example/token", json!({})),
            "`aud` must be the issuer or the token endpoint",
        ),
        (
            "iss ≠ sub",
            assertion(&key, &client_id, &aud, json!({"iss": other_id})),
            "`iss` must be the client id",
        ),
        (
            "exp an hour away (authlib's default)",
            sign(
                &key,
                &client_id,
                &aud,
                json!({}),
                json!({}),
                3600,
                "authlib",
            ),
            "more than 300 seconds away",
        ),
        (
            "expired",
            assertion(&key, &client_id, &aud, json!({"exp": app.clock.now() - 5})),
            "expired",
        ),
        (
            "not yet valid",
            assertion(
                &key,
                &client_id,
                &aud,
                json!({"nbf": app.clock.now() + 200}),
            ),
            "`nbf` is in the future",
        ),
        (
            "no jti",
            assertion(&key, &client_id, &aud, json!({"jti": null})),
            "`jti`",
        ),
        (
            "alg none",
            sign(&key, &client_id, &aud, json!({}), json!({}), 120, "none"),
            "algorithm is not accepted",
        ),
        (
            "HS256 keyed with the public key",
            sign(&key, &client_id, &aud, json!({}), json!({}), 120, "hmac"),
            "algorithm is not accepted",
        ),
        (
            "a key not in the app's JWKS (same kid)",
            assertion(&other_key, &client_id, &aud, json!({})),
            "signature does not verify",
        ),
        (
            "an unknown kid",
            sign(
                &key,
                &client_id,
                &aud,
                json!({}),
                json!({"kid": "k9"}),
                120,
                "authlib",
            ),
            "no key of the app's JWKS matches",
        ),
    ];
    for (what, a, why) in cases {
        let got = token(&app, &a).await;
        assert!(
            !got.1
                .to_string()
                .contains(key.private["d"].as_str().unwrap()),
            "{what}: no key material in errors"
        );
        println!("{what}");
        refused(got, why);
    }

    // App A's assertion presented as app B (client_id B in the body): B's keys
    // do not verify it; and where B has the very same key, its iss and sub
    // still name A.
    let as_b = |a: String, b: String| {
        let app = &app;
        async move {
            with_assertion(
                app,
                "/connect/token",
                &a,
                &[("grant_type", "client_credentials"), ("client_id", &b)],
            )
            .await
        }
    };
    let a_for_a = assertion(&key, &client_id, &aud, json!({}));
    refused(
        as_b(a_for_a, other_id.clone()).await,
        "signature does not verify",
    );
    let twin_id = key_app(&app, ClientKeys::Jwks(jwks(&[&key]))).await;
    let a_for_a = assertion(&key, &client_id, &aud, json!({}));
    refused(
        as_b(a_for_a.clone(), twin_id).await,
        "`iss` must be the client id",
    );
    // Refused there, it was not spent: A may still use it.
    assert_eq!(token(&app, &a_for_a).await.0, 200);
    // A key app has no secret: Basic and client_secret_post are refused,
    // whatever is presented, and saying why.
    let resp = app
        .token_form(
            Some((&client_id, "anything")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("private_key_jwt"),
        "{body}"
    );
    // Both methods at once is a malformed request.
    let resp = app
        .http
        .post(app.url("/connect/token"))
        .basic_auth(&client_id, Some("x"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            (
                "client_assertion",
                &assertion(&key, &client_id, &aud, json!({})),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A secret app cannot be entered with an assertion.
    let secret_app = app.app("dev@acme.test", "cfgateway", None, None).await;
    refused(
        token(
            &app,
            &assertion(&key, &secret_app.client_id, &aud, json!({})),
        )
        .await,
        "authenticates with its client secret",
    );
    // An unsupported assertion type.
    let resp = app
        .http
        .post(app.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", "x"),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn failed_assertions_are_throttled_like_wrong_secrets() {
    let app = TestApp::spawn_with(
        |c| {
            c.failures_per_client = 3;
        },
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    let key = keygen("EdDSA", "k1");
    let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&key]))).await;
    let bad = assertion(&key, &client_id, "https://elsewhere.example", json!({}));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(token(&app, &bad).await.0);
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");
    // Verify before throttling: a right assertion still works.
    let good = assertion(&key, &client_id, &app.url("/connect/token"), json!({}));
    assert_eq!(token(&app, &good).await.0, 200);
}

#[tokio::test]
async fn changing_the_keys_takes_effect_at_once_and_secrets_cannot_be_added() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let old = keygen("ES256", "old");
    let new = keygen("ES256", "new");
    let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&old]))).await;
    let aud = app.url("/connect/token");
    assert_eq!(
        token(&app, &assertion(&old, &client_id, &aud, json!({})))
            .await
            .0,
        200
    );
    admin::set_client_keys(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        &client_id,
        ClientKeys::Jwks(jwks(&[&new])),
    )
    .await
    .unwrap();
    refused(
        token(&app, &assertion(&old, &client_id, &aud, json!({}))).await,
        "signature does not verify",
    );
    assert_eq!(
        token(&app, &assertion(&new, &client_id, &aud, json!({})))
            .await
            .0,
        200
    );
    // No secret to rotate or add.
    let op = Actor::operator();
    let now = SystemClock.now();
    assert!(matches!(
        admin::rotate_secret(app.s(), now, &op, &client_id).await,
        Err(AdminError::Conflict(_))
    ));
    assert!(matches!(
        admin::add_secret(app.s(), now, &op, &client_id, None).await,
        Err(AdminError::Conflict(_))
    ));
    assert!(app.s().app_secrets(&client_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn registration_refuses_private_keys_and_private_jwks_uris() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let key = keygen("RS256", "k1");
    let org = app.org("acme-studio").await;
    let now = SystemClock.now();
    let operator = Actor::operator();
    let register = |keys: ClientKeys| {
        admin::register_key_app(app.s(), now, &app.policy, &operator, new_app(&org), keys)
    };
    let field = |r: Result<_, AdminError>| match r {
        Err(AdminError::Invalid { field, message }) => format!("{field}: {message}"),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let private = json!({"keys": [key.private]}).to_string();
    assert!(field(register(ClientKeys::Jwks(private)).await).contains("private key material"));
    assert!(field(register(ClientKeys::Jwks("{}".into())).await).starts_with("jwks:"));
    for uri in [
        "http://127.0.0.1:9/jwks.json",
        "https://127.0.0.1/jwks.json",
        "https://localhost/jwks.json",
        "https://metadata.internal/jwks.json",
        "https://no-such-name.acme.test/jwks.json",
    ] {
        let why = field(register(ClientKeys::JwksUri(uri.into())).await);
        assert!(why.starts_with("jwks_uri:"), "{uri}: {why}");
    }
    // A name that resolves only to loopback or private addresses: the redirect
    // policy's own DNS check (its tests cover every range).
    let dns = gatehouse_testdns::TestDns::start(&[
        ("loop.test.example", "127.0.0.1".parse().unwrap()),
        ("ten.test.example", "10.1.2.3".parse().unwrap()),
    ])
    .await;
    let policy = gatehouse_server::dns::redirect_policy(false, Some(dns.addr())).unwrap();
    for uri in [
        "https://loop.test.example/jwks",
        "https://ten.test.example/jwks",
    ] {
        let r = admin::register_key_app(
            app.s(),
            now,
            &policy,
            &Actor::operator(),
            new_app(&org),
            ClientKeys::JwksUri(uri.into()),
        )
        .await;
        assert!(field(r).contains("resolves only to private"), "{uri}");
    }
    // The admin API says the same, as a 422 naming the field.
    let admin = crate::admin_api::admin_in(&app, "acme-studio", "root@acme.test").await;
    let resp = app
        .http
        .post(app.url("/api/v1/apps"))
        .bearer_auth(&admin.token)
        .json(&json!({"grant_type": "client_credentials", "name": "K", "on_behalf_of": "dev@acme.test",
            "scopes": ["cfgateway"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "http://127.0.0.1:9/jwks.json"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "jwks_uri", "{body}");
    // And registers a key app with an inline JWKS: no secret at all.
    let resp = app
        .http
        .post(app.url("/api/v1/apps"))
        .bearer_auth(&admin.token)
        .json(&json!({"grant_type": "client_credentials", "name": "K", "on_behalf_of": "dev@acme.test",
            "scopes": ["cfgateway"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(body["jwks"]["keys"][0]["n"], key.public["n"]);
    let id = body["client_id"].as_str().unwrap();
    let a = assertion(&key, id, &app.url("/connect/token"), json!({}));
    assert_eq!(token(&app, &a).await.0, 200);
}

/// A JWKS served over HTTP on loopback, counting its fetches.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<String>>,
    fetches: Arc<Mutex<u32>>,
}

async fn jwks_server(doc: String) -> JwksServer {
    let doc = Arc::new(Mutex::new(doc));
    let fetches = Arc::new(Mutex::new(0u32));
    let (d, f) = (doc.clone(), fetches.clone());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (d, f) = (d.clone(), f.clone());
            async move {
                *f.lock().unwrap() += 1;
                let body = d.lock().unwrap().clone();
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    JwksServer { url, doc, fetches }
}

#[tokio::test]
async fn a_new_kid_at_the_jwks_uri_is_fetched_at_most_once_a_minute() {
    // Loopback URIs are accepted in development mode only (as redirect URIs).
    let app = TestApp::spawn_with(|c| c.dev = true, SqliteOptions::default()).await;
    app.seed().await;
    let k1 = keygen("ES256", "k1");
    let k2 = keygen("ES256", "k2");
    let server = jwks_server(jwks(&[&k1])).await;
    let client_id = key_app(&app, ClientKeys::JwksUri(server.url.clone())).await;
    let aud = app.url("/connect/token");
    let with_kid = |k: &Key, kid: &str| {
        sign(
            k,
            &client_id,
            &aud,
            json!({}),
            json!({"kid": kid}),
            120,
            "authlib",
        )
    };
    assert_eq!(token(&app, &with_kid(&k1, "k1")).await.0, 200);
    assert_eq!(token(&app, &with_kid(&k1, "k1")).await.0, 200);
    assert_eq!(*server.fetches.lock().unwrap(), 1, "cached after one fetch");
    // The app rotates: k2 published. Its first fetch was just now, so an
    // unknown kid does not refetch yet…
    *server.doc.lock().unwrap() = jwks(&[&k2]);
    refused(
        token(&app, &with_kid(&k2, "k2")).await,
        "no key of the app's JWKS",
    );
    assert_eq!(*server.fetches.lock().unwrap(), 1);
    // …a minute later it does, once, and k2 works; k1 is gone with the document.
    app.clock.advance(61);
    assert_eq!(token(&app, &with_kid(&k2, "k2")).await.0, 200);
    assert_eq!(*server.fetches.lock().unwrap(), 2);
    refused(
        token(&app, &with_kid(&k1, "k1")).await,
        "no key of the app's JWKS",
    );
    assert_eq!(
        *server.fetches.lock().unwrap(),
        2,
        "no refetch within the minute"
    );
}

#[tokio::test]
async fn discovery_lists_private_key_jwt_and_its_algorithms() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for m in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert!(
            doc[m]
                .as_array()
                .unwrap()
                .contains(&"private_key_jwt".into()),
            "{m}"
        );
    }
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
}

/// The speed goal, roughly: client credentials with `private_key_jwt`
/// against the same with a secret, in one run, 16 requests at a time. Run with
/// `cargo test --release -p gatehouse-server --test api -- --ignored
/// private_key_jwt_speed --nocapture` (a debug build's figures mean little).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn private_key_jwt_speed() {
    const N: usize = 4000;
    let app = TestApp::spawn().await;
    app.seed().await;
    let secret_app = app.app("dev@acme.test", "cfgateway", None, None).await;
    let key = keygen("ES256", "k1");
    let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&key]))).await;
    let req = json!({"key": key.private, "client_id": client_id, "aud": app.url("/connect/token"),
        "alg": "ES256", "claims": {}, "header": {"kid": "k1"}, "expires_in": 290, "mode": "authlib"});
    let assertions: Vec<String> = python(&["batch", &N.to_string()], &req.to_string())
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(assertions.len(), N);
    catch_up(&app);
    let run = |forms: Vec<Vec<(String, String)>>, basic: Option<(String, String)>| {
        let http = app.http.clone();
        let url = app.url("/connect/token");
        async move {
            let start = std::time::Instant::now();
            let forms = Arc::new(Mutex::new(forms));
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (http, url, forms, basic) =
                    (http.clone(), url.clone(), forms.clone(), basic.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let Some(form) = forms.lock().unwrap().pop() else {
                            break;
                        };
                        let mut r = http.post(&url).form(&form);
                        if let Some((id, s)) = &basic {
                            r = r.basic_auth(id, Some(s));
                        }
                        let resp = r.send().await.unwrap();
                        assert_eq!(resp.status(), 200);
                        let _ = resp.bytes().await;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            N as f64 / start.elapsed().as_secs_f64()
        }
    };
    let cc = || vec![("grant_type".to_owned(), "client_credentials".to_owned())];
    let secret_forms = (0..N).map(|_| cc()).collect();
    let basic = Some((secret_app.client_id.clone(), secret_app.secret.clone()));
    let with_secret = run(secret_forms, basic).await;
    let key_forms = assertions
        .into_iter()
        .map(|a| {
            let mut f = cc();
            f.push(("client_assertion_type".into(), ASSERTION_TYPE.into()));
            f.push(("client_assertion".into(), a));
            f
        })
        .collect();
    let with_key = run(key_forms, None).await;
    println!(
        "client_credentials: secret {with_secret:.0}/s, private_key_jwt (ES256) {with_key:.0}/s, ratio {:.2}",
        with_key / with_secret
    );
}

#[tokio::test]
async fn a_pushed_authorization_request_authenticates_with_an_assertion() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let key = keygen("ES256", "k1");
    let org = app.org("acme-studio").await;
    let web = admin::register_key_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        NewApp {
            grant: GrantType::AuthorizationCode,
            on_behalf_of: None,
            redirect_uris: vec![crate::helpers::CALLBACK.into()],
            scopes: "cfgateway openid",
            ..new_app(&org)
        },
        ClientKeys::Jwks(jwks(&[&key])),
    )
    .await
    .unwrap();
    let params = crate::helpers::authorize_params(&crate::helpers::WebApp {
        client_id: web.client_id.clone(),
        secret: String::new(),
    })
    .set("scope", "cfgateway openid");
    let a = assertion(&key, &web.client_id, &app.url("/connect/token"), json!({}));
    let mut form: Vec<(&str, &str)> = params.pairs();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", &a));
    catch_up(&app);
    let resp = app
        .http
        .post(app.url("/connect/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // The same assertion again is a replay.
    let resp = app
        .http
        .post(app.url("/connect/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// What the console page's element `id` holds, as the person copies it.
fn snippet(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("<pre id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let code = &page[start..];
    let code = &code[code.find("<code>").unwrap() + "<code>".len()..code.find("</code>").unwrap()];
    code.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
}

/// "Getting started" for a key app names no secret: its commands, copied and
/// run as the console prints them (the recipe signs with authlib, from a PEM
/// file), get a token, and the same commands run again get another.
#[tokio::test]
async fn getting_started_commands_of_a_key_app_get_a_token_as_printed() {
    let (app, _) = crate::console::setup().await;
    let key = keygen("ES256", "gs-1");
    let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&key]))).await;
    let c = crate::console::Console::sign_in(&app, "admin@acme.test").await;
    let page = c.page(&format!("/console/apps/{client_id}")).await;
    assert!(!page.contains("CLIENT_SECRET"), "{page}");
    assert!(
        !page.contains("gs-token-basic"),
        "no Basic without a secret"
    );
    let recipe = snippet(&page, "gs-assertion");
    let request = snippet(&page, "gs-token");
    assert!(request.contains("$CLIENT_ASSERTION"), "{request}");

    let dir = tempfile::tempdir().unwrap();
    let pem = Command::new("python3")
        .args([
            "-c",
            "import json, sys; from joserfc.jwk import ECKey; \
             print(ECKey.import_key(json.loads(sys.argv[1])).as_pem(private=True).decode())",
            &key.private.to_string(),
        ])
        .output()
        .unwrap();
    assert!(pem.status.success(), "{pem:?}");
    std::fs::write(dir.path().join("private-key.pem"), &pem.stdout).unwrap();
    catch_up(&app);
    for round in 0..2 {
        // Off the runtime's thread: the server answering curl runs on it.
        let (cwd, script) = (
            dir.path().to_owned(),
            format!("set -e\n{recipe}\n{request} --silent"),
        );
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .current_dir(cwd)
                .args(["-c", &script])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {body} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert!(v["access_token"].is_string(), "round {round}: {v}");
    }
}

/// The console replaces a key app's keys (audited, at once); a private key,
/// a loopback URL, both fields or neither are refused on the form, changing
/// nothing; an app with a secret has no keys to replace.
#[tokio::test]
async fn the_console_replaces_a_key_apps_keys_and_refuses_bad_ones() {
    let (app, _) = crate::console::setup().await;
    let secret_app = app.app("dev@acme.test", "cfgateway", None, None).await;
    let old = keygen("ES256", "old");
    let new = keygen("EdDSA", "new");
    let client_id = key_app(&app, ClientKeys::Jwks(jwks(&[&old]))).await;
    let c = crate::console::Console::sign_in(&app, "admin@acme.test").await;
    let page_path = format!("/console/apps/{client_id}");
    let keys_path = format!("{page_path}/keys");
    let private = json!({"keys": [old.private.clone()]}).to_string();
    let both = jwks(&[&new]);
    for (fields, why) in [
        (vec![("jwks", private.as_str())], "private"),
        (vec![("jwks", "{not json")], "JSON"),
        (
            vec![("jwks_uri", "https://127.0.0.1/jwks.json")],
            "jwks_uri",
        ),
        (
            vec![
                ("jwks", both.as_str()),
                ("jwks_uri", "https://keys.example.com/jwks"),
            ],
            "not both",
        ),
        (vec![("jwks", " ")], "public keys"),
    ] {
        let resp = c.post(&keys_path, &page_path, &fields).await;
        assert_eq!(resp.status(), 422, "{why}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("field-error"), "{why}: {html}");
    }
    let aud = app.url("/connect/token");
    catch_up(&app);
    assert_eq!(
        token(&app, &assertion(&old, &client_id, &aud, json!({})))
            .await
            .0,
        200
    );

    let resp = c
        .post(&keys_path, &page_path, &[("jwks", &jwks(&[&new]))])
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("{page_path}?done=keys").as_str()
    );
    refused(
        token(&app, &assertion(&old, &client_id, &aud, json!({}))).await,
        "no key of the app's JWKS matches",
    );
    assert_eq!(
        token(&app, &assertion(&new, &client_id, &aud, json!({})))
            .await
            .0,
        200
    );
    let audit = c.page("/console/audit").await;
    assert!(audit.contains("set the public keys of"), "{audit}");

    // An app with a secret: refused, its secret untouched.
    let resp = c
        .post(
            &format!("/console/apps/{}/keys", secret_app.client_id),
            &format!("/console/apps/{}", secret_app.client_id),
            &[("jwks", &jwks(&[&new]))],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("client secret"));
    let unchanged = app
        .s()
        .app_by_client_id(&secret_app.client_id)
        .await
        .unwrap();
    assert!(unchanged.client_keys.is_none());
    app.token(&secret_app, &[]).await;
}
