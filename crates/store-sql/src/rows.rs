//! Rows as the databases hand them out, converted into the domain model once.
//! Lists are JSON arrays in TEXT columns and enums their wire strings (both
//! backends store and read alike); a value that does not decode is an internal
//! error, never a panic.

use gatehouse_core::claims::ClaimsRequest;
use gatehouse_core::context::ActingUser;
use gatehouse_core::model::*;
use gatehouse_core::ports::{CodeContext, GrantContext, RefreshContext, StoreError, StoreResult};

/// `sqlx::FromRow` by column name, for both backends' rows. sqlx's derive does
/// the same, but its procedural-macro crate builds sqlx a second time for the
/// compiler's host (see migrations.rs for the cost).
macro_rules! from_row {
    (
        $(#[$meta:meta])* $vis:vis struct $name:ident {
            $($(#[sqlx($flat:ident)])? $fvis:vis $field:ident: $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name { $($fvis $field: $ty),* }
        $crate::rows::from_row!(@impl $name, sqlx::sqlite::SqliteRow, $($field $ty $(, $flat)?);*);
        $crate::rows::from_row!(@impl $name, sqlx::postgres::PgRow, $($field $ty $(, $flat)?);*);
    };
    (@impl $name:ident, $row:ty, $($field:ident $ty:ty $(, $flat:ident)?);*) => {
        impl<'r> sqlx::FromRow<'r, $row> for $name {
            fn from_row(row: &'r $row) -> Result<Self, sqlx::Error> {
                Ok(Self { $($field: $crate::rows::from_row!(@get row, $row, $field, $ty $(, $flat)?)),* })
            }
        }
    };
    // A column by its field's name.
    (@get $r:ident, $row:ty, $field:ident, $ty:ty) => {
        sqlx::Row::try_get($r, stringify!($field))?
    };
    // `#[sqlx(flatten)]`: a nested row read from the same columns.
    (@get $r:ident, $row:ty, $field:ident, $ty:ty, flatten) => {
        <$ty as sqlx::FromRow<'r, $row>>::from_row($r)?
    };
}
pub(crate) use from_row;

fn list(col: &str, raw: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(raw).map_err(|e| StoreError::Internal(format!("column {col}: {e}")))
}

fn parsed<T>(col: &str, raw: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(raw).ok_or_else(|| StoreError::Internal(format!("column {col}: unknown value `{raw}`")))
}

/// A list as stored.
pub(crate) fn to_json(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

from_row! {
    pub(crate) struct OrgRow {
        id: String,
        slug: String,
        name: String,
        created_at: i64,
    }
}

impl TryFrom<OrgRow> for Org {
    type Error = StoreError;
    fn try_from(r: OrgRow) -> StoreResult<Self> {
        Ok(Org {
            id: r.id,
            slug: r.slug,
            name: r.name,
            created_at: r.created_at,
        })
    }
}

from_row! {
    pub(crate) struct RoleRow {
        org_id: String,
        name: String,
        permissions: String,
    }
}

impl TryFrom<RoleRow> for Role {
    type Error = StoreError;
    fn try_from(r: RoleRow) -> StoreResult<Self> {
        Ok(Role {
            permissions: list("permissions", &r.permissions)?,
            org_id: r.org_id,
            name: r.name,
        })
    }
}

from_row! {
    pub(crate) struct UserRow {
        id: String,
        org_id: String,
        email: String,
        name: Option<String>,
        password_hash: Option<String>,
        role: String,
        groups: String,
        status: String,
        created_at: i64,
        tokens_valid_after: i64,
        given_name: Option<String>,
        family_name: Option<String>,
        locale: Option<String>,
        zoneinfo: Option<String>,
        email_verified: bool,
        updated_at: i64,
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(User {
            groups: list("groups", &r.groups)?,
            status: parsed("status", &r.status, UserStatus::parse)?,
            id: r.id,
            org_id: r.org_id,
            email: r.email,
            name: r.name,
            password_hash: r.password_hash,
            role: r.role,
            created_at: r.created_at,
            tokens_valid_after: r.tokens_valid_after,
            profile: Profile {
                given_name: r.given_name,
                family_name: r.family_name,
                locale: r.locale,
                zoneinfo: r.zoneinfo,
                email_verified: r.email_verified,
                updated_at: r.updated_at,
            },
        })
    }
}

from_row! {
    pub(crate) struct ApiRow {
        id: String,
        org_id: String,
        name: String,
        audience: String,
        scopes: String,
        token_format: String,
        signing_alg: String,
        access_token_ttl: i64,
        client_id: String,
        secret_hash: String,
        created_at: i64,
    }
}

impl TryFrom<ApiRow> for Api {
    type Error = StoreError;
    fn try_from(r: ApiRow) -> StoreResult<Self> {
        Ok(Api {
            scopes: list("scopes", &r.scopes)?,
            token_format: parsed("token_format", &r.token_format, TokenFormat::parse)?,
            signing_alg: parsed("signing_alg", &r.signing_alg, SigningAlg::parse)?,
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            audience: r.audience,
            access_token_ttl: r.access_token_ttl,
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            created_at: r.created_at,
        })
    }
}

from_row! {
    pub(crate) struct AppRow {
        id: String,
        client_id: String,
        org_id: String,
        name: String,
        description: Option<String>,
        grant_types: String,
        on_behalf_of: Option<String>,
        redirect_uris: String,
        post_logout_redirect_uris: String,
        scopes: String,
        default_scopes: String,
        default_audience: Option<String>,
        secret_hash: String,
        generation: i64,
        status: String,
        require_pkce: bool,
        require_par: bool,
        require_dpop: bool,
        exchange_audiences: String,
        created_at: i64,
        last_used_at: Option<i64>,
        jwks: Option<String>,
        jwks_uri: Option<String>,
    }
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;
    fn try_from(r: AppRow) -> StoreResult<Self> {
        let grant_types = list("grant_types", &r.grant_types)?
            .iter()
            .map(|g| parsed("grant_types", g, GrantType::parse))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(App {
            grant_types,
            redirect_uris: list("redirect_uris", &r.redirect_uris)?,
            post_logout_redirect_uris: list(
                "post_logout_redirect_uris",
                &r.post_logout_redirect_uris,
            )?,
            scopes: list("scopes", &r.scopes)?,
            default_scopes: list("default_scopes", &r.default_scopes)?,
            exchange_audiences: list("exchange_audiences", &r.exchange_audiences)?,
            status: parsed("status", &r.status, AppStatus::parse)?,
            id: r.id,
            client_id: r.client_id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            on_behalf_of: r.on_behalf_of,
            default_audience: r.default_audience,
            secret_hash: r.secret_hash,
            generation: r.generation,
            require_pkce: r.require_pkce,
            require_par: r.require_par,
            require_dpop: r.require_dpop,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            client_keys: match (r.jwks, r.jwks_uri) {
                (Some(j), _) => Some(Box::new(ClientKeys::Jwks(j))),
                (None, Some(u)) => Some(Box::new(ClientKeys::JwksUri(u))),
                (None, None) => None,
            },
        })
    }
}

from_row! {
    pub(crate) struct AppSecretRow {
        id: String,
        client_id: String,
        digest: String,
        created_at: i64,
        expires_at: Option<i64>,
        retired_at: Option<i64>,
        last_used_at: Option<i64>,
    }
}

impl TryFrom<AppSecretRow> for AppSecret {
    type Error = StoreError;
    fn try_from(r: AppSecretRow) -> StoreResult<Self> {
        Ok(AppSecret {
            id: r.id,
            client_id: r.client_id,
            digest: r.digest,
            created_at: r.created_at,
            expires_at: r.expires_at,
            retired_at: r.retired_at,
            last_used_at: r.last_used_at,
        })
    }
}

from_row! {
    pub(crate) struct KeyRow {
        kid: String,
        alg: String,
        state: String,
        sealed_private_key: String,
        created_at: i64,
        activated_at: Option<i64>,
        retired_at: Option<i64>,
    }
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(StoredKey {
            alg: parsed("alg", &r.alg, SigningAlg::parse)?,
            state: parsed("state", &r.state, KeyState::parse)?,
            kid: r.kid,
            sealed_private_key: r.sealed_private_key,
            created_at: r.created_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
        })
    }
}

from_row! {
    pub(crate) struct ReferenceTokenRow {
        digest: String,
        client_id: String,
        audience: String,
        claims: String,
        expires_at: i64,
    }
}

impl TryFrom<ReferenceTokenRow> for ReferenceToken {
    type Error = StoreError;
    fn try_from(r: ReferenceTokenRow) -> StoreResult<Self> {
        Ok(ReferenceToken {
            claims: serde_json::from_str(&r.claims)
                .map_err(|e| StoreError::Internal(format!("column claims: {e}")))?,
            digest: r.digest,
            client_id: r.client_id,
            audience: r.audience,
            expires_at: r.expires_at,
        })
    }
}

from_row! {
    pub(crate) struct ChangeRow {
        seq: i64,
        kind: String,
        key: String,
        at: i64,
        org_id: String,
    }
}

impl TryFrom<ChangeRow> for Change {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> StoreResult<Self> {
        Ok(Change {
            kind: parsed("kind", &r.kind, ChangeKind::parse)?,
            seq: r.seq,
            key: r.key,
            at: r.at,
            org_id: r.org_id,
        })
    }
}

from_row! {
    pub(crate) struct SessionRow {
        id_digest: String,
        sid: String,
        user_id: String,
        auth_time: i64,
        expires_at: i64,
        amr: String,
        user_agent: Option<String>,
        address: Option<String>,
        last_seen_at: Option<i64>,
    }
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> StoreResult<Self> {
        Ok(Session {
            id_digest: r.id_digest,
            sid: r.sid,
            user_id: r.user_id,
            auth_time: r.auth_time,
            expires_at: r.expires_at,
            amr: list("amr", &r.amr)?,
            user_agent: r.user_agent,
            address: r.address,
            last_seen_at: r.last_seen_at,
        })
    }
}

from_row! {
    pub(crate) struct GrantRow {
        id: String,
        client_id: String,
        user_id: String,
        scopes: String,
        audience: Option<String>,
        generation: i64,
        sid: Option<String>,
        auth_time: i64,
        amr: String,
        created_at: i64,
        revoked_at: Option<i64>,
        claims: Option<String>,
    }
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> StoreResult<Self> {
        Ok(Grant {
            scopes: list("scopes", &r.scopes)?,
            id: r.id,
            client_id: r.client_id,
            user_id: r.user_id,
            audience: r.audience,
            generation: r.generation,
            sid: r.sid,
            auth_time: r.auth_time,
            amr: list("amr", &r.amr)?,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            claims: ClaimsRequest::from_stored(r.claims.as_deref()),
        })
    }
}

from_row! {
    pub(crate) struct RefreshTokenRow {
        digest: String,
        grant_id: String,
        client_id: String,
        scopes: String,
        expires_at: i64,
        used_at: Option<i64>,
        dpop_jkt: Option<String>,
    }
}

impl TryFrom<RefreshTokenRow> for RefreshToken {
    type Error = StoreError;
    fn try_from(r: RefreshTokenRow) -> StoreResult<Self> {
        Ok(RefreshToken {
            scopes: list("scopes", &r.scopes)?,
            digest: r.digest,
            grant_id: r.grant_id,
            client_id: r.client_id,
            expires_at: r.expires_at,
            used_at: r.used_at,
            dpop_jkt: r.dpop_jkt,
        })
    }
}

from_row! {
    pub(crate) struct ConsentRow {
        user_id: String,
        client_id: String,
        scopes: String,
        updated_at: i64,
    }
}

impl TryFrom<ConsentRow> for Consent {
    type Error = StoreError;
    fn try_from(r: ConsentRow) -> StoreResult<Self> {
        Ok(Consent {
            scopes: list("scopes", &r.scopes)?,
            user_id: r.user_id,
            client_id: r.client_id,
            updated_at: r.updated_at,
        })
    }
}

from_row! {
    pub(crate) struct AuditEventRow {
        seq: i64,
        org_id: String,
        at: i64,
        actor_kind: String,
        actor_id: String,
        actor_name: String,
        address: String,
        action: String,
        target: String,
        detail: String,
    }
}

impl TryFrom<AuditEventRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditEventRow) -> StoreResult<Self> {
        Ok(AuditEvent {
            actor_kind: parsed("actor_kind", &r.actor_kind, ActorKind::parse)?,
            seq: r.seq,
            org_id: r.org_id,
            at: r.at,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            address: r.address,
            action: r.action,
            target: r.target,
            detail: r.detail,
        })
    }
}

from_row! {
    /// The user columns of a grant's joined read (`ports/grant_flow.rs`): all
    /// NULL when the user is gone, `permissions` NULL when their role is.
    pub(crate) struct ActingUserRow {
        u_id: Option<String>,
        u_org_id: Option<String>,
        u_email: Option<String>,
        u_name: Option<String>,
        u_password_hash: Option<String>,
        u_role: Option<String>,
        u_groups: Option<String>,
        u_status: Option<String>,
        u_created_at: Option<i64>,
        u_tokens_valid_after: Option<i64>,
        u_given_name: Option<String>,
        u_family_name: Option<String>,
        u_locale: Option<String>,
        u_zoneinfo: Option<String>,
        u_email_verified: Option<bool>,
        u_updated_at: Option<i64>,
        r_permissions: Option<String>,
    }
}

impl TryFrom<ActingUserRow> for Option<ActingUser> {
    type Error = StoreError;
    fn try_from(r: ActingUserRow) -> StoreResult<Self> {
        let Some(id) = r.u_id else {
            return Ok(None);
        };
        let missing = |col: &str| StoreError::Internal(format!("column {col}: NULL"));
        let user = User::try_from(UserRow {
            id,
            org_id: r.u_org_id.ok_or_else(|| missing("u_org_id"))?,
            email: r.u_email.ok_or_else(|| missing("u_email"))?,
            name: r.u_name,
            password_hash: r.u_password_hash,
            role: r.u_role.ok_or_else(|| missing("u_role"))?,
            groups: r.u_groups.ok_or_else(|| missing("u_groups"))?,
            status: r.u_status.ok_or_else(|| missing("u_status"))?,
            created_at: r.u_created_at.ok_or_else(|| missing("u_created_at"))?,
            tokens_valid_after: r
                .u_tokens_valid_after
                .ok_or_else(|| missing("u_tokens_valid_after"))?,
            given_name: r.u_given_name,
            family_name: r.u_family_name,
            locale: r.u_locale,
            zoneinfo: r.u_zoneinfo,
            email_verified: r
                .u_email_verified
                .ok_or_else(|| missing("u_email_verified"))?,
            updated_at: r.u_updated_at.ok_or_else(|| missing("u_updated_at"))?,
        })?;
        let permissions = match r.r_permissions {
            Some(p) => list("permissions", &p)?,
            None => Vec::new(),
        };
        Ok(Some(ActingUser { user, permissions }))
    }
}

from_row! {
    pub(crate) struct GrantContextRow {
        #[sqlx(flatten)]
        grant: GrantRow,
        #[sqlx(flatten)]
        user: ActingUserRow,
    }
}

impl TryFrom<GrantContextRow> for GrantContext {
    type Error = StoreError;
    fn try_from(r: GrantContextRow) -> StoreResult<Self> {
        Ok(GrantContext {
            grant: r.grant.try_into()?,
            user: r.user.try_into()?,
        })
    }
}

from_row! {
    /// A refresh token's columns are prefixed `t_` in the joined read.
    pub(crate) struct RefreshContextRow {
        t_digest: String,
        t_grant_id: String,
        t_client_id: String,
        t_scopes: String,
        t_expires_at: i64,
        t_used_at: Option<i64>,
        t_dpop_jkt: Option<String>,
        #[sqlx(flatten)]
        grant: GrantContextRow,
    }
}

impl TryFrom<RefreshContextRow> for RefreshContext {
    type Error = StoreError;
    fn try_from(r: RefreshContextRow) -> StoreResult<Self> {
        let token = RefreshToken::try_from(RefreshTokenRow {
            digest: r.t_digest,
            grant_id: r.t_grant_id,
            client_id: r.t_client_id,
            scopes: r.t_scopes,
            expires_at: r.t_expires_at,
            used_at: r.t_used_at,
            dpop_jkt: r.t_dpop_jkt,
        })?;
        Ok(RefreshContext {
            token,
            grant: r.grant.try_into()?,
        })
    }
}

from_row! {
    /// A code's columns are prefixed `c_` in the exchange's joined read;
    /// `used` is 1 when it was claimed (or burnt) before.
    pub(crate) struct CodeContextRow {
        pub(crate) used: i64,
        c_digest: String,
        pub(crate) c_grant_id: String,
        c_client_id: String,
        c_redirect_uri: String,
        c_nonce: Option<String>,
        c_code_challenge: Option<String>,
        c_expires_at: i64,
        #[sqlx(flatten)]
        grant: GrantContextRow,
    }
}

impl TryFrom<CodeContextRow> for CodeContext {
    type Error = StoreError;
    fn try_from(r: CodeContextRow) -> StoreResult<Self> {
        Ok(CodeContext {
            code: AuthCode {
                digest: r.c_digest,
                grant_id: r.c_grant_id,
                client_id: r.c_client_id,
                redirect_uri: r.c_redirect_uri,
                nonce: r.c_nonce,
                code_challenge: r.c_code_challenge,
                expires_at: r.c_expires_at,
            },
            grant: r.grant.try_into()?,
        })
    }
}

/// Rows to models, all or nothing.
pub(crate) fn models<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

from_row! {
    pub(crate) struct PushedRequestRow {
        digest: String,
        client_id: String,
        params: String,
        expires_at: i64,
    }
}

impl TryFrom<PushedRequestRow> for PushedRequest {
    type Error = StoreError;
    fn try_from(r: PushedRequestRow) -> StoreResult<Self> {
        Ok(PushedRequest {
            digest: r.digest,
            client_id: r.client_id,
            params: r.params,
            expires_at: r.expires_at,
        })
    }
}

from_row! {
    pub(crate) struct DeviceAuthorizationRow {
        device_digest: String,
        user_digest: String,
        client_id: String,
        scopes: String,
        audience: Option<String>,
        status: String,
        grant_id: Option<String>,
        poll_interval: i64,
        last_poll_at: Option<i64>,
        pub(crate) last_poll_too_fast: bool,
        expires_at: i64,
        used_at: Option<i64>,
    }
}

impl TryFrom<DeviceAuthorizationRow> for DeviceAuthorization {
    type Error = StoreError;
    fn try_from(r: DeviceAuthorizationRow) -> StoreResult<Self> {
        Ok(DeviceAuthorization {
            scopes: list("scopes", &r.scopes)?,
            status: parsed("status", &r.status, DeviceStatus::parse)?,
            device_digest: r.device_digest,
            user_digest: r.user_digest,
            client_id: r.client_id,
            audience: r.audience,
            grant_id: r.grant_id,
            interval: r.poll_interval,
            last_poll_at: r.last_poll_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        })
    }
}

from_row! {
    pub(crate) struct TotpRow {
        user_id: String,
        sealed_secret: String,
        created_at: i64,
        confirmed_at: Option<i64>,
        last_step: i64,
    }
}

impl From<TotpRow> for gatehouse_core::model::TotpFactor {
    fn from(r: TotpRow) -> Self {
        gatehouse_core::model::TotpFactor {
            user_id: r.user_id,
            sealed_secret: r.sealed_secret,
            created_at: r.created_at,
            confirmed_at: r.confirmed_at,
            last_step: r.last_step,
        }
    }
}
