//! The grant flow's writes on SQLite: one `BEGIN IMMEDIATE` transaction each
//! (statements on an embedded database cost no round trips; the transaction
//! makes them all or nothing).

use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{ReferenceToken, RefreshToken};
use gatehouse_core::ports::{Redeemed, StoreResult};

use super::{SqliteDialect, error::map_err};
use crate::SqlStore;
use crate::ports::{
    INSERT_REFERENCE_TOKEN, INSERT_REFRESH_TOKEN, bind_reference_token, bind_refresh_token,
};
use crate::rows::to_json;
use crate::write::Write;

impl SqlStore<SqliteDialect> {
    /// [`GrantFlowStore::rotate_refresh_token_issuing`](gatehouse_core::ports::GrantFlowStore::rotate_refresh_token_issuing).
    pub(crate) async fn rotate_issuing(
        &self,
        digest: &str,
        next: &RefreshToken,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        let mut w = self.write().await?;
        let rotated = w.rotate_refresh_token(digest, next, now).await?;
        if !matches!(rotated, Redeemed::Fresh(_)) {
            w.rollback().await?;
            return Ok(rotated);
        }
        if let Some(r) = reference {
            insert_reference_token(&mut w, r).await?;
        }
        w.commit().await?;
        Ok(rotated)
    }

    /// [`GrantFlowStore::finish_code_issuing`](gatehouse_core::ports::GrantFlowStore::finish_code_issuing).
    pub(crate) async fn finish_issuing(
        &self,
        digest: &str,
        refresh: Option<&RefreshToken>,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        if let Some(r) = reference {
            insert_reference_token(&mut w, r).await?;
        }
        if let Some(t) = refresh {
            bind_refresh_token!(sqlx::query(INSERT_REFRESH_TOKEN), t)
                .execute(w.conn())
                .await
                .map_err(map_err)?;
        }
        sqlx::query("UPDATE auth_codes SET finished_at = $1 WHERE digest = $2")
            .bind(now)
            .bind(digest)
            .execute(w.conn())
            .await
            .map_err(map_err)?;
        w.commit().await
    }
}

async fn insert_reference_token(
    w: &mut Write<'_, SqliteDialect>,
    t: &ReferenceToken,
) -> StoreResult<()> {
    bind_reference_token!(sqlx::query(INSERT_REFERENCE_TOKEN), t)
        .execute(w.conn())
        .await
        .map_err(map_err)?;
    Ok(())
}
