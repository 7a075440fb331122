//! Signing in through the organization's own identity provider, with two real
//! Gatehouse processes: the "upstream" (the customer's IdP, at
//! `http://localhost:<port>`) and the "downstream" (at `http://127.0.0.1:<port>`,
//! in development mode so it may call a loopback issuer). Different host names
//! keep their cookies apart, as two sites' would be. A person starts at the
//! downstream's authorization URL, is sent upstream, signs in there, comes back
//! and the app gets a code whose ID token names their downstream account. The
//! console and the device page sign in the same way (their continuation after
//! the way back is theirs), and an organization that claims another's domain
//! only ever signs people into itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;

use base64::Engine;
use common::browser::user_with_password;
use common::web::{browser_client, callback_server, form_query, id_token_after, post_form};
use common::{Server, json};
use reqwest::blocking::{Client, Response};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Pair {
    pub up: Server,
    pub down: Server,
    pub up_dir: tempfile::TempDir,
    pub down_dir: tempfile::TempDir,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// The downstream's client at the upstream (what a provider is set up with).
    pub idp_client_id: String,
    pub idp_client_secret: String,
    pub issuer: String,
}

/// Both servers: upstream people `ann@acme.test` (verified e-mail) and
/// `bob@acme.test` (not verified), `carol@acme.test` on both sides; the
/// downstream app "Studio sync"; the downstream's identity provider for
/// `acme.test` with `allow_passwords` as given and default role `developer`.
pub fn pair(allow_passwords: bool) -> Pair {
    let up_dir = tempfile::tempdir().unwrap();
    let down_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    let up = Server::start(up_dir.path(), &["--listen", &listen, "--issuer", &issuer]);
    let down = Server::start(down_dir.path(), &["--dev"]);

    let u = up_dir.path();
    json(u, &["org", "create", "--name", "Acme IdP", "--json"]);
    for (email, verified) in [
        ("ann@acme.test", true),
        ("bob@acme.test", false),
        ("carol@acme.test", true),
    ] {
        user_with_password(u, "acme-idp", email, "developer", PASSWORD);
        if verified {
            json(
                u,
                &["user", "set-profile", email, "--email-verified", "--json"],
            );
        }
    }
    let callback = format!("{}/upstream/callback", down.base);
    let at_idp = json(
        u,
        &[
            "app",
            "register",
            "--org",
            "acme-idp",
            "--name",
            "Acme Studio sign-in",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &callback,
            "--dev",
            "--scopes",
            "openid email profile",
            "--json",
        ],
    );

    let d = down_dir.path();
    common::acme_api(d, "cfgateway");
    user_with_password(
        d,
        "acme-studio",
        "carol@acme.test",
        "admin",
        "carol's own password",
    );
    let cb = format!("http://127.0.0.1:{}/callback", callback_server());
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Studio sync",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &cb,
            "--dev",
            "--require-pkce",
            "false",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let p = Pair {
        up,
        down,
        up_dir,
        down_dir,
        client_id: app["client_id"].as_str().unwrap().to_owned(),
        client_secret: app["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri: cb,
        idp_client_id: at_idp["client_id"].as_str().unwrap().to_owned(),
        idp_client_secret: at_idp["client_secret"].as_str().unwrap().to_owned(),
        issuer,
    };
    p.set_provider("acme-studio", allow_passwords, "developer");
    p
}

fn set_provider(
    dir: &Path,
    org: &str,
    (issuer, client_id, secret): (&str, &str, &str),
    allow_passwords: bool,
    default_role: &str,
) {
    let allow = if allow_passwords { "true" } else { "false" };
    let v: Value = common::json_with_stdin(
        dir,
        &[
            "--dev",
            "org",
            "identity-provider",
            "set",
            org,
            "--issuer",
            issuer,
            "--client-id",
            client_id,
            "--client-secret-stdin",
            "--domains",
            "acme.test",
            "--allow-passwords",
            allow,
            "--default-role",
            default_role,
            "--json",
        ],
        secret,
    );
    assert_eq!(v["domains"], serde_json::json!(["acme.test"]));
    assert!(!v.to_string().contains(secret));
}

fn origin(r: &Response) -> String {
    let u = r.url();
    format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().unwrap(),
        u.port().unwrap()
    )
}

