//! Back-channel logout: apps' registrations and the durable delivery queue.
//! Deliveries are enqueued by [`enqueue_logouts`] inside the transaction that
//! ends the sessions (before it marks them ended). A worker leases due rows
//! with one conditional `UPDATE … RETURNING` (SQLite: in a write transaction;
//! PostgreSQL: the row lock and the re-checked conditions decide), so a row is
//! handed to one instance at a time; an expired lease is taken over.

use async_trait::async_trait;
use gatehouse_core::backchannel::{
    BackchannelLogout, BackchannelStore, DeliveryStatus, LogoutDelivery, Outcome,
};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::AuditEvent;
use gatehouse_core::ports::{StoreError, StoreResult};

use crate::rows::from_row;
use crate::{Dialect, SqlStore};

from_row! {
    pub(crate) struct DeliveryRow {
        seq: i64,
        client_id: String,
        org_id: String,
        uri: String,
        sub: String,
        sid: Option<String>,
        status: String,
        attempts: i64,
        next_attempt_at: i64,
        last_status: Option<i64>,
        last_error: Option<String>,
        created_at: i64,
        finished_at: Option<i64>,
    }
}

impl TryFrom<DeliveryRow> for LogoutDelivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> StoreResult<Self> {
        Ok(LogoutDelivery {
            seq: r.seq,
            client_id: r.client_id,
            org_id: r.org_id,
            uri: r.uri,
            sub: r.sub,
            sid: r.sid,
            status: DeliveryStatus::parse(&r.status).ok_or_else(|| {
                StoreError::Internal(format!("logout_deliveries.status `{}`", r.status))
            })?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
    }
}

/// One delivery per (live session, app it signed into with a registered URI),
/// once: a session told over (its person deactivated) and ended later is not
/// told again.
/// `$1` picks the sessions (see [`Sessions`]), `$2` is now.
macro_rules! enqueue {
    ($filter:literal) => {
        concat!(
            "INSERT INTO logout_deliveries
               (client_id, org_id, uri, sub, sid, status, attempts, next_attempt_at, created_at)
             SELECT DISTINCT g.client_id, a.org_id, b.uri, s.user_id, s.sid, 'pending', 0, $2, $2
             FROM sessions s
             JOIN grants g ON g.sid = s.sid
             JOIN app_backchannel_logout b ON b.client_id = g.client_id
             JOIN apps a ON a.client_id = g.client_id
             WHERE s.ended_at IS NULL AND s.expires_at > $2
               AND NOT EXISTS (SELECT 1 FROM logout_deliveries x
                               WHERE x.sid = s.sid AND x.client_id = g.client_id)
               AND ",
            $filter
        )
    };
}
const ENQUEUE_BY_DIGEST: &str = enqueue!("s.id_digest = $1");
const ENQUEUE_OF_USER: &str = enqueue!("s.user_id = $1");
const ENQUEUE_OF_USER_EXCEPT: &str = enqueue!("s.user_id = $1 AND s.id_digest <> $3");
const ENQUEUE_OF_USER_SID: &str = enqueue!("s.user_id = $1 AND s.sid = $3");

/// The logouts of a session whose lifetime ran out, deleted in this
/// transaction (so not joined from `sessions`): `$1` its person, `$2` its
/// sid, `$3` now. Once per (sid, app), as above.
const ENQUEUE_EXPIRED: &str = "INSERT INTO logout_deliveries
       (client_id, org_id, uri, sub, sid, status, attempts, next_attempt_at, created_at)
     SELECT DISTINCT g.client_id, a.org_id, b.uri, $1, $2, 'pending', 0, $3, $3
     FROM grants g
     JOIN app_backchannel_logout b ON b.client_id = g.client_id
     JOIN apps a ON a.client_id = g.client_id
     WHERE g.sid = $2
       AND NOT EXISTS (SELECT 1 FROM logout_deliveries x
                       WHERE x.sid = $2 AND x.client_id = g.client_id)";

/// Which sessions [`enqueue_logouts`] ends the logouts of.
pub(crate) enum Sessions<'a> {
    /// The one session with this cookie digest.
    ByDigest(&'a str),
    /// Every live session of this person.
    OfUser(&'a str),
    /// Every live session of this person but the one with this cookie digest
    /// (the browser that changed the password or signed out elsewhere).
    OfUserExcept(&'a str, &'a str),
    /// This person's live session with this `sid` (ended from another browser).
    OfUserSid(&'a str, &'a str),
}

const CLAIM: &str = "UPDATE logout_deliveries SET lease_owner = $1, lease_until = $2
     WHERE status = 'pending' AND next_attempt_at <= $3
       AND (lease_until IS NULL OR lease_until <= $3)
       AND seq IN (SELECT seq FROM logout_deliveries
                   WHERE status = 'pending' AND next_attempt_at <= $3
                     AND (lease_until IS NULL OR lease_until <= $3)
                   ORDER BY seq LIMIT CAST($4 AS BIGINT))
     RETURNING *";

const FINISH: &str = "UPDATE logout_deliveries SET status = $1, attempts = attempts + 1,
       next_attempt_at = $2, last_status = $3, last_error = $4, finished_at = $5,
       lease_owner = NULL, lease_until = NULL
     WHERE seq = $6 AND lease_owner = $7 AND status = 'pending'";

for_each_dialect! {
    impl crate::write::Write<'_, D> {
        /// Enqueues the back-channel logouts of `which` sessions (call it before
        /// marking them ended); returns how many.
        pub(crate) async fn enqueue_logouts(&mut self, which: Sessions<'_>, now: UnixTime) -> StoreResult<u64> {
            if !self.store().logouts_enabled() {
                return Ok(0);
            }
            let (sql, value, keep) = match which {
                Sessions::ByDigest(d) => (ENQUEUE_BY_DIGEST, d, None),
                Sessions::OfUser(u) => (ENQUEUE_OF_USER, u, None),
                Sessions::OfUserExcept(u, k) => (ENQUEUE_OF_USER_EXCEPT, u, Some(k)),
                Sessions::OfUserSid(u, sid) => (ENQUEUE_OF_USER_SID, u, Some(sid)),
            };
            let mut q = sqlx::query(sql).bind(value).bind(now);
            if let Some(k) = keep {
                q = q.bind(k);
            }
            let done = q
                .execute(self.conn())
                .await
                .map_err(D::map_err)?;
            Ok(done.rows_affected())
        }

        /// Enqueues the logouts of the expired session `sid` of `user_id`,
        /// which this transaction deleted; returns how many.
        pub(crate) async fn enqueue_expired_logouts(&mut self, user_id: &str, sid: &str, now: UnixTime) -> StoreResult<u64> {
            if !self.store().logouts_enabled() {
                return Ok(0);
            }
            let done = sqlx::query(ENQUEUE_EXPIRED)
                .bind(user_id)
                .bind(sid)
                .bind(now)
                .execute(self.conn())
                .await
                .map_err(D::map_err)?;
            Ok(done.rows_affected())
        }
    }

    #[async_trait]
    impl BackchannelStore for SqlStore<D> {
        fn set_logouts_enabled(&self, on: bool) {
            self.enable_logouts(on);
        }

        async fn backchannel_logout(&self, client_id: &str) -> StoreResult<Option<BackchannelLogout>> {
            let row: Option<(String, bool)> = sqlx::query_as(
                "SELECT uri, session_required FROM app_backchannel_logout WHERE client_id = $1",
            )
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(row.map(|(uri, session_required)| BackchannelLogout { uri, session_required }))
        }

        async fn set_backchannel_logout(
            &self,
            client_id: &str,
            reg: Option<&BackchannelLogout>,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query("DELETE FROM app_backchannel_logout WHERE client_id = $1")
                .bind(client_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            if let Some(r) = reg {
                sqlx::query(
                    "INSERT INTO app_backchannel_logout (client_id, uri, session_required) VALUES ($1, $2, $3)",
                )
                .bind(client_id)
                .bind(&r.uri)
                .bind(r.session_required)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            }
            w.audit(audit).await?;
            w.commit().await
        }

        async fn claim_logout_deliveries(
            &self,
            owner: &str,
            now: UnixTime,
            lease_until: UnixTime,
            limit: u32,
        ) -> StoreResult<Vec<LogoutDelivery>> {
            // A cheap read first: an idle queue never takes SQLite's write lock.
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM logout_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            if due.is_none() {
                return Ok(Vec::new());
            }
            let claim = sqlx::query_as::<_, DeliveryRow>(CLAIM)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(i64::from(limit));
            let rows = if D::CLAIM_IN_WRITE_TX {
                let mut w = self.write().await?;
                let rows = claim.fetch_all(w.conn()).await.map_err(D::map_err)?;
                w.commit().await?;
                rows
            } else {
                claim.fetch_all(&self.pool).await.map_err(D::map_err)?
            };
            let mut out: Vec<LogoutDelivery> =
                rows.into_iter().map(TryInto::try_into).collect::<StoreResult<_>>()?;
            out.sort_by_key(|d| d.seq);
            Ok(out)
        }

        async fn finish_logout_delivery(
            &self,
            seq: i64,
            owner: &str,
            outcome: &Outcome,
            now: UnixTime,
        ) -> StoreResult<()> {
            let (status, next, code, error, finished, audit) = match outcome {
                Outcome::Delivered { status } => {
                    (DeliveryStatus::Delivered, now, Some(*status), None, Some(now), None)
                }
                Outcome::Retry { at, status, error } => {
                    (DeliveryStatus::Pending, *at, *status, Some(error.as_str()), None, None)
                }
                Outcome::Failed { status, error, audit } => {
                    (DeliveryStatus::Failed, now, *status, Some(error.as_str()), Some(now), Some(audit))
                }
            };
            let mut w = self.write().await?;
            let done = sqlx::query(FINISH)
                .bind(status.as_str())
                .bind(next)
                .bind(code)
                .bind(error)
                .bind(finished)
                .bind(seq)
                .bind(owner)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            if let Some(a) = audit {
                w.audit(a).await?;
            }
            w.commit().await
        }

        async fn logout_deliveries(&self, client_id: &str, limit: u32) -> StoreResult<Vec<LogoutDelivery>> {
            let rows: Vec<DeliveryRow> = sqlx::query_as(
                "SELECT * FROM logout_deliveries WHERE client_id = $1 ORDER BY seq DESC LIMIT CAST($2 AS BIGINT)",
            )
            .bind(client_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(D::map_err)?;
            rows.into_iter().map(TryInto::try_into).collect()
        }
    }
}
