//! The client credentials grant (RFC 6749 §4.4): an app, authenticated by its
//! secret, gets an access token that acts with its on-behalf user's role.
//!
//! Without `scope`, the app's default scopes are asked (none defined is
//! `invalid_scope`); the rest of the scope and audience rules are
//! [`crate::grant::scopes`].
//!
//! OpenID Connect scopes (`openid`, `offline_access`, …) mean nothing without a user
//! at the keyboard and are dropped silently, as they are by IdentityServer.
//!
//! `gatehouse:admin` is Gatehouse's own: asked alone (one audience per token), by
//! an app allowed it, whose on-behalf user's role has `apps:manage` now, it gives a
//! token for the admin API (`{issuer}/api/v1`).
//!
//! Everything comes from the cached client context: the only store call is the
//! reference-token record, for APIs that take reference tokens.

use crate::context::{ActingUser, ClientContext};
use crate::error::OAuthError;
use crate::grant::issuer::{Issuer, TokenError, TokenSet};
use crate::grant::scopes::{SCOPE_ADMIN, resolve};
use crate::model::{AppStatus, GrantType, PERM_APPS_MANAGE};
use crate::ports::TokenStore;
use crate::request::ClientCredentialsRequest;
use crate::scope::ScopeSet;
use crate::token::{AccessTokenPlan, TokenTarget, admin_api_audience, mint};

pub use crate::grant::scopes::OIDC_SCOPES;

/// Decides, mints, and stores the reference-token record when there is one.
pub async fn handle<S: TokenStore + ?Sized>(
    req: &ClientCredentialsRequest,
    client: &ClientContext,
    issuer: &Issuer<'_, S>,
) -> Result<TokenSet, TokenError> {
    let url = &issuer.policy.issuer;
    let plan = AccessTokenPlan {
        secret_id: issuer.secret_id.map(str::to_owned),
        ..decide(client, req, url)?
    };
    let minted = mint(plan, url, issuer.now, issuer.signer, issuer.dpop_jkt)?;
    if let Some(record) = &minted.reference {
        issuer.store.insert_reference_token(record).await?;
    }
    Ok(TokenSet {
        access_token: minted.access_token,
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token: None,
        id_token: None,
    })
}

pub fn decide(
    ctx: &ClientContext,
    req: &ClientCredentialsRequest,
    issuer: &str,
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
        None => ScopeSet::from(app.default_scopes.as_slice()),
    };
    if requested.contains(SCOPE_ADMIN) {
        return admin_plan(ctx, acting, &requested, req.target.as_deref(), issuer);
    }
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
        secret_id: None,
        act: None,
    })
}

