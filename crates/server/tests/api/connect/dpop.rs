//! DPoP (RFC 9449) at the token, userinfo and introspection endpoints. Proofs
//! are made by jsonwebtoken (an independent JOSE library; its `Jwk::thumbprint`
//! is RFC 7638's), with keys made by aws-lc-rs: nothing here shares code with
//! the server's verifier.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gatehouse_core::clock::{Clock, SystemClock};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::browser::{Browser, code_for};
use crate::helpers::{Client, TestApp, authorize_params, code_params, refresh_params};

/// A client's DPoP key.
pub struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
    alg: Algorithm,
}

impl DpopKey {
    pub fn es256() -> DpopKey {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        Self::new(EncodingKey::from_ec_der(pkcs8.as_ref()), Algorithm::ES256)
    }

    pub fn eddsa() -> DpopKey {
        // RFC 8410 PKCS#8 v1 (the form jsonwebtoken reads): a fixed prefix, then the seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut seed = [0u8; 32];
        aws_lc_rs::rand::fill(&mut seed).unwrap();
        der.extend_from_slice(&seed);
        Self::new(EncodingKey::from_ed_der(&der), Algorithm::EdDSA)
    }

    fn new(key: EncodingKey, alg: Algorithm) -> DpopKey {
        let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        DpopKey { key, jwk, alg }
    }

    pub fn thumbprint(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// A proof with these claims (jti, iat filled in unless given).
    pub fn proof_with(&self, mut claims: Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        if claims.get("jti").is_none() {
            claims["jti"] = gatehouse_core::secret::random_id().into();
        }
        if claims.get("iat").is_none() {
            claims["iat"] = SystemClock.now().into();
        }
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    pub fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        let mut claims = json!({"htm": htm, "htu": htu});
        if let Some(t) = token {
            claims["ath"] = B64
                .encode(aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    t.as_bytes(),
                ))
                .into();
        }
        self.proof_with(claims)
    }
}

impl TestApp {
    /// A client credentials token request with `proof` in the `DPoP` header.
    async fn dpop_token(&self, c: &Client, proof: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/connect/token"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")]);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send().await.unwrap()
    }
}

fn claims_of(jwt: &str) -> Value {
    let body = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(body).unwrap()).unwrap()
}

#[tokio::test]
async fn a_proof_at_the_token_endpoint_binds_the_access_token_to_its_key() {
    let app = TestApp::spawn().await;
    let (api, _) = app.seed().await;
    let c = app
        .app("dev@acme.test", "cfgateway", Some("cfgateway"), None)
        .await;
    let token_url = app.url("/connect/token");
    for key in [DpopKey::es256(), DpopKey::eddsa()] {
        let resp = app
            .dpop_token(&c, Some(&key.proof("POST", &token_url, None)))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(claims_of(at)["cnf"], json!({"jkt": key.thumbprint()}));
        // Introspection tells the API the key and the type (RFC 9449 §6.2).
        let intro = app.introspect((&api.client_id, &api.secret), at).await;
        assert_eq!(intro["active"], true);
        assert_eq!(intro["token_type"], "DPoP");
        assert_eq!(intro["cnf"]["jkt"], key.thumbprint());
    }
    // Without a proof: a bearer token, as before.
    let body: Value = app.dpop_token(&c, None).await.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(claims_of(body["access_token"].as_str().unwrap())["cnf"].is_null());
}

#[tokio::test]
async fn bad_proofs_at_the_token_endpoint_are_invalid_dpop_proof() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app
        .app("dev@acme.test", "cfgateway", Some("cfgateway"), None)
        .await;
    let key = DpopKey::es256();
    let url = app.url("/connect/token");
    let now = SystemClock.now();
    let replayed = key.proof("POST", &url, None);
    assert_eq!(app.dpop_token(&c, Some(&replayed)).await.status(), 200);
    for (case, proof) in [
        ("replayed jti", replayed.clone()),
        ("GET", key.proof("GET", &url, None)),
        (
            "another URL",
            key.proof("POST", &app.url("/connect/introspect"), None),
        ),
        (
            "another host",
            key.proof("POST", "https://evil.test/connect/token", None),
        ),
        (
            "stale iat",
            key.proof_with(json!({"htm": "POST", "htu": url, "iat": now - 300})),
        ),
        ("not a JWT", "abc".to_owned()),
    ] {
        let resp = app.dpop_token(&c, Some(&proof)).await;
        assert_eq!(resp.status(), 400, "{case}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{case}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{case}: {body}");
    }
    // A private key in the header is refused (§4.3 step 7), even when the
    // signature is good.
    let mut jwk = serde_json::to_value(&key.jwk).unwrap();
    jwk["d"] = B64.encode([7u8; 32]).into();
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let claims = json!({"jti": "x1", "htm": "POST", "htu": url, "iat": now});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key.key, Algorithm::ES256).unwrap();
    let leaked = format!("{input}.{sig}");
    let body: Value = app
        .dpop_token(&c, Some(&leaked))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
}

