//! Who is calling the admin API: a bearer token of Gatehouse's own (RFC 6750
//! §2.1, header only), live (`introspect::live_claims`: rotating the secret,
//! disabling or deleting the app, deactivating its user end it at once), for the
//! admin API's audience, with `gatehouse:admin`, from an app whose on-behalf user
//! still has `apps:manage` now. The caller acts as the app, within the token's
//! organization and no other.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use gatehouse_core::admin;
use gatehouse_core::context::ContextSource;
use gatehouse_core::introspect::live_claims;
use gatehouse_core::model::{Actor, ActorKind, Org, PERM_APPS_MANAGE, SCOPE_ADMIN};
use gatehouse_core::ports::{Store, StoreError};
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::token::admin_api_audience;

use super::problem::{ApiError, problem, problem_response};
use crate::bearer::{BearerError, BearerToken};
use crate::client_addr::ClientAddr;
use crate::state::AppState;

/// An authenticated admin API caller.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub actor: Actor,
    /// The organization the token is confined to.
    pub org_id: String,
    /// The on-behalf user's permissions, as read for this request.
    pub permissions: Vec<String>,
}

impl AdminCaller {
    /// The caller's organization, read once per request and passed to the admin
    /// core (which checks the actor may act on it without reading it again).
    pub async fn org(&self, store: &dyn Store) -> Result<Org, ApiError> {
        Ok(admin::org_of(store, &self.actor, &self.org_id).await?)
    }

    /// 403 unless the on-behalf user's role carries `permission`.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.permissions.iter().any(|p| p == permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "insufficient permission: the user this app acts on behalf of needs `{permission}`"
            )))
        }
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = Response;

    #[tracing::instrument(level = "debug", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = BearerToken::from_headers(&parts.headers)
            .ok_or_else(|| challenge(BearerError::missing()))?;
        let invalid = |why: &'static str| challenge(BearerError::invalid_token(why));
        let claims = match live_claims(
            token.as_str(),
            state.clock.now(),
            state.keys().as_ref(),
            state.store.as_ref(),
            &state.clients,
        )
        .await
        {
            Ok(Some(c)) => c,
            Ok(None) => return Err(invalid("the access token is expired, revoked or invalid")),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        // The admin API takes bearer tokens only: a DPoP-bound token is good
        // only with a proof (RFC 9449 §7.1), which this API does not check.
        if claims.cnf.is_some() {
            return Err(invalid(
                "the admin API takes bearer tokens: get its token without a DPoP proof",
            ));
        }
        let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
        if !scope.contains(SCOPE_ADMIN) {
            return Err(forbidden(
                "the admin API needs a token with the gatehouse:admin scope",
            ));
        }
        if claims.aud != admin_api_audience(&state.config.issuer) {
            return Err(invalid("the access token is not for the admin API"));
        }
        // Re-read now: the role may have lost `apps:manage` since the token was issued.
        let ctx = match state.clients.client_context(&claims.client_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Err(invalid("the app no longer exists")),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        let permissions = match &ctx.acting {
            Some(a) if a.user.id == claims.sub && ctx.app.org_id == claims.org => {
                a.permissions.clone()
            }
            _ => return Err(invalid("the user this app acts on behalf of has changed")),
        };
        if !permissions.iter().any(|p| p == PERM_APPS_MANAGE) {
            return Err(forbidden(
                "the user this app acts on behalf of no longer has the apps:manage permission",
            ));
        }
        let address = ClientAddr::of(parts, state).0.to_string();
        Ok(AdminCaller {
            actor: Actor {
                kind: ActorKind::App,
                id: ctx.app.client_id.clone(),
                name: ctx.app.name.clone(),
                org_id: Some(claims.org.clone()),
                address,
            },
            org_id: claims.org,
            permissions,
        })
    }
}

fn forbidden(why: &'static str) -> Response {
    challenge(BearerError::insufficient_scope(SCOPE_ADMIN, why))
}

/// RFC 6750 §3: the challenge of [`BearerError`], with a problem document for a
/// body like every other admin API error. Without a token the detail says how to
/// send one.
fn challenge(e: BearerError) -> Response {
    let detail = match e.code {
        None => "an access token is required (Authorization: Bearer …)",
        Some(_) => e.description,
    };
    let status = e.status();
    e.challenge_on(problem_response(
        status,
        problem(status, detail.to_owned(), None),
    ))
}
