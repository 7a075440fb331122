//! Reference (opaque) access tokens, and the purge of everything that expires.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::ReferenceToken;
use gatehouse_core::ports::{StoreResult, TokenStore};

use crate::rows::ReferenceTokenRow;
use crate::{Dialect, SqlStore};

/// Everything that carries its own expiry. Grants stay: they are the audit
/// trail their tokens point back to.
const PURGES: [&str; 11] = [
    "DELETE FROM reference_tokens WHERE expires_at < $1",
    "DELETE FROM auth_codes WHERE expires_at < $1",
    "DELETE FROM refresh_tokens WHERE expires_at < $1",
    "DELETE FROM revoked_tokens WHERE expires_at < $1",
    // Live expired sessions are the sweep's (`sweep_expired_sessions`): their
    // apps hear of the end first. Ended ones were told when they ended.
    "DELETE FROM sessions WHERE expires_at < $1 AND ended_at IS NOT NULL",
    "DELETE FROM pushed_requests WHERE expires_at < $1",
    "DELETE FROM device_authorizations WHERE expires_at < $1",
    // Back-channel logout outcomes are shown for a week.
    "DELETE FROM logout_deliveries WHERE finished_at < $1 - 604800",
    "DELETE FROM client_assertion_jtis WHERE expires_at < $1",
    // Failure buckets drain within minutes; a day-old one is empty.
    "DELETE FROM throttle WHERE updated_at < $1 - 86400",
    // Apps' usage: the console shows 30 days; keep 90.
    "DELETE FROM app_usage WHERE day < $1 / 86400 - 90",
];

/// A client assertion's `jti`, kept until its `exp` (see `use_assertion_jti`).
const USE_JTI: &str = "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) \
    ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at \
    WHERE client_assertion_jtis.expires_at <= $4";

/// Stores a reference token's record (the digest, never the token).
pub(crate) const INSERT_REFERENCE_TOKEN: &str = "INSERT INTO reference_tokens (digest, client_id, audience, claims, expires_at) VALUES ($1, $2, $3, $4, $5)";

/// Binds a reference token to [`INSERT_REFERENCE_TOKEN`]'s parameters.
macro_rules! bind_reference_token {
    ($query:expr, $t:expr) => {
        $query
            .bind(&$t.digest)
            .bind(&$t.client_id)
            .bind(&$t.audience)
            .bind($t.claims.to_string())
            .bind($t.expires_at)
    };
}
pub(crate) use bind_reference_token;

for_each_dialect! {
    #[async_trait]
    impl TokenStore for SqlStore<D> {
        async fn insert_reference_token(&self, t: &ReferenceToken) -> StoreResult<()> {
            bind_reference_token!(sqlx::query(INSERT_REFERENCE_TOKEN), t)
                .execute(&self.pool)
                .await
                .map_err(D::map_err)?;
            Ok(())
        }

        async fn reference_token(&self, digest: &str) -> StoreResult<ReferenceToken> {
            self.one::<ReferenceTokenRow, _>("SELECT * FROM reference_tokens WHERE digest = $1", digest)
                .await
        }

        async fn purge_expired_tokens(&self, now: UnixTime) -> StoreResult<u64> {
            let mut w = self.write().await?;
            let mut purged = 0;
            for sql in PURGES {
                let done = sqlx::query(sql)
                    .bind(now)
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
                purged += done.rows_affected();
            }
            w.commit().await?;
            self.dialect.after_purge(&self.pool).await?;
            Ok(purged)
        }

        async fn use_assertion_jti(
            &self,
            client_id: &str,
            jti: &str,
            expires_at: UnixTime,
            now: UnixTime,
        ) -> StoreResult<bool> {
            // One statement decides: a new jti is inserted; a known one is
            // taken over only when its record expired (it cannot be a replay
            // of a live assertion then). On SQLite it waits for this
            // process's write turn: writers left to meet on the database's
            // lock sleep in its busy handler (1, 2, 5, 10… ms), and the
            // assertions' writes then capped a whole server at ~1,800/s.
            let done = self
                .write_one(
                    sqlx::query(USE_JTI)
                        .bind(client_id)
                        .bind(jti)
                        .bind(expires_at)
                        .bind(now),
                )
                .await?;
            Ok(done.rows_affected() == 1)
        }
    }

}
