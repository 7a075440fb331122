//! A person's own apps and sessions (`gatehouse_core::account`): every query is
//! keyed by their user id. Revoking an app ends its grants as `revoke_grant`
//! does (one change per grant, so gateways refuse its JWTs within a second);
//! ending sessions enqueues their back-channel logouts first, as `end_session`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use gatehouse_core::account::{AccountStore, AuthorizedApp};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{AuditEvent, ChangeKind, Session};
use gatehouse_core::ports::{StoreError, StoreResult};

use crate::ports::Sessions;
use crate::rows::SessionRow;
use crate::{Dialect, SqlStore};

/// The longest an access token lives (the APIs' TTL bound): a grant without a
/// live refresh token is listed while its last access token may still work.
const ACCESS_TOKEN_MAX_TTL: i64 = 86_400;

const CONSENTED: &str = "SELECT c.client_id, a.name, c.scopes, c.updated_at
     FROM consents c JOIN apps a ON a.client_id = c.client_id
     WHERE c.user_id = $1";

const LIVE_GRANTS: &str = "SELECT g.client_id, a.name, g.scopes, g.created_at
     FROM grants g JOIN apps a ON a.client_id = g.client_id
     WHERE g.user_id = $1 AND g.revoked_at IS NULL
       AND (g.created_at > $3 OR EXISTS (SELECT 1 FROM refresh_tokens r
            WHERE r.grant_id = g.id AND r.used_at IS NULL AND r.expires_at > $2))";

fn scopes(raw: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(raw).map_err(|e| StoreError::Internal(format!("column scopes: {e}")))
}

/// Consents first (what the person allowed), then live grants without one.
fn merge(
    consented: Vec<(String, String, String, i64)>,
    granted: Vec<(String, String, String, i64)>,
) -> StoreResult<Vec<AuthorizedApp>> {
    let mut apps: BTreeMap<String, (AuthorizedApp, bool)> = BTreeMap::new();
    for (client_id, name, raw, at) in consented {
        let app = AuthorizedApp {
            client_id: client_id.clone(),
            name,
            scopes: scopes(&raw)?,
            since: at,
        };
        apps.insert(client_id, (app, true));
    }
    for (client_id, name, raw, at) in granted {
        let granted = scopes(&raw)?;
        let (app, from_consent) = apps.entry(client_id.clone()).or_insert_with(|| {
            (
                AuthorizedApp {
                    client_id,
                    name,
                    scopes: Vec::new(),
                    since: at,
                },
                false,
            )
        });
        app.since = app.since.max(at);
        if !*from_consent {
            for s in granted {
                if !app.scopes.contains(&s) {
                    app.scopes.push(s);
                }
            }
        }
    }
    let mut list: Vec<AuthorizedApp> = apps.into_values().map(|(a, _)| a).collect();
    list.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.client_id.cmp(&b.client_id))
    });
    Ok(list)
}

for_each_dialect! {
    impl crate::write::Write<'_, D> {
        /// Ends the live sessions of `user_id` but `keep` (logouts enqueued first).
        async fn end_sessions_of(&mut self, user_id: &str, keep: Option<&str>, now: UnixTime) -> StoreResult<u64> {
            let keep = keep.unwrap_or("");
            self.enqueue_logouts(Sessions::OfUserExcept(user_id, keep), now).await?;
            let done = sqlx::query(
                "UPDATE sessions SET ended_at = $2
                 WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 AND id_digest <> $3",
            )
            .bind(user_id)
            .bind(now)
            .bind(keep)
            .execute(self.conn())
            .await
            .map_err(D::map_err)?;
            Ok(done.rows_affected())
        }
    }

    #[async_trait]
    impl AccountStore for SqlStore<D> {
        async fn authorized_apps(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<AuthorizedApp>> {
            let consented: Vec<(String, String, String, i64)> = sqlx::query_as(CONSENTED)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(D::map_err)?;
            let granted: Vec<(String, String, String, i64)> = sqlx::query_as(LIVE_GRANTS)
                .bind(user_id)
                .bind(now)
                .bind(now - ACCESS_TOKEN_MAX_TTL)
                .fetch_all(&self.pool)
                .await
                .map_err(D::map_err)?;
            merge(consented, granted)
        }

        async fn revoke_authorized_app(
            &self,
            user_id: &str,
            client_id: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<u64> {
            let mut w = self.write().await?;
            let forgot = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?
                .rows_affected();
            let ended: Vec<(String,)> = sqlx::query_as(
                "UPDATE grants SET revoked_at = $3
                 WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL
                 RETURNING id",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(now)
            .fetch_all(w.conn())
            .await
            .map_err(D::map_err)?;
            if forgot == 0 && ended.is_empty() {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            // The app's organization (a person authorizes only their own's).
            let org_id: String = sqlx::query_scalar(
                "SELECT COALESCE((SELECT org_id FROM apps WHERE client_id = $1),
                                 (SELECT org_id FROM users WHERE id = $2), '')",
            )
            .bind(client_id)
            .bind(user_id)
            .fetch_one(w.conn())
            .await
            .map_err(D::map_err)?;
            for (grant_id,) in &ended {
                w.change(&org_id, ChangeKind::Grant, grant_id, now).await?;
            }
            w.audit(audit).await?;
            w.commit().await?;
            Ok(ended.len() as u64)
        }

        async fn user_sessions(&self, user_id: &str, now: UnixTime, limit: u32) -> StoreResult<Vec<Session>> {
            let rows: Vec<SessionRow> = sqlx::query_as(
                "SELECT * FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2
                 ORDER BY auth_time DESC, sid LIMIT CAST($3 AS BIGINT)",
            )
            .bind(user_id)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(D::map_err)?;
            rows.into_iter().map(Session::try_from).collect()
        }

        async fn end_user_sessions(
            &self,
            user_id: &str,
            keep: Option<&str>,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<u64> {
            let mut w = self.write().await?;
            let ended = w.end_sessions_of(user_id, keep, now).await?;
            w.audit(audit).await?;
            w.commit().await?;
            Ok(ended)
        }

        async fn end_user_session(
            &self,
            user_id: &str,
            sid: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            w.enqueue_logouts(Sessions::OfUserSid(user_id, sid), now).await?;
            let done = sqlx::query(
                "UPDATE sessions SET ended_at = $3
                 WHERE user_id = $1 AND sid = $2 AND ended_at IS NULL AND expires_at > $3",
            )
            .bind(user_id)
            .bind(sid)
            .bind(now)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.audited_if_found(done.rows_affected(), audit).await
        }

        async fn change_password(
            &self,
            user_id: &str,
            password_hash: &str,
            keep: Option<&str>,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                w.rollback().await?;
                return Err(StoreError::NotFound);
            }
            w.end_sessions_of(user_id, keep, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }
    }
}
