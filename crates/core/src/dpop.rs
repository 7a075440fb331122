//! DPoP proofs (RFC 9449): the one check shared by the token endpoint, userinfo
//! and the gateway. A proof is a JWS whose header carries its own public key
//! (`jwk`); it proves that the caller holds the private half, for one method and
//! URL, at one moment, once. This module parses and verifies a proof (one JSON
//! parse of the header, one key parse, one signature verification), computes
//! the key's RFC 7638 thumbprint (what `cnf.jkt` binds a token to), keeps the
//! bounded replay cache of `jti`s, and makes server nonces (§8). It does no I/O
//! and never trusts the proof's `alg` beyond the allow-list.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The proof's media type (§4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// The signature algorithms accepted in proofs, as discovery lists them
/// (`dpop_signing_alg_values_supported`) and challenges name them (`algs`).
pub const ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];
/// `algs` as a challenge parameter value.
pub const ALGS_LIST: &str = "ES256 RS256 PS256 EdDSA";
/// A proof longer than this is refused unread (an RSA-4096 key fits easily).
pub const MAX_PROOF_LEN: usize = 4096;
/// The default window around the server's time in which a proof's `iat` must fall.
pub const DEFAULT_WINDOW_SECS: i64 = 60;
const MAX_JTI_LEN: usize = 256;

/// The confirmation claim of a bound token (RFC 9449 §6.1, RFC 7800).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    pub jkt: String,
}

/// Why a proof was refused. Each maps to `invalid_dpop_proof` but
/// [`ProofError::UseNonce`], which is `use_dpop_nonce` (§8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("a DPoP proof (the DPoP header) is required")]
    Missing,
    #[error("the DPoP proof is malformed")]
    Malformed,
    #[error("more than one DPoP header")]
    Several,
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Type,
    #[error("the DPoP proof's algorithm is not accepted")]
    Algorithm,
    #[error("the DPoP proof's jwk is not a usable public key")]
    Key,
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    #[error("the DPoP proof is for another method")]
    Method,
    #[error("the DPoP proof is for another URL")]
    Url,
    #[error("the DPoP proof's iat is outside the accepted window")]
    Stale,
    #[error("the DPoP proof's ath does not match the access token")]
    Ath,
    #[error("the DPoP proof was already used")]
    Replayed,
    #[error("the DPoP proof is signed with another key than the token is bound to")]
    WrongKey,
    #[error("the server requires a fresh DPoP nonce")]
    UseNonce,
    #[error("too many DPoP proofs in flight; try again")]
    Busy,
}

impl ProofError {
    /// The error code of the answer (RFC 9449 §5, §7.1, §8).
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }

    /// A fixed word for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProofError::Missing => "dpop_missing",
            ProofError::Malformed => "dpop_malformed",
            ProofError::Several => "dpop_several",
            ProofError::Type => "dpop_type",
            ProofError::Algorithm => "dpop_algorithm",
            ProofError::Key => "dpop_key",
            ProofError::Signature => "dpop_signature",
            ProofError::Method => "dpop_method",
            ProofError::Url => "dpop_url",
            ProofError::Stale => "dpop_stale",
            ProofError::Ath => "dpop_ath",
            ProofError::Replayed => "dpop_replayed",
            ProofError::WrongKey => "dpop_wrong_key",
            ProofError::UseNonce => "dpop_nonce",
            ProofError::Busy => "dpop_busy",
        }
    }
}

/// What the proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method (`htm`).
    pub method: &'a str,
    /// The request's URL as the client addressed it; query and fragment are ignored.
    pub url: &'a str,
    pub now: i64,
    /// `iat` must be within `now ± window`.
    pub window: i64,
    /// The access token presented with the proof (`ath`); `None` at the token endpoint.
    pub access_token: Option<&'a str>,
}

