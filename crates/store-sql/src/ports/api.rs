//! APIs (resource servers) and the credentials they introspect with.

use async_trait::async_trait;
use gatehouse_core::model::{Api, AuditEvent, ChangeKind};
use gatehouse_core::ports::{ApiStore, StoreResult};

use crate::rows::{ApiRow, to_json};
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl ApiStore for SqlStore<D> {
        async fn insert_api(&self, a: &Api, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query(
                "INSERT INTO apis (id, org_id, name, audience, scopes, token_format, signing_alg, access_token_ttl, client_id, secret_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&a.id)
            .bind(&a.org_id)
            .bind(&a.name)
            .bind(&a.audience)
            .bind(to_json(&a.scopes))
            .bind(a.token_format.as_str())
            .bind(a.signing_alg.as_str())
            .bind(a.access_token_ttl)
            .bind(&a.client_id)
            .bind(&a.secret_hash)
            .bind(a.created_at)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            // Cached client contexts list the org's APIs; a new one must be seen.
            w.change(&a.org_id, ChangeKind::Api, &a.audience, a.created_at)
                .await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn api_by_audience(&self, audience: &str) -> StoreResult<Api> {
            self.one::<ApiRow, _>("SELECT * FROM apis WHERE audience = $1", audience)
                .await
        }

        async fn api_by_client_id(&self, client_id: &str) -> StoreResult<Api> {
            self.one::<ApiRow, _>("SELECT * FROM apis WHERE client_id = $1", client_id)
                .await
        }

        async fn apis_for_org(&self, org_id: &str) -> StoreResult<Vec<Api>> {
            self.all::<ApiRow, _>(
                "SELECT * FROM apis WHERE org_id = $1 ORDER BY created_at, audience",
                org_id,
            )
            .await
        }
    }
}
