//! Connections for the hot path's one-statement calls, kept outside sqlx's
//! pool. sqlx 0.9 pings every pooled connection on its way back
//! (`return_to_pool`, unconditionally): on PostgreSQL that is one more round
//! trip per statement (a refresh made four where two do), on SQLite one more
//! hop to the connection's worker thread and back. A connection leased here
//! goes back to the idle list without a ping, and only when the call on it ran
//! to its end without failing on the connection itself; a call whose future
//! was dropped midway (the client went away) or that met an I/O or protocol
//! error takes its connection with it, so no connection of unknown state is
//! ever reused (sqlx pings for the same reason).
//!
//! The grant flow's reads and writes, the change feed's reads and the
//! single-row reads go through here; transactions stay on the pool.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, Database};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A connection idle for longer is closed rather than reused: a firewall or
/// the server may have dropped it meanwhile (sqlx's pool's `idle_timeout`).
const IDLE_LIMIT: Duration = Duration::from_secs(600);

type Options<DB> = <<DB as Database>::Connection as Connection>::Options;

pub(crate) struct Direct<DB: Database> {
    connect: Options<DB>,
    /// Most recently returned last: the warmest connection is reused first.
    idle: Mutex<Vec<(DB::Connection, Instant)>>,
    /// One per connection that may be open, idle or leased.
    permits: Semaphore,
    max: u32,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

/// Connections open, idle and allowed, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionUse {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// `max` connections in all, split between the pool (transactions and the
/// rest) and the hot path: half each, at least one each.
pub(crate) fn split(max: u32) -> (u32, u32) {
    let direct = (max / 2).max(1);
    ((max.saturating_sub(direct)).max(1), direct)
}

impl<DB: Database> Direct<DB> {
    pub(crate) fn new(connect: Options<DB>, max: u32, acquire_timeout: Duration) -> Self {
        Self {
            connect,
            idle: Mutex::default(),
            permits: Semaphore::new(max as usize),
            max,
            acquire_timeout,
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(DB::Connection, Instant)>> {
        // A panic while holding it cannot leave the list half-changed.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection for one call: the warmest idle one, or a new one. Waits at
    /// most the acquire timeout for a free slot (`PoolTimedOut`, which callers
    /// report as unavailable like the pool's).
    pub(crate) async fn lease(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let reused = loop {
            let Some((conn, since)) = self.idle().pop() else {
                break None;
            };
            if since.elapsed() < IDLE_LIMIT {
                break Some(conn);
            }
            let _ = conn.close().await;
        };
        let conn = match reused {
            Some(conn) => conn,
            None => self.connect.connect().await?,
        };
        Ok(Lease {
            direct: self,
            conn: Some(conn),
            reusable: false,
            _permit: permit,
        })
    }

    pub(crate) fn usage(&self) -> ConnectionUse {
        let idle = u32::try_from(self.idle().len()).unwrap_or(u32::MAX);
        let leased = self
            .max
            .saturating_sub(u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX));
        ConnectionUse {
            open: idle + leased,
            idle,
            max: self.max,
        }
    }

    /// Closes the idle connections; leased ones close as their calls end, and
    /// no new lease is granted.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }
}

/// One connection, leased for one call; see [`Lease::finish`].
pub(crate) struct Lease<'d, DB: Database> {
    direct: &'d Direct<DB>,
    conn: Option<DB::Connection>,
    /// Set by [`Lease::finish`] when the call ended and the connection is sound.
    reusable: bool,
    /// Dropped after [`Drop::drop`] has put the connection back.
    _permit: SemaphorePermit<'d>,
}

impl<DB: Database> Lease<'_, DB> {
    /// The connection to run the call on.
    pub(crate) fn conn(&mut self) -> Result<&mut DB::Connection, sqlx::Error> {
        // Only `Drop` takes it out.
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// The call's outcome: the connection goes back to the idle list unless
    /// the call failed on the connection itself. An error the database
    /// answered with (a constraint, a cancelled statement) or no row leaves the
    /// connection ready for the next statement; one that ends the session
    /// (PostgreSQL's class 08 and 57P: a shutdown, a terminated backend) does not.
    pub(crate) fn finish<T>(mut self, outcome: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        self.reusable = match &outcome {
            Ok(_) | Err(sqlx::Error::RowNotFound) => true,
            Err(sqlx::Error::Database(e)) => !e
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            Err(_) => false,
        };
        outcome
    }
}

impl<DB: Database> Drop for Lease<'_, DB> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.reusable && !self.direct.closed.load(Ordering::SeqCst) {
            self.direct.idle().push((conn, Instant::now()));
        }
        // Otherwise it is dropped here: its socket (PostgreSQL) or its worker
        // thread and handle (SQLite) closes without another round trip.
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Direct, split};
    use crate::testing::{PgTestSchema, pg_url};

    #[test]
    fn the_connections_are_split_with_at_least_one_each() {
        assert_eq!(split(10), (5, 5));
        assert_eq!(split(7), (4, 3));
        assert_eq!(split(2), (1, 1));
        assert_eq!(split(1), (1, 1));
        assert_eq!(split(0), (1, 1));
    }

    async fn pg_direct(
        max: u32,
        acquire_timeout: Duration,
    ) -> (PgTestSchema, Direct<sqlx::Postgres>) {
        use std::str::FromStr;
        let schema = PgTestSchema::new();
        // Creates the schema; the direct connections open with its options.
        drop(schema.open().await);
        let connect = sqlx::postgres::PgConnectOptions::from_str(&pg_url())
            .unwrap()
            .options([("search_path", schema.name())]);
        (schema, Direct::new(connect, max, acquire_timeout))
    }

    async fn backend_pid(direct: &Direct<sqlx::Postgres>) -> i32 {
        let mut lease = direct.lease().await.unwrap();
        let outcome = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(lease.conn().unwrap())
            .await;
        lease.finish(outcome).unwrap()
    }

    #[tokio::test]
    async fn a_finished_call_returns_its_connection_for_the_next_one() {
        let (_schema, direct) = pg_direct(2, Duration::from_secs(5)).await;
        let first = backend_pid(&direct).await;
        assert_eq!(direct.usage().idle, 1);
        assert_eq!(
            backend_pid(&direct).await,
            first,
            "the idle connection is reused"
        );

        // An error the database answered with leaves the connection usable.
        let mut lease = direct.lease().await.unwrap();
        let outcome = sqlx::query("SELECT * FROM no_such_table")
            .execute(lease.conn().unwrap())
            .await;
        assert!(matches!(
            lease.finish(outcome),
            Err(sqlx::Error::Database(_))
        ));
        assert_eq!(backend_pid(&direct).await, first);
    }

    /// A client that goes away while its statement runs drops the call's
    /// future: that connection may still have the statement's answer on the
    /// way, and reusing it could hand one request another's rows. It is closed
    /// instead, and the next call gets a fresh connection and its own answer.
    #[tokio::test]
    async fn a_call_abandoned_midway_never_lends_its_connection_again() {
        let (_schema, direct) = pg_direct(1, Duration::from_secs(5)).await;
        let first = backend_pid(&direct).await;
        let abandoned = tokio::time::timeout(Duration::from_millis(100), async {
            let mut lease = direct.lease().await.unwrap();
            let outcome = sqlx::query_scalar::<_, String>("SELECT 'stale' FROM pg_sleep(0.5)")
                .fetch_one(lease.conn().unwrap())
                .await;
            lease.finish(outcome)
        })
        .await;
        assert!(abandoned.is_err(), "the call was cut short");
        assert_eq!(direct.usage().open, 0, "its connection went with it");

        let mut lease = direct.lease().await.unwrap();
        let outcome = sqlx::query_scalar::<_, String>("SELECT 'fresh'")
            .fetch_one(lease.conn().unwrap())
            .await;
        assert_eq!(lease.finish(outcome).unwrap(), "fresh");
        assert_ne!(backend_pid(&direct).await, first);
    }

    /// A connection the server ended (a restart, an administrator) fails its
    /// call once and is not lent again.
    #[tokio::test]
    async fn a_connection_the_server_ended_fails_once_and_is_replaced() {
        let (_schema, direct) = pg_direct(1, Duration::from_secs(5)).await;
        let first = backend_pid(&direct).await;
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_url())
            .await
            .unwrap();
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(first)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(ended);

        let mut lease = direct.lease().await.unwrap();
        let outcome = sqlx::query("SELECT 1").execute(lease.conn().unwrap()).await;
        assert!(
            lease.finish(outcome).is_err(),
            "the dead connection fails its call"
        );
        assert_eq!(direct.usage().open, 0);
        assert_ne!(
            backend_pid(&direct).await,
            first,
            "the next call gets a new one"
        );
    }

    #[tokio::test]
    async fn no_more_than_max_connections_are_lent_at_once() {
        let (_schema, direct) = pg_direct(1, Duration::from_millis(200)).await;
        let held = direct.lease().await.unwrap();
        assert!(matches!(
            direct.lease().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        drop(held);
        // Dropped without `finish`: not reused, but its slot is free again.
        assert_eq!(direct.usage().open, 0);
        backend_pid(&direct).await;

        direct.close().await;
        assert_eq!(
            direct.usage().open,
            0,
            "closing closes the idle connections"
        );
        assert!(matches!(direct.lease().await, Err(sqlx::Error::PoolClosed)));
    }
}
