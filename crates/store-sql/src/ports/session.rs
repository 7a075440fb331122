//! Browser sessions at the authorization server.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Session;
use gatehouse_core::ports::{SessionStore, StoreError, StoreResult};

use crate::ports::Sessions;
use crate::rows::{SessionRow, to_json};
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl SessionStore for SqlStore<D> {
        async fn insert_session(&self, s: &Session) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO sessions (id_digest, sid, user_id, auth_time, expires_at, amr, user_agent, address, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&s.id_digest)
            .bind(&s.sid)
            .bind(&s.user_id)
            .bind(s.auth_time)
            .bind(s.expires_at)
            .bind(to_json(&s.amr))
            .bind(&s.user_agent)
            .bind(&s.address)
            .bind(s.last_seen_at)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(())
        }

        async fn session(&self, id_digest: &str, now: UnixTime) -> StoreResult<Session> {
            let row: SessionRow = sqlx::query_as(
                "SELECT * FROM sessions WHERE id_digest = $1 AND ended_at IS NULL AND expires_at > $2",
            )
            .bind(id_digest)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(D::map_err)?;
            row.try_into()
        }

        async fn end_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<()> {
            let mut w = self.write().await?;
            // Only a live session's end tells its apps (the first end is kept).
            w.enqueue_logouts(Sessions::ByDigest(id_digest), now).await?;
            let done = sqlx::query(
                "UPDATE sessions SET ended_at = COALESCE(ended_at, $2) WHERE id_digest = $1",
            )
            .bind(id_digest)
            .bind(now)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            w.commit().await
        }

        async fn touch_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<()> {
            // One statement; on SQLite it waits for this process's write turn.
            self.write_one(
                sqlx::query(
                    "UPDATE sessions SET last_seen_at = $2
                     WHERE id_digest = $1 AND ended_at IS NULL
                       AND (last_seen_at IS NULL OR last_seen_at < $2)",
                )
                .bind(id_digest)
                .bind(now),
            )
            .await?;
            Ok(())
        }

        async fn expire_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<u64> {
            // A cheap read first: an unknown or ended cookie writes nothing.
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT auth_time FROM sessions WHERE id_digest = $1 AND ended_at IS NULL AND expires_at <= $2",
            )
            .bind(id_digest)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            if due.is_none() {
                return Ok(0);
            }
            let mut w = self.write().await?;
            // The conditional delete decides: of the request and the sweep (on
            // any instance), the one that deletes the row tells the apps.
            let gone: Option<(String, String)> = sqlx::query_as(
                "DELETE FROM sessions WHERE id_digest = $1 AND ended_at IS NULL AND expires_at <= $2
                 RETURNING user_id, sid",
            )
            .bind(id_digest)
            .bind(now)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?;
            let Some((user_id, sid)) = gone else {
                w.rollback().await?;
                return Ok(0);
            };
            let n = w.enqueue_expired_logouts(&user_id, &sid, now).await?;
            w.commit().await?;
            Ok(n)
        }

        async fn sweep_expired_sessions(&self, now: UnixTime, limit: u32) -> StoreResult<(u64, u64)> {
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT auth_time FROM sessions WHERE ended_at IS NULL AND expires_at <= $1 LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            if due.is_none() {
                return Ok((0, 0));
            }
            let mut w = self.write().await?;
            // PostgreSQL: a row another instance deletes meanwhile is skipped
            // once its lock is released (the conditions are checked again).
            let gone: Vec<(String, String)> = sqlx::query_as(
                "DELETE FROM sessions
                 WHERE id_digest IN (SELECT id_digest FROM sessions
                                     WHERE ended_at IS NULL AND expires_at <= $1
                                     ORDER BY expires_at LIMIT CAST($2 AS BIGINT))
                   AND ended_at IS NULL AND expires_at <= $1
                 RETURNING user_id, sid",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(w.conn())
            .await
            .map_err(D::map_err)?;
            let mut logouts = 0;
            for (user_id, sid) in &gone {
                logouts += w.enqueue_expired_logouts(user_id, sid, now).await?;
            }
            w.commit().await?;
            Ok((gone.len() as u64, logouts))
        }
    }
}
