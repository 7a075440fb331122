//! OAuth 2.0 Token Exchange (RFC 8693): an app that received a person's access
//! token (for one of its organization's APIs) exchanges it for a token to another
//! API, on the same person's behalf.
//!
//! The rules, in the order they are checked ([`decide`]):
//! - the app is enabled and allowed the token exchange grant (`unauthorized_client`);
//! - the subject token (and the actor token, if any) is a live Gatehouse access
//!   token, by introspection's rule ([`SubjectTokens`]; else `invalid_grant`);
//! - the subject token is a person's (it carries a grant, `gid`): machine tokens
//!   are refused (`invalid_grant`), as their liveness hangs on their own app's
//!   on-behalf user;
//! - the subject token is of the app's organization and addressed to one of its
//!   APIs (the API the exchanging app serves); userinfo and admin API tokens are
//!   refused (`invalid_grant`);
//! - the target (`audience` or `resource`; may be left out when the app has one
//!   exchange audience) is an API of the organization the app is allowed to
//!   exchange for, its `exchange_audiences` (deny by default; `invalid_target`);
//! - the scope is a subset of the subject token's and of the target API's
//!   (`invalid_scope`); without `scope`, every scope of the subject token the
//!   target offers;
//! - an actor token, if given, is the app's own (its `client_id`).
//!
//! The new token: the subject's `sub`, role, permissions and groups; the app's
//! `client_id` and credential generation (rotating its secret ends it); the
//! subject's grant (`gid`: revoking the person's grant ends it, at the gateway
//! too); `act` naming the app, with the subject's own `act` nested (§4.1); and
//! an expiry no later than the subject token's. No refresh token (§2.2.1).
//! Every exchange is audited.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::context::ClientContext;
use crate::error::OAuthError;
use crate::grant::issuer::{Issuer, TokenError, TokenSet};
use crate::grant::user_tokens::security_event;
use crate::model::{AppStatus, GrantType};
use crate::ports::{AuditStore, StoreResult, TokenStore};
use crate::request::TokenExchangeRequest;
use crate::scope::ScopeSet;
use crate::token::{AccessClaims, AccessTokenPlan, Act, TokenTarget, mint};

/// The longest delegation chain (`act` nested) an exchanged token may carry.
pub const MAX_ACT_DEPTH: usize = 8;

/// What this grant touches in the store: the reference-token record and the audit log.
pub trait ExchangeGrantStore: TokenStore + AuditStore {}
impl<T: TokenStore + AuditStore + ?Sized> ExchangeGrantStore for T {}

/// Reads tokens presented to the exchange: the verified claims of a Gatehouse
/// access token that is live by introspection's rule
/// ([`crate::introspect::live_claims`]), `None` for anything else.
#[async_trait]
pub trait SubjectTokens: Send + Sync {
    async fn live_access_token(
        &self,
        token: &str,
        now: UnixTime,
    ) -> StoreResult<Option<AccessClaims>>;
}

/// Checks both tokens, decides, mints, stores the reference-token record when
/// there is one, and audits the exchange.
pub async fn handle<S: ExchangeGrantStore + ?Sized>(
    req: &TokenExchangeRequest,
    client: &ClientContext,
    issuer: &Issuer<'_, S>,
    tokens: &dyn SubjectTokens,
) -> Result<TokenSet, TokenError> {
    allowed(client)?;
    let now = issuer.now;
    let Some(subject) = tokens.live_access_token(&req.subject_token, now).await? else {
        return Err(OAuthError::invalid_grant(
            "the subject token is not an active Gatehouse access token",
        )
        .into());
    };
    let actor = match &req.actor_token {
        Some(t) => Some(tokens.live_access_token(t, now).await?.ok_or_else(|| {
            OAuthError::invalid_grant("the actor token is not an active Gatehouse access token")
        })?),
        None => None,
    };
    // Ends with the secret the exchanging app presented, as its other tokens do.
    let plan = AccessTokenPlan {
        secret_id: issuer.secret_id.map(str::to_owned),
        ..decide(client, req, &subject, actor.as_ref(), now)?
    };
    let audience = plan.target.audience.clone();
    let minted = mint(
        plan,
        &issuer.policy.issuer,
        now,
        issuer.signer,
        issuer.dpop_jkt,
    )?;
    if let Some(record) = &minted.reference {
        issuer.store.insert_reference_token(record).await?;
    }
    let gid = subject.gid.as_deref().unwrap_or_default();
    let detail = format!(
        "exchanged a token of user `{}` from `{}` for `{audience}` with scope `{}`",
        subject.sub, subject.aud, minted.scope
    );
    security_event(issuer.store, client, "token.exchange", gid, now, &detail).await?;
    Ok(TokenSet {
        access_token: minted.access_token,
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token: None,
        id_token: None,
    })
}

