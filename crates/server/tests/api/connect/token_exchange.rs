//! `POST /connect/token` with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
//! (RFC 8693): a person's token for the gateway API, received by the "Storefront"
//! app, exchanged for a narrower token to the orders API on the same person's
//! behalf; and every way an exchange must be refused.

use gatehouse_core::admin::{self, NewApp};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::{Actor, GrantType, SigningAlg, TokenFormat};
use serde_json::Value;

use crate::browser::{Browser, code_for};
use crate::helpers::{ApiCreds, TestApp, WebApp, authorize_params, code_params, oauth_error};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const ORDERS: &str = "https://orders.acme.test";

struct World {
    app: TestApp,
    web: WebApp,
    /// Ana's token from the web app: for the gateway, `cfgateway products:read`.
    user: Value,
    gateway: ApiCreds,
    orders: ApiCreds,
    /// The token exchange app allowed to exchange for the orders API.
    exchanger: WebApp,
}

/// The seed; a web app allowed `cfgateway products:read` through which Ana
/// signs in; then an orders API offering `products:read orders:write`, and a
/// token exchange app allowed `ORDERS`.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let (gateway, _) = app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app
        .web_app("cfgateway products:read openid offline_access")
        .await;
    let params = authorize_params(&web).set("scope", "cfgateway products:read openid");
    let code = code_for(&Browser::new(&app), &params, "ana@acme.test").await;
    let resp = app.web_token(&web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    let user: Value = resp.json().await.unwrap();
    // Created after Ana's sign-in: `products:read` is then defined by two APIs.
    let orders = app
        .api(
            ORDERS,
            "products:read orders:write",
            TokenFormat::Jwt,
            SigningAlg::ES256,
        )
        .await;
    let exchanger = exchange_app(&app, vec![ORDERS.into()]).await;
    app.caught_up().await;
    World {
        app,
        web,
        user,
        gateway,
        orders,
        exchanger,
    }
}

async fn exchange_app(app: &TestApp, audiences: Vec<String>) -> WebApp {
    let (a, secret) = admin::register_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &Actor::operator(),
        NewApp {
            org: &app.org("acme-studio").await,
            name: "Storefront",
            description: None,
            grant: GrantType::TokenExchange,
            on_behalf_of: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: "",
            default_scopes: None,
            audience: None,
            exchange_audiences: audiences,
        },
    )
    .await
    .unwrap();
    WebApp {
        client_id: a.client_id,
        secret: secret.expose().to_owned(),
    }
}

fn at(v: &Value) -> &str {
    v["access_token"].as_str().expect("an access token")
}

impl World {
    async fn exchange(
        &self,
        who: &WebApp,
        subject: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
        ];
        form.extend_from_slice(extra);
        self.app
            .token_form(Some((&who.client_id, &who.secret)), &form)
            .await
    }

    async fn exchanged(&self, extra: &[(&str, &str)]) -> Value {
        let resp = self.exchange(&self.exchanger, at(&self.user), extra).await;
        let status = resp.status();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn at_gateway(&self, token: &str) -> Value {
        self.app
            .introspect((&self.gateway.client_id, &self.gateway.secret), token)
            .await
    }

    async fn at_orders(&self, token: &str) -> Value {
        self.app
            .introspect((&self.orders.client_id, &self.orders.secret), token)
            .await
    }
}

