//! The device authorization grant (RFC 8628), whole: the device's request for
//! codes (§3.1–3.2), the person's approval or denial at `/device` (§3.3), and
//! the device's polling of the token endpoint (§3.4–3.5).
//!
//! Only digests of the codes are stored: the device code's, and the user
//! code's in its normalised form (upper case, no dashes or spaces), so the
//! lookups are exact. Approval records a [`Grant`] as the code flow's consent
//! does, so revoking it ends every token the device got. The device code is
//! redeemed once, by a claim-once update in the store. The poll interval and
//! the last poll are kept in the store, so `slow_down` holds whichever instance
//! answers. Nothing here knows about HTTP, pages or throttling of people.

use crate::clock::UnixTime;
use crate::context::{ActingUser, ClientContext};
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::grant::issuer::{Issuer, TokenError, TokenSet};
use crate::grant::refresh_token::user_may_authorize;
use crate::grant::scopes::resolve;
use crate::grant::user_tokens::{mint_user_tokens, new_refresh_token};
use crate::model::{
    Actor, App, AuditEvent, DeviceAuthorization, DeviceStatus, Grant, GrantType, Session,
};
use crate::ports::{AuditStore, DeviceStore, GrantFlowStore, StoreError, StoreResult};
use crate::request::DeviceCodeRequest;
use crate::scope::ScopeSet;
use crate::secret;

/// How long the codes live (RFC 8628 §3.2 `expires_in`).
pub const DEFAULT_TTL: UnixTime = 600;
/// The seconds a device waits between polls at first (§3.2 `interval`).
pub const DEFAULT_INTERVAL: i64 = 5;
/// §6.1: no vowels (no words), nothing that reads as another character.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 20^8 ≈ 2^34.6 codes (§6.1 asks for enough entropy with throttled entry).
pub const USER_CODE_LEN: usize = 8;
/// Ours are 43 characters; anything longer is refused unread.
pub const MAX_DEVICE_CODE: usize = 128;
/// Attempts at drawing a user code no live authorization has.
const DRAWS: usize = 8;

/// The device authorization request (§3.1), parsed before the client is
/// authenticated: nothing is checked against the app here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorizationRequest {
    pub scope: Option<ScopeSet>,
    /// The API asked for, by `audience` or `resource`.
    pub target: Option<String>,
}

impl DeviceAuthorizationRequest {
    pub fn parse(form: &Form) -> Result<Self, OAuthError> {
        let scope = form.get("scope").map(ScopeSet::parse).transpose()?;
        let target = match (form.get("audience"), form.get_all("resource")) {
            (Some(a), _) => Some(a.to_owned()),
            (None, [r]) => Some(r.clone()),
            (None, []) => None,
            (None, _) => {
                return Err(OAuthError::invalid_target(
                    "only one `resource` is supported: a token has one audience",
                ));
            }
        };
        Ok(Self { scope, target })
    }
}

/// What the device is told (§3.2), besides the URIs the server composes.
#[derive(Debug)]
pub struct DeviceStarted {
    pub device_code: String,
    /// Shown as `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
    pub scope: ScopeSet,
}

/// Checks `req` for `client` as the authorization endpoint checks scopes, and
/// stores a new device authorization; returns its codes.
pub async fn start<S: DeviceStore + ?Sized>(
    store: &S,
    req: &DeviceAuthorizationRequest,
    client: &ClientContext,
    now: UnixTime,
) -> Result<DeviceStarted, TokenError> {
    let app = &client.app;
    if !app.allows(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this app is not allowed the device authorization grant",
        )
        .into());
    }
    let (scope, audience) = granted_scope(client, req)?;
    let device_code = secret::random_token();
    for _ in 0..DRAWS {
        let user_code = new_user_code();
        let record = DeviceAuthorization {
            device_digest: secret::digest(&device_code),
            user_digest: user_digest(&user_code),
            client_id: app.client_id.clone(),
            scopes: scope.to_vec(),
            audience: audience.clone(),
            status: DeviceStatus::Pending,
            grant_id: None,
            interval: DEFAULT_INTERVAL,
            last_poll_at: None,
            expires_at: now + DEFAULT_TTL,
            used_at: None,
        };
        match store.insert_device_authorization(&record, now).await {
            Ok(()) => {
                return Ok(DeviceStarted {
                    device_code,
                    user_code: display(&user_code),
                    expires_in: DEFAULT_TTL,
                    interval: DEFAULT_INTERVAL,
                    scope,
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Internal("no free user code after several draws".into()).into())
}

/// The scopes as the authorization endpoint grants them: the app's defaults
/// when none are asked; `offline_access` only for an app that may refresh.
fn granted_scope(
    client: &ClientContext,
    req: &DeviceAuthorizationRequest,
) -> Result<(ScopeSet, Option<String>), OAuthError> {
    let app = &client.app;
    let requested = match &req.scope {
        Some(s) => s.clone(),
        None => ScopeSet::from(app.default_scopes.as_slice()),
    };
    let resolved = resolve(client, &requested, req.target.as_deref())?;
    let may_refresh = app.allows(GrantType::RefreshToken);
    let oidc = resolved
        .oidc_scopes
        .filter(|s| may_refresh || s != "offline_access");
    let scope = resolved.api_scopes.clone().union(&oidc);
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(
            "no scope was requested and this app has no default scopes",
        ));
    }
    Ok((scope, resolved.api.map(|a| a.audience.clone())))
}

/// A new user code, normalised (8 characters of [`USER_CODE_ALPHABET`]),
/// drawn uniformly (bytes past the largest multiple of 20 are drawn again).
pub fn new_user_code() -> String {
    let n = USER_CODE_ALPHABET.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        let mut buf = [0u8; 16];
        secret::fill(&mut buf);
        for b in buf {
            if (b as usize) < limit && out.len() < USER_CODE_LEN {
                out.push(USER_CODE_ALPHABET[b as usize % n] as char);
            }
        }
    }
    out
}

