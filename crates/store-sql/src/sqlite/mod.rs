//! SQLite, Gatehouse's embedded default: WAL mode, a busy timeout instead of
//! immediate `SQLITE_BUSY`, foreign keys on, and `BEGIN IMMEDIATE` for every
//! write transaction so concurrent writers queue instead of deadlocking on a
//! lock upgrade. The change hint is a fingerprint of the change mark (see
//! [`mark_change`]) combined with this process's write counter.

mod error;
mod grant_flow;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::ports::{StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::{Dialect, SqlStore};

static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> =
    std::sync::LazyLock::new(|| crate::migrations::migrator(crate::migrations::SQLITE));

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub busy_timeout: Duration,
    /// Reading connections in all: half for the hot path's one-statement
    /// reads (`direct.rs`), the rest for the pool; at least one each. The
    /// writer's connection comes on top.
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
    /// The change mark beside the database file (`:memory:` has none).
    mark: Option<PathBuf>,
    /// This process's writers queue here, one `BEGIN IMMEDIATE` at a time. On
    /// the database's lock they would wait in SQLite's busy handler, which
    /// sleeps 1, 2, 5, 10… ms between tries: the lock sat idle between writers,
    /// and writes/s stayed far below what one writer achieves. Other processes
    /// (the CLI) still meet the busy timeout.
    writers: Arc<tokio::sync::Mutex<Writer>>,
}

/// The connection that writes made as one call to SQLite use (the grant flow's
/// claims and rotations, single-statement writes), outside the pool: a pooled
/// connection costs two more round trips to its worker thread (the pool pings
/// it on the way back), and its page cache is reset by every other
/// connection's commit, while the writer's stays warm across writes.
#[derive(Debug)]
pub(crate) struct Writer {
    connect: SqliteConnectOptions,
    conn: Option<SqliteConnection>,
    /// A `BEGIN … COMMIT` call was sent and its end never seen: its future was
    /// dropped (the client went away) and the transaction may still be open,
    /// holding the database's write lock. The next turn rolls it back first.
    unfinished: bool,
}

/// This process's turn to write, with [`Writer`]'s connection.
pub struct WriteTurn(tokio::sync::OwnedMutexGuard<Writer>);

impl WriteTurn {
    /// The writer's connection, opened on first use.
    pub(crate) async fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        let w = &mut *self.0;
        let conn = match &mut w.conn {
            Some(c) => c,
            slot @ None => slot.insert(w.connect.connect().await.map_err(error::map_err)?),
        };
        Ok(conn)
    }

    /// Ends what an abandoned call may have left open (see
    /// [`Writer::unfinished`]) before any write of this turn, on whatever
    /// connection, meets the lock it would hold.
    async fn finish_abandoned(&mut self) {
        let w = &mut *self.0;
        if let (true, Some(conn)) = (w.unfinished, &mut w.conn) {
            // Fails harmlessly when the transaction did end after all.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        w.unfinished = false;
    }

    /// The connection for one call that opens and commits a transaction
    /// itself; [`Self::ended`] must see its outcome.
    pub(crate) async fn conn_for_transaction(&mut self) -> StoreResult<&mut SqliteConnection> {
        self.0.unfinished = true;
        self.conn().await
    }

    /// The outcome of a [`Self::conn_for_transaction`] call. When a statement
    /// after BEGIN failed, the transaction is ended here (when BEGIN itself
    /// failed there is none, and the ROLLBACK fails harmlessly).
    pub(crate) async fn ended<T>(&mut self, outcome: Result<T, sqlx::Error>) -> StoreResult<T> {
        let w = &mut *self.0;
        let outcome = match outcome {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Some(conn) = &mut w.conn {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                }
                if matches!(e, sqlx::Error::WorkerCrashed) {
                    w.conn = None;
                }
                Err(error::map_err(e))
            }
        };
        w.unfinished = false;
        outcome
    }

    /// Closes the connection (the store is closing).
    async fn close(&mut self) {
        if let Some(conn) = self.0.conn.take() {
            let _ = conn.close().await;
        }
    }
}

