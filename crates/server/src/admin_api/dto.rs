//! The admin API's request and response bodies, with their OpenAPI schemas.
//! Inputs refuse unknown fields; outputs are built from the domain records field by
//! field, so a credential (`secret_hash`, `password_hash`) can never slip into one.
//! A client secret appears only in [`RegisteredApp`], [`NewSecret`] and
//! [`AddedSecret`]; secrets are otherwise listed by id ([`SecretView`]).
//!
//! The CLI's `--json` output prints these same types, so the two surfaces show
//! one shape of each record.

use gatehouse_core::admin::ProfileEdit;
use gatehouse_core::backchannel::BackchannelLogout;
use gatehouse_core::model::{
    App, AppSecret, AuditEvent, ClientKeys, GrantType, Org, Role, User, UserStatus,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::json::{object, str_enum};
use super::problem::ApiError;

/// What the secret responses say beside the secret.
pub const SECRET_WARNING: &str =
    "Copy the client secret now: it is stored only as a hash and will not be shown again.";

/// What answers to changes that end an app's tokens say.
pub const TOKENS_ENDED: &str = "Every token issued to this app before this change has ended.";

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Org> for OrgView {
    fn from(o: Org) -> Self {
        Self {
            id: o.id,
            slug: o.slug,
            name: o.name,
            created_at: o.created_at,
        }
    }
}

/// The organization's sign-in policy (`GET`/`PUT /api/v1/org/security`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSecurity {
    /// Everyone must sign in with a second factor (an authenticator app); a
    /// person without one is led to set one up right after the password.
    pub require_mfa: bool,
    /// The roles whose holders must sign in with a second factor, whatever
    /// `require_mfa` says (e.g. the roles that carry `apps:manage`). Each must
    /// be one of the organization's roles (`GET /api/v1/roles`). Always
    /// answered; left as it is when a `PUT` omits it (or sends `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 64)]
    pub require_mfa_roles: Option<Vec<String>>,
}

/// The grant an app is registered for (refresh comes with authorization code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppGrant {
    ClientCredentials,
    AuthorizationCode,
    /// RFC 8693: exchanges people's tokens for tokens to its `exchange_audiences`.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// RFC 8628: a device without a browser; people approve it at `/device`.
    /// `device_code` is accepted for it too.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

str_enum!(AppGrant {
    "client_credentials" => ClientCredentials,
    "authorization_code" => AuthorizationCode,
    "urn:ietf:params:oauth:grant-type:token-exchange" => TokenExchange,
    "urn:ietf:params:oauth:grant-type:device_code" => DeviceCode,
    "device_code" => DeviceCode,
});

impl From<AppGrant> for GrantType {
    fn from(g: AppGrant) -> Self {
        match g {
            AppGrant::ClientCredentials => GrantType::ClientCredentials,
            AppGrant::AuthorizationCode => GrantType::AuthorizationCode,
            AppGrant::TokenExchange => GrantType::TokenExchange,
            AppGrant::DeviceCode => GrantType::DeviceCode,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppStatusView {
    Active,
    Disabled,
}

/// The user an app acts on behalf of.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRef {
    pub id: String,
    /// `None` when that user no longer exists.
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub description: Option<String>,
    pub grant_type: AppGrant,
    pub on_behalf_of: Option<UserRef>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    pub default_audience: Option<String>,
    pub status: AppStatusView,
    /// Authorization requests must carry a PKCE challenge (authorization code apps).
    pub require_pkce: bool,
    /// Authorization requests must be pushed first (RFC 9126; authorization code apps).
    pub require_par: bool,
    /// Token requests must carry a DPoP proof (RFC 9449): the app's tokens are
    /// all bound to its key.
    pub require_dpop: bool,
    /// The APIs (audiences) a token exchange app may exchange people's tokens
    /// for (RFC 8693); empty: none.
    pub exchange_audiences: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last token issued to it, when known.
    pub last_used_at: Option<i64>,
    /// Its active client secrets (ids, never values), in the one-app view
    /// while it has more than one (a rotation with a grace period): then each
    /// shows its own last use. With one, the app's `last_used_at` is its
    /// secret's, and `GET /api/v1/apps/{client_id}/secrets` lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<SecretView>>,
    /// Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0),
    /// when the app registered one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in logout tokens (shown with the URI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
    /// `private_key_jwt` for an app that authenticates with a signed JWT
    /// (RFC 7523) instead of a secret; absent for apps with a client secret
    /// (`client_secret_basic` or `client_secret_post`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<&'static str>,
    /// A `private_key_jwt` app's public keys, registered inline (a JWKS).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where a `private_key_jwt` app's public keys are fetched from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// One of an app's active client secrets: never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds when its grace period ends, if it has one.
    pub expires_at: Option<i64>,
    /// Unix seconds of the last time it authenticated the app, when known
    /// (recorded lazily, to the minute).
    pub last_used_at: Option<i64>,
}

impl From<AppSecret> for SecretView {
    fn from(s: AppSecret) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_used_at: s.last_used_at,
        }
    }
}

