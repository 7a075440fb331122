//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect
//! Core §9): an app registered with a JWKS proves itself with a JWT it signed,
//! instead of a secret.
//!
//! This module owns the pure part: parsing an app's JWKS into public keys (parsed
//! once, so a verification is one signature check), reading an assertion's header
//! and unverified `iss`/`sub` (to find the app), and verifying the signature and
//! claims. It does no I/O: fetching a `jwks_uri`, caching parsed keys and
//! remembering used `jti`s across instances are the server's and the store's.
//!
//! Only asymmetric algorithms are accepted (RS256, PS256, ES256, EdDSA): never
//! `none`, never HMAC, so a public key can never be used as an HMAC secret, and a
//! key verifies only the algorithm(s) its type allows.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::Value;

use crate::clock::UnixTime;
use crate::limits::MAX_KID;

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The name discovery uses for this method.
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";
/// The algorithms discovery lists in `…_auth_signing_alg_values_supported`.
pub const SIGNING_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];
/// Longest assertion accepted, in bytes.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// An assertion may live at most this long (seconds from now to `exp`).
pub const MAX_LIFETIME: i64 = 300;
/// Clocks may disagree by this much (seconds) for `iat` and `nbf`.
pub const LEEWAY: i64 = 60;
/// Largest JWKS document accepted (inline or fetched), in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys an app's JWKS may hold.
pub const MAX_KEYS: usize = 20;
/// Longest `jti` accepted, in bytes.
pub const MAX_JTI: usize = 256;
const MAX_HEADER_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl AssertionAlg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(Self::RS256),
            "PS256" => Some(Self::PS256),
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }
}

/// Why an assertion was refused. Every one is `invalid_client` on the wire; the
/// text says which rule failed, never any key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("the client assertion is malformed: {0}")]
    Malformed(&'static str),
    #[error("the client assertion's algorithm is not accepted (RS256, PS256, ES256 or EdDSA only)")]
    Algorithm,
    #[error("no key of the app's JWKS matches the client assertion's `kid` and `alg`")]
    UnknownKey,
    #[error("the client assertion's signature does not verify with the app's keys")]
    Signature,
    #[error("the client assertion's {0}")]
    Claims(String),
}

/// One public key of an app, parsed for one algorithm.
pub struct ClientKey {
    pub kid: Option<String>,
    pub alg: AssertionAlg,
    key: ParsedPublicKey,
}

/// An app's parsed public keys.
#[derive(Default)]
pub struct ClientKeySet {
    keys: Vec<ClientKey>,
}

impl std::fmt::Debug for ClientKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, k.alg)))
            .finish()
    }
}

/// Members of a JWK that hold private (or symmetric) key material.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

impl ClientKeySet {
    /// A registered JWKS, strictly: JSON of at most [`MAX_JWKS_BYTES`] with a
    /// `keys` array of 1 to [`MAX_KEYS`] public signing keys, each of which must
    /// be usable (RSA ≥ 2048 bits, EC P-256, Ed25519). Private key material is
    /// refused (the app keeps its private key; we only ever need the public one).
    pub fn parse_registered(text: &str) -> Result<Self, String> {
        let v = Self::document(text)?;
        let list = v["keys"]
            .as_array()
            .ok_or("must be a JWKS: {\"keys\": [...]}")?;
        if list.is_empty() {
            return Err("holds no keys".into());
        }
        if list.len() > MAX_KEYS {
            return Err(format!("holds more than {MAX_KEYS} keys"));
        }
        let mut keys = Vec::new();
        for (i, jwk) in list.iter().enumerate() {
            if PRIVATE_MEMBERS.iter().any(|m| jwk.get(m).is_some()) {
                return Err(format!(
                    "key {i} contains private key material: register the public key only"
                ));
            }
            let parsed = parse_jwk(jwk).map_err(|why| format!("key {i}: {why}"))?;
            keys.extend(parsed);
        }
        Ok(Self { keys })
    }

