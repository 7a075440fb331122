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
//! A database restart or failover ends every connection it had, and nothing
//! says so until one is used. A connection that sat idle for longer than
//! [`PING_AFTER`] is pinged before it is lent; a call that finds its
//! connection dead closes every idle one, which the same event ended; and a
//! read that met a dead reused connection runs once more on a new one
//! ([`read_on!`]): a read can be repeated, a write cannot, so a write fails
//! with its connection (503, and the client retries).
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

/// A connection idle for longer is pinged before it is lent (HikariCP's
/// `aliveBypassWindowMs`, 500 ms too): under load connections come back within
/// milliseconds and go out again without the round trip; after a quiet spell,
/// such as an outage, the ping finds the dead ones before a request does.
pub(crate) const PING_AFTER: Duration = Duration::from_millis(500);

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
            let Some((mut conn, since)) = self.idle().pop() else {
                break None;
            };
            let idle_for = since.elapsed();
            if idle_for >= IDLE_LIMIT {
                let _ = conn.close().await;
                continue;
            }
            if idle_for < PING_AFTER || conn.ping().await.is_ok() {
                break Some(conn);
            }
            // The server ended it while it sat idle: most likely it ended the
            // others too (a restart, a failover).
            self.discard_idle();
            break None;
        };
        let (conn, reused) = match reused {
            Some(conn) => (conn, true),
            None => (self.connect.connect().await?, false),
        };
        Ok(Lease {
            direct: self,
            reused,
            conn: Some(conn),
            end: End::Abandoned,
            _permit: permit,
        })
    }

    /// Drops every idle connection without a round trip: their sockets (or
    /// SQLite worker threads) close as they go.
    fn discard_idle(&self) {
        drop(std::mem::take(&mut *self.idle()));
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

/// How a lease's call ended, which decides its connection's fate.
#[derive(Clone, Copy)]
enum End {
    /// The call ran to its end and the connection is sound: lend it again.
    Sound,
    /// The call failed on the connection itself: close it and the idle ones.
    Broken,
    /// The call never finished (its future was dropped): close it alone.
    Abandoned,
}

/// One connection, leased for one call; see [`Lease::finish`].
pub(crate) struct Lease<'d, DB: Database> {
    direct: &'d Direct<DB>,
    /// Taken from the idle list rather than opened for this call.
    reused: bool,
    conn: Option<DB::Connection>,
    /// Set by [`Lease::finish`]; a lease dropped before it is `Abandoned`.
    end: End,
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
    /// the call failed on the connection itself ([`broken`]), in which case it
    /// and the idle connections are closed.
    pub(crate) fn finish<T>(mut self, outcome: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        let broken = outcome.as_ref().err().is_some_and(broken);
        self.end = if broken { End::Broken } else { End::Sound };
        outcome
    }

    /// Whether the connection came from the idle list (and so may have died
    /// there) rather than being opened for this call.
    pub(crate) fn reused(&self) -> bool {
        self.reused
    }
}

/// Whether a call's error ended its connection: an I/O or protocol error, or
/// one of PostgreSQL's class 08 and 57P (a shutdown, a terminated backend).
/// An error the database answered with otherwise (a constraint, a cancelled
/// statement) or no row leaves the connection ready for the next statement.
pub(crate) fn broken(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::RowNotFound => false,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => true,
    }
}

/// Runs one read on a leased connection: `read_on!(direct, map_err, |conn|
/// future)`. A read that met a dead reused connection (a restart happened
/// while it sat idle for less than [`PING_AFTER`]) runs once more, on a new
/// connection since the failure closed the idle ones.
macro_rules! read_on {
    ($direct:expr, $map_err:path, |$conn:ident| $call:expr) => {{
        let mut retried = false;
        loop {
            let mut lease = $direct.lease().await.map_err($map_err)?;
            let reused = lease.reused();
            let outcome = {
                let $conn = lease.conn().map_err($map_err)?;
                $call.await
            };
            match lease.finish(outcome) {
                Err(e) if reused && !retried && $crate::direct::broken(&e) => retried = true,
                other => break other.map_err($map_err),
            }
        }
    }};
}

