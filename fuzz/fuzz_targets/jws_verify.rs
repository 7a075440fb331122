//! JWS verification, in the issuer (`gatehouse_core::jose`, used by introspection
//! and the userinfo endpoint) and in the gateway (`gatehouse_gateway::verify`):
//! a token is accepted only if its signing input is one these keys signed (so a
//! changed header or payload never passes, whatever the signature bytes), the
//! gateway only for `at+jwt` tokens; `alg: none` and HMAC tokens keyed with the
//! public key never pass; no header, kid, alg or JWK makes either side panic.
#![no_main]

use std::sync::LazyLock;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gatehouse_core::jose::{KeyEncryptionKey, SigningKey, peek_kid, peek_typ};
use gatehouse_core::limits::MAX_KID;
use gatehouse_core::model::{KeyState, SigningAlg};
use gatehouse_gateway::verify::{self, Alg, PublicKey};
use libfuzzer_sys::fuzz_target;

const CLAIMS: &[&[u8]] = &[
    br#"{"iss":"https://id.acme.test","sub":"u1","aud":"https://gw","client_id":"app","scope":"cfgateway","jti":"j1","iat":1700000000,"exp":4102444800}"#,
    br#"{}"#,
];

struct Signer {
    core: SigningKey,
    public: PublicKey,
    /// Every signing input this key signed: (typ is at+jwt, input, claims).
    signed: Vec<(bool, String, Vec<u8>)>,
}

struct Fixture {
    signers: Vec<Signer>,
    tokens: Vec<String>,
}

fn signing_input(token: &str) -> Option<&str> {
    token.rsplit_once('.').map(|(s, _)| s)
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let kek = KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).expect("kek");
    let mut signers = Vec::new();
    let mut tokens = Vec::new();
    for alg in SigningAlg::ALL {
        let (core, _) = SigningKey::generate(alg, KeyState::Active, &kek, 0).expect("key");
        let public = PublicKey::from_jwk(core.public_jwk()).expect("own JWK loads");
        let mut signed = Vec::new();
        for claims in CLAIMS {
            for at in [true, false] {
                let tok = if at {
                    core.sign_access_token(claims)
                } else {
                    core.sign_jwt(claims)
                }
                .expect("sign");
                // The fixture itself must verify, or the target proves nothing.
                assert_eq!(core.verify(&tok).as_deref(), Some(*claims));
                let parsed = verify::parse(&tok, &Alg::ALL);
                if at {
                    parsed
                        .expect("parse")
                        .verify_signature(&public)
                        .expect("verify");
                } else {
                    assert!(parsed.is_err(), "an ID token passed as an access token");
                }
                signed.push((
                    at,
                    signing_input(&tok).expect("dot").to_owned(),
                    claims.to_vec(),
                ));
                tokens.push(tok);
            }
        }
        signers.push(Signer {
            core,
            public,
            signed,
        });
    }
    Fixture { signers, tokens }
});

const B64_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

/// A signed token with byte edits: (op, position hi, position lo, byte) per 4 bytes.
fn mutated(base: &str, edits: &[u8]) -> String {
    let mut b = base.as_bytes().to_vec();
    for e in edits.chunks_exact(4) {
        let pos = usize::from(u16::from_be_bytes([e[1], e[2]])) % (b.len() + 1);
        match e[0] % 4 {
            0 if pos < b.len() => b[pos] = e[3],
            1 => b.insert(pos, e[3]),
            2 if pos < b.len() => {
                b.remove(pos);
            }
            3 if pos < b.len() => b[pos] = B64_ALPHABET[usize::from(e[3]) % B64_ALPHABET.len()],
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// `alg: none` or an HMAC over the signing input keyed with public key material.
fn confused(signer: &Signer, sel: u8, payload: &[u8]) -> String {
    let alg = [
        "none", "None", "NONE", "HS256", "HS384", "HS512", "", "nOnE",
    ][usize::from(sel) % 8];
    let header = serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": signer.core.kid});
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(payload));
    let jwk = signer.core.public_jwk().to_string();
    let secret: Vec<u8> = match (sel >> 3) % 3 {
        0 => jwk.into_bytes(),
        1 => signer.core.kid.clone().into_bytes(),
        _ => Vec::new(),
    };
    let sig = match alg {
        "HS256" => hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        )
        .as_ref()
        .to_vec(),
        "HS384" => hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA384, &secret),
            input.as_bytes(),
        )
        .as_ref()
        .to_vec(),
        "HS512" => hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, &secret),
            input.as_bytes(),
        )
        .as_ref()
        .to_vec(),
        _ => Vec::new(),
    };
    format!("{input}.{}", B64.encode(sig))
}

