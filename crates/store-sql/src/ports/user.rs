//! People: who they are, their status, their role and groups.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{AuditEvent, ChangeKind, Profile, User, UserStatus};
use gatehouse_core::ports::{StoreError, StoreResult, UserStore};

use crate::rows::{UserRow, models, to_json};
use crate::write::Write;
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl UserStore for SqlStore<D> {
        async fn insert_user(&self, u: &User, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            w.insert_user(u).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn user_by_id(&self, id: &str) -> StoreResult<User> {
            self.one::<UserRow, _>("SELECT * FROM users WHERE id = $1", id).await
        }

        async fn user_by_email(&self, org_id: &str, email: &str) -> StoreResult<User> {
            let row: UserRow = sqlx::query_as("SELECT * FROM users WHERE org_id = $1 AND email = $2")
                .bind(org_id)
                .bind(email)
                .fetch_one(&self.pool)
                .await
                .map_err(D::map_err)?;
            row.try_into()
        }

        async fn users_by_email(&self, email: &str, limit: u32) -> StoreResult<Vec<User>> {
            let rows: Vec<UserRow> =
                sqlx::query_as("SELECT * FROM users WHERE email = $1 ORDER BY created_at, id LIMIT CAST($2 AS BIGINT)")
                    .bind(email)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(D::map_err)?;
            models(rows)
        }

        async fn list_users(&self, org_id: &str) -> StoreResult<Vec<User>> {
            self.all::<UserRow, _>("SELECT * FROM users WHERE org_id = $1 ORDER BY email", org_id)
                .await
        }

        async fn set_user_status(
            &self,
            id: &str,
            status: UserStatus,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let org_id: String =
                sqlx::query_scalar("UPDATE users SET status = $1 WHERE id = $2 RETURNING org_id")
                    .bind(status.as_str())
                    .bind(id)
                    .fetch_optional(w.conn())
                    .await
                    .map_err(D::map_err)?
                    .ok_or(StoreError::NotFound)?;
            if status == UserStatus::Deactivated {
                // A deactivation ends the user's tokens for good: re-activating
                // them later must not revive any (the `User` change carries the
                // cut-off to the feed; grants end with their refresh tokens).
                sqlx::query("UPDATE users SET tokens_valid_after = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
                sqlx::query(
                    "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
                // The apps their sessions signed into hear of it now
                // (back-channel logout), in this transaction; each session
                // itself ends when its browser next comes (and says why).
                w.enqueue_logouts(crate::ports::Sessions::OfUser(id), now).await?;
            }
            w.change(&org_id, ChangeKind::User, id, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn set_user_access(
            &self,
            id: &str,
            role: &str,
            groups: &[String],
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let org_id: String = sqlx::query_scalar(
                "UPDATE users SET role = $1, groups = $2 WHERE id = $3 RETURNING org_id",
            )
            .bind(role)
            .bind(to_json(groups))
            .bind(id)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?
            .ok_or(StoreError::NotFound)?;
            w.change(&org_id, ChangeKind::User, id, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn set_user_profile(
            &self,
            id: &str,
            name: Option<&str>,
            profile: &Profile,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "UPDATE users SET name = $1, given_name = $2, family_name = $3, locale = $4,
                                  zoneinfo = $5, email_verified = $6, updated_at = $7
                 WHERE id = $8",
            )
            .bind(name)
            .bind(&profile.given_name)
            .bind(&profile.family_name)
            .bind(&profile.locale)
            .bind(&profile.zoneinfo)
            .bind(profile.email_verified)
            .bind(profile.updated_at)
            .bind(id)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            // No change row: a profile ends no token and stales no cache (tokens
            // do not carry it; userinfo reads it live).
            w.audit(audit).await?;
            w.commit().await
        }
    }

    impl Write<'_, D> {
        /// The user's row (with the registration form's app, see `app.rs`).
        pub(crate) async fn insert_user(&mut self, u: &User) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO users (id, org_id, email, name, password_hash, role, groups, status, created_at, tokens_valid_after,
                                    given_name, family_name, locale, zoneinfo, email_verified, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&u.id)
            .bind(&u.org_id)
            .bind(&u.email)
            .bind(&u.name)
            .bind(&u.password_hash)
            .bind(&u.role)
            .bind(to_json(&u.groups))
            .bind(u.status.as_str())
            .bind(u.created_at)
            .bind(u.tokens_valid_after)
            .bind(&u.profile.given_name)
            .bind(&u.profile.family_name)
            .bind(&u.profile.locale)
            .bind(&u.profile.zoneinfo)
            .bind(u.profile.email_verified)
            .bind(u.profile.updated_at)
            .execute(self.conn())
            .await
            .map_err(D::map_err)?;
            Ok(())
        }
    }
}
