//! Scope and audience resolution shared by every grant:
//! - OpenID Connect scopes (`openid`, `offline_access`, `profile`, `email`) are
//!   kept apart from API scopes;
//! - an API scope no API of the organization defines is `invalid_scope`;
//! - API scopes the app may not have, or that the chosen API does not define, are
//!   dropped; nothing left is `invalid_scope`;
//! - the API is the one named by `audience`/`resource` (unknown: `invalid_target`),
//!   else the app's default audience, else the one API defining the requested scopes.

use crate::context::ClientContext;
use crate::error::OAuthError;
use crate::model::Api;
use crate::scope::ScopeSet;

pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The built-in scope of Gatehouse's own admin API (`/api/v1`). No API of an
/// organization defines it; only client credentials tokens carry it, alone.
pub use crate::model::SCOPE_ADMIN;

#[derive(Debug)]
pub struct Resolved<'a> {
    /// The API the access token is for; `None` when only OIDC scopes were asked.
    pub api: Option<&'a Api>,
    /// Granted API scopes.
    pub api_scopes: ScopeSet,
    /// Requested OIDC scopes (the grant decides which it honours).
    pub oidc_scopes: ScopeSet,
}

pub fn resolve<'a>(
    ctx: &'a ClientContext,
    requested: &ScopeSet,
    target: Option<&str>,
) -> Result<Resolved<'a>, OAuthError> {
    let is_oidc = |s: &str| OIDC_SCOPES.contains(&s);
    let oidc_scopes = requested.filter(is_oidc);
    let api_requested = requested.filter(|s| !is_oidc(s));
    if let Some(unknown) = api_requested
        .iter()
        .find(|s| !ctx.apis.iter().any(|a| a.scopes.iter().any(|x| x == s)))
    {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{unknown}` is not defined by any API"
        )));
    }
    if api_requested.is_empty() {
        let api = match target {
            Some(t) => Some(api_by_target(ctx, t)?),
            None => None,
        };
        return Ok(Resolved {
            api,
            api_scopes: ScopeSet::default(),
            oidc_scopes,
        });
    }
    let api = choose_api(ctx, target, &api_requested)?;
    let allowed = ScopeSet::from(ctx.app.scopes.as_slice());
    let api_scopes = api_requested
        .intersect(&allowed)
        .intersect(&api.scope_set());
    if api_scopes.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "none of the requested scopes may be granted to this app for `{}`",
            api.audience
        )));
    }
    Ok(Resolved {
        api: Some(api),
        api_scopes,
        oidc_scopes,
    })
}

fn api_by_target<'a>(ctx: &'a ClientContext, target: &str) -> Result<&'a Api, OAuthError> {
    ctx.api_by_audience(target).ok_or_else(|| {
        OAuthError::invalid_target(format!(
            "`{}` is not an API this app can get tokens for",
            target
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        ))
    })
}

fn choose_api<'a>(
    ctx: &'a ClientContext,
    target: Option<&str>,
    requested: &ScopeSet,
) -> Result<&'a Api, OAuthError> {
    if let Some(t) = target.or(ctx.app.default_audience.as_deref()) {
        return api_by_target(ctx, t);
    }
    let mut defining = ctx
        .apis
        .iter()
        .filter(|a| requested.iter().any(|s| a.scopes.iter().any(|x| x == s)));
    match (defining.next(), defining.next()) {
        (Some(api), None) => Ok(api),
        (Some(_), Some(_)) => Err(OAuthError::invalid_target(
            "the requested scopes belong to several APIs; name one with `audience` or `resource`",
        )),
        (None, _) => Err(OAuthError::invalid_scope(
            "no API defines the requested scopes",
        )),
    }
}
