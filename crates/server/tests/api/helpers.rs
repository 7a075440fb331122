//! `TestApp`: the real server on a free loopback port over a real SQLite file in a
//! temporary directory, plus fixtures made through the same admin rules the CLI uses.
//!
//! With `GATEHOUSE_TEST_BACKEND=postgres` the same tests run on PostgreSQL instead
//! (`TEST_DATABASE_URL`, default the machine's `test` database), each in a schema of
//! its own, dropped afterwards; `.ci/run` runs the suite both ways.

use std::sync::Arc;

use gatehouse_core::admin::{self, NewApi, NewApp, NewUser};
use gatehouse_core::clock::{Clock, FixedClock, SystemClock};
use gatehouse_core::jose::KeyEncryptionKey;
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::model::{Actor, Org};
use gatehouse_core::model::{GrantType, SigningAlg, TokenFormat};
use gatehouse_core::ports::Store;
use gatehouse_core::redirect_uri::RedirectPolicy;
use gatehouse_server::{AppState, ServerConfig};
use gatehouse_store_sql::{PgOptions, PgStore, SqliteOptions, SqliteStore};
use gatehouse_testdns::TestDns;
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    /// The SQLite store, for tests that reach under the store (on SQLite runs only).
    pub sqlite: Option<SqliteStore>,
    pub db_url: String,
    pg_schema: Option<(String, String)>,
    pub http: reqwest::Client,
    /// The server's clock: real time until a test moves it.
    pub clock: Arc<FixedClock>,
    /// The server's redirect-URI policy (same DNS server, same dev flag), for
    /// fixtures registered straight through the admin rules.
    pub policy: RedirectPolicy,
    /// The key that seals the signing keys (for rotating or revoking them).
    pub kek: Arc<KeyEncryptionKey>,
    /// The server's state, to observe how far it has read the change feed.
    pub state: AppState,
    /// The DNS server redirect-URI hosts are looked up on ([`DNS_RECORDS`]).
    _dns: TestDns,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub struct Client {
    pub client_id: String,
    pub secret: String,
    pub user_id: String,
}

