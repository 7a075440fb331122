//! The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): every
//! use makes a successor; the used one is dead, and using it again revokes the
//! whole family (the grant). A family lives at most `family_max_age` from the
//! authorization, however often it is rotated, and each refresh grants only what
//! the app and the API still allow (never more than was granted: §6).

use crate::clock::UnixTime;
use crate::context::ActingUser;
use crate::error::OAuthError;
use crate::grant::scopes::OIDC_SCOPES;
use crate::model::{Api, App, Grant, GrantType, PERM_DEVELOPER_API, RefreshToken};
use crate::scope::ScopeSet;

/// Refresh tokens live 30 days unless configured otherwise.
pub const DEFAULT_TTL: i64 = 30 * 24 * 3600;
/// A refresh-token family ends this long after the authorization, unless configured otherwise.
pub const DEFAULT_FAMILY_MAX_AGE: i64 = 90 * 24 * 3600;

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
    let held = ScopeSet::from_vec(rt.scopes.clone()).intersect(&ScopeSet::from_vec(
        grant
            .scopes
            .iter()
            .cloned()
            .chain(["offline_access".to_owned()])
            .collect(),
    ));
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
    let kept: Vec<String> = scope
        .iter()
        .filter(|s| {
            is_oidc(s)
                || (app.scopes.iter().any(|a| a == s)
                    && api.is_some_and(|api| api.scopes.iter().any(|x| x == s)))
        })
        .map(str::to_owned)
        .collect();
    let kept = ScopeSet::from_vec(kept);
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
