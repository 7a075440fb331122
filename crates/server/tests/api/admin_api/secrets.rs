//! `/api/v1/apps/{id}/secrets…`: a second secret beside the current one (a
//! rotation with a grace period). Both authenticate; retiring one, or its
//! expiry, ends it and the tokens issued with it (only those), at once on this
//! instance; at most two are active and the last cannot be retired; values are
//! shown once and never listed or audited; regenerating still ends everything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::oauth_error;

async fn register(app: &TestApp, a: &Admin) -> (String, String) {
    let body = json!({
        "grant_type": "client_credentials",
        "name": "Inventory sync",
        "on_behalf_of": "dev@acme.test",
        "scopes": ["cfgateway"],
    });
    let r = a.send(app, Method::POST, "/api/v1/apps", body).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    (
        r.json["client_id"].as_str().unwrap().to_owned(),
        r.json["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A client credentials access token, or `None` with the refusal checked as
/// RFC 6749's `invalid_client`.
async fn token(app: &TestApp, id: &str, secret: &str) -> Option<String> {
    let resp = app
        .token_form(Some((id, secret)), &[("grant_type", "client_credentials")])
        .await;
    if resp.status() == 401 {
        oauth_error(resp, 401, "invalid_client").await;
        return None;
    }
    let body: Value = resp.json().await.unwrap();
    Some(body["access_token"].as_str().expect("a token").to_owned())
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn active(app: &TestApp, id: &str, secret: &str, token: &str) -> bool {
    app.introspect((id, secret), token).await["active"] == true
}

async fn add(app: &TestApp, a: &Admin, id: &str, body: Option<Value>) -> Reply {
    let path = format!("/api/v1/apps/{id}/secrets");
    match body {
        Some(b) => a.send(app, Method::POST, &path, b).await,
        None => a.bare(app, Method::POST, &path).await,
    }
}

async fn retire(app: &TestApp, a: &Admin, id: &str, secret_id: &str) -> Reply {
    a.bare(
        app,
        Method::DELETE,
        &format!("/api/v1/apps/{id}/secrets/{secret_id}"),
    )
    .await
}

/// The app's secrets as `GET …/secrets` lists them.
async fn listed(app: &TestApp, a: &Admin, id: &str) -> Vec<Value> {
    let r = a.get(app, &format!("/api/v1/apps/{id}/secrets")).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.json["secrets"].as_array().unwrap().clone()
}

#[tokio::test]
async fn both_secrets_work_until_the_old_one_is_retired_which_ends_only_its_tokens() {
    let (app, a) = acme().await;
    let (id, old) = register(&app, &a).await;
    let old_token = token(&app, &id, &old).await.unwrap();
    let before = listed(&app, &a, &id).await;
    assert_eq!(before.len(), 1);
    let old_id = before[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(claims(&old_token)["csid"], old_id.as_str());

    // No body at all: the old secret keeps working until retired.
    app.clock.advance(1);
    let r = add(&app, &a, &id, None).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let new_id = r.json["secret_id"].as_str().unwrap().to_owned();
    let new = r.json["client_secret"].as_str().unwrap().to_owned();
    assert!(new.len() >= 43 && new != old);
    assert!(
        r.json["warning"]
            .as_str()
            .unwrap()
            .contains("not be shown again")
    );
    assert_eq!(r.json["secrets"].as_array().unwrap().len(), 2);
    assert!(r.json["secrets"][0]["expires_at"].is_null(), "{}", r.raw);

    // Both authenticate: the token endpoint, introspection; both tokens live.
    let new_token = token(&app, &id, &new).await.unwrap();
    assert_eq!(claims(&new_token)["csid"], new_id.as_str());
    assert_eq!(claims(&new_token)["cgen"], claims(&old_token)["cgen"]);
    assert!(token(&app, &id, &old).await.is_some());
    for (secret, t) in [(&old, &old_token), (&new, &new_token), (&new, &old_token)] {
        assert!(active(&app, &id, secret, t).await);
    }
    // The one-app view lists both (never a value), with their last use.
    app.state.flush_usage().await;
    let shown = a.get(&app, &format!("/api/v1/apps/{id}")).await;
    assert!(
        !shown.raw.contains(&old) && !shown.raw.contains(&new),
        "{}",
        shown.raw
    );
    let secrets = shown.json["secrets"].as_array().unwrap();
    let ids: Vec<&str> = secrets.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [old_id.as_str(), new_id.as_str()]);
    for s in secrets {
        assert!(s["last_used_at"].as_i64().unwrap() > 0, "{s}");
        assert!(s["created_at"].as_i64().unwrap() > 0, "{s}");
    }

    let r = retire(&app, &a, &id, &old_id).await;
    assert_eq!(r.status, 204, "{}", r.raw);
    // At once on this instance: the old secret and its tokens only.
    assert!(!active(&app, &id, &new, &old_token).await);
    assert!(active(&app, &id, &new, &new_token).await);
    assert!(token(&app, &id, &old).await.is_none());
    assert!(token(&app, &id, &new).await.is_some());
    // Nor does the retired secret authenticate an introspection.
    let resp = app
        .http
        .post(app.url("/connect/introspect"))
        .basic_auth(&id, Some(&old))
        .form(&[("token", new_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let left = listed(&app, &a, &id).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], new_id.as_str());
    // Back to one secret: the app view lists none, as before.
    let shown = a.get(&app, &format!("/api/v1/apps/{id}")).await;
    assert!(shown.json.get("secrets").is_none(), "{}", shown.raw);
}

#[tokio::test]
async fn a_grace_period_ends_the_old_secret_and_its_tokens_without_anyone_acting() {
    let (app, a) = acme().await;
    let (id, old) = register(&app, &a).await;
    let old_token = token(&app, &id, &old).await.unwrap();
    app.clock.advance(1);
    let r = add(&app, &a, &id, Some(json!({"expires_in": 60}))).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let new = r.json["client_secret"].as_str().unwrap().to_owned();
    let now = app.clock.now();
    let secrets = listed(&app, &a, &id).await;
    assert_eq!(secrets[0]["expires_at"], now + 60);
    assert!(secrets[1]["expires_at"].is_null());
    let new_token = token(&app, &id, &new).await.unwrap();
    // Introspected while the grace period runs (an answer that must not outlive it).
    assert!(active(&app, &id, &new, &old_token).await);
    assert!(token(&app, &id, &old).await.is_some());

    app.clock.advance(60);
    assert!(token(&app, &id, &old).await.is_none());
    assert!(!active(&app, &id, &new, &old_token).await);
    assert!(active(&app, &id, &new, &new_token).await);
    assert_eq!(listed(&app, &a, &id).await.len(), 1);
    // Room for a new secret again.
    assert_eq!(add(&app, &a, &id, Some(json!({}))).await.status, 201);
}

#[tokio::test]
async fn a_third_secret_is_a_conflict_and_the_last_cannot_be_retired() {
    let (app, a) = acme().await;
    let (id, old) = register(&app, &a).await;
    let old_id = listed(&app, &a, &id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        retire(&app, &a, &id, &old_id).await.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("last active secret")
    );
    let r = add(&app, &a, &id, None).await;
    assert_eq!(r.status, 201);
    let new_id = r.json["secret_id"].as_str().unwrap().to_owned();
    let third = add(&app, &a, &id, Some(json!({"expires_in": 60}))).await;
    assert!(
        third.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("already has 2 active secrets"),
        "{}",
        third.raw
    );
    assert_eq!(listed(&app, &a, &id).await.len(), 2);
    // Retiring the new one instead leaves the old one, which still works.
    assert_eq!(retire(&app, &a, &id, &new_id).await.status, 204);
    assert_eq!(
        retire(&app, &a, &id, &new_id).await.problem(404)["status"],
        404
    );
    retire(&app, &a, &id, &old_id).await.problem(409);
    assert!(token(&app, &id, &old).await.is_some());
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let (app, a) = acme().await;
    let (id, _) = register(&app, &a).await;
    for body in [
        json!({"expires_in": 0}),
        json!({"expires_in": -5}),
        json!({"expires_in": 90 * 86_400 + 1}),
    ] {
        add(&app, &a, &id, Some(body)).await.invalid("expires_in");
    }
    add(&app, &a, &id, Some(json!({"expires_in": "7d"})))
        .await
        .invalid("expires_in");
    add(&app, &a, &id, Some(json!({"grace": 5})))
        .await
        .invalid("grace");
    let raw = app
        .http
        .post(app.url(&format!("/api/v1/apps/{id}/secrets")))
        .bearer_auth(&a.token)
        .header("content-type", "text/plain")
        .body("7d")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    add(&app, &a, "nope", None).await.problem(404);
    retire(&app, &a, &id, "nope").await.problem(404);
    retire(&app, &a, "nope", "nope").await.problem(404);
    assert_eq!(listed(&app, &a, &id).await.len(), 1);
    // Without a token, nothing.
    let r = call(
        &app,
        None,
        Method::POST,
        &format!("/api/v1/apps/{id}/secrets"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(listed(&app, &a, &id).await.len(), 1);
}

#[tokio::test]
async fn another_organizations_app_secrets_are_not_found() {
    let (app, a) = acme().await;
    let bolt = bolt(&app).await;
    let id = &bolt.app_client_id;
    add(&app, &a, id, None).await.problem(404);
    a.get(&app, &format!("/api/v1/apps/{id}/secrets"))
        .await
        .problem(404);
    let theirs = listed(&app, &bolt.admin, id).await;
    retire(&app, &a, id, theirs[0]["id"].as_str().unwrap())
        .await
        .problem(404);
    assert_eq!(listed(&app, &bolt.admin, id).await.len(), 1);
}

#[tokio::test]
async fn regenerating_still_ends_every_secret_and_every_token() {
    let (app, a) = acme().await;
    let (id, old) = register(&app, &a).await;
    let r = add(&app, &a, &id, None).await;
    let second = r.json["client_secret"].as_str().unwrap().to_owned();
    let t1 = token(&app, &id, &old).await.unwrap();
    let t2 = token(&app, &id, &second).await.unwrap();
    let r = a
        .bare(&app, Method::POST, &format!("/api/v1/apps/{id}/secret"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let fresh = r.json["client_secret"].as_str().unwrap().to_owned();
    assert!(token(&app, &id, &old).await.is_none());
    assert!(token(&app, &id, &second).await.is_none());
    for t in [&t1, &t2] {
        assert!(!active(&app, &id, &fresh, t).await);
    }
    assert_eq!(listed(&app, &a, &id).await.len(), 1);
    assert!(token(&app, &id, &fresh).await.is_some());
}

#[tokio::test]
async fn adding_and_retiring_are_audited_without_the_secret() {
    let (app, a) = acme().await;
    let (id, old) = register(&app, &a).await;
    let r = add(&app, &a, &id, Some(json!({"expires_in": 3600}))).await;
    let new = r.json["client_secret"].as_str().unwrap().to_owned();
    let new_id = r.json["secret_id"].as_str().unwrap().to_owned();
    assert_eq!(retire(&app, &a, &id, &new_id).await.status, 204);
    let page = a.get(&app, "/api/v1/audit?limit=2").await;
    assert!(!page.raw.contains(&new) && !page.raw.contains(&old));
    let events = page.json["events"].as_array().unwrap();
    assert_eq!(events[0]["action"], "app.retire_secret", "{}", page.raw);
    assert_eq!(events[1]["action"], "app.add_secret", "{}", page.raw);
    for e in events {
        assert_eq!(e["target"], id.as_str());
        assert_eq!(e["actor"]["id"], a.client_id.as_str());
        assert!(e["detail"].as_str().unwrap().contains(&new_id), "{e}");
    }
}