pub struct ApiCreds {
    pub audience: String,
    pub client_id: String,
    pub secret: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}, SqliteOptions::default()).await
    }

    pub async fn spawn_with(
        tune: impl FnOnce(&mut ServerConfig),
        sqlite: SqliteOptions,
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (store, sqlite, db_url, pg_schema): (Arc<dyn Store>, _, _, _) = if on_postgres() {
            let url = std::env::var("TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let schema = format!(
                "gh_api_{}",
                gatehouse_core::secret::random_id().replace('-', "")[..16].to_owned()
            );
            let opts = PgOptions {
                schema: Some(schema.clone()),
                max_connections: 4,
                ..PgOptions::default()
            };
            let store = PgStore::open(&url, opts).await.unwrap();
            (Arc::new(store), None, url.clone(), Some((url, schema)))
        } else {
            let db_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
            let store = SqliteStore::open(&db_url, sqlite).await.unwrap();
            (Arc::new(store.clone()), Some(store), db_url, None)
        };
        let kek = KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).unwrap();
        let keys = KeyRing::load_or_create(store.as_ref(), &kek, SystemClock.now())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let dns = TestDns::start(DNS_RECORDS).await;
        let mut config = ServerConfig::new(&base);
        config.dns_server = Some(dns.addr());
        tune(&mut config);
        let policy = gatehouse_server::dns::redirect_policy(config.dev, config.dns_server).unwrap();
        let clock = Arc::new(FixedClock::at(SystemClock.now()));
        let kek = Arc::new(kek);
        let state = AppState::start(store.clone(), keys, kek.clone(), clock.clone(), config).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gatehouse_server::serve(
            listener,
            state.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        TestApp {
            base,
            store,
            sqlite,
            db_url,
            pg_schema,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            policy,
            kek,
            state,
            _dns: dns,
            _dir: dir,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn s(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The organization `slug`, as the admin core's operations take it.
    pub async fn org(&self, slug: &str) -> Org {
        admin::org(self.s(), &Actor::operator(), slug)
            .await
            .unwrap()
    }

    /// The id of the user with this email.
    pub async fn user_id(&self, email: &str) -> String {
        self.user_by_email(email).await.unwrap().id
    }

    /// The one user with this email (emails are unique per organization; the
    /// fixtures that use this have it in one organization only).
    pub async fn user_by_email(
        &self,
        email: &str,
    ) -> Result<gatehouse_core::model::User, gatehouse_core::ports::StoreError> {
        let mut found = self.store.users_by_email(email, 2).await?;
        match found.len() {
            0 => Err(gatehouse_core::ports::StoreError::NotFound),
            1 => Ok(found.remove(0)),
            _ => panic!("`{email}` is in several organizations"),
        }
    }

    /// An org `acme-studio`, a developer, and an ES256 JWT API for `cfgateway products:read`.
    pub async fn seed(&self) -> (ApiCreds, String) {
        let now = SystemClock.now();
        admin::create_org(self.s(), now, &Actor::operator(), "Acme Studio", None)
            .await
            .unwrap();
        let user = admin::create_user(
            self.s(),
            now,
            &Actor::operator(),
            NewUser {
                org: &self.org("acme-studio").await,
                email: "dev@acme.test",
                name: None,
                role: "developer",
                groups: vec!["ops".into()],
                password: None,
                profile: Default::default(),
            },
        )
        .await
        .unwrap();
        let api = self
            .api(
                "https://gateway.acme.test",
                "cfgateway products:read",
                TokenFormat::Jwt,
                SigningAlg::ES256,
            )
            .await;
        (api, user.id)
    }

    pub async fn api(
        &self,
        audience: &str,
        scopes: &str,
        token_format: TokenFormat,
        signing_alg: SigningAlg,
    ) -> ApiCreds {
        let (api, secret) = admin::create_api(
            self.s(),
            SystemClock.now(),
            &Actor::operator(),
            NewApi {
                org: &self.org("acme-studio").await,
                name: "Gateway",
                audience,
                scopes,
                token_format,
                signing_alg,
                access_token_ttl: 3600,
            },
        )
        .await
        .unwrap();
        ApiCreds {
            audience: api.audience,
            client_id: api.client_id,
            secret: secret.expose().to_owned(),
        }
    }

    pub async fn user(&self, email: &str, role: &str) -> String {
        admin::create_user(
            self.s(),
            SystemClock.now(),
            &Actor::operator(),
            NewUser {
                org: &self.org("acme-studio").await,
                email,
                name: None,
                role,
                groups: vec![],
                password: None,
                profile: Default::default(),
            },
        )
        .await
        .unwrap()
        .id
    }

    /// A client credentials app acting for `on_behalf` with the given scopes.
    pub async fn app(
        &self,
        on_behalf: &str,
        scopes: &str,
        default_scopes: Option<&str>,
        audience: Option<&str>,
    ) -> Client {
        let (app, secret) = admin::register_app(
            self.s(),
            SystemClock.now(),
            &self.policy,
            &Actor::operator(),
            NewApp {
                org: &self.org("acme-studio").await,
                name: "Nightly sync",
                description: None,
                grant: GrantType::ClientCredentials,
                on_behalf_of: Some(on_behalf),
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                scopes,
                default_scopes,
                audience,
                exchange_audiences: vec![],
            },
        )
        .await
        .unwrap();
        let user_id = app.on_behalf_of.clone().unwrap();
        Client {
            client_id: app.client_id,
            secret: secret.expose().to_owned(),
            user_id,
        }
    }

    /// POST a raw form to the token endpoint.
    pub async fn token_form(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url("/connect/token")).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// A client credentials token, or panic with the error body.
    pub async fn token(&self, c: &Client, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let resp = self
            .token_form(Some((&c.client_id, &c.secret)), &form)
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn introspect(&self, who: (&str, &str), token: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/connect/introspect"))
            .basic_auth(who.0, Some(who.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

impl TestApp {
    /// Waits until the server has read the change feed up to the store's newest
    /// change: a write made under the server (as the CLI or another instance would
    /// make it) has then reached its caches. On SQLite the watcher or the next
    /// request reads the feed; on PostgreSQL it is NOTIFY plus a 10 ms poll.
    pub async fn caught_up(&self) {
        let latest = self.store.latest_change().await.unwrap();
        let mut seen = self.state.clients.watch_seq();
        tokio::time::timeout(DEADLINE, seen.wait_for(|s| *s >= latest))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server's change cursor never reached the store's latest change {latest}"
                )
            })
            .unwrap();
    }
}

/// How long a test waits for a condition before it fails: far beyond any normal
/// delay, so a slow shared machine does not make a test flaky.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Polls `cond` every few milliseconds until it holds; panics naming `what` when it
/// does not within [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !cond().await {
        assert!(start.elapsed() < DEADLINE, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// What the tests' DNS server knows: the web app's host resolves to a public
/// address (nothing connects to it; the redirect-URI policy only looks it up).
pub const DNS_RECORDS: &[(&str, std::net::IpAddr)] = &[(
    "sync.acme.test",
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(93, 184, 215, 14)),
)];

/// The password every web-flow test user signs in with.
pub const PASSWORD: &str = "correct horse battery";
/// The web app's registered redirect URI and post-logout redirect URI.
pub const CALLBACK: &str = "https://sync.acme.test/callback";
pub const BYE: &str = "https://sync.acme.test/bye";
/// A fixed PKCE verifier (43 unreserved characters) for the raw HTTP tests.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// An authorization code app (it may also refresh).
pub struct WebApp {
    pub client_id: String,
    pub secret: String,
}

impl TestApp {
    /// A user of `acme-studio` who signs in with [`PASSWORD`].
    pub async fn password_user(&self, email: &str, role: &str) -> String {
        admin::create_user(
            self.s(),
            SystemClock.now(),
            &Actor::operator(),
            NewUser {
                org: &self.org("acme-studio").await,
                email,
                name: Some("Ana Lima"),
                role,
                groups: vec![],
                password: Some(PASSWORD),
                profile: Default::default(),
            },
        )
        .await
        .unwrap()
        .id
    }

    /// An authorization code app "Studio sync" redirecting to [`CALLBACK`].
    pub async fn web_app(&self, scopes: &str) -> WebApp {
        let (app, secret) = admin::register_app(
            self.s(),
            SystemClock.now(),
            &self.policy,
            &Actor::operator(),
            NewApp {
                org: &self.org("acme-studio").await,
                name: "Studio sync",
                description: Some("Keeps the studio in sync."),
                grant: GrantType::AuthorizationCode,
                on_behalf_of: None,
                redirect_uris: vec![CALLBACK.into()],
                post_logout_redirect_uris: vec![BYE.into()],
                scopes,
                default_scopes: None,
                audience: None,
                exchange_audiences: vec![],
            },
        )
        .await
        .unwrap();
        WebApp {
            client_id: app.client_id,
            secret: secret.expose().to_owned(),
        }
    }

    /// The seed, a developer `ana@acme.test` with a password (returned: her id), and
    /// a web app allowed `cfgateway`.
    pub async fn web_setup() -> (TestApp, WebApp, String) {
        let app = TestApp::spawn().await;
        app.seed().await;
        let user = app.password_user("ana@acme.test", "developer").await;
        let web = app.web_app("cfgateway").await;
        (app, web, user)
    }

    /// POST to the token endpoint as `web` (client_secret_basic).
    pub async fn web_token(&self, web: &WebApp, form: &Params) -> reqwest::Response {
        self.token_form(Some((&web.client_id, &web.secret)), &form.pairs())
            .await
    }
}

/// Request parameters in order, where setting a name again replaces its value.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, k: &str, v: &str) -> Self {
        match self.0.iter_mut().find(|(n, _)| n == k) {
            Some(p) => p.1 = v.to_owned(),
            None => self.0.push((k.to_owned(), v.to_owned())),
        }
        self
    }

    pub fn without(mut self, k: &str) -> Self {
        self.0.retain(|(n, _)| n != k);
        self
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    pub fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0.iter())
            .finish()
    }
}

/// The S256 challenge of [`VERIFIER`].
pub fn challenge() -> String {
    oauth2::PkceCodeChallenge::from_code_verifier_sha256(&oauth2::PkceCodeVerifier::new(
        VERIFIER.into(),
    ))
    .as_str()
    .to_owned()
}

/// A complete authorization request: `cfgateway offline_access openid`, state,
/// nonce and a PKCE S256 challenge of [`VERIFIER`].
pub fn authorize_params(web: &WebApp) -> Params {
    Params::new()
        .set("client_id", &web.client_id)
        .set("redirect_uri", CALLBACK)
        .set("scope", "cfgateway offline_access openid")
        .set("response_type", "code")
        .set("state", "st-8f2a")
        .set("nonce", "n-0S6_WzA2Mj")
        .set("code_challenge", &challenge())
        .set("code_challenge_method", "S256")
}

/// The token request that redeems `code` obtained with [`authorize_params`].
pub fn code_params(code: &str) -> Params {
    Params::new()
        .set("grant_type", "authorization_code")
        .set("code", code)
        .set("redirect_uri", CALLBACK)
        .set("code_verifier", VERIFIER)
}

pub fn refresh_params(refresh_token: &str) -> Params {
    Params::new()
        .set("grant_type", "refresh_token")
        .set("refresh_token", refresh_token)
}

/// oauth2's (and openidconnect's) HTTP client interface over reqwest 0.13.
pub async fn send(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = req.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    Ok(out
        .body(resp.bytes().await?.to_vec())
        .expect("valid response"))
}

/// Asserts an RFC 6749 §5.2 error reply: status and `error`; pins the whole body.
pub async fn oauth_error(resp: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    pin_error(&body);
    body
}

/// Pins an error body: a snapshot in `tests/api/snapshots/` named after the running
/// test (`-2`, `-3`… for its later errors). What differs per request is redacted:
/// the `request_id` / `correlation_id` members, wherever their values are quoted,
/// and any other UUID. A changed description or a new member fails the test.
pub fn pin_error(body: &Value) {
    let mut ids: Vec<String> = ["request_id", "correlation_id"]
        .iter()
        .filter_map(|k| body.get(k)?.as_str().map(str::to_owned))
        .collect();
    ids.retain(|id| !id.is_empty());
    let redacted = redact(body, &ids);
    let name = snapshot_name();
    snapshot_settings().bind(|| insta::assert_json_snapshot!(name, redacted));
}

/// Pins the text a person reads on an error page, as [`pin_error`] pins a body.
pub fn pin_text(text: &str) {
    let text = redact_uuids(text);
    let name = snapshot_name();
    snapshot_settings().bind(|| insta::assert_snapshot!(name, text));
}

fn redact(v: &Value, ids: &[String]) -> Value {
    match v {
        Value::String(s) => {
            let s = ids.iter().fold(s.clone(), |s, id| s.replace(id, "[id]"));
            Value::String(redact_uuids(&s))
        }
        Value::Array(a) => a.iter().map(|v| redact(v, ids)).collect(),
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), redact(v, ids))).collect(),
        other => other.clone(),
    }
}

