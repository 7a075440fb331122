//! The user-facing token flows end to end over the ports: issuing a code after
//! consent, exchanging it, refreshing. The grant modules decide; this module
//! sequences the store calls around them so the HTTP layer only maps results.

use std::sync::Arc;

use crate::authorize::ValidAuthorize;
use crate::clock::UnixTime;
use crate::context::{ClientContext, acting_user};
use crate::error::OAuthError;
use crate::grant::authorization_code::{self, CodeExchange};
use crate::grant::refresh_token::{self, user_may_authorize};
use crate::id_token::{self, IdTokenInput};
use crate::model::{
    Actor, ActorKind, AuditEvent, AuthCode, Grant, RefreshToken, Session, SigningAlg, User,
};
use crate::ports::{Redeemed, Store, StoreError};
use crate::scope::ScopeSet;
use crate::secret;
use crate::token::{AccessTokenPlan, MintError, Signer, TokenTarget, mint};

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mint(#[from] MintError),
}

/// Lifetimes and the issuer, from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub issuer: String,
    pub code_ttl: i64,
    pub refresh_ttl: i64,
    /// The absolute lifetime of a refresh-token family, from the authorization.
    pub refresh_family_max_age: i64,
}

/// What the token endpoint returns.
#[derive(Debug)]
pub struct TokenSet {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: ScopeSet,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// After login and consent: records the grant and its code; returns the code.
pub async fn issue_code(
    store: &dyn Store,
    req: &ValidAuthorize,
    app_generation: i64,
    session: &Session,
    policy: &Policy,
    now: UnixTime,
) -> Result<String, StoreError> {
    let grant = Grant {
        id: secret::random_id(),
        client_id: req.client_id.clone(),
        user_id: session.user_id.clone(),
        scopes: req.scope.as_slice().to_vec(),
        audience: req.target.as_ref().map(|t| t.audience.clone()),
        generation: app_generation,
        sid: Some(session.sid.clone()),
        auth_time: session.auth_time,
        created_at: now,
        revoked_at: None,
    };
    store.insert_grant(&grant).await?;
    let code = secret::random_token();
    store
        .insert_code(&AuthCode {
            digest: secret::digest(&code),
            grant_id: grant.id,
            client_id: req.client_id.clone(),
            redirect_uri: if req.redirect_uri_given {
                req.redirect_uri.as_str().to_owned()
            } else {
                String::new()
            },
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            expires_at: now + policy.code_ttl,
        })
        .await?;
    Ok(code)
}

pub async fn exchange_code(
    store: &dyn Store,
    signer: &dyn Signer,
    ctx: &Arc<ClientContext>,
    code: &str,
    req: CodeExchange<'_>,
    policy: &Policy,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let digest = secret::digest(code);
    let record = match store.redeem_code(&digest, now).await {
        Ok(Redeemed::Fresh(c)) => c,
        Ok(Redeemed::Replayed { grant_id }) => {
            // RFC 9700 §4.14.2 / RFC 6749 §4.1.2: a replayed code revokes the grant.
            store.revoke_grant(&grant_id, now).await?;
            security_event(store, ctx, "code.replayed", &grant_id, now,
                "an authorization code was presented again; the grant and every token issued from it were revoked").await?;
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; every token issued from it is revoked",
            )
            .into());
        }
        Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_grant("unknown authorization code").into());
        }
        Err(e) => return Err(e.into()),
    };
    // Whatever the outcome, a concurrent replay may now revoke (see `redeem_code`).
    let result = redeemed(store, signer, ctx, &record, req, policy, now).await;
    store.finish_code(&digest, now).await?;
    result
}

/// The checks and tokens of a code this caller redeemed first.
async fn redeemed(
    store: &dyn Store,
    signer: &dyn Signer,
    ctx: &Arc<ClientContext>,
    record: &AuthCode,
    req: CodeExchange<'_>,
    policy: &Policy,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let grant = store.grant(&record.grant_id).await?;
    authorization_code::check(record, &grant, &ctx.app, &req, now)?;
    let user = load_user(store, &grant.user_id).await?;
    let scope = ScopeSet::from_vec(grant.scopes.clone());
    let mut set = tokens(
        store,
        signer,
        ctx,
        &grant,
        &user,
        scope,
        record.nonce.as_deref(),
        policy,
        now,
    )
    .await?;
    if set.scope.contains("offline_access") {
        let (secret, record) = new_refresh_token(&grant, &set.scope, policy, now);
        store.insert_refresh_token(&record).await?;
        set.refresh_token = Some(secret);
    }
    Ok(set)
}

fn new_refresh_token(
    grant: &Grant,
    scope: &ScopeSet,
    policy: &Policy,
    now: UnixTime,
) -> (String, RefreshToken) {
    let secret = secret::random_token();
    let record = RefreshToken {
        digest: secret::digest(&secret),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        scopes: scope.as_slice().to_vec(),
        // A successor never outlives its family.
        expires_at: (now + policy.refresh_ttl).min(refresh_token::family_deadline(
            grant,
            policy.refresh_family_max_age,
        )),
        used_at: None,
    };
    (secret, record)
}