/// A proof whose signature and claims held (not yet checked against replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Value,
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// Verifies `proof` for `expected` (§4.3 steps 1–11, except the replay and
/// nonce checks, which need state: [`ReplayCache`], [`Nonces`]).
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::Malformed);
    }
    let (signing_input, sig_b64) = proof.rsplit_once('.').ok_or(ProofError::Malformed)?;
    let (header_b64, claims_b64) = signing_input.split_once('.').ok_or(ProofError::Malformed)?;
    if claims_b64.contains('.') {
        return Err(ProofError::Malformed);
    }
    let header = B64.decode(header_b64).map_err(|_| ProofError::Malformed)?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| ProofError::Malformed)?;
    if header.typ.as_deref() != Some(PROOF_TYP) {
        return Err(ProofError::Type);
    }
    if header.crit.is_some() {
        return Err(ProofError::Malformed);
    }
    if !ALGS.contains(&header.alg.as_str()) {
        return Err(ProofError::Algorithm);
    }
    let key = JwkKey::parse(&header.jwk, &header.alg)?;
    let sig = B64.decode(sig_b64).map_err(|_| ProofError::Signature)?;
    key.verify(signing_input.as_bytes(), &sig)?;
    let claims = B64.decode(claims_b64).map_err(|_| ProofError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&claims).map_err(|_| ProofError::Malformed)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(ProofError::Malformed);
    }
    if claims.htm != expected.method {
        return Err(ProofError::Method);
    }
    if !same_url(&claims.htu, expected.url) {
        return Err(ProofError::Url);
    }
    if claims.iat.abs_diff(expected.now) > expected.window.unsigned_abs() {
        return Err(ProofError::Stale);
    }
    match (expected.access_token, claims.ath.as_deref()) {
        (None, _) => {}
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), _) => return Err(ProofError::Ath),
    }
    Ok(Proof {
        jkt: key.thumbprint,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

/// `ath` (§4.2): base64url(SHA-256(access token)).
pub fn access_token_hash(token: &str) -> String {
    B64.encode(Sha256::digest(token.as_bytes()))
}

/// §4.3 step 9: compare without query and fragment, after syntax-based
/// normalisation (scheme and host case, default port, dot segments).
fn same_url(htu: &str, expected: &str) -> bool {
    // The usual case, without parsing: the client wrote the URL as we see it.
    let bare = |s: &str| s.split(['?', '#']).next().unwrap_or(s).len();
    if htu[..bare(htu)] == expected[..bare(expected)] {
        return true;
    }
    let norm = |s: &str| {
        let mut u = url::Url::parse(s).ok()?;
        u.set_query(None);
        u.set_fragment(None);
        Some(u)
    };
    match (norm(htu), norm(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The proof's public key, parsed once, with its thumbprint.
struct JwkKey {
    bytes: KeyBytes,
    thumbprint: String,
}

enum KeyBytes {
    Raw(&'static dyn signature::VerificationAlgorithm, Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        params: &'static signature::RsaParameters,
    },
}

impl JwkKey {
    /// §4.3 step 5–6: a public key of a kind that matches `alg`; a private
    /// member anywhere is refused.
    fn parse(jwk: &Value, alg: &str) -> Result<JwkKey, ProofError> {
        let obj = jwk.as_object().ok_or(ProofError::Key)?;
        const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
        if PRIVATE.iter().any(|m| obj.contains_key(*m)) {
            return Err(ProofError::Key);
        }
        let s = |k: &str| obj.get(k).and_then(Value::as_str).ok_or(ProofError::Key);
        let b = |k: &str| {
            s(k).and_then(|v| {
                if v.len() > 1024 {
                    return Err(ProofError::Key);
                }
                B64.decode(v).map_err(|_| ProofError::Key)
            })
        };
        let (bytes, canonical) = match (s("kty")?, alg) {
            ("EC", "ES256") => {
                if s("crv")? != "P-256" {
                    return Err(ProofError::Key);
                }
                let (x, y) = (b("x")?, b("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(ProofError::Key);
                }
                let canonical = format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    s("x")?,
                    s("y")?
                );
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (
                    KeyBytes::Raw(&signature::ECDSA_P256_SHA256_FIXED, point),
                    canonical,
                )
            }
            ("OKP", "EdDSA") => {
                if s("crv")? != "Ed25519" {
                    return Err(ProofError::Key);
                }
                let x = b("x")?;
                if x.len() != 32 {
                    return Err(ProofError::Key);
                }
                let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, s("x")?);
                (KeyBytes::Raw(&signature::ED25519, x), canonical)
            }
            ("RSA", "RS256" | "PS256") => {
                let (n, e) = (b("n")?, b("e")?);
                let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?);
                let params = if alg == "RS256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                (KeyBytes::Rsa { n, e, params }, canonical)
            }
            _ => return Err(ProofError::Key),
        };
        Ok(JwkKey {
            bytes,
            thumbprint: B64.encode(Sha256::digest(canonical.as_bytes())),
        })
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), ProofError> {
        let verified = match &self.bytes {
            KeyBytes::Raw(alg, k) => UnparsedPublicKey::new(*alg, k).verify(message, sig),
            KeyBytes::Rsa { n, e, params } => {
                RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
        };
        verified.map_err(|_| ProofError::Signature)
    }
}

/// Proofs a replay cache remembers by default: one per proof accepted in the
/// last window, so about 16,000 proofs/s sustained at the default 60 s window
/// (~60 bytes each when full).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// The `jti`s seen recently, per key (§11.1): bounded. An entry lives until
/// its proof's `iat` leaves the window (`iat + window`: a replay after that
/// fails the `iat` check anyway). When full of live entries the cache refuses
/// new proofs ([`ProofError::Busy`]) rather than forgetting one that could
/// then be replayed; and one key may hold at most a quarter of it, so a
/// client spending proofs as fast as it can fills its own share, not the
/// cache every other client needs.
pub struct ReplayCache {
    capacity: usize,
    per_key: usize,
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Proof (key + jti digest) → until when it is remembered.
    proofs: HashMap<u128, i64>,
    /// Entries by expiry, soonest first: (until, proof, key).
    expiry: BinaryHeap<Reverse<(i64, u128, u64)>>,
    /// Live entries per key (thumbprint digest).
    per_key: HashMap<u64, usize>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            per_key: (capacity / 4).max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Records `proof`'s `jti`; `Err(Replayed)` when it was seen before.
    pub fn check(&self, proof: &Proof, now: i64, window: i64) -> Result<(), ProofError> {
        let digest = Sha256::new()
            .chain_update(proof.jkt.as_bytes())
            .chain_update([0])
            .chain_update(proof.jti.as_bytes())
            .finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        let key = u128::from_le_bytes(b);
        let owner = {
            let d = Sha256::digest(proof.jkt.as_bytes());
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[..8]);
            u64::from_le_bytes(b)
        };
        let Ok(mut seen) = self.inner.lock() else {
            return Err(ProofError::Busy);
        };
        seen.forget_expired(now);
        if seen.proofs.contains_key(&key) {
            return Err(ProofError::Replayed);
        }
        let held = seen.per_key.get(&owner).copied().unwrap_or(0);
        if seen.proofs.len() >= self.capacity || held >= self.per_key {
            return Err(ProofError::Busy);
        }
        // `iat` passed the window check, so this is at most now + 2 × window;
        // never before now + 1 (a proof is remembered at least a second).
        let until = proof.iat.saturating_add(window.max(1)).max(now + 1);
        seen.proofs.insert(key, until);
        seen.expiry.push(Reverse((until, key, owner)));
        *seen.per_key.entry(owner).or_insert(0) += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|s| s.proofs.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Seen {
    fn forget_expired(&mut self, now: i64) {
        while let Some(Reverse((until, key, owner))) = self.expiry.peek().copied() {
            if until > now {
                break;
            }
            self.expiry.pop();
            if self.proofs.get(&key) == Some(&until) {
                self.proofs.remove(&key);
            }
            if let Some(n) = self.per_key.get_mut(&owner) {
                *n -= 1;
                if *n == 0 {
                    self.per_key.remove(&owner);
                }
            }
        }
    }
}

/// Server nonces (§8): stateless, an HMAC of a time step under a key every
/// instance of the deployment derives alike (behind a load balancer, a nonce
/// one instance handed out is good at the others). A nonce is good in its step
/// and the next (`step` seconds each), so a client that fetched one keeps it a
/// while.
pub struct Nonces {
    key: hmac::Key,
    step: i64,
}

impl Nonces {
    /// `secret`: the same on every instance (see
    /// [`crate::jose::KeyEncryptionKey::derive`]).
    pub fn new(secret: &[u8; 32], step: i64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            step: step.max(1),
        }
    }

    fn for_step(&self, n: i64) -> String {
        let tag = hmac::sign(&self.key, &n.to_be_bytes());
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&tag.as_ref()[..16]);
        B64.encode(out)
    }

    /// The nonce to hand out now (`DPoP-Nonce`).
    pub fn current(&self, now: i64) -> String {
        self.for_step(now.div_euclid(self.step))
    }

    /// Whether `nonce` is this server's, of the current or the previous step.
    pub fn accepts(&self, nonce: Option<&str>, now: i64) -> bool {
        let Some(nonce) = nonce else { return false };
        let n = now.div_euclid(self.step);
        [n, n - 1].iter().any(|s| {
            let want = self.for_step(*s);
            bool::from(want.as_bytes().ct_eq(nonce.as_bytes()))
        })
    }
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
