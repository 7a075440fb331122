//! The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): every
//! use makes a successor; the used one is dead, and using it again revokes the
//! whole family (the grant). A family lives at most `family_max_age` from the
//! authorization, however often it is rotated, and each refresh grants only what
//! the app and the API still allow (never more than was granted: §6).
//!
//! A refresh is one read ([`GrantFlowStore::refresh_context`]) and one write
//! ([`GrantFlowStore::rotate_refresh_token_issuing`]): the tokens are minted
//! before the write so that the rotation and the access token's record land
//! together, or not at all.

use crate::clock::UnixTime;
use crate::context::{ActingUser, ClientContext};
use crate::error::OAuthError;
use crate::grant::issuer::{Issuer, TokenError, TokenSet};
use crate::grant::scopes::OIDC_SCOPES;
use crate::grant::user_tokens::{mint_user_tokens, new_refresh_token, security_event};
use crate::model::{Api, App, Grant, GrantType, PERM_DEVELOPER_API, RefreshToken};
use crate::ports::{
    AuditStore, GrantContext, GrantFlowStore, Redeemed, RefreshContext, StoreError,
};
use crate::request::RefreshTokenRequest;
use crate::scope::ScopeSet;
use crate::secret;

/// Refresh tokens live 30 days unless configured otherwise.
pub const DEFAULT_TTL: i64 = 30 * 24 * 3600;
/// A refresh-token family ends this long after the authorization, unless configured otherwise.
pub const DEFAULT_FAMILY_MAX_AGE: i64 = 90 * 24 * 3600;

/// The store ports this grant touches.
pub trait RefreshGrantStore: GrantFlowStore + AuditStore {}
impl<T: GrantFlowStore + AuditStore + ?Sized> RefreshGrantStore for T {}

/// Refreshes: checks the presented token, rotates it, mints the new tokens.
pub async fn handle<S: RefreshGrantStore + ?Sized>(
    req: &RefreshTokenRequest,
    client: &ClientContext,
    issuer: &Issuer<'_, S>,
) -> Result<TokenSet, TokenError> {
    let (store, now) = (issuer.store, issuer.now);
    let digest = secret::digest(&req.refresh_token);
    let RefreshContext {
        token: rt,
        grant: GrantContext { grant, user },
    } = match store.refresh_context(&digest).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_grant("unknown refresh token").into());
        }
        Err(e) => return Err(e.into()),
    };
    if rt.used_at.is_some() && rt.client_id == client.app.client_id {
        return Err(reused(store, client, &rt.grant_id, now).await);
    }
    // RFC 9449 §5: a bound refresh token is refreshed only with a proof of its key.
    if let Some(bound) = &rt.dpop_jkt
        && issuer.dpop_jkt != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_grant(
            "the refresh token is bound to a DPoP key: refresh with a proof of that key",
        )
        .into());
    }
    // A user who may no longer authorize apps counts as gone.
    let user = user.filter(|u| user_may_authorize(Some(u)).is_ok());
    check_family_age(&grant, issuer.policy.refresh_family_max_age, now)?;
    let requested = req.scope.as_ref();
    let scope = check(&rt, &grant, &client.app, user.as_ref(), requested, now)?;
    let Some(user) = user else {
        return Err(OAuthError::invalid_grant("the user no longer exists").into());
    };
    let api = grant
        .audience
        .as_deref()
        .and_then(|aud| client.api_by_audience(aud));
    // The family lives on while refresh tokens are used, whatever else is narrowed.
    let scope = allowed_now(scope, &client.app, api, requested.is_some())?.with("offline_access");
    let (next_secret, next) = new_refresh_token(&grant, &scope, issuer);
    let minted = mint_user_tokens(client, &grant, &user, scope, None, issuer)?;
    let rotated = store
        .rotate_refresh_token_issuing(&digest, &next, minted.reference.as_ref(), now)
        .await?;
    if let Redeemed::Replayed { grant_id } = rotated {
        return Err(reused(store, client, &grant_id, now).await);
    }
    let mut set = minted.set;
    set.refresh_token = Some(next_secret);
    Ok(set)
}

/// RFC 9700 §4.14.2: a used refresh token presented again revokes its family.
async fn reused<S: RefreshGrantStore + ?Sized>(
    store: &S,
    client: &ClientContext,
    grant_id: &str,
    now: UnixTime,
) -> TokenError {
    if let Err(e) = store.revoke_grant(grant_id, now).await {
        return e.into();
    }
    let logged = security_event(
        store,
        client,
        "refresh.reused",
        grant_id,
        now,
        "a used refresh token was presented again; its whole family was revoked",
    )
    .await;
    match logged {
        Ok(()) => OAuthError::invalid_grant(
            "the refresh token was already used; the whole token family is revoked",
        )
        .into(),
        Err(e) => e.into(),
    }
}

/// Checks a refresh request; returns the scopes the new tokens carry.
pub fn check(
    rt: &RefreshToken,
    grant: &Grant,
    app: &App,
    user: Option<&ActingUser>,
    requested: Option<&ScopeSet>,
    now: UnixTime,
) -> Result<ScopeSet, OAuthError> {
    if rt.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if !app.allows(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client(
            "this app may not refresh tokens",
        ));
    }
    if rt.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    if grant.revoked_at.is_some() || grant.generation != app.generation {
        return Err(OAuthError::invalid_grant(
            "the authorization behind this refresh token has ended",
        ));
    }
    user_may_authorize(user)?;
    // §6: never more than the resource owner granted.
    let granted = ScopeSet::from(grant.scopes.as_slice()).with("offline_access");
    let held = ScopeSet::from(rt.scopes.as_slice()).intersect(&granted);
    match requested {
        None => Ok(held),
        Some(r) if r.is_subset_of(&held) && !r.is_empty() => Ok(r.clone()),
        Some(_) => Err(OAuthError::invalid_scope(
            "a refresh may keep or narrow the granted scopes, never widen them",
        )),
    }
}

