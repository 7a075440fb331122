//! `GET /connect/revocations`: the feed gateways follow to refuse ended JWTs.

use std::time::{Duration, Instant};

use gatehouse_core::admin;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::{Grant, UserStatus};
use serde_json::{Value, json};

use crate::helpers::{ApiCreds, TestApp};

impl TestApp {
    async fn feed(&self, who: (&str, &str), query: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/connect/revocations{query}")))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .unwrap()
    }

    async fn feed_ok(&self, api: &ApiCreds, query: &str) -> Value {
        let resp = self.feed((&api.client_id, &api.secret), query).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        resp.json().await.unwrap()
    }

    /// The events after `since`, following pages to the end; returns (cursor, events).
    pub(crate) async fn feed_all(&self, api: &ApiCreds, since: &str) -> (String, Vec<Value>) {
        let mut cursor = since.to_owned();
        let mut events = Vec::new();
        loop {
            let page = self.feed_ok(api, &format!("?since={cursor}")).await;
            cursor = page["cursor"].as_str().unwrap().to_owned();
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            if page["more"] == false {
                return (cursor, events);
            }
        }
    }
}

#[tokio::test]
async fn only_an_api_with_its_own_credentials_may_read_the_feed() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let wrong = app.feed((&api.client_id, "wrong"), "").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let as_app = app.feed((&c.client_id, &c.secret), "").await;
    assert_eq!(as_app.status(), 401);
    assert_eq!(
        as_app.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let none = app
        .http
        .get(app.url("/connect/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let junk = app.feed((&api.client_id, &api.secret), "?since=-3").await;
    assert_eq!(junk.status(), 400);
    assert_eq!(
        junk.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let disc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        disc["gatehouse_revocation_feed_endpoint"],
        app.url("/connect/revocations")
    );
}

#[tokio::test]
async fn each_ending_appears_as_the_current_state_of_its_subject() {
    let app = TestApp::spawn().await;
    let (api, user) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let (start, _) = app.feed_all(&api, "0").await;
    let now = SystemClock.now();
    let org_id = app.s().org_by_slug("acme-studio").await.unwrap().id;

    admin::rotate_secret(app.s(), now, &Actor::operator(), &c.client_id)
        .await
        .unwrap();
    let (cursor, events) = app.feed_all(&api, &start).await;
    assert_eq!(
        events,
        vec![json!({"type":"client","client_id":c.client_id,"generation":2,"active":true})]
    );

    admin::set_user_status(
        app.s(),
        now,
        &Actor::operator(),
        &app.user_id("dev@acme.test").await,
        UserStatus::Deactivated,
    )
    .await
    .unwrap();
    let (cursor, events) = app.feed_all(&api, &cursor).await;
    assert_eq!(
        events,
        vec![
            json!({"type":"user","user_id":user,"active":false,"may_authorize":false,"tokens_valid_after":now})
        ]
    );

    let grant = Grant {
        id: "grant-1".into(),
        client_id: c.client_id.clone(),
        user_id: user.clone(),
        scopes: vec!["cfgateway".into()],
        audience: Some(api.audience.clone()),
        generation: 2,
        sid: None,
        auth_time: now,
        amr: gatehouse_core::mfa::amr_password(),
        created_at: now,
        revoked_at: None,
        claims: Default::default(),
    };
    app.s().insert_grant(&grant).await.unwrap();
    app.s().revoke_grant("grant-1", now).await.unwrap();
    let (cursor, events) = app.feed_all(&api, &cursor).await;
    assert_eq!(events, vec![json!({"type":"grant","grant_id":"grant-1"})]);

    app.s()
        .revoke_access_token("jti-1", &org_id, now + 60, now)
        .await
        .unwrap();
    let (cursor, events) = app.feed_all(&api, &cursor).await;
    assert_eq!(events[0]["type"], "token");
    assert_eq!(events[0]["jti"], "jti-1");
    assert!(events[0]["exp"].as_i64().unwrap() >= now + 60);

    admin::delete_app(app.s(), now, &Actor::operator(), &c.client_id)
        .await
        .unwrap();
    let (cursor, events) = app.feed_all(&api, &cursor).await;
    assert_eq!(events[0]["type"], "client");
    assert_eq!(events[0]["active"], false);

    app.caught_up().await;
    let keys = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 200);
    let kek = gatehouse_core::jose::KeyEncryptionKey::from_text(
        &gatehouse_core::jose::KeyEncryptionKey::generate_text(),
    )
    .unwrap();
    let (_, stored) = gatehouse_core::jose::SigningKey::generate(
        gatehouse_core::model::SigningAlg::ES256,
        gatehouse_core::model::KeyState::Next,
        &kek,
        now,
    )
    .unwrap();
    app.s().insert_key(&stored).await.unwrap();
    let (_, events) = app.feed_all(&api, &cursor).await;
    assert_eq!(events, vec![json!({"type":"keys"})]);
}

#[tokio::test]
async fn events_of_other_organizations_are_left_out() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let now = SystemClock.now();
    admin::create_org(app.s(), now, &Actor::operator(), "Other Co", None)
        .await
        .unwrap();
    let other = admin::create_user(
        app.s(),
        now,
        &Actor::operator(),
        admin::NewUser {
            org: &app.org("other-co").await,
            email: "x@other.test",
            name: None,
            role: "developer",
            groups: vec![],
            password: None,
            profile: Default::default(),
        },
    )
    .await
    .unwrap();
    let (start, _) = app.feed_all(&api, "0").await;
    admin::set_user_status(
        app.s(),
        now,
        &Actor::operator(),
        &app.user_id("x@other.test").await,
        UserStatus::Deactivated,
    )
    .await
    .unwrap();
    let (cursor, events) = app.feed_all(&api, &start).await;
    assert!(events.is_empty(), "{events:?} ({})", other.id);
    assert_ne!(cursor, start, "the cursor moves past what was left out");
}

