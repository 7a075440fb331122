//! Throwaway databases for tests (feature `test-util`): a PostgreSQL schema of
//! the test's own, dropped with everything in it when the guard goes, so tests
//! run in parallel on one database; a SQLite file in a temporary directory.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor};

use crate::{PgOptions, PgStore, SqliteOptions, SqliteStore};

/// The machine's PostgreSQL (`TEST_DATABASE_URL`, default
/// postgres://postgres@127.0.0.1:5432/test). No PostgreSQL is a failure, not a skip.
pub fn pg_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema; dropped (with everything in it) when this goes.
pub struct PgTestSchema(String);

impl Default for PgTestSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl PgTestSchema {
    pub fn new() -> Self {
        use std::hash::BuildHasher;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let salt = std::collections::hash_map::RandomState::new().hash_one(n);
        Self(format!("gh_test_{}_{n}_{salt:x}", std::process::id()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn opts(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.0.clone()),
            ..PgOptions::default()
        }
    }

    /// Opens a store on it (another call: another "instance").
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached.
    pub async fn open(&self) -> PgStore {
        PgStore::open(&pg_url(), self.opts())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (is it running?): {e}", pg_url()))
    }
}

impl Drop for PgTestSchema {
    fn drop(&mut self) {
        let sql = format!(r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#, self.0);
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&pg_url()).await?;
                // A connection left in a transaction must not hang the test.
                conn.execute("SET lock_timeout TO '10s'").await?;
                conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                conn.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            _ if std::thread::panicking() => {}
            Ok(Err(e)) => tracing::warn!(schema = %self.0, error = %e, "test schema not dropped"),
            Err(_) => tracing::warn!(schema = %self.0, "test schema not dropped"),
        }
    }
}

/// A SQLite database in a temporary directory, removed when this goes.
pub struct SqliteTestFile {
    _dir: tempfile::TempDir,
    url: String,
}

impl SqliteTestFile {
    /// # Panics
    /// When no temporary directory can be made.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self { _dir: dir, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// # Panics
    /// When the database cannot be opened.
    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.url, SqliteOptions::default())
            .await
            .unwrap_or_else(|e| panic!("SQLite at {}: {e}", self.url))
    }
}

impl Default for SqliteTestFile {
    fn default() -> Self {
        Self::new()
    }
}
