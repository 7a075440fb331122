//! The SQL Store: every port of `gatehouse_core::ports` over SQLite (the embedded
//! default) and PostgreSQL (several instances on one database), written once.
//!
//! Both stay native sqlx backends (not `sqlx::Any`) with the same schema (unix
//! seconds, TEXT ids, lists as JSON text), their own migrations folder
//! (`migrations/sqlite`, `migrations/postgres`) and runtime-checked queries with
//! `$N` placeholders; the conformance suite (`gatehouse-store-conformance`) is
//! the safety net.
//!
//! Layout: [`SqlStore`] holds a pool and a [`Dialect`], the one place the two
//! databases differ (how a write transaction begins, how the change feed is
//! appended to and announced, the change hint, error codes, the few statements
//! that are spelled differently). `src/ports/` has one file per port, `rows.rs`
//! the row structs, `write.rs` the write transaction every mutation goes through.
//!
//! Why macros and not generics: the port code is written once as the body of
//! [`for_each_dialect!`], which compiles it for `SqlStore<SqliteDialect>` and for
//! `SqlStore<PgDialect>`. Being generic over `sqlx::Database` instead needs a
//! higher-ranked `Executor`/`Encode`/`Decode`/`IntoArguments` bound on every
//! function (and on every type bound), which would outweigh the queries; inside
//! the macro each backend's types are concrete, so the code reads like ordinary
//! sqlx code and the compiler checks it against each backend in full.
//!
//! A bound row limit is written `LIMIT CAST($n AS BIGINT)`, never `LIMIT $n`:
//! SQLite's planner reads a bare parameter's value there and marks the
//! statement to be prepared again whenever that parameter is bound, which is
//! every execution (profiled: a fifth of the pool threads' time under load went
//! to re-parsing the change feed's read).

/// Compiles the items in its body once per dialect, with `D` naming the dialect
/// and `Db` its sqlx database (each copy in an anonymous `const` block of its own).
macro_rules! for_each_dialect {
    ($($body:tt)*) => {
        const _: () = {
            #[allow(dead_code)]
            type D = $crate::sqlite::SqliteDialect;
            #[allow(dead_code)]
            type Db = sqlx::Sqlite;
            $($body)*
        };
        const _: () = {
            #[allow(dead_code)]
            type D = $crate::postgres::PgDialect;
            #[allow(dead_code)]
            type Db = sqlx::Postgres;
            $($body)*
        };
    };
}

mod dialect;
#[macro_use]
mod direct;
mod migrations;
mod ports;
pub mod postgres;
mod read;
mod rows;
pub mod sqlite;
mod write;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

pub use dialect::Dialect;
pub use direct::ConnectionUse;
pub use postgres::{CHANGE_CHANNEL, PgDialect, PgOptions};
pub use sqlite::{SqliteDialect, SqliteOptions};

/// The embedded default.
pub type SqliteStore = SqlStore<SqliteDialect>;
/// Several instances on one database.
pub type PgStore = SqlStore<PgDialect>;

/// Every port over one SQL database. Cheap to clone: clones share the pool and
/// the write counter.
pub struct SqlStore<D: Dialect> {
    pool: sqlx::Pool<D::Db>,
    /// The hot path's one-statement calls (`direct.rs`): no ping on return.
    direct: Arc<direct::Direct<D::Db>>,
    dialect: Arc<D>,
    /// Committed writes that recorded a change, by this process: part of the
    /// change hint, and it wakes `change_notified`, so this instance sees its
    /// own writes at once.
    changes_written: Arc<watch::Sender<u64>>,
    /// The operator's back-channel logout switch (`set_logouts_enabled`):
    /// off, ending a session enqueues nothing.
    logouts_enabled: Arc<AtomicBool>,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            direct: Arc::clone(&self.direct),
            dialect: Arc::clone(&self.dialect),
            changes_written: Arc::clone(&self.changes_written),
            logouts_enabled: Arc::clone(&self.logouts_enabled),
        }
    }
}

impl<D: Dialect> std::fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> SqlStore<D> {
    fn new(pool: sqlx::Pool<D::Db>, direct: direct::Direct<D::Db>, dialect: D) -> Self {
        Self {
            pool,
            direct: Arc::new(direct),
            dialect: Arc::new(dialect),
            changes_written: Arc::new(watch::Sender::new(0)),
            logouts_enabled: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether ending a session enqueues back-channel logouts.
    pub(crate) fn logouts_enabled(&self) -> bool {
        self.logouts_enabled.load(Ordering::Relaxed)
    }

    pub(crate) fn enable_logouts(&self, on: bool) {
        self.logouts_enabled.store(on, Ordering::Relaxed);
    }

    pub fn pool(&self) -> &sqlx::Pool<D::Db> {
        &self.pool
    }

    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    /// The database connections this store holds: the pool's and the hot
    /// path's together (for the metrics).
    pub fn connections(&self) -> ConnectionUse {
        let direct = self.direct.usage();
        ConnectionUse {
            open: self.pool.size() + direct.open,
            idle: u32::try_from(self.pool.num_idle())
                .unwrap_or(u32::MAX)
                .saturating_add(direct.idle),
            max: self.pool.options().get_max_connections() + direct.max,
        }
    }

    /// Closes the pool, waiting for every connection to be returned (a
    /// dropped write transaction rolls back as its connection comes back).
    pub async fn close(&self) {
        self.dialect.close().await;
        self.direct.close().await;
        self.pool.close().await;
    }
}

/// Runs a migrator, telling a database migrated by a newer binary apart.
fn migration_error(
    e: sqlx::migrate::MigrateError,
    map_err: fn(sqlx::Error) -> gatehouse_core::ports::StoreError,
) -> gatehouse_core::ports::StoreError {
    use gatehouse_core::ports::StoreError;
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Internal(format!(
            "the database was migrated by a newer Gatehouse (migration {v} is unknown to this binary); upgrade the binary"
        )),
        sqlx::migrate::MigrateError::Execute(e) => match map_err(e) {
            StoreError::Internal(m) => StoreError::Internal(format!("migration failed: {m}")),
            other => other,
        },
        other => StoreError::Internal(format!("migration failed: {other}")),
    }
}
