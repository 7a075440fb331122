//! The domain records Gatehouse stores: organizations, their roles and users, the
//! APIs (resource servers) they define, the apps (OAuth clients) they register and
//! the signing keys. Plain data; rules live in the grants and in [`crate::admin`].

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::scope::ScopeSet;

/// An enum whose wire string (database column, JSON, form value) is written once:
/// `as_str`, `parse`, `Display`, `FromStr` and serde's `Serialize`/`Deserialize`
/// all come from the one `Variant = "wire"` table. The strings are stored in the
/// database, so a table entry never changes once released.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every wire string, in declaration order.
            pub const WIRE: &'static [&'static str] = &[$($wire),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $wire => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWireValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| UnknownWireValue {
                    kind: stringify!($name),
                    value: s.to_owned(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        // Deserialized as serde's derive does for unit variants (an enum whose
        // identifier is the wire string), so error messages stay the derive's.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Tag($name);
                impl<'de> Deserialize<'de> for Tag {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        d.deserialize_identifier(TagVisitor)
                    }
                }
                struct TagVisitor;
                impl serde::de::Visitor<'_> for TagVisitor {
                    type Value = Tag;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("variant identifier")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Tag, E> {
                        $name::parse(v)
                            .map(Tag)
                            .ok_or_else(|| E::unknown_variant(v, $name::WIRE))
                    }
                }
                struct EnumVisitor;
                impl<'de> serde::de::Visitor<'de> for EnumVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("enum ", stringify!($name)))
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(
                        self,
                        data: A,
                    ) -> Result<$name, A::Error> {
                        use serde::de::VariantAccess;
                        let (Tag(value), variant) = data.variant::<Tag>()?;
                        variant.unit_variant()?;
                        Ok(value)
                    }
                }
                d.deserialize_enum(stringify!($name), $name::WIRE, EnumVisitor)
            }
        }
    };
}

/// A string that is no wire value of the enum named `kind`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind}")]
pub struct UnknownWireValue {
    pub kind: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: UnixTime,
}

/// Permission that lets a user authorize apps and lets apps act for them.
pub const PERM_DEVELOPER_API: &str = "developer_api";
/// Permission to register and manage the organization's apps.
pub const PERM_APPS_MANAGE: &str = "apps:manage";
/// Permission to manage users of the organization.
pub const PERM_USERS_MANAGE: &str = "users:manage";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub org_id: String,
    pub name: String,
    pub permissions: Vec<String>,
}

impl Role {
    /// The roles every organization starts with.
    pub fn defaults(org_id: &str) -> Vec<Role> {
        let role = |name: &str, perms: &[&str]| Role {
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
        };
        vec![
            role(
                "admin",
                &[PERM_DEVELOPER_API, PERM_APPS_MANAGE, PERM_USERS_MANAGE],
            ),
            role("developer", &[PERM_DEVELOPER_API]),
            role("member", &[]),
        ]
    }
}

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum UserStatus {
        Active = "active",
        Deactivated = "deactivated",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: Option<String>,
    /// Argon2id PHC string; `None` for users who cannot sign in (service users).
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub role: String,
    pub groups: Vec<String>,
    pub status: UserStatus,
    pub created_at: UnixTime,
    /// Tokens naming this user (`sub`) issued at or before this time have ended
    /// for good: set when the user is deactivated, so re-activating them does not
    /// revive what the deactivation ended. 0 when never deactivated.
    #[serde(default)]
    pub tokens_valid_after: UnixTime,
    /// The OpenID Connect standard claims besides `name` and `email`.
    #[serde(default)]
    pub profile: Profile,
}

/// A person's OpenID Connect standard claims (Core §5.1) other than `sub`,
/// `email` and `name` (which [`User`] holds itself). Validated by
/// [`crate::admin::ProfileEdit`]; `None` means "no value" and is never sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// A BCP 47 language tag (`fr-CA`).
    pub locale: Option<String>,
    /// An IANA time zone name (`Europe/Paris`).
    pub zoneinfo: Option<String>,
    /// An admin vouched for the email address (Gatehouse sends no mail itself).
    pub email_verified: bool,
    /// When a profile field (name included) last changed; the creation time at first.
    pub updated_at: UnixTime,
}

