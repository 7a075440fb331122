//! Against the machine's PostgreSQL (`TEST_DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test). Each test works in a fresh schema of
//! its own, dropped at the end, so tests run in parallel on one database. No
//! PostgreSQL is a failure, not a skip.

use std::collections::BTreeSet;
use std::time::Duration;

use gatehouse_core::model::{AuthCode, KeyState, Org, SigningAlg, StoredKey};
use gatehouse_core::ports::{ChangeFeed, GrantStore, KeyStore, OrgStore, Redeemed, StoreError};
use sqlx::{Connection, Executor};

use super::*;

fn url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of the test's own; dropped (with everything in it) when this goes.
struct Schema(String);

impl Schema {
    fn new() -> Self {
        Self(format!("gh_test_{}", uuid::Uuid::new_v4().simple()))
    }

    fn opts(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.0.clone()),
            ..PgOptions::default()
        }
    }

    async fn open(&self) -> PgStore {
        PgStore::open(&url(), self.opts())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (is it running?): {e}", url()))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!(r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#, self.0);
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url()).await?;
                conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                conn.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
        if !std::thread::panicking() {
            done.unwrap().unwrap();
        }
    }
}

fn key(kid: &str, at: i64) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg: SigningAlg::ES256,
        state: KeyState::Active,
        sealed_private_key: "sealed".into(),
        created_at: at,
        activated_at: Some(at),
        retired_at: None,
    }
}

#[tokio::test]
async fn conformance() {
    let schema = Schema::new();
    let store = schema.open().await;
    gatehouse_store::run_all(&store).await;
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let schema = Schema::new();
    let org = Org {
        id: "o".into(),
        slug: "s".into(),
        name: "n".into(),
        created_at: 1,
    };
    {
        let store = schema.open().await;
        assert_eq!(store.schema(), schema.0);
        store
            .insert_org(
                &org,
                &[],
                &gatehouse_core::model::AuditEvent::new(
                    &gatehouse_core::model::Actor::operator(),
                    &org.id,
                    1,
                    "test",
                    "t",
                    "test",
                ),
            )
            .await
            .unwrap();
        store.pool().close().await;
    }
    let store = schema.open().await;
    assert_eq!(store.org_by_slug("s").await.unwrap(), org);
    // And a third time, with the first store still open.
    let again = schema.open().await;
    assert_eq!(again.list_orgs().await.unwrap(), vec![org]);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, crate::MIGRATOR.iter().count() as i64);
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_binary_is_refused_clearly() {
    let schema = Schema::new();
    let store = schema.open().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (20991231000000, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    match PgStore::open(&url(), schema.opts()).await {
        Err(StoreError::Internal(msg)) => {
            assert!(msg.contains("newer Gatehouse"), "{msg}");
            assert!(msg.contains("20991231000000"), "{msg}");
        }
        other => panic!("expected the newer-binary error, got {other:?}"),
    }
    // The failed open left no migration lock behind: others still open.
    let other = Schema::new();
    tokio::time::timeout(Duration::from_secs(10), other.open())
        .await
        .expect("the migration lock was released");
}

#[tokio::test]
async fn notify_reaches_a_listener_within_a_second() {
    let schema = Schema::new();
    let a = schema.open().await;
    let b = schema.open().await; // another pool: another "instance"
    let mut listener = a.change_listener().await.unwrap();
    b.insert_key(&key("k1", 5)).await.unwrap();
    let note = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let note = listener.recv().await.unwrap();
            // Other tests' schemas share the channel; their payload differs.
            if note.payload() == schema.0 {
                return note;
            }
        }
    })
    .await
    .expect("notified within 1 s");
    assert_eq!(note.channel(), CHANGE_CHANNEL);
}

