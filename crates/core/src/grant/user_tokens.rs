//! What the two user grants (authorization code, refresh token) share: minting a
//! person's access token and ID token, making a refresh token of a family, and
//! recording a replay in the audit log. Minting here writes nothing: the grant
//! passes the reference-token record to its one write.

use crate::clock::UnixTime;
use crate::context::{ActingUser, ClientContext};
use crate::error::OAuthError;
use crate::grant::issuer::{Issuer, TokenError, TokenSet};
use crate::grant::refresh_token::family_deadline;
use crate::id_token::{self, IdTokenInput};
use crate::model::{Actor, ActorKind, AuditEvent, Grant, ReferenceToken, RefreshToken, SigningAlg};
use crate::ports::{AuditStore, StoreError};
use crate::scope::ScopeSet;
use crate::secret;
use crate::token::{AccessTokenPlan, MintError, TokenTarget, mint};

/// Tokens minted for a person, with the record a reference access token needs
/// stored before it is handed out.
pub struct UserTokens {
    pub set: TokenSet,
    pub reference: Option<ReferenceToken>,
}

/// The access token and, with `openid`, the ID token of `grant` for `acting`.
pub fn mint_user_tokens<S: ?Sized>(
    client: &ClientContext,
    grant: &Grant,
    acting: &ActingUser,
    scope: ScopeSet,
    nonce: Option<&str>,
    issuer: &Issuer<'_, S>,
) -> Result<UserTokens, TokenError> {
    let user = &acting.user;
    // A person authorizes only their own organization's apps (the sign-in looks
    // for them there); a grant across organizations is never honoured.
    if user.org_id != client.app.org_id {
        return Err(OAuthError::invalid_grant("the user is not of this app's organization").into());
    }
    let policy = issuer.policy;
    let target = match &grant.audience {
        Some(aud) => TokenTarget::from_api(client.api_by_audience(aud).ok_or_else(|| {
            OAuthError::invalid_grant("the API this authorization was for no longer exists")
        })?),
        None => TokenTarget::userinfo(&policy.issuer),
    };
    let minted = mint(
        AccessTokenPlan {
            target,
            scope: scope.clone(),
            subject: user.id.clone(),
            client_id: client.app.client_id.clone(),
            org_id: user.org_id.clone(),
            role: user.role.clone(),
            permissions: acting.permissions.clone(),
            groups: user.groups.clone(),
            generation: client.app.generation,
            grant_id: Some(grant.id.clone()),
            secret_id: issuer.secret_id.map(str::to_owned),
            act: None,
        },
        &policy.issuer,
        issuer.now,
        issuer.signer,
        issuer.dpop_jkt,
    )?;
    let id_token = if scope.contains("openid") {
        let claims = id_token::claims(IdTokenInput {
            issuer: &policy.issuer,
            client_id: &client.app.client_id,
            user,
            scope: &scope,
            requested: &grant.claims,
            nonce,
            auth_time: grant.auth_time,
            sid: grant.sid.as_deref(),
            amr: &grant.amr,
            access_token: &minted.access_token,
            now: issuer.now,
        });
        let key = issuer
            .signer
            .active(SigningAlg::RS256)
            .ok_or(MintError::NoKey(SigningAlg::RS256))?;
        let body = serde_json::to_vec(&claims).map_err(|_| MintError::Serialize)?;
        Some(key.sign_jwt(&body).map_err(MintError::from)?)
    } else {
        None
    };
    Ok(UserTokens {
        set: TokenSet {
            access_token: minted.access_token,
            expires_in: minted.expires_in,
            scope,
            refresh_token: None,
            id_token,
        },
        reference: minted.reference,
    })
}

/// A new refresh token of `grant`'s family: the secret, and the record to store.
pub fn new_refresh_token<S: ?Sized>(
    grant: &Grant,
    scope: &ScopeSet,
    issuer: &Issuer<'_, S>,
) -> (String, RefreshToken) {
    let secret = secret::random_token();
    let policy = issuer.policy;
    let record = RefreshToken {
        digest: secret::digest(&secret),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        scopes: scope.to_vec(),
        // A successor never outlives its family.
        expires_at: (issuer.now + policy.refresh_ttl)
            .min(family_deadline(grant, policy.refresh_family_max_age)),
        used_at: None,
        dpop_jkt: issuer.dpop_jkt.map(str::to_owned),
    };
    (secret, record)
}

/// A security event in the app's organization's audit log, by the app.
pub async fn security_event<S: AuditStore + ?Sized>(
    store: &S,
    client: &ClientContext,
    action: &str,
    grant_id: &str,
    now: UnixTime,
    detail: &str,
) -> Result<(), StoreError> {
    let app = &client.app;
    let actor = Actor {
        kind: ActorKind::App,
        id: app.client_id.clone(),
        name: app.name.clone(),
        org_id: Some(app.org_id.clone()),
        address: "token endpoint".into(),
    };
    let event = AuditEvent::new(
        &actor,
        &app.org_id,
        now,
        action,
        grant_id,
        format!("{detail} (app `{}`)", app.name),
    );
    store.record_security_event(&event).await
}
