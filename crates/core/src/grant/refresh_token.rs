//! The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): every
//! use makes a successor; the used one is dead, and using it again revokes the
//! whole family (the grant).

use crate::clock::UnixTime;
use crate::context::ActingUser;
use crate::error::OAuthError;
use crate::model::{App, Grant, GrantType, PERM_DEVELOPER_API, RefreshToken};
use crate::scope::ScopeSet;

/// Refresh tokens live 30 days unless configured otherwise.
pub const DEFAULT_TTL: i64 = 30 * 24 * 3600;

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
    let held = ScopeSet::from_vec(rt.scopes.clone());
    match requested {
        None => Ok(held),
        Some(r) if r.is_subset_of(&held) && !r.is_empty() => Ok(r.clone()),
        Some(_) => Err(OAuthError::invalid_scope(
            "a refresh may keep or narrow the granted scopes, never widen them",
        )),
    }
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
