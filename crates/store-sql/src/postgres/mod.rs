//! PostgreSQL: several Gatehouse instances on one database act as one.
//!
//! The same schema as SQLite's (unix seconds in BIGINT, TEXT ids, lists as JSON
//! text in TEXT columns rather than JSONB, so both backends store and decode
//! alike). What PostgreSQL adds:
//! - Write transactions are plain `BEGIN` (READ COMMITTED). The one-winner
//!   operations (redeeming a code, rotating a refresh token) are a single
//!   conditional `UPDATE … WHERE used_at IS NULL RETURNING *`: the row lock
//!   decides, across connections and processes.
//! - The change feed stays in commit order: appending to it first takes a
//!   transaction-level advisory lock, so a sequence number is never handed out
//!   while an earlier one is still uncommitted (readers would skip it for good).
//! - Every change also sends `NOTIFY gatehouse_changes` (payload: the schema) in
//!   its transaction; [`PgStore::change_listener`](crate::PgStore::change_listener) and
//!   [`ChangeFeed::change_notified`](gatehouse_core::ports::ChangeFeed::change_notified)
//!   let readers wake at once instead of polling. The change hint is this
//!   process's write counter (other instances' writes arrive by `NOTIFY`).
//! - The grant flow's writes are one statement each (data-modifying CTEs):
//!   one round trip, no `BEGIN`/`COMMIT` (`grant_flow.rs`).

mod error;
mod grant_flow;
mod notify;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::ports::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::{Dialect, SqlStore};

static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> =
    std::sync::LazyLock::new(|| crate::migrations::migrator(crate::migrations::POSTGRES));

/// The channel every change is announced on; the payload is the schema whose
/// feed moved (several Gatehouse schemas may share a database).
pub const CHANGE_CHANNEL: &str = "gatehouse_changes";

/// Key of the transaction-level advisory lock that orders appends to the change
/// feed ("gatehouse" + "changes", arbitrary but fixed).
const CHANGES_LOCK: i64 = 0x6761_7465_6368_6731;

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in all: half for the hot path's one-statement calls
    /// (`direct.rs`), the rest for the pool; at least one each.
    pub max_connections: u32,
    /// Set on every connection (`statement_timeout`); a statement that runs
    /// longer is cancelled and reported as [`StoreError::Unavailable`]. Zero
    /// disables it. Migrations run without it.
    pub statement_timeout: Duration,
    /// How long a caller waits for a free connection before `Unavailable`.
    pub acquire_timeout: Duration,
    /// Keep Gatehouse's tables in this schema (created if missing, set as the
    /// `search_path` of every connection) instead of the default one.
    /// Lower-case letters, digits and `_` only.
    pub schema: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

pub struct PgDialect {
    /// How to open a connection like the pool's (for listeners).
    connect: PgConnectOptions,
    /// The schema the tables live in: the payload of this store's notifications.
    schema: Arc<str>,
    notifier: Arc<notify::Notifier>,
}

impl std::fmt::Debug for PgDialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDialect")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl SqlStore<PgDialect> {
    /// A write of one statement, its own transaction where row locks decide,
    /// on the hot path's connections (`SqliteStore` has the same method, in
    /// its write turn).
    pub(crate) async fn write_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<sqlx::postgres::PgQueryResult> {
        let mut lease = self.direct.lease().await.map_err(error::map_err)?;
        let outcome = query.execute(lease.conn().map_err(error::map_err)?).await;
        lease.finish(outcome).map_err(error::map_err)
    }

    /// Connects to the database at `url` (`postgres://…`) and brings its schema
    /// up to date.
    pub async fn open(url: &str, opts: PgOptions) -> StoreResult<Self> {
        if let Some(schema) = &opts.schema {
            validate_schema(schema)?;
        }
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?
            .options([(
                "statement_timeout",
                opts.statement_timeout.as_millis().to_string(),
            )]);
        if let Some(schema) = &opts.schema {
            // Validated above: nothing to quote or escape.
            connect = connect.options([("search_path", schema.as_str())]);
        }

        let schema = migrate(&connect, opts.schema.as_deref()).await?;

        let (pooled, direct) = crate::direct::split(opts.max_connections);
        let pool = PgPoolOptions::new()
            .max_connections(pooled)
            .acquire_timeout(opts.acquire_timeout)
            // sqlx's default: a connection is pinged before it is lent, so one that
            // a restart or failover ended is replaced instead of failing a
            // request. One more round trip, but only off the hot path: the grant
            // flow's and the feed's statements run on the direct connections.
            .test_before_acquire(true)
            .connect_with(connect.clone())
            .await
            .map_err(error::map_err)?;
        let direct = crate::direct::Direct::new(connect.clone(), direct, opts.acquire_timeout);
        let dialect = PgDialect {
            connect,
            schema: schema.into(),
            notifier: Arc::default(),
        };
        Ok(Self::new(pool, direct, dialect))
    }

    /// The schema Gatehouse's tables live in; also the payload of its
    /// notifications on [`CHANGE_CHANNEL`].
    pub fn schema(&self) -> &str {
        &self.dialect.schema
    }

    /// A listener on its own connection, already `LISTEN`ing on
    /// [`CHANGE_CHANNEL`]. Every committed change sends one notification whose
    /// payload is the schema it happened in (compare with [`Self::schema`] when
    /// several schemas share the database). A notification only says "read the
    /// feed": the feed itself is the truth, and notifications sent while the
    /// listener was reconnecting are lost.
    pub async fn change_listener(&self) -> StoreResult<PgListener> {
        notify::listener(&self.dialect.connect)
            .await
            .map_err(error::map_err)
    }
}

