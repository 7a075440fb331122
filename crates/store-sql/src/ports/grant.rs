//! Grants (authorizations) and what hangs from them: codes, refresh-token
//! families, remembered consent and revoked access tokens.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{AuthCode, ChangeKind, Consent, Grant, RefreshToken};
use gatehouse_core::ports::{GrantStore, Redeemed, StoreResult};

use crate::rows::{ConsentRow, GrantRow, RefreshTokenRow, to_json};
use crate::write::Write;
use crate::{Dialect, SqlStore};

/// The organization a grant's change belongs to: its app's (a person authorizes
/// only apps of their own organization), else its user's once the app is gone.
const GRANT_ORG: &str = "SELECT COALESCE(
     (SELECT a.org_id FROM grants g JOIN apps a ON a.client_id = g.client_id WHERE g.id = $1),
     (SELECT u.org_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = $1),
     '')";

/// Stores a refresh token (the first of a family, or a rotation's successor).
pub(crate) const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (digest, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Binds a refresh token to [`INSERT_REFRESH_TOKEN`]'s parameters.
macro_rules! bind_refresh_token {
    ($query:expr, $t:expr) => {
        $query
            .bind(&$t.digest)
            .bind(&$t.grant_id)
            .bind(&$t.client_id)
            .bind(to_json(&$t.scopes))
            .bind($t.expires_at)
            .bind($t.used_at)
            .bind(&$t.dpop_jkt)
    };
}
pub(crate) use bind_refresh_token;

for_each_dialect! {
    #[async_trait]
    impl GrantStore for SqlStore<D> {
        async fn insert_grant(&self, g: &Grant) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO grants (id, client_id, user_id, scopes, audience, generation, sid, auth_time, created_at, revoked_at, claims, amr)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&g.id)
            .bind(&g.client_id)
            .bind(&g.user_id)
            .bind(to_json(&g.scopes))
            .bind(&g.audience)
            .bind(g.generation)
            .bind(&g.sid)
            .bind(g.auth_time)
            .bind(g.created_at)
            .bind(g.revoked_at)
            .bind(g.claims.to_stored())
            .bind(to_json(&g.amr))
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(())
        }

        async fn grant(&self, id: &str) -> StoreResult<Grant> {
            self.one::<GrantRow, _>("SELECT * FROM grants WHERE id = $1", id).await
        }

        async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done =
                sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                // Already revoked (keep the first time, record nothing) or no such grant.
                sqlx::query("SELECT 1 FROM grants WHERE id = $1")
                    .bind(id)
                    .fetch_one(w.conn())
                    .await
                    .map_err(D::map_err)?;
                return w.rollback().await;
            }
            let org_id: String = sqlx::query_scalar(GRANT_ORG)
                .bind(id)
                .fetch_one(w.conn())
                .await
                .map_err(D::map_err)?;
            w.change(&org_id, ChangeKind::Grant, id, now).await?;
            w.commit().await
        }

        async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO auth_codes (digest, grant_id, client_id, redirect_uri, nonce, code_challenge, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.digest)
            .bind(&c.grant_id)
            .bind(&c.client_id)
            .bind(&c.redirect_uri)
            .bind(&c.nonce)
            .bind(&c.code_challenge)
            .bind(c.expires_at)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(())
        }

        async fn burn_code(&self, digest: &str, now: UnixTime) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query(
                "UPDATE auth_codes SET used_at = $1, finished_at = $1 WHERE digest = $2 AND used_at IS NULL",
            )
            .bind(now)
            .bind(digest)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.commit().await
        }

        async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
            bind_refresh_token!(sqlx::query(INSERT_REFRESH_TOKEN), t)
                .execute(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(())
        }

        async fn refresh_token(&self, digest: &str) -> StoreResult<RefreshToken> {
            self.one::<RefreshTokenRow, _>("SELECT * FROM refresh_tokens WHERE digest = $1", digest)
                .await
        }

        async fn rotate_refresh_token(
            &self,
            digest: &str,
            next: &RefreshToken,
            now: UnixTime,
        ) -> StoreResult<Redeemed<RefreshToken>> {
            let mut w = self.write().await?;
            let rotated = w.rotate_refresh_token(digest, next, now).await?;
            if matches!(rotated, Redeemed::Fresh(_)) {
                w.commit().await?;
            } else {
                w.rollback().await?;
            }
            Ok(rotated)
        }

        async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Consent> {
            let row: ConsentRow =
                sqlx::query_as("SELECT * FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user_id)
                    .bind(client_id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(D::map_err)?;
            row.try_into()
        }

        async fn save_consent(&self, c: &Consent) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
            )
            .bind(&c.user_id)
            .bind(&c.client_id)
            .bind(to_json(&c.scopes))
            .bind(c.updated_at)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(())
        }

        async fn revoke_access_token(
            &self,
            jti: &str,
            org_id: &str,
            expires_at: UnixTime,
            now: UnixTime,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(expires_at)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                // Revoked before; that change is already in the feed.
                return w.rollback().await;
            }
            w.change(org_id, ChangeKind::Token, jti, now).await?;
            w.commit().await
        }

        async fn is_access_token_revoked(&self, jti: &str) -> StoreResult<bool> {
            let hit = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(hit.is_some())
        }
    }

    impl Write<'_, D> {
        /// Marks `digest` used and stores `next`, in this transaction: of
        /// concurrent callers the first to take the row gets `Fresh` (the
        /// others, once it commits, match nothing). The caller commits a
        /// `Fresh` answer; a replay wrote nothing.
        pub(crate) async fn rotate_refresh_token(
            &mut self,
            digest: &str,
            next: &RefreshToken,
            now: UnixTime,
        ) -> StoreResult<Redeemed<RefreshToken>> {
            let fresh: Option<RefreshTokenRow> = sqlx::query_as(
                "UPDATE refresh_tokens SET used_at = $1 WHERE digest = $2 AND used_at IS NULL RETURNING *",
            )
            .bind(now)
            .bind(digest)
            .fetch_optional(self.conn())
            .await
            .map_err(D::map_err)?;
            if let Some(row) = fresh {
                let old = row.try_into()?;
                // If the successor cannot be stored, the rotation is undone.
                bind_refresh_token!(sqlx::query(INSERT_REFRESH_TOKEN), next)
                    .execute(self.conn())
                    .await
                    .map_err(D::map_err)?;
                return Ok(Redeemed::Fresh(old));
            }
            let grant_id: String =
                sqlx::query_scalar("SELECT grant_id FROM refresh_tokens WHERE digest = $1")
                    .bind(digest)
                    .fetch_one(self.conn())
                    .await
                    .map_err(D::map_err)?;
            Ok(Redeemed::Replayed { grant_id })
        }
    }
}
