//! Organizations' upstream OpenID Connect providers and the sign-ins sent to
//! them. A pending sign-in is claimed with one `DELETE … RETURNING`: of two
//! claims of the same `state` at once, exactly one gets the row.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::AuditEvent;
use gatehouse_core::ports::{StoreError, StoreResult};
use gatehouse_core::upstream::{Continuation, UpstreamLogin, UpstreamProvider, UpstreamStore};

use crate::rows::{from_row, to_json};
use crate::{Dialect, SqlStore};

from_row! {
    pub(crate) struct ProviderRow {
        org_id: String,
        issuer: String,
        client_id: String,
        sealed_client_secret: String,
        domains: String,
        allow_passwords: bool,
        default_role: String,
        updated_at: i64,
        trust_upstream_mfa: bool,
    }
}

impl TryFrom<ProviderRow> for UpstreamProvider {
    type Error = StoreError;
    fn try_from(r: ProviderRow) -> StoreResult<Self> {
        Ok(UpstreamProvider {
            org_id: r.org_id,
            issuer: r.issuer,
            client_id: r.client_id,
            sealed_client_secret: r.sealed_client_secret,
            domains: serde_json::from_str(&r.domains).map_err(|e| {
                StoreError::Internal(format!("column upstream_providers.domains: {e}"))
            })?,
            allow_passwords: r.allow_passwords,
            default_role: r.default_role,
            updated_at: r.updated_at,
            trust_upstream_mfa: r.trust_upstream_mfa,
        })
    }
}

from_row! {
    pub(crate) struct LoginRow {
        state_digest: String,
        org_id: String,
        nonce: String,
        code_verifier: String,
        request: String,
        expires_at: i64,
    }
}

impl From<LoginRow> for UpstreamLogin {
    fn from(r: LoginRow) -> Self {
        UpstreamLogin {
            state_digest: r.state_digest,
            org_id: r.org_id,
            nonce: r.nonce,
            code_verifier: r.code_verifier,
            continuation: Continuation::from_stored(&r.request),
            expires_at: r.expires_at,
        }
    }
}

for_each_dialect! {
    #[async_trait]
    impl UpstreamStore for SqlStore<D> {
        async fn upstream_provider(&self, org_id: &str) -> StoreResult<UpstreamProvider> {
            let row: ProviderRow =
                sqlx::query_as("SELECT * FROM upstream_providers WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(D::map_err)?;
            row.try_into()
        }

        async fn set_upstream_provider(
            &self,
            p: &UpstreamProvider,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query(
                "INSERT INTO upstream_providers (org_id, issuer, client_id, sealed_client_secret,
                   domains, allow_passwords, default_role, updated_at, trust_upstream_mfa)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer,
                   client_id = excluded.client_id,
                   sealed_client_secret = excluded.sealed_client_secret,
                   domains = excluded.domains, allow_passwords = excluded.allow_passwords,
                   default_role = excluded.default_role, updated_at = excluded.updated_at,
                   trust_upstream_mfa = excluded.trust_upstream_mfa",
            )
            .bind(&p.org_id)
            .bind(&p.issuer)
            .bind(&p.client_id)
            .bind(&p.sealed_client_secret)
            .bind(to_json(&p.domains))
            .bind(p.allow_passwords)
            .bind(&p.default_role)
            .bind(p.updated_at)
            .bind(p.trust_upstream_mfa)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.audit(audit).await?;
            w.commit().await
        }

        async fn remove_upstream_provider(&self, org_id: &str, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query("DELETE FROM upstream_providers WHERE org_id = $1")
                .bind(org_id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.audited_if_found(done.rows_affected(), audit).await
        }

        async fn insert_upstream_login(&self, l: &UpstreamLogin, now: UnixTime) -> StoreResult<()> {
            sqlx::query("DELETE FROM upstream_logins WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(D::map_err)?;
            sqlx::query(
                "INSERT INTO upstream_logins (state_digest, org_id, nonce, code_verifier, request, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&l.state_digest)
            .bind(&l.org_id)
            .bind(&l.nonce)
            .bind(&l.code_verifier)
            .bind(l.continuation.to_stored())
            .bind(l.expires_at)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(())
        }

        async fn claim_upstream_login(&self, state_digest: &str, now: UnixTime) -> StoreResult<UpstreamLogin> {
            let row: Option<LoginRow> = sqlx::query_as(
                "DELETE FROM upstream_logins WHERE state_digest = $1 RETURNING *",
            )
            .bind(state_digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(D::map_err)?;
            match row {
                Some(r) if r.expires_at > now => Ok(r.into()),
                _ => Err(StoreError::NotFound),
            }
        }

        async fn upstream_providers_for_domain(
            &self,
            domain: &str,
            limit: u32,
        ) -> StoreResult<Vec<UpstreamProvider>> {
            // Domains are stored normalised (letters, digits, dots, dashes):
            // anything else names no provider, and cannot act as a pattern.
            let Ok(domain) = gatehouse_core::upstream::normalize_domain(domain) else {
                return Ok(Vec::new());
            };
            let rows: Vec<ProviderRow> = sqlx::query_as(
                "SELECT p.* FROM upstream_providers p JOIN orgs o ON o.id = p.org_id
                 WHERE p.domains LIKE $1 ORDER BY o.created_at, o.id LIMIT CAST($2 AS BIGINT)",
            )
            .bind(format!("%\"{domain}\"%"))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(D::map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let p = UpstreamProvider::try_from(r)?;
                if p.domains.contains(&domain) {
                    out.push(p);
                }
            }
            Ok(out)
        }
    }
}