/// A code as typed (any case, with dashes or spaces) in its normalised form;
/// `None` when it cannot be one of ours.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ours = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    ours.then_some(code)
}

/// A normalised code as people read it: `BCDF-GHJK`.
pub fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

/// What the store keeps of a normalised user code.
pub fn user_digest(code: &str) -> String {
    secret::digest(code)
}

/// The person's decision on a device authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Records the decision of the person signed in with `session` (who may
/// authorize `app`: checked by the caller with
/// [`crate::authorize::next_step::may_consent`]) on the pending authorization,
/// with its audit event. NotFound when it was decided or expired meanwhile.
pub async fn decide<S: DeviceStore + AuditStore + ?Sized>(
    store: &S,
    pending: &DeviceAuthorization,
    app: &App,
    session: &Session,
    actor: &Actor,
    decision: Decision,
    now: UnixTime,
) -> StoreResult<()> {
    let (action, detail) = match decision {
        Decision::Allow => {
            let grant = Grant {
                id: secret::random_id(),
                client_id: app.client_id.clone(),
                user_id: session.user_id.clone(),
                scopes: pending.scopes.clone(),
                audience: pending.audience.clone(),
                generation: app.generation,
                sid: Some(session.sid.clone()),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
                created_at: now,
                revoked_at: None,
                claims: Default::default(),
            };
            store
                .approve_device_authorization(&pending.user_digest, &grant, now)
                .await?;
            ("device.approved", "approved a device sign-in for app")
        }
        Decision::Deny => {
            store
                .deny_device_authorization(&pending.user_digest, now)
                .await?;
            ("device.denied", "denied a device sign-in for app")
        }
    };
    let event = AuditEvent::new(
        actor,
        &app.org_id,
        now,
        action,
        &app.client_id,
        format!(
            "{detail} `{}` (scopes: {})",
            app.name,
            pending.scopes.join(" ")
        ),
    );
    store.record_security_event(&event).await
}

/// The store ports the device's polling touches.
pub trait DeviceGrantStore: DeviceStore + GrantFlowStore + AuditStore {}
impl<T: DeviceStore + GrantFlowStore + AuditStore + ?Sized> DeviceGrantStore for T {}

/// The device polls the token endpoint (§3.4): tokens once the person
/// approved, or the §3.5 error that says what to do.
pub async fn handle<S: DeviceGrantStore + ?Sized>(
    req: &DeviceCodeRequest,
    client: &ClientContext,
    issuer: &Issuer<'_, S>,
) -> Result<TokenSet, TokenError> {
    let (store, now) = (issuer.store, issuer.now);
    let app = &client.app;
    if !app.allows(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this app is not allowed the device authorization grant",
        )
        .into());
    }
    let digest = secret::digest(&req.device_code);
    let (record, too_fast) = match store
        .poll_device_authorization(&digest, &app.client_id, now)
        .await
    {
        Ok(polled) => polled,
        Err(StoreError::NotFound) => return Err(unknown().into()),
        Err(e) => return Err(e.into()),
    };
    let grant_id = poll_answer(&record, too_fast, now)?;
    let context = store.grant_context(grant_id).await?;
    let grant = &context.grant;
    check_grant(grant, app)?;
    let acting = may_authorize(context.user)?;
    let minted = mint_user_tokens(
        client,
        grant,
        &acting,
        ScopeSet::from(grant.scopes.as_slice()),
        None,
        issuer,
    )?;
    let mut set = minted.set;
    // The code flow's rule: a refresh token only with `offline_access`.
    let refresh = set
        .scope
        .contains("offline_access")
        .then(|| new_refresh_token(grant, &set.scope, issuer));
    // One write: the redemption and what the tokens need stored. A concurrent
    // poll that lost the claim drops its minted tokens unseen.
    match store
        .claim_device_authorization(
            &digest,
            &app.client_id,
            refresh.as_ref().map(|(_, record)| record),
            minted.reference.as_ref(),
            now,
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(used().into()),
        Err(e) => return Err(e.into()),
    }
    set.refresh_token = refresh.map(|(secret, _)| secret);
    Ok(set)
}

