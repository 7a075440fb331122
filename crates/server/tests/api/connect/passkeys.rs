//! Passkeys (issue 15 §1, WebAuthn): registered on `/account/security`, used
//! alone at the authorization endpoint (discoverable credentials) and as the
//! second step after the password; `amr`/`acr` in the ID token; challenges are
//! single use, bound to the browser and expire; a counter that goes back is
//! refused; a removed passkey no longer signs in.
//!
//! The authenticator is written here, apart from the server's webauthn-rs: a
//! P-256 key from aws-lc-rs, the attestation object (`fmt` none) and the COSE
//! key encoded as CBOR by hand, assertions signed over authData ‖ SHA-256 of
//! the client data, as WebAuthn §6.3.3 says an authenticator does.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gatehouse_core::admin;
use gatehouse_core::clock::Clock;
use gatehouse_core::model::Actor;
use gatehouse_store_sql::SqliteOptions;
use serde_json::{Value, json};

use crate::browser::{Browser, Page, callback_params};
use crate::connect::device;
use crate::helpers::{PASSWORD, Params, TestApp, WebApp, authorize_params, code_params};

// ---- a software authenticator --------------------------------------------

fn cbor_head(major: u8, n: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        _ => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
    }
}

fn cbor_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        cbor_head(0, i as usize, out);
    } else {
        cbor_head(1, (-1 - i) as usize, out);
    }
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len(), out);
    out.extend_from_slice(b);
}