impl Pair {
    /// The downstream organization `org`'s provider: the upstream, for `acme.test`.
    fn set_provider(&self, org: &str, allow_passwords: bool, default_role: &str) {
        let idp = (
            self.issuer.as_str(),
            self.idp_client_id.as_str(),
            self.idp_client_secret.as_str(),
        );
        set_provider(
            self.down_dir.path(),
            org,
            idp,
            allow_passwords,
            default_role,
        );
    }

    fn authorize_url(&self) -> String {
        let q = form_query(&[
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", "openid email cfgateway"),
            ("response_type", "code"),
            ("state", "s-42"),
            ("nonce", "app-nonce"),
            ("claims", r#"{"id_token":{"email":null}}"#),
        ]);
        format!("{}/connect/authorize?{q}", self.down.base)
    }

    /// The downstream's sign-in page, then "Sign in with your organization"
    /// for `email`: the upstream's sign-in page.
    fn to_upstream(&self, c: &Client, email: &str) -> Response {
        let login = c.get(self.authorize_url()).send().unwrap().text().unwrap();
        assert!(login.contains("Sign in with your organization"), "{login}");
        let r = post_form(
            c,
            &self.down.url("/login"),
            &login,
            &[("email", email), ("sso", "1")],
        );
        assert_eq!(r.status(), 200);
        assert_eq!(origin(&r), self.up.base.replace("127.0.0.1", "localhost"));
        r
    }

    /// Signs `email` in upstream and allows: the first response back downstream
    /// (redirects followed), or a refusal page.
    fn through_upstream(&self, c: &Client, upstream_login: Response, email: &str) -> Response {
        let up = origin(&upstream_login);
        let page = upstream_login.text().unwrap();
        let r = post_form(
            c,
            &format!("{up}/login"),
            &page,
            &[("email", email), ("password", PASSWORD)],
        );
        if origin(&r) != up {
            // Allowed before: the upstream sent the person straight back.
            return r;
        }
        let page = r.text().unwrap();
        assert!(page.contains("Yes, Allow"), "upstream consent: {page}");
        post_form(c, &format!("{up}/consent"), &page, &[("decision", "allow")])
    }

    /// Signs `email` in upstream and allows, then allows the app downstream:
    /// the last response (the app's callback redirect, or a refusal page).
    fn sign_in_upstream(&self, c: &Client, upstream_login: Response, email: &str) -> Response {
        let r = self.through_upstream(c, upstream_login, email);
        if !r.status().is_success() || origin(&r) != self.down.base {
            return r;
        }
        let page = r.text().unwrap();
        if !page.contains("Yes, Allow") {
            panic!("downstream after coming back: {page}");
        }
        post_form(
            c,
            &self.down.url("/consent"),
            &page,
            &[("decision", "allow")],
        )
    }

    /// The code in the app's callback redirect, exchanged: the ID token's claims.
    fn exchange(&self, r: Response) -> Value {
        let token_url = self.down.url("/connect/token");
        id_token_after(
            r,
            &token_url,
            &self.client_id,
            &self.client_secret,
            &self.redirect_uri,
        )
    }

    fn downstream_user(&self, email: &str) -> Option<Value> {
        self.user_in("acme-studio", email)
    }

    /// The downstream account of `email` in organization `org`.
    fn user_in(&self, org: &str, email: &str) -> Option<Value> {
        let users = json(
            self.down_dir.path(),
            &["user", "list", "--org", org, "--json"],
        );
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .cloned()
    }

    /// The console's sign-in page, then "Sign in with your organization" for
    /// `email` (naming `org` when given): the upstream's sign-in page when sent there.
    fn console_sso(&self, c: &Client, email: &str, org: Option<&str>) -> Response {
        let login = c
            .get(self.down.url("/console"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(login.contains("Sign in with your organization"), "{login}");
        let mut extra = vec![("email", email), ("sso", "1")];
        if let Some(o) = org {
            extra.push(("organization", o));
        }
        post_form(c, &self.down.url("/console/login"), &login, &extra)
    }

    fn upstream_origin(&self) -> String {
        self.up.base.replace("127.0.0.1", "localhost")
    }

    fn audit(&self) -> String {
        json(
            self.down_dir.path(),
            &["audit", "--org", "acme-studio", "--json"],
        )
        .to_string()
    }
}

#[test]
fn a_new_person_is_created_with_the_default_role_and_signed_in_through_the_upstream() {
    let p = pair(false);
    assert!(p.downstream_user("ann@acme.test").is_none());
    let c = browser_client();
    let up = p.to_upstream(&c, "ann@acme.test");
    let done = p.sign_in_upstream(&c, up, "ann@acme.test");
    let id = p.exchange(done);
    let ann = p
        .downstream_user("ann@acme.test")
        .expect("created just in time");
    assert_eq!(ann["role"], "developer");
    assert_eq!(id["sub"], ann["id"]);
    assert_eq!(id["email"], "ann@acme.test");
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    assert_eq!(id["nonce"], "app-nonce");
    let audit = p.audit();
    assert!(
        audit.contains("signed in through the identity provider"),
        "{audit}"
    );
    assert!(audit.contains("user.create"), "{audit}");
}

#[test]
fn an_existing_account_is_matched_by_verified_email_and_passwords_are_refused() {
    let p = pair(false);
    let carol = p.downstream_user("carol@acme.test").unwrap();
    // Local passwords are off for acme.test: the form says what to do instead.
    let c = browser_client();
    let login = c.get(p.authorize_url()).send().unwrap().text().unwrap();
    let r = post_form(
        &c,
        &p.down.url("/login"),
        &login,
        &[
            ("email", "carol@acme.test"),
            ("password", "carol's own password"),
        ],
    );
    assert_eq!(r.status(), 400);
    let page = r.text().unwrap();
    assert!(page.contains("through its own identity provider"), "{page}");

    let up = p.to_upstream(&c, "carol@acme.test");
    let id = p.exchange(p.sign_in_upstream(&c, up, "carol@acme.test"));
    assert_eq!(id["sub"], carol["id"]);
    let again = p.downstream_user("carol@acme.test").unwrap();
    assert_eq!(
        again["role"], "admin",
        "the existing account keeps its role"
    );
}

#[test]
fn passwords_stay_usable_when_allowed() {
    let p = pair(true);
    let c = browser_client();
    let login = c.get(p.authorize_url()).send().unwrap().text().unwrap();
    let r = post_form(
        &c,
        &p.down.url("/login"),
        &login,
        &[
            ("email", "carol@acme.test"),
            ("password", "carol's own password"),
        ],
    );
    let page = r.text().unwrap();
    assert!(page.contains("Yes, Allow"), "{page}");
}

#[test]
fn an_unverified_email_is_refused() {
    let p = pair(false);
    let c = browser_client();
    let up = p.to_upstream(&c, "bob@acme.test");
    let r = p.sign_in_upstream(&c, up, "bob@acme.test");
    assert_eq!(r.status(), 403);
    let page = r.text().unwrap();
    assert!(
        page.contains("has not verified your e-mail address"),
        "{page}"
    );
    assert!(p.downstream_user("bob@acme.test").is_none());
    assert!(p.audit().contains("not verified"));
}

/// The redirect to the upstream, not followed: its query.
fn begin_without_following(p: &Pair, c: &Client, email: &str) -> HashMap<String, String> {
    let login = c.get(p.authorize_url()).send().unwrap().text().unwrap();
    let r = post_form(
        c,
        &p.down.url("/login"),
        &login,
        &[("email", email), ("sso", "1")],
    );
    assert_eq!(r.status(), 303, "{:?}", r.text());
    let to = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/connect/authorize");
    to.query_pairs().into_owned().collect()
}

fn no_redirects_with_cookies() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn a_state_from_another_browser_or_a_changed_nonce_is_refused() {
    let p = pair(false);
    let a = no_redirects_with_cookies();
    let first = begin_without_following(&p, &a, "ann@acme.test");
    assert_eq!(first["code_challenge_method"], "S256");
    assert!(first["nonce"].len() >= 32 && first["state"].len() >= 32);
    // Another browser (no state cookie) bringing A's state back is refused.
    let other = browser_client();
    let r = other
        .get(format!(
            "{}/upstream/callback?code=x&state={}",
            p.down.base, first["state"]
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("did not start in this browser"));

    // A second start replaces the cookie; the upstream is then made to sign a
    // token with the first start's nonce, for the second start's state and PKCE.
    let second = begin_without_following(&p, &a, "ann@acme.test");
    let mut tampered = second.clone();
    tampered.insert("nonce".into(), first["nonce"].clone());
    let pairs: Vec<(&str, &str)> = tampered
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let upo = p.up.base.replace("127.0.0.1", "localhost");
    let idp = no_redirects_with_cookies();
    let page = idp
        .get(format!("{upo}/connect/authorize?{}", form_query(&pairs)))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let r = post_form(
        &idp,
        &format!("{upo}/login"),
        &page,
        &[("email", "ann@acme.test"), ("password", PASSWORD)],
    );
    let page = r.text().unwrap();
    let r = post_form(
        &idp,
        &format!("{upo}/consent"),
        &page,
        &[("decision", "allow")],
    );
    assert!(r.status().is_redirection());
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/upstream/callback?", p.down.base)));
    // Brought back by another browser: refused, and not used up.
    let r = other.get(&callback).send().unwrap();
    assert_eq!(r.status(), 400);
    // Browser A holds the state's cookie, but the token's nonce is not its own.
    let r = a.get(&callback).send().unwrap();
    assert_eq!(r.status(), 403, "{:?}", r.text());
    let audit = p.audit();
    assert!(audit.contains("nonce"), "{audit}");
    assert!(p.downstream_user("ann@acme.test").is_none());
    // The same state again: already used.
    let r = a.get(&callback).send().unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn a_tenant_claiming_another_organizations_domain_signs_no_one_into_that_organization() {
    let p = pair(false);
    json(
        p.down_dir.path(),
        &["org", "create", "--name", "Evil Corp", "--json"],
    );
    // Evil Corp's admin points its own provider at acme.test (its provider
    // will vouch for any acme.test address it likes).
    p.set_provider("evil-corp", false, "admin");
    let carol = p.downstream_user("carol@acme.test").unwrap();

    // Two organizations claim the domain: the console asks, never picks.
    let c = browser_client();
    let r = p.console_sso(&c, "carol@acme.test", None);
    assert_eq!(r.status(), 200);
    assert_eq!(origin(&r), p.down.base);
    let page = r.text().unwrap();
    assert!(page.contains("Several organizations"), "{page}");
    assert!(page.contains("name=\"organization\""), "{page}");

    // Named, Evil Corp's provider signs carol@acme.test in: into an account
    // of Evil Corp (created now), never Acme Studio's.
    let up = p.console_sso(&c, "carol@acme.test", Some("evil-corp"));
    assert_eq!(origin(&up), p.upstream_origin());
    let back = p.through_upstream(&c, up, "carol@acme.test");
    assert_eq!(back.status(), 200);
    assert_eq!(back.url().path(), "/console");
    let home = back.text().unwrap();
    assert!(home.contains("Evil Corp"), "{home}");
    assert!(!home.contains("Acme Studio"), "{home}");
    let evil_carol = p
        .user_in("evil-corp", "carol@acme.test")
        .expect("Evil Corp's own");
    assert_ne!(evil_carol["id"], carol["id"]);
    assert_eq!(p.downstream_user("carol@acme.test").unwrap(), carol);
    let audit = p.audit();
    assert!(
        !audit.contains("signed in through the identity provider"),
        "{audit}"
    );
}

#[test]
fn the_device_flow_signs_in_through_the_upstream_and_the_device_gets_its_token() {
    let p = pair(false);
    let tv = json(
        p.down_dir.path(),
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Studio TV",
            "--grant",
            "device_code",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let (id, secret) = (
        tv["client_id"].as_str().unwrap(),
        tv["client_secret"].as_str().unwrap(),
    );
    let started: Value = Client::new()
        .post(p.down.url("/connect/deviceauthorization"))
        .basic_auth(id, Some(secret))
        .form(&[("scope", "cfgateway")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    let c = browser_client();
    let login = c
        .get(started["verification_uri_complete"].as_str().unwrap())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(login.contains("Sign in with your organization"), "{login}");
    // Passwords are off for acme.test: the device page's password is refused too.
    let r = post_form(
        &c,
        &p.down.url("/device/login"),
        &login,
        &[
            ("email", "carol@acme.test"),
            ("password", "carol's own password"),
        ],
    );
    assert_eq!(r.status(), 403);
    let up = post_form(
        &c,
        &p.down.url("/device/login"),
        &login,
        &[("email", "ann@acme.test"), ("sso", "1")],
    );
    assert_eq!(origin(&up), p.upstream_origin());
    let back = p.through_upstream(&c, up, "ann@acme.test");
    assert_eq!(back.status(), 200);
    assert_eq!(back.url().path(), "/device");
    let page = back.text().unwrap();
    // The code came along, still to be confirmed by the person (RFC 8628 §5.4).
    assert!(page.contains("Signed in as ann@acme.test"), "{page}");
    assert!(
        page.contains(&format!("placeholder=\"BCDF-GHJK\" value=\"{user_code}\"")),
        "{page}"
    );
    let r = post_form(
        &c,
        &p.down.url("/device"),
        &page,
        &[("user_code", user_code)],
    );
    let page = r.text().unwrap();
    assert!(
        page.contains("Studio TV") && page.contains("Yes, Allow"),
        "{page}"
    );
    let r = post_form(
        &c,
        &p.down.url("/device/consent"),
        &page,
        &[("decision", "allow")],
    );
    let page = r.text().unwrap();
    assert!(page.contains("Device connected"), "{page}");
    let tokens: Value = Client::new()
        .post(p.down.url("/connect/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", started["device_code"].as_str().unwrap()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let ann = p
        .downstream_user("ann@acme.test")
        .expect("created just in time");
    assert_eq!(ann["role"], "developer");
}

#[test]
fn a_required_second_factor_comes_before_any_session_after_the_upstream() {
    let p = pair(false);
    json(
        p.down_dir.path(),
        &["org", "update", "acme-studio", "--require-mfa", "--json"],
    );
    // At the console: led to set one up, with no session until then.
    let c = browser_client();
    let up = p.console_sso(&c, "carol@acme.test", None);
    let back = p.through_upstream(&c, up, "carol@acme.test");
    assert_eq!(back.url().path(), "/account/security");
    let next: HashMap<String, String> = back.url().query_pairs().into_owned().collect();
    assert_eq!(next["next"], "/console");
    let page = back.text().unwrap();
    assert!(
        page.contains("Your organization requires two-step verification"),
        "{page}"
    );
    let console = c
        .get(p.down.url("/console"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(console.contains("action=\"/console/login\""), "{console}");
    // The same at the authorization endpoint: no session to skip it with.
    let c = browser_client();
    let up = p.to_upstream(&c, "carol@acme.test");
    let back = p.through_upstream(&c, up, "carol@acme.test");
    assert_eq!(back.url().path(), "/account/security");
    let console = c
        .get(p.down.url("/console"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(console.contains("action=\"/console/login\""), "{console}");
}

#[test]
fn the_second_factor_after_the_upstream_makes_the_session_fed_and_otp() {
    let p = pair(false);
    json(
        p.down_dir.path(),
        &["org", "update", "acme-studio", "--require-mfa", "--json"],
    );
    // At the console, back from the provider, carol must set up an
    // authenticator app: she does, and that signs her in with both.
    let c = browser_client();
    let up = p.console_sso(&c, "carol@acme.test", None);
    let status = p.through_upstream(&c, up, "carol@acme.test");
    assert_eq!(status.url().path(), "/account/security");
    let page = status.text().unwrap();
    let setup = post_form(
        &c,
        &p.down.url("/account/security/totp"),
        &page,
        &[("next", "/console")],
    );
    let page = setup.text().unwrap();
    let marker = "id=\"totp-secret\">";
    let at = page.find(marker).expect("the key") + marker.len();
    let key = common::base32(&page[at..at + page[at..].find('<').unwrap()]);
    let code = common::totp_at(&key, common::unix_now());
    let done = post_form(
        &c,
        &p.down.url("/account/security/totp/confirm"),
        &page,
        &[("next", "/console"), ("code", &code)],
    );
    assert_eq!(done.status(), 200);
    let page = done.text().unwrap();
    assert!(page.contains("href=\"/console\""), "{page}");
    let home = c
        .get(p.down.url("/console"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(home.contains("<h1>Overview</h1>"), "{home}");
    // The session says how: the provider, then a one-time code.
    let login = c.get(p.authorize_url()).send().unwrap().text().unwrap();
    assert!(login.contains("Yes, Allow"), "{login}");
    let r = post_form(
        &c,
        &p.down.url("/consent"),
        &login,
        &[("decision", "allow")],
    );
    let id = p.exchange(r);
    assert_eq!(id["amr"], serde_json::json!(["fed", "otp", "mfa"]));
    assert_eq!(id["acr"], "urn:gatehouse:acr:mfa");
}

/// Waits until the browser is at a page of `origin` showing `by`.
async fn wait_at(
    web: &thirtyfour::WebDriver,
    origin: &str,
    by: thirtyfour::By,
) -> thirtyfour::WebElement {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let url = web.current_url().await.unwrap();
        if url.as_str().starts_with(origin)
            && let Ok(e) = web.find(by.clone()).await
        {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached {origin} with {by:?}; at {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_a_person_signs_in_through_the_upstream_and_the_app_gets_their_id_token() {
    use thirtyfour::prelude::*;
    let p = tokio::task::spawn_blocking(|| pair(false)).await.unwrap();
    let (_driver, driver_port) = common::browser::start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = common::browser::browser(driver_port, profile.path()).await;
    let shots = common::browser::screenshots();
    let upo = p.up.base.replace("127.0.0.1", "localhost");
    let outcome = async {
        web.goto(&p.authorize_url()).await?;
        wait_at(&web, &p.down.base, By::Id("email"))
            .await
            .send_keys("ann@acme.test")
            .await?;
        web.screenshot(&shots.join("upstream-01-login.png")).await?;
        web.find(By::XPath(
            "//button[normalize-space()='Sign in with your organization']",
        ))
        .await?
        .click()
        .await?;
        let email = wait_at(&web, &upo, By::Id("email")).await;
        if email.value().await?.unwrap_or_default().is_empty() {
            email.send_keys("ann@acme.test").await?;
        }
        web.find(By::Id("password"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        web.screenshot(&shots.join("upstream-02-idp.png")).await?;
        web.find(By::XPath("//button[normalize-space()='Sign in']"))
            .await?
            .click()
            .await?;
        let allow = By::XPath("//button[normalize-space()='Yes, Allow']");
        wait_at(&web, &upo, allow.clone()).await.click().await?;
        let consent = wait_at(&web, &p.down.base, allow).await;
        web.screenshot(&shots.join("upstream-03-consent.png"))
            .await?;
        consent.click().await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let url = web.current_url().await?;
            if url.as_str().starts_with(&p.redirect_uri) {
                break Ok::<_, WebDriverError>(url);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never reached the app; at {url}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    .await;
    let _ = web.quit().await;
    let landed = outcome.unwrap();
    let q: HashMap<String, String> = landed.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s-42");
    let tokens: Value = reqwest::Client::new()
        .post(p.down.url("/connect/token"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", p.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = tokens["id_token"].as_str().expect("an id_token");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["email"], "ann@acme.test");
    assert_eq!(claims["amr"], serde_json::json!(["fed"]));
    let ann = tokio::task::spawn_blocking(move || {
        let u = p.downstream_user("ann@acme.test");
        drop(p);
        u
    })
    .await
    .unwrap()
    .expect("created just in time");
    assert_eq!(claims["sub"], ann["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_the_console_signs_a_passwords_off_admin_in_through_the_upstream() {
    use thirtyfour::prelude::*;
    let p = tokio::task::spawn_blocking(|| pair(false)).await.unwrap();
    let (_driver, driver_port) = common::browser::start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let web = common::browser::browser(driver_port, profile.path()).await;
    let shots = common::browser::screenshots();
    let upo = p.upstream_origin();
    let outcome = async {
        web.goto(&p.down.url("/console")).await?;
        wait_at(&web, &p.down.base, By::Id("email"))
            .await
            .send_keys("carol@acme.test")
            .await?;
        web.screenshot(&shots.join("upstream-console-01-login.png"))
            .await?;
        web.find(By::XPath(
            "//button[normalize-space()='Sign in with your organization']",
        ))
        .await?
        .click()
        .await?;
        let email = wait_at(&web, &upo, By::Id("email")).await;
        if email.value().await?.unwrap_or_default().is_empty() {
            email.send_keys("carol@acme.test").await?;
        }
        web.find(By::Id("password"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        web.find(By::XPath("//button[normalize-space()='Sign in']"))
            .await?
            .click()
            .await?;
        let allow = By::XPath("//button[normalize-space()='Yes, Allow']");
        wait_at(&web, &upo, allow).await.click().await?;
        wait_at(
            &web,
            &p.down.base,
            By::XPath("//h1[normalize-space()='Overview']"),
        )
        .await;
        web.screenshot(&shots.join("upstream-console-02-home.png"))
            .await?;
        let url = web.current_url().await?;
        let source = web.source().await?;
        Ok::<_, WebDriverError>((url, source))
    }
    .await;
    let _ = web.quit().await;
    let (url, source) = outcome.unwrap();
    assert_eq!(url.path(), "/console");
    assert!(source.contains("Acme Studio"), "{source}");
    assert!(source.contains("carol@acme.test"), "{source}");
    let audit = tokio::task::spawn_blocking(move || {
        let a = p.audit();
        drop(p);
        a
    })
    .await
    .unwrap();
    assert!(
        audit.contains("signed in through the identity provider"),
        "{audit}"
    );
}
