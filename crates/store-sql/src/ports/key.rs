//! Signing keys and their lifecycle (next → active → retired, or revoked).
//! Every change is a `Keys` change for every organization: instances reload
//! their key rings when they see one.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{AuditEvent, ChangeKind, KeyState, StoredKey};
use gatehouse_core::ports::{KeyStore, StoreError, StoreResult};

use crate::rows::{KeyRow, models};
use crate::{Dialect, SqlStore};

/// Changes every organization's APIs see.
const GLOBAL: &str = "";

for_each_dialect! {
    #[async_trait]
    impl KeyStore for SqlStore<D> {
        async fn insert_key(&self, k: &StoredKey) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, state, sealed_private_key, created_at, activated_at, retired_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(k.state.as_str())
            .bind(&k.sealed_private_key)
            .bind(k.created_at)
            .bind(k.activated_at)
            .bind(k.retired_at)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.change(GLOBAL, ChangeKind::Keys, &k.kid, k.created_at).await?;
            w.commit().await
        }

        async fn list_keys(&self) -> StoreResult<Vec<StoredKey>> {
            let rows: Vec<KeyRow> =
                sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(D::map_err)?;
            models(rows)
        }

        async fn set_key_state(&self, kid: &str, state: KeyState, now: UnixTime) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "UPDATE signing_keys SET state = $1,
                     activated_at = CASE WHEN $1 = 'active' THEN COALESCE(activated_at, $3) ELSE activated_at END,
                     retired_at = CASE WHEN $1 IN ('retired', 'revoked') THEN COALESCE(retired_at, $3) ELSE retired_at END
                 WHERE kid = $2",
            )
            .bind(state.as_str())
            .bind(kid)
            .bind(now)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            w.change(GLOBAL, ChangeKind::Keys, kid, now).await?;
            w.commit().await
        }

        async fn promote_next_key(
            &self,
            kid: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<bool> {
            let mut w = self.write().await?;
            // The row lock decides between instances: the loser matches nothing.
            let alg: Option<String> = sqlx::query_scalar(
                "UPDATE signing_keys SET state = 'active', activated_at = $2
                 WHERE kid = $1 AND state = 'next' RETURNING alg",
            )
            .bind(kid)
            .bind(now)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?;
            let Some(alg) = alg else {
                return Ok(false);
            };
            sqlx::query(
                "UPDATE signing_keys SET state = 'retired', retired_at = COALESCE(retired_at, $2)
                 WHERE alg = $1 AND state = 'active' AND kid <> $3",
            )
            .bind(&alg)
            .bind(now)
            .bind(kid)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.change(GLOBAL, ChangeKind::Keys, kid, now).await?;
            w.audit(audit).await?;
            w.commit().await?;
            Ok(true)
        }

        async fn revoke_key(&self, kid: &str, now: UnixTime, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "UPDATE signing_keys SET state = 'revoked', retired_at = COALESCE(retired_at, $2) WHERE kid = $1",
            )
            .bind(kid)
            .bind(now)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            w.change(GLOBAL, ChangeKind::Keys, kid, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }
    }
}
