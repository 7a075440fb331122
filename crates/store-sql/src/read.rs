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
            let row: R = read_on!(self.direct, D::map_err, |conn| sqlx::query_as(sql)
                .bind(key)
                .fetch_one(conn))?;
            row.try_into()
        }

        pub(crate) async fn all<R, T>(&self, sql: &'static str, key: &str) -> StoreResult<Vec<T>>
        where
            R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
            T: TryFrom<R, Error = StoreError>,
        {
            let rows: Vec<R> = read_on!(self.direct, D::map_err, |conn| sqlx::query_as(sql)
                .bind(key)
                .fetch_all(conn))?;
            rows.into_iter().map(T::try_from).collect()
        }
    }
}
