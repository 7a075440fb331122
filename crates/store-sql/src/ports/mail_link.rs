//! E-mailed password links (invitations, resets). A person keeps at most one
//! row: a new link deletes the old ones. Using a link is one conditional
//! `UPDATE` (unused, unexpired), so of two uses exactly one wins, and the rest
//! of the use (password, sessions, grants) happens in the same transaction.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::mail_link::{LinkPurpose, LinkUsed, MailLink, MailLinkStore};
use gatehouse_core::model::{AuditEvent, ChangeKind};
use gatehouse_core::ports::{StoreError, StoreResult};

use crate::ports::Sessions;
use crate::{Dialect, SqlStore};

type LinkRow = (String, String, String, i64, i64);

fn link_of(row: LinkRow) -> StoreResult<MailLink> {
    let (digest, user_id, purpose, created_at, expires_at) = row;
    let purpose = LinkPurpose::parse(&purpose)
        .ok_or_else(|| StoreError::Internal(format!("mail link purpose `{purpose}`")))?;
    Ok(MailLink {
        digest,
        user_id,
        purpose,
        created_at,
        expires_at,
    })
}

for_each_dialect! {
    #[async_trait]
    impl MailLinkStore for SqlStore<D> {
        async fn insert_mail_link(&self, link: &MailLink, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            w.replace_mail_link(link).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn reissue_invitation(&self, link: &MailLink, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            // Locks the person's row (PostgreSQL) while it decides.
            let waiting: Option<String> = sqlx::query_scalar(
                "UPDATE users SET status = status WHERE id = $1 AND status = 'active' AND password_hash IS NULL
                 RETURNING id",
            )
            .bind(&link.user_id)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?;
            if waiting.is_none() {
                w.rollback().await?;
                return Err(StoreError::Conflict("the person has accepted or is not active".into()));
            }
            w.replace_mail_link(link).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn mail_link(&self, digest: &str, now: UnixTime) -> StoreResult<MailLink> {
            let row: LinkRow = sqlx::query_as(
                "SELECT digest, user_id, purpose, created_at, expires_at FROM mail_links
                 WHERE digest = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(digest)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(D::map_err)?;
            link_of(row)
        }

        async fn use_mail_link(
            &self,
            digest: &str,
            password_hash: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<LinkUsed> {
            let mut w = self.write().await?;
            let user_id: Option<String> = sqlx::query_scalar(
                "UPDATE mail_links SET used_at = $2
                 WHERE digest = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING user_id",
            )
            .bind(digest)
            .bind(now)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?;
            let Some(user_id) = user_id else {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            };
            let org_id: Option<String> = sqlx::query_scalar(
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND status = 'active'
                 RETURNING org_id",
            )
            .bind(password_hash)
            .bind(&user_id)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?;
            let Some(org_id) = org_id else {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            };
            // Whoever held the old password may hold a session or an app's
            // refresh token made with it: both end here (see the README).
            w.enqueue_logouts(Sessions::OfUser(&user_id), now).await?;
            let sessions_ended = sqlx::query(
                "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
            )
            .bind(&user_id)
            .bind(now)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?
            .rows_affected();
            let grants: Vec<String> = sqlx::query_scalar(
                "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL
                 RETURNING id",
            )
            .bind(&user_id)
            .bind(now)
            .fetch_all(w.conn())
            .await
            .map_err(D::map_err)?;
            for id in &grants {
                w.change(&org_id, ChangeKind::Grant, id, now).await?;
            }
            w.audit(audit).await?;
            w.commit().await?;
            Ok(LinkUsed {
                sessions_ended,
                grants_revoked: u64::try_from(grants.len()).unwrap_or(u64::MAX),
            })
        }
    }

    impl crate::write::Write<'_, D> {
        /// The person's one live link becomes `link` (a new one replaces any other).
        async fn replace_mail_link(&mut self, link: &MailLink) -> StoreResult<()> {
            sqlx::query("DELETE FROM mail_links WHERE user_id = $1")
                .bind(&link.user_id)
                .execute(self.conn())
                .await
                .map_err(D::map_err)?;
            sqlx::query(
                "INSERT INTO mail_links (digest, user_id, purpose, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&link.digest)
            .bind(&link.user_id)
            .bind(link.purpose.as_str())
            .bind(link.created_at)
            .bind(link.expires_at)
            .execute(self.conn())
            .await
            .map_err(D::map_err)?;
            Ok(())
        }
    }
}
