//! The roles whose holders must sign in with a second factor (`roles.require_mfa`).

use async_trait::async_trait;
use gatehouse_core::mfa_policy::RoleMfaStore;
use gatehouse_core::model::AuditEvent;
use gatehouse_core::ports::{StoreError, StoreResult};

use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl RoleMfaStore for SqlStore<D> {
        async fn mfa_roles(&self, org_id: &str) -> StoreResult<Vec<String>> {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT name FROM roles WHERE org_id = $1 AND require_mfa ORDER BY name",
            )
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(rows.into_iter().map(|(n,)| n).collect())
        }

        async fn set_mfa_roles(&self, org_id: &str, roles: &[String], audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let org = sqlx::query("SELECT 1 FROM orgs WHERE id = $1")
                .bind(org_id)
                .fetch_optional(w.conn())
                .await
                .map_err(D::map_err)?;
            if org.is_none() {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            sqlx::query("UPDATE roles SET require_mfa = FALSE WHERE org_id = $1")
                .bind(org_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            for role in roles {
                sqlx::query("UPDATE roles SET require_mfa = TRUE WHERE org_id = $1 AND name = $2")
                    .bind(org_id)
                    .bind(role)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.audit(audit).await?;
            w.commit().await
        }
    }
}
