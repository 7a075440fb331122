//! The admin API when the store fails: 503 with `Retry-After` when it cannot
//! answer, 500 with a correlation id when it answers nonsense; problems both.

use std::str::FromStr;
use std::time::Duration;

use gatehouse_store_sql::SqliteOptions;
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;

use super::*;

#[tokio::test]
async fn a_locked_database_is_503_with_retry_after() {
    if crate::helpers::on_postgres() {
        return; // SQLite's write lock; the mapping is shared with PostgreSQL's outages
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
    let a = admin_in(&app, "acme-studio", "root@acme.test").await;
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&app.db_url).unwrap();
    let mut blocker = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let body = json!({"email": "kai@acme.test", "role": "member"});
    let r = a
        .send(&app, Method::POST, "/api/v1/users", body.clone())
        .await;
    r.problem(503);
    assert!(r.headers.contains_key("retry-after"));
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let r = a.send(&app, Method::POST, "/api/v1/users", body).await;
    assert_eq!(r.status, 201, "{}", r.raw);
}

#[tokio::test]
async fn unreadable_data_is_500_with_a_correlation_id() {
    let (app, a) = acme().await;
    let Some(sqlite) = app.sqlite.clone() else {
        return; // reaches under the store with SQLite's SQL; the mapping is shared
    };
    let c = app.app("dev@acme.test", "cfgateway", None, None).await;
    sqlx::query("UPDATE apps SET grant_types = 'not json' WHERE client_id = $1")
        .bind(&c.client_id)
        .execute(sqlite.pool())
        .await
        .unwrap();
    let r = a.get(&app, "/api/v1/apps").await;
    let p = r.problem(500);
    let id = p["correlation_id"].as_str().unwrap();
    assert_eq!(r.headers["x-correlation-id"], id);
    assert!(!r.raw.contains("not json"), "{}", r.raw);
}
