//! Apps (OAuth clients): registration, edits, credential generations, deletion.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{
    App, AppSecret, AppStatus, AppUsageDay, AuditEvent, ChangeKind, ClientKeys, MAX_ACTIVE_SECRETS,
    User,
};
use gatehouse_core::ports::{AppStore, StoreError, StoreResult};
use gatehouse_core::secret;

use crate::rows::{AppRow, AppSecretRow, to_json};
use crate::write::Write;
use crate::{Dialect, SqlStore};

const ROTATE_SECRET: &str = "UPDATE apps SET secret_hash = $1, generation = generation + 1 WHERE client_id = $2 RETURNING generation, org_id";
const INSERT_SECRET: &str = "INSERT INTO app_secrets (id, client_id, digest, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
const SECRETS: &str = "SELECT * FROM app_secrets WHERE client_id = $1 ORDER BY created_at, seq";
/// Takes the app's row lock (PostgreSQL) before its secrets are counted, so two
/// concurrent adds cannot both see room for one more.
const SET_NEWEST_SECRET: &str =
    "UPDATE apps SET secret_hash = $1 WHERE client_id = $2 RETURNING org_id";
const SET_ON_BEHALF_OF: &str = "UPDATE apps SET on_behalf_of = $1, generation = generation + 1 WHERE client_id = $2 RETURNING generation, org_id";
/// Adds to the day's row; an app deleted since the counts were taken gets none.
const ADD_USAGE: &str = "INSERT INTO app_usage (client_id, day, tokens_issued, failed_auths) \
    SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM apps WHERE client_id = $1) \
    ON CONFLICT (client_id, day) DO UPDATE SET \
    tokens_issued = app_usage.tokens_issued + excluded.tokens_issued, \
    failed_auths = app_usage.failed_auths + excluded.failed_auths";
const APP_USAGE: &str = "SELECT u.client_id, u.day, u.tokens_issued, u.failed_auths FROM app_usage u \
    JOIN apps a ON a.client_id = u.client_id WHERE a.org_id = $1 AND u.day >= $2 \
    ORDER BY u.client_id, u.day";
const SET_STATUS: &str = "UPDATE apps SET status = $1, generation = generation + 1 WHERE client_id = $2 RETURNING generation, org_id";

/// The `jwks` column: the registered JWKS document, if inline.
fn jwks(a: &App) -> Option<&str> {
    match a.client_keys.as_deref() {
        Some(ClientKeys::Jwks(j)) => Some(j),
        _ => None,
    }
}

/// The `jwks_uri` column.
fn jwks_uri(a: &App) -> Option<&str> {
    match a.client_keys.as_deref() {
        Some(ClientKeys::JwksUri(u)) => Some(u),
        _ => None,
    }
}