fn check(fx: &Fixture, token: &str) {
    let _ = peek_typ(token);
    if let Some(kid) = peek_kid(token) {
        assert!(kid.len() <= MAX_KID, "peek_kid returned an unbounded kid");
    }
    let input = signing_input(token);
    for s in &fx.signers {
        if let Some(claims) = s.core.verify(token) {
            let signed = s.signed.iter().find(|(_, i, _)| Some(i.as_str()) == input);
            let Some((_, _, want)) = signed else {
                panic!("issuer accepted a token its key never signed: {token:?}");
            };
            assert_eq!(
                &claims, want,
                "issuer returned other claims than were signed"
            );
        }
    }
    if let Ok(u) = verify::parse(token, &Alg::ALL) {
        for s in &fx.signers {
            if u.verify_signature(&s.public).is_ok() {
                let ok = s
                    .signed
                    .iter()
                    .any(|(at, i, _)| *at && Some(i.as_str()) == input);
                assert!(
                    ok,
                    "gateway accepted a token this key never signed as at+jwt: {token:?}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pick = |b: Option<&u8>| &fx.tokens[usize::from(b.copied().unwrap_or(0)) % fx.tokens.len()];
    match mode % 5 {
        0 => check(fx, &String::from_utf8_lossy(rest)),
        1 => check(
            fx,
            &mutated(pick(rest.first()), rest.get(1..).unwrap_or_default()),
        ),
        2 => {
            // Another header on a signed payload and signature.
            let base = pick(rest.first());
            let parts: Vec<&str> = base.split('.').collect();
            let header = B64.encode(rest.get(1..).unwrap_or_default());
            check(fx, &format!("{header}.{}.{}", parts[1], parts[2]));
        }
        3 => {
            let sel = rest.first().copied().unwrap_or(0);
            let signer = &fx.signers[usize::from(sel) % fx.signers.len()];
            let token = confused(signer, sel / 3, rest.get(1..).unwrap_or_default());
            check(fx, &token);
            assert!(
                verify::parse(&token, &Alg::ALL).is_err(),
                "alg none/HMAC parsed"
            );
            for s in &fx.signers {
                assert!(s.core.verify(&token).is_none(), "alg none/HMAC verified");
            }
        }
        _ => {
            // Any JWK: only asymmetric signing keys of a known algorithm load.
            let Ok(jwk) = serde_json::from_slice::<serde_json::Value>(rest) else {
                return;
            };
            if let Some(k) = PublicKey::from_jwk(&jwk) {
                let kty = jwk.get("kty").and_then(|v| v.as_str());
                assert!(
                    matches!(kty, Some("EC" | "OKP" | "RSA")),
                    "kty {kty:?} loaded"
                );
                let alg = jwk.get("alg").and_then(|v| v.as_str());
                assert!(
                    alg.is_none_or(|a| Alg::parse(a) == Some(k.alg)),
                    "alg {alg:?} loaded"
                );
                assert!(
                    jwk.get("use").is_none_or(|u| u == "sig"),
                    "a non-signing key loaded"
                );
            }
        }
    }
});
