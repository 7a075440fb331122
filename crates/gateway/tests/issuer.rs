//! The validator against a scripted issuer on loopback (discovery, a JWKS that
//! can grow and shrink, a long-polled revocation feed, introspection), for what
//! the real server cannot easily be made to do: publish hundreds of keys, or
//! withdraw one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_gateway::{ApiSecret, Rejection, Validator, ValidatorConfig};
use serde_json::{Value, json};

const AUD: &str = "https://api.test";

#[derive(Default)]
struct Script {
    jwks: Vec<Value>,
    /// (sequence, event)
    events: Vec<(u64, Value)>,
    /// Reference token → introspection answer.
    answers: HashMap<String, Value>,
    introspections: usize,
}

#[derive(Clone)]
struct Issuer {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Issuer {
    async fn start(keys: Vec<Value>) -> Issuer {
        let script = Arc::new(Mutex::new(Script {
            jwks: keys,
            ..Script::default()
        }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let base = url.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move {
                    axum::Json(json!({
                        "issuer": base,
                        "jwks_uri": format!("{base}/jwks"),
                        "introspection_endpoint": format!("{base}/introspect"),
                        "gatehouse_revocation_feed_endpoint": format!("{base}/feed"),
                    }))
                }),
            )
            .route("/jwks", get(jwks))
            .route("/feed", get(feed))
            .route("/introspect", post(introspect))
            .with_state(script.clone());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Issuer { url, script }
    }

    fn push(&self, event: Value) {
        let mut s = self.script.lock().unwrap();
        let seq = s.events.len() as u64 + 1;
        s.events.push((seq, event));
    }

