//! JWS signing and verification with keys held parsed in memory.
//!
//! Why not a JWT crate on the signing path: jsonwebtoken re-parses the private key
//! on every `encode` (≈0.2 ms per RS256 token, 3× the signature itself; see
//! ECOSYSTEM.md), so the compact serialisation is assembled here around cached
//! aws-lc-rs key pairs. The header of each key is constant and pre-encoded.
//! Independent libraries verify what this produces (tests use jsonwebtoken against
//! the published JWKS).
//!
//! Private keys are sealed (AES-256-GCM) with the operator's key-encryption key
//! before they are stored.

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::model::{KeyState, SigningAlg, StoredKey};

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("key generation failed")]
    KeyGen,
    #[error("stored key could not be opened: {0}")]
    Unseal(&'static str),
    #[error("signing failed")]
    Sign,
}

/// The operator's key-encryption key (32 bytes) that seals signing keys at rest.
/// Every instance of one deployment holds the same one, so keys derived from it
/// ([`KeyEncryptionKey::derive`]) are shared by them too.
pub struct KeyEncryptionKey(RandomizedNonceKey, hmac::Key);

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 {
            return None;
        }
        let aead = RandomizedNonceKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self(aead, hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// A 32-byte key for one purpose (`label`), the same on every instance and
    /// independent of the sealing key and of other labels' keys (HMAC-SHA256 of
    /// the label under the key-encryption key).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.1, label.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Parses the base64url text form (as written to the key file).
    pub fn from_text(text: &str) -> Option<Self> {
        let raw = B64.decode(text.trim()).ok()?;
        Self::from_bytes(&raw)
    }

    /// A new random key in its text form.
    pub fn generate_text() -> String {
        let mut k = [0u8; 32];
        crate::secret::fill(&mut k);
        B64.encode(k)
    }

    /// AES-256-GCM with a random nonce; `aad` binds the result to its purpose
    /// (a signing key's kid, or another use's own prefixed label).
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<String, JoseError> {
        let kid = aad;
        let mut buf = plain.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| JoseError::KeyGen)?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(B64.encode(out))
    }

    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, JoseError> {
        let kid = aad;
        let raw = B64
            .decode(sealed)
            .map_err(|_| JoseError::Unseal("not base64"))?;
        if raw.len() < 12 + 16 {
            return Err(JoseError::Unseal("too short"));
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| JoseError::Unseal("bad nonce"))?;
        let mut ct = ct.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut ct)
            .map_err(|_| JoseError::Unseal("wrong key-encryption key or corrupted key"))?;
        Ok(plain.to_vec())
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed signing key with its public JWK and pre-encoded JWS headers.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: UnixTime,
    pair: Pair,
    public_jwk: Value,
    at_header_b64: String,
    jwt_header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Makes a new key and its sealed form for the store.
    pub fn generate(
        alg: SigningAlg,
        state: KeyState,
        kek: &KeyEncryptionKey,
        now: UnixTime,
    ) -> Result<(SigningKey, StoredKey), JoseError> {
        let pkcs8 = match alg {
            SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der().map(|d| d.as_ref().to_vec()))
                .map_err(|_| JoseError::KeyGen)?,
            SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| JoseError::KeyGen)?,
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| JoseError::KeyGen)?,
        };
        let kid = crate::secret::random_token()[..16].to_owned();
        let stored = StoredKey {
            kid: kid.clone(),
            alg,
            state,
            sealed_private_key: kek.seal(&kid, &pkcs8)?,
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
        };
        let key = Self::from_pkcs8(kid, alg, state, now, &pkcs8)?;
        Ok((key, stored))
    }

    pub fn open(stored: &StoredKey, kek: &KeyEncryptionKey) -> Result<SigningKey, JoseError> {
        let pkcs8 = kek.open(&stored.kid, &stored.sealed_private_key)?;
        Self::from_pkcs8(
            stored.kid.clone(),
            stored.alg,
            stored.state,
            stored.created_at,
            &pkcs8,
        )
    }

    fn from_pkcs8(
        kid: String,
        alg: SigningAlg,
        state: KeyState,
        created_at: UnixTime,
        pkcs8: &[u8],
    ) -> Result<SigningKey, JoseError> {
        let bad = |_| JoseError::Unseal("not a valid PKCS#8 key for its algorithm");
        let (pair, mut jwk) = match alg {
            SigningAlg::RS256 => {
                let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                let jwk = json!({
                    "kty": "RSA",
                    "n": B64.encode(k.public_key().modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(k.public_key().exponent().big_endian_without_leading_zero()),
                });
                (Pair::Rsa(k), jwk)
            }
            SigningAlg::ES256 => {
                let k =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                        .map_err(bad)?;
                // Uncompressed SEC1 point: 0x04 || X (32) || Y (32).
                let p = k.public_key().as_ref();
                if p.len() != 65 {
                    return Err(JoseError::Unseal("unexpected P-256 public key length"));
                }
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])});
                (Pair::Ec(k), jwk)
            }
            SigningAlg::EdDSA => {
                let k = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(bad)?;
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key().as_ref())});
                (Pair::Ed(k), jwk)
            }
        };
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(kid.clone()));
            m.insert("alg".into(), Value::String(alg.as_str().into()));
            m.insert("use".into(), Value::String("sig".into()));
        }
        let header = |typ: &str| {
            B64.encode(json!({"alg": alg.as_str(), "typ": typ, "kid": kid}).to_string())
        };
        Ok(SigningKey {
            at_header_b64: header("at+jwt"),
            jwt_header_b64: header("JWT"),
            kid,
            alg,
            state,
            created_at,
            pair,
            public_jwk: jwk,
        })
    }

    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// An RFC 9068 access token (`typ: at+jwt`).
    pub fn sign_access_token(&self, claims: &[u8]) -> Result<String, JoseError> {
        self.sign_compact(&self.at_header_b64, claims)
    }

    /// A plain JWT (`typ: JWT`), e.g. an ID token.
    pub fn sign_jwt(&self, claims: &[u8]) -> Result<String, JoseError> {
        self.sign_compact(&self.jwt_header_b64, claims)
    }

    /// A JWT with its own `typ` (e.g. `logout+jwt`): rare, so the header is made here.
    pub fn sign_typed(&self, typ: &str, claims: &[u8]) -> Result<String, JoseError> {
        let header =
            B64.encode(json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid}).to_string());
        self.sign_compact(&header, claims)
    }

    fn sign_compact(&self, header_b64: &str, claims: &[u8]) -> Result<String, JoseError> {
        let mut out = String::with_capacity(header_b64.len() + claims.len() * 4 / 3 + 360);
        out.push_str(header_b64);
        out.push('.');
        B64.encode_string(claims, &mut out);
        let sig = self.sign_bytes(out.as_bytes())?;
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }

    fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    msg,
                    &mut sig,
                )
                .map_err(|_| JoseError::Sign)?;
                Ok(sig)
            }
            Pair::Ec(k) => k
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::Sign),
            Pair::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    /// Verifies a compact JWS made by this key and returns its decoded payload.
    /// The caller has already matched `kid`; `alg` must equal this key's.
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        let (signed, sig_b64) = token.rsplit_once('.')?;
        let (header_b64, payload_b64) = signed.split_once('.')?;
        let header: Value = serde_json::from_slice(&B64.decode(header_b64).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.alg.as_str() {
            return None;
        }
        let sig = B64.decode(sig_b64).ok()?;
        let ok = match &self.pair {
            Pair::Rsa(k) => UnparsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref(),
            )
            .verify(signed.as_bytes(), &sig)
            .is_ok(),
            Pair::Ec(k) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, k.public_key().as_ref())
                    .verify(signed.as_bytes(), &sig)
                    .is_ok()
            }
            Pair::Ed(k) => UnparsedPublicKey::new(&signature::ED25519, k.public_key().as_ref())
                .verify(signed.as_bytes(), &sig)
                .is_ok(),
        };
        if !ok {
            return None;
        }
        B64.decode(payload_b64).ok()
    }
}