/// Replaces every UUID (the shape of every random id here) by `[id]`.
fn redact_uuids(s: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let is_uuid = |w: &[u8]| {
        let mut i = 0;
        SHAPE.iter().enumerate().all(|(n, len)| {
            let hex = w[i..i + len].iter().all(u8::is_ascii_hexdigit);
            i += len;
            let dash = n == 4 || w[i] == b'-';
            i += 1;
            hex && dash
        })
    };
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= 36 && is_uuid(&bytes[i..i + 36]) {
            out.push_str("[id]");
            i += 36;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // The test's path already says where the error comes from.
    settings.set_prepend_module_to_snapshot(false);
    // Member order is serde_json's: alphabetical, or insertion order when another
    // crate of the build turns on `preserve_order`. The snapshot must not depend
    // on which crates are built together.
    settings.set_sort_maps(true);
    settings
}

/// `connect__token__some_test`, then `connect__token__some_test-2`, … The test
/// harness names each test's thread after the test, and runs each test on a
/// thread of its own, so the count starts afresh for every test.
fn snapshot_name() -> String {
    thread_local! {
        static PINNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    let thread = std::thread::current();
    let test = thread
        .name()
        .filter(|n| n.contains("::"))
        .expect("errors are pinned on the test's own thread (named after the test)");
    let n = PINNED.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let base = test.replace("::", "__");
    if n == 1 { base } else { format!("{base}-{n}") }
}

impl TestApp {
    /// `GET /connect/userinfo` with `Authorization: Bearer {token}`.
    pub async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/connect/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `POST /connect/revocation` as `web`.
    pub async fn revoke(&self, web: &WebApp, token: &str, hint: Option<&str>) -> reqwest::Response {
        let mut form = vec![("token", token)];
        if let Some(h) = hint {
            form.push(("token_type_hint", h));
        }
        self.http
            .post(self.url("/connect/revocation"))
            .basic_auth(&web.client_id, Some(&web.secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

/// Are these tests running on PostgreSQL (`GATEHOUSE_TEST_BACKEND=postgres`)?
pub fn on_postgres() -> bool {
    std::env::var("GATEHOUSE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.pg_schema {
            // This runs on the test's runtime thread, so the server's background
            // tasks (housekeeping, key rotation) cannot finish a transaction they
            // are in the middle of: end the sessions holding locks in the schema
            // first, or the DROP would wait for them for ever.
            let terminate = format!(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                 JOIN pg_class c ON c.oid = l.relation \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = '{schema}' AND l.pid <> pg_backend_pid()"
            );
            let _ = std::process::Command::new("psql")
                .args([
                    url.as_str(),
                    "-q",
                    "-c",
                    "SET lock_timeout = '10s'",
                    "-c",
                    &terminate,
                    "-c",
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                ])
                .output();
        }
    }
}
