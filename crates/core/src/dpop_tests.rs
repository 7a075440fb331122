use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use serde_json::json;

use super::*;

const URL: &str = "https://as.example/connect/token";
const NOW: i64 = 1_800_000_000;

enum Key {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Key {
    fn ec() -> Key {
        Key::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }
    fn ed() -> Key {
        Key::Ed(Ed25519KeyPair::generate().unwrap())
    }
    fn jwk(&self) -> Value {
        match self {
            Key::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty":"EC","crv":"P-256","x":B64.encode(&p[1..33]),"y":B64.encode(&p[33..])})
            }
            Key::Ed(k) => {
                json!({"kty":"OKP","crv":"Ed25519","x":B64.encode(k.public_key().as_ref())})
            }
        }
    }
    fn alg(&self) -> &'static str {
        match self {
            Key::Ec(_) => "ES256",
            Key::Ed(_) => "EdDSA",
        }
    }
    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = match self {
            Key::Ec(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Key::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", B64.encode(sig))
    }
    fn proof(&self, claims: Value) -> String {
        let header = json!({"typ":"dpop+jwt","alg":self.alg(),"jwk":self.jwk()});
        self.sign_raw(&header, &claims)
    }
}

fn claims() -> Value {
    json!({"jti":"j1","htm":"POST","htu":URL,"iat":NOW})
}

fn expected() -> Expected<'static> {
    Expected {
        method: "POST",
        url: URL,
        now: NOW,
        window: 60,
        access_token: None,
    }
}

