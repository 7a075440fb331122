//! What happens when things go wrong: throttling of secret guessing, a database
//! that cannot answer, and data the server cannot read.

use std::str::FromStr;
use std::time::Duration;

use gatehouse_core::model::{SigningAlg, TokenFormat};
use gatehouse_store_sql::SqliteOptions;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use crate::helpers::TestApp;

#[tokio::test]
async fn repeated_failures_are_throttled_per_client_but_the_right_secret_still_works() {
    let app = TestApp::spawn_with(|c| c.failures_per_client = 3, SqliteOptions::default()).await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let r = app
            .token_form(
                Some((&c.client_id, "guess")),
                &[("grant_type", "client_credentials")],
            )
            .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = Some(
                r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    assert!(retry_after.unwrap() >= 1);
    // Someone else's guessing does not lock the real client out.
    app.token(&c, &[]).await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_gets_429_for_wrong_secrets_only() {
    let app = TestApp::spawn_with(|c| c.failures_per_address = 3, SqliteOptions::default()).await;
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    for id in ["a", "b", "c"] {
        app.token_form(Some((id, "x")), &[("grant_type", "client_credentials")])
            .await;
    }
    let r = app
        .token_form(
            Some((&c.client_id, "guess")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // The secret is checked before the throttle: the right one still works
    // (issue 10: a full address bucket must not refuse correct secrets).
    app.token(&c, &[]).await;
}

#[tokio::test]
async fn a_locked_database_is_503_with_retry_after_not_a_hang() {
    if crate::helpers::on_postgres() {
        // SQLite's write lock; PostgreSQL outages are tested with a real cluster
        // that is stopped and started (crates/cli/tests/postgres.rs).
        return;
    }
    let app = TestApp::spawn_with(
        |_| {},
        SqliteOptions {
            busy_timeout: Duration::from_millis(300),
            max_connections: 4,
        },
    )
    .await;
    app.seed().await;
    app.api(
        "https://ref.acme.test",
        "ref",
        TokenFormat::Reference,
        SigningAlg::ES256,
    )
    .await;
    let c = app.app("dev@acme.test", "ref", None, None).await;
    app.token(&c, &[]).await;

    // Another process holds the write lock: issuing a reference token must write.
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&app.db_url).unwrap();
    let mut blocker = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    crate::helpers::pin_error(&body);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    // And it recovers by itself.
    app.token(&c, &[]).await;
}

#[tokio::test]
async fn unreadable_data_is_a_500_with_a_correlation_id() {
    let app = TestApp::spawn().await;
    let Some(sqlite) = app.sqlite.clone() else {
        return; // reaches under the store with SQL of SQLite's; the mapping is shared
    };
    app.seed().await;
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    sqlx::query("UPDATE apps SET grant_types = 'not json' WHERE client_id = $1")
        .bind(&c.client_id)
        .execute(sqlite.pool())
        .await
        .unwrap();
    let r = app
        .token_form(
            Some((&c.client_id, &c.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let header_id = r.headers()["x-correlation-id"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    assert_eq!(body["correlation_id"], header_id);
    crate::helpers::pin_error(&body);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&header_id)
    );
    assert!(
        !body.to_string().contains("not json"),
        "internals leak: {body}"
    );
}