#[tokio::test]
async fn a_users_token_is_exchanged_for_a_narrower_token_that_works_at_the_downstream_api() {
    let w = world().await;
    let body = w
        .exchanged(&[("audience", ORDERS), ("scope", "products:read")])
        .await;
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "products:read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("id_token").is_none(), "{body}");
    let subject = w
        .app
        .introspect((&w.gateway.client_id, &w.gateway.secret), at(&w.user))
        .await;
    let got = w.at_orders(at(&body)).await;
    assert_eq!(got["active"], true, "{got}");
    assert_eq!(got["aud"], ORDERS);
    assert_eq!(got["scope"], "products:read");
    assert_eq!(got["sub"], subject["sub"]);
    assert_eq!(got["client_id"], w.exchanger.client_id.as_str());
    assert_eq!(
        got["act"],
        serde_json::json!({"sub": w.exchanger.client_id})
    );
    assert_eq!(got["gid"], subject["gid"], "the same grant");
    assert!(got["exp"].as_i64() <= subject["exp"].as_i64());
    // `resource` names the API as well (RFC 8707).
    let by_resource = w.exchanged(&[("resource", ORDERS)]).await;
    assert_eq!(
        by_resource["scope"], "products:read",
        "what both hold and offer"
    );
    // The gateway API does not see a token addressed to the orders API.
    let other = w
        .app
        .introspect((&w.gateway.client_id, &w.gateway.secret), at(&body))
        .await;
    assert_eq!(other["active"], false);
    // Every exchange is in the organization's audit log.
    let org = w.app.org("acme-studio").await;
    let events = w.app.s().audit_events(&org.id, None, 20).await.unwrap();
    let exchanges = events
        .iter()
        .filter(|e| e.action == "token.exchange")
        .count();
    assert_eq!(exchanges, 2);
}

#[tokio::test]
async fn the_exchanged_token_never_outlives_the_subject_token() {
    let w = world().await;
    w.app.clock.advance(3000);
    let body = w.exchanged(&[("audience", ORDERS)]).await;
    let left = body["expires_in"].as_i64().unwrap();
    assert!(left <= 600 && left > 500, "{body}");
    let subject = w
        .app
        .introspect((&w.gateway.client_id, &w.gateway.secret), at(&w.user))
        .await;
    let got = w.at_orders(at(&body)).await;
    assert!(got["exp"].as_i64().unwrap() <= subject["exp"].as_i64().unwrap());
    // Once the subject token has expired, nothing is exchanged.
    w.app.clock.advance(700);
    let resp = w.exchange(&w.exchanger, at(&w.user), &[]).await;
    oauth_error(resp, 400, "invalid_grant").await;
}