/// The `kid` in a compact JWS header, without verifying anything.
pub fn peek_kid(token: &str) -> Option<String> {
    let header_b64 = token.split('.').next()?;
    if header_b64.len() > 1024 {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(header_b64).ok()?).ok()?;
    let kid = header.get("kid")?.as_str()?;
    (kid.len() <= crate::limits::MAX_KID).then(|| kid.to_owned())
}

/// The `typ` in a compact JWS header, without verifying anything (callers check
/// it after the signature, which covers the header).
pub fn peek_typ(token: &str) -> Option<String> {
    let header_b64 = token.split('.').next()?;
    if header_b64.len() > 1024 {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(header_b64).ok()?).ok()?;
    header.get("typ")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).unwrap()
    }

    #[test]
    fn every_alg_signs_and_verifies_after_a_seal_round_trip() {
        let kek = kek();
        for alg in SigningAlg::ALL {
            let (key, stored) = SigningKey::generate(alg, KeyState::Active, &kek, 0).unwrap();
            let reopened = SigningKey::open(&stored, &kek).unwrap();
            let tok = key.sign_access_token(br#"{"sub":"x"}"#).unwrap();
            assert_eq!(reopened.verify(&tok).unwrap(), br#"{"sub":"x"}"#);
            assert_eq!(peek_kid(&tok).unwrap(), key.kid);
            assert_eq!(reopened.public_jwk(), key.public_jwk());
        }
    }

    #[test]
    fn tampered_payload_fails() {
        let kek = kek();
        let (key, _) = SigningKey::generate(SigningAlg::ES256, KeyState::Active, &kek, 0).unwrap();
        let tok = key.sign_access_token(br#"{"sub":"x"}"#).unwrap();
        let parts: Vec<&str> = tok.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(br#"{"sub":"y"}"#),
            parts[2]
        );
        assert!(key.verify(&forged).is_none());
    }

    #[test]
    fn a_different_kek_cannot_open_a_key() {
        let (_, stored) =
            SigningKey::generate(SigningAlg::EdDSA, KeyState::Active, &kek(), 0).unwrap();
        assert!(SigningKey::open(&stored, &kek()).is_err());
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p gatehouse-core -- --ignored sign_cost --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn sign_cost() {
        let kek = KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).unwrap();
        let claims = br#"{"iss":"http://127.0.0.1:8080","sub":"409fb0db-c48f-4f2e-8433-e39286b932bc","aud":"https://gateway.acme.test","client_id":"dd47e13a-321c-4e2a-90e6-f61b2b113df8","scope":"cfgateway","jti":"bb30c7c2-455b-46bc-8717-96a625164967","iat":1795464364,"exp":1795467964,"org":"fab0dcf4-151e-4255-a349-50f036ee666a","role":"developer","permissions":["developer_api"],"groups":[],"cgen":1}"#;
        for alg in SigningAlg::ALL {
            let (key, _) = SigningKey::generate(alg, KeyState::Active, &kek, 0).unwrap();
            let n = if alg == SigningAlg::RS256 { 500 } else { 5000 };
            let t = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(key.sign_access_token(claims).unwrap());
            }
            eprintln!(
                "{}: {:.1} µs per token",
                alg.as_str(),
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        }
    }
}
