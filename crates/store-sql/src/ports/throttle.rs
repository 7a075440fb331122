//! Failed-authentication buckets shared by every instance on one database.

use async_trait::async_trait;
use gatehouse_core::ports::{StoreResult, ThrottleStore};

use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl ThrottleStore for SqlStore<D> {
        async fn add_failure(&self, key: &str, rate: f64, now: f64) -> StoreResult<f64> {
            let after: f64 = sqlx::query_scalar(D::ADD_FAILURE)
                .bind(key)
                .bind(rate)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(after - 1.0)
        }

        async fn failure_level(&self, key: &str, rate: f64, now: f64) -> StoreResult<f64> {
            let row: Option<(f64, f64)> =
                sqlx::query_as("SELECT level, updated_at FROM throttle WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(D::map_err)?;
            Ok(row.map_or(0.0, |(level, at)| {
                (level - (now - at).max(0.0) * rate).max(0.0)
            }))
        }
    }
}
