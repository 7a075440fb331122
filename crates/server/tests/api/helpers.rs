//! `TestApp`: the real server on a free loopback port over a real SQLite file in a
//! temporary directory, plus fixtures made through the same admin rules the CLI uses.

use std::sync::Arc;

use gatehouse_core::admin::{self, NewApi, NewApp, NewUser};
use gatehouse_core::clock::{Clock, FixedClock, SystemClock};
use gatehouse_core::jose::KeyEncryptionKey;
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::model::{GrantType, SigningAlg, TokenFormat};
use gatehouse_core::ports::Store;
use gatehouse_server::{AppState, ServerConfig};
use gatehouse_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub store: SqliteStore,
    pub db_url: String,
    pub http: reqwest::Client,
    /// The server's clock: real time until a test moves it.
    pub clock: Arc<FixedClock>,
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
        let db_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        let store = SqliteStore::open(&db_url, sqlite).await.unwrap();
        let kek = KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).unwrap();
        let keys = KeyRing::load_or_create(&store, &kek, SystemClock.now())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut config = ServerConfig::new(&base);
        tune(&mut config);
        let clock = Arc::new(FixedClock::at(SystemClock.now()));
        let state = AppState::start(Arc::new(store.clone()), keys, clock.clone(), config).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gatehouse_server::serve(listener, state, async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            store,
            db_url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            _dir: dir,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn s(&self) -> &dyn Store {
        &self.store
    }

    /// An org `acme-studio`, a developer, and an ES256 JWT API for `cfgateway products:read`.
    pub async fn seed(&self) -> (ApiCreds, String) {
        let now = SystemClock.now();
        admin::create_org(self.s(), now, "Acme Studio", None)
            .await
            .unwrap();
        let user = admin::create_user(
            self.s(),
            now,
            NewUser {
                org_slug: "acme-studio",
                email: "dev@acme.test",
                name: None,
                role: "developer",
                groups: vec!["ops".into()],
                password: None,
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
            NewApi {
                org_slug: "acme-studio",
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
            NewUser {
                org_slug: "acme-studio",
                email,
                name: None,
                role,
                groups: vec![],
                password: None,
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
            NewApp {
                org_slug: "acme-studio",
                name: "Nightly sync",
                description: None,
                grant: GrantType::ClientCredentials,
                on_behalf_of: Some(on_behalf),
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                scopes,
                default_scopes,
                audience,
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

/// Waits (briefly) for the change feed to reach the server's cache.
pub async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
}