impl Dialect for PgDialect {
    type Db = sqlx::Postgres;

    const BEGIN_WRITE: &'static str = "BEGIN";

    // One statement, its own transaction: of concurrent callers the first to
    // lock the row sets `used_at`; the others wait for it, re-check the
    // condition on the updated row and match nothing.
    const CLAIM_IN_WRITE_TX: bool = false;

    // One statement: concurrent failures on any instance each count once.
    const ADD_FAILURE: &'static str = "INSERT INTO throttle (key, level, updated_at) VALUES ($1, 1.0, $3)
         ON CONFLICT (key) DO UPDATE SET
             level = GREATEST(0.0, throttle.level - GREATEST(0.0, $3 - throttle.updated_at) * $2) + 1.0,
             updated_at = GREATEST(throttle.updated_at, $3)
         RETURNING level";

    type WriteTurn = ();

    async fn write_turn(&self) {}

    async fn close(&self) {}

    fn map_err(e: sqlx::Error) -> StoreError {
        error::map_err(e)
    }

    /// A transaction-level advisory lock, held until the commit: a sequence
    /// number is never handed out while an earlier one is still uncommitted.
    async fn before_change<'a>(&'a self, conn: &'a mut sqlx::PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHANGES_LOCK)
            .execute(conn)
            .await
            .map_err(error::map_err)?;
        Ok(())
    }

    /// Delivered when, and only if, the transaction commits.
    async fn announce_change<'a>(&'a self, conn: &'a mut sqlx::PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGE_CHANNEL)
            .bind(&*self.schema)
            .execute(conn)
            .await
            .map_err(error::map_err)?;
        Ok(())
    }

    async fn after_purge<'a>(&'a self, _pool: &'a sqlx::PgPool) -> StoreResult<()> {
        Ok(())
    }

    // `announce_change`'s NOTIFY went out with the commit.
    fn change_committed(&self) {}

    fn change_hint(&self, local: u64) -> Option<u64> {
        Some(local)
    }

    async fn change_notified(&self) {
        self.notifier.notified(&self.connect, &self.schema).await;
    }
}

fn validate_schema(schema: &str) -> StoreResult<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Internal(format!(
            "invalid schema name `{schema}`: use 1 to 63 of a-z, 0-9 and _"
        )))
    }
}

/// Creates the schema if asked for one and runs the migrations, on a connection
/// of its own without the statement timeout (a second instance waits for the
/// first one's migration rather than failing), closed afterwards whatever
/// happened, so the migrator's session lock never lingers in the pool.
/// Returns the schema the tables are in.
async fn migrate(connect: &PgConnectOptions, schema: Option<&str>) -> StoreResult<String> {
    let mut conn = connect.connect().await.map_err(error::map_err)?;
    let result = async {
        sqlx::query("SET statement_timeout TO 0")
            .execute(&mut conn)
            .await
            .map_err(error::map_err)?;
        if let Some(schema) = schema {
            let created = sqlx::query(sqlx::AssertSqlSafe(format!(
                r#"CREATE SCHEMA IF NOT EXISTS "{schema}""#
            )))
            .execute(&mut conn)
            .await;
            match created {
                // Two instances creating it at once: one of them loses the race.
                Err(sqlx::Error::Database(db))
                    if db.code().as_deref() == Some("23505")
                        || db.code().as_deref() == Some("42P06") => {}
                other => {
                    other.map_err(error::map_err)?;
                }
            }
        }
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| crate::migration_error(e, error::map_err))?;
        let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut conn)
            .await
            .map_err(error::map_err)?;
        current.ok_or_else(|| {
            StoreError::Internal("no schema selected: check the search_path".to_owned())
        })
    }
    .await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing the migration connection");
    }
    result
}
