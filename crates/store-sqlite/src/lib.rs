//! The SQLite Store: Gatehouse's embedded default. WAL mode, a busy timeout instead
//! of immediate `SQLITE_BUSY`, foreign keys on, and `BEGIN IMMEDIATE` for every
//! write transaction so concurrent writers queue instead of deadlocking on a lock
//! upgrade. Runtime-checked queries; the conformance suite is the safety net.

mod decode;
mod error;
mod impls;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use error::map_err;
use gatehouse_core::model::ChangeKind;
use gatehouse_core::ports::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub busy_timeout: Duration,
    pub max_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The write-ahead log: every commit, by any process, writes to it.
    wal: Option<std::path::PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str, opts: SqliteOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout)
            // After each checkpoint the WAL file is cut back to at most 64 MiB.
            .pragma("journal_size_limit", "67108864");
        let file = connect.get_filename().to_path_buf();
        let wal = (!file.as_os_str().is_empty() && file.as_os_str() != ":memory:")
            .then(|| std::path::PathBuf::from(format!("{}-wal", file.display())));
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.busy_timeout + Duration::from_secs(1))
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Internal(format!(
                "the database was migrated by a newer Gatehouse (migration {v} is unknown to this binary); upgrade the binary"
            )),
            other => StoreError::Internal(format!("migration failed: {other}")),
        })?;
        Ok(Self { pool, wal })
    }

    /// A fingerprint of the WAL file (inode, size, modification time): it moves
    /// on every commit by any process, for the price of one `stat`.
    pub(crate) fn wal_fingerprint(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let path = self.wal.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match std::fs::metadata(path) {
            Ok(m) => {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
                #[cfg(unix)]
                std::os::unix::fs::MetadataExt::ino(&m).hash(&mut h);
            }
            Err(_) => 0u8.hash(&mut h),
        }
        Some(h.finish())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }
}

/// Appends to the change feed inside the caller's transaction.
/// `org_id` is the organization whose APIs may see the change ("" for all).
async fn record_change(
    tx: &mut Transaction<'_, Sqlite>,
    org_id: &str,
    kind: ChangeKind,
    key: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO changes (kind, key, at, org_id) VALUES ($1, $2, $3, $4)")
        .bind(kind.as_str())
        .bind(key)
        .bind(at)
        .bind(org_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Appends an audit event inside the change's own transaction.
async fn record_audit(
    tx: &mut Transaction<'_, Sqlite>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = SqliteStore::open(&url, SqliteOptions::default())
            .await
            .unwrap();
        gatehouse_store::run_all(&store).await;
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let org = gatehouse_core::model::Org {
            id: "o".into(),
            slug: "s".into(),
            name: "n".into(),
            created_at: 1,
        };
        {
            let store = SqliteStore::open(&url, SqliteOptions::default())
                .await
                .unwrap();
            use gatehouse_core::ports::OrgStore;
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
        }
        let store = SqliteStore::open(&url, SqliteOptions::default())
            .await
            .unwrap();
        use gatehouse_core::ports::OrgStore;
        assert_eq!(store.org_by_slug("s").await.unwrap(), org);
    }
}
