//! What differs between the SQL databases, and nothing else: the port code in
//! `ports/` is the same text for both and reaches the differences only here.

use std::future::Future;

use gatehouse_core::ports::{StoreError, StoreResult};

pub trait Dialect: std::fmt::Debug + Send + Sync + Sized + 'static {
    type Db: sqlx::Database;

    /// Opens a write transaction. SQLite: `BEGIN IMMEDIATE`, so concurrent
    /// writers queue on the busy timeout instead of failing a lock upgrade.
    const BEGIN_WRITE: &'static str;

    /// Whether a one-statement claim (`UPDATE … WHERE used_at IS NULL
    /// RETURNING *`) needs a write transaction around it to queue behind other
    /// writers (SQLite) or is decided by the row lock on its own (PostgreSQL).
    const CLAIM_IN_WRITE_TX: bool;

    /// The throttle's upsert; it needs the larger of two values (`max` in
    /// SQLite, `GREATEST` in PostgreSQL).
    const ADD_FAILURE: &'static str;

    /// Held for the whole of a write transaction: this process's turn to write.
    type WriteTurn: Send + Sync;

    /// Waits for this process's turn to write (SQLite: an in-process queue in
    /// front of the database's one write lock; PostgreSQL: none, row locks decide).
    fn write_turn(&self) -> impl Future<Output = Self::WriteTurn> + Send + '_;

    /// Closes what the dialect holds beside the pool (SQLite: the writer's
    /// connection).
    fn close(&self) -> impl Future<Output = ()> + Send + '_;

    /// sqlx errors to what a caller can act on.
    fn map_err(e: sqlx::Error) -> StoreError;

    /// Runs in a write transaction right before it appends to the change
    /// feed (which it commits right after): whatever keeps `seq` order equal to
    /// commit order (SQLite: its one write lock already does).
    fn before_change<'a>(
        &'a self,
        conn: &'a mut <Self::Db as sqlx::Database>::Connection,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;

    /// Runs in a write transaction after it appended to the change feed:
    /// announces the change to other instances, on commit (PostgreSQL `NOTIFY`).
    fn announce_change<'a>(
        &'a self,
        conn: &'a mut <Self::Db as sqlx::Database>::Connection,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;

    /// After a write transaction that appended to the change feed has
    /// committed: tells other processes that do not hear announcements
    /// (SQLite: appends to the change mark its change hint is made of).
    fn change_committed(&self);

    /// After purging expired rows (SQLite: bring the WAL back to size).
    fn after_purge<'a>(
        &'a self,
        pool: &'a sqlx::Pool<Self::Db>,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;

    /// The change hint: moves when the database may have been written.
    /// `local` counts the changes this process committed.
    fn change_hint(&self, local: u64) -> Option<u64>;

    /// Resolves when another writer announces a change (PostgreSQL `NOTIFY`);
    /// never, where there are no announcements.
    fn change_notified(&self) -> impl Future<Output = ()> + Send + '_;
}
