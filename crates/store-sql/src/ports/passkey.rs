//! WebAuthn passkeys and their ceremonies' challenges. Accepting an assertion
//! is one conditional `UPDATE` on the counter, and taking a challenge one
//! `DELETE … RETURNING`: of two instances doing either at once, one wins.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::AuditEvent;
use gatehouse_core::passkey::{Challenge, Passkey, PasskeyStore, Purpose};
use gatehouse_core::ports::{StoreError, StoreResult};

use crate::{Dialect, SqlStore};

type PasskeyRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

macro_rules! select_passkeys {
    ($where:literal) => {
        concat!(
            "SELECT id, user_id, user_handle, credential_id, name, credential, counter, created_at, last_used_at FROM passkeys ",
            $where
        )
    };
}

fn passkey(r: PasskeyRow) -> Passkey {
    let (id, user_id, user_handle, credential_id, name, credential, counter, created_at, last) = r;
    Passkey {
        id,
        user_id,
        user_handle,
        credential_id,
        name,
        credential,
        counter: u32::try_from(counter).unwrap_or(u32::MAX),
        created_at,
        last_used_at: last,
    }
}

/// Takes a live challenge of one purpose: whoever deletes the row has it.
const TAKE: &str = "DELETE FROM passkey_challenges
     WHERE id_digest = $1 AND purpose = $2 AND expires_at > $3
     RETURNING id_digest, user_id, state, expires_at";

for_each_dialect! {
    #[async_trait]
    impl PasskeyStore for SqlStore<D> {
        async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<Passkey>> {
            let rows: Vec<PasskeyRow> = sqlx::query_as(select_passkeys!(
                "WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(rows.into_iter().map(passkey).collect())
        }

        async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Passkey> {
            let row: PasskeyRow = sqlx::query_as(select_passkeys!("WHERE credential_id = $1"))
            .bind(credential_id)
            .fetch_one(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(passkey(row))
        }

        async fn add_passkey(&self, p: &Passkey, max: u32, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
                .bind(&p.user_id)
                .fetch_one(w.conn())
                .await
                .map_err(D::map_err)?;
            if n >= i64::from(max) {
                w.rollback().await?;
                return Err(StoreError::Conflict(format!("at most {max} passkeys per person")));
            }
            let done = sqlx::query(
                "INSERT INTO passkeys (id, user_id, user_handle, credential_id, name, credential, counter, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (credential_id) DO NOTHING",
            )
            .bind(&p.id)
            .bind(&p.user_id)
            .bind(&p.user_handle)
            .bind(&p.credential_id)
            .bind(&p.name)
            .bind(&p.credential)
            .bind(i64::from(p.counter))
            .bind(p.created_at)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            if done.rows_affected() == 0 {
                w.rollback().await?;
                return Err(StoreError::Conflict("this passkey is registered already".into()));
            }
            w.audit(audit).await?;
            w.commit().await
        }

        async fn rename_passkey(
            &self,
            user_id: &str,
            id: &str,
            name: &str,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(id)
                .bind(name)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.audited_if_found(done.rows_affected(), audit).await
        }

        async fn remove_passkey(&self, user_id: &str, id: &str, audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(id)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            w.audited_if_found(done.rows_affected(), audit).await
        }

        async fn use_passkey(
            &self,
            id: &str,
            counter: u32,
            credential: &str,
            now: UnixTime,
        ) -> StoreResult<bool> {
            // `counter_ok` as SQL: up, or 0 after 0.
            let done = sqlx::query(
                "UPDATE passkeys SET counter = $2, credential = $3, last_used_at = $4
                 WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0))",
            )
            .bind(id)
            .bind(i64::from(counter))
            .bind(credential)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(D::map_err)?;
            Ok(done.rows_affected() == 1)
        }

        async fn put_passkey_challenge(&self, c: &Challenge, now: UnixTime) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query("DELETE FROM passkey_challenges WHERE expires_at <= $1")
                .bind(now)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            sqlx::query(
                "INSERT INTO passkey_challenges (id_digest, purpose, user_id, state, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&c.id_digest)
            .bind(c.purpose.as_str())
            .bind(c.user_id.as_deref())
            .bind(&c.state)
            .bind(c.expires_at)
            .execute(w.conn())
            .await
            .map_err(D::map_err)?;
            w.commit().await
        }

        async fn take_passkey_challenge(
            &self,
            id_digest: &str,
            purpose: Purpose,
            now: UnixTime,
        ) -> StoreResult<Challenge> {
            let take = sqlx::query_as::<_, (String, Option<String>, String, i64)>(TAKE)
                .bind(id_digest)
                .bind(purpose.as_str())
                .bind(now);
            let row = if D::CLAIM_IN_WRITE_TX {
                let mut w = self.write().await?;
                let row = take.fetch_optional(w.conn()).await.map_err(D::map_err)?;
                w.commit().await?;
                row
            } else {
                take.fetch_optional(&self.pool).await.map_err(D::map_err)?
            };
            let (id_digest, user_id, state, expires_at) = row.ok_or(StoreError::NotFound)?;
            Ok(Challenge {
                id_digest,
                purpose,
                user_id,
                state,
                expires_at,
            })
        }
    }
}