impl User {
    /// Did this user's deactivation end a token issued at `iat`?
    pub fn ended_before(&self, iat: UnixTime) -> bool {
        iat <= self.tokens_valid_after
    }
}

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TokenFormat {
        Jwt = "jwt",
        Reference = "reference",
    }
}

wire_enum! {
    /// JWS algorithms Gatehouse signs with.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum SigningAlg {
        ES256 = "ES256",
        RS256 = "RS256",
        EdDSA = "EdDSA",
    }
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA];
}

/// A resource server: what `aud` names, which scopes it defines, how its tokens look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub audience: String,
    pub scopes: Vec<String>,
    pub token_format: TokenFormat,
    pub signing_alg: SigningAlg,
    pub access_token_ttl: i64,
    /// The API's own credentials, used for introspection.
    pub client_id: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: UnixTime,
}

impl Api {
    pub fn scope_set(&self) -> ScopeSet {
        ScopeSet::from_vec(self.scopes.clone())
    }
}

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum GrantType {
        ClientCredentials = "client_credentials",
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        /// RFC 8693: an app exchanges a person's access token for one to
        /// another API, on the same person's behalf.
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
        /// RFC 8628: a device without a browser (a CLI, a TV) shows a code
        /// that a person approves at `/device`, and polls for its tokens.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
    }
}

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum AppStatus {
        Active = "active",
        Disabled = "disabled",
    }
}

/// An OAuth client registered by an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub client_id: String,
    pub org_id: String,
    pub name: String,
    pub description: Option<String>,
    pub grant_types: Vec<GrantType>,
    /// The user whose role, permissions and groups a client credentials token carries.
    pub on_behalf_of: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    pub default_audience: Option<String>,
    #[serde(skip)]
    pub secret_hash: String,
    /// Bumped whenever the secret or the on-behalf user changes; tokens carry the
    /// generation they were issued under and end when it moves on.
    pub generation: i64,
    pub status: AppStatus,
    /// Authorization requests must carry a PKCE `code_challenge` (RFC 7636);
    /// on by default for new authorization code apps.
    #[serde(default)]
    pub require_pkce: bool,
    /// Authorization requests must be pushed first (RFC 9126 §5): a plain one
    /// at the authorization endpoint is refused.
    #[serde(default)]
    pub require_par: bool,
    /// Token requests must carry a DPoP proof (RFC 9449): every token the app
    /// gets is bound to its key.
    #[serde(default)]
    pub require_dpop: bool,
    /// The APIs (audiences) a token exchange app may exchange a person's token
    /// for (RFC 8693); empty: none (deny by default).
    #[serde(default)]
    pub exchange_audiences: Vec<String>,
    pub created_at: UnixTime,
    /// When a token was last issued to the app (recorded lazily, to the minute).
    pub last_used_at: Option<UnixTime>,
    /// How the app authenticates: `Some` for `private_key_jwt` (RFC 7523), with
    /// its public keys inline or at a URL; such an app has no secret at all.
    #[serde(default)]
    /// (Boxed: most apps have none, and `App` travels in enums.)
    pub client_keys: Option<Box<ClientKeys>>,
}

/// Where a `private_key_jwt` app's public keys are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKeys {
    /// A JWKS document (JSON text, public keys only), registered inline.
    Jwks(String),
    /// A URL the JWKS is fetched from (checked like redirect URIs, cached).
    JwksUri(String),
}

/// At most this many secrets authenticate an app at once: the current one and,
/// during a rotation with a grace period, the one that replaces it.
pub const MAX_ACTIVE_SECRETS: usize = 2;

