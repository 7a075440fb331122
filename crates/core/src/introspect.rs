//! Token introspection (RFC 7662). Who may ask: an API about tokens whose audience
//! it is, an app about its own tokens. A token is active only while its signature
//! (or stored digest) checks out, it has not expired, its app still exists and is
//! enabled, the app's credential generation has not moved on (rotate-secret,
//! set-on-behalf-of), the client secret it was issued with (`csid`) has been
//! neither retired nor reached its expiry, and its acting user is still active and was not deactivated
//! since the token was issued (a re-activation revives nothing). Anything else, including
//! a token the caller may not see, is `{"active": false}` (§2.2).

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::context::ContextSource;
use crate::context::acting_user;
use crate::grant::refresh_token::user_may_authorize;
use crate::grant::token_exchange::SubjectTokens;
use crate::jose::{peek_kid, peek_typ};
use crate::model::{Api, App, AppStatus};
use crate::ports::{Store, StoreError, TokenStore};
use crate::secret;
use crate::token::{AccessClaims, Signer};

/// The authenticated party asking.
#[derive(Debug, Clone)]
pub enum Introspector {
    Api(Api),
    App(App),
}

pub const MAX_TOKEN_LEN: usize = 8 * 1024;

impl Introspector {
    /// May this party see a token with these claims? An API sees tokens addressed
    /// to it, an app its own (§2.2: anything else is inactive to it).
    pub fn sees(&self, claims: &AccessClaims) -> bool {
        match self {
            Introspector::Api(api) => api.audience == claims.aud,
            Introspector::App(app) => app.client_id == claims.client_id,
        }
    }
}

/// The answer for a token that is not active (or not the caller's to see).
pub fn inactive() -> Value {
    json!({"active": false})
}

pub async fn introspect(
    token: &str,
    who: &Introspector,
    now: UnixTime,
    signer: &dyn Signer,
    store: &dyn Store,
    contexts: &dyn ContextSource,
) -> Result<Value, StoreError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(inactive());
    }
    let Some(claims) = claims_of(token, signer, store).await? else {
        return Ok(inactive());
    };
    if !who.sees(&claims)
        || claims.exp <= now
        || !still_valid(&claims, now, store, contexts).await?
    {
        return Ok(inactive());
    }
    Ok(active_answer(&claims))
}

/// The answer for an active token the caller may see.
pub fn active_answer(claims: &AccessClaims) -> Value {
    // `gid`, `cgen` and `csid` (extension members, RFC 7662 §2.2) let a gateway apply the
    // revocation feed to the answers it caches exactly as it does to JWTs.
    let mut answer = json!({
        "active": true,
        "token_type": "Bearer",
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
        "org": claims.org,
        "role": claims.role,
        "permissions": claims.permissions,
        "groups": claims.groups,
        "cgen": claims.cgen,
    });
    if let Some(gid) = &claims.gid {
        answer["gid"] = json!(gid);
    }
    if let Some(csid) = &claims.csid {
        answer["csid"] = json!(csid);
    }
    // RFC 8693 §4.1: who acts for the subject (exchanged tokens).
    if let Some(act) = &claims.act {
        answer["act"] = json!(act);
    }
    // RFC 9449 §6.2: a bound token's key, and its type.
    if let Some(cnf) = &claims.cnf {
        answer["cnf"] = json!(cnf);
        answer["token_type"] = json!("DPoP");
    }
    answer
}

async fn claims_of(
    token: &str,
    signer: &dyn Signer,
    tokens: &dyn TokenStore,
) -> Result<Option<AccessClaims>, StoreError> {
    if token.bytes().filter(|b| *b == b'.').count() == 2 {
        let Some(key) = peek_kid(token).and_then(|kid| signer.by_kid(&kid)) else {
            return Ok(None);
        };
        let Some(body) = key.verify(token) else {
            return Ok(None);
        };
        // RFC 9068 §4: only `at+jwt` is an access token; an ID token (or any other
        // JWT this server signs) is refused whatever its claims.
        if !peek_typ(token).is_some_and(|t| is_access_token_typ(&t)) {
            return Ok(None);
        }
        return Ok(serde_json::from_slice(&body).ok());
    }
    match tokens.reference_token(&secret::digest(token)).await {
        Ok(rec) => Ok(serde_json::from_value(rec.claims).ok()),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `typ: at+jwt`, also spelled `application/at+jwt` (RFC 9068 §2.1, RFC 7515 §4.1.9).
pub fn is_access_token_typ(typ: &str) -> bool {
    let t = typ.strip_prefix("application/").unwrap_or(typ);
    t.eq_ignore_ascii_case("at+jwt")
}

/// Is everything behind these claims still standing? The token itself not revoked;
/// its app present, enabled and on the same credential generation; the secret it
/// was issued with still active at `now`; and either its acting user (machine
/// tokens) or its grant and authorizing user (user tokens).
pub async fn still_valid(
    claims: &AccessClaims,
    now: UnixTime,
    store: &dyn Store,
    contexts: &dyn ContextSource,
) -> Result<bool, StoreError> {
    let ctx = match contexts.client_context(&claims.client_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    if ctx.app.status != AppStatus::Active || ctx.app.generation != claims.cgen {
        return Ok(false);
    }
    if let Some(secret_id) = &claims.csid
        && ctx.active_secret(secret_id, now).is_none()
    {
        return Ok(false);
    }
    if store.is_access_token_revoked(&claims.jti).await? {
        return Ok(false);
    }
    let Some(gid) = &claims.gid else {
        return Ok(ctx.acting.as_ref().is_some_and(|a| {
            a.user.id == claims.sub && a.is_active() && !a.user.ended_before(claims.iat)
        }));
    };
    let grant = match store.grant(gid).await {
        Ok(g) => g,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    if grant.revoked_at.is_some() || grant.user_id != claims.sub {
        return Ok(false);
    }
    let user = match store.user_by_id(&grant.user_id).await {
        // A person authorizes only their own organization's apps.
        Ok(u) if u.ended_before(claims.iat) || u.org_id != ctx.app.org_id => return Ok(false),
        Ok(u) => Some(acting_user(store, u).await?),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    Ok(user_may_authorize(user.as_ref()).is_ok())
}

/// Verified, unexpired, still-valid claims of an access token, for userinfo and
/// revocation: `None` for anything else.
pub async fn live_claims(
    token: &str,
    now: UnixTime,
    signer: &dyn Signer,
    store: &dyn Store,
    contexts: &dyn ContextSource,
) -> Result<Option<AccessClaims>, StoreError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    match claims_of(token, signer, store).await? {
        Some(c) if c.exp > now && still_valid(&c, now, store, contexts).await? => Ok(Some(c)),
        _ => Ok(None),
    }
}

/// The tokens a token exchange presents, read by [`live_claims`].
pub struct LiveTokens<'a> {
    pub signer: &'a dyn Signer,
    pub store: &'a dyn Store,
    pub contexts: &'a dyn ContextSource,
}

#[async_trait::async_trait]
impl SubjectTokens for LiveTokens<'_> {
    async fn live_access_token(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Option<AccessClaims>, StoreError> {
        live_claims(token, now, self.signer, self.store, self.contexts).await
    }
}

/// Verified claims regardless of liveness (revocation needs to find ended tokens too).
pub async fn verified_claims(
    token: &str,
    signer: &dyn Signer,
    store: &dyn Store,
) -> Result<Option<AccessClaims>, StoreError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    claims_of(token, signer, store).await
}