    async fn validator(&self) -> Validator {
        let config = ValidatorConfig::new(&self.url, AUD, "api", ApiSecret::new("secret"));
        Validator::start(config, Duration::from_secs(5))
            .await
            .unwrap()
    }
}

async fn jwks(State(s): State<Arc<Mutex<Script>>>) -> axum::Json<Value> {
    axum::Json(json!({"keys": s.lock().unwrap().jwks.clone()}))
}

async fn feed(
    State(s): State<Arc<Mutex<Script>>>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    let since: u64 = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
    let wait: u64 = q.get("wait").and_then(|v| v.parse().ok()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        {
            let s = s.lock().unwrap();
            let new: Vec<Value> = s
                .events
                .iter()
                .filter(|(n, _)| *n > since)
                .map(|(_, e)| e.clone())
                .collect();
            if !new.is_empty() || Instant::now() >= deadline {
                let cursor = s.events.len().max(since as usize);
                return axum::Json(
                    json!({"cursor": cursor.to_string(), "events": new, "more": false}),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn introspect(State(s): State<Arc<Mutex<Script>>>, body: String) -> axum::Json<Value> {
    let token = body.strip_prefix("token=").unwrap_or_default();
    let mut s = s.lock().unwrap();
    s.introspections += 1;
    axum::Json(
        s.answers
            .get(token)
            .cloned()
            .unwrap_or(json!({"active": false})),
    )
}

struct Key {
    kid: String,
    pair: EcdsaKeyPair,
}

impl Key {
    fn new(kid: &str) -> Key {
        Key {
            kid: kid.to_owned(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        self.jwk_as(&self.kid)
    }

    /// This key's public half published under another `kid`.
    fn jwk_as(&self, kid: &str) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
               "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn claims(iss: &str, aud: &str, jti: &str) -> Value {
    let now = SystemClock.now();
    json!({"iss": iss, "aud": aud, "iat": now, "exp": now + 3600, "jti": jti,
           "client_id": "app-1", "sub": "user-1", "scope": "read", "cgen": 1})
}

/// Polls `f` every 10 ms; how long until it held (panics after 5 s).
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t0.elapsed()
}

#[tokio::test]
async fn every_key_of_a_jwks_with_hundreds_of_keys_verifies() {
    // After many rotations: 299 retired keys whose kids sort before the active one.
    let active = Key::new("k-zz-active");
    let retired = Key::new("unused");
    let mut keys: Vec<Value> = (0..299)
        .map(|i| retired.jwk_as(&format!("k-{i:03}")))
        .collect();
    // Listed in kid order (the active key at place 300), then active first.
    for doc in [
        [keys.clone(), vec![active.jwk()]].concat(),
        [vec![active.jwk()], keys.clone()].concat(),
    ] {
        let issuer = Issuer::start(doc).await;
        let v = issuer.validator().await;
        assert_eq!(v.health().keys, 300);
        let t = active.sign(&claims(&issuer.url, AUD, "j1"));
        assert!(v.validate(&t).await.is_ok());
    }
    // Past the bound, the first keys listed (the issuer's active ones) are kept.
    keys.insert(0, active.jwk());
    keys.extend((0..1200).map(|i| retired.jwk_as(&format!("old-{i:04}"))));
    let issuer = Issuer::start(keys).await;
    let v = issuer.validator().await;
    assert_eq!(v.health().keys, gatehouse_gateway::jwks::MAX_KEYS);
    let t = active.sign(&claims(&issuer.url, AUD, "j1"));
    assert!(v.validate(&t).await.is_ok());
}

#[tokio::test]
async fn a_key_withdrawn_from_the_jwks_stops_verifying_within_a_second() {
    let active = Key::new("k-2");
    let withdrawn = Key::new("k-1");
    let issuer = Issuer::start(vec![active.jwk(), withdrawn.jwk()]).await;
    let v = issuer.validator().await;
    let old = withdrawn.sign(&claims(&issuer.url, AUD, "j-old"));
    let new = active.sign(&claims(&issuer.url, AUD, "j-new"));
    assert!(v.validate(&old).await.is_ok());
    assert!(v.validate(&new).await.is_ok());
    assert_eq!(v.cached_signatures(), 2);

    issuer.script.lock().unwrap().jwks = vec![active.jwk()];
    issuer.push(json!({"type": "keys"}));
    let took = until("the withdrawn key's token to be refused", async || {
        v.validate(&old).await.is_err()
    })
    .await;
    println!("withdrawn key refused {took:?} after the keys event");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(matches!(
        v.validate(&old).await,
        Err(Rejection::Invalid(
            gatehouse_gateway::verify::TokenError::UnknownKey
        ))
    ));
    assert_eq!(v.health().keys, 1);
    assert_eq!(
        v.cached_signatures(),
        1,
        "the withdrawn key's entries are gone"
    );
    assert!(v.validate(&new).await.is_ok());
}

#[tokio::test]
async fn tokens_for_other_audiences_or_issuers_never_enter_the_signature_cache() {
    let key = Key::new("k");
    let issuer = Issuer::start(vec![key.jwk()]).await;
    let v = issuer.validator().await;
    for (i, c) in [
        claims(&issuer.url, "https://other-tenant.test", "a"),
        claims("https://elsewhere.test", AUD, "b"),
        {
            let mut c = claims(&issuer.url, AUD, "c");
            c["exp"] = json!(SystemClock.now() - 3600);
            c
        },
    ]
    .iter()
    .enumerate()
    {
        assert!(v.validate(&key.sign(c)).await.is_err(), "{i}");
    }
    assert_eq!(v.cached_signatures(), 0);
    assert!(
        v.validate(&key.sign(&claims(&issuer.url, AUD, "d")))
            .await
            .is_ok()
    );
    assert_eq!(v.cached_signatures(), 1);
}

fn answer(jti: &str, client: &str, sub: &str) -> Value {
    let now = SystemClock.now();
    json!({"active": true, "aud": AUD, "iat": now, "exp": now + 3600, "jti": jti,
           "client_id": client, "sub": sub, "scope": "read"})
}

#[tokio::test]
async fn introspected_tokens_end_with_the_feed_not_the_cache() {
    let issuer = Issuer::start(vec![Key::new("k").jwk()]).await;
    {
        let mut s = issuer.script.lock().unwrap();
        for (t, jti, client, sub) in [
            ("ref-rotated", "j1", "app-r", "u1"),
            ("ref-revoked", "j2", "app-x", "u2"),
            ("ref-user", "j3", "app-y", "u3"),
            ("ref-grant", "j4", "app-z", "u4"),
        ] {
            s.answers.insert(t.into(), answer(jti, client, sub));
        }
    }
    let v = issuer.validator().await;
    for t in ["ref-rotated", "ref-revoked", "ref-user", "ref-grant"] {
        assert!(v.validate(t).await.is_ok(), "{t}");
        assert!(v.validate(t).await.is_ok(), "{t} (cached)");
    }
    assert_eq!(issuer.script.lock().unwrap().introspections, 4);

    // A rotation: the issuer now answers inactive; the event drops the cached answer.
    issuer
        .script
        .lock()
        .unwrap()
        .answers
        .insert("ref-rotated".into(), json!({"active": false}));
    issuer.push(json!({"type": "client", "client_id": "app-r", "generation": 2, "active": true}));
    // A revoked token, a deactivated user and a revoked grant: refused by the
    // revocation set even while the issuer (or a stale answer) still says active.
    issuer.push(json!({"type": "token", "jti": "j2", "exp": SystemClock.now() + 3600}));
    issuer.push(json!({"type": "user", "user_id": "u3", "active": false, "may_authorize": false}));
    issuer.push(json!({"type": "grant", "grant_id": "g-4"}));
    issuer
        .script
        .lock()
        .unwrap()
        .answers
        .insert("ref-grant".into(), json!({"active": false}));
    for t in ["ref-rotated", "ref-revoked", "ref-user", "ref-grant"] {
        let took = until(t, async || v.validate(t).await.is_err()).await;
        println!("{t}: refused {took:?} after the event");
        assert!(took < Duration::from_secs(1), "{t}: {took:?}");
    }
}

// ---- DPoP (RFC 9449): bound tokens at the tower layer ----------------------
// Proofs are made here with aws-lc-rs directly and the thumbprint computed from
// RFC 7638's canonical JSON: nothing is shared with the gateway's verifier.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

impl Key {
    fn thumbprint(&self) -> String {
        let p = self.pair.public_key().as_ref();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            B64.encode(&p[1..33]),
            B64.encode(&p[33..65])
        );
        B64.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A DPoP proof; `ath` of `token` when given.
    fn proof(&self, htm: &str, htu: &str, token: Option<&str>, iat: i64) -> String {
        let p = self.pair.public_key().as_ref();
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256",
            "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])}});
        let mut claims = json!({"jti": uuid(), "htm": htm, "htu": htu, "iat": iat});
        if let Some(t) = token {
            claims["ath"] = B64.encode(Sha256::digest(t.as_bytes())).into();
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    B64.encode(b)
}

const URL: &str = "http://gw.test/orders/1";

fn guarded(v: &Validator) -> Router {
    Router::new()
        .route(
            "/orders/1",
            get(|| async { "ok" }).post(|| async { "posted" }),
        )
        .layer(v.layer(&["read"]))
}

/// One request through the layer: status and `WWW-Authenticate`.
async fn call(
    app: &Router,
    method: &str,
    auth: Option<String>,
    proofs: &[String],
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri("/orders/1")
        .header(header::HOST, "gw.test");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    for p in proofs {
        req = req.header("dpop", p);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status(), challenge)
}

fn bound_claims(iss: &str, jti: &str, jkt: &str) -> Value {
    let mut c = claims(iss, AUD, jti);
    c["cnf"] = json!({"jkt": jkt});
    c["gid"] = json!("g-dpop");
    c
}

#[tokio::test]
async fn a_stolen_dpop_bound_token_is_refused_without_its_key() {
    let signer = Key::new("k");
    let issuer = Issuer::start(vec![signer.jwk()]).await;
    let v = issuer.validator().await;
    let app = guarded(&v);
    let holder = Key::new("holder");
    let thief = Key::new("thief");
    let token = signer.sign(&bound_claims(&issuer.url, "j-bound", &holder.thumbprint()));
    let now = SystemClock.now();
    let dpop = || Some(format!("DPoP {token}"));
    let good = || holder.proof("GET", URL, Some(&token), now);

    // The holder, with a fresh proof: through.
    assert_eq!(call(&app, "GET", dpop(), &[good()]).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", dpop(), &[good()]).await.0, StatusCode::OK);

    let refused = |r: (StatusCode, String), error: &str, case: &str| {
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{case}");
        assert!(r.1.starts_with("DPoP "), "{case}: {}", r.1);
        assert!(
            r.1.contains(&format!(r#"error="{error}""#)),
            "{case}: {}",
            r.1
        );
        assert!(
            r.1.contains(r#"algs="ES256 RS256 PS256 EdDSA""#),
            "{case}: {}",
            r.1
        );
    };
    // The thief: as a bearer token, as DPoP without a proof, with a proof of
    // the thief's own key.
    refused(
        call(&app, "GET", Some(format!("Bearer {token}")), &[]).await,
        "invalid_token",
        "bound token as Bearer",
    );
    refused(
        call(&app, "GET", Some(format!("Bearer {token}")), &[good()]).await,
        "invalid_token",
        "bound token as Bearer, with a proof",
    );
    refused(
        call(&app, "GET", dpop(), &[]).await,
        "invalid_dpop_proof",
        "no proof",
    );
    refused(
        call(
            &app,
            "GET",
            dpop(),
            &[thief.proof("GET", URL, Some(&token), now)],
        )
        .await,
        "invalid_dpop_proof",
        "another key's proof",
    );
    // A proof seen on the wire, replayed.
    let once = good();
    assert_eq!(
        call(&app, "GET", dpop(), std::slice::from_ref(&once))
            .await
            .0,
        StatusCode::OK
    );
    refused(
        call(&app, "GET", dpop(), &[once]).await,
        "invalid_dpop_proof",
        "replayed",
    );
    // A proof the holder made for something else.
    for (case, proof) in [
        ("other method", holder.proof("POST", URL, Some(&token), now)),
        (
            "other URL",
            holder.proof("GET", "http://gw.test/orders/2", Some(&token), now),
        ),
        (
            "other host",
            holder.proof("GET", "http://evil.test/orders/1", Some(&token), now),
        ),
        (
            "stale iat",
            holder.proof("GET", URL, Some(&token), now - 120),
        ),
        (
            "future iat",
            holder.proof("GET", URL, Some(&token), now + 120),
        ),
        ("no ath", holder.proof("GET", URL, None, now)),
        (
            "other token's ath",
            holder.proof("GET", URL, Some("another-token"), now),
        ),
    ] {
        refused(
            call(&app, "GET", dpop(), &[proof]).await,
            "invalid_dpop_proof",
            case,
        );
    }
    refused(
        call(&app, "GET", dpop(), &[good(), good()]).await,
        "invalid_dpop_proof",
        "two proofs",
    );
    // An unbound token is not a DPoP token.
    let plain = signer.sign(&claims(&issuer.url, AUD, "j-plain"));
    let proof = holder.proof("GET", URL, Some(&plain), now);
    refused(
        call(&app, "GET", Some(format!("DPoP {plain}")), &[proof]).await,
        "invalid_token",
        "unbound token as DPoP",
    );
    assert_eq!(
        call(&app, "GET", Some(format!("Bearer {plain}")), &[])
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_grant_ends_dpop_bound_tokens_within_a_second() {
    let signer = Key::new("k");
    let issuer = Issuer::start(vec![signer.jwk()]).await;
    let v = issuer.validator().await;
    let app = guarded(&v);
    let holder = Key::new("holder");
    let token = signer.sign(&bound_claims(&issuer.url, "j-g", &holder.thumbprint()));
    let ask = async || {
        let proof = holder.proof("GET", URL, Some(&token), SystemClock.now());
        call(&app, "GET", Some(format!("DPoP {token}")), &[proof])
            .await
            .0
    };
    assert_eq!(ask().await, StatusCode::OK);
    issuer.push(json!({"type": "grant", "grant_id": "g-dpop"}));
    let took = until("the bound token to be refused", async || {
        ask().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn proofs_name_the_public_url_when_one_is_configured() {
    let signer = Key::new("k");
    let issuer = Issuer::start(vec![signer.jwk()]).await;
    let mut config = ValidatorConfig::new(&issuer.url, AUD, "api", ApiSecret::new("secret"));
    config.public_url = Some("https://api.example.com/".into());
    let v = Validator::start(config, Duration::from_secs(5))
        .await
        .unwrap();
    let app = guarded(&v);
    let holder = Key::new("holder");
    let token = signer.sign(&bound_claims(&issuer.url, "j-p", &holder.thumbprint()));
    let now = SystemClock.now();
    let with = async |htu: &str| {
        let proof = holder.proof("POST", htu, Some(&token), now);
        call(&app, "POST", Some(format!("DPoP {token}")), &[proof])
            .await
            .0
    };
    assert_eq!(
        with("http://gw.test/orders/1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with("https://api.example.com/orders/1").await,
        StatusCode::OK
    );
    assert_eq!(
        with("https://api.example.com/orders/1?x=1").await,
        StatusCode::OK,
        "the query is not part of htu"
    );
}