/// One of an app's client secrets. Only its SHA-256 digest is kept; the value is
/// shown once when it is made. Tokens name the secret they were issued with
/// (`csid`) and end when it is retired or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSecret {
    pub id: String,
    pub client_id: String,
    #[serde(skip)]
    pub digest: String,
    pub created_at: UnixTime,
    /// The end of its grace period: from then on it no longer authenticates.
    pub expires_at: Option<UnixTime>,
    /// When it was retired (kept until every token issued with it has expired).
    pub retired_at: Option<UnixTime>,
    /// When it last authenticated the app (recorded lazily, like the app's).
    pub last_used_at: Option<UnixTime>,
}

impl AppSecret {
    /// When it stops (or stopped) authenticating: retired or expired, whichever
    /// comes first; `None` while it has no end.
    pub fn ends_at(&self) -> Option<UnixTime> {
        match (self.retired_at, self.expires_at) {
            (Some(r), Some(e)) => Some(r.min(e)),
            (r, e) => r.or(e),
        }
    }

    /// Does it authenticate the app at `now`?
    pub fn active_at(&self, now: UnixTime) -> bool {
        self.ends_at().is_none_or(|end| now < end)
    }
}

impl App {
    pub fn allows(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }

    /// Whether the app authenticates with `private_key_jwt` (and has no secret).
    pub fn uses_private_key_jwt(&self) -> bool {
        self.client_keys.is_some()
    }
}

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum KeyState {
        /// Published in the JWKS ahead of use, so verifiers know it before it signs.
        Next = "next",
        Active = "active",
        /// No longer signs; published until every token it signed has expired.
        Retired = "retired",
        /// Withdrawn at once (compromised): not published, its tokens refused.
        Revoked = "revoked",
    }
}

/// One app's counts for one UTC day (`day` = days since 1970-01-01): tokens
/// issued and failed client authentications. Instances add theirs to the day's
/// row, so the figures of many instances sum up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUsageDay {
    pub client_id: String,
    pub day: i64,
    pub tokens_issued: i64,
    pub failed_auths: i64,
}

/// A signing key as stored: the PKCS#8 private key is sealed with the operator's
/// key-encryption key before it reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub sealed_private_key: String,
    pub created_at: UnixTime,
    /// When it became active (scheduled rotation counts from here).
    pub activated_at: Option<UnixTime>,
    /// When it stopped signing (retired or revoked).
    pub retired_at: Option<UnixTime>,
}

/// An opaque access token as stored: only its SHA-256 digest, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceToken {
    pub digest: String,
    pub client_id: String,
    pub audience: String,
    pub claims: serde_json::Value,
    pub expires_at: UnixTime,
}

wire_enum! {
    /// What changed, for cache invalidation and the revocation feed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ChangeKind {
        App = "app",
        User = "user",
        Api = "api",
        Org = "org",
        /// A grant (authorization) was revoked: its tokens end.
        Grant = "grant",
        /// One access token was revoked (key: its `jti`).
        Token = "token",
        /// A signing key was added or changed state (key: its `kid`).
        Keys = "keys",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub kind: ChangeKind,
    /// The client id, user id, audience or org id that changed.
    pub key: String,
    pub at: UnixTime,
    /// The organization whose APIs may see this change in the revocation feed;
    /// empty for changes every API sees (signing keys).
    pub org_id: String,
}

impl Change {
    /// May an API of `org_id` see this change?
    pub fn visible_to(&self, org_id: &str) -> bool {
        self.org_id.is_empty() || self.org_id == org_id
    }
}

/// A browser login session (OpenID Connect `sid`). The cookie holds `id`; `sid`
/// is the public identifier that goes into ID tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_digest: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
    /// How the person signed in (RFC 8176 values: `pwd`, then `otp`, `mfa`).
    pub amr: Vec<String>,
    /// The browser's `User-Agent` at sign-in, bounded
    /// ([`crate::account::bounded_user_agent`]); shown to the person only.
    pub user_agent: Option<String>,
    /// The client address at sign-in (behind trusted proxies, the client's).
    pub address: Option<String>,
    /// When a request last came with this session (updated every few minutes).
    pub last_seen_at: Option<UnixTime>,
}

