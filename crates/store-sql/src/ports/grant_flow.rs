//! What the code and refresh grants read and write, one round trip each where
//! the database allows: the reads are one joined SELECT (the same text for
//! both), on the hot path's connections (`direct.rs`); the writes are the dialect's (`sqlite/grant_flow.rs`: one write
//! transaction; `postgres/grant_flow.rs`: one statement), reached through the
//! inherent methods `rotate_issuing` and `claim_issuing` each dialect defines.

use async_trait::async_trait;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{ReferenceToken, RefreshToken};
use gatehouse_core::ports::{
    CodeContext, GrantContext, GrantFlowStore, Redeemed, RefreshContext, StoreResult,
};

use crate::rows::{CodeContextRow, GrantContextRow, RefreshContextRow};
use crate::{Dialect, SqlStore};

/// A grant (`g`) with its user (`u`, columns prefixed `u_`, NULL when gone)
/// and the permissions of the user's role (`r_permissions`, NULL when gone).
macro_rules! grant_context_columns {
    () => {
        "g.id, g.client_id, g.user_id, g.scopes, g.audience, g.generation, g.sid, g.auth_time, g.amr,
         g.created_at, g.revoked_at, g.claims,
         u.id AS u_id, u.org_id AS u_org_id, u.email AS u_email, u.name AS u_name,
         u.password_hash AS u_password_hash, u.role AS u_role, u.groups AS u_groups,
         u.status AS u_status, u.created_at AS u_created_at,
         u.tokens_valid_after AS u_tokens_valid_after, u.given_name AS u_given_name,
         u.family_name AS u_family_name, u.locale AS u_locale, u.zoneinfo AS u_zoneinfo,
         u.email_verified AS u_email_verified, u.updated_at AS u_updated_at,
         r.permissions AS r_permissions"
    };
}

/// The joins after `grants g` that [`grant_context_columns!`] reads.
macro_rules! grant_context_joins {
    () => {
        " LEFT JOIN users u ON u.id = g.user_id
          LEFT JOIN roles r ON r.org_id = u.org_id AND r.name = u.role"
    };
}

/// The claim both dialects make: `$1` now, `$2` the code's digest. Only an
/// unused code of a standing grant is claimed; used and finished at once (the
/// tokens land in the same write).
macro_rules! claim_code_once {
    () => {
        "UPDATE auth_codes SET used_at = $1, finished_at = $1
         WHERE digest = $2 AND used_at IS NULL
           AND EXISTS (SELECT 1 FROM grants
                       WHERE grants.id = auth_codes.grant_id AND grants.revoked_at IS NULL)"
    };
}
pub(crate) use claim_code_once;

/// The code `$1` (columns prefixed `c_`) with its grant context; `used` is 1
/// when it was claimed before.
const CODE_CONTEXT: &str = concat!(
    "SELECT CAST(CASE WHEN c.used_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS used,
            c.digest AS c_digest, c.grant_id AS c_grant_id, c.client_id AS c_client_id,
            c.redirect_uri AS c_redirect_uri, c.nonce AS c_nonce,
            c.code_challenge AS c_code_challenge, c.expires_at AS c_expires_at, ",
    grant_context_columns!(),
    " FROM auth_codes c JOIN grants g ON g.id = c.grant_id",
    grant_context_joins!(),
    " WHERE c.digest = $1"
);

const GRANT_CONTEXT: &str = concat!(
    "SELECT ",
    grant_context_columns!(),
    " FROM grants g",
    grant_context_joins!(),
    " WHERE g.id = $1"
);

const REFRESH_CONTEXT: &str = concat!(
    "SELECT t.digest AS t_digest, t.grant_id AS t_grant_id, t.client_id AS t_client_id,
            t.scopes AS t_scopes, t.expires_at AS t_expires_at, t.used_at AS t_used_at,
            t.dpop_jkt AS t_dpop_jkt, ",
    grant_context_columns!(),
    " FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id",
    grant_context_joins!(),
    " WHERE t.digest = $1"
);

for_each_dialect! {
    #[async_trait]
    impl GrantFlowStore for SqlStore<D> {
        async fn grant_context(&self, grant_id: &str) -> StoreResult<GrantContext> {
            self.one::<GrantContextRow, _>(GRANT_CONTEXT, grant_id).await
        }

        async fn refresh_context(&self, digest: &str) -> StoreResult<RefreshContext> {
            self.one::<RefreshContextRow, _>(REFRESH_CONTEXT, digest).await
        }

        async fn code_context(&self, digest: &str) -> StoreResult<Redeemed<CodeContext>> {
            let row: CodeContextRow = read_on!(self.direct, D::map_err, |conn| {
                sqlx::query_as(CODE_CONTEXT).bind(digest).fetch_one(conn)
            })?;
            if row.used != 0 {
                return Ok(Redeemed::Replayed {
                    grant_id: row.c_grant_id,
                });
            }
            Ok(Redeemed::Fresh(row.try_into()?))
        }

        async fn rotate_refresh_token_issuing(
            &self,
            digest: &str,
            next: &RefreshToken,
            reference: Option<&ReferenceToken>,
            now: UnixTime,
        ) -> StoreResult<Redeemed<RefreshToken>> {
            self.rotate_issuing(digest, next, reference, now).await
        }

        async fn claim_code_issuing(
            &self,
            digest: &str,
            refresh: Option<&RefreshToken>,
            reference: Option<&ReferenceToken>,
            now: UnixTime,
        ) -> StoreResult<bool> {
            self.claim_issuing(digest, refresh, reference, now).await
        }
    }
}
