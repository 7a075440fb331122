//! SQLite, Gatehouse's embedded default: WAL mode, a busy timeout instead of
//! immediate `SQLITE_BUSY`, foreign keys on, and `BEGIN IMMEDIATE` for every
//! write transaction so concurrent writers queue instead of deadlocking on a
//! lock upgrade. The change hint is a fingerprint of the WAL file (every commit,
//! by any process, writes to it) combined with this process's write counter.

mod error;
mod grant_flow;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::ports::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Dialect, SqlStore};

static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> =
    std::sync::LazyLock::new(|| crate::migrations::migrator(crate::migrations::SQLITE));

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

#[derive(Debug)]
pub struct SqliteDialect {
    /// The write-ahead log: every commit, by any process, writes to it.
    wal: Option<PathBuf>,
    /// This process's writers queue here, one `BEGIN IMMEDIATE` at a time. On
    /// the database's lock they would wait in SQLite's busy handler, which
    /// sleeps 1, 2, 5, 10… ms between tries: the lock sat idle between writers,
    /// and writes/s stayed far below what one writer achieves. Other processes
    /// (the CLI) still meet the busy timeout.
    writers: Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore<SqliteDialect> {
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
            .then(|| PathBuf::from(format!("{}-wal", file.display())));
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.busy_timeout + Duration::from_secs(1))
            .connect_with(connect)
            .await
            .map_err(error::map_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| crate::migration_error(e, error::map_err))?;
        Ok(Self::new(
            pool,
            SqliteDialect {
                wal,
                writers: Arc::default(),
            },
        ))
    }
}

impl SqliteDialect {
    /// A fingerprint of the WAL file (inode, size, modification time): it moves
    /// on every commit by any process, for the price of one `stat`.
    fn wal_fingerprint(&self, h: &mut impl std::hash::Hasher) -> Option<()> {
        use std::hash::Hash;
        let path = self.wal.as_ref()?;
        match std::fs::metadata(path) {
            Ok(m) => {
                m.len().hash(h);
                m.modified().ok().hash(h);
                #[cfg(unix)]
                std::os::unix::fs::MetadataExt::ino(&m).hash(h);
            }
            Err(_) => 0u8.hash(h),
        }
        Some(())
    }
}

impl Dialect for SqliteDialect {
    type Db = sqlx::Sqlite;

    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    // A lone UPDATE would start as a reader and could fail its lock upgrade
    // with SQLITE_BUSY at once; in BEGIN IMMEDIATE it queues.
    const CLAIM_IN_WRITE_TX: bool = true;

    const ADD_FAILURE: &'static str =
        "INSERT INTO throttle (key, level, updated_at) VALUES ($1, 1.0, $3)
         ON CONFLICT (key) DO UPDATE SET
             level = max(0.0, throttle.level - max(0.0, $3 - throttle.updated_at) * $2) + 1.0,
             updated_at = max(throttle.updated_at, $3)
         RETURNING level";

    type WriteTurn = tokio::sync::OwnedMutexGuard<()>;

    async fn write_turn(&self) -> Self::WriteTurn {
        Arc::clone(&self.writers).lock_owned().await
    }

    fn map_err(e: sqlx::Error) -> StoreError {
        error::map_err(e)
    }

    // The write transaction holds SQLite's one write lock: `seq` order is
    // commit order without more, and there is no one to announce to.
    async fn before_change<'a>(&'a self, _conn: &'a mut sqlx::SqliteConnection) -> StoreResult<()> {
        Ok(())
    }

    async fn announce_change<'a>(
        &'a self,
        _conn: &'a mut sqlx::SqliteConnection,
    ) -> StoreResult<()> {
        Ok(())
    }

    async fn after_purge<'a>(&'a self, pool: &'a sqlx::SqlitePool) -> StoreResult<()> {
        // Busy readers can keep the WAL from restarting for ever; a truncating
        // checkpoint (waiting on the busy timeout) brings it back to size.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .map_err(error::map_err)?;
        Ok(())
    }

    fn change_hint(&self, local: u64) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // `:memory:` has no WAL: the local counter alone still moves.
        let _ = self.wal_fingerprint(&mut h);
        local.hash(&mut h);
        Some(h.finish())
    }

    async fn change_notified(&self) {
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests;