for_each_dialect! {
    #[async_trait]
    impl AppStore for SqlStore<D> {
        async fn insert_app(&self, a: &App, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            w.insert_app(a).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn insert_app_with_user(
            &self,
            user: &User,
            user_audit: &AuditEvent,
            app: &App,
            app_audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            w.insert_user(user).await?;
            w.audit(user_audit).await?;
            w.insert_app(app).await?;
            w.audit(app_audit).await?;
            w.commit().await
        }

        async fn app_by_client_id(&self, client_id: &str) -> StoreResult<App> {
            self.one::<AppRow, _>("SELECT * FROM apps WHERE client_id = $1", client_id)
                .await
        }

        async fn apps_for_org(&self, org_id: &str) -> StoreResult<Vec<App>> {
            self.all::<AppRow, _>(
                "SELECT * FROM apps WHERE org_id = $1 ORDER BY created_at, name",
                org_id,
            )
            .await
        }

        async fn rotate_app_secret(
            &self,
            client_id: &str,
            secret_hash: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<i64> {
            let mut w = self.write().await?;
            let (generation, org_id): (i64, String) = sqlx::query_as(ROTATE_SECRET)
                .bind(secret_hash)
                .bind(client_id)
                .fetch_optional(w.conn())
                .await
                .map_err(D::map_err)?
                .ok_or(StoreError::NotFound)?;
            // Every secret ends; the generation ends every token issued so far.
            sqlx::query("DELETE FROM app_secrets WHERE client_id = $1")
                .bind(client_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.insert_secret(&secret::random_id(), client_id, secret_hash, now, None)
                .await?;
            w.change(&org_id, ChangeKind::App, client_id, now).await?;
            w.audit(audit).await?;
            w.commit().await?;
            Ok(generation)
        }

        async fn app_secrets(&self, client_id: &str) -> StoreResult<Vec<AppSecret>> {
            self.all::<AppSecretRow, _>(SECRETS, client_id).await
        }

        async fn add_app_secret(
            &self,
            s: &AppSecret,
            others_expire_at: Option<UnixTime>,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let org_id: String = sqlx::query_scalar(SET_NEWEST_SECRET)
                .bind(&s.digest)
                .bind(&s.client_id)
                .fetch_optional(w.conn())
                .await
                .map_err(D::map_err)?
                .ok_or(StoreError::NotFound)?;
            let active = w.active_secrets(&s.client_id, now).await?;
            if active.len() >= MAX_ACTIVE_SECRETS {
                return Err(StoreError::Conflict("app_secrets.client_id".into()));
            }
            if let Some(at) = others_expire_at {
                for old in active.iter().filter(|o| o.expires_at.is_none_or(|e| e > at)) {
                    sqlx::query("UPDATE app_secrets SET expires_at = $1 WHERE id = $2")
                        .bind(at)
                        .bind(&old.id)
                        .execute(w.conn())
                        .await
                        .map_err(D::map_err)?;
                }
            }
            w.insert_secret(&s.id, &s.client_id, &s.digest, s.created_at, s.expires_at)
                .await?;
            w.change(&org_id, ChangeKind::App, &s.client_id, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn retire_app_secret(
            &self,
            client_id: &str,
            secret_id: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            // Locks the app's row first, as adding does.
            let org_id: String = sqlx::query_scalar(
                "UPDATE apps SET secret_hash = secret_hash WHERE client_id = $1 RETURNING org_id",
            )
            .bind(client_id)
            .fetch_optional(w.conn())
            .await
            .map_err(D::map_err)?
            .ok_or(StoreError::NotFound)?;
            let active = w.active_secrets(client_id, now).await?;
            if !active.iter().any(|s| s.id == secret_id) {
                return Err(StoreError::NotFound);
            }
            let rest: Vec<&AppSecret> = active.iter().filter(|s| s.id != secret_id).collect();
            let Some(newest) = rest.last() else {
                return Err(StoreError::Conflict("app_secrets.client_id".into()));
            };
            sqlx::query("UPDATE app_secrets SET retired_at = $1 WHERE id = $2")
                .bind(now)
                .bind(secret_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            // The one left is the app's secret now: no grace period runs out on it.
            if let [only] = rest.as_slice() {
                sqlx::query("UPDATE app_secrets SET expires_at = NULL WHERE id = $1")
                    .bind(&only.id)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            sqlx::query("UPDATE apps SET secret_hash = $1 WHERE client_id = $2")
                .bind(&newest.digest)
                .bind(client_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.change(&org_id, ChangeKind::App, client_id, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn record_secret_use(&self, uses: &[(String, UnixTime)]) -> StoreResult<()> {
            self.record_uses(
                "UPDATE app_secrets SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                uses,
            )
            .await
        }

        async fn purge_ended_secrets(&self, before: UnixTime) -> StoreResult<u64> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "DELETE FROM app_secrets WHERE retired_at < $1 OR expires_at < $1",
            )
            .bind(before)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.commit().await?;
            Ok(done.rows_affected())
        }

        async fn set_app_on_behalf_of(
            &self,
            client_id: &str,
            user_id: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<i64> {
            self.bump_app(SET_ON_BEHALF_OF, user_id, client_id, now, audit).await
        }

        async fn delete_app(
            &self,
            client_id: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let org_id: String =
                sqlx::query_scalar("DELETE FROM apps WHERE client_id = $1 RETURNING org_id")
                    .bind(client_id)
                    .fetch_optional(w.conn())
                    .await
                    .map_err(D::map_err)?
                    .ok_or(StoreError::NotFound)?;
            for sql in [
                "DELETE FROM reference_tokens WHERE client_id = $1",
                "DELETE FROM app_usage WHERE client_id = $1",
                "DELETE FROM app_secrets WHERE client_id = $1",
                "DELETE FROM pushed_requests WHERE client_id = $1",
                "DELETE FROM device_authorizations WHERE client_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(client_id)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.change(&org_id, ChangeKind::App, client_id, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn update_app(&self, a: &App, now: UnixTime, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query(
                "UPDATE apps SET name = $1, description = $2, redirect_uris = $3, post_logout_redirect_uris = $4,
                                 scopes = $5, default_scopes = $6, default_audience = $7, require_pkce = $9,
                                 require_par = $10, exchange_audiences = $11, require_dpop = $12,
                                 jwks = $13, jwks_uri = $14
                 WHERE client_id = $8",
            )
            .bind(&a.name)
            .bind(&a.description)
            .bind(to_json(&a.redirect_uris))
            .bind(to_json(&a.post_logout_redirect_uris))
            .bind(to_json(&a.scopes))
            .bind(to_json(&a.default_scopes))
            .bind(&a.default_audience)
            .bind(&a.client_id)
            .bind(a.require_pkce)
            .bind(a.require_par)
            .bind(to_json(&a.exchange_audiences))
            .bind(a.require_dpop)
            .bind(jwks(a))
            .bind(jwks_uri(a))
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            w.change(&a.org_id, ChangeKind::App, &a.client_id, now).await?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn set_app_status(
            &self,
            client_id: &str,
            status: AppStatus,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<i64> {
            self.bump_app(SET_STATUS, status.as_str(), client_id, now, audit).await
        }

        async fn record_app_use(&self, uses: &[(String, UnixTime)]) -> StoreResult<()> {
            self.record_uses(
                "UPDATE apps SET last_used_at = $1 WHERE client_id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                uses,
            )
            .await
        }

        async fn add_app_usage(&self, counts: &[AppUsageDay]) -> StoreResult<()> {
            if counts.is_empty() {
                return Ok(());
            }
            let mut w = self.write().await?;
            for c in counts {
                sqlx::query(ADD_USAGE)
                    .bind(&c.client_id)
                    .bind(c.day)
                    .bind(c.tokens_issued)
                    .bind(c.failed_auths)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.commit().await
        }

        async fn app_usage(&self, org_id: &str, since_day: i64) -> StoreResult<Vec<AppUsageDay>> {
            let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(APP_USAGE)
                .bind(org_id)
                .bind(since_day)
                .fetch_all(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(rows
                .into_iter()
                .map(|(client_id, day, tokens_issued, failed_auths)| AppUsageDay {
                    client_id,
                    day,
                    tokens_issued,
                    failed_auths,
                })
                .collect())
        }
    }

    impl SqlStore<D> {
        /// Writes batched last-use times in one transaction: `sql` takes the
        /// time as `$1` and the row's key as `$2`, and only moves it forward.
        async fn record_uses(
            &self,
            sql: &'static str,
            uses: &[(String, UnixTime)],
        ) -> StoreResult<()> {
            if uses.is_empty() {
                return Ok(());
            }
            let mut w = self.write().await?;
            for (key, at) in uses {
                sqlx::query(sql)
                    .bind(at)
                    .bind(key)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.commit().await
        }

        /// Sets one column of an app and bumps its credential generation (the
        /// app's tokens so far end), with the change and audit rows, in one
        /// transaction; returns the new generation.
        async fn bump_app(
            &self,
            sql: &'static str,
            value: &str,
            client_id: &str,
            now: UnixTime,
            audit: &AuditEvent,
        ) -> StoreResult<i64> {
            let mut w = self.write().await?;
            let (generation, org_id): (i64, String) = sqlx::query_as(sql)
                .bind(value)
                .bind(client_id)
                .fetch_one(w.conn())
                .await
                .map_err(D::map_err)?;
            w.change(&org_id, ChangeKind::App, client_id, now).await?;
            w.audit(audit).await?;
            w.commit().await?;
            Ok(generation)
        }
    }

    impl Write<'_, D> {
        async fn insert_app(&mut self, a: &App) -> StoreResult<()> {
            let grants: Vec<String> = a
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect();
            sqlx::query(
                "INSERT INTO apps (id, client_id, org_id, name, description, grant_types, on_behalf_of, redirect_uris,
                                   post_logout_redirect_uris, scopes, default_scopes, default_audience, secret_hash,
                                   generation, status, created_at, require_pkce, require_par, exchange_audiences,
                                   require_dpop, jwks, jwks_uri)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
            )
            .bind(&a.id)
            .bind(&a.client_id)
            .bind(&a.org_id)
            .bind(&a.name)
            .bind(&a.description)
            .bind(to_json(&grants))
            .bind(&a.on_behalf_of)
            .bind(to_json(&a.redirect_uris))
            .bind(to_json(&a.post_logout_redirect_uris))
            .bind(to_json(&a.scopes))
            .bind(to_json(&a.default_scopes))
            .bind(&a.default_audience)
            .bind(&a.secret_hash)
            .bind(a.generation)
            .bind(a.status.as_str())
            .bind(a.created_at)
            .bind(a.require_pkce)
            .bind(a.require_par)
            .bind(to_json(&a.exchange_audiences))
            .bind(a.require_dpop)
            .bind(jwks(a))
            .bind(jwks_uri(a))
            .execute(self.conn())
            .await
            .map_err(D::map_err)?;
            // A private_key_jwt app has no secret at all.
            if a.uses_private_key_jwt() {
                return Ok(());
            }
            self.insert_secret(&secret::random_id(), &a.client_id, &a.secret_hash, a.created_at, None)
                .await
        }

        async fn insert_secret(
            &mut self,
            id: &str,
            client_id: &str,
            digest: &str,
            created_at: UnixTime,
            expires_at: Option<UnixTime>,
        ) -> StoreResult<()> {
            sqlx::query(INSERT_SECRET)
                .bind(id)
                .bind(client_id)
                .bind(digest)
                .bind(created_at)
                .bind(expires_at)
                .execute(self.conn())
                .await
                .map_err(D::map_err)?;
            Ok(())
        }

        /// The app's secrets that authenticate at `now`, oldest first.
        async fn active_secrets(
            &mut self,
            client_id: &str,
            now: UnixTime,
        ) -> StoreResult<Vec<AppSecret>> {
            let rows: Vec<AppSecretRow> = sqlx::query_as(SECRETS)
                .bind(client_id)
                .fetch_all(self.conn())
                .await
                .map_err(D::map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let s = AppSecret::try_from(r)?;
                if s.active_at(now) {
                    out.push(s);
                }
            }
            Ok(out)
        }
    }
}