/// A person's authenticator app (TOTP, RFC 6238): the secret sealed under the
/// key-encryption key, counted once confirmed, and the last step accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    pub user_id: String,
    pub sealed_secret: String,
    pub created_at: UnixTime,
    pub confirmed_at: Option<UnixTime>,
    pub last_step: i64,
}

/// One authorization a user gave an app: what codes, refresh-token families and
/// access tokens hang from, and what revocation ends as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    /// The API the access tokens are for, if any API scope was granted.
    pub audience: Option<String>,
    /// The app's credential generation when granted.
    pub generation: i64,
    pub sid: Option<String>,
    pub auth_time: UnixTime,
    /// How the person signed in (the session's `amr`; `pwd` for grants without one).
    pub amr: Vec<String>,
    pub created_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// The claims the authorization request asked for by name (OpenID Connect
    /// Core §5.5): what its ID tokens and userinfo answers carry beyond the defaults.
    pub claims: crate::claims::ClaimsRequest,
}

/// An authorization code as stored (its digest), bound to everything the token
/// request must repeat or prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub digest: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: UnixTime,
}

/// A pushed authorization request (RFC 9126) as stored: the digest of its
/// `request_uri` (never the URI), the client that pushed it, and its parameters
/// form-encoded without the client's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    pub digest: String,
    pub client_id: String,
    pub params: String,
    pub expires_at: UnixTime,
}

wire_enum! {
    /// Where a device authorization (RFC 8628) stands: waiting for the person,
    /// approved (a grant was recorded) or denied.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DeviceStatus {
        Pending = "pending",
        Approved = "approved",
        Denied = "denied",
    }
}

/// A device authorization request (RFC 8628 §3.1) as stored: the digests of
/// its device code and of its user code (normalised), never the codes; what
/// it asks for; the person's decision; and the polling state every instance
/// shares (§3.5: the interval and the last poll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_digest: String,
    pub user_digest: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The API the access tokens are for, if any API scope was asked.
    pub audience: Option<String>,
    pub status: DeviceStatus,
    /// The grant recorded when the person approved.
    pub grant_id: Option<String>,
    /// Seconds the device must wait between polls (grows by 5 on `slow_down`).
    pub interval: i64,
    pub last_poll_at: Option<UnixTime>,
    pub expires_at: UnixTime,
    /// When the device redeemed it for tokens (once).
    pub used_at: Option<UnixTime>,
}

/// A refresh token as stored (its digest). Rotation marks it used and makes a
/// successor in the same family (the grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub digest: String,
    pub grant_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
    /// The DPoP key (RFC 7638 thumbprint) the token is bound to, when it was
    /// issued with a proof: refreshing it takes a proof of that key.
    pub dpop_jkt: Option<String>,
}

/// What a user allowed an app, remembered so consent is asked again only when
/// scopes grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub updated_at: UnixTime,
}

/// Built-in scope of Gatehouse's own admin API (`/api/v1`): granted only to apps
/// whose on-behalf user holds [`PERM_APPS_MANAGE`], and only over their own organization.
pub const SCOPE_ADMIN: &str = "gatehouse:admin";

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ActorKind {
        /// A person signed in to the console.
        User = "user",
        /// An app calling the admin API with a `gatehouse:admin` token.
        App = "app",
        /// The operator at the command line (sees every organization).
        Operator = "operator",
    }
}

/// Who asks for an admin change, and from where. Console users and admin-API apps
/// are confined to their organization: anything of another organization is
/// "not found" to them, whatever the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// User id, client id, or the operator's name.
    pub id: String,
    /// What people read in the audit log: an email, an app name, "operator".
    pub name: String,
    /// The organization the actor may act on; `None` only for the operator.
    pub org_id: Option<String>,
    /// Client address (console, admin API) or "cli".
    pub address: String,
}

