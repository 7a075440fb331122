//! Signing in through the organization's identity provider when that provider
//! is not Gatehouse: node-oidc-provider (crates/cli/tests/upstream_node, pinned
//! in its package-lock.json; `.ci/run` installs it into
//! `$GATEHOUSE_OIDC_PROVIDER_DIR`, default `~/.cache/gatehouse/oidc-provider`),
//! at `http://localhost:<port>`, with one account `ann` (verified e-mail
//! `ann@acme.test`) and a login form whose "second factor" box makes the
//! sign-in's `amr` `["pwd", "otp", "mfa"]`. Gatehouse runs in development mode
//! at `http://127.0.0.1:<port>` so that it may call a loopback issuer.
//!
//! Without `node` these tests say so loudly and pass; with `node` but without
//! the installed package they fail (the install step is broken).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::web::{browser_client, callback_server, form_query, id_token_after, post_form};
use common::{Server, json};
use reqwest::blocking::{Client, Response};
use serde_json::Value;

const CLIENT_ID: &str = "gatehouse-downstream";
const CLIENT_SECRET: &str = "node-provider-client-secret";
const LOGIN: &str = "ann";
const PASSWORD: &str = "ann-upstream-password";

/// node-oidc-provider, running; stopped when dropped.
struct NodeProvider {
    child: Child,
    issuer: String,
}

impl Drop for NodeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider for `redirect_uri`; `None` (after a loud message) only
/// when `node` itself is missing.
fn node_provider(
    redirect_uri: &str,
    claims_parameter: bool,
    log: &std::path::Path,
) -> Option<NodeProvider> {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!(
            "\n*** SKIPPED: `node` is not installed, so the node-oidc-provider upstream tests did not run ***\n"
        );
        return None;
    }
    let dir = std::env::var_os("GATEHOUSE_OIDC_PROVIDER_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/gatehouse/oidc-provider")
        },
        PathBuf::from,
    );
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "oidc-provider is not installed in {}: .ci/run installs it (npm ci there with crates/cli/tests/upstream_node's package-lock.json)",
        dir.display()
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/upstream_node/provider.mjs"
    );
    let mut child = Command::new("node")
        .arg(script)
        .env("GATEHOUSE_OIDC_PROVIDER_DIR", &dir)
        .env("PORT", "0")
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("REDIRECT_URI", redirect_uri)
        .env("CLAIMS_PARAMETER", if claims_parameter { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Drained, so that a later line never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("the provider did not start: {line:?}"));
    Some(NodeProvider {
        child,
        issuer: format!("http://localhost:{port}"),
    })
}

struct Setup {
    // Field order: the provider stops before the directory goes.
    idp: NodeProvider,
    down: Server,
    dir: tempfile::TempDir,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

/// Gatehouse with the app "Studio sync" of `acme-studio`, whose identity
/// provider for `acme.test` is node-oidc-provider (new people: `developer`).
fn setup(claims_parameter: bool, trust_upstream_mfa: bool) -> Option<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let down = Server::start(dir.path(), &["--dev"]);
    let idp = node_provider(
        &down.url("/upstream/callback"),
        claims_parameter,
        &dir.path().join("node.log"),
    )?;
    let d = dir.path();
    common::acme_api(d, "cfgateway");
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback_server());
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
            &redirect_uri,
            "--dev",
            "--require-pkce",
            "false",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let s = Setup {
        idp,
        down,
        dir,
        client_id: app["client_id"].as_str().unwrap().to_owned(),
        client_secret: app["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri,
    };
    s.set_provider(trust_upstream_mfa);
    Some(s)
}

impl Setup {
    fn set_provider(&self, trust_upstream_mfa: bool) {
        let v: Value = common::json_with_stdin(
            self.dir.path(),
            &[
                "--dev",
                "org",
                "identity-provider",
                "set",
                "acme-studio",
                "--issuer",
                &self.idp.issuer,
                "--client-id",
                CLIENT_ID,
                "--client-secret-stdin",
                "--domains",
                "acme.test",
                "--default-role",
                "developer",
                "--trust-upstream-mfa",
                if trust_upstream_mfa { "true" } else { "false" },
                "--json",
            ],
            CLIENT_SECRET,
        );
        assert_eq!(v["trust_upstream_mfa"], trust_upstream_mfa);
    }

