//! The grant flow's writes on SQLite: one `BEGIN IMMEDIATE` transaction each
//! (statements on an embedded database cost no round trips; the transaction
//! makes them all or nothing).

use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{ReferenceToken, RefreshToken};
use gatehouse_core::ports::{Redeemed, StoreResult};

use super::{SqliteDialect, error::map_err};
use crate::ports::{
    INSERT_REFERENCE_TOKEN, INSERT_REFRESH_TOKEN, bind_reference_token, bind_refresh_token,
    claim_code_once,
};
use crate::rows::{RefreshTokenRow, to_json};
use crate::write::Write;
use crate::{Dialect, SqlStore};

impl SqlStore<SqliteDialect> {
    /// [`GrantFlowStore::rotate_refresh_token_issuing`](gatehouse_core::ports::GrantFlowStore::rotate_refresh_token_issuing).
    pub(crate) async fn rotate_issuing(
        &self,
        digest: &str,
        next: &RefreshToken,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        if reference.is_none() {
            return self.rotate_in_one_call(digest, next, now).await;
        }
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

    /// The rotation as one call to the connection's worker thread (sqlx-sqlite
    /// runs each connection on a thread of its own, and every statement sent
    /// there and back costs two context switches: profiled, they were most of a
    /// refresh's CPU). Same transaction, same one-winner rule: the successor is
    /// inserted only if the `UPDATE … WHERE used_at IS NULL` claimed the row.
    async fn rotate_in_one_call(
        &self,
        digest: &str,
        next: &RefreshToken,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        const ROTATE: &str = "BEGIN IMMEDIATE;
             UPDATE refresh_tokens SET used_at = $8 WHERE digest = $9 AND used_at IS NULL RETURNING *;
             INSERT INTO refresh_tokens (digest, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt)
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE changes() = 1;
             COMMIT;";
        let mut turn = self.dialect().write_turn().await;
        let claimed: Result<Vec<RefreshTokenRow>, _> =
            bind_refresh_token!(sqlx::query_as(ROTATE), next)
                .bind(now)
                .bind(digest)
                .fetch_all(turn.conn_for_transaction().await?)
                .await;
        let claimed = turn.ended(claimed).await?;
        if let Some(row) = claimed.into_iter().next() {
            return Ok(Redeemed::Fresh(row.try_into()?));
        }
        // Used before (a replay), or never issued (NotFound).
        let grant_id: String =
            sqlx::query_scalar("SELECT grant_id FROM refresh_tokens WHERE digest = $1")
                .bind(digest)
                .fetch_one(turn.conn().await?)
                .await
                .map_err(map_err)?;
        Ok(Redeemed::Replayed { grant_id })
    }

    /// [`GrantFlowStore::claim_code_issuing`](gatehouse_core::ports::GrantFlowStore::claim_code_issuing):
    /// without an access token record (the JWT case) as one call to the
    /// worker thread (see [`Self::rotate_in_one_call`]); the refresh token is
    /// inserted only if the claim's `UPDATE` changed the row.
    pub(crate) async fn claim_issuing(
        &self,
        digest: &str,
        refresh: Option<&RefreshToken>,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        if let Some(r) = reference {
            return self.claim_with_reference(digest, refresh, r, now).await;
        }
        const CLAIM: &str = concat!(
            "BEGIN IMMEDIATE; ",
            claim_code_once!(),
            " RETURNING 1; COMMIT;"
        );
        const CLAIM_AND_STORE: &str = concat!(
            "BEGIN IMMEDIATE; ",
            claim_code_once!(),
            " RETURNING 1;
             INSERT INTO refresh_tokens (digest, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt)
                 SELECT $3, $4, $5, $6, $7, $8, $9 WHERE changes() = 1;
             COMMIT;"
        );
        let mut turn = self.dialect().write_turn().await;
        let conn = turn.conn_for_transaction().await?;
        let rows = match refresh {
            Some(t) => {
                sqlx::query(CLAIM_AND_STORE)
                    .bind(now)
                    .bind(digest)
                    .bind(&t.digest)
                    .bind(&t.grant_id)
                    .bind(&t.client_id)
                    .bind(to_json(&t.scopes))
                    .bind(t.expires_at)
                    .bind(t.used_at)
                    .bind(&t.dpop_jkt)
                    .fetch_all(conn)
                    .await
            }
            None => {
                sqlx::query(CLAIM)
                    .bind(now)
                    .bind(digest)
                    .fetch_all(conn)
                    .await
            }
        };
        Ok(!turn.ended(rows).await?.is_empty())
    }

    /// [`Self::claim_issuing`] with an access token record, in a write transaction.
    async fn claim_with_reference(
        &self,
        digest: &str,
        refresh: Option<&RefreshToken>,
        reference: &ReferenceToken,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut w = self.write().await?;
        let claimed = sqlx::query(claim_code_once!())
            .bind(now)
            .bind(digest)
            .execute(w.conn())
            .await
            .map_err(map_err)?;
        if claimed.rows_affected() == 0 {
            w.rollback().await?;
            return Ok(false);
        }
        insert_reference_token(&mut w, reference).await?;
        if let Some(t) = refresh {
            bind_refresh_token!(sqlx::query(INSERT_REFRESH_TOKEN), t)
                .execute(w.conn())
                .await
                .map_err(map_err)?;
        }
        w.commit().await?;
        Ok(true)
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