/// An app's active client secrets (ids, never values), oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub client_id: String,
    pub secrets: Vec<SecretView>,
}

/// Asks for a second secret. `expires_in` (seconds, at most 90 days) gives the
/// app's current secret a grace period: it stops working that long from now.
/// Without it, the current secret works until it is retired.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSecretRequest {
    pub expires_in: Option<i64>,
}

/// A secret added beside the current one: shown this once. Tokens issued so far
/// stay valid.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedSecret {
    pub client_id: String,
    pub secret_id: String,
    pub client_secret: String,
    pub warning: &'static str,
    /// The app's active secrets now (ids, never values).
    pub secrets: Vec<SecretView>,
}

impl AppView {
    /// `users` resolves the on-behalf user's email (the org's users).
    pub fn new(app: App, users: &[User]) -> Self {
        let grant_type = if app.allows(GrantType::ClientCredentials) {
            AppGrant::ClientCredentials
        } else if app.allows(GrantType::TokenExchange) {
            AppGrant::TokenExchange
        } else if app.allows(GrantType::DeviceCode) && !app.allows(GrantType::AuthorizationCode) {
            AppGrant::DeviceCode
        } else {
            AppGrant::AuthorizationCode
        };
        let on_behalf_of = app.on_behalf_of.map(|id| UserRef {
            email: users.iter().find(|u| u.id == id).map(|u| u.email.clone()),
            id,
        });
        let status = match app.status {
            gatehouse_core::model::AppStatus::Active => AppStatusView::Active,
            gatehouse_core::model::AppStatus::Disabled => AppStatusView::Disabled,
        };
        let (jwks, jwks_uri) = match app.client_keys.map(|k| *k) {
            Some(ClientKeys::Jwks(j)) => (serde_json::from_str(&j).ok(), None),
            Some(ClientKeys::JwksUri(u)) => (None, Some(u)),
            None => (None, None),
        };
        let token_endpoint_auth_method = (jwks.is_some() || jwks_uri.is_some())
            .then_some(gatehouse_core::client_assertion::PRIVATE_KEY_JWT);
        Self {
            client_id: app.client_id,
            name: app.name,
            description: app.description,
            grant_type,
            on_behalf_of,
            redirect_uris: app.redirect_uris,
            post_logout_redirect_uris: app.post_logout_redirect_uris,
            scopes: app.scopes,
            default_scopes: app.default_scopes,
            default_audience: app.default_audience,
            status,
            require_pkce: app.require_pkce,
            require_par: app.require_par,
            require_dpop: app.require_dpop,
            exchange_audiences: app.exchange_audiences,
            created_at: app.created_at,
            last_used_at: app.last_used_at,
            secrets: None,
            token_endpoint_auth_method,
            jwks,
            jwks_uri,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: None,
        }
    }

    /// With the app's back-channel logout registration, if any.
    pub fn with_backchannel(self, reg: Option<BackchannelLogout>) -> Self {
        Self {
            backchannel_logout_session_required: reg.as_ref().map(|r| r.session_required),
            backchannel_logout_uri: reg.map(|r| r.uri),
            ..self
        }
    }