    fn authorize_url(&self) -> String {
        let q = form_query(&[
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", "openid email cfgateway"),
            ("response_type", "code"),
            ("state", "s-42"),
            ("nonce", "app-nonce"),
            ("claims", r#"{"id_token":{"email":null,"acr":null}}"#),
        ]);
        format!("{}/connect/authorize?{q}", self.down.base)
    }

    /// Gatehouse's sign-in page, "Sign in with your organization" for
    /// ann@acme.test, the provider's login form posted (`mfa`: with its
    /// second-factor box): the response once back at Gatehouse.
    fn sign_in(&self, c: &Client, mfa: bool) -> Response {
        let login = c.get(self.authorize_url()).send().unwrap().text().unwrap();
        assert!(login.contains("Sign in with your organization"), "{login}");
        let r = post_form(
            c,
            &self.down.url("/login"),
            &login,
            &[("email", "ann@acme.test"), ("sso", "1")],
        );
        assert_eq!(r.status(), 200);
        assert!(
            r.url().as_str().starts_with(&self.idp.issuer),
            "{}",
            r.url()
        );
        let at = r.url().clone();
        assert!(r.text().unwrap().contains("Upstream sign-in"));
        let mut form = vec![("login", LOGIN), ("password", PASSWORD)];
        if mfa {
            form.push(("mfa", "1"));
        }
        c.post(format!("{at}/login")).form(&form).send().unwrap()
    }

    /// Allows the app on Gatehouse's consent page: the app's callback redirect.
    fn consent(&self, c: &Client, back: Response) -> Response {
        assert!(
            back.url().as_str().starts_with(&self.down.base),
            "{}",
            back.url()
        );
        let page = back.text().unwrap();
        assert!(
            page.contains("Yes, Allow"),
            "consent after coming back: {page}\n{}\n{}",
            self.down.log(),
            std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
        );
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

    fn user(&self, email: &str) -> Option<Value> {
        let users = json(
            self.dir.path(),
            &["user", "list", "--org", "acme-studio", "--json"],
        );
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .cloned()
    }

    fn audit(&self) -> String {
        json(
            self.dir.path(),
            &["audit", "--org", "acme-studio", "--json"],
        )
        .to_string()
    }
}

/// The ID token carries `email` (the provider honours the `claims` parameter
/// Gatehouse sends): the person is created, and the app's ID token names them.
#[test]
fn a_person_signs_in_through_node_oidc_provider_and_is_created_just_in_time() {
    let Some(s) = setup(true, false) else { return };
    assert!(s.user("ann@acme.test").is_none());
    let c = browser_client();
    let back = s.sign_in(&c, false);
    let id = s.exchange(s.consent(&c, back));
    let ann = s.user("ann@acme.test").expect("created just in time");
    assert_eq!(ann["role"], "developer");
    assert_eq!(id["sub"], ann["id"]);
    assert_eq!(id["email"], "ann@acme.test");
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    assert_eq!(id["nonce"], "app-nonce");
    assert!(
        s.audit()
            .contains("signed in through the identity provider")
    );
}

/// Without the `claims` parameter this provider puts the e-mail only at its
/// userinfo endpoint (its `conformIdTokenClaims`): Gatehouse asks there.
#[test]
fn the_email_comes_from_userinfo_when_the_id_token_has_none() {
    let Some(s) = setup(false, false) else { return };
    let c = browser_client();
    let back = s.sign_in(&c, false);
    let id = s.exchange(s.consent(&c, back));
    let ann = s
        .user("ann@acme.test")
        .expect("created from userinfo's e-mail");
    assert_eq!(id["sub"], ann["id"]);
    assert_eq!(id["email"], "ann@acme.test");
}

/// The provider signs an ID token for a nonce Gatehouse did not send (the
/// request to it was changed on the way): refused, audited, nobody created.
#[test]
fn an_id_token_with_another_nonce_is_refused() {
    let Some(s) = setup(true, false) else { return };
    let c = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = c.get(s.authorize_url()).send().unwrap().text().unwrap();
    let r = post_form(
        &c,
        &s.down.url("/login"),
        &login,
        &[("email", "ann@acme.test"), ("sso", "1")],
    );
    assert_eq!(r.status(), 303);
    let mut to = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: Vec<(String, String)> = to
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "an-attacker-s-nonce".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    to.query_pairs_mut().clear().extend_pairs(q);
    // At the provider, following its redirects by hand up to Gatehouse's callback.
    let mut at = c.get(to.as_str()).send().unwrap();
    let mut posted = false;
    let callback = loop {
        let next = if at.status().is_redirection() {
            at.url()
                .join(at.headers()["location"].to_str().unwrap())
                .unwrap()
        } else {
            assert!(!posted, "{:?}", at.text());
            posted = true;
            let form = c
                .post(format!("{}/login", at.url()))
                .form(&[("login", LOGIN), ("password", PASSWORD)]);
            at = form.send().unwrap();
            continue;
        };
        if next.as_str().starts_with(&s.down.base) {
            break next;
        }
        at = c.get(next.as_str()).send().unwrap();
    };
    assert_eq!(callback.path(), "/upstream/callback");
    let r = c.get(callback.as_str()).send().unwrap();
    assert_eq!(r.status(), 403, "{:?}", r.text());
    let audit = s.audit();
    assert!(audit.contains("`nonce` is not the one sent"), "{audit}");
    assert!(s.user("ann@acme.test").is_none());
}

/// A role that requires a second factor: the provider's multi-factor sign-in
/// meets it only when the organization trusts the provider for it.
#[test]
fn the_providers_multi_factor_sign_in_counts_only_when_trusted() {
    let Some(s) = setup(true, false) else { return };
    json(
        s.dir.path(),
        &[
            "org",
            "update",
            "acme-studio",
            "--require-mfa-roles",
            "developer",
            "--json",
        ],
    );
    // Not trusted: signed in with a second factor there, still asked here
    // (ann has none yet, so the enrolment page).
    let c = browser_client();
    let back = s.sign_in(&c, true);
    assert_eq!(back.url().path(), "/account/security", "{}", back.url());
    assert!(!back.text().unwrap().contains("Yes, Allow"));

    s.set_provider(true);
    // Trusted, but the provider's sign-in was a password only: asked here.
    let c = browser_client();
    let back = s.sign_in(&c, false);
    assert_eq!(back.url().path(), "/account/security", "{}", back.url());

    // Trusted, and multi-factor there: straight on to the app.
    let c = browser_client();
    let back = s.sign_in(&c, true);
    let id = s.exchange(s.consent(&c, back));
    assert_eq!(id["amr"], serde_json::json!(["fed", "mfa"]));
    assert_eq!(id["acr"], "urn:gatehouse:acr:mfa");
    let audit = s.audit();
    assert!(audit.contains("count as multi-factor here"), "{audit}");
}