impl Actor {
    /// The operator at the command line.
    pub fn operator() -> Self {
        Self {
            kind: ActorKind::Operator,
            id: "operator".into(),
            name: "operator (CLI)".into(),
            org_id: None,
            address: "cli".into(),
        }
    }

    /// May this actor see and change records of `org_id`?
    pub fn may_act_on(&self, org_id: &str) -> bool {
        self.org_id.as_deref().is_none_or(|o| o == org_id)
    }
}

/// One admin change, written in the same transaction as the change itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the store (ascending); ignored on insert.
    pub seq: i64,
    pub org_id: String,
    pub at: UnixTime,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub actor_name: String,
    pub address: String,
    /// Dotted verb: `app.register`, `app.rotate_secret`, `user.deactivate`, …
    pub action: String,
    /// What was changed: a client id, user id, audience or org id.
    pub target: String,
    /// One human-readable sentence of what changed (never a secret).
    pub detail: String,
}

impl AuditEvent {
    pub fn new(
        actor: &Actor,
        org_id: &str,
        at: UnixTime,
        action: &str,
        target: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            seq: 0,
            org_id: org_id.to_owned(),
            at,
            actor_kind: actor.kind,
            actor_id: actor.id.clone(),
            actor_name: actor.name.clone(),
            address: actor.address.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire strings are stored in the database and sent in JSON: pinned here.
    #[test]
    fn wire_strings_are_unchanged() {
        fn check<T>(table: &[(T, &str)])
        where
            T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr + Serialize,
            T: for<'de> Deserialize<'de> + std::fmt::Display,
        {
            for (value, wire) in table {
                assert_eq!(value.to_string(), *wire);
                assert_eq!(wire.parse::<T>().ok(), Some(*value));
                let json = serde_json::to_string(value).unwrap();
                assert_eq!(json, format!("\"{wire}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *value);
            }
        }
        use ActorKind as A;
        use ChangeKind as C;
        check(&[
            (UserStatus::Active, "active"),
            (UserStatus::Deactivated, "deactivated"),
        ]);
        check(&[
            (TokenFormat::Jwt, "jwt"),
            (TokenFormat::Reference, "reference"),
        ]);
        check(&[
            (SigningAlg::ES256, "ES256"),
            (SigningAlg::RS256, "RS256"),
            (SigningAlg::EdDSA, "EdDSA"),
        ]);
        check(&[
            (GrantType::ClientCredentials, "client_credentials"),
            (GrantType::AuthorizationCode, "authorization_code"),
            (GrantType::RefreshToken, "refresh_token"),
            (
                GrantType::TokenExchange,
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                GrantType::DeviceCode,
                "urn:ietf:params:oauth:grant-type:device_code",
            ),
        ]);
        check(&[
            (DeviceStatus::Pending, "pending"),
            (DeviceStatus::Approved, "approved"),
            (DeviceStatus::Denied, "denied"),
        ]);
        check(&[
            (AppStatus::Active, "active"),
            (AppStatus::Disabled, "disabled"),
        ]);
        check(&[
            (KeyState::Next, "next"),
            (KeyState::Active, "active"),
            (KeyState::Retired, "retired"),
            (KeyState::Revoked, "revoked"),
        ]);
        check(&[
            (C::App, "app"),
            (C::User, "user"),
            (C::Api, "api"),
            (C::Org, "org"),
            (C::Grant, "grant"),
            (C::Token, "token"),
            (C::Keys, "keys"),
        ]);
        check(&[
            (A::User, "user"),
            (A::App, "app"),
            (A::Operator, "operator"),
        ]);
    }

    #[test]
    fn unknown_wire_strings_are_refused_as_serde_derive_does() {
        assert_eq!(UserStatus::parse("Active"), None);
        let err = serde_json::from_str::<AppStatus>("\"paused\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown variant `paused`, expected `active` or `disabled` at line 1 column 8"
        );
        assert!("x".parse::<KeyState>().is_err());
    }
}
