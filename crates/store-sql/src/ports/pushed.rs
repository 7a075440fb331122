//! Pushed authorization requests (RFC 9126): stored by one instance, claimed
//! once by whichever instance the browser reaches, like a code's redemption.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::PushedRequest;
use gatehouse_core::ports::{PushedRequestStore, StoreError, StoreResult};

use crate::rows::PushedRequestRow;
use crate::{Dialect, SqlStore};

/// Marks the request used if it was not, is the client's, and is live: the
/// first caller gets the row; a wrong client changes nothing.
const CLAIM: &str = "UPDATE pushed_requests SET used_at = $1
     WHERE digest = $2 AND client_id = $3 AND used_at IS NULL AND expires_at > $1
     RETURNING digest, client_id, params, expires_at";

for_each_dialect! {
    #[async_trait]
    impl PushedRequestStore for SqlStore<D> {
        async fn insert_pushed_request(&self, r: &PushedRequest) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO pushed_requests (digest, client_id, params, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&r.digest)
            .bind(&r.client_id)
            .bind(&r.params)
            .bind(r.expires_at)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(())
        }

        async fn claim_pushed_request(
            &self,
            digest: &str,
            client_id: &str,
            now: UnixTime,
        ) -> StoreResult<PushedRequest> {
            let claim = sqlx::query_as::<_, PushedRequestRow>(CLAIM)
                .bind(now)
                .bind(digest)
                .bind(client_id);
            let row = if D::CLAIM_IN_WRITE_TX {
                let mut w = self.write().await?;
                let row = claim.fetch_optional(w.conn()).await.map_err(D::map_err)?;
                w.commit().await?;
                row
            } else {
                claim.fetch_optional(&self.pool).await.map_err(D::map_err)?
            };
            row.ok_or(StoreError::NotFound)?.try_into()
        }

        async fn pushed_request_claimed(&self, digest: &str, client_id: &str) -> StoreResult<bool> {
            let used: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT used_at FROM pushed_requests WHERE digest = $1 AND client_id = $2",
            )
            .bind(digest)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(matches!(used, Some(Some(_))))
        }
    }
}