/// A token for the admin API: nothing but `gatehouse:admin`, for an app allowed
/// it, acting for a user whose role has `apps:manage` at this moment.
fn admin_plan(
    ctx: &ClientContext,
    acting: &ActingUser,
    requested: &ScopeSet,
    target: Option<&str>,
    issuer: &str,
) -> Result<AccessTokenPlan, OAuthError> {
    let app = &ctx.app;
    if requested
        .iter()
        .any(|s| s != SCOPE_ADMIN && !OIDC_SCOPES.contains(&s))
    {
        return Err(OAuthError::invalid_scope(
            "`gatehouse:admin` must be asked alone: a token has one audience, and the admin API is its own",
        ));
    }
    if !app.scopes.iter().any(|s| s == SCOPE_ADMIN) {
        return Err(OAuthError::invalid_scope(
            "this app is not allowed the `gatehouse:admin` scope",
        ));
    }
    let audience = admin_api_audience(issuer);
    if target.is_some_and(|t| t != audience) {
        return Err(OAuthError::invalid_target(format!(
            "`gatehouse:admin` tokens are for `{audience}` only"
        )));
    }
    if !acting.permissions.iter().any(|p| p == PERM_APPS_MANAGE) {
        return Err(OAuthError::invalid_scope(format!(
            "`gatehouse:admin` needs the `{PERM_APPS_MANAGE}` permission, and the user this app acts on behalf of ({}) does not have it",
            acting.user.email
        )));
    }
    Ok(AccessTokenPlan {
        target: TokenTarget::admin_api(issuer),
        scope: ScopeSet::default().with(SCOPE_ADMIN),
        subject: acting.user.id.clone(),
        client_id: app.client_id.clone(),
        org_id: app.org_id.clone(),
        role: acting.user.role.clone(),
        permissions: acting.permissions.clone(),
        groups: acting.user.groups.clone(),
        generation: app.generation,
        grant_id: None,
        secret_id: None,
        act: None,
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
            tokens_valid_after: 0,
            profile: Default::default(),
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
                client_keys: None,
                require_pkce: false,
                require_par: false,
                require_dpop: false,
                exchange_audiences: vec![],
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
            secrets: vec![],
        }
    }

    const ISSUER: &str = "https://id.acme.test";

    fn decide_(
        c: &ClientContext,
        r: &ClientCredentialsRequest,
    ) -> Result<AccessTokenPlan, OAuthError> {
        decide(c, r, ISSUER)
    }

    fn admin_ctx() -> ClientContext {
        let mut c = ctx();
        c.app.scopes.push(SCOPE_ADMIN.into());
        let acting = c.acting.as_mut().unwrap();
        acting.user.role = "admin".into();
        acting.permissions = vec!["developer_api".into(), PERM_APPS_MANAGE.into()];
        c
    }

    #[test]
    fn admin_scope_gives_an_admin_api_token() {
        let plan = decide_(&admin_ctx(), &req(Some("gatehouse:admin"), None)).unwrap();
        assert_eq!(plan.scope.to_string(), "gatehouse:admin");
        assert_eq!(plan.target.audience, "https://id.acme.test/api/v1");
        assert_eq!(plan.target.alg, SigningAlg::ES256);
        assert_eq!(plan.target.format, TokenFormat::Jwt);
        assert_eq!(plan.org_id, "o1");
        let named = req(Some("gatehouse:admin"), Some("https://id.acme.test/api/v1"));
        assert!(decide_(&admin_ctx(), &named).is_ok());
    }

    #[test]
    fn admin_scope_as_default_scope_applies_without_scope() {
        let mut c = admin_ctx();
        c.app.default_scopes = vec![SCOPE_ADMIN.into()];
        let plan = decide_(&c, &req(None, None)).unwrap();
        assert_eq!(plan.target.audience, "https://id.acme.test/api/v1");
    }

    #[test]
    fn admin_scope_mixed_with_api_scopes_is_invalid_scope() {
        let e = decide_(&admin_ctx(), &req(Some("gatehouse:admin cfgateway"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert!(e.description.contains("alone"), "{}", e.description);
    }

    #[test]
    fn admin_scope_without_apps_manage_is_invalid_scope() {
        let mut c = admin_ctx();
        c.acting.as_mut().unwrap().permissions = vec!["developer_api".into()];
        let e = decide_(&c, &req(Some("gatehouse:admin"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert!(e.description.contains("apps:manage"), "{}", e.description);
    }

    #[test]
    fn admin_scope_the_app_may_not_have_is_invalid_scope() {
        let mut c = admin_ctx();
        c.app.scopes.retain(|s| s != SCOPE_ADMIN);
        let e = decide_(&c, &req(Some("gatehouse:admin"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn admin_scope_for_another_audience_is_invalid_target() {
        let e = decide_(
            &admin_ctx(),
            &req(Some("gatehouse:admin"), Some("https://gw")),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
    }

    fn req(scope: Option<&str>, target: Option<&str>) -> ClientCredentialsRequest {
        ClientCredentialsRequest {
            scope: scope.map(|s| ScopeSet::parse(s).unwrap()),
            target: target.map(str::to_owned),
        }
    }

    #[test]
    fn default_scopes_apply_without_scope() {
        let plan = decide_(&ctx(), &req(None, None)).unwrap();
        assert_eq!(plan.scope.to_string(), "cfgateway");
        assert_eq!(plan.target.audience, "https://gw");
        assert_eq!(plan.subject, "u1");
        assert_eq!(plan.generation, 3);
    }

    #[test]
    fn scopes_the_app_may_not_have_are_dropped() {
        let plan = decide_(&ctx(), &req(Some("cfgateway products:write"), None)).unwrap();
        assert_eq!(plan.scope.to_string(), "cfgateway");
    }

    #[test]
    fn nothing_grantable_is_invalid_scope() {
        let e = decide_(&ctx(), &req(Some("products:write"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn undefined_scope_is_invalid_scope() {
        let e = decide_(&ctx(), &req(Some("cfgateway nope"), None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert!(e.description.contains("nope"));
    }

    #[test]
    fn unknown_audience_is_invalid_target() {
        let e = decide_(&ctx(), &req(Some("cfgateway"), Some("https://nowhere"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn oidc_scopes_are_dropped_for_machines() {
        let plan = decide_(&ctx(), &req(Some("openid cfgateway"), None)).unwrap();
        assert_eq!(plan.scope.to_string(), "cfgateway");
    }

    #[test]
    fn no_scope_and_no_defaults_is_invalid_scope() {
        let mut c = ctx();
        c.app.default_scopes.clear();
        assert_eq!(
            decide_(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn deactivated_acting_user_is_invalid_grant() {
        let mut c = ctx();
        c.acting.as_mut().unwrap().user.status = UserStatus::Deactivated;
        assert_eq!(
            decide_(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        c.acting = None;
        assert_eq!(
            decide_(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn grant_not_allowed_is_unauthorized_client() {
        let mut c = ctx();
        c.app.grant_types = vec![GrantType::AuthorizationCode];
        assert_eq!(
            decide_(&c, &req(None, None)).unwrap_err().code,
            ErrorCode::UnauthorizedClient
        );
    }

    /// Reference-token records kept in memory: the one port this grant writes to.
    #[derive(Default)]
    struct Kept(std::sync::Mutex<Vec<ReferenceToken>>);

    #[async_trait::async_trait]
    impl TokenStore for Kept {
        async fn insert_reference_token(
            &self,
            token: &ReferenceToken,
        ) -> crate::ports::StoreResult<()> {
            self.0.lock().unwrap().push(token.clone());
            Ok(())
        }
        async fn reference_token(&self, digest: &str) -> crate::ports::StoreResult<ReferenceToken> {
            let kept = self.0.lock().unwrap();
            kept.iter()
                .find(|t| t.digest == digest)
                .cloned()
                .ok_or(crate::ports::StoreError::NotFound)
        }
        async fn purge_expired_tokens(&self, now: i64) -> crate::ports::StoreResult<u64> {
            let mut kept = self.0.lock().unwrap();
            let before = kept.len();
            kept.retain(|t| t.expires_at >= now);
            Ok((before - kept.len()) as u64)
        }
        async fn use_assertion_jti(
            &self,
            _: &str,
            _: &str,
            _: i64,
            _: i64,
        ) -> crate::ports::StoreResult<bool> {
            Ok(true)
        }
    }

    #[tokio::test]
    async fn a_reference_token_is_stored_before_it_is_handed_out_and_a_jwt_is_not() {
        const NOW: i64 = 1_700_000_000;
        let kek = crate::jose::KeyEncryptionKey::from_text(
            &crate::jose::KeyEncryptionKey::generate_text(),
        )
        .unwrap();
        let (key, _) =
            crate::jose::SigningKey::generate(SigningAlg::ES256, KeyState::Active, &kek, NOW)
                .unwrap();
        let ring = crate::keyring::KeyRing::new(vec![key]);
        let policy = crate::grant::issuer::Policy {
            issuer: ISSUER.into(),
            code_ttl: 60,
            refresh_ttl: 3600,
            refresh_family_max_age: 7200,
        };
        for (format, stored) in [(TokenFormat::Jwt, 0), (TokenFormat::Reference, 1)] {
            let mut c = ctx();
            c.apis[0].token_format = format;
            let store = Kept::default();
            let issuer = Issuer {
                store: &store,
                signer: &ring,
                policy: &policy,
                now: NOW,
                secret_id: None,
                dpop_jkt: None,
            };
            let set = handle(&req(Some("cfgateway"), None), &c, &issuer)
                .await
                .unwrap();
            assert_eq!(set.scope.to_string(), "cfgateway");
            assert_eq!(
                (set.expires_in, set.refresh_token, set.id_token),
                (3600, None, None)
            );
            let kept = store.0.lock().unwrap();
            assert_eq!(kept.len(), stored, "{format:?}");
            assert_eq!(set.access_token.split('.').count() == 3, stored == 0);
            if let Some(record) = kept.first() {
                assert_eq!(record.digest, crate::secret::digest(&set.access_token));
                assert_eq!(record.expires_at, NOW + 3600);
                assert_eq!(record.claims["iat"], NOW);
                assert_eq!(record.claims["aud"], "https://gw");
            }
        }
    }
}