/// §3.5: what a poll of `record` (after this poll was recorded) answers, or
/// the grant to issue tokens of when the person approved.
pub fn poll_answer(
    record: &DeviceAuthorization,
    too_fast: bool,
    now: UnixTime,
) -> Result<&str, OAuthError> {
    if record.used_at.is_some() {
        return Err(used());
    }
    if record.expires_at <= now {
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired; start a new device authorization",
        ));
    }
    match (record.status, record.grant_id.as_deref()) {
        (DeviceStatus::Denied, _) => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the person denied the authorization",
        )),
        (DeviceStatus::Pending, _) if too_fast => Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!(
                "polling too fast: wait at least {} seconds between requests",
                record.interval
            ),
        )),
        (DeviceStatus::Pending, _) => Err(OAuthError::new(
            ErrorCode::AuthorizationPending,
            "the person has not approved the authorization yet",
        )),
        (DeviceStatus::Approved, Some(grant_id)) => Ok(grant_id),
        (DeviceStatus::Approved, None) => Err(unknown()),
    }
}

fn unknown() -> OAuthError {
    OAuthError::invalid_grant("unknown device code")
}

fn used() -> OAuthError {
    OAuthError::invalid_grant("the device code was already used")
}

/// The grant is live and was given under the app's current credentials.
fn check_grant(grant: &Grant, app: &App) -> Result<(), OAuthError> {
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the authorization was revoked"));
    }
    if grant.generation != app.generation {
        return Err(OAuthError::invalid_grant(
            "the app's credentials changed since this authorization",
        ));
    }
    Ok(())
}

fn may_authorize(user: Option<ActingUser>) -> Result<ActingUser, OAuthError> {
    let Some(acting) = user else {
        return Err(OAuthError::invalid_grant("the user no longer exists"));
    };
    user_may_authorize(Some(&acting))?;
    Ok(acting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: DeviceStatus) -> DeviceAuthorization {
        DeviceAuthorization {
            device_digest: "d".into(),
            user_digest: "u".into(),
            client_id: "c".into(),
            scopes: vec!["openid".into()],
            audience: None,
            status,
            grant_id: (status == DeviceStatus::Approved).then(|| "g".to_owned()),
            interval: 5,
            last_poll_at: Some(100),
            expires_at: 700,
            used_at: None,
        }
    }

    #[test]
    fn user_codes_are_eight_unambiguous_characters_shown_in_two_halves() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{c}");
            let shown = display(&c);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize_user_code(&shown).as_deref(), Some(c.as_str()));
        }
        assert!((USER_CODE_ALPHABET.len() as f64).powi(8).log2() >= 34.0);
    }

    #[test]
    fn typed_codes_are_normalised_and_foreign_ones_refused() {
        assert_eq!(
            normalize_user_code(" bcdf-ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("BCDF GHJK").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ0",
            &"B".repeat(100),
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn polls_answer_per_rfc_8628_section_3_5() {
        let code = |r: &DeviceAuthorization, fast, now| poll_answer(r, fast, now).unwrap_err().code;
        let pending = record(DeviceStatus::Pending);
        assert_eq!(code(&pending, false, 200), ErrorCode::AuthorizationPending);
        assert_eq!(code(&pending, true, 200), ErrorCode::SlowDown);
        assert_eq!(code(&pending, false, 700), ErrorCode::ExpiredToken);
        assert_eq!(
            code(&record(DeviceStatus::Denied), false, 200),
            ErrorCode::AccessDenied
        );
        let approved = record(DeviceStatus::Approved);
        assert_eq!(poll_answer(&approved, true, 200), Ok("g"));
        let used = DeviceAuthorization {
            used_at: Some(150),
            ..approved
        };
        assert_eq!(code(&used, false, 200), ErrorCode::InvalidGrant);
    }
}
