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

/// A client assertion's `jti` to record (see `use_assertion_jti`).
pub(crate) struct JtiUse {
    client_id: String,
    jti: String,
    expires_at: UnixTime,
    now: UnixTime,
}

/// One statement records a batch of `jti`s: a new one is inserted; a known one
/// is taken over only when its record expired (it cannot be a replay of a live
/// assertion then). The rows it returns are the ones that were used first.
fn use_jtis_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ");
    for i in 0..rows {
        let p = 3 * i;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${})", p + 1, p + 2, p + 3));
    }
    sql.push_str(&format!(
        " ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE client_assertion_jtis.expires_at <= ${} RETURNING client_id, jti",
        3 * rows + 1
    ));
    sql
}

/// Which of `items` are used for the first time, given the (client, jti)
/// pairs the statement returned for `unique`: a pair repeated in one batch is
/// first only at its first place.
fn first_uses(items: &[JtiUse], won: &std::collections::HashSet<(String, String)>) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .map(|u| {
            let key = (u.client_id.clone(), u.jti.clone());
            let first = seen.insert(key.clone());
            first && won.contains(&key)
        })
        .collect()
}

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
            // Group-committed (`crate::batch`): on SQLite one write turn and
            // one statement records every assertion that arrived meanwhile.
            let item = JtiUse {
                client_id: client_id.to_owned(),
                jti: jti.to_owned(),
                expires_at,
                now,
            };
            self.jti_batch
                .submit(item, self.dialect.write_turn(), |items| self.use_jtis(items))
                .await
        }
    }

    impl SqlStore<D> {
        /// Records a batch of `jti`s in one statement; answers each in order.
        async fn use_jtis(&self, items: Vec<JtiUse>) -> StoreResult<Vec<bool>> {
            let mut seen = std::collections::HashSet::new();
            let unique: Vec<&JtiUse> = items
                .iter()
                .filter(|u| seen.insert((u.client_id.as_str(), u.jti.as_str())))
                .collect();
            // The earliest clock of the batch decides whether a record expired:
            // never earlier than any caller's own `now` would.
            let now = items.iter().map(|u| u.now).min().unwrap_or_default();
            // Only placeholders are formatted into the text: nothing of the input.
            let sql = sqlx::AssertSqlSafe(use_jtis_sql(unique.len()));
            let mut query = sqlx::query_as::<Db, (String, String)>(sql);
            for u in &unique {
                query = query.bind(&u.client_id).bind(&u.jti).bind(u.expires_at);
            }
            let won: std::collections::HashSet<(String, String)> = query
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(D::map_err)?
                .into_iter()
                .collect();
            Ok(first_uses(&items, &won))
        }
    }
}
