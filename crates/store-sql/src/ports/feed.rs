//! The change feed: what every cache and the revocation feed follow. Its hint
//! and wake-up come from the dialect (WAL fingerprint, `NOTIFY`) combined with
//! this process's own committed changes (`write.rs`).

use async_trait::async_trait;
use gatehouse_core::model::Change;
use gatehouse_core::ports::{ChangeFeed, StoreResult};

use crate::rows::{ChangeRow, models};
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl ChangeFeed for SqlStore<D> {
        async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
            // Every request after a write reads it: the hot path's connections.
            let rows: Vec<ChangeRow> = read_on!(self.direct, D::map_err, |conn| {
                sqlx::query_as("SELECT * FROM changes WHERE seq > $1 ORDER BY seq LIMIT CAST($2 AS BIGINT)")
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(conn)
            })?;
            models(rows)
        }

        async fn latest_change(&self) -> StoreResult<i64> {
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
                .fetch_one(&self.pool)
                .await
                .map_err(D::map_err)
        }

        fn change_hint(&self) -> Option<u64> {
            self.dialect.change_hint(self.changes_written())
        }

        /// Another writer's announcement (the dialect's), or a change this
        /// process committed.
        async fn change_notified(&self) {
            tokio::select! {
                () = self.dialect.change_notified() => {}
                () = self.change_written() => {}
            }
        }
    }
}