#[tokio::test]
async fn the_feed_pages_through_many_changes() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let now = SystemClock.now();
    let org_id = app.s().org_by_slug("acme-studio").await.unwrap().id;
    let (start, _) = app.feed_all(&api, "0").await;
    for i in 0..1100 {
        app.s()
            .revoke_access_token(&format!("jti-{i}"), &org_id, now + 60, now)
            .await
            .unwrap();
    }
    let first = app.feed_ok(&api, &format!("?since={start}")).await;
    assert_eq!(first["more"], true);
    assert_eq!(first["events"].as_array().unwrap().len(), 1000);
    let (_, rest) = app.feed_all(&api, first["cursor"].as_str().unwrap()).await;
    assert_eq!(rest.len(), 100);
    assert_eq!(rest[99]["jti"], "jti-1099");
}

#[tokio::test]
async fn a_long_poll_wakes_on_a_change() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let (start, _) = app.feed_all(&api, "0").await;
    let t0 = Instant::now();
    let quiet = app.feed_ok(&api, &format!("?since={start}&wait=1")).await;
    assert!(t0.elapsed() >= Duration::from_millis(900));
    assert_eq!(quiet["events"], json!([]));
    assert_eq!(quiet["cursor"], start.as_str());

    let poll = {
        let http = app.http.clone();
        let url = app.url(&format!("/connect/revocations?since={start}&wait=20"));
        let (id, secret) = (api.client_id.clone(), api.secret.clone());
        tokio::spawn(async move {
            let resp = http
                .get(url)
                .basic_auth(id, Some(secret))
                .send()
                .await
                .unwrap();
            (Instant::now(), resp.json::<Value>().await.unwrap())
        })
    };
    // Lets the poll reach the server and park before the change: nothing outside
    // the server shows that it is waiting (a waiter count on the change cursor
    // would), and a change made first would be answered without any wake-up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed = Instant::now();
    admin::rotate_secret(app.s(), SystemClock.now(), &Actor::operator(), &c.client_id)
        .await
        .unwrap();
    let (answered, page) = poll.await.unwrap();
    let waited = answered.duration_since(changed);
    println!("long poll answered {waited:?} after the change");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(page["events"][0]["type"], "client");
}

/// Issue 10 item 10: each change carries its organization, and an API's feed
/// shows only its own: org B's API never learns org A's revoked `jti`s or
/// deleted apps (while A's API sees both).
#[tokio::test]
async fn an_api_never_sees_another_organizations_revoked_tokens_or_deleted_apps() {
    use gatehouse_core::model::{SigningAlg, TokenFormat};

    let app = TestApp::spawn().await;
    let (api_a, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let now = SystemClock.now();
    let op = Actor::operator();
    admin::create_org(app.s(), now, &op, "Other Co", None)
        .await
        .unwrap();
    let (b, b_secret) = admin::create_api(
        app.s(),
        now,
        &op,
        admin::NewApi {
            org: &app.org("other-co").await,
            name: "Other gateway",
            audience: "https://gateway.other.test",
            scopes: "other:read",
            token_format: TokenFormat::Jwt,
            signing_alg: SigningAlg::ES256,
            access_token_ttl: 3600,
        },
    )
    .await
    .unwrap();
    let api_b = ApiCreds {
        audience: b.audience,
        client_id: b.client_id,
        secret: b_secret.expose().to_owned(),
    };
    let (start_a, _) = app.feed_all(&api_a, "0").await;
    let (start_b, _) = app.feed_all(&api_b, "0").await;

    // A real token of A's app, revoked by the app at /connect/revocation.
    let token = app.token(&c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .http
        .post(app.url("/connect/revocation"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    admin::delete_app(app.s(), now, &op, &c.client_id)
        .await
        .unwrap();

    let (_, seen_by_a) = app.feed_all(&api_a, &start_a).await;
    let kinds: Vec<&str> = seen_by_a
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["token", "client"], "{seen_by_a:?}");
    let (cursor_b, seen_by_b) = app.feed_all(&api_b, &start_b).await;
    assert_eq!(seen_by_b, Vec::<Value>::new());
    assert_ne!(cursor_b, start_b, "the cursor moves past what was left out");
}
