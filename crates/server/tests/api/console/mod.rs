//! The web console over real HTTP with a cookie-keeping client: sign-in, the
//! permission and organization walls, CSRF, the register form and its errors,
//! and the one-time secret.

mod apps;
mod audit;
mod csrf;
mod org_provider;
mod usage;
mod users;

use gatehouse_core::admin::{self, NewApp, NewUser};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::GrantType;
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp};

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Console {
    pub http: reqwest::Client,
    pub base: String,
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Console {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// GET a page that must answer 200; its HTML.
    pub async fn page(&self, path: &str) -> String {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.text().await.unwrap()
    }

    /// The CSRF token of the forms on `path`.
    pub async fn csrf(&self, path: &str) -> String {
        csrf_in(&self.page(path).await)
    }

    /// POST a form with the CSRF token of `form_page`.
    pub async fn post(
        &self,
        path: &str,
        form_page: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.csrf(form_page).await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.http
            .post(self.url(path))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_in(app: &TestApp, email: &str) -> Console {
        let c = Console::new(app);
        let resp = c
            .post(
                "/console/login",
                "/console",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in of {email}");
        assert_eq!(resp.headers()["location"], "/console");
        c
    }
}

pub fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {html}"));
    let rest = &html[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The text of the element with this id (`id="…">text<`).
pub fn by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap();
    rest[start..start + end].trim().to_owned()
}

/// The seed (org `acme-studio`, developer `dev@acme.test`, API `cfgateway
/// products:read`), an admin `admin@acme.test` and a developer `ana@acme.test`
/// who sign in with [`PASSWORD`].
pub async fn setup() -> (TestApp, crate::helpers::ApiCreds) {
    setup_with(|_| {}).await
}

/// [`setup`] on a server whose configuration `tune` adjusts.
pub async fn setup_with(
    tune: impl FnOnce(&mut gatehouse_server::ServerConfig),
) -> (TestApp, crate::helpers::ApiCreds) {
    let app = TestApp::spawn_with(tune, gatehouse_store_sql::SqliteOptions::default()).await;
    let (api, _) = app.seed().await;
    app.password_user("admin@acme.test", "admin").await;
    app.password_user("ana@acme.test", "developer").await;
    (app, api)
}

/// Another organization with a user and a client credentials app: (user id, client id).
pub async fn other_org(app: &TestApp) -> (String, String) {
    let now = SystemClock.now();
    admin::create_org(app.s(), now, &Actor::operator(), "Other Org", None)
        .await
        .unwrap();
    let user = admin::create_user(
        app.s(),
        now,
        &Actor::operator(),
        NewUser {
            org: &app.org("other-org").await,
            email: "bob@other.test",
            name: None,
            role: "admin",
            groups: vec![],
            password: Some(PASSWORD),
            profile: Default::default(),
        },
    )
    .await
    .unwrap();
    let (other, _) = admin::register_app(
        app.s(),
        now,
        &app.policy,
        &Actor::operator(),
        NewApp {
            org: &app.org("other-org").await,
            name: "Their app",
            description: None,
            grant: GrantType::ClientCredentials,
            on_behalf_of: Some("bob@other.test"),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: "",
            default_scopes: None,
            audience: None,
            exchange_audiences: vec![],
        },
    )
    .await
    .unwrap();
    (user.id, other.client_id)
}
