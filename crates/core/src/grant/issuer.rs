//! What every grant issues with, bundled once per request: the store ports, the
//! signer, the policy (issuer URL, lifetimes) and the time. A grant takes an
//! [`Issuer`] and answers with a [`TokenSet`] or a [`TokenError`]; it never reads
//! the wall clock or configuration itself.

use crate::clock::UnixTime;
use crate::error::OAuthError;
use crate::ports::{Store, StoreError};
use crate::scope::ScopeSet;
use crate::token::{MintError, Signer};

/// Lifetimes and the issuer, from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub issuer: String,
    pub code_ttl: i64,
    pub refresh_ttl: i64,
    /// The absolute lifetime of a refresh-token family, from the authorization.
    pub refresh_family_max_age: i64,
}

/// The store, signer, policy and time one token request is answered with.
/// `S` is the store; each grant asks only for the ports it touches.
pub struct Issuer<'a, S: ?Sized = dyn Store> {
    pub store: &'a S,
    pub signer: &'a dyn Signer,
    pub policy: &'a Policy,
    pub now: UnixTime,
    /// The id of the client secret the request was authenticated with: the
    /// tokens issued name it (`csid`) and end when it is retired.
    pub secret_id: Option<&'a str>,
    /// The thumbprint of the key of the request's DPoP proof (RFC 9449): the
    /// access token and refresh tokens issued now are bound to it.
    pub dpop_jkt: Option<&'a str>,
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

/// Why a token request failed: refused (an OAuth error for the client), or the
/// store or signing failed underneath.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mint(#[from] MintError),
}
