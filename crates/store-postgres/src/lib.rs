//! The PostgreSQL Store: several Gatehouse instances on one database act as one.
//!
//! It mirrors the SQLite Store on purpose: the same schema (unix seconds in
//! BIGINT, TEXT ids, lists as JSON text in TEXT columns rather than JSONB, so
//! both backends store and decode alike), the same runtime-checked queries with
//! `$1` placeholders, and the conformance suite as the safety net.
//!
//! What PostgreSQL adds:
//! - Write transactions are plain `BEGIN` (READ COMMITTED). The one-winner
//!   operations (redeeming a code, rotating a refresh token) are a single
//!   conditional `UPDATE … WHERE used_at IS NULL RETURNING *`: the row lock
//!   decides, across connections and processes.
//! - The change feed stays in commit order: appending to it first takes a
//!   transaction-level advisory lock, so a sequence number is never handed out
//!   while an earlier one is still uncommitted (readers would skip it for good).
//! - Every change also sends `NOTIFY gatehouse_changes` (payload: the schema) in
//!   its transaction; [`PgStore::change_listener`] and
//!   [`ChangeFeed::change_notified`](gatehouse_core::ports::ChangeFeed::change_notified)
//!   let readers wake at once instead of polling.

mod decode;
mod error;
mod impls;
mod notify;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};

pub use error::map_err;
use gatehouse_core::model::ChangeKind;
use gatehouse_core::ports::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The channel every change is announced on; the payload is the schema whose
/// feed moved (several Gatehouse schemas may share a database).
pub const CHANGE_CHANNEL: &str = "gatehouse_changes";

/// Key of the transaction-level advisory lock that orders appends to the change
/// feed ("gatehouse" + "changes", arbitrary but fixed).
const CHANGES_LOCK: i64 = 0x6761_7465_6368_6731;

#[derive(Debug, Clone)]
pub struct PgOptions {
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

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// How to open a connection like the pool's (for listeners).
    connect: PgConnectOptions,
    /// The schema the tables live in: the payload of this store's notifications.
    schema: Arc<str>,
    notifier: Arc<notify::Notifier>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgStore {
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

        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            // sqlx pings a connection on every checkout by default: one extra round
            // trip per statement. A dead connection fails its statement instead,
            // which maps to Unavailable (503, retry) like any outage.
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        Ok(Self {
            pool,
            connect,
            schema: schema.into(),
            notifier: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema Gatehouse's tables live in; also the payload of its
    /// notifications on [`CHANGE_CHANNEL`].
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A listener on its own connection, already `LISTEN`ing on
    /// [`CHANGE_CHANNEL`]. Every committed change sends one notification whose
    /// payload is the schema it happened in (compare with [`Self::schema`] when
    /// several schemas share the database). A notification only says "read the
    /// feed": the feed itself is the truth, and notifications sent while the
    /// listener was reconnecting are lost.
    pub async fn change_listener(&self) -> StoreResult<PgListener> {
        notify::listener(&self.connect).await.map_err(map_err)
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(map_err)
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
    let mut conn = connect.connect().await.map_err(map_err)?;
    let result = async {
        sqlx::query("SET statement_timeout TO 0")
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
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
                    other.map_err(map_err)?;
                }
            }
        }
        MIGRATOR.run(&mut conn).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Internal(format!(
                "the database was migrated by a newer Gatehouse (migration {v} is unknown to this binary); upgrade the binary"
            )),
            sqlx::migrate::MigrateError::Execute(e) => match map_err(e) {
                StoreError::Internal(m) => StoreError::Internal(format!("migration failed: {m}")),
                other => other,
            },
            other => StoreError::Internal(format!("migration failed: {other}")),
        })?;
        let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut conn)
            .await
            .map_err(map_err)?;
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

/// Appends to the change feed inside the caller's transaction, in commit order,
/// and announces it (delivered when, and only if, the transaction commits).
/// Callers commit right after: the ordering lock is held until then.
/// `org_id` is the organization whose APIs may see the change ("" for all).
async fn record_change(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    org_id: &str,
    kind: ChangeKind,
    key: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHANGES_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    sqlx::query("INSERT INTO changes (kind, key, at, org_id) VALUES ($1, $2, $3, $4)")
        .bind(kind.as_str())
        .bind(key)
        .bind(at)
        .bind(org_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGE_CHANNEL)
        .bind(schema)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Appends an audit event inside the change's own transaction.
async fn record_audit(
    tx: &mut Transaction<'_, Postgres>,
    e: &gatehouse_core::model::AuditEvent,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (org_id, at, actor_kind, actor_id, actor_name, address, action, target, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.org_id)
    .bind(e.at)
    .bind(e.actor_kind.as_str())
    .bind(&e.actor_id)
    .bind(&e.actor_name)
    .bind(&e.address)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.detail)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}