    /// A fetched JWKS, leniently: keys we cannot use (other types, encryption
    /// keys, private material) are skipped rather than failing the whole set.
    pub fn parse_fetched(text: &str) -> Result<Self, String> {
        let v = Self::document(text)?;
        let list = v["keys"].as_array().ok_or("not a JWKS document")?;
        let keys = list
            .iter()
            .take(MAX_KEYS)
            .filter(|jwk| !PRIVATE_MEMBERS.iter().any(|m| jwk.get(m).is_some()))
            .filter_map(|jwk| parse_jwk(jwk).ok())
            .flatten()
            .collect();
        Ok(Self { keys })
    }

    fn document(text: &str) -> Result<Value, String> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(format!("is larger than {MAX_JWKS_BYTES} bytes"));
        }
        serde_json::from_str(text).map_err(|_| "is not JSON".to_owned())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether any key is named `kid` (with any algorithm).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys an assertion with this header may be verified with.
    fn candidates<'a>(
        &'a self,
        alg: AssertionAlg,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a ClientKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
    }
}

/// One JWK as the key(s) it verifies with: an RSA key without `alg` serves both
/// RS256 and PS256.
fn parse_jwk(jwk: &Value) -> Result<Vec<ClientKey>, &'static str> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let b = |k: &str| s(k).and_then(|v| B64.decode(v).ok());
    if s("use").is_some_and(|u| u != "sig") {
        return Err("is not a signing key (`use` is not `sig`)");
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID => Some(k.clone()),
        Some(_) => return Err("`kid` must be a string of 1 to 128 bytes"),
    };
    let declared = match s("alg") {
        None => None,
        Some(a) => {
            Some(AssertionAlg::parse(a).ok_or("`alg` must be RS256, PS256, ES256 or EdDSA")?)
        }
    };
    let mut out = Vec::new();
    let mut push = |alg: AssertionAlg, key: ParsedPublicKey| {
        out.push(ClientKey {
            kid: kid.clone(),
            alg,
            key,
        })
    };
    match (s("kty").ok_or("has no `kty`")?, s("crv")) {
        ("EC", Some("P-256")) => {
            let (x, y) = (b("x").ok_or("bad `x`")?, b("y").ok_or("bad `y`")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("`x` and `y` must be 32 bytes each");
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if declared.is_some_and(|a| a != AssertionAlg::ES256) {
                return Err("an EC P-256 key signs ES256 only");
            }
            let k = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .map_err(|_| "is not a valid P-256 public key")?;
            push(AssertionAlg::ES256, k);
        }
        ("OKP", Some("Ed25519")) => {
            if declared.is_some_and(|a| a != AssertionAlg::EdDSA) {
                return Err("an Ed25519 key signs EdDSA only");
            }
            let x = b("x").ok_or("bad `x`")?;
            let k = ParsedPublicKey::new(&signature::ED25519, x)
                .map_err(|_| "is not a valid Ed25519 public key")?;
            push(AssertionAlg::EdDSA, k);
        }
        ("RSA", _) => {
            let (n, e) = (b("n").ok_or("bad `n`")?, b("e").ok_or("bad `e`")?);
            let comps = RsaPublicKeyComponents { n: &n, e: &e };
            let rs = matches!(declared, None | Some(AssertionAlg::RS256));
            let ps = matches!(declared, None | Some(AssertionAlg::PS256));
            if !rs && !ps {
                return Err("an RSA key signs RS256 or PS256 only");
            }
            let bad = |_| "is not a valid RSA public key of 2048 to 8192 bits";
            if rs {
                let k = comps
                    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                    .map_err(bad)?;
                push(AssertionAlg::RS256, k);
            }
            if ps {
                let k = comps
                    .to_parsed_public_key(&signature::RSA_PSS_2048_8192_SHA256)
                    .map_err(bad)?;
                push(AssertionAlg::PS256, k);
            }
        }
        ("oct", _) => return Err("symmetric keys are not accepted"),
        _ => return Err("`kty` must be RSA, EC (P-256) or OKP (Ed25519)"),
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    jti: Option<String>,
}

/// An assertion whose shape and header passed; nothing is trusted yet.
pub struct Unverified<'a> {
    pub alg: AssertionAlg,
    pub kid: Option<String>,
    /// The unverified `sub` (the app it claims to be), to look its keys up.
    pub subject: Option<String>,
    signing_input: &'a str,
    signature: Vec<u8>,
    claims: Claims,
}

