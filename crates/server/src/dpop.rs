//! DPoP (RFC 9449) at the server's own endpoints: the token endpoint checks a
//! request's proof and binds what it issues to the proof's key; userinfo checks
//! the proof that comes with a bound token. The proof itself is checked by
//! [`gatehouse_core::dpop`]; this module reads the header, keeps this
//! instance's replay cache and nonces, and writes the answers of §5 and §7.1.
//! It decides nothing about grants.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::dpop::{self, Expected, Nonces, ProofError, ReplayCache};
use serde_json::json;

use crate::state::AppState;

/// A server nonce is good for one to two of these.
const NONCE_STEP_SECS: i64 = 60;

pub struct DpopState {
    pub replay: ReplayCache,
    pub nonces: Nonces,
}

impl DpopState {
    /// Nonces under a key derived from the deployment's key-encryption key.
    pub fn new(kek: &gatehouse_core::jose::KeyEncryptionKey) -> Self {
        Self {
            replay: ReplayCache::new(gatehouse_core::dpop::DEFAULT_REPLAY_CAPACITY),
            nonces: Nonces::new(&kek.derive("gatehouse dpop nonces"), NONCE_STEP_SECS),
        }
    }
}

/// The request's one `DPoP` header, if it has one (§4.3 step 1: not several).
pub fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, ProofError> {
    let mut all = headers.get_all("dpop").iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(ProofError::Several);
    }
    first.to_str().map(Some).map_err(|_| ProofError::Malformed)
}

/// A refused proof at a token-style endpoint: 400 with the RFC 6749 §5.2 body
/// (§5), and a fresh `DPoP-Nonce` when nonces are in use.
pub struct TokenEndpointRefusal {
    pub error: ProofError,
    pub nonce: Option<String>,
}

impl IntoResponse for TokenEndpointRefusal {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.error.code(),
            "error_description": self.error.to_string(),
        });
        let mut resp = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(n) = self.nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert("dpop-nonce", n);
        }
        resp
    }
}

impl AppState {
    /// The nonce a token response hands out, when the token endpoint demands them.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.config
            .dpop_nonce
            .then(|| self.dpop.nonces.current(self.clock.now()))
    }

    /// Checks the token request's proof, if any, for `POST {issuer}{path}`:
    /// signature, claims, the server nonce (when demanded), then replay.
    /// Returns the key's thumbprint, `None` without a proof.
    pub fn token_request_key(
        &self,
        headers: &HeaderMap,
        path: &str,
    ) -> Result<Option<String>, TokenEndpointRefusal> {
        let refuse = |error| TokenEndpointRefusal {
            error,
            nonce: self.dpop_nonce(),
        };
        let Some(proof) = proof_header(headers).map_err(refuse)? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let url = format!("{}{path}", self.config.issuer);
        let window = self.config.dpop_window;
        let expected = Expected {
            method: "POST",
            url: &url,
            now,
            window,
            access_token: None,
        };
        let proof = dpop::verify(proof, &expected).map_err(refuse)?;
        if self.config.dpop_nonce && !self.dpop.nonces.accepts(proof.nonce.as_deref(), now) {
            return Err(refuse(ProofError::UseNonce));
        }
        self.dpop
            .replay
            .check(&proof, now, window)
            .map_err(refuse)?;
        Ok(Some(proof.jkt))
    }

    /// Checks the proof that comes with a bound token at one of this server's
    /// resource endpoints (userinfo): `method`, `{issuer}{path}`, `ath`, the key.
    pub fn resource_proof(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        token: &str,
        jkt: &str,
    ) -> Result<(), ProofError> {
        let proof = proof_header(headers)?.ok_or(ProofError::Missing)?;
        let now = self.clock.now();
        let url = format!("{}{path}", self.config.issuer);
        let window = self.config.dpop_window;
        let expected = Expected {
            method,
            url: &url,
            now,
            window,
            access_token: Some(token),
        };
        let proof = dpop::verify(proof, &expected)?;
        if proof.jkt != jkt {
            return Err(ProofError::WrongKey);
        }
        self.dpop.replay.check(&proof, now, window)
    }
}