#[test]
fn thumbprint_is_rfc_7638_section_3_1() {
    let jwk = json!({"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
    let key = JwkKey::parse(&jwk, "RS256").unwrap();
    assert_eq!(
        key.thumbprint,
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn a_good_proof_names_its_key() {
    for key in [Key::ec(), Key::ed()] {
        let proof = verify(&key.proof(claims()), &expected()).unwrap();
        let canonical = match &key {
            Key::Ec(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                key.jwk()["x"].as_str().unwrap(),
                key.jwk()["y"].as_str().unwrap()
            ),
            Key::Ed(_) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                key.jwk()["x"].as_str().unwrap()
            ),
        };
        assert_eq!(proof.jkt, B64.encode(Sha256::digest(canonical)));
        assert_eq!(proof.jti, "j1");
    }
}

#[test]
fn the_query_is_ignored_and_the_url_normalised() {
    let key = Key::ec();
    let mut c = claims();
    c["htu"] = "HTTPS://AS.example:443/connect/token".into();
    let e = Expected {
        url: "https://as.example/connect/token?x=1",
        ..expected()
    };
    assert!(verify(&key.proof(c), &e).is_ok());
}

#[test]
fn every_claim_is_checked() {
    let key = Key::ec();
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        verify(&key.proof(c), &expected()).err()
    };
    assert_eq!(with("htm", "GET".into()), Some(ProofError::Method));
    assert_eq!(
        with("htu", "https://as.example/connect/other".into()),
        Some(ProofError::Url)
    );
    assert_eq!(
        with("htu", "https://evil.example/connect/token".into()),
        Some(ProofError::Url)
    );
    assert_eq!(with("iat", (NOW - 61).into()), Some(ProofError::Stale));
    assert_eq!(with("iat", (NOW + 61).into()), Some(ProofError::Stale));
    assert_eq!(with("iat", "soon".into()), Some(ProofError::Malformed));
    assert_eq!(with("iat", i64::MIN.into()), Some(ProofError::Stale));
    assert_eq!(with("jti", "".into()), Some(ProofError::Malformed));
}

#[test]
fn ath_must_hash_the_presented_token() {
    let key = Key::ec();
    let e = Expected {
        access_token: Some("tok"),
        ..expected()
    };
    assert_eq!(
        verify(&key.proof(claims()), &e).err(),
        Some(ProofError::Ath)
    );
    let mut c = claims();
    c["ath"] = access_token_hash("other").into();
    assert_eq!(verify(&key.proof(c), &e).err(), Some(ProofError::Ath));
    let mut c = claims();
    c["ath"] = access_token_hash("tok").into();
    assert!(verify(&key.proof(c), &e).is_ok());
}

#[test]
fn headers_are_checked_before_the_signature() {
    let key = Key::ec();
    let h = |typ: &str, alg: &str, jwk: Value| {
        let header = json!({"typ":typ,"alg":alg,"jwk":jwk});
        verify(&key.sign_raw(&header, &claims()), &expected()).err()
    };
    assert_eq!(h("JWT", "ES256", key.jwk()), Some(ProofError::Type));
    assert_eq!(
        h("dpop+jwt", "none", key.jwk()),
        Some(ProofError::Algorithm)
    );
    assert_eq!(
        h("dpop+jwt", "HS256", key.jwk()),
        Some(ProofError::Algorithm)
    );
    assert_eq!(h("dpop+jwt", "EdDSA", key.jwk()), Some(ProofError::Key));
    let mut private = key.jwk();
    private["d"] = "AAAA".into();
    assert_eq!(h("dpop+jwt", "ES256", private), Some(ProofError::Key));
    // Another key's jwk: the signature does not hold.
    assert_eq!(
        h("dpop+jwt", "ES256", Key::ec().jwk()),
        Some(ProofError::Signature)
    );
    // Claims swapped after signing.
    let good = key.proof(claims());
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut c = claims();
    c["jti"] = "j2".into();
    let swapped = B64.encode(c.to_string());
    parts[1] = &swapped;
    assert_eq!(
        verify(&parts.join("."), &expected()).err(),
        Some(ProofError::Signature)
    );
    assert_eq!(
        verify(&"a".repeat(MAX_PROOF_LEN + 1), &expected()).err(),
        Some(ProofError::Malformed)
    );
}

#[test]
fn a_jti_is_accepted_once_per_key_until_it_could_no_longer_pass() {
    let cache = ReplayCache::new(8);
    let p = |jkt: &str, jti: &str, iat: i64| Proof {
        jkt: jkt.into(),
        jti: jti.into(),
        iat,
        nonce: None,
    };
    assert_eq!(cache.check(&p("k", "a", NOW), NOW, 60), Ok(()));
    assert_eq!(
        cache.check(&p("k", "a", NOW), NOW + 1, 60),
        Err(ProofError::Replayed)
    );
    assert_eq!(cache.check(&p("k2", "a", NOW), NOW, 60), Ok(()));
    // Remembered while its iat is in the window: a replay at iat + window
    // (the last second the iat check passes) is still refused.
    assert_eq!(
        cache.check(&p("k", "a", NOW), NOW + 59, 60),
        Err(ProofError::Replayed)
    );
    // A proof dated ahead (client clock fast) is remembered that much longer.
    assert_eq!(cache.check(&p("k3", "f", NOW + 60), NOW, 60), Ok(()));
    assert_eq!(
        cache.check(&p("k3", "f", NOW + 60), NOW + 119, 60),
        Err(ProofError::Replayed)
    );
    // Past iat + window the entries go (a replay then fails the iat check).
    assert_eq!(cache.check(&p("k", "b", NOW + 61), NOW + 61, 60), Ok(()));
    assert_eq!(cache.len(), 2, "k/a and k2/a expired; k3/f and k/b live");
}

#[test]
fn one_key_spending_proofs_fills_its_share_not_the_cache() {
    let cache = ReplayCache::new(8);
    let p = |jkt: &str, jti: String| Proof {
        jkt: jkt.into(),
        jti,
        iat: NOW,
        nonce: None,
    };
    // A quarter of the cache per key: the fast key is refused from its third.
    for i in 0..2 {
        assert_eq!(cache.check(&p("fast", format!("j{i}")), NOW, 60), Ok(()));
    }
    assert_eq!(
        cache.check(&p("fast", "j2".into()), NOW, 60),
        Err(ProofError::Busy)
    );
    // Every other key still gets in, until the cache itself is full of live
    // entries: then refused, never forgotten.
    for k in ["b", "c", "d"] {
        for i in 0..2 {
            assert_eq!(cache.check(&p(k, format!("j{i}")), NOW, 60), Ok(()));
        }
    }
    assert_eq!(
        cache.check(&p("e", "j0".into()), NOW, 60),
        Err(ProofError::Busy)
    );
    // Once the window has passed, the fast key is welcome again.
    assert_eq!(cache.check(&p("fast", "j9".into()), NOW + 61, 60), Ok(()));
}

#[test]
fn nonces_are_good_for_two_steps_and_only_ours() {
    let kek = |k: &str| crate::jose::KeyEncryptionKey::from_text(k).unwrap();
    let deployment = kek(&crate::jose::KeyEncryptionKey::generate_text());
    let n = Nonces::new(&deployment.derive("gatehouse dpop nonces"), 30);
    let other = Nonces::new(&deployment.derive("another purpose"), 30);
    let another_deployment = kek(&crate::jose::KeyEncryptionKey::generate_text());
    let theirs = Nonces::new(&another_deployment.derive("gatehouse dpop nonces"), 30);
    // A second instance of the deployment derives the same key.
    let same_kek = Nonces::new(&deployment.derive("gatehouse dpop nonces"), 30);
    let nonce = n.current(NOW);
    assert!(same_kek.accepts(Some(&nonce), NOW));
    assert!(!theirs.accepts(Some(&nonce), NOW));
    assert!(n.accepts(Some(&nonce), NOW));
    assert!(n.accepts(Some(&nonce), NOW + 30));
    assert!(!n.accepts(Some(&nonce), NOW + 61));
    assert!(!n.accepts(None, NOW));
    assert!(!other.accepts(Some(&nonce), NOW));
}

/// What one proof costs the gateway: `cargo test --release -p gatehouse-core
/// -- --ignored proof_verify_cost --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn proof_verify_cost() {
    for key in [Key::ec(), Key::ed()] {
        let n = 5000;
        let proofs: Vec<String> = (0..n)
            .map(|i| {
                let mut c = claims();
                c["jti"] = format!("j{i}").into();
                c["ath"] = access_token_hash("tok").into();
                key.proof(c)
            })
            .collect();
        let e = Expected {
            access_token: Some("tok"),
            ..expected()
        };
        let cache = ReplayCache::new(2 * n);
        let t = std::time::Instant::now();
        for p in &proofs {
            let proof = verify(p, &e).unwrap();
            cache.check(&proof, NOW, 60).unwrap();
        }
        eprintln!(
            "{}: {:.1} µs per proof (verify + replay check)",
            key.alg(),
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
