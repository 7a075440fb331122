//! JWS verification of access tokens (RFC 7515, RFC 9068) with public keys parsed
//! once. The order matters: size, shape, header (`alg` on the allow-list, never
//! `none`; `typ` `at+jwt`; no `crit`), and only then a key is looked up and the
//! signature checked; the claims are read only after the signature holds.
//!
//! There is no HMAC here at all, so a token cannot make us use a public key as an
//! HMAC secret ("alg confusion"): a key verifies only its own algorithm.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::Value;

use crate::principal::Claims;

pub const MAX_TOKEN_LEN: usize = 8 * 1024;
const MAX_HEADER_LEN: usize = 1024;
const MAX_KID_LEN: usize = 128;

/// Signature algorithms a gateway may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    ES256,
    RS256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// Why a token was not accepted (each maps to `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token is not an access token (typ must be at+jwt)")]
    Type,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was revoked: {0}")]
    Revoked(&'static str),
    #[error("the token is not active")]
    Inactive,
}

impl TokenError {
    /// A fixed word for the error (the metrics' `outcome` label).
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed_token",
            TokenError::Algorithm => "algorithm_not_accepted",
            TokenError::Type => "not_an_access_token",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Signature => "bad_signature",
            TokenError::Issuer => "wrong_issuer",
            TokenError::Audience => "wrong_audience",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Revoked(_) => "revoked",
            TokenError::Inactive => "inactive",
        }
    }
}

/// A public verification key from the issuer's JWKS.
pub struct PublicKey {
    pub kid: String,
    pub alg: Alg,
    key: ParsedPublicKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses one JWK. `None` for keys we will not use: not for signing, symmetric
    /// (`oct`), unknown curves or algorithms, or inconsistent `kty`/`alg`.
    pub fn from_jwk(jwk: &Value) -> Option<PublicKey> {
        let s = |k: &str| jwk.get(k).and_then(Value::as_str);
        let b = |k: &str| s(k).and_then(|v| B64.decode(v).ok());
        if s("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let kid = s("kid").filter(|k| !k.is_empty() && k.len() <= MAX_KID_LEN)?;
        let (alg, key) = match (s("kty")?, s("crv")) {
            ("EC", Some("P-256")) => {
                let (x, y) = (b("x")?, b("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let k = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).ok()?;
                (Alg::ES256, k)
            }
            ("OKP", Some("Ed25519")) => {
                let k = ParsedPublicKey::new(&signature::ED25519, b("x")?).ok()?;
                (Alg::EdDSA, k)
            }
            ("RSA", None) => {
                let (n, e) = (b("n")?, b("e")?);
                let k = RsaPublicKeyComponents { n: &n, e: &e }
                    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                    .ok()?;
                (Alg::RS256, k)
            }
            _ => return None,
        };
        if s("alg").is_some_and(|a| Alg::parse(a) != Some(alg)) {
            return None;
        }
        Some(PublicKey {
            kid: kid.to_owned(),
            alg,
            key,
        })
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A token whose header passed and whose key is still to be found.
pub struct Unverified<'a> {
    pub kid: String,
    pub alg: Alg,
    signing_input: &'a str,
    signature_b64: &'a str,
    claims_b64: &'a str,
}

/// Checks the token's shape and header against `allowed`, touching no key.
pub fn parse<'a>(token: &'a str, allowed: &[Alg]) -> Result<Unverified<'a>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header_b64, claims_b64) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
    if header_b64.len() > MAX_HEADER_LEN || claims_b64.contains('.') {
        return Err(TokenError::Malformed);
    }
    let header = B64.decode(header_b64).map_err(|_| TokenError::Malformed)?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
    // RFC 8725 §3.1: the algorithm comes from our allow-list, never from the token.
    let alg = Alg::parse(&header.alg)
        .filter(|a| allowed.contains(a))
        .ok_or(TokenError::Algorithm)?;
    // RFC 9068 §4: the `typ` header is `at+jwt` (or `application/at+jwt`).
    let typ = header.typ.as_deref().unwrap_or_default();
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    if !typ.eq_ignore_ascii_case("at+jwt") {
        return Err(TokenError::Type);
    }
    // RFC 7515 §4.1.11: we understand no critical extensions.
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty() && k.len() <= MAX_KID_LEN)
        .ok_or(TokenError::UnknownKey)?;
    Ok(Unverified {
        kid,
        alg,
        signing_input,
        signature_b64,
        claims_b64,
    })
}

impl Unverified<'_> {
    /// Checks only that `key` (same `kid` and `alg`) signed this token; the
    /// claims are still unread (public for the fuzz targets).
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), TokenError> {
        if key.alg != self.alg || key.kid != self.kid {
            return Err(TokenError::UnknownKey);
        }
        let sig = B64
            .decode(self.signature_b64)
            .map_err(|_| TokenError::Signature)?;
        key.key
            .verify_sig(self.signing_input.as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)
    }

    /// Verifies the signature with `key` and returns the claims.
    pub(crate) fn verify(&self, key: &PublicKey) -> Result<Claims, TokenError> {
        self.verify_signature(key)?;
        let body = B64
            .decode(self.claims_b64)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)
    }
}

/// What the claims of a verified token must say.
#[derive(Debug, Clone)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: i64,
}

impl Expect {
    pub(crate) fn check(&self, c: &Claims, now: i64) -> Result<(), TokenError> {
        if c.iss.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(TokenError::Issuer);
        }
        if !c.aud.contains(&self.audience) {
            return Err(TokenError::Audience);
        }
        if c.exp.saturating_add(self.leeway_secs) <= now {
            return Err(TokenError::Expired);
        }
        let not_before = c.nbf.unwrap_or(c.iat).max(c.iat);
        if not_before.saturating_sub(self.leeway_secs) > now {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        B64.encode(v)
    }

    #[test]
    fn alg_none_and_unlisted_algorithms_are_refused_before_any_key() {
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#), b64("{}"));
        assert_eq!(parse(&none, &Alg::ALL).err(), Some(TokenError::Algorithm));
        let hs = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#),
            b64("{}")
        );
        assert_eq!(parse(&hs, &Alg::ALL).err(), Some(TokenError::Algorithm));
        let rs = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","typ":"at+jwt","kid":"k"}"#),
            b64("{}")
        );
        assert_eq!(parse(&rs, &[Alg::ES256]).err(), Some(TokenError::Algorithm));
    }

    #[test]
    fn only_access_tokens_pass() {
        let id_token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"ES256","typ":"JWT","kid":"k"}"#),
            b64("{}")
        );
        assert_eq!(parse(&id_token, &Alg::ALL).err(), Some(TokenError::Type));
        let ok = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"ES256","typ":"application/at+jwt","kid":"k"}"#),
            b64("{}")
        );
        assert!(parse(&ok, &Alg::ALL).is_ok());
        for junk in ["", "a", "a.b", "a.b.c.d", "%%%.b.c"] {
            assert!(parse(junk, &Alg::ALL).is_err(), "{junk}");
        }
    }

    #[test]
    fn symmetric_and_foreign_keys_are_never_loaded() {
        let oct = serde_json::json!({"kty":"oct","k":"c2VjcmV0","kid":"h","alg":"HS256"});
        assert!(PublicKey::from_jwk(&oct).is_none());
        let enc = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":B64.encode([7u8;32]),"kid":"e","use":"enc"});
        assert!(PublicKey::from_jwk(&enc).is_none());
    }
}
