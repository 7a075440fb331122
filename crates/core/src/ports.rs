//! The narrow storage traits the domain depends on, and the error every backend
//! reports in. Backends (SQLite, PostgreSQL) implement all of them; the
//! conformance suite in `gatehouse-store-conformance` holds them to one contract. Every
//! mutation that can end tokens or stale a cache also appends a [`Change`] in the
//! same transaction, so caches and the revocation feed never miss one.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::context::ActingUser;
use crate::model::{
    Api, App, AppSecret, AppStatus, AppUsageDay, AuditEvent, AuthCode, Change, Consent,
    DeviceAuthorization, Grant, KeyState, Org, Profile, PushedRequest, ReferenceToken,
    RefreshToken, Role, Session, StoredKey, TotpFactor, User, UserStatus,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the string names what clashed.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database cannot answer now (down, locked, pool exhausted); retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Inserts the org together with its roles, atomically.
    async fn insert_org(&self, org: &Org, roles: &[Role], audit: &AuditEvent) -> StoreResult<()>;
    async fn org_by_id(&self, id: &str) -> StoreResult<Org>;
    async fn org_by_slug(&self, slug: &str) -> StoreResult<Org>;
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    async fn role(&self, org_id: &str, name: &str) -> StoreResult<Role>;
    async fn list_roles(&self, org_id: &str) -> StoreResult<Vec<Role>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Conflict when the email is taken in the user's organization (emails are
    /// unique per organization; stored lower-case).
    async fn insert_user(&self, user: &User, audit: &AuditEvent) -> StoreResult<()>;
    async fn user_by_id(&self, id: &str) -> StoreResult<User>;
    /// The user with this email in organization `org_id`.
    async fn user_by_email(&self, org_id: &str, email: &str) -> StoreResult<User>;
    /// The users with this email in any organization, oldest first (a stable
    /// order), at most `limit`.
    async fn users_by_email(&self, email: &str, limit: u32) -> StoreResult<Vec<User>>;
    async fn list_users(&self, org_id: &str) -> StoreResult<Vec<User>>;
    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Replaces the user's name and profile claims (`profile.updated_at`
    /// included, as given). NotFound when the user is unknown.
    async fn set_user_profile(
        &self,
        id: &str,
        name: Option<&str>,
        profile: &Profile,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Replaces the user's role and groups (what their tokens carry from now on).
    async fn set_user_access(
        &self,
        id: &str,
        role: &str,
        groups: &[String],
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait ApiStore: Send + Sync {
    /// Conflict when the audience or the client id is taken.
    async fn insert_api(&self, api: &Api, audit: &AuditEvent) -> StoreResult<()>;
    async fn api_by_audience(&self, audience: &str) -> StoreResult<Api>;
    async fn api_by_client_id(&self, client_id: &str) -> StoreResult<Api>;
    async fn apis_for_org(&self, org_id: &str) -> StoreResult<Vec<Api>>;
}

#[async_trait]
pub trait AppStore: Send + Sync {
    async fn insert_app(&self, app: &App, audit: &AuditEvent) -> StoreResult<()>;
    /// Inserts a new user and the app acting on their behalf, with both audit
    /// events, in one transaction: both land or neither (Conflict when the
    /// email is taken).
    async fn insert_app_with_user(
        &self,
        user: &User,
        user_audit: &AuditEvent,
        app: &App,
        app_audit: &AuditEvent,
    ) -> StoreResult<()>;
    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<App>;
    async fn apps_for_org(&self, org_id: &str) -> StoreResult<Vec<App>>;
    /// Replaces every secret of the app with this one (a new id) and bumps the
    /// generation; returns the new generation.
    async fn rotate_app_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<i64>;
    /// Changes the on-behalf user and bumps the generation; returns the new generation.
    async fn set_app_on_behalf_of(
        &self,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<i64>;
    /// Deletes the app with its tokens, codes and grants (all its tokens end).
    async fn delete_app(
        &self,
        client_id: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Replaces the editable details: name, description, redirect and post-logout
    /// URIs, scopes, default scopes, default audience, whether PKCE or PAR is
    /// required, the token exchange audiences (matched by `app.client_id`;
    /// every other field is left alone).
    async fn update_app(&self, app: &App, now: UnixTime, audit: &AuditEvent) -> StoreResult<()>;
    /// Disables or enables the app and bumps its generation, so tokens issued before
    /// the change stay ended after re-enabling; returns the new generation.
    async fn set_app_status(
        &self,
        client_id: &str,
        status: AppStatus,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<i64>;
    /// The app's secrets (active, expired and retired ones not yet purged), oldest
    /// first.
    async fn app_secrets(&self, client_id: &str) -> StoreResult<Vec<AppSecret>>;
    /// Adds a secret beside the active ones and, with `others_expire_at`, ends
    /// the other active secrets then (unless they end sooner). `Conflict` when
    /// the app already has [`MAX_ACTIVE_SECRETS`](crate::model::MAX_ACTIVE_SECRETS)
    /// active at `now`; `NotFound` without the app. Tokens issued so far stay.
    async fn add_app_secret(
        &self,
        secret: &AppSecret,
        others_expire_at: Option<UnixTime>,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Retires an active secret at `now`: it stops authenticating and the tokens
    /// issued with it end. `NotFound` when the app has no such active secret;
    /// `Conflict` when it is the app's last active one.
    async fn retire_app_secret(
        &self,
        client_id: &str,
        secret_id: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Records when secrets (by id) last authenticated their app (batched, like
    /// [`AppStore::record_app_use`]).
    async fn record_secret_use(&self, uses: &[(String, UnixTime)]) -> StoreResult<()>;
    /// Forgets secrets that ended before `before` (every token issued with them
    /// has expired); returns how many.
    async fn purge_ended_secrets(&self, before: UnixTime) -> StoreResult<u64>;
    /// Records when apps were last used (batched from memory; no change row,
    /// no audit: nothing ends).
    async fn record_app_use(&self, uses: &[(String, UnixTime)]) -> StoreResult<()>;
    /// Adds these counts to each app's day (creating the day's row): counts of
    /// apps that no longer exist are dropped. No change row, no audit.
    async fn add_app_usage(&self, counts: &[AppUsageDay]) -> StoreResult<()>;
    /// The organization's apps' days from `since_day` on, by client id then day
    /// (days without any use have no row).
    async fn app_usage(&self, org_id: &str, since_day: i64) -> StoreResult<Vec<AppUsageDay>>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_reference_token(&self, token: &ReferenceToken) -> StoreResult<()>;
    async fn reference_token(&self, digest: &str) -> StoreResult<ReferenceToken>;
    /// Deletes tokens that expired before `now`; returns how many.
    async fn purge_expired_tokens(&self, now: UnixTime) -> StoreResult<u64>;
    /// Records the `jti` of a client assertion (RFC 7523 §3 item 7) of
    /// `client_id` until `expires_at`, atomically for every instance: `true` the
    /// first time, `false` while a record of it has not expired at `now` (a
    /// replay). Purged with the expired tokens.
    async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Inserts a key and records a `Keys` change, so every instance reloads.
    /// Conflict when the kid is taken, or when the algorithm already has a
    /// `Next` key (of instances preparing a rotation at once, one wins).
    async fn insert_key(&self, key: &StoredKey) -> StoreResult<()>;
    async fn list_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Changes a key's state (stamping `activated_at`/`retired_at` the first
    /// time) and records a `Keys` change.
    async fn set_key_state(&self, kid: &str, state: KeyState, now: UnixTime) -> StoreResult<()>;
    /// Makes the `Next` key `kid` active and retires the other active keys of its
    /// algorithm, with the change and the audit event, in one transaction.
    /// `false` when `kid` is not (or no longer) `Next`: of concurrent callers
    /// exactly one gets `true`.
    async fn promote_next_key(
        &self,
        kid: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Withdraws a key at once (state `Revoked`), with the change and the audit event.
    async fn revoke_key(&self, kid: &str, now: UnixTime, audit: &AuditEvent) -> StoreResult<()>;
}

#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Changes with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>>;
    /// The newest sequence number (0 when empty).
    async fn latest_change(&self) -> StoreResult<i64>;
    /// A cheap, local signal that the database may have been written since the
    /// value was last seen: a different value means "read the feed". It moves
    /// at least on every change this process commits (SQLite: also on any
    /// other process's commit). `None` when the backend has no such signal;
    /// readers then rely on polling.
    fn change_hint(&self) -> Option<u64> {
        None
    }
    /// Resolves when a change is signalled (another writer's PostgreSQL
    /// `NOTIFY`, or a change this process committed), so readers of the feed
    /// wake at once instead of at their next poll. Backends without
    /// notifications never resolve.
    async fn change_notified(&self) {
        std::future::pending::<()>().await
    }
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, s: &Session) -> StoreResult<()>;
    /// A live session (not ended, not expired at `now`).
    async fn session(&self, id_digest: &str, now: UnixTime) -> StoreResult<Session>;
    /// Ends the session and, in the same transaction the first time, enqueues a
    /// back-channel logout for every app it signed into that registered a URI.
    async fn end_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<()>;
    /// Records that the live session was seen at `now` (callers write only
    /// when the stored time is stale, not on every request).
    async fn touch_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<()>;
    /// The session's lifetime ran out (its cookie came back after
    /// `expires_at`): deletes it and, if it had not ended before, enqueues a
    /// back-channel logout for every app it signed into, once, in one
    /// transaction. Returns how many logouts were enqueued; 0 for an unknown,
    /// ended or still-live session (the read that decides writes nothing).
    async fn expire_session(&self, id_digest: &str, now: UnixTime) -> StoreResult<u64>;
    /// The periodic sweep: deletes up to `limit` sessions expired at `now`,
    /// enqueuing the logouts of those never ended, and every ended one whose
    /// lifetime is over. Returns (sessions swept, logouts enqueued). Safe with
    /// several instances: a session's row is deleted by one statement, and
    /// only the transaction that deleted it enqueues its logouts.
    async fn sweep_expired_sessions(&self, now: UnixTime, limit: u32) -> StoreResult<(u64, u64)>;
}

/// Second factors (TOTP and recovery codes) and the organization's policy.
/// Every accept is one conditional write, so of two instances checking the same
/// code at once exactly one accepts it.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// The person's authenticator (confirmed or not); NotFound without one.
    async fn totp_factor(&self, user_id: &str) -> StoreResult<TotpFactor>;
    /// Keeps a new, unconfirmed secret (replacing an unconfirmed one); Conflict
    /// when a confirmed one exists.
    async fn begin_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Confirms the unconfirmed secret with the step of a code just checked and
    /// replaces the recovery codes, with `audit`, atomically; NotFound when there
    /// is nothing unconfirmed.
    async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_digests: &[String],
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Accepts `step` when it is later than the last accepted one (of a
    /// confirmed factor): `false` for a replay.
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;
    /// Marks the unused recovery code `digest` used: `false` when there is none.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        digest: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Recovery codes not yet used.
    async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<u32>;
    /// Removes the authenticator and the recovery codes, with `audit`;
    /// NotFound when there was none.
    async fn remove_totp(&self, user_id: &str, audit: &AuditEvent) -> StoreResult<()>;
    /// Whether the organization requires a second factor of everyone.
    async fn org_requires_mfa(&self, org_id: &str) -> StoreResult<bool>;
    async fn set_org_requires_mfa(
        &self,
        org_id: &str,
        required: bool,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
}

/// Pushed authorization requests (RFC 9126), shared by every instance on one
/// database: pushed to one, claimed at another.
#[async_trait]
pub trait PushedRequestStore: Send + Sync {
    async fn insert_pushed_request(&self, r: &PushedRequest) -> StoreResult<()>;
    /// Marks the request used and returns it, atomically: of concurrent callers
    /// exactly one gets it. NotFound (and nothing changes) when it is unknown,
    /// pushed by another client, expired at `now` or used before.
    async fn claim_pushed_request(
        &self,
        digest: &str,
        client_id: &str,
        now: UnixTime,
    ) -> StoreResult<PushedRequest>;
    /// Whether `client_id` pushed the request `digest` and it was claimed
    /// already (a second claim is a replay, not a stale link).
    async fn pushed_request_claimed(&self, digest: &str, client_id: &str) -> StoreResult<bool>;
}

/// Device authorizations (RFC 8628), shared by every instance on one database:
/// started at one, approved at another, polled at any.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new device authorization. Conflict when its user code is the
    /// code of another live one (an expired one with that code is forgotten
    /// first), so the caller can draw another.
    async fn insert_device_authorization(
        &self,
        d: &DeviceAuthorization,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// The pending authorization with this user code, live at `now`. NotFound
    /// when unknown, expired, decided or used.
    async fn pending_device_authorization(
        &self,
        user_digest: &str,
        now: UnixTime,
    ) -> StoreResult<DeviceAuthorization>;
    /// Records the person's approval: stores `grant` and marks the pending
    /// authorization `user_digest` approved with it, in one transaction. Of
    /// concurrent decisions exactly one lands; NotFound (nothing stored) when it
    /// is no longer pending and live at `now`.
    async fn approve_device_authorization(
        &self,
        user_digest: &str,
        grant: &Grant,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Marks the pending authorization `user_digest` denied. NotFound as above.
    async fn deny_device_authorization(&self, user_digest: &str, now: UnixTime) -> StoreResult<()>;
    /// Records a poll of `client_id` at `now`, atomically (whichever instance
    /// answers): when the previous poll was less than the interval ago, the
    /// interval grows by [`SLOW_DOWN_STEP`] seconds (RFC 8628 §3.5). Returns the
    /// record after the poll and whether it was too fast. NotFound when the
    /// device code is unknown or another client's.
    async fn poll_device_authorization(
        &self,
        device_digest: &str,
        client_id: &str,
        now: UnixTime,
    ) -> StoreResult<(DeviceAuthorization, bool)>;
    /// Marks the approved authorization used and returns it: of concurrent
    /// callers exactly one gets it. NotFound (nothing changes) when it is
    /// unknown, another client's, not approved, expired at `now` or used.
    /// The winner's tokens (its first refresh token, the access token's
    /// record) are stored in the same transaction: a device told
    /// `invalid_grant` got nothing stored, and one given tokens can use them.
    async fn claim_device_authorization(
        &self,
        device_digest: &str,
        client_id: &str,
        refresh: Option<&RefreshToken>,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<DeviceAuthorization>;
}

/// RFC 8628 §3.5: how many seconds a `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;

/// How redeeming a code or rotating a refresh token went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// First use: here is the record.
    Fresh(T),
    /// Used before: the grant it belongs to (to be revoked: RFC 9700 §4.14.2).
    Replayed { grant_id: String },
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn insert_grant(&self, g: &Grant) -> StoreResult<()>;
    async fn grant(&self, id: &str) -> StoreResult<Grant>;
    /// Revokes the grant (its refresh-token family and access tokens with it) and
    /// records the change; revoking twice is not an error.
    async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()>;

    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()>;
    /// Marks an unused code used without issuing anything (a failed exchange
    /// burns its code: a code is good for one attempt); whatever its grant's
    /// state. Unknown or used codes: nothing changes.
    async fn burn_code(&self, digest: &str, now: UnixTime) -> StoreResult<()>;

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()>;
    async fn refresh_token(&self, digest: &str) -> StoreResult<RefreshToken>;
    /// Marks `digest` used and stores `next` in one transaction; of concurrent
    /// rotations exactly one gets `Fresh` (with the old record).
    async fn rotate_refresh_token(
        &self,
        digest: &str,
        next: &RefreshToken,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>>;

    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Consent>;
    async fn save_consent(&self, c: &Consent) -> StoreResult<()>;

    /// Revokes one access token by `jti` (kept until it would have expired anyway)
    /// and records the change for the APIs of `org_id` (the token's `org`).
    async fn revoke_access_token(
        &self,
        jti: &str,
        org_id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<()>;
    async fn is_access_token_revoked(&self, jti: &str) -> StoreResult<bool>;
}

/// What the code and refresh grants read and write, sized to them: a backend
/// answers each method in one round trip where it can (one joined read, one
/// write transaction). The provided bodies compose the finer ports above, so a
/// backend is correct before it is fast.
#[async_trait]
pub trait GrantFlowStore: GrantStore + UserStore + OrgStore + TokenStore {
    /// The grant `grant_id` with its user and the permissions of the user's role
    /// (`user` is `None` when the user no longer exists; permissions are empty
    /// when the role is gone). NotFound when the grant is unknown.
    async fn grant_context(&self, grant_id: &str) -> StoreResult<GrantContext> {
        let grant = self.grant(grant_id).await?;
        let user = match self.user_by_id(&grant.user_id).await {
            Ok(user) => {
                let permissions = match self.role(&user.org_id, &user.role).await {
                    Ok(r) => r.permissions,
                    Err(StoreError::NotFound) => Vec::new(),
                    Err(e) => return Err(e),
                };
                Some(ActingUser { user, permissions })
            }
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        Ok(GrantContext { grant, user })
    }

    /// The refresh token `digest` (used or not) with its grant context, in one
    /// read. NotFound when the token is unknown.
    async fn refresh_context(&self, digest: &str) -> StoreResult<RefreshContext> {
        let token = self.refresh_token(digest).await?;
        let grant = self.grant_context(&token.grant_id).await?;
        Ok(RefreshContext { token, grant })
    }

    /// [`GrantStore::rotate_refresh_token`], storing the access token's record
    /// (`reference`, for reference-token APIs) in the same write: all or nothing.
    async fn rotate_refresh_token_issuing(
        &self,
        digest: &str,
        next: &RefreshToken,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        let rotated = self.rotate_refresh_token(digest, next, now).await?;
        if let (Redeemed::Fresh(_), Some(r)) = (&rotated, reference) {
            self.insert_reference_token(r).await?;
        }
        Ok(rotated)
    }

    /// The code `digest` with its grant context, read without claiming it:
    /// the exchange's one read. `Replayed` when it was used before (or burnt
    /// by a failed attempt); NotFound when it (or its grant) is unknown.
    async fn code_context(&self, digest: &str) -> StoreResult<Redeemed<CodeContext>>;

    /// The exchange's one write, all or nothing: claims the code (only if it
    /// is unused and its grant stands; of concurrent callers exactly one
    /// succeeds) and stores what its redemption issued: its first refresh
    /// token and the access token's record (neither, for a JWT access token
    /// without a refresh token). False: nothing was written (redeemed
    /// meanwhile, or its grant ended).
    async fn claim_code_issuing(
        &self,
        digest: &str,
        refresh: Option<&RefreshToken>,
        reference: Option<&ReferenceToken>,
        now: UnixTime,
    ) -> StoreResult<bool>;
}

/// A grant with the person it is for (see [`GrantFlowStore::grant_context`]).
#[derive(Debug, Clone)]
pub struct GrantContext {
    pub grant: Grant,
    pub user: Option<ActingUser>,
}

/// A code with its grant context (see [`GrantFlowStore::code_context`]).
#[derive(Debug, Clone)]
pub struct CodeContext {
    pub code: AuthCode,
    pub grant: GrantContext,
}

/// A refresh token with its grant context (see [`GrantFlowStore::refresh_context`]).
#[derive(Debug, Clone)]
pub struct RefreshContext {
    pub token: RefreshToken,
    pub grant: GrantContext,
}

/// The audit log: written by the mutating methods above in their own
/// transactions, read here, newest first. Security events that are not part of
/// an admin change (sign-ins, failed sign-ins, a replayed code, a reused refresh
/// token) are written on their own.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one standalone security event (the store assigns `seq`).
    async fn record_security_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Events of `org_id` with `seq < before` (all when `None`), newest first, at most `limit`.
    async fn audit_events(
        &self,
        org_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
}

/// Leaky buckets of failed authentications, shared by every instance on one
/// database so that guessing is slowed no matter which instance answers. A bucket
/// gains one per failure and drains `rate` per second; times are unix seconds with
/// fractions.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Adds one failure to `key`; returns the level before adding (drained to `now`).
    async fn add_failure(&self, key: &str, rate: f64, now: f64) -> StoreResult<f64>;
    /// The level of `key` drained to `now` (0 when unknown).
    async fn failure_level(&self, key: &str, rate: f64, now: f64) -> StoreResult<f64>;
}

/// Everything a backend provides.
pub trait Store:
    ThrottleStore
    + AuditStore
    + OrgStore
    + UserStore
    + ApiStore
    + AppStore
    + TokenStore
    + KeyStore
    + ChangeFeed
    + SessionStore
    + SecondFactorStore
    + PushedRequestStore
    + DeviceStore
    + GrantStore
    + GrantFlowStore
    + crate::backchannel::BackchannelStore
    + crate::account::AccountStore
    + crate::mfa_policy::RoleMfaStore
    + crate::passkey::PasskeyStore
    + crate::mail_link::MailLinkStore
    + crate::upstream::UpstreamStore
{
}

impl<T> Store for T where
    T: ThrottleStore
        + AuditStore
        + OrgStore
        + UserStore
        + ApiStore
        + AppStore
        + TokenStore
        + KeyStore
        + ChangeFeed
        + SessionStore
        + SecondFactorStore
        + PushedRequestStore
        + DeviceStore
        + GrantStore
        + GrantFlowStore
        + crate::backchannel::BackchannelStore
        + crate::account::AccountStore
        + crate::mfa_policy::RoleMfaStore
        + crate::passkey::PasskeyStore
        + crate::mail_link::MailLinkStore
        + crate::upstream::UpstreamStore
{
}
