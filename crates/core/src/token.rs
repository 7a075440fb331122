//! Access tokens: the claims of RFC 9068 plus Gatehouse's own (org, role,
//! permissions, groups, and `cgen`, the app's credential generation that ends the
//! token when the secret or the on-behalf user changes), minted as a signed JWT or
//! as an opaque reference token whose digest the store keeps.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::jose::{JoseError, SigningKey};
use crate::model::{Api, ReferenceToken, SigningAlg, TokenFormat};
use crate::scope::ScopeSet;
use crate::secret;

/// What a grant decided to issue.
#[derive(Debug, Clone)]
pub struct AccessTokenPlan {
    pub api: Api,
    pub scope: ScopeSet,
    pub subject: String,
    pub client_id: String,
    pub org_id: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub groups: Vec<String>,
    pub generation: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub org: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub groups: Vec<String>,
    pub cgen: i64,
}

/// Finds signing keys: the active one per algorithm, any published one by `kid`.
pub trait Signer: Send + Sync {
    fn active(&self, alg: SigningAlg) -> Option<Arc<SigningKey>>;
    fn by_kid(&self, kid: &str) -> Option<Arc<SigningKey>>;
}

#[derive(Debug)]
pub struct Minted {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: ScopeSet,
    /// For reference tokens: the record the store must hold before the token is
    /// handed out.
    pub reference: Option<ReferenceToken>,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no active {0:?} signing key")]
    NoKey(SigningAlg),
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("claims serialisation failed")]
    Serialize,
}

pub fn mint(
    plan: AccessTokenPlan,
    issuer: &str,
    now: UnixTime,
    signer: &dyn Signer,
) -> Result<Minted, MintError> {
    let ttl = plan.api.access_token_ttl;
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: plan.subject,
        aud: plan.api.audience.clone(),
        client_id: plan.client_id,
        scope: plan.scope.to_string(),
        jti: secret::random_id(),
        iat: now,
        exp: now + ttl,
        org: plan.org_id,
        role: plan.role,
        permissions: plan.permissions,
        groups: plan.groups,
        cgen: plan.generation,
    };
    match plan.api.token_format {
        TokenFormat::Jwt => {
            let key = signer
                .active(plan.api.signing_alg)
                .ok_or(MintError::NoKey(plan.api.signing_alg))?;
            let body = serde_json::to_vec(&claims).map_err(|_| MintError::Serialize)?;
            Ok(Minted {
                access_token: key.sign_access_token(&body)?,
                expires_in: ttl,
                scope: plan.scope,
                reference: None,
            })
        }
        TokenFormat::Reference => {
            let token = secret::random_token();
            let record = ReferenceToken {
                digest: secret::digest(&token),
                client_id: claims.client_id.clone(),
                audience: claims.aud.clone(),
                expires_at: claims.exp,
                claims: serde_json::to_value(&claims).map_err(|_| MintError::Serialize)?,
            };
            Ok(Minted {
                access_token: token,
                expires_in: ttl,
                scope: plan.scope,
                reference: Some(record),
            })
        }
    }
}