#[tokio::test]
async fn the_token_endpoint_can_demand_server_nonces() {
    let app = TestApp::spawn_with(|c| c.dpop_nonce = true, Default::default()).await;
    app.seed().await;
    let c = app
        .app("dev@acme.test", "cfgateway", Some("cfgateway"), None)
        .await;
    let key = DpopKey::es256();
    let url = app.url("/connect/token");
    // §8: without a nonce, `use_dpop_nonce` and the nonce to use.
    let resp = app
        .dpop_token(&c, Some(&key.proof("POST", &url, None)))
        .await;
    assert_eq!(resp.status(), 400);
    let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    let wrong = key.proof_with(json!({"htm": "POST", "htu": url, "nonce": "made-up"}));
    let body: Value = app.dpop_token(&c, Some(&wrong)).await.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    let good = key.proof_with(json!({"htm": "POST", "htu": url, "nonce": nonce}));
    let resp = app.dpop_token(&c, Some(&good)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("dpop-nonce"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_only_with_a_proof_of_its_key() {
    let (app, web, _) = TestApp::web_setup().await;
    let key = DpopKey::es256();
    let token_url = app.url("/connect/token");
    let browser = Browser::new(&app);
    let code = code_for(&browser, &authorize_params(&web), "ana@acme.test").await;
    let resp = app
        .http
        .post(&token_url)
        .basic_auth(&web.client_id, Some(&web.secret))
        .header("DPoP", key.proof("POST", &token_url, None))
        .form(&code_params(&code).pairs())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    let userinfo = app.url("/connect/userinfo");
    let ask = async |scheme: &str, proof: Option<String>| {
        let mut req = app
            .http
            .get(&userinfo)
            .header("Authorization", format!("{scheme} {at}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send().await.unwrap()
    };
    let ok = ask("DPoP", Some(key.proof("GET", &userinfo, Some(at)))).await;
    assert_eq!(ok.status(), 200);
    let me: Value = ok.json().await.unwrap();
    assert!(me["sub"].is_string(), "{me}");
    // A thief: as a bearer token, without a proof, with another key's proof.
    let refused = |resp: reqwest::Response, error: &str| {
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(
            challenge.contains(&format!(r#"error="{error}""#)),
            "{challenge}"
        );
    };
    refused(ask("Bearer", None).await, "invalid_token");
    refused(ask("DPoP", None).await, "invalid_dpop_proof");
    let thief = DpopKey::es256();
    refused(
        ask("DPoP", Some(thief.proof("GET", &userinfo, Some(at)))).await,
        "invalid_dpop_proof",
    );
    refused(
        ask("DPoP", Some(key.proof("POST", &userinfo, Some(at)))).await,
        "invalid_dpop_proof",
    );

    // The refresh token is bound too: a thief holding it (and the client's
    // secret) refreshes neither with another key nor without a proof, and
    // those attempts do not use it up.
    let rt = tokens["refresh_token"].as_str().unwrap();
    let refresh = async |proof: Option<String>| {
        let mut req = app
            .http
            .post(&token_url)
            .basic_auth(&web.client_id, Some(&web.secret))
            .form(&refresh_params(rt).pairs());
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send().await.unwrap()
    };
    for proof in [Some(thief.proof("POST", &token_url, None)), None] {
        let resp = refresh(proof).await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    // The holder refreshes, and the new access token is bound to the same key.
    let resp = refresh(Some(key.proof("POST", &token_url, None))).await;
    let next: Value = resp.json().await.unwrap();
    assert_eq!(next["token_type"], "DPoP", "{next}");
    let at2 = next["access_token"].as_str().unwrap();
    assert_eq!(claims_of(at2)["cnf"]["jkt"], key.thumbprint());
}

#[tokio::test]
async fn an_app_that_requires_dpop_gets_no_token_without_a_proof() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let c = app
        .app("dev@acme.test", "cfgateway", Some("cfgateway"), None)
        .await;
    gatehouse_core::admin::update_app(
        app.s(),
        SystemClock.now(),
        &app.policy,
        &gatehouse_core::model::Actor::operator(),
        &c.client_id,
        gatehouse_core::admin::AppEdit {
            require_dpop: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.caught_up().await;
    let resp = app.dpop_token(&c, None).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    let key = DpopKey::es256();
    let proof = key.proof("POST", &app.url("/connect/token"), None);
    let resp = app.dpop_token(&c, Some(&proof)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn the_admin_api_refuses_a_dpop_bound_token_as_bearer() {
    let app = TestApp::spawn().await;
    app.seed().await;
    app.user("root@acme.test", "admin").await;
    let c = app
        .app(
            "root@acme.test",
            "gatehouse:admin",
            Some("gatehouse:admin"),
            None,
        )
        .await;
    let key = DpopKey::es256();
    let proof = key.proof("POST", &app.url("/connect/token"), None);
    let body: Value = app.dpop_token(&c, Some(&proof)).await.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let at = body["access_token"].as_str().unwrap();
    let resp = app
        .http
        .get(app.url("/api/v1/apps"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The same app's bearer token works.
    let bearer: Value = app.dpop_token(&c, None).await.json().await.unwrap();
    let resp = app
        .http
        .get(app.url("/api/v1/apps"))
        .bearer_auth(bearer["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn discovery_lists_the_proof_algorithms() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            doc["dpop_signing_alg_values_supported"],
            json!(["ES256", "RS256", "PS256", "EdDSA"]),
            "{path}"
        );
    }
}