/// What a verified assertion leaves to be done: remember its `jti` until `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub jti: String,
    pub exp: UnixTime,
}

/// The unverified `sub` of an assertion, read from its payload alone (to find
/// the app when no `client_id` is sent: the header's faults are told after).
pub fn subject(token: &str) -> Option<String> {
    if token.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    claims.sub
}

/// Reads the assertion's shape and header (the algorithm from our list only,
/// no `crit`) and its claims, touching no key.
pub fn parse(token: &str) -> Result<Unverified<'_>, AssertionError> {
    use AssertionError::Malformed;
    if token.len() > MAX_ASSERTION_LEN {
        return Err(Malformed("longer than 8 KiB"));
    }
    let (signing_input, sig_b64) = token
        .rsplit_once('.')
        .ok_or(Malformed("not a compact JWS"))?;
    let (header_b64, claims_b64) = signing_input
        .split_once('.')
        .ok_or(Malformed("not a compact JWS"))?;
    if claims_b64.contains('.') {
        return Err(Malformed("not a compact JWS (an encrypted JWT?)"));
    }
    if header_b64.len() > MAX_HEADER_LEN {
        return Err(Malformed("header too long"));
    }
    let header = B64
        .decode(header_b64)
        .map_err(|_| Malformed("header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|_| Malformed("header is not a JWS header"))?;
    // RFC 8725 §3.1: the algorithm comes from our list, never from the token.
    let alg = AssertionAlg::parse(&header.alg).ok_or(AssertionError::Algorithm)?;
    if header.crit.is_some() {
        return Err(Malformed("`crit` header parameters are not understood"));
    }
    if header.kid.as_ref().is_some_and(|k| k.len() > MAX_KID) {
        return Err(Malformed("`kid` too long"));
    }
    let signature = B64
        .decode(sig_b64)
        .map_err(|_| Malformed("signature is not base64url"))?;
    let claims = B64
        .decode(claims_b64)
        .map_err(|_| Malformed("payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&claims)
        .map_err(|_| Malformed("payload is not a JWT claims set"))?;
    Ok(Unverified {
        alg,
        kid: header.kid,
        subject: claims.sub.clone(),
        signing_input,
        signature,
        claims,
    })
}

/// What the assertion must say.
pub struct Expected<'a> {
    pub client_id: &'a str,
    /// Accepted `aud` values (the issuer and the token endpoint's URL).
    pub audiences: &'a [&'a str],
    pub now: UnixTime,
}

impl Unverified<'_> {
    /// Checks the signature with the app's keys (the one named by `kid`, else
    /// each key of the algorithm), then the claims (RFC 7523 §3).
    pub fn verify(
        &self,
        keys: &ClientKeySet,
        expected: &Expected<'_>,
    ) -> Result<Verified, AssertionError> {
        self.verify_signature(keys)?;
        self.check_claims(expected)
    }

    /// Checks the signature only, for JWTs whose claims the caller checks
    /// (an upstream provider's ID token, [`crate::upstream`]).
    pub fn verify_signature(&self, keys: &ClientKeySet) -> Result<(), AssertionError> {
        let mut any = false;
        let mut ok = false;
        for k in keys.candidates(self.alg, self.kid.as_deref()) {
            any = true;
            if k.key
                .verify_sig(self.signing_input.as_bytes(), &self.signature)
                .is_ok()
            {
                ok = true;
                break;
            }
        }
        if !any {
            return Err(AssertionError::UnknownKey);
        }
        if !ok {
            return Err(AssertionError::Signature);
        }
        Ok(())
    }

    fn check_claims(&self, e: &Expected<'_>) -> Result<Verified, AssertionError> {
        let bad = |why: String| Err(AssertionError::Claims(why));
        let c = &self.claims;
        if c.iss.as_deref() != Some(e.client_id) {
            return bad("`iss` must be the client id".into());
        }
        if c.sub.as_deref() != Some(e.client_id) {
            return bad("`sub` must be the client id".into());
        }
        let aud_ok = match &c.aud {
            Some(Value::String(a)) => e.audiences.contains(&a.as_str()),
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str().is_some_and(|a| e.audiences.contains(&a))),
            _ => false,
        };
        if !aud_ok {
            return bad(format!(
                "`aud` must be the issuer or the token endpoint ({})",
                e.audiences.join(" or ")
            ));
        }
        let time = |name: &str, v: &Option<Value>| -> Result<Option<i64>, AssertionError> {
            match v {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                    .map(Some)
                    .ok_or_else(|| AssertionError::Claims(format!("`{name}` must be a number"))),
            }
        };
        let Some(exp) = time("exp", &c.exp)? else {
            return bad("`exp` is missing".into());
        };
        if exp <= e.now {
            return bad("`exp` has passed: the assertion expired".into());
        }
        if exp - e.now > MAX_LIFETIME {
            return bad(format!(
                "`exp` is more than {MAX_LIFETIME} seconds away: make short-lived assertions"
            ));
        }
        if let Some(iat) = time("iat", &c.iat)?
            && iat > e.now + LEEWAY
        {
            return bad("`iat` is in the future".into());
        }
        if let Some(nbf) = time("nbf", &c.nbf)?
            && nbf > e.now + LEEWAY
        {
            return bad("`nbf` is in the future: not valid yet".into());
        }
        let jti = match &c.jti {
            Some(j) if !j.is_empty() && j.len() <= MAX_JTI => j.clone(),
            Some(_) => return bad(format!("`jti` must be 1 to {MAX_JTI} bytes")),
            None => return bad("`jti` is missing (it makes each assertion single use)".into()),
        };
        Ok(Verified { jti, exp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};

    fn es256() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .unwrap();
        let pt = pair.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..65])}]});
        (pair, jwks.to_string())
    }

    fn sign(pair: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    const NOW: i64 = 1_800_000_000;

    fn claims(exp: i64) -> Value {
        serde_json::json!({"iss": "app", "sub": "app", "aud": ["https://id.test"],
            "exp": exp, "iat": NOW, "jti": "j1"})
    }

    fn check(keys: &ClientKeySet, t: &str) -> Result<Verified, AssertionError> {
        parse(t)?.verify(
            keys,
            &Expected {
                client_id: "app",
                audiences: &["https://id.test", "https://id.test/connect/token"],
                now: NOW,
            },
        )
    }

    #[test]
    fn a_fresh_es256_assertion_verifies_and_long_lived_ones_do_not() {
        let (pair, jwks) = es256();
        let keys = ClientKeySet::parse_registered(&jwks).unwrap();
        let h = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let ok = check(&keys, &sign(&pair, &h, &claims(NOW + 60))).unwrap();
        assert_eq!(
            ok,
            Verified {
                jti: "j1".into(),
                exp: NOW + 60
            }
        );
        let long = check(&keys, &sign(&pair, &h, &claims(NOW + 301))).unwrap_err();
        assert!(long.to_string().contains("more than 300 seconds"), "{long}");
        let old = check(&keys, &sign(&pair, &h, &claims(NOW))).unwrap_err();
        assert!(old.to_string().contains("expired"), "{old}");
        let other = serde_json::json!({"alg": "ES256", "kid": "k2"});
        assert_eq!(
            check(&keys, &sign(&pair, &other, &claims(NOW + 60))).unwrap_err(),
            AssertionError::UnknownKey
        );
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key() {
        for alg in ["none", "HS256", "HS512", "RS384"] {
            let h = B64.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let t = format!("{h}.{}.", B64.encode(claims(NOW + 60).to_string()));
            assert_eq!(parse(&t).err(), Some(AssertionError::Algorithm), "{alg}");
        }
    }

    #[test]
    fn registered_jwks_refuses_private_and_symmetric_keys() {
        let private = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}"#;
        assert!(
            ClientKeySet::parse_registered(private)
                .unwrap_err()
                .contains("private")
        );
        let oct = r#"{"keys":[{"kty":"oct","kid":"x"}]}"#;
        assert!(ClientKeySet::parse_registered(oct).is_err());
        assert!(ClientKeySet::parse_registered(r#"{"keys":[]}"#).is_err());
        assert!(ClientKeySet::parse_registered("[]").is_err());
    }
}
