//! The audit log: written by the mutations in their own transactions
//! ([`Write::audit`](crate::write::Write)), read here newest first.

use async_trait::async_trait;
use gatehouse_core::model::AuditEvent;
use gatehouse_core::ports::{AuditStore, StoreResult};

use crate::rows::{AuditEventRow, models};
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl AuditStore for SqlStore<D> {
        async fn record_security_event(&self, event: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            w.audit(event).await?;
            w.commit().await
        }

        async fn audit_events(
            &self,
            org_id: &str,
            before: Option<i64>,
            limit: u32,
        ) -> StoreResult<Vec<AuditEvent>> {
            let rows: Vec<AuditEventRow> = sqlx::query_as(
                "SELECT * FROM audit_events WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT CAST($3 AS BIGINT)",
            )
            .bind(org_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(D::map_err)?;
            models(rows)
        }
    }
}
