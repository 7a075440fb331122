//! The port traits over SQLite. Each mutation is one transaction, and every one
//! that can end tokens or stale a cache appends its change in that transaction.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::*;
use gatehouse_core::ports::*;
use sqlx::{Sqlite, Transaction};

use crate::decode::{self, to_json};
use crate::{SqliteStore, map_err, record_audit, record_change};

#[async_trait]
impl OrgStore for SqliteStore {
    async fn insert_org(&self, org: &Org, roles: &[Role], audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&org.id)
            .bind(&org.slug)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for r in roles {
            sqlx::query("INSERT INTO roles (org_id, name, permissions) VALUES ($1, $2, $3)")
                .bind(&r.org_id)
                .bind(&r.name)
                .bind(to_json(&r.permissions))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn org_by_id(&self, id: &str) -> StoreResult<Org> {
        self.one("SELECT * FROM orgs WHERE id = $1", id, decode::org)
            .await
    }

    async fn org_by_slug(&self, slug: &str) -> StoreResult<Org> {
        self.one("SELECT * FROM orgs WHERE slug = $1", slug, decode::org)
            .await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        let rows = sqlx::query("SELECT * FROM orgs ORDER BY created_at, slug")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode::org).collect()
    }

    async fn role(&self, org_id: &str, name: &str) -> StoreResult<Role> {
        let row = sqlx::query("SELECT * FROM roles WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        decode::role(&row)
    }

    async fn list_roles(&self, org_id: &str) -> StoreResult<Vec<Role>> {
        self.all(
            "SELECT * FROM roles WHERE org_id = $1 ORDER BY name",
            org_id,
            decode::role,
        )
        .await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, u: &User, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_user_row(&mut tx, u).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<User> {
        self.one("SELECT * FROM users WHERE id = $1", id, decode::user)
            .await
    }

    async fn user_by_email(&self, org_id: &str, email: &str) -> StoreResult<User> {
        let row = sqlx::query("SELECT * FROM users WHERE org_id = $1 AND email = $2")
            .bind(org_id)
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        decode::user(&row)
    }

    async fn users_by_email(&self, email: &str, limit: u32) -> StoreResult<Vec<User>> {
        let rows =
            sqlx::query("SELECT * FROM users WHERE email = $1 ORDER BY created_at, id LIMIT $2")
                .bind(email)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.iter().map(decode::user).collect()
    }

    async fn list_users(&self, org_id: &str) -> StoreResult<Vec<User>> {
        self.all(
            "SELECT * FROM users WHERE org_id = $1 ORDER BY email",
            org_id,
            decode::user,
        )
        .await
    }

    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let org_id: String =
            sqlx::query_scalar("UPDATE users SET status = $1 WHERE id = $2 RETURNING org_id")
                .bind(status.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound)?;
        if status == UserStatus::Deactivated {
            // A deactivation ends the user's tokens for good: re-activating
            // them later must not revive any (the `User` change carries the
            // cut-off to the feed; grants end with their refresh tokens).
            sqlx::query("UPDATE users SET tokens_valid_after = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query(
                "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        record_change(&mut tx, &org_id, ChangeKind::User, id, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn set_user_access(
        &self,
        id: &str,
        role: &str,
        groups: &[String],
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let org_id: String = sqlx::query_scalar(
            "UPDATE users SET role = $1, groups = $2 WHERE id = $3 RETURNING org_id",
        )
        .bind(role)
        .bind(to_json(groups))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        record_change(&mut tx, &org_id, ChangeKind::User, id, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }
}

#[async_trait]
impl ApiStore for SqliteStore {
    async fn insert_api(&self, a: &Api, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO apis (id, org_id, name, audience, scopes, token_format, signing_alg, access_token_ttl, client_id, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&a.id)
        .bind(&a.org_id)
        .bind(&a.name)
        .bind(&a.audience)
        .bind(to_json(&a.scopes))
        .bind(a.token_format.as_str())
        .bind(a.signing_alg.as_str())
        .bind(a.access_token_ttl)
        .bind(&a.client_id)
        .bind(&a.secret_hash)
        .bind(a.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // Cached client contexts list the org's APIs; a new one must be seen.
        record_change(
            &mut tx,
            &a.org_id,
            ChangeKind::Api,
            &a.audience,
            a.created_at,
        )
        .await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn api_by_audience(&self, audience: &str) -> StoreResult<Api> {
        self.one(
            "SELECT * FROM apis WHERE audience = $1",
            audience,
            decode::api,
        )
        .await
    }

    async fn api_by_client_id(&self, client_id: &str) -> StoreResult<Api> {
        self.one(
            "SELECT * FROM apis WHERE client_id = $1",
            client_id,
            decode::api,
        )
        .await
    }

    async fn apis_for_org(&self, org_id: &str) -> StoreResult<Vec<Api>> {
        let rows =
            sqlx::query("SELECT * FROM apis WHERE org_id = $1 ORDER BY created_at, audience")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.iter().map(decode::api).collect()
    }
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn insert_app(&self, a: &App, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_app_row(&mut tx, a).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn insert_app_with_user(
        &self,
        user: &User,
        user_audit: &AuditEvent,
        app: &App,
        app_audit: &AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_user_row(&mut tx, user).await?;
        record_audit(&mut tx, user_audit).await?;
        insert_app_row(&mut tx, app).await?;
        record_audit(&mut tx, app_audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<App> {
        self.one(
            "SELECT * FROM apps WHERE client_id = $1",
            client_id,
            decode::app,
        )
        .await
    }

    async fn apps_for_org(&self, org_id: &str) -> StoreResult<Vec<App>> {
        self.all(
            "SELECT * FROM apps WHERE org_id = $1 ORDER BY created_at, name",
            org_id,
            decode::app,
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
        const SQL: &str = "UPDATE apps SET secret_hash = $1, generation = generation + 1 WHERE client_id = $2 RETURNING generation, org_id";
        self.bump_app(SQL, secret_hash, client_id, now, audit).await
    }

    async fn set_app_on_behalf_of(
        &self,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<i64> {
        const SQL: &str = "UPDATE apps SET on_behalf_of = $1, generation = generation + 1 WHERE client_id = $2 RETURNING generation, org_id";
        self.bump_app(SQL, user_id, client_id, now, audit).await
    }

    async fn delete_app(
        &self,
        client_id: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let org_id: String =
            sqlx::query_scalar("DELETE FROM apps WHERE client_id = $1 RETURNING org_id")
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM reference_tokens WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        record_change(&mut tx, &org_id, ChangeKind::App, client_id, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn update_app(&self, a: &App, now: UnixTime, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE apps SET name = $1, description = $2, redirect_uris = $3, post_logout_redirect_uris = $4,
                             scopes = $5, default_scopes = $6, default_audience = $7, require_pkce = $9
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
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        record_change(&mut tx, &a.org_id, ChangeKind::App, &a.client_id, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn set_app_status(
        &self,
        client_id: &str,
        status: AppStatus,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<i64> {
        const SQL: &str = "UPDATE apps SET status = $1, generation = generation + 1 WHERE client_id = $2 RETURNING generation, org_id";
        self.bump_app(SQL, status.as_str(), client_id, now, audit)
            .await
    }

    async fn record_app_use(&self, uses: &[(String, UnixTime)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (client_id, at) in uses {
            sqlx::query(
                "UPDATE apps SET last_used_at = $1 WHERE client_id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(at)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_security_event(&self, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        record_audit(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn audit_events(
        &self,
        org_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(org_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(decode::audit_event).collect()
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_reference_token(&self, t: &ReferenceToken) -> StoreResult<()> {
        sqlx::query("INSERT INTO reference_tokens (digest, client_id, audience, claims, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t.digest)
            .bind(&t.client_id)
            .bind(&t.audience)
            .bind(t.claims.to_string())
            .bind(t.expires_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn reference_token(&self, digest: &str) -> StoreResult<ReferenceToken> {
        self.one(
            "SELECT * FROM reference_tokens WHERE digest = $1",
            digest,
            decode::reference_token,
        )
        .await
    }

    async fn purge_expired_tokens(&self, now: UnixTime) -> StoreResult<u64> {
        // Everything that carries its own expiry. Grants stay: they are the
        // audit trail their tokens point back to.
        const PURGES: [&str; 6] = [
            "DELETE FROM reference_tokens WHERE expires_at < $1",
            "DELETE FROM auth_codes WHERE expires_at < $1",
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
            "DELETE FROM revoked_tokens WHERE expires_at < $1",
            "DELETE FROM sessions WHERE expires_at < $1",
            // Failure buckets drain within minutes; a day-old one is empty.
            "DELETE FROM throttle WHERE updated_at < $1 - 86400",
        ];
        let mut tx = self.write_tx().await?;
        let mut purged = 0;
        for sql in PURGES {
            let done = sqlx::query(sql)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            purged += done.rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        // Busy readers can keep the WAL from restarting for ever; a truncating
        // checkpoint (waiting on the busy timeout) brings it back to size.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(purged)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, k: &StoredKey) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, state, sealed_private_key, created_at, activated_at, retired_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(k.state.as_str())
            .bind(&k.sealed_private_key)
            .bind(k.created_at)
            .bind(k.activated_at)
            .bind(k.retired_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Other instances reload their key rings when they see this.
        record_change(&mut tx, GLOBAL, ChangeKind::Keys, &k.kid, k.created_at).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode::key).collect()
    }

    async fn set_key_state(&self, kid: &str, state: KeyState, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET state = $1,
                 activated_at = CASE WHEN $1 = 'active' THEN COALESCE(activated_at, $3) ELSE activated_at END,
                 retired_at = CASE WHEN $1 IN ('retired', 'revoked') THEN COALESCE(retired_at, $3) ELSE retired_at END
             WHERE kid = $2",
        )
            .bind(state.as_str())
            .bind(kid)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        record_change(&mut tx, GLOBAL, ChangeKind::Keys, kid, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn promote_next_key(
        &self,
        kid: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        // The row lock decides between instances: the loser matches nothing.
        let alg: Option<String> = sqlx::query_scalar(
            "UPDATE signing_keys SET state = 'active', activated_at = $2
             WHERE kid = $1 AND state = 'next' RETURNING alg",
        )
        .bind(kid)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(alg) = alg else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retired_at = COALESCE(retired_at, $2)
             WHERE alg = $1 AND state = 'active' AND kid <> $3",
        )
        .bind(&alg)
        .bind(now)
        .bind(kid)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        record_change(&mut tx, GLOBAL, ChangeKind::Keys, kid, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn revoke_key(&self, kid: &str, now: UnixTime, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET state = 'revoked', retired_at = COALESCE(retired_at, $2) WHERE kid = $1",
        )
        .bind(kid)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        record_change(&mut tx, GLOBAL, ChangeKind::Keys, kid, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
        let rows = sqlx::query("SELECT * FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode::change).collect()
    }

    async fn latest_change(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    fn change_hint(&self) -> Option<u64> {
        self.wal_fingerprint()
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_digest, sid, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id_digest)
        .bind(&s.sid)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, id_digest: &str, now: UnixTime) -> StoreResult<Session> {
        let row = sqlx::query(
            "SELECT * FROM sessions WHERE id_digest = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(id_digest)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        decode::session(&row)
    }

    async fn end_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<()> {
        // The first end is kept.
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = COALESCE(ended_at, $2) WHERE id_digest = $1",
        )
        .bind(id_digest)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn insert_grant(&self, g: &Grant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scopes, audience, generation, sid, auth_time, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn grant(&self, id: &str) -> StoreResult<Grant> {
        self.one("SELECT * FROM grants WHERE id = $1", id, decode::grant)
            .await
    }

    async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            // Already revoked (keep the first time, record nothing) or no such grant.
            sqlx::query("SELECT 1 FROM grants WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
            return Ok(());
        }
        let org_id = grant_org(&mut tx, id).await?;
        record_change(&mut tx, &org_id, ChangeKind::Grant, id, now).await?;
        tx.commit().await.map_err(map_err)
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
        .map_err(map_err)?;
        Ok(())
    }

    async fn redeem_code(&self, digest: &str, now: UnixTime) -> StoreResult<Redeemed<AuthCode>> {
        let mut tx = self.write_tx().await?;
        let fresh = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE digest = $2 AND used_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(row) = fresh {
            let code = decode::auth_code(&row)?;
            tx.commit().await.map_err(map_err)?;
            return Ok(Redeemed::Fresh(code));
        }
        // Let go of the write lock before waiting on the first redemption.
        tx.rollback().await.map_err(map_err)?;
        replayed_after_winner(&self.pool, digest).await
    }

    async fn finish_code(&self, digest: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query("UPDATE auth_codes SET finished_at = $1 WHERE digest = $2")
            .bind(now)
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        insert_refresh_token(&self.pool, t).await
    }

    async fn refresh_token(&self, digest: &str) -> StoreResult<RefreshToken> {
        self.one(
            "SELECT * FROM refresh_tokens WHERE digest = $1",
            digest,
            decode::refresh_token,
        )
        .await
    }

    async fn rotate_refresh_token(
        &self,
        digest: &str,
        next: &RefreshToken,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        let mut tx = self.write_tx().await?;
        let fresh = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE digest = $2 AND used_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(row) = fresh {
            let old = decode::refresh_token(&row)?;
            insert_refresh_token(&mut *tx, next).await?;
            tx.commit().await.map_err(map_err)?;
            return Ok(Redeemed::Fresh(old));
        }
        let grant_id: String =
            sqlx::query_scalar("SELECT grant_id FROM refresh_tokens WHERE digest = $1")
                .bind(digest)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        Ok(Redeemed::Replayed { grant_id })
    }

    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Consent> {
        let row = sqlx::query("SELECT * FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        decode::consent(&row)
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
        .map_err(map_err)?;
        Ok(())
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        org_id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            // Revoked before; that change is already in the feed.
            return Ok(());
        }
        record_change(&mut tx, org_id, ChangeKind::Token, jti, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn is_access_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(hit.is_some())
    }
}

/// Shared by `insert_refresh_token` and the successor insert of a rotation.
async fn insert_refresh_token<'e, E>(exec: E, t: &RefreshToken) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (digest, grant_id, client_id, scopes, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&t.digest)
    .bind(&t.grant_id)
    .bind(&t.client_id)
    .bind(to_json(&t.scopes))
    .bind(t.expires_at)
    .bind(t.used_at)
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn add_failure(&self, key: &str, rate: f64, now: f64) -> StoreResult<f64> {
        // One statement: concurrent failures on any instance each count once.
        let after: f64 = sqlx::query_scalar(
            "INSERT INTO throttle (key, level, updated_at) VALUES ($1, 1.0, $3)
             ON CONFLICT (key) DO UPDATE SET
                 level = max(0.0, throttle.level - max(0.0, $3 - throttle.updated_at) * $2) + 1.0,
                 updated_at = max(throttle.updated_at, $3)
             RETURNING level",
        )
        .bind(key)
        .bind(rate)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(after - 1.0)
    }

    async fn failure_level(&self, key: &str, rate: f64, now: f64) -> StoreResult<f64> {
        let row: Option<(f64, f64)> =
            sqlx::query_as("SELECT level, updated_at FROM throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(row.map_or(0.0, |(level, at)| {
            (level - (now - at).max(0.0) * rate).max(0.0)
        }))
    }
}

/// The common shapes: one row, or all rows, selected by one key.
impl SqliteStore {
    async fn one<T>(
        &self,
        sql: &'static str,
        key: &str,
        decode: fn(&sqlx::sqlite::SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        decode(&row)
    }

    async fn all<T>(
        &self,
        sql: &'static str,
        key: &str,
        decode: fn(&sqlx::sqlite::SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(sql)
            .bind(key)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }
}

async fn insert_user_row(tx: &mut Transaction<'_, Sqlite>, u: &User) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, org_id, email, name, password_hash, role, groups, status, created_at, tokens_valid_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_app_row(tx: &mut Transaction<'_, Sqlite>, a: &App) -> StoreResult<()> {
    let grants: Vec<String> = a
        .grant_types
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    sqlx::query(
        "INSERT INTO apps (id, client_id, org_id, name, description, grant_types, on_behalf_of, redirect_uris,
                           post_logout_redirect_uris, scopes, default_scopes, default_audience, secret_hash,
                           generation, status, created_at, require_pkce)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
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
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

impl SqliteStore {
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
        let mut tx = self.write_tx().await?;
        let (generation, org_id): (i64, String) = sqlx::query_as(sql)
            .bind(value)
            .bind(client_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        record_change(&mut tx, &org_id, ChangeKind::App, client_id, now).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(generation)
    }
}

/// Changes every organization's APIs see (signing keys).
const GLOBAL: &str = "";

/// The organization a grant's change belongs to: its app's (a person authorizes
/// only apps of their own organization), else its user's once the app is gone.
async fn grant_org(tx: &mut Transaction<'_, Sqlite>, grant_id: &str) -> StoreResult<String> {
    sqlx::query_scalar(
        "SELECT COALESCE(
             (SELECT a.org_id FROM grants g JOIN apps a ON a.client_id = g.client_id WHERE g.id = $1),
             (SELECT u.org_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = $1),
             '')",
    )
    .bind(grant_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)
}

/// How long a replay waits for the first redemption of its code to finish.
const REPLAY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A replayed code's grant, answered once the first redemption has finished
/// (or after [`REPLAY_WAIT`], if its instance died): the caller revokes the
/// grant, and doing so while the winner is still issuing would leave no winner.
async fn replayed_after_winner(
    pool: &sqlx::SqlitePool,
    digest: &str,
) -> StoreResult<Redeemed<AuthCode>> {
    let deadline = std::time::Instant::now() + REPLAY_WAIT;
    loop {
        let (grant_id, finished): (String, Option<i64>) =
            sqlx::query_as("SELECT grant_id, finished_at FROM auth_codes WHERE digest = $1")
                .bind(digest)
                .fetch_one(pool)
                .await
                .map_err(map_err)?;
        if finished.is_some() || std::time::Instant::now() >= deadline {
            return Ok(Redeemed::Replayed { grant_id });
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The composed defaults for now; joined reads and single writes come with the SQL store.
impl GrantFlowStore for SqliteStore {}