/// When the family of `grant` ends, whatever its rotations: `family_max_age`
/// after the authorization.
pub fn family_deadline(grant: &Grant, family_max_age: i64) -> UnixTime {
    grant.created_at.saturating_add(family_max_age)
}

/// Refuses a family past its absolute lifetime.
pub fn check_family_age(
    grant: &Grant,
    family_max_age: i64,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if family_deadline(grant, family_max_age) <= now {
        return Err(OAuthError::invalid_grant(
            "this authorization has reached its maximum age; the user must authorize the app again",
        ));
    }
    Ok(())
}

/// Narrows `scope` to what may be granted now: OpenID Connect scopes, and API
/// scopes both the app and the API (`api`, the grant's audience) still allow.
/// Scopes removed from the app or the API since the authorization are dropped;
/// when the grant had API scopes and none is left, the refresh fails
/// (`invalid_scope` if scopes were asked, `invalid_grant` otherwise).
pub fn allowed_now(
    scope: ScopeSet,
    app: &App,
    api: Option<&Api>,
    asked: bool,
) -> Result<ScopeSet, OAuthError> {
    let is_oidc = |s: &str| OIDC_SCOPES.contains(&s);
    let had_api_scopes = scope.iter().any(|s| !is_oidc(s));
    let kept = scope.filter(|s| {
        is_oidc(s)
            || (app.scopes.iter().any(|a| a == s)
                && api.is_some_and(|api| api.scopes.iter().any(|x| x == s)))
    });
    if had_api_scopes && !kept.iter().any(|s| !is_oidc(s)) {
        let why = "none of the scopes granted may be given to this app any more";
        return Err(if asked {
            OAuthError::invalid_scope(why)
        } else {
            OAuthError::invalid_grant(why)
        });
    }
    Ok(kept)
}

/// Only active users with `developer_api` may authorize apps and keep them authorized.
pub fn user_may_authorize(user: Option<&ActingUser>) -> Result<(), OAuthError> {
    match user {
        None => Err(OAuthError::invalid_grant("the user no longer exists")),
        Some(u) if !u.is_active() => Err(OAuthError::invalid_grant("the user is deactivated")),
        Some(u) if !u.permissions.iter().any(|p| p == PERM_DEVELOPER_API) => Err(
            OAuthError::invalid_grant("the user no longer has the developer_api permission"),
        ),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::model::{AppStatus, SigningAlg, TokenFormat};

    fn app(scopes: &[&str]) -> App {
        App {
            id: "a".into(),
            client_id: "c".into(),
            org_id: "o".into(),
            name: "Web".into(),
            description: None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            on_behalf_of: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: scopes.iter().map(|s| (*s).into()).collect(),
            default_scopes: vec![],
            default_audience: None,
            secret_hash: String::new(),
            generation: 1,
            status: AppStatus::Active,
            require_pkce: true,
            require_par: false,
            require_dpop: false,
            exchange_audiences: vec![],
            created_at: 0,
            last_used_at: None,
            client_keys: None,
        }
    }

    fn api(scopes: &[&str]) -> Api {
        Api {
            id: "api".into(),
            org_id: "o".into(),
            name: "Gateway".into(),
            audience: "https://gw".into(),
            scopes: scopes.iter().map(|s| (*s).into()).collect(),
            token_format: TokenFormat::Jwt,
            signing_alg: SigningAlg::ES256,
            access_token_ttl: 3600,
            client_id: "api-c".into(),
            secret_hash: String::new(),
            created_at: 0,
        }
    }

    fn held(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn refresh_keeps_only_what_the_app_and_the_api_still_allow() {
        let api = api(&["a", "b"]);
        let kept = allowed_now(
            held("openid a b offline_access"),
            &app(&["a"]),
            Some(&api),
            false,
        )
        .unwrap();
        assert_eq!(kept.to_string(), "openid a offline_access");
        let kept = allowed_now(
            held("a b offline_access"),
            &app(&["a", "b"]),
            Some(&self::api(&["b"])),
            false,
        )
        .unwrap();
        assert_eq!(kept.to_string(), "b offline_access");
    }

    #[test]
    fn refresh_with_no_api_scope_left_fails() {
        let api = api(&["a", "b"]);
        let e = allowed_now(held("a offline_access"), &app(&["b"]), Some(&api), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        let e = allowed_now(held("a offline_access"), &app(&["b"]), Some(&api), true).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        // The API is gone: nothing of it can be granted.
        let e = allowed_now(held("a offline_access"), &app(&["a"]), None, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        // Only OpenID Connect scopes were granted: nothing to lose.
        let kept = allowed_now(held("openid offline_access"), &app(&[]), None, false).unwrap();
        assert_eq!(kept.to_string(), "openid offline_access");
    }

    #[test]
    fn a_family_ends_at_its_absolute_lifetime() {
        let grant = Grant {
            id: "g".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            scopes: vec![],
            audience: None,
            generation: 1,
            sid: None,
            auth_time: 0,
            amr: crate::mfa::amr_password(),
            created_at: 1000,
            revoked_at: None,
            claims: Default::default(),
        };
        assert!(check_family_age(&grant, 100, 1099).is_ok());
        assert_eq!(
            check_family_age(&grant, 100, 1100).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }
}
