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
                "INSERT INTO sessions (id_digest, sid, user_id, auth_time, expires_at, amr) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.id_digest)
            .bind(&s.sid)
            .bind(&s.user_id)
            .bind(s.auth_time)
            .bind(s.expires_at)
            .bind(to_json(&s.amr))
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
    }
}