    /// With the app's active secrets listed, when it has more than one.
    pub fn with_secrets(self, secrets: Vec<AppSecret>) -> Self {
        Self {
            secrets: (secrets.len() > 1)
                .then(|| secrets.into_iter().map(SecretView::from).collect()),
            ..self
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppView>,
}

/// A user made together with the app it will act on behalf of.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserInline {
    pub email: String,
    pub name: Option<String>,
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppRequest {
    pub grant_type: AppGrant,
    pub name: String,
    pub description: Option<String>,
    /// Client credentials: the email of the user the app acts on behalf of…
    pub on_behalf_of: Option<String>,
    /// …or a user to create for it (needs `users:manage`).
    #[serde(default, deserialize_with = "object")]
    pub new_user: Option<NewUserInline>,
    /// Authorization code: where the code may be sent (at least one).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the app may ask for.
    pub scopes: Vec<String>,
    /// Asked when a token request names none; all of `scopes` if omitted.
    pub default_scopes: Option<Vec<String>>,
    /// The API (audience) tokens are for when a request names none.
    pub default_audience: Option<String>,
    /// Token exchange: the APIs (audiences) of the organization the app may
    /// exchange people's tokens for (RFC 8693; none if omitted).
    #[serde(default)]
    pub exchange_audiences: Vec<String>,
    /// Authorization code: where logout tokens are POSTed when a person's
    /// session ends (OpenID Connect Back-Channel Logout 1.0; the redirect-URI
    /// policy applies).
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in logout tokens (they always carry it).
    pub backchannel_logout_session_required: Option<bool>,
    /// `private_key_jwt` (RFC 7523): the app authenticates with JWTs signed by
    /// its own key, and has no secret; give `jwks` or `jwks_uri`. Default
    /// (absent): a client secret (`client_secret_basic`/`client_secret_post`).
    pub token_endpoint_auth_method: Option<String>,
    /// `private_key_jwt`: the app's public keys, a JWKS (`{"keys": [...]}`).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// `private_key_jwt`: where the app's JWKS is published (https on a public
    /// DNS name, like redirect URIs).
    pub jwks_uri: Option<String>,
}

/// The app as registered, with its secret: shown this once (none for a
/// `private_key_jwt` app, which has no secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredApp {
    #[serde(flatten)]
    pub app: AppView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

/// Fields to change; absent ones stay. `null` clears `description` and
/// `default_audience`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub default_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub default_audience: Option<Option<String>>,
    /// Whether authorization requests must use PKCE (authorization code apps).
    pub require_pkce: Option<bool>,
    /// Whether authorization requests must be pushed first (RFC 9126;
    /// authorization code apps).
    pub require_par: Option<bool>,
    /// Whether token requests must carry a DPoP proof (RFC 9449).
    pub require_dpop: Option<bool>,
    /// Replaces the APIs a token exchange app may exchange people's tokens for
    /// (RFC 8693; `[]` clears them).
    pub exchange_audiences: Option<Vec<String>>,
    /// The back-channel logout URI; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<bool>,
    /// Replaces a `private_key_jwt` app's keys with this JWKS.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Replaces a `private_key_jwt` app's keys with the JWKS at this URL.
    pub jwks_uri: Option<String>,
}

impl AppPatch {
    /// The back-channel logout part of the patch.
    pub fn backchannel(&self) -> gatehouse_core::admin::BackchannelEdit {
        gatehouse_core::admin::BackchannelEdit {
            uri: self
                .backchannel_logout_uri
                .as_ref()
                .map(|u| u.clone().unwrap_or_default()),
            session_required: self.backchannel_logout_session_required,
        }
    }
}

/// One back-channel logout delivery to an app (its logout token is never kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutDeliveryView {
    pub seq: i64,
    /// `pending`, `delivered` or `failed` (after the last attempt).
    pub status: String,
    pub attempts: i64,
    /// The HTTP status of the last attempt, when the app answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// The session (`sid`) and the person (`sub`) it logs out.
    pub sid: Option<String>,
    pub sub: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the next attempt, while pending.
    pub next_attempt_at: Option<i64>,
    /// Unix seconds, once delivered or given up.
    pub finished_at: Option<i64>,
}

impl From<gatehouse_core::backchannel::LogoutDelivery> for LogoutDeliveryView {
    fn from(d: gatehouse_core::backchannel::LogoutDelivery) -> Self {
        use gatehouse_core::backchannel::DeliveryStatus;
        Self {
            seq: d.seq,
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            sid: d.sid,
            sub: d.sub,
            created_at: d.created_at,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            finished_at: d.finished_at,
        }
    }
}

/// An app's most recent back-channel logout deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutDeliveryList {
    pub deliveries: Vec<LogoutDeliveryView>,
}

