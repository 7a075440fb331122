//! The client credentials grant (RFC 6749 §4.4): an app, authenticated by its
//! secret, gets an access token that acts with its on-behalf user's role.
//!
//! Without `scope`, the app's default scopes are asked (none defined is
//! `invalid_scope`); the rest of the scope and audience rules are
//! [`crate::grant::scopes`].
//!
//! OpenID Connect scopes (`openid`, `offline_access`, …) mean nothing without a user
//! at the keyboard and are dropped silently, as they are by IdentityServer.

use crate::context::ClientContext;
use crate::error::OAuthError;
use crate::grant::scopes::resolve;
use crate::model::{AppStatus, GrantType};
use crate::request::ClientCredentialsRequest;
use crate::scope::ScopeSet;
use crate::token::{AccessTokenPlan, TokenTarget};

pub use crate::grant::scopes::OIDC_SCOPES;

pub fn decide(
    ctx: &ClientContext,
    req: &ClientCredentialsRequest,
) -> Result<AccessTokenPlan, OAuthError> {
    let app = &ctx.app;
    if app.status != AppStatus::Active {
        return Err(OAuthError::invalid_client("this app is disabled"));
    }
    if !app.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "this app is not allowed the client_credentials grant",
        ));
    }
    let acting = match &ctx.acting {
        Some(a) if a.user.org_id == app.org_id => a,
        _ => {
            return Err(OAuthError::invalid_grant(
                "the user this app acts on behalf of no longer exists; an admin must choose another",
            ));
        }
    };
    if !acting.is_active() {
        return Err(OAuthError::invalid_grant(
            "the user this app acts on behalf of is deactivated",
        ));
    }
    let requested = match &req.scope {
        Some(s) => s.clone(),
        None => ScopeSet::from_vec(app.default_scopes.clone()),
    };
    let resolved = resolve(ctx, &requested, req.target.as_deref())?;
    let Some(api) = resolved.api.filter(|_| !resolved.api_scopes.is_empty()) else {
        return Err(OAuthError::invalid_scope(if req.scope.is_some() {
            "no API scope was requested"
        } else {
            "no `scope` was requested and this app has no default scopes"
        }));
    };
    Ok(AccessTokenPlan {
        target: TokenTarget::from_api(api),
        scope: resolved.api_scopes,
        subject: acting.user.id.clone(),
        client_id: app.client_id.clone(),
        org_id: app.org_id.clone(),
        role: acting.user.role.clone(),
        permissions: acting.permissions.clone(),
        groups: acting.user.groups.clone(),
        generation: app.generation,
        grant_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ActingUser;
    use crate::error::ErrorCode;
    use crate::model::*;

    fn api(aud: &str, scopes: &[&str]) -> Api {
        Api {
            id: format!("api-{aud}"),
            org_id: "o1".into(),
            name: aud.into(),
            audience: aud.into(),
            scopes: scopes.iter().map(|s| (*s).into()).collect(),
            token_format: TokenFormat::Jwt,
            signing_alg: SigningAlg::ES256,
            access_token_ttl: 3600,
            client_id: format!("c-{aud}"),
            secret_hash: String::new(),
            created_at: 0,
        }
    }

    fn ctx() -> ClientContext {
        let user = User {
            id: "u1".into(),
            org_id: "o1".into(),
            email: "dev@acme.test".into(),
            name: None,
            password_hash: None,
            role: "developer".into(),
            groups: vec!["ops".into()],
            status: UserStatus::Active,
            created_at: 0,
        };
        ClientContext {
            app: App {
                id: "a1".into(),
                client_id: "app".into(),
                org_id: "o1".into(),
                name: "Nightly".into(),
                description: None,
                grant_types: vec![GrantType::ClientCredentials],
                on_behalf_of: Some("u1".into()),
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                scopes: vec!["cfgateway".into(), "products:read".into()],
                default_scopes: vec!["cfgateway".into()],
                default_audience: None,
                secret_hash: String::new(),
                generation: 3,
                status: AppStatus::Active,
                last_used_at: None,
                created_at: 0,
            },
            org: Org {
                id: "o1".into(),
                slug: "acme".into(),
                name: "Acme".into(),
                created_at: 0,
            },
            acting: Some(ActingUser {
                user,
                permissions: vec!["developer_api".into()],
            }),
            apis: vec![
                api(
                    "https://gw",
                    &["cfgateway", "products:read", "products:write"],
                ),
                api("https://other", &["reports"]),
            ],
        }
    }

    fn req(scope: Option<&str>, target: Option<&str>) -> ClientCredentialsRequest {
        ClientCredentialsRequest {
            scope: scope.map(|s| ScopeSet::parse(s).unwrap()),
            target: target.map(str::to_owned),
        }
    }

    #[test]
    fn default_scopes_apply_without_scope() {
        let plan = decide(&ctx(), &req(None, None)).unwrap();
        assert_eq!(plan.scope.to_string(), "cfgateway");
        assert_eq!(plan.target.audience, "https://gw");
        assert_eq!(plan.subject, "u1");
        assert_eq!(plan.generation, 3);
    }

    #[test]
    fn scopes_the_app_may_not_have_are_dropped() {
        let plan = decide(&ctx(), &req(Some("cfgateway products:write"), None)).unwrap();
        assert_eq!(plan.scope.to_string(), "cfgateway");
    }

    #[test]
    fn nothing_grantable_is_invalid_scope() {
        let e = decide(&ctx(), &req(Some("products:write"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn undefined_scope_is_invalid_scope() {
        let e = decide(&ctx(), &req(Some("cfgateway nope"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert!(e.description.contains("nope"));
    }

    #[test]
    fn unknown_audience_is_invalid_target() {
        let e = decide(&ctx(), &req(Some("cfgateway"), Some("https://nowhere"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn oidc_scopes_are_dropped_for_machines() {
        let plan = decide(&ctx(), &req(Some("openid cfgateway"), None)).unwrap();
        assert_eq!(plan.scope.to_string(), "cfgateway");
    }

    #[test]
    fn no_scope_and_no_defaults_is_invalid_scope() {
        let mut c = ctx();
        c.app.default_scopes.clear();
        assert_eq!(
            decide(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn deactivated_acting_user_is_invalid_grant() {
        let mut c = ctx();
        c.acting.as_mut().unwrap().user.status = UserStatus::Deactivated;
        assert_eq!(
            decide(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        c.acting = None;
        assert_eq!(
            decide(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn grant_not_allowed_is_unauthorized_client() {
        let mut c = ctx();
        c.app.grant_types = vec![GrantType::AuthorizationCode];
        assert_eq!(
            decide(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::UnauthorizedClient
        );
    }
}
