//! The grant flow's writes on PostgreSQL: one statement each, its own
//! transaction (data-modifying CTEs), so one round trip without `BEGIN` and
//! `COMMIT`. The one-winner rule is the plain rotation's: the conditional
//! `UPDATE … WHERE used_at IS NULL` takes the row lock; a concurrent rotation
//! waits for it, re-checks the condition on the updated row and matches
//! nothing, so its CTEs insert nothing either. A statement fails as a whole:
//! a successor that cannot be stored undoes the rotation. Both run on the hot
//! path's connections (`direct.rs`): no ping after them.

use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{ReferenceToken, RefreshToken};
use gatehouse_core::ports::{Redeemed, StoreError, StoreResult};

use super::{PgDialect, error::map_err};
use crate::SqlStore;
use crate::ports::claim_code_once;
use crate::rows::{from_row, to_json};

/// `$1` now, `$2` the presented digest, `$3`–`$8` the successor, `$9`–`$13` the
/// access token's record (all NULL when there is none). One row when the token
/// exists: the old record's columns are NULL when it was used before.
const ROTATE_ISSUING: &str = "WITH known AS (
         SELECT grant_id FROM refresh_tokens WHERE digest = $2
     ), used AS (
         UPDATE refresh_tokens SET used_at = $1 WHERE digest = $2 AND used_at IS NULL RETURNING *
     ), successor AS (
         INSERT INTO refresh_tokens (digest, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt)
         SELECT $3, $4, $5, $6, $7, $8, $14 FROM used
     ), reference AS (
         INSERT INTO reference_tokens (digest, client_id, audience, claims, expires_at)
         SELECT $9, $10, $11, $12, $13 FROM used WHERE $9 IS NOT NULL
     )
     SELECT known.grant_id AS known_grant_id, used.digest, used.grant_id, used.client_id,
            used.scopes, used.expires_at, used.used_at, used.dpop_jkt
     FROM known LEFT JOIN used ON TRUE";

/// `$1` now, `$2` the code's digest, `$3`–`$7` the access token's record,
/// `$8`–`$14` the first refresh token (NULL when there is none): the claim
/// and what it issued, one statement. `claimed` counts what it marked.
const CLAIM_ISSUING: &str = concat!(
    "WITH claim AS (",
    claim_code_once!(),
    " RETURNING 1), reference AS (
         INSERT INTO reference_tokens (digest, client_id, audience, claims, expires_at)
         SELECT $3, $4, $5, $6, $7 FROM claim WHERE $3 IS NOT NULL
     ), refresh AS (
         INSERT INTO refresh_tokens (digest, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt)
         SELECT $8, $9, $10, $11, $12, $13, $14 FROM claim WHERE $8 IS NOT NULL
     )
     SELECT count(*) FROM claim"
);

from_row! {
    struct RotatedRow {
        known_grant_id: String,
        digest: Option<String>,
        grant_id: Option<String>,
        client_id: Option<String>,
        scopes: Option<String>,
        expires_at: Option<i64>,
        used_at: Option<i64>,
        dpop_jkt: Option<String>,
    }
}

impl SqlStore<PgDialect> {
    /// [`GrantFlowStore::rotate_refresh_token_issuing`](gatehouse_core::ports::GrantFlowStore::rotate_refresh_token_issuing).
    pub(crate) async fn rotate_issuing(
        &self,
        digest: &str,
        next: &RefreshToken,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        let mut lease = self.direct.lease().await.map_err(map_err)?;
        let outcome = sqlx::query_as(ROTATE_ISSUING)
            .bind(now)
            .bind(digest)
            .bind(&next.digest)
            .bind(&next.grant_id)
            .bind(&next.client_id)
            .bind(to_json(&next.scopes))
            .bind(next.expires_at)
            .bind(next.used_at)
            .bind(reference.map(|r| &r.digest))
            .bind(reference.map(|r| &r.client_id))
            .bind(reference.map(|r| &r.audience))
            .bind(reference.map(|r| r.claims.to_string()))
            .bind(reference.map(|r| r.expires_at))
            .bind(&next.dpop_jkt)
            .fetch_one(lease.conn().map_err(map_err)?)
            .await;
        let row: RotatedRow = lease.finish(outcome).map_err(map_err)?;
        match row {
            RotatedRow {
                digest: Some(digest),
                grant_id: Some(grant_id),
                client_id: Some(client_id),
                scopes: Some(scopes),
                expires_at: Some(expires_at),
                used_at,
                dpop_jkt,
                ..
            } => Ok(Redeemed::Fresh(RefreshToken {
                scopes: serde_json::from_str(&scopes)
                    .map_err(|e| StoreError::Internal(format!("column scopes: {e}")))?,
                digest,
                grant_id,
                client_id,
                expires_at,
                used_at,
                dpop_jkt,
            })),
            // Used before: nothing was written.
            replayed => Ok(Redeemed::Replayed {
                grant_id: replayed.known_grant_id,
            }),
        }
    }

    /// [`GrantFlowStore::claim_code_issuing`](gatehouse_core::ports::GrantFlowStore::claim_code_issuing).
    pub(crate) async fn claim_issuing(
        &self,
        digest: &str,
        refresh: Option<&RefreshToken>,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut lease = self.direct.lease().await.map_err(map_err)?;
        let outcome = sqlx::query_scalar(CLAIM_ISSUING)
            .bind(now)
            .bind(digest)
            .bind(reference.map(|r| &r.digest))
            .bind(reference.map(|r| &r.client_id))
            .bind(reference.map(|r| &r.audience))
            .bind(reference.map(|r| r.claims.to_string()))
            .bind(reference.map(|r| r.expires_at))
            .bind(refresh.map(|t| &t.digest))
            .bind(refresh.map(|t| &t.grant_id))
            .bind(refresh.map(|t| &t.client_id))
            .bind(refresh.map(|t| to_json(&t.scopes)))
            .bind(refresh.map(|t| t.expires_at))
            .bind(refresh.and_then(|t| t.used_at))
            .bind(refresh.and_then(|t| t.dpop_jkt.as_ref()))
            .fetch_one(lease.conn().map_err(map_err)?)
            .await;
        let claimed: i64 = lease.finish(outcome).map_err(map_err)?;
        Ok(claimed == 1)
    }
}