fn cbor_text(s: &str, out: &mut Vec<u8>) {
    cbor_head(3, s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

struct Authenticator {
    key: EcdsaKeyPair,
    cred_id: Vec<u8>,
    /// The WebAuthn user id registration gave it.
    user_handle: Vec<u8>,
    counter: u32,
    rp_id: String,
    origin: String,
}

impl Authenticator {
    fn new(app: &TestApp) -> Authenticator {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut cred_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut cred_id).unwrap();
        Authenticator {
            key,
            cred_id,
            user_handle: Vec::new(),
            counter: 0,
            rp_id: "localhost".into(),
            origin: app.base.replace("127.0.0.1", "localhost"),
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn auth_data(&self, flags: u8) -> Vec<u8> {
        let mut a = digest(&SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        a.push(flags);
        a.extend(self.counter.to_be_bytes());
        a
    }

    /// `navigator.credentials.create()` for the server's options.
    fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        self.user_handle = B64.decode(pk["user"]["id"].as_str().unwrap()).unwrap();
        let challenge = pk["challenge"].as_str().unwrap();
        let point = self.key.public_key().as_ref();
        let mut cose = Vec::new();
        cbor_head(5, 5, &mut cose);
        cbor_int(1, &mut cose); // kty: EC2
        cbor_int(2, &mut cose);
        cbor_int(3, &mut cose); // alg: ES256
        cbor_int(-7, &mut cose);
        cbor_int(-1, &mut cose); // crv: P-256
        cbor_int(1, &mut cose);
        cbor_int(-2, &mut cose);
        cbor_bytes(&point[1..33], &mut cose);
        cbor_int(-3, &mut cose);
        cbor_bytes(&point[33..65], &mut cose);
        // UP | UV | AT
        let mut auth = self.auth_data(0x45);
        auth.extend([0u8; 16]);
        auth.extend((self.cred_id.len() as u16).to_be_bytes());
        auth.extend(&self.cred_id);
        auth.extend(cose);
        let mut att = Vec::new();
        cbor_head(5, 3, &mut att);
        cbor_text("fmt", &mut att);
        cbor_text("none", &mut att);
        cbor_text("attStmt", &mut att);
        cbor_head(5, 0, &mut att);
        cbor_text("authData", &mut att);
        cbor_bytes(&auth, &mut att);
        let id = B64.encode(&self.cred_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(att),
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", challenge)),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get()`: the next counter value, signed.
    fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_with_counter(options, self.counter)
    }

    fn assert_with_counter(&self, options: &Value, counter: u32) -> Value {
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let client = self.client_data("webauthn.get", challenge);
        let mut auth = digest(&SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        auth.push(0x05); // UP | UV
        auth.extend(counter.to_be_bytes());
        let mut signed = auth.clone();
        signed.extend(digest(&SHA256, &client).as_ref());
        let sig = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        let id = B64.encode(&self.cred_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(auth),
                "clientDataJSON": B64.encode(client),
                "signature": B64.encode(sig.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
            "extensions": {},
        })
    }
}

// ---- the flows ------------------------------------------------------------

/// The seed's app and person, on a server whose issuer is `localhost` (an IP
/// address cannot be a WebAuthn relying party).
async fn setup() -> (TestApp, WebApp) {
    let app = TestApp::spawn_with(
        |c| c.issuer = c.issuer.replace("127.0.0.1", "localhost"),
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("openid cfgateway").await;
    (app, web)
}

fn oidc(web: &WebApp) -> Params {
    authorize_params(web).set("scope", "openid cfgateway")
}

/// `POST /passkey/challenge` as the page's script does.
async fn challenge(app: &TestApp, browser: &Browser, page: &Page, purpose: &str) -> (u16, Value) {
    let csrf = page.hidden("csrf_token").unwrap();
    let r = browser
        .http
        .post(app.url("/passkey/challenge"))
        .form(&[("csrf_token", csrf.as_str()), ("purpose", purpose)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Signs in with the password (allowing the app), then registers a passkey
/// named `name` on the account page.
async fn sign_in_and_register(app: &TestApp, web: &WebApp, name: &str) -> (Browser, Authenticator) {
    let b = Browser::new(app);
    b.sign_in_and_allow(&authorize_params(web), "ana@acme.test")
        .await;
    let mut auth = Authenticator::new(app);
    let page = register(app, &b, &mut auth, name).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Passkey added"), "{}", page.body);
    (b, auth)
}

async fn register(app: &TestApp, b: &Browser, auth: &mut Authenticator, name: &str) -> Page {
    let page = b.get(&app.url("/account/security")).await;
    assert!(
        page.body.contains("data-passkey=\"register\""),
        "{}",
        page.body
    );
    let (status, options) = challenge(app, b, &page, "register").await;
    assert_eq!(status, 200, "{options}");
    let sel = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "required", "{options}");
    assert_eq!(sel["userVerification"], "required", "{options}");
    assert_eq!(options["publicKey"]["attestation"], "none", "{options}");
    let cred = auth.register(&options).to_string();
    let csrf = page.hidden("csrf_token").unwrap();
    b.post(
        "/account/security/passkeys",
        &[("csrf_token", &csrf), ("name", name), ("credential", &cred)],
    )
    .await
}

/// Authorize in a new browser and sign in with the passkey alone.
async fn passkey_sign_in(app: &TestApp, web: &WebApp, auth: &mut Authenticator) -> (Browser, Page) {
    let b = Browser::new(app);
    let login = b.authorize(&oidc(web)).await;
    assert!(
        login.body.contains("action=\"/login/passkey\""),
        "{}",
        login.body
    );
    let (status, options) = challenge(app, &b, &login, "signin").await;
    assert_eq!(status, 200, "{options}");
    // Discoverable: no allow-list, the authenticator finds its own key.
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{options}"
    );
    let cred = auth.assert(&options).to_string();
    let page = post_assertion(&b, &login, &cred).await;
    (b, page)
}

async fn post_assertion(b: &Browser, login: &Page, cred: &str) -> Page {
    let csrf = login.hidden("csrf_token").unwrap();
    let request = login.hidden("request").unwrap();
    b.post(
        "/login/passkey",
        &[
            ("csrf_token", &csrf),
            ("request", &request),
            ("credential", cred),
        ],
    )
    .await
}

async fn finish(app: &TestApp, web: &WebApp, b: &Browser, mut page: Page) -> Value {
    if page.is_consent() {
        page = b.consent(&page, "allow").await;
    }
    let code = callback_params(&page.redirect())
        .get("code")
        .expect("code")
        .to_owned();
    let resp = app.web_token(web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn id_claims(tokens: &Value) -> Value {
    let jwt = tokens["id_token"].as_str().expect("id_token");
    serde_json::from_slice(&B64.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let org = app.org("acme-studio").await;
    admin::audit_log(app.s(), &Actor::operator(), &org, None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn a_passkey_alone_signs_in_and_the_id_token_says_hwk_and_mfa() {
    let (app, web) = setup().await;
    let (_, mut auth) = sign_in_and_register(&app, &web, "Work laptop").await;
    assert!(
        audit_actions(&app)
            .await
            .contains(&"mfa.passkey_registered".to_owned())
    );
    let (b, page) = passkey_sign_in(&app, &web, &mut auth).await;
    let claims = id_claims(&finish(&app, &web, &b, page).await);
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]));
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");
    // The account page lists it, used now.
    let listed = b.get(&app.url("/account/security")).await;
    assert!(
        listed.body.contains("value=\"Work laptop\""),
        "{}",
        listed.body
    );
    assert!(listed.body.contains("last used"), "{}", listed.body);
}

#[tokio::test]
async fn challenges_work_once_in_their_browser_and_expire() {
    let (app, web) = setup().await;
    let (_, mut auth) = sign_in_and_register(&app, &web, "Phone").await;
    // Replayed: the challenge was taken by the first post.
    let b = Browser::new(&app);
    let login = b.authorize(&oidc(&web)).await;
    let (_, options) = challenge(&app, &b, &login, "signin").await;
    let cred = auth.assert(&options).to_string();
    let first = post_assertion(&b, &login, &cred).await;
    assert!(first.status == 303 || first.is_consent(), "{first:?}");
    let b2 = Browser::new(&app);
    let login2 = b2.authorize(&oidc(&web)).await;
    // Another browser, the same assertion: no challenge of its own.
    let stolen = post_assertion(&b2, &login2, &cred).await;
    assert_eq!(stolen.status, 400, "{stolen:?}");
    assert!(
        stolen.body.contains("expired or was used"),
        "{}",
        stolen.body
    );
    // Its own challenge, but another's answer: the signature is over another challenge.
    let (_, _) = challenge(&app, &b2, &login2, "signin").await;
    let replay = post_assertion(&b2, &login2, &cred).await;
    assert_eq!(replay.status, 401, "{replay:?}");
    // Expired: five minutes.
    let b3 = Browser::new(&app);
    let login3 = b3.authorize(&oidc(&web)).await;
    let (_, options) = challenge(&app, &b3, &login3, "signin").await;
    app.clock.advance(301);
    let late = post_assertion(&b3, &login3, &auth.assert(&options).to_string()).await;
    assert_eq!(late.status, 400, "{late:?}");
    // Without the form's CSRF token, no challenge at all.
    let r = b3
        .http
        .post(app.url("/passkey/challenge"))
        .form(&[("purpose", "signin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_counter_that_goes_back_is_refused_and_audited() {
    let (app, web) = setup().await;
    let (_, mut auth) = sign_in_and_register(&app, &web, "Key").await;
    let (_, ok) = passkey_sign_in(&app, &web, &mut auth).await;
    assert!(ok.status == 303 || ok.is_consent(), "{ok:?}");
    // A clone still at the old counter.
    let b = Browser::new(&app);
    let login = b.authorize(&oidc(&web)).await;
    let (_, options) = challenge(&app, &b, &login, "signin").await;
    let cloned = auth.assert_with_counter(&options, auth.counter).to_string();
    let refused = post_assertion(&b, &login, &cloned).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(refused.body.contains("not accepted"), "{}", refused.body);
    assert!(
        audit_actions(&app)
            .await
            .contains(&"signin.passkey_failed".to_owned())
    );
}

#[tokio::test]
async fn passkeys_are_renamed_bounded_and_a_removed_one_no_longer_signs_in() {
    let (app, web) = setup().await;
    let (b, mut auth) = sign_in_and_register(&app, &web, "Old name").await;
    let page = b.get(&app.url("/account/security")).await;
    let id = page.hidden("id").unwrap();
    let csrf = page.hidden("csrf_token").unwrap();
    let long = "x".repeat(65);
    for (name, status) in [("  ", 422), (long.as_str(), 422), ("Desk key", 200)] {
        let r = b
            .post(
                "/account/security/passkeys/rename",
                &[("csrf_token", &csrf), ("id", &id), ("name", name)],
            )
            .await;
        assert_eq!(r.status, status, "{name}: {r:?}");
    }
    let page = b.get(&app.url("/account/security")).await;
    assert!(page.body.contains("value=\"Desk key\""), "{}", page.body);
    // Someone else's id (or a made-up one) is not found.
    let r = b
        .post(
            "/account/security/passkeys/remove",
            &[("csrf_token", &csrf), ("id", "nope")],
        )
        .await;
    assert_eq!(r.status, 404);
    let r = b
        .post(
            "/account/security/passkeys/remove",
            &[("csrf_token", &csrf), ("id", &id)],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("No passkeys yet"), "{}", r.body);
    let actions = audit_actions(&app).await;
    for a in ["mfa.passkey_renamed", "mfa.passkey_removed"] {
        assert!(actions.contains(&a.to_owned()), "{a}: {actions:?}");
    }
    let (_, gone) = passkey_sign_in(&app, &web, &mut auth).await;
    assert_eq!(gone.status, 401, "{gone:?}");
    assert!(gone.is_login(), "{gone:?}");
    // Ten at most.
    for i in 0..10 {
        let mut another = Authenticator::new(&app);
        let r = register(&app, &b, &mut another, &format!("Key {i}")).await;
        assert_eq!(r.status, 200, "{i}: {r:?}");
    }
    let page = b.get(&app.url("/account/security")).await;
    assert!(!page.body.contains("data-passkey=\"register\""));
    let (status, body) = challenge(&app, &b, &page, "register").await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_passkey_is_the_second_step_after_the_password_and_satisfies_the_policy() {
    let (app, web) = setup().await;
    let (_, mut auth) = sign_in_and_register(&app, &web, "Laptop").await;
    // With a passkey, the password alone no longer signs in.
    let b = Browser::new(&app);
    let login = b.authorize(&oidc(&web)).await;
    let asked = b.login(&login, "ana@acme.test", PASSWORD).await;
    assert_eq!(asked.status, 200, "{asked:?}");
    assert!(
        asked.body.contains("data-passkey=\"second-factor\""),
        "{}",
        asked.body
    );
    let (status, options) = challenge(&app, &b, &asked, "second-factor").await;
    assert_eq!(status, 200, "{options}");
    let allowed = options["publicKey"]["allowCredentials"].to_string();
    assert!(allowed.contains(&B64.encode(&auth.cred_id)), "{options}");
    let cred = auth.assert(&options).to_string();
    let csrf = asked.hidden("csrf_token").unwrap();
    let request = asked.hidden("request").unwrap();
    let done = b
        .post(
            "/login/second-factor",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("credential", &cred),
            ],
        )
        .await;
    let claims = id_claims(&finish(&app, &web, &b, done).await);
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");

    // The organization requires a second factor: a passkey alone satisfies it.
    let org = app.org("acme-studio").await;
    admin::set_requires_mfa(app.s(), app.clock.now(), &Actor::operator(), &org, true)
        .await
        .unwrap();
    let (b, page) = passkey_sign_in(&app, &web, &mut auth).await;
    let claims = id_claims(&finish(&app, &web, &b, page).await);
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");
}

// ---- the console and the device page (issue 15: every sign-in page) -------

/// The console's sign-in page offers the passkey; one alone signs in there
/// (any organization: the passkey names its person) and the console opens.
#[tokio::test]
async fn a_passkey_alone_signs_in_at_the_console() {
    let app = TestApp::spawn_with(
        |c| c.issuer = c.issuer.replace("127.0.0.1", "localhost"),
        SqliteOptions::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "admin").await;
    let web = app.web_app("openid cfgateway").await;
    let (_, mut auth) = sign_in_and_register(&app, &web, "Laptop").await;

    let b = Browser::new(&app);
    let login = b.get(&app.url("/console")).await;
    assert!(
        login.body.contains("action=\"/console/login/passkey\""),
        "{}",
        login.body
    );
    assert!(login.body.contains("/assets/passkey.js"), "{}", login.body);
    // An answer to another challenge first: refused, no session.
    let (_, stale) = challenge(&app, &b, &login, "signin").await;
    let (_, _) = challenge(&app, &b, &login, "signin").await;
    let wrong = auth.assert(&stale).to_string();
    let csrf = login.hidden("csrf_token").unwrap();
    let refused = b
        .post(
            "/console/login/passkey",
            &[("csrf_token", &csrf), ("credential", &wrong)],
        )
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        b.get(&app.url("/console"))
            .await
            .body
            .contains("action=\"/console/login\"")
    );
    // Without the form's CSRF token: refused before anything is looked at.
    let (_, options) = challenge(&app, &b, &login, "signin").await;
    let cred = auth.assert(&options).to_string();
    let forged = b
        .post("/console/login/passkey", &[("credential", &cred)])
        .await;
    assert_eq!(forged.status, 403, "{forged:?}");

    let (_, options) = challenge(&app, &b, &login, "signin").await;
    let cred = auth.assert(&options).to_string();
    let done = b
        .post(
            "/console/login/passkey",
            &[("csrf_token", &csrf), ("credential", &cred)],
        )
        .await;
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(done.headers["location"], "/console");
    let home = b.get(&app.url("/console")).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<h1>Overview</h1>"), "{}", home.body);
}

/// The password's second step offers what the person has: only a passkey
/// (no code field), only an authenticator app (no passkey button), or both;
/// the same at the authorization endpoint and at the console.
#[tokio::test]
async fn the_second_step_offers_only_the_factors_the_person_has() {
    let (app, web) = setup().await;
    let (_, _auth) = sign_in_and_register(&app, &web, "Laptop").await;
    let has_code = |p: &Page| p.body.contains("name=\"code\"");
    let has_passkey = |p: &Page| p.body.contains("data-passkey=\"second-factor\"");

    // Only a passkey.
    let b = Browser::new(&app);
    let asked = b
        .login(&b.authorize(&oidc(&web)).await, "ana@acme.test", PASSWORD)
        .await;
    assert!(has_passkey(&asked) && !has_code(&asked), "{}", asked.body);
    let at_console = console_second_step(&app, "ana@acme.test").await;
    assert!(
        has_passkey(&at_console) && !has_code(&at_console),
        "{}",
        at_console.body
    );

    // Only an authenticator app.
    app.password_user("tom@acme.test", "developer").await;
    let t = Browser::new(&app);
    t.sign_in_and_allow(&authorize_params(&web), "tom@acme.test")
        .await;
    crate::connect::second_factor::enrol_from(&app, &t, "/account/security").await;
    let b = Browser::new(&app);
    let asked = b
        .login(&b.authorize(&oidc(&web)).await, "tom@acme.test", PASSWORD)
        .await;
    assert!(has_code(&asked) && !has_passkey(&asked), "{}", asked.body);
    assert!(!asked.body.contains("passkey.js"), "{}", asked.body);
    let at_console = console_second_step(&app, "tom@acme.test").await;
    assert!(
        has_code(&at_console) && !has_passkey(&at_console),
        "{}",
        at_console.body
    );

    // Both.
    let mut second = Authenticator::new(&app);
    let page = register(&app, &t, &mut second, "Phone").await;
    assert_eq!(page.status, 200, "{page:?}");
    let b = Browser::new(&app);
    let asked = b
        .login(&b.authorize(&oidc(&web)).await, "tom@acme.test", PASSWORD)
        .await;
    assert!(has_code(&asked) && has_passkey(&asked), "{}", asked.body);
}

/// The console's password step for `email`, then its second-step page.
async fn console_second_step(app: &TestApp, email: &str) -> Page {
    let b = Browser::new(app);
    let login = b.get(&app.url("/console")).await;
    let csrf = login.hidden("csrf_token").unwrap();
    let after = b
        .post(
            "/console/login",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(after.status, 303, "{after:?}");
    let to = after.headers["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/signin/second-factor?"), "{to}");
    b.get(&app.url(&to)).await
}

/// The device page offers the passkey; one alone signs in there, the code
/// comes along to be confirmed, and the app's consent is shown only to a
/// person of the app's organization.
#[tokio::test]
async fn a_passkey_alone_signs_in_at_the_device_page_for_an_app_of_ones_own_organization() {
    let (app, web) = setup().await;
    let (_, mut auth) = sign_in_and_register(&app, &web, "Laptop").await;
    let dev = device::device_app(&app).await;
    let started = device_codes(&app, &dev).await;
    let user_code = started["user_code"].as_str().unwrap();
    let link = link_of(&started);
    let link = link.as_str();

    let b = Browser::new(&app);
    let form = device_passkey_sign_in(&app, &b, link, &mut auth).await;
    assert_eq!(form.hidden("user_code").as_deref(), Some(user_code));
    let consent = device::enter(&b, &form, user_code).await;
    assert!(consent.is_device_consent(), "{consent:?}");
    let done = device::decide(&b, &consent, "allow").await;
    assert!(done.body.contains("Device connected"), "{done:?}");
    let device_code = started["device_code"].as_str().unwrap();
    let tokens = device::poll(&app, &dev, device_code).await;
    assert_eq!(tokens.status(), 200);

    // Someone of another organization, with their own passkey: signed in,
    // but the code of an app of Acme Studio is refused like a wrong one.
    let now = app.clock.now();
    let op = Actor::operator();
    let bolt = admin::create_org(app.s(), now, &op, "Bolt Works", None)
        .await
        .unwrap();
    let new = admin::NewUser {
        org: &bolt,
        email: "bo@bolt.test",
        name: None,
        role: "admin",
        groups: vec![],
        password: Some(PASSWORD),
        profile: Default::default(),
    };
    admin::create_user(app.s(), now, &op, new).await.unwrap();
    let bo = Browser::new(&app);
    let login = bo.get(&app.url("/console")).await;
    let csrf = login.hidden("csrf_token").unwrap();
    let signed = bo
        .post(
            "/console/login",
            &[
                ("csrf_token", &csrf),
                ("email", "bo@bolt.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{signed:?}");
    let mut bos_key = Authenticator::new(&app);
    assert_eq!(
        register(&app, &bo, &mut bos_key, "Bo's key").await.status,
        200
    );
    let started = device_codes(&app, &dev).await;
    let b = Browser::new(&app);
    let form = device_passkey_sign_in(&app, &b, &link_of(&started), &mut bos_key).await;
    assert!(form.body.contains("bo@bolt.test"), "{form:?}");
    let page = device::enter(&b, &form, started["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(!page.is_device_consent());
}

/// A device's codes (the issuer is `localhost` here).
async fn device_codes(app: &TestApp, dev: &crate::helpers::WebApp) -> Value {
    let resp = device::ask(app, dev, "cfgateway").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `verification_uri_complete` on the address the test's browser uses (its
/// cookies are per host).
fn link_of(started: &Value) -> String {
    let link = started["verification_uri_complete"].as_str().unwrap();
    assert!(link.starts_with("http://localhost:"), "{link}");
    link.replace("localhost", "127.0.0.1")
}

/// Opens the device `link` and signs in with `auth`'s passkey alone: the code form.
async fn device_passkey_sign_in(
    app: &TestApp,
    b: &Browser,
    link: &str,
    auth: &mut Authenticator,
) -> Page {
    let login = b.get(link).await;
    assert!(
        login.body.contains("action=\"/device/login/passkey\""),
        "{}",
        login.body
    );
    let (status, options) = challenge(app, b, &login, "signin").await;
    assert_eq!(status, 200, "{options}");
    let cred = auth.assert(&options).to_string();
    let csrf = login.hidden("csrf_token").unwrap();
    let request = login.hidden("request").unwrap();
    let done = b
        .post(
            "/device/login/passkey",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("credential", &cred),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{done:?}");
    let to = done.headers["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/device?user_code="), "{to}");
    let form = b.get(&app.url(&to)).await;
    assert!(form.is_code_form(), "{form:?}");
    form
}

/// Conditional UI: each sign-in page's e-mail field lets the browser offer
/// passkeys in its autofill (`autocomplete="username webauthn"`), when
/// passkeys are on; with an IP-address issuer (passkeys off) it does not.
#[tokio::test]
async fn the_three_sign_in_pages_offer_passkeys_in_the_email_autofill() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    let pages = [
        b.authorize(&oidc(&web)).await,
        b.get(&app.url("/console")).await,
        b.get(&app.url("/device")).await,
    ];
    for page in &pages {
        assert!(
            page.body.contains("autocomplete=\"username webauthn\""),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("data-passkey=\"signin\""),
            "{}",
            page.body
        );
        assert!(
            page.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
    }
    let (off, web, _) = TestApp::web_setup().await;
    let b = Browser::new(&off);
    let pages = [
        b.authorize(&oidc(&web)).await,
        b.get(&off.url("/console")).await,
        b.get(&off.url("/device")).await,
    ];
    for page in &pages {
        assert!(
            page.body.contains("autocomplete=\"username\""),
            "{}",
            page.body
        );
        assert!(!page.body.contains("passkey.js"), "{}", page.body);
    }
}
