//! Second factors (TOTP, recovery codes) and the organization's policy on them.
//! Accepting a step or a recovery code is one conditional `UPDATE`: of two
//! instances accepting the same code at once, exactly one changes the row.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{AuditEvent, TotpFactor};
use gatehouse_core::ports::{SecondFactorStore, StoreError, StoreResult};

use crate::rows::TotpRow;
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl SecondFactorStore for SqlStore<D> {
        async fn totp_factor(&self, user_id: &str) -> StoreResult<TotpFactor> {
            let row: TotpRow = sqlx::query_as("SELECT * FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(row.into())
        }

        async fn begin_totp(&self, user_id: &str, sealed_secret: &str, now: UnixTime) -> StoreResult<()> {
            let done = sqlx::query(
                "INSERT INTO user_totp (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
                   created_at = excluded.created_at
                 WHERE user_totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(sealed_secret)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("an authenticator is already confirmed".into()));
            }
            Ok(())
        }

        async fn confirm_totp(
            &self,
            user_id: &str,
            step: i64,
            recovery_digests: &[String],
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "UPDATE user_totp SET confirmed_at = $2, last_step = $3
                 WHERE user_id = $1 AND confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .bind(step)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            for d in recovery_digests {
                sqlx::query("INSERT INTO recovery_codes (user_id, digest) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(d)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.audit(audit).await?;
            w.commit().await
        }

        async fn accept_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
            let done = sqlx::query(
                "UPDATE user_totp SET last_step = $2
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
            )
            .bind(user_id)
            .bind(step)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(done.rows_affected() == 1)
        }

        async fn use_recovery_code(&self, user_id: &str, digest: &str, now: UnixTime) -> StoreResult<bool> {
            let done = sqlx::query(
                "UPDATE recovery_codes SET used_at = $3
                 WHERE user_id = $1 AND digest = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(digest)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(done.rows_affected() == 1)
        }

        async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<u32> {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .fetch_one(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(u32::try_from(n).unwrap_or(0))
        }

        async fn remove_totp(&self, user_id: &str, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn org_requires_mfa(&self, org_id: &str) -> StoreResult<bool> {
            let (required,): (bool,) = sqlx::query_as("SELECT require_mfa FROM orgs WHERE id = $1")
                .bind(org_id)
                .fetch_one(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(required)
        }

        async fn set_org_requires_mfa(
            &self,
            org_id: &str,
            required: bool,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query("UPDATE orgs SET require_mfa = $2 WHERE id = $1")
                .bind(org_id)
                .bind(required)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.audited_if_found(done.rows_affected(), audit).await
        }
    }
}