#[tokio::test]
async fn revoking_the_users_grant_ends_the_exchanged_token() {
    let w = world().await;
    let body = w.exchanged(&[("audience", ORDERS)]).await;
    let gid = w.at_orders(at(&body)).await["gid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The exchanged token carries the user's grant, so the ending of that
    // grant is what a gateway in front of the downstream API hears.
    let user_gid = w.at_gateway(at(&w.user)).await["gid"].clone();
    assert_eq!(user_gid, gid.as_str());
    let (cursor, _) = w.app.feed_all(&w.orders, "0").await;
    w.app
        .s()
        .revoke_grant(&gid, SystemClock.now())
        .await
        .unwrap();
    w.app.caught_up().await;
    assert_eq!(w.at_orders(at(&body)).await["active"], false);
    let (_, events) = w.app.feed_all(&w.orders, &cursor).await;
    assert!(
        events.contains(&serde_json::json!({"type": "grant", "grant_id": gid})),
        "the downstream API's feed does not announce the ended grant: {events:?}"
    );
    let resp = w.exchange(&w.exchanger, at(&w.user), &[]).await;
    oauth_error(resp, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rotating_the_exchanging_apps_secret_ends_its_exchanged_tokens() {
    let w = world().await;
    let body = w.exchanged(&[("audience", ORDERS)]).await;
    admin::rotate_secret(
        w.app.s(),
        SystemClock.now(),
        &Actor::operator(),
        &w.exchanger.client_id,
    )
    .await
    .unwrap();
    w.app.caught_up().await;
    assert_eq!(w.at_orders(at(&body)).await["active"], false);
}

#[tokio::test]
async fn an_audience_the_app_is_not_allowed_is_invalid_target() {
    let w = world().await;
    let resp = w
        .exchange(
            &w.exchanger,
            at(&w.user),
            &[("audience", &w.gateway.audience)],
        )
        .await;
    oauth_error(resp, 400, "invalid_target").await;
    // Deny by default: an app with no exchange audiences exchanges nothing.
    let none = exchange_app(&w.app, vec![]).await;
    let resp = w.exchange(&none, at(&w.user), &[]).await;
    oauth_error(resp, 400, "invalid_target").await;
}

#[tokio::test]
async fn a_scope_beyond_the_subject_token_or_the_target_api_is_invalid_scope() {
    let w = world().await;
    for scope in ["orders:write", "cfgateway", "products:read orders:write"] {
        let resp = w
            .exchange(
                &w.exchanger,
                at(&w.user),
                &[("audience", ORDERS), ("scope", scope)],
            )
            .await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_scope", "{scope}: {body}");
    }
    let resp = w
        .exchange(
            &w.exchanger,
            at(&w.user),
            &[("audience", ORDERS), ("scope", "orders:write")],
        )
        .await;
    oauth_error(resp, 400, "invalid_scope").await;
}

#[tokio::test]
async fn a_forged_revoked_or_machine_subject_token_is_invalid_grant() {
    let w = world().await;
    let token = at(&w.user);
    let mut forged = token.to_owned();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let resp = w.exchange(&w.exchanger, &forged, &[]).await;
    oauth_error(resp, 400, "invalid_grant").await;
    // A client credentials token: an app's own, not a person's.
    let machine = w.app.app("dev@acme.test", "cfgateway", None, None).await;
    let cc = w.app.token(&machine, &[]).await;
    let resp = w.exchange(&w.exchanger, at(&cc), &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // Revoked by the app it was issued to (RFC 7009).
    let resp = w
        .app
        .http
        .post(w.app.url("/connect/revocation"))
        .basic_auth(&w.web.client_id, Some(&w.web.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = w.exchange(&w.exchanger, token, &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test]
async fn an_app_without_the_grant_is_unauthorized_client_and_bad_credentials_invalid_client() {
    let w = world().await;
    let resp = w
        .exchange(&w.web, at(&w.user), &[("audience", ORDERS)])
        .await;
    oauth_error(resp, 400, "unauthorized_client").await;
    let wrong = WebApp {
        client_id: w.exchanger.client_id.clone(),
        secret: "wrong".into(),
    };
    let resp = w.exchange(&wrong, at(&w.user), &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
}

#[tokio::test]
async fn an_unsupported_token_type_or_a_missing_subject_token_is_invalid_request() {
    let w = world().await;
    let resp = w
        .app
        .token_form(
            Some((&w.exchanger.client_id, &w.exchanger.secret)),
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", at(&w.user)),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        )
        .await;
    oauth_error(resp, 400, "invalid_request").await;
    let resp = w
        .exchange(
            &w.exchanger,
            at(&w.user),
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        )
        .await;
    oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn another_organizations_api_is_refused() {
    let w = world().await;
    let now = SystemClock.now();
    let other = admin::create_org(w.app.s(), now, &Actor::operator(), "Other Co", None)
        .await
        .unwrap();
    admin::create_api(
        w.app.s(),
        now,
        &Actor::operator(),
        admin::NewApi {
            org: &other,
            name: "Theirs",
            audience: "https://theirs.other.test",
            scopes: "products:read",
            token_format: TokenFormat::Jwt,
            signing_alg: SigningAlg::ES256,
            access_token_ttl: 3600,
        },
    )
    .await
    .unwrap();
    // An admin cannot allow it…
    let refused = admin::update_app(
        w.app.s(),
        now,
        &w.app.policy,
        &Actor::operator(),
        &w.exchanger.client_id,
        admin::AppEdit {
            exchange_audiences: Some(vec!["https://theirs.other.test".into()]),
            ..Default::default()
        },
    )
    .await;
    assert!(refused.is_err());
    // …and asking for it is invalid_target.
    let resp = w
        .exchange(
            &w.exchanger,
            at(&w.user),
            &[("audience", "https://theirs.other.test")],
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_target", "{body}");
}