impl<DB: Database> Drop for Lease<'_, DB> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match self.end {
            End::Sound if !self.direct.closed.load(Ordering::SeqCst) => {
                self.direct.idle().push((conn, Instant::now()));
            }
            End::Broken => self.direct.discard_idle(),
            End::Sound | End::Abandoned => {}
        }
        // A connection not put back is dropped here: its socket (PostgreSQL)
        // or its worker thread and handle (SQLite) closes without another
        // round trip.
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

    /// Opens `n` connections at once and returns them to the idle list.
    async fn warm(direct: &Direct<sqlx::Postgres>, n: usize) -> Vec<i32> {
        let mut leases = Vec::new();
        for _ in 0..n {
            leases.push(direct.lease().await.unwrap());
        }
        let mut pids = Vec::new();
        for mut lease in leases {
            let outcome = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(lease.conn().unwrap())
                .await;
            pids.push(lease.finish(outcome).unwrap());
        }
        assert_eq!(direct.usage().idle, u32::try_from(n).unwrap());
        pids
    }

    /// What a database restart does to the connections it had.
    async fn terminate(pids: &[i32]) {
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_url())
            .await
            .unwrap();
        for pid in pids {
            let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(&mut admin)
                .await
                .unwrap();
            assert!(ended);
        }
    }

    /// A connection the server ended moments ago (a failover under load) fails
    /// the one call that meets it, and that call closes the other idle
    /// connections, which the same event ended: the next call gets a new one.
    #[tokio::test]
    async fn a_call_that_meets_a_dead_connection_clears_the_idle_ones() {
        let (_schema, direct) = pg_direct(3, Duration::from_secs(5)).await;
        let before = warm(&direct, 3).await;
        terminate(&before).await;

        let mut lease = direct.lease().await.unwrap();
        let outcome = sqlx::query("SELECT 1").execute(lease.conn().unwrap()).await;
        assert!(
            lease.finish(outcome).is_err(),
            "a connection used within the ping window is not pinged: its call fails"
        );
        assert_eq!(direct.usage().open, 0, "the idle connections went with it");
        let next = backend_pid(&direct).await;
        assert!(!before.contains(&next), "the next call gets a new one");
    }

    /// A read is repeated where a write could not be: one that meets a
    /// connection the server ended moments ago runs again on a new one.
    #[tokio::test]
    async fn a_read_that_meets_a_dead_connection_runs_again_on_a_new_one() {
        fn same(e: sqlx::Error) -> sqlx::Error {
            e
        }
        /// The read's outcome and how many times it ran.
        async fn read(
            direct: &Direct<sqlx::Postgres>,
            sql: &'static str,
        ) -> (Result<i32, sqlx::Error>, u32) {
            let runs = std::cell::Cell::new(0);
            let outcome = async {
                read_on!(direct, same, |conn| {
                    runs.set(runs.get() + 1);
                    sqlx::query_scalar(sql).fetch_one(conn)
                })
            }
            .await;
            (outcome, runs.get())
        }
        let (_schema, direct) = pg_direct(3, Duration::from_secs(5)).await;
        let before = warm(&direct, 3).await;
        terminate(&before).await;

        let (pid, runs) = read(&direct, "SELECT pg_backend_pid()").await;
        let pid = pid.expect("the read is answered");
        assert_eq!(runs, 2, "once on the dead connection, once more");
        assert!(!before.contains(&pid), "on a new connection");
        assert_eq!(direct.usage().open, 1, "the dead ones were all closed");

        // A read that fails for any other reason is not repeated.
        let (failed, runs) = read(&direct, "SELECT 1 FROM no_such_table").await;
        assert!(matches!(failed, Err(sqlx::Error::Database(_))));
        assert_eq!(runs, 1);
    }

    /// Connections idle across an outage are pinged before they are lent: the
    /// first calls after it succeed instead of each meeting a dead connection.
    #[tokio::test]
    async fn after_a_quiet_spell_a_dead_connection_is_found_before_a_call_is() {
        let (_schema, direct) = pg_direct(3, Duration::from_secs(5)).await;
        let before = warm(&direct, 3).await;
        terminate(&before).await;
        tokio::time::sleep(super::PING_AFTER + Duration::from_millis(100)).await;

        let first = backend_pid(&direct).await;
        assert!(!before.contains(&first));
        assert_eq!(direct.usage().open, 1, "the dead ones were all closed");
        assert_eq!(backend_pid(&direct).await, first);
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