#[tokio::test]
async fn change_notified_wakes_on_own_schema_only() {
    let schema = Schema::new();
    let elsewhere = Schema::new();
    let a = schema.open().await;
    let b = schema.open().await;
    let c = elsewhere.open().await;

    let waiter = tokio::spawn({
        let a = a.clone();
        async move { a.change_notified().await }
    });
    tokio::time::timeout(Duration::from_secs(5), a.notifier.listening())
        .await
        .expect("listening");
    // A change in another schema of the same database does not wake it.
    c.insert_key(&key("k-elsewhere", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "woken by another schema's change");
    // A change by another instance on this schema does, at once.
    b.insert_key(&key("k1", 5)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("woken within 1 s")
        .unwrap();

    // Later waits keep working on the same listening task.
    let waiter = tokio::spawn({
        let a = a.clone();
        async move { a.change_notified().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.set_key_state("k1", KeyState::Retired, 6).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("woken again within 1 s")
        .unwrap();
}

#[tokio::test]
async fn one_winner_across_instances() {
    let schema = Schema::new();
    let stores = [schema.open().await, schema.open().await];
    stores[0]
        .insert_code(&AuthCode {
            digest: "c".into(),
            grant_id: "g".into(),
            client_id: "client".into(),
            redirect_uri: "https://a.example/cb".into(),
            nonce: None,
            code_challenge: None,
            expires_at: 100,
        })
        .await
        .unwrap();
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let s = stores[i % 2].clone();
            tokio::spawn(async move { s.redeem_code("c", 10).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for r in racers {
        match r.await.unwrap() {
            Redeemed::Fresh(_) => fresh += 1,
            Redeemed::Replayed { grant_id } => assert_eq!(grant_id, "g"),
        }
    }
    assert_eq!(fresh, 1);
}

/// Concurrent writers commit out of sequence order unless appends are ordered;
/// a reader that follows the feed with a cursor must still see every change.
#[tokio::test]
async fn a_feed_reader_never_skips_a_late_commit() {
    const PER_WRITER: usize = 40;
    let schema = Schema::new();
    let stores = [schema.open().await, schema.open().await];
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = stores[w % 2].clone();
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    s.revoke_access_token(&format!("jti-{w}-{i}"), "o1", 10_000, 1)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = stores[0].clone();
    let mut cursor = 0;
    let mut seen = BTreeSet::new();
    async fn follow(reader: &PgStore, cursor: &mut i64, seen: &mut BTreeSet<String>) {
        for c in reader.changes_since(*cursor, 1000).await.unwrap() {
            *cursor = c.seq;
            seen.insert(c.key);
        }
    }
    while !writers.iter().all(|w| w.is_finished()) {
        follow(&reader, &mut cursor, &mut seen).await;
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    follow(&reader, &mut cursor, &mut seen).await;
    assert_eq!(seen.len(), 4 * PER_WRITER, "the cursor skipped a change");
}

#[tokio::test]
async fn timeouts_and_outages_are_unavailable() {
    let schema = Schema::new();
    let store = PgStore::open(
        &url(),
        PgOptions {
            statement_timeout: Duration::from_millis(200),
            ..schema.opts()
        },
    )
    .await
    .unwrap();
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(store.pool())
        .await
        .map_err(map_err);
    assert!(matches!(slow, Err(StoreError::Unavailable(_))), "{slow:?}");

    // Nothing listens on port 1.
    let down = PgStore::open("postgres://postgres@127.0.0.1:1/test", schema.opts()).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
}

#[tokio::test]
async fn conflicts_name_what_clashed() {
    let schema = Schema::new();
    let store = schema.open().await;
    store.insert_key(&key("k1", 1)).await.unwrap();
    match store.insert_key(&key("k1", 2)).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "signing_keys.kid"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn schema_names_are_checked() {
    for bad in [
        "",
        "Public",
        "a-b",
        "x\"; DROP TABLE t; --",
        &"a".repeat(64),
    ] {
        let opts = PgOptions {
            schema: Some(bad.to_owned()),
            ..PgOptions::default()
        };
        assert!(
            matches!(
                PgStore::open(&url(), opts).await,
                Err(StoreError::Internal(_))
            ),
            "{bad:?}"
        );
    }
}
