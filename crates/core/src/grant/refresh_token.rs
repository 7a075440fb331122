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
            created_at: 0,
            last_used_at: None,
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
            created_at: 1000,
            revoked_at: None,
        };
        assert!(check_family_age(&grant, 100, 1099).is_ok());
        assert_eq!(
            check_family_age(&grant, 100, 1100).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }
}
