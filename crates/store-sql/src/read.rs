//! The common read shapes: one row, or all rows, selected by one key and
//! converted from its row struct into the model, on the hot path's
//! connections (`direct.rs`).

use gatehouse_core::ports::{StoreError, StoreResult};

use crate::{Dialect, SqlStore};

for_each_dialect! {
    impl SqlStore<D> {
        pub(crate) async fn one<R, T>(&self, sql: &'static str, key: &str) -> StoreResult<T>
        where
            R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
            T: TryFrom<R, Error = StoreError>,
        {
            let mut lease = self.direct.lease().await.map_err(D::map_err)?;
            let outcome = sqlx::query_as(sql)
                .bind(key)
                .fetch_one(lease.conn().map_err(D::map_err)?)
                .await;
            let row: R = lease.finish(outcome).map_err(D::map_err)?;
            row.try_into()
        }

        pub(crate) async fn all<R, T>(&self, sql: &'static str, key: &str) -> StoreResult<Vec<T>>
        where
            R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
            T: TryFrom<R, Error = StoreError>,
        {
            let mut lease = self.direct.lease().await.map_err(D::map_err)?;
            let outcome = sqlx::query_as(sql)
                .bind(key)
                .fetch_all(lease.conn().map_err(D::map_err)?)
                .await;
            let rows: Vec<R> = lease.finish(outcome).map_err(D::map_err)?;
            rows.into_iter().map(T::try_from).collect()
        }
    }
}
