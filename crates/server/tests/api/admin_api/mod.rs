//! The admin REST API (`/api/v1`), driven over real HTTP with tokens obtained from
//! `/connect/token`: authentication, every endpoint, confinement to the caller's
//! organization, secrets shown once, and the OpenAPI document's completeness.

mod apps;
mod auth;
mod cross_org;
mod faults;
mod openapi;
mod org;
mod secrets;
mod users;

use gatehouse_core::admin::{self, NewUser};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::{Actor, AuditEvent, GrantType, Org, Role};
use gatehouse_core::secret;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

pub const ADMIN_SCOPE: &str = "gatehouse:admin";

/// An app holding `gatehouse:admin`, and a token it got.
pub struct Admin {
    pub client_id: String,
    pub secret: String,
    pub token: String,
    pub org_id: String,
}

/// One organization's records, for the cross-organization tests.
pub struct OrgFixture {
    pub org: Org,
    pub admin: Admin,
    /// A client credentials app of the org (not the admin one).
    pub app_client_id: String,
    pub app_secret: String,
    /// A developer user of the org.
    pub user_id: String,
}

pub async fn user_in(app: &TestApp, org_slug: &str, email: &str, role: &str) -> String {
    admin::create_user(
        app.s(),
        SystemClock.now(),
        &Actor::operator(),
        NewUser {
            org: &app.org(org_slug).await,
            email,
            name: None,
            role,
            groups: vec!["ops".into()],
            password: None,
            profile: Default::default(),
        },
    )
    .await
    .unwrap()
    .id
}

/// A client credentials app allowed `gatehouse:admin` (and only that, by
/// default), acting for the user `email` of `org_slug`.
pub async fn admin_app(app: &TestApp, org_slug: &str, email: &str) -> (String, String) {
    let (a, secret) = admin::register_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        admin::NewApp {
            org: &app.org(org_slug).await,
            name: "Admin automation",
            description: None,
            grant: GrantType::ClientCredentials,
            on_behalf_of: Some(email),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: ADMIN_SCOPE,
            default_scopes: None,
            audience: None,
            exchange_audiences: vec![],
        },
    )
    .await
    .unwrap();
    (a.client_id, secret.expose().to_owned())
}

/// Requests a `gatehouse:admin` token over HTTP; panics with the error body.
pub async fn admin_token(app: &TestApp, client_id: &str, secret: &str) -> String {
    let resp = app
        .token_form(
            Some((client_id, secret)),
            &[("grant_type", "client_credentials"), ("scope", ADMIN_SCOPE)],
        )
        .await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// An admin (role `admin`) and an admin app with a token in the org `org_slug`.
pub async fn admin_in(app: &TestApp, org_slug: &str, email: &str) -> Admin {
    let org = admin::org(app.s(), &Actor::operator(), org_slug)
        .await
        .unwrap();
    user_in(app, org_slug, email, "admin").await;
    let (client_id, secret) = admin_app(app, org_slug, email).await;
    let token = admin_token(app, &client_id, &secret).await;
    Admin {
        client_id,
        secret,
        token,
        org_id: org.id,
    }
}

/// The seed (`acme-studio`, its developer and API) plus an admin of it.
pub async fn acme() -> (TestApp, Admin) {
    let app = TestApp::spawn().await;
    app.seed().await;
    let a = admin_in(&app, "acme-studio", "root@acme.test").await;
    (app, a)
}

/// A second organization, `bolt-works`, with an API, a developer, a client
/// credentials app and an admin.
pub async fn bolt(app: &TestApp) -> OrgFixture {
    let now = SystemClock.now();
    let op = Actor::operator();
    let org = admin::create_org(app.s(), now, &op, "Bolt Works", None)
        .await
        .unwrap();
    admin::create_api(
        app.s(),
        now,
        &op,
        admin::NewApi {
            org: &app.org("bolt-works").await,
            name: "Bolt API",
            audience: "https://api.bolt.test",
            scopes: "bolts:read",
            token_format: gatehouse_core::model::TokenFormat::Jwt,
            signing_alg: gatehouse_core::model::SigningAlg::ES256,
            access_token_ttl: 3600,
        },
    )
    .await
    .unwrap();
    let user_id = user_in(app, "bolt-works", "dev@bolt.test", "developer").await;
    let (a, s) = admin::register_app(
        app.s(),
        now,
        &app.policy,
        &op,
        admin::NewApp {
            org: &app.org("bolt-works").await,
            name: "Bolt nightly",
            description: Some("Bolt's own"),
            grant: GrantType::ClientCredentials,
            on_behalf_of: Some("dev@bolt.test"),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: "bolts:read",
            default_scopes: None,
            audience: None,
            exchange_audiences: vec![],
        },
    )
    .await
    .unwrap();
    let admin = admin_in(app, "bolt-works", "root@bolt.test").await;
    OrgFixture {
        org,
        admin,
        app_client_id: a.client_id,
        app_secret: s.expose().to_owned(),
        user_id,
    }
}

/// An organization whose `app-admin` role has `apps:manage` but not `users:manage`.
pub async fn org_with_app_admin_only(app: &TestApp) -> Admin {
    let org = Org {
        id: secret::random_id(),
        slug: "cobalt".into(),
        name: "Cobalt".into(),
        created_at: SystemClock.now(),
    };
    let mut roles = Role::defaults(&org.id);
    roles.push(Role {
        org_id: org.id.clone(),
        name: "app-admin".into(),
        permissions: vec!["apps:manage".into()],
    });
    let audit = AuditEvent::new(
        &Actor::operator(),
        &org.id,
        org.created_at,
        "org.create",
        &org.id,
        "created organization `Cobalt` with an app-admin role",
    );
    app.s().insert_org(&org, &roles, &audit).await.unwrap();
    user_in(app, "cobalt", "apps@cobalt.test", "app-admin").await;
    let (client_id, secret) = admin_app(app, "cobalt", "apps@cobalt.test").await;
    let token = admin_token(app, &client_id, &secret).await;
    Admin {
        client_id,
        secret,
        token,
        org_id: org.id,
    }
}

/// A response's status, raw body and JSON (`Null` when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub raw: String,
    pub json: Value,
}

impl Reply {
    /// Asserts an RFC 9457 problem with this status and pins it; returns it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.raw);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.raw
        );
        assert_eq!(self.json["type"], "about:blank", "{}", self.raw);
        assert_eq!(self.json["status"], status, "{}", self.raw);
        assert!(self.json["title"].as_str().is_some(), "{}", self.raw);
        crate::helpers::pin_error(&self.json);
        &self.json
    }

    /// Asserts a 422 naming `field`.
    pub fn invalid(&self, field: &str) -> &Value {
        let p = self.problem(422);
        assert_eq!(p["field"], field, "{}", self.raw);
        p
    }
}

/// Calls the admin API with `token` (if any) and an optional JSON body.
pub async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = app.http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.text().await.unwrap();
    let json = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        raw,
        json,
    }
}

impl Admin {
    pub async fn get(&self, app: &TestApp, path: &str) -> Reply {
        call(app, Some(&self.token), Method::GET, path, None).await
    }
    pub async fn send(&self, app: &TestApp, method: Method, path: &str, body: Value) -> Reply {
        call(app, Some(&self.token), method, path, Some(body)).await
    }
    pub async fn bare(&self, app: &TestApp, method: Method, path: &str) -> Reply {
        call(app, Some(&self.token), method, path, None).await
    }
}
