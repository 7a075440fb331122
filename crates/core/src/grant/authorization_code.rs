//! The authorization code grant (RFC 6749 §4.1), whole: issuing the code after
//! sign-in and consent, then exchanging it (§4.1.3, RFC 7636 §4.6).
//!
//! An exchange is two store calls, as a refresh is: one read of the code with
//! its grant context ([`GrantFlowStore::code_context`]), and one write that
//! claims the code and stores what the tokens need, all or nothing
//! ([`GrantFlowStore::claim_code_issuing`]): the tokens are minted in between.
//! A code is good for one attempt: a failed check burns it too. Of concurrent
//! exchanges of one code only one claims it; the others are replays, and a
//! replay revokes the grant (RFC 9700 §4.14.2), with whatever the winner got.

use crate::authorize::ValidAuthorize;
use crate::clock::UnixTime;
use crate::context::{ActingUser, ClientContext};
use crate::error::OAuthError;
use crate::grant::issuer::{Issuer, Policy, TokenError, TokenSet};
use crate::grant::refresh_token::user_may_authorize;
use crate::grant::user_tokens::{mint_user_tokens, new_refresh_token, security_event};
use crate::model::{App, AuthCode, Grant, GrantType, ReferenceToken, RefreshToken, Session};
use crate::pkce;
use crate::ports::{AuditStore, CodeContext, GrantFlowStore, GrantStore, Redeemed, StoreError};
use crate::request::AuthorizationCodeRequest;
use crate::scope::ScopeSet;
use crate::secret;

/// The store ports this grant touches.
pub trait CodeGrantStore: GrantFlowStore + AuditStore {}
impl<T: GrantFlowStore + AuditStore + ?Sized> CodeGrantStore for T {}

/// After sign-in and consent: records the grant and its code; returns the code.
pub async fn issue_code<S: GrantStore + ?Sized>(
    store: &S,
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
        scopes: req.scope.to_vec(),
        audience: req.target.as_ref().map(|t| t.audience.clone()),
        generation: app_generation,
        sid: Some(session.sid.clone()),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        created_at: now,
        revoked_at: None,
        claims: req.claims.clone(),
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

/// Exchanges a code for tokens (§4.1.3).
pub async fn handle<S: CodeGrantStore + ?Sized>(
    req: &AuthorizationCodeRequest,
    client: &ClientContext,
    issuer: &Issuer<'_, S>,
) -> Result<TokenSet, TokenError> {
    let store = issuer.store;
    let now = issuer.now;
    let digest = secret::digest(&req.code);
    let context = match store.code_context(&digest).await {
        Ok(Redeemed::Fresh(c)) => c,
        Ok(Redeemed::Replayed { grant_id }) => {
            return Err(replayed(store, client, &grant_id, now).await);
        }
        Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_grant("unknown authorization code").into());
        }
        Err(e) => return Err(e.into()),
    };
    let grant_id = context.code.grant_id.clone();
    match redeemed(client, context, req, issuer) {
        Ok(issued) => {
            let claimed = store
                .claim_code_issuing(
                    &digest,
                    issued.refresh.as_ref(),
                    issued.reference.as_ref(),
                    now,
                )
                .await?;
            if claimed {
                Ok(issued.set)
            } else {
                // Another exchange of this code claimed it since the read (or
                // its grant ended): this one is the replay.
                Err(replayed(store, client, &grant_id, now).await)
            }
        }
        Err(e) => {
            store.burn_code(&digest, now).await?;
            Err(e)
        }
    }
}

/// RFC 9700 §4.14.2 / RFC 6749 §4.1.2: a code presented again revokes its
/// grant and every token issued from it. Returns the error to answer with.
async fn replayed<S: CodeGrantStore + ?Sized>(
    store: &S,
    client: &ClientContext,
    grant_id: &str,
    now: UnixTime,
) -> TokenError {
    let revoked = async {
        match store.revoke_grant(grant_id, now).await {
            // Gone with its app: nothing left to revoke.
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
        security_event(store, client, "code.replayed", grant_id, now,
            "an authorization code was presented again; the grant and every token issued from it were revoked").await
    };
    match revoked.await {
        Ok(()) => OAuthError::invalid_grant(
            "the authorization code was already used; every token issued from it is revoked",
        )
        .into(),
        Err(e) => e.into(),
    }
}

/// Tokens minted for a code, and the records its one write stores.
struct Issued {
    set: TokenSet,
    refresh: Option<RefreshToken>,
    reference: Option<ReferenceToken>,
}

/// The checks and tokens of a code this caller redeemed first.
fn redeemed<S: CodeGrantStore + ?Sized>(
    client: &ClientContext,
    context: CodeContext,
    req: &AuthorizationCodeRequest,
    issuer: &Issuer<'_, S>,
) -> Result<Issued, TokenError> {
    let CodeContext {
        code: record,
        grant: context,
    } = context;
    let grant = &context.grant;
    check(&record, grant, &client.app, req, issuer.now)?;
    let acting = may_authorize(context.user)?;
    let scope = ScopeSet::from(grant.scopes.as_slice());
    let minted = mint_user_tokens(
        client,
        grant,
        &acting,
        scope,
        record.nonce.as_deref(),
        issuer,
    )?;
    let mut set = minted.set;
    let refresh = if set.scope.contains("offline_access") {
        let (secret, next) = new_refresh_token(grant, &set.scope, issuer);
        set.refresh_token = Some(secret);
        Some(next)
    } else {
        None
    };
    Ok(Issued {
        set,
        refresh,
        reference: minted.reference,
    })
}

/// The grant's user, if they still exist and may authorize apps.
fn may_authorize(user: Option<ActingUser>) -> Result<ActingUser, OAuthError> {
    let Some(acting) = user else {
        return Err(OAuthError::invalid_grant("the user no longer exists"));
    };
    user_may_authorize(Some(&acting))?;
    Ok(acting)
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code, its grant and the request agree.
pub fn check(
    code: &AuthCode,
    grant: &Grant,
    app: &App,
    req: &AuthorizationCodeRequest,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if code.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if !app.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this app is not allowed the authorization code grant",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the authorization was revoked"));
    }
    // The code is bound to the app's credential generation when it was issued:
    // a secret rotation or a disable/enable since then ends it, as it ends tokens.
    if grant.generation != app.generation {
        return Err(OAuthError::invalid_grant(
            "the app's credentials changed since this code was issued",
        ));
    }
    // §4.1.3: required and identical when the authorization request included it.
    if !code.redirect_uri.is_empty()
        && req.redirect_uri.as_deref() != Some(code.redirect_uri.as_str())
    {
        return Err(OAuthError::invalid_grant(
            "`redirect_uri` must be the one sent in the authorization request",
        ));
    }
    match (&code.code_challenge, req.code_verifier.as_deref()) {
        (Some(challenge), Some(v)) if pkce::verify(v, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "the code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "the authorization used PKCE: `code_verifier` is required",
        )),
        // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no code_challenge was sent for this code",
        )),
        (None, None) => Ok(()),
    }
}