fn allowed(ctx: &ClientContext) -> Result<(), OAuthError> {
    if ctx.app.status != AppStatus::Active {
        return Err(OAuthError::invalid_client("this app is disabled"));
    }
    if !ctx.app.allows(GrantType::TokenExchange) {
        return Err(OAuthError::unauthorized_client(
            "this app is not allowed the token exchange grant",
        ));
    }
    Ok(())
}

/// The decision table, on verified live claims: no I/O.
pub fn decide(
    ctx: &ClientContext,
    req: &TokenExchangeRequest,
    subject: &AccessClaims,
    actor: Option<&AccessClaims>,
    now: UnixTime,
) -> Result<AccessTokenPlan, OAuthError> {
    allowed(ctx)?;
    let app = &ctx.app;
    let Some(gid) = &subject.gid else {
        return Err(OAuthError::invalid_grant(
            "the subject token is an app's own (client credentials): only a person's access token can be exchanged",
        ));
    };
    if subject.org != app.org_id || ctx.api_by_audience(&subject.aud).is_none() {
        return Err(OAuthError::invalid_grant(
            "the subject token is not for an API of this app's organization",
        ));
    }
    if let Some(a) = actor
        && (a.client_id != app.client_id || a.org != app.org_id)
    {
        return Err(OAuthError::invalid_grant(
            "the actor token must be one issued to this app",
        ));
    }
    let act = Act {
        sub: app.client_id.clone(),
        act: subject.act.clone().map(Box::new),
    };
    if act.depth() > MAX_ACT_DEPTH {
        return Err(OAuthError::invalid_grant(format!(
            "the delegation chain would be longer than {MAX_ACT_DEPTH} actors"
        )));
    }
    let api = target_api(ctx, req.target.as_deref())?;
    let held = ScopeSet::parse(&subject.scope)?;
    let offered = api.scope_set();
    let scope = match &req.scope {
        Some(asked) => {
            if let Some(s) = asked.iter().find(|s| !held.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{s}` is not held by the subject token"
                )));
            }
            if let Some(s) = asked.iter().find(|s| !offered.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{s}` is not offered by `{}`",
                    api.audience
                )));
            }
            asked.clone()
        }
        None => held.intersect(&offered),
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "the subject token holds no scope `{}` offers",
            api.audience
        )));
    }
    // Never longer than the subject token (live, so `exp > now`).
    let mut target = TokenTarget::from_api(api);
    target.ttl = target.ttl.min(subject.exp - now);
    if target.ttl <= 0 {
        return Err(OAuthError::invalid_grant("the subject token has expired"));
    }
    Ok(AccessTokenPlan {
        target,
        scope,
        subject: subject.sub.clone(),
        client_id: app.client_id.clone(),
        org_id: app.org_id.clone(),
        role: subject.role.clone(),
        permissions: subject.permissions.clone(),
        groups: subject.groups.clone(),
        generation: app.generation,
        grant_id: Some(gid.clone()),
        secret_id: None,
        act: Some(act),
    })
}

/// The API named by `audience`/`resource` (or the app's one exchange audience),
/// if the app may exchange for it.
fn target_api<'a>(
    ctx: &'a ClientContext,
    target: Option<&str>,
) -> Result<&'a crate::model::Api, OAuthError> {
    let allowed = &ctx.app.exchange_audiences;
    if allowed.is_empty() {
        return Err(OAuthError::invalid_target(
            "this app may exchange tokens for no API: an admin must set its exchange audiences",
        ));
    }
    let audience = match (target, allowed.as_slice()) {
        (Some(t), _) => t,
        (None, [only]) => only.as_str(),
        (None, _) => {
            return Err(OAuthError::invalid_target(
                "name the API to exchange for with `audience` or `resource`",
            ));
        }
    };
    let api = ctx
        .api_by_audience(audience)
        .filter(|_| allowed.iter().any(|a| a == audience));
    api.ok_or_else(|| {
        OAuthError::invalid_target(format!(
            "`{}` is not an API this app may exchange tokens for",
            audience
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        ))
    })
}

#[cfg(test)]
#[path = "token_exchange_tests.rs"]
mod tests;