impl SqlStore<SqliteDialect> {
    /// A write of one statement, on the writer's connection in this process's
    /// turn (`PgStore` has the same method, on its pool).
    pub(crate) async fn write_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Sqlite, SqliteArguments>,
    ) -> StoreResult<SqliteQueryResult> {
        let mut turn = self.dialect().write_turn().await;
        query
            .execute(turn.conn().await?)
            .await
            .map_err(error::map_err)
    }
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
        let writer_connect = connect.clone();
        let file = connect.get_filename().to_path_buf();
        let (pooled, direct) = crate::direct::split(opts.max_connections);
        let acquire_timeout = opts.busy_timeout + Duration::from_secs(1);
        let direct = crate::direct::Direct::new(connect.clone(), direct, acquire_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(pooled)
            // An embedded database has no peer to hang up: the ping before
            // each checkout would only cost another round trip to the
            // connection's worker thread (two context switches).
            .test_before_acquire(false)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(error::map_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| crate::migration_error(e, error::map_err))?;
        // Only a database that is a file has a mark beside it: connected and
        // migrated, it exists now. An in-memory one (`:memory:`, which sqlx
        // names `file:sqlx-in-memory-N`) has none, and no other process.
        let mark = file
            .is_file()
            .then(|| PathBuf::from(format!("{}-changes", file.display())));
        Ok(Self::new(
            pool,
            direct,
            SqliteDialect {
                mark,
                writers: Arc::new(tokio::sync::Mutex::new(Writer {
                    connect: writer_connect,
                    conn: None,
                    unfinished: false,
                })),
            },
        ))
    }
}

/// Longest the change mark grows before it starts over (one byte a change).
const MARK_LIMIT: u64 = 64 * 1024;

/// Appends one byte to the change mark at `path`, a file beside the database
/// that every process appends to after committing a write that recorded a
/// change, and nothing else does. Its fingerprint (inode, size, modification
/// time) is the change hint: one `stat` tells a process whether another one
/// changed anything since its last read of the feed.
///
/// Why not the WAL file, which every commit writes to: then every write moved
/// the hint, and the single-use records written on the hot path (an
/// assertion's `jti`, a claimed code, a rotated refresh token) made the next
/// request of every client read the feed again (measured: a private_key_jwt
/// request cost 301 µs of CPU, 231 µs once its `jti` moved nothing). Telling
/// this process's own writes apart in the WAL cannot be done without a race
/// (another process may commit between our commit and our `stat`).
///
/// Past `limit` bytes the mark is replaced by a fresh file under a new inode,
/// so its fingerprint still moves. A process that dies between its commit and
/// this append leaves the change to the feed's poll (every 10 ms).
fn mark_change(path: &Path, limit: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut mark = open_mark(path, false)?;
    mark.write_all(b".")?;
    if mark.metadata()?.len() >= limit {
        // Written beside it and renamed over it: readers see one file or the
        // other, never a missing mark. Per process: its write turn orders its
        // own appends.
        let fresh = PathBuf::from(format!("{}.{}", path.display(), std::process::id()));
        open_mark(&fresh, true)?.write_all(b".")?;
        std::fs::rename(&fresh, path)?;
    }
    Ok(())
}

/// The mark, for appending (`fresh`: emptied), readable by its owner only
/// like the database beside it.
fn open_mark(path: &Path, fresh: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true);
    if fresh {
        opts.write(true).truncate(true);
    } else {
        opts.append(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// A fingerprint of the change mark at `path` (see [`mark_change`]), for the
/// price of one `stat`; a missing mark has one too.
fn mark_fingerprint(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
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
    h.finish()
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

    type WriteTurn = WriteTurn;

    async fn write_turn(&self) -> Self::WriteTurn {
        let mut turn = WriteTurn(Arc::clone(&self.writers).lock_owned().await);
        turn.finish_abandoned().await;
        turn
    }

    async fn close(&self) {
        self.write_turn().await.close().await;
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

    fn change_committed(&self) {
        if let Some(path) = &self.mark
            && let Err(e) = mark_change(path, MARK_LIMIT)
        {
            tracing::warn!(path = %path.display(), error = %e,
                "cannot append to the change mark: other processes see this change at their next poll of the feed");
        }
    }

    fn change_hint(&self, local: u64) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // `:memory:` has no mark: the local counter alone still moves.
        self.mark.as_deref().map(mark_fingerprint).hash(&mut h);
        local.hash(&mut h);
        Some(h.finish())
    }

    async fn change_notified(&self) {
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests;
