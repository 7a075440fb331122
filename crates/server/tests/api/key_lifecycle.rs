//! Signing-key lifecycle (issue 10 item 6): scheduled rotation with the next key
//! published ahead of use, retired keys leaving the JWKS once what they signed has
//! expired, and `keys revoke` withdrawing a key at once.

use std::time::Duration;

use gatehouse_core::clock::Clock;
use gatehouse_core::keyring::{KeyRing, RETIRED_KEY_RETENTION};
use gatehouse_core::model::{Actor, KeyState, SigningAlg};
use gatehouse_store_sql::SqliteOptions;
use serde_json::Value;

use crate::helpers::{TestApp, eventually};

/// The kids of the published keys of `alg`.
async fn jwks_kids(app: &TestApp, alg: &str) -> Vec<String> {
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn es256_token(app: &TestApp, c: &crate::helpers::Client) -> String {
    app.token(c, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn keys_rotate_on_schedule_with_the_next_key_published_first() {
    let app = TestApp::spawn_with(
        |c| {
            c.key_rotation_period = Some(1000);
            c.housekeeping_every = Duration::from_millis(30);
        },
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let first = es256_token(&app, &c).await;
    let old = kid_of(&first);
    assert_eq!(jwks_kids(&app, "ES256").await, std::slice::from_ref(&old));

    // At 90 % of the period the next key is published, but does not sign yet.
    app.clock.advance(901);
    eventually("a next ES256 key in the JWKS", || async {
        jwks_kids(&app, "ES256").await.len() == 2
    })
    .await;
    let next: String = jwks_kids(&app, "ES256")
        .await
        .into_iter()
        .find(|k| *k != old)
        .unwrap();
    let stored = app.s().list_keys().await.unwrap();
    assert!(
        stored
            .iter()
            .any(|k| k.kid == next && k.state == KeyState::Next)
    );
    assert_eq!(kid_of(&es256_token(&app, &c).await), old);

    // At the period it becomes active; the old key is retired and still published.
    app.clock.advance(100);
    eventually("tokens signed by the next key", || async {
        kid_of(&es256_token(&app, &c).await) == next
    })
    .await;
    assert!(jwks_kids(&app, "ES256").await.contains(&old));
    let rotated = app.s().audit_events("", None, 50).await.unwrap();
    assert!(
        rotated
            .iter()
            .any(|e| e.action == "key.rotated" && e.target == next),
        "{rotated:?}"
    );

    // Once every token the old key signed has expired, it leaves the JWKS.
    app.clock.advance(RETIRED_KEY_RETENTION);
    eventually("the retired key out of the JWKS", || async {
        !jwks_kids(&app, "ES256").await.contains(&old)
    })
    .await;
    assert!(jwks_kids(&app, "ES256").await.contains(&next));
}

#[tokio::test]
async fn a_revoked_key_is_withdrawn_at_once_and_its_tokens_refused() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let token = es256_token(&app, &c).await;
    let kid = kid_of(&token);
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &token).await["active"],
        true
    );
    let feed_start: Value = app
        .http
        .get(app.url("/connect/revocations"))
        .basic_auth(&api.client_id, Some(&api.secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // The key is active: revoking it makes a replacement first.
    let replacement = KeyRing::revoke(app.s(), &app.kek, &kid, app.clock.now(), &Actor::operator())
        .await
        .unwrap()
        .expect("an active key is replaced");
    eventually("the revoked key out of the JWKS", || async {
        let kids = jwks_kids(&app, "ES256").await;
        !kids.contains(&kid) && kids.contains(&replacement)
    })
    .await;
    eventually("the token refused by introspection", || async {
        app.introspect((&api.client_id, &api.secret), &token).await
            == serde_json::json!({"active": false})
    })
    .await;
    let fresh = es256_token(&app, &c).await;
    assert_eq!(kid_of(&fresh), replacement);
    assert_eq!(
        app.introspect((&api.client_id, &api.secret), &fresh).await["active"],
        true
    );
    // Gateways hear of it through the feed.
    let page: Value = app
        .http
        .get(app.url(&format!(
            "/connect/revocations?since={}",
            feed_start["cursor"].as_str().unwrap()
        )))
        .basic_auth(&api.client_id, Some(&api.secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"type": "keys"})),
        "{page}"
    );
    let events = app.s().audit_events("", None, 50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "key.revoked" && e.target == kid),
        "{events:?}"
    );
    // Other algorithms are untouched.
    assert_eq!(jwks_kids(&app, SigningAlg::RS256.as_str()).await.len(), 1);
}