/// Tells "absent" (`None`) from `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A regenerated secret: shown this once; tokens issued before it have ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewSecret {
    pub client_id: String,
    pub client_secret: String,
    pub warning: &'static str,
    pub tokens_ended: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnBehalfOf {
    pub email: String,
}

/// After changing the on-behalf user.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnBehalfOfChanged {
    #[serde(flatten)]
    pub app: AppView,
    pub tokens_ended: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatusView {
    Active,
    Deactivated,
}

str_enum!(UserStatusView {
    "active" => Active,
    "deactivated" => Deactivated,
});

impl From<UserStatusView> for UserStatus {
    fn from(s: UserStatusView) -> Self {
        match s {
            UserStatusView::Active => UserStatus::Active,
            UserStatusView::Deactivated => UserStatus::Deactivated,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// A BCP 47 language tag (`fr-CA`).
    pub locale: Option<String>,
    /// An IANA time zone name (`Europe/Paris`).
    pub zoneinfo: Option<String>,
    /// Whether the email address is vouched for (OpenID Connect `email_verified`).
    pub email_verified: bool,
    /// Unix seconds of the last profile change (OpenID Connect `updated_at`).
    pub updated_at: i64,
    pub role: String,
    pub groups: Vec<String>,
    pub status: UserStatusView,
    /// Whether the user has a password (can sign in) or is a service user.
    pub can_sign_in: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            can_sign_in: u.password_hash.is_some(),
            id: u.id,
            email: u.email,
            name: u.name,
            given_name: u.profile.given_name,
            family_name: u.profile.family_name,
            locale: u.profile.locale,
            zoneinfo: u.profile.zoneinfo,
            email_verified: u.profile.email_verified,
            updated_at: u.profile.updated_at,
            role: u.role,
            groups: u.groups,
            status: match u.status {
                UserStatus::Active => UserStatusView::Active,
                UserStatus::Deactivated => UserStatusView::Deactivated,
            },
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// With a password the user can sign in; without, it is a service user.
    pub password: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// A BCP 47 language tag (`fr-CA`).
    pub locale: Option<String>,
    /// An IANA time zone name (`Europe/Paris`).
    pub zoneinfo: Option<String>,
    /// Vouch for the email address (false when absent).
    pub email_verified: Option<bool>,
}

impl NewUserRequest {
    /// The profile claims besides `name`.
    pub fn profile(&self) -> ProfileEdit {
        ProfileEdit {
            name: None,
            given_name: Some(self.given_name.clone()),
            family_name: Some(self.family_name.clone()),
            locale: Some(self.locale.clone()),
            zoneinfo: Some(self.zoneinfo.clone()),
            email_verified: Some(self.email_verified.unwrap_or(false)),
        }
    }
}

/// Fields to change; absent ones stay. `null` (or a blank string) clears a
/// profile field. `status` goes in a request of its own.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<String>,
    pub groups: Option<Vec<String>>,
    pub status: Option<UserStatusView>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub family_name: Option<Option<String>>,
    /// A BCP 47 language tag (`fr-CA`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub locale: Option<Option<String>>,
    /// An IANA time zone name (`Europe/Paris`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub zoneinfo: Option<Option<String>>,
    pub email_verified: Option<bool>,
}

impl UserPatch {
    /// The profile part of the patch.
    pub fn profile(&self) -> ProfileEdit {
        ProfileEdit {
            name: self.name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            locale: self.locale.clone(),
            zoneinfo: self.zoneinfo.clone(),
            email_verified: self.email_verified,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub permissions: Vec<String>,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        Self {
            name: r.name,
            permissions: r.permissions,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// `user`, `app` or `operator`.
    pub kind: String,
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: AuditActor,
    /// The client address the change came from.
    pub address: String,
    pub action: String,
    pub target: String,
    /// One sentence saying what changed.
    pub detail: String,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            seq: e.seq,
            at: e.at,
            actor: AuditActor {
                kind: e.actor_kind.as_str().to_owned(),
                id: e.actor_id,
                name: e.actor_name,
            },
            address: e.address,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEventView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Scopes as the core takes them: one space-delimited string. An element that is
/// empty or holds whitespace would silently become several scopes, so it is refused.
pub fn scope_string(field: &'static str, scopes: &[String]) -> Result<String, ApiError> {
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
    {
        return Err(ApiError::invalid(
            field,
            format!("`{bad}` is not one scope; give each scope as its own string"),
        ));
    }
    Ok(scopes.join(" "))
}