pub async fn refresh(
    store: &dyn Store,
    signer: &dyn Signer,
    ctx: &Arc<ClientContext>,
    presented: &str,
    requested: Option<&ScopeSet>,
    policy: &Policy,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let digest = secret::digest(presented);
    let rt = match store.refresh_token(&digest).await {
        Ok(rt) => rt,
        Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_grant("unknown refresh token").into());
        }
        Err(e) => return Err(e.into()),
    };
    if rt.used_at.is_some() && rt.client_id == ctx.app.client_id {
        store.revoke_grant(&rt.grant_id, now).await?;
        refresh_reused(store, ctx, &rt.grant_id, now).await?;
        return Err(reuse().into());
    }
    let grant = store.grant(&rt.grant_id).await?;
    let user = match load_user(store, &grant.user_id).await {
        Ok(u) => Some(u),
        Err(ExchangeError::OAuth(_)) => None,
        Err(e) => return Err(e),
    };
    refresh_token::check_family_age(&grant, policy.refresh_family_max_age, now)?;
    let scope = refresh_token::check(
        &rt,
        &grant,
        &ctx.app,
        user.as_ref().map(|(_, a)| a),
        requested,
        now,
    )?;
    let Some(user) = user else {
        return Err(OAuthError::invalid_grant("the user no longer exists").into());
    };
    let api = grant
        .audience
        .as_deref()
        .and_then(|aud| ctx.api_by_audience(aud));
    let mut scope = refresh_token::allowed_now(scope, &ctx.app, api, requested.is_some())?;
    // The family lives on while refresh tokens are used, whatever else is narrowed.
    if !scope.contains("offline_access") {
        scope = ScopeSet::from_vec(
            scope
                .as_slice()
                .iter()
                .cloned()
                .chain(["offline_access".to_owned()])
                .collect(),
        );
    }
    let (next_secret, next) = new_refresh_token(&grant, &scope, policy, now);
    match store.rotate_refresh_token(&digest, &next, now).await? {
        Redeemed::Fresh(_) => {}
        Redeemed::Replayed { grant_id } => {
            store.revoke_grant(&grant_id, now).await?;
            refresh_reused(store, ctx, &grant_id, now).await?;
            return Err(reuse().into());
        }
    }
    let mut set = tokens(store, signer, ctx, &grant, &user, scope, None, policy, now).await?;
    set.refresh_token = Some(next_secret);
    Ok(set)
}

async fn refresh_reused(
    store: &dyn Store,
    ctx: &ClientContext,
    grant_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    security_event(
        store,
        ctx,
        "refresh.reused",
        grant_id,
        now,
        "a used refresh token was presented again; its whole family was revoked",
    )
    .await
}

/// A security event in the app's organization's audit log, by the app.
async fn security_event(
    store: &dyn Store,
    ctx: &ClientContext,
    action: &str,
    grant_id: &str,
    now: UnixTime,
    detail: &str,
) -> Result<(), StoreError> {
    let actor = Actor {
        kind: ActorKind::App,
        id: ctx.app.client_id.clone(),
        name: ctx.app.name.clone(),
        org_id: Some(ctx.app.org_id.clone()),
        address: "token endpoint".into(),
    };
    let event = AuditEvent::new(
        &actor,
        &ctx.app.org_id,
        now,
        action,
        grant_id,
        format!("{detail} (app `{}`)", ctx.app.name),
    );
    store.record_security_event(&event).await
}

fn reuse() -> OAuthError {
    OAuthError::invalid_grant(
        "the refresh token was already used; the whole token family is revoked",
    )
}

async fn load_user(
    store: &dyn Store,
    id: &str,
) -> Result<(User, crate::context::ActingUser), ExchangeError> {
    let user = match store.user_by_id(id).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_grant("the user no longer exists").into());
        }
        Err(e) => return Err(e.into()),
    };
    let acting = acting_user(store, user.clone()).await?;
    user_may_authorize(Some(&acting))?;
    Ok((user, acting))
}

/// Access token, refresh token (with `offline_access`) and ID token (with `openid`).
#[allow(clippy::too_many_arguments)]
async fn tokens(
    store: &dyn Store,
    signer: &dyn Signer,
    ctx: &ClientContext,
    grant: &Grant,
    (user, acting): &(User, crate::context::ActingUser),
    scope: ScopeSet,
    nonce: Option<&str>,
    policy: &Policy,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    // A person authorizes only their own organization's apps (the sign-in looks
    // for them there); a grant across organizations is never honoured.
    if user.org_id != ctx.app.org_id {
        return Err(OAuthError::invalid_grant("the user is not of this app's organization").into());
    }
    let target = match &grant.audience {
        Some(aud) => TokenTarget::from_api(ctx.api_by_audience(aud).ok_or_else(|| {
            OAuthError::invalid_grant("the API this authorization was for no longer exists")
        })?),
        None => TokenTarget::userinfo(&policy.issuer),
    };
    let minted = mint(
        AccessTokenPlan {
            target,
            scope: scope.clone(),
            subject: user.id.clone(),
            client_id: ctx.app.client_id.clone(),
            org_id: user.org_id.clone(),
            role: user.role.clone(),
            permissions: acting.permissions.clone(),
            groups: user.groups.clone(),
            generation: ctx.app.generation,
            grant_id: Some(grant.id.clone()),
        },
        &policy.issuer,
        now,
        signer,
    )?;
    if let Some(rec) = &minted.reference {
        store.insert_reference_token(rec).await?;
    }
    let id_token = if scope.contains("openid") {
        let claims = id_token::claims(IdTokenInput {
            issuer: &policy.issuer,
            client_id: &ctx.app.client_id,
            user,
            scope: &scope,
            nonce,
            auth_time: grant.auth_time,
            sid: grant.sid.as_deref(),
            access_token: &minted.access_token,
            now,
        });
        let key = signer
            .active(SigningAlg::RS256)
            .ok_or(MintError::NoKey(SigningAlg::RS256))?;
        let body = serde_json::to_vec(&claims).map_err(|_| MintError::Serialize)?;
        Some(key.sign_jwt(&body).map_err(MintError::from)?)
    } else {
        None
    };
    Ok(TokenSet {
        access_token: minted.access_token,
        expires_in: minted.expires_in,
        scope,
        refresh_token: None,
        id_token,
    })
}
