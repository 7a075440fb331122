//! Device authorizations (RFC 8628): started at one instance, decided at
//! another, polled at any. Each step is one conditional statement in a write
//! transaction, so the rules (one decision, one redemption, the poll interval)
//! hold across instances; the person's approval stores its grant in the same
//! transaction.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{DeviceAuthorization, Grant, ReferenceToken, RefreshToken};
use gatehouse_core::ports::{DeviceStore, SLOW_DOWN_STEP, StoreError, StoreResult};

use crate::ports::{
    INSERT_REFERENCE_TOKEN, INSERT_REFRESH_TOKEN, bind_reference_token, bind_refresh_token,
};
use crate::rows::{DeviceAuthorizationRow, to_json};
use crate::{Dialect, SqlStore};

const INSERT: &str = "INSERT INTO device_authorizations
     (device_digest, user_digest, client_id, scopes, audience, status, grant_id, poll_interval,
      last_poll_at, last_poll_too_fast, expires_at, used_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10, $11)";

/// RFC 8628 §3.5: a poll sooner than the interval after the previous one is
/// too fast, and the interval grows by $4 seconds. Every SET expression reads
/// the row as it was before the update (both dialects).
const POLL: &str = "UPDATE device_authorizations SET
       last_poll_too_fast = CASE WHEN last_poll_at IS NOT NULL AND $1 - last_poll_at < poll_interval
                                 THEN TRUE ELSE FALSE END,
       poll_interval = CASE WHEN last_poll_at IS NOT NULL AND $1 - last_poll_at < poll_interval
                            THEN poll_interval + $4 ELSE poll_interval END,
       last_poll_at = $1
     WHERE device_digest = $2 AND client_id = $3
     RETURNING *";

/// The first caller marks an approved, live authorization used and gets it.
const CLAIM: &str = "UPDATE device_authorizations SET used_at = $1
     WHERE device_digest = $2 AND client_id = $3 AND status = 'approved'
       AND used_at IS NULL AND expires_at > $1
     RETURNING *";

const DECIDE: &str = "UPDATE device_authorizations SET status = $1, grant_id = $2
     WHERE user_digest = $3 AND status = 'pending' AND used_at IS NULL AND expires_at > $4";

for_each_dialect! {
    impl SqlStore<D> {
        /// Runs an `UPDATE … RETURNING *` of one row in a write transaction.
        async fn update_returning(
            &self,
            query: sqlx::query::QueryAs<'_, Db, DeviceAuthorizationRow, <Db as sqlx::Database>::Arguments>,
        ) -> StoreResult<DeviceAuthorizationRow> {
            let mut w = self.write().await?;
            let row = query.fetch_optional(w.conn()).await.map_err(D::map_err)?;
            w.commit().await?;
            row.ok_or(StoreError::NotFound)
        }

        /// Marks the pending authorization decided; false when it was not pending and live.
        async fn decide(
            &self,
            w: &mut crate::write::Write<'_, D>,
            status: &str,
            grant_id: Option<&str>,
            user_digest: &str,
            now: UnixTime,
        ) -> StoreResult<bool> {
            let done = sqlx::query(DECIDE)
                .bind(status)
                .bind(grant_id)
                .bind(user_digest)
                .bind(now)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            Ok(done.rows_affected() == 1)
        }
    }

    #[async_trait]
    impl DeviceStore for SqlStore<D> {
        async fn insert_device_authorization(
            &self,
            d: &DeviceAuthorization,
            now: UnixTime,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            // An expired authorization's user code may be drawn again.
            sqlx::query("DELETE FROM device_authorizations WHERE user_digest = $1 AND expires_at <= $2")
                .bind(&d.user_digest)
                .bind(now)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            sqlx::query(INSERT)
                .bind(&d.device_digest)
                .bind(&d.user_digest)
                .bind(&d.client_id)
                .bind(to_json(&d.scopes))
                .bind(&d.audience)
                .bind(d.status.as_str())
                .bind(&d.grant_id)
                .bind(d.interval)
                .bind(d.last_poll_at)
                .bind(d.expires_at)
                .bind(d.used_at)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.commit().await
        }

        async fn pending_device_authorization(
            &self,
            user_digest: &str,
            now: UnixTime,
        ) -> StoreResult<DeviceAuthorization> {
            let row: Option<DeviceAuthorizationRow> = sqlx::query_as(
                "SELECT * FROM device_authorizations
                 WHERE user_digest = $1 AND status = 'pending' AND used_at IS NULL AND expires_at > $2",
            )
            .bind(user_digest)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            row.ok_or(StoreError::NotFound)?.try_into()
        }

        async fn approve_device_authorization(
            &self,
            user_digest: &str,
            g: &Grant,
            now: UnixTime,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            if !self.decide(&mut w, "approved", Some(&g.id), user_digest, now).await? {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO grants (id, client_id, user_id, scopes, audience, generation, sid, auth_time, created_at, revoked_at, claims, amr)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&g.id)
            .bind(&g.client_id)
            .bind(&g.user_id)
            .bind(to_json(&g.scopes))
            .bind(&g.audience)
            .bind(g.generation)
            .bind(&g.sid)
            .bind(g.auth_time)
            .bind(g.created_at)
            .bind(g.revoked_at)
            .bind(g.claims.to_stored())
            .bind(to_json(&g.amr))
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.commit().await
        }

        async fn deny_device_authorization(&self, user_digest: &str, now: UnixTime) -> StoreResult<()> {
            let mut w = self.write().await?;
            if !self.decide(&mut w, "denied", None, user_digest, now).await? {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            w.commit().await
        }

        async fn poll_device_authorization(
            &self,
            device_digest: &str,
            client_id: &str,
            now: UnixTime,
        ) -> StoreResult<(DeviceAuthorization, bool)> {
            let query = sqlx::query_as::<_, DeviceAuthorizationRow>(POLL)
                .bind(now)
                .bind(device_digest)
                .bind(client_id)
                .bind(SLOW_DOWN_STEP);
            let row = self.update_returning(query).await?;
            let too_fast = row.last_poll_too_fast;
            Ok((row.try_into()?, too_fast))
        }

        async fn claim_device_authorization(
            &self,
            device_digest: &str,
            client_id: &str,
            refresh: Option<&RefreshToken>,
            reference: Option<&ReferenceToken>,
            now: UnixTime,
        ) -> StoreResult<DeviceAuthorization> {
            let mut w = self.write().await?;
            let row = sqlx::query_as::<_, DeviceAuthorizationRow>(CLAIM)
                .bind(now)
                .bind(device_digest)
                .bind(client_id)
                .fetch_optional(w.conn())
                .await
                .map_err(D::map_err)?;
            let Some(row) = row else {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            };
            if let Some(r) = reference {
                bind_reference_token!(sqlx::query(INSERT_REFERENCE_TOKEN), r)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            if let Some(t) = refresh {
                bind_refresh_token!(sqlx::query(INSERT_REFRESH_TOKEN), t)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.commit().await?;
            row.try_into()
        }
    }
}
