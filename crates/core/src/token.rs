//! Access tokens: the claims of RFC 9068 plus Gatehouse's own (org, role,
//! permissions, groups, and `cgen`, the app's credential generation that ends the
//! token when the secret is regenerated or the on-behalf user changes, and
//! `csid`, the secret the token was issued with, which ends it when that secret
//! is retired), minted as a signed JWT or
//! as an opaque reference token whose digest the store keeps.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::dpop::Cnf;
use crate::jose::{JoseError, SigningKey};
use crate::model::{Api, ReferenceToken, SigningAlg, TokenFormat};
use crate::scope::ScopeSet;
use crate::secret;

/// Where an access token goes and how it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTarget {
    pub audience: String,
    pub format: TokenFormat,
    pub alg: SigningAlg,
    pub ttl: i64,
}

impl TokenTarget {
    pub fn from_api(api: &Api) -> Self {
        Self {
            audience: api.audience.clone(),
            format: api.token_format,
            alg: api.signing_alg,
            ttl: api.access_token_ttl,
        }
    }

    /// Tokens that only reach the userinfo endpoint (OIDC scopes, no API).
    pub fn userinfo(issuer: &str) -> Self {
        Self {
            audience: format!(
                "{}{}",
                issuer.trim_end_matches('/'),
                crate::discovery::USERINFO_PATH
            ),
            format: TokenFormat::Jwt,
            alg: SigningAlg::ES256,
            ttl: 3600,
        }
    }

    /// Tokens for Gatehouse's own admin API (`gatehouse:admin`).
    pub fn admin_api(issuer: &str) -> Self {
        Self {
            audience: admin_api_audience(issuer),
            format: TokenFormat::Jwt,
            alg: SigningAlg::ES256,
            ttl: 3600,
        }
    }
}

/// `{issuer}/api/v1`: the audience the admin API accepts.
pub fn admin_api_audience(issuer: &str) -> String {
    format!(
        "{}{}",
        issuer.trim_end_matches('/'),
        crate::discovery::ADMIN_API_PATH
    )
}

/// What a grant decided to issue.
#[derive(Debug, Clone)]
pub struct AccessTokenPlan {
    pub target: TokenTarget,
    pub scope: ScopeSet,
    pub subject: String,
    pub client_id: String,
    pub org_id: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub groups: Vec<String>,
    pub generation: i64,
    /// The user's grant (authorization code flow); `None` for machine tokens.
    pub grant_id: Option<String>,
    /// The client secret the token request was authenticated with.
    pub secret_id: Option<String>,
    /// Who acts for the subject (RFC 8693 §4.1); `None` but for exchanged tokens.
    pub act: Option<Act>,
}

/// The actor claim (RFC 8693 §4.1): the party acting, and nested in it the one
/// that acted before (the delegation chain, most recent outermost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// How many actors the chain names (this one included).
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The id of the client secret the token was issued with: retiring that
    /// secret (or its expiry) ends the token. Absent in tokens issued before
    /// apps had more than one secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1): presented only with
    /// a proof signed by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
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

/// Mints `plan`'s token; `jkt`, the thumbprint of the request's DPoP key, binds it.
pub fn mint(
    plan: AccessTokenPlan,
    issuer: &str,
    now: UnixTime,
    signer: &dyn Signer,
    jkt: Option<&str>,
) -> Result<Minted, MintError> {
    let ttl = plan.target.ttl;
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: plan.subject,
        aud: plan.target.audience.clone(),
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
        gid: plan.grant_id,
        csid: plan.secret_id,
        act: plan.act,
        cnf: jkt.map(|jkt| Cnf {
            jkt: jkt.to_owned(),
        }),
    };
    match plan.target.format {
        TokenFormat::Jwt => {
            let key = signer
                .active(plan.target.alg)
                .ok_or(MintError::NoKey(plan.target.alg))?;
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
