//! Rows to domain records. Lists are JSON arrays in TEXT columns; enums are their
//! wire strings. A value that does not decode is an internal error, never a panic.

use gatehouse_core::model::*;
use gatehouse_core::ports::{StoreError, StoreResult};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col)
        .map_err(|e| StoreError::Internal(format!("column {col}: {e}")))
}

fn list(row: &SqliteRow, col: &str) -> StoreResult<Vec<String>> {
    let raw: String = get(row, col)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Internal(format!("column {col}: {e}")))
}

fn parsed<T>(row: &SqliteRow, col: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let raw: String = get(row, col)?;
    parse(&raw).ok_or_else(|| StoreError::Internal(format!("column {col}: unknown value `{raw}`")))
}

pub fn to_json(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

pub fn org(row: &SqliteRow) -> StoreResult<Org> {
    Ok(Org {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

pub fn role(row: &SqliteRow) -> StoreResult<Role> {
    Ok(Role {
        org_id: get(row, "org_id")?,
        name: get(row, "name")?,
        permissions: list(row, "permissions")?,
    })
}

pub fn user(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        password_hash: get(row, "password_hash")?,
        role: get(row, "role")?,
        groups: list(row, "groups")?,
        status: parsed(row, "status", UserStatus::parse)?,
        created_at: get(row, "created_at")?,
        tokens_valid_after: get(row, "tokens_valid_after")?,
    })
}

pub fn api(row: &SqliteRow) -> StoreResult<Api> {
    Ok(Api {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        name: get(row, "name")?,
        audience: get(row, "audience")?,
        scopes: list(row, "scopes")?,
        token_format: parsed(row, "token_format", TokenFormat::parse)?,
        signing_alg: parsed(row, "signing_alg", SigningAlg::parse)?,
        access_token_ttl: get(row, "access_token_ttl")?,
        client_id: get(row, "client_id")?,
        secret_hash: get(row, "secret_hash")?,
        created_at: get(row, "created_at")?,
    })
}

pub fn app(row: &SqliteRow) -> StoreResult<App> {
    let grant_types = list(row, "grant_types")?
        .iter()
        .map(|g| {
            GrantType::parse(g)
                .ok_or_else(|| StoreError::Internal(format!("column grant_types: unknown `{g}`")))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(App {
        id: get(row, "id")?,
        client_id: get(row, "client_id")?,
        org_id: get(row, "org_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        grant_types,
        on_behalf_of: get(row, "on_behalf_of")?,
        redirect_uris: list(row, "redirect_uris")?,
        post_logout_redirect_uris: list(row, "post_logout_redirect_uris")?,
        scopes: list(row, "scopes")?,
        default_scopes: list(row, "default_scopes")?,
        default_audience: get(row, "default_audience")?,
        secret_hash: get(row, "secret_hash")?,
        generation: get(row, "generation")?,
        status: parsed(row, "status", AppStatus::parse)?,
        require_pkce: get(row, "require_pkce")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

pub fn key(row: &SqliteRow) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        kid: get(row, "kid")?,
        alg: parsed(row, "alg", SigningAlg::parse)?,
        state: parsed(row, "state", KeyState::parse)?,
        sealed_private_key: get(row, "sealed_private_key")?,
        created_at: get(row, "created_at")?,
        activated_at: get(row, "activated_at")?,
        retired_at: get(row, "retired_at")?,
    })
}

pub fn reference_token(row: &SqliteRow) -> StoreResult<ReferenceToken> {
    let claims: String = get(row, "claims")?;
    Ok(ReferenceToken {
        digest: get(row, "digest")?,
        client_id: get(row, "client_id")?,
        audience: get(row, "audience")?,
        claims: serde_json::from_str(&claims)
            .map_err(|e| StoreError::Internal(format!("column claims: {e}")))?,
        expires_at: get(row, "expires_at")?,
    })
}

pub fn change(row: &SqliteRow) -> StoreResult<Change> {
    Ok(Change {
        seq: get(row, "seq")?,
        kind: parsed(row, "kind", ChangeKind::parse)?,
        key: get(row, "key")?,
        at: get(row, "at")?,
        org_id: get(row, "org_id")?,
    })
}

pub fn session(row: &SqliteRow) -> StoreResult<Session> {
    Ok(Session {
        id_digest: get(row, "id_digest")?,
        sid: get(row, "sid")?,
        user_id: get(row, "user_id")?,
        auth_time: get(row, "auth_time")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub fn grant(row: &SqliteRow) -> StoreResult<Grant> {
    Ok(Grant {
        id: get(row, "id")?,
        client_id: get(row, "client_id")?,
        user_id: get(row, "user_id")?,
        scopes: list(row, "scopes")?,
        audience: get(row, "audience")?,
        generation: get(row, "generation")?,
        sid: get(row, "sid")?,
        auth_time: get(row, "auth_time")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub fn auth_code(row: &SqliteRow) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        digest: get(row, "digest")?,
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        redirect_uri: get(row, "redirect_uri")?,
        nonce: get(row, "nonce")?,
        code_challenge: get(row, "code_challenge")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub fn refresh_token(row: &SqliteRow) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        digest: get(row, "digest")?,
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        scopes: list(row, "scopes")?,
        expires_at: get(row, "expires_at")?,
        used_at: get(row, "used_at")?,
    })
}

pub fn consent(row: &SqliteRow) -> StoreResult<Consent> {
    Ok(Consent {
        user_id: get(row, "user_id")?,
        client_id: get(row, "client_id")?,
        scopes: list(row, "scopes")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub fn audit_event(row: &SqliteRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: get(row, "seq")?,
        org_id: get(row, "org_id")?,
        at: get(row, "at")?,
        actor_kind: parsed(row, "actor_kind", ActorKind::parse)?,
        actor_id: get(row, "actor_id")?,
        actor_name: get(row, "actor_name")?,
        address: get(row, "address")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        detail: get(row, "detail")?,
    })
}
