//! The built `gatehouse` binary, as an operator uses it: `serve` as a real process
//! on a free port over a SQLite file in a temporary working directory, and the
//! admin commands run against the same database while it serves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

mod common;

use common::{BIN, Server, dns_server, gatehouse, json, unescape_html};

struct Fixture {
    user_id: String,
    api: Value,
    app: Value,
}

/// The README's set-up, by the CLI, on the default database in `dir`.
fn register(dir: &Path) -> Fixture {
    // Only `serve` and `migrate` create a database; the admin commands refuse a missing one.
    json(dir, &["migrate", "--json"]);
    let org = json(dir, &["org", "create", "--name", "Acme Studio", "--json"]);
    assert_eq!(org["slug"], "acme-studio");
    assert!(org["id"].as_str().unwrap().len() >= 32);
    let user = json(
        dir,
        &[
            "user",
            "create",
            "--org",
            "acme-studio",
            "--email",
            "dev@acme.test",
            "--role",
            "developer",
            "--json",
        ],
    );
    let api = json(
        dir,
        &[
            "api",
            "create",
            "--org",
            "acme-studio",
            "--name",
            "Gateway",
            "--audience",
            "https://gateway.acme.test",
            "--scopes",
            "cfgateway products:read",
            "--json",
        ],
    );
    assert_eq!(api["audience"], "https://gateway.acme.test");
    let app = json(
        dir,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Nightly sync",
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "cfgateway products:read",
            "--default-scopes",
            "cfgateway",
            "--audience",
            "https://gateway.acme.test",
            "--json",
        ],
    );
    for v in [
        &app["client_id"],
        &app["client_secret"],
        &api["client_id"],
        &api["client_secret"],
    ] {
        let s = v.as_str().unwrap();
        assert!(
            s.len() >= 32
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "not URL-safe: {s}"
        );
    }
    Fixture {
        user_id: user["id"].as_str().unwrap().to_owned(),
        api,
        app,
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// The Creative Force seed's request: credentials and scope in the body.
fn seed_token(server: &Server, client_id: &str, secret: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .header("User-Agent", "TestClient/1.0")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope=cfgateway"))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn introspect(server: &Server, api: &Value, token: &str) -> Value {
    reqwest::blocking::Client::new()
        .post(server.url("/connect/introspect"))
        .basic_auth(s(&api["client_id"]), Some(s(&api["client_secret"])))
        .form(&[("token", token)])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Polls briefly: the server learns of CLI changes through the change feed.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 500 ms"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn readme_tour_register_get_a_token_rotate_and_see_it_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert!(
        dir.path().join("gatehouse.db").exists(),
        "the default database is ./gatehouse.db"
    );
    let f = register(dir.path());
    let (id, secret) = (s(&f.app["client_id"]), s(&f.app["client_secret"]));

    let (status, body) = seed_token(&server, id, secret);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["token_type"].as_str(),
            body["expires_in"].as_i64(),
            body["scope"].as_str()
        ),
        (Some("Bearer"), Some(3600), Some("cfgateway"))
    );
    let token = s(&body["access_token"]).to_owned();
    let claims = payload(&token);
    assert_eq!(
        claims["sub"],
        f.user_id.as_str(),
        "sub is the on-behalf user's id as `user create` printed it"
    );
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(introspect(&server, &f.api, &token)["active"], true);

    // rotate-secret: the old secret and the token it got stop working.
    let rotated = json(dir.path(), &["app", "rotate-secret", id, "--json"]);
    let new_secret = s(&rotated["client_secret"]).to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        seed_token(&server, id, secret).0,
        401,
        "the old secret stops working at once"
    );
    eventually("the rotated token to turn inactive", || {
        introspect(&server, &f.api, &token)["active"] == false
    });
    let (status, body) = seed_token(&server, id, &new_secret);
    assert_eq!(status, 200);
    let second = s(&body["access_token"]).to_owned();

    // set-on-behalf-of: tokens end, new ones carry the new user.
    let ops = json(
        dir.path(),
        &[
            "user",
            "create",
            "--org",
            "acme-studio",
            "--email",
            "ops@acme.test",
            "--role",
            "admin",
            "--json",
        ],
    );
    let out = gatehouse(
        dir.path(),
        &["app", "set-on-behalf-of", id, "--user", "ops@acme.test"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the token to end after set-on-behalf-of", || {
        introspect(&server, &f.api, &second)["active"] == false
    });
    let (_, body) = seed_token(&server, id, &new_secret);
    assert_eq!(payload(s(&body["access_token"]))["sub"], ops["id"]);

    // show and list never reveal a secret.
    let shown = json(dir.path(), &["app", "show", id, "--json"]);
    assert_eq!(shown["client_id"], id);
    assert_eq!(shown["on_behalf_of"]["email"], "ops@acme.test");
    let listed = json(
        dir.path(),
        &["app", "list", "--org", "acme-studio", "--json"],
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    for doc in [shown.to_string(), listed.to_string()] {
        assert!(
            !doc.contains(&new_secret) && !doc.contains("secret"),
            "{doc}"
        );
    }

    // delete ends everything.
    let third = s(&seed_token(&server, id, &new_secret).1["access_token"]).to_owned();
    assert!(
        gatehouse(dir.path(), &["app", "delete", id])
            .status
            .success()
    );
    eventually("the deleted app's token to end", || {
        introspect(&server, &f.api, &third)["active"] == false
    });
    assert_eq!(seed_token(&server, id, &new_secret).0, 401);
    let out = gatehouse(dir.path(), &["app", "show", id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

/// `app register` for people, with `extra` arguments (redirect URIs, flags).
fn register_web(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "app",
        "register",
        "--org",
        "acme-studio",
        "--name",
        "Studio sync",
        "--grant",
        "authorization_code",
        "--scopes",
        "cfgateway",
    ];
    args.extend_from_slice(extra);
    gatehouse(dir, &args)
}

#[test]
fn redirect_uris_must_resolve_to_a_public_address_on_the_dns_server() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path());
    let dns = common::dns_server();
    let refused: &[(&[&str], &str)] = &[
        (
            &["--redirect-uri", "https://app.internal/cb"],
            "redirect_uris: `https://app.internal/cb`: `.internal` hosts are not allowed",
        ),
        (
            &["--redirect-uri", "https://nowhere.acme.test/cb"],
            "`nowhere.acme.test` does not resolve in DNS (no A or AAAA record)",
        ),
        (
            &["--redirect-uri", "http://127.0.0.1:8765/cb"],
            "must use https",
        ),
        (
            &[
                "--redirect-uri",
                "https://sync.acme.test/callback",
                "--post-logout-redirect-uri",
                "https://sync.acme.test/bye#top",
            ],
            "post_logout_redirect_uris: `https://sync.acme.test/bye#top`: must not contain a fragment",
        ),
    ];
    for (extra, expected) in refused {
        let mut args = extra.to_vec();
        args.extend(["--dns-server", &dns]);
        let out = register_web(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{extra:?}: {err}");
        assert!(out.stdout.is_empty(), "{extra:?}");
    }

    let out = register_web(
        dir.path(),
        &[
            "--redirect-uri",
            "https://sync.acme.test/callback",
            "--dns-server",
            &dns,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Development mode, from the environment as well as the flag.
    let dev = Command::new(BIN)
        .current_dir(dir.path())
        .args(["app", "register", "--org", "acme-studio", "--name", "Local"])
        .args(["--grant", "authorization_code", "--scopes", "cfgateway"])
        .args(["--redirect-uri", "http://localhost:3000/cb"])
        .args(["--redirect-uri", "http://127.0.0.1:8765/cb"])
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env("GATEHOUSE_DEV", "true")
        .env("GATEHOUSE_DNS_SERVER", &dns)
        .output()
        .unwrap();
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    let apps = json(
        dir.path(),
        &["app", "list", "--org", "acme-studio", "--json"],
    );
    assert_eq!(
        apps.as_array().unwrap().len(),
        3,
        "only the two good ones were saved"
    );
}

#[test]
fn serve_dev_says_so_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let log = server.log();
    assert!(
        log.contains(
            "DEVELOPMENT MODE: http://localhost and http://127.0.0.1 redirect URIs are accepted."
        ) && log.contains("Never run production with --dev."),
        "{log}"
    );
    let other = tempfile::tempdir().unwrap();
    let quiet = Server::start(other.path(), &[]);
    assert!(!quiet.log().contains("DEVELOPMENT MODE"));
}

/// `--backchannel-logout=false` (or the file's `backchannel_logout = false`)
/// turns back-channel logout off, and discovery says so; it is on by default.
#[test]
fn back_channel_logout_is_on_by_default_and_the_switch_turns_it_off() {
    let discovery = |server: &Server| -> Value {
        reqwest::blocking::get(server.url("/.well-known/openid-configuration"))
            .unwrap()
            .json()
            .unwrap()
    };
    let on = tempfile::tempdir().unwrap();
    let server = Server::start(on.path(), &[]);
    assert_eq!(discovery(&server)["backchannel_logout_supported"], true);
    drop(server);
    let off = tempfile::tempdir().unwrap();
    let server = Server::start(off.path(), &["--backchannel-logout=false"]);
    let doc = discovery(&server);
    assert_eq!(doc["backchannel_logout_supported"], false, "{doc}");
    assert_eq!(doc["backchannel_logout_session_supported"], false, "{doc}");
    drop(server);
    let file = tempfile::tempdir().unwrap();
    let conf = file.path().join("gatehouse.toml");
    std::fs::write(&conf, "backchannel_logout = false\n").unwrap();
    let server = Server::start(file.path(), &["--config", conf.to_str().unwrap()]);
    assert_eq!(discovery(&server)["backchannel_logout_supported"], false);
    drop(server);
    std::fs::write(&conf, "backchannel_logout = \"maybe\"\n").unwrap();
    let out = gatehouse(file.path(), &["config", "check", conf.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backchannel_logout"), "{err}");
}

#[test]
fn a_restart_keeps_orgs_apps_keys_and_valid_tokens_and_ctrl_c_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let (_, body) = seed_token(&server, s(&f.app["client_id"]), s(&f.app["client_secret"]));
    let token = s(&body["access_token"]).to_owned();
    let jwks_before: Value = reqwest::blocking::get(server.url("/.well-known/jwks.json"))
        .unwrap()
        .json()
        .unwrap();
    let status = server.interrupt();
    assert!(
        status.success(),
        "serve exits cleanly on Ctrl-C: {status:?}"
    );

    let server = Server::start(dir.path(), &[]);
    let jwks_after: Value = reqwest::blocking::get(server.url("/.well-known/jwks.json"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "signing keys survive a restart");
    let kept = introspect(&server, &f.api, &token);
    assert_eq!(kept["active"], true, "{kept}");
    let (status, _) = seed_token(&server, s(&f.app["client_id"]), s(&f.app["client_secret"]));
    assert_eq!(status, 200);
}

#[test]
fn no_secret_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let secret = s(&f.app["client_secret"]);
    let (_, body) = seed_token(&server, s(&f.app["client_id"]), secret);
    let token = s(&body["access_token"]).to_owned();
    introspect(&server, &f.api, &token);
    // Failures are logged; what was presented is not.
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(s(&f.app["client_id"]), Some("a-wrong-secret-value"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // Failures are logged.
    let log = server.log_with("client authentication failed");
    for needle in [
        secret,
        s(&f.api["client_secret"]),
        &token,
        "a-wrong-secret-value",
    ] {
        assert!(!log.contains(needle), "a secret reached the log");
    }
    let key = std::fs::read_to_string(dir.path().join("gatehouse.key")).unwrap();
    assert!(!log.contains(key.trim()));
}

#[test]
fn json_and_database_url_are_accepted_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("elsewhere.db").display());
    json(dir.path(), &["migrate", "--database-url", &url, "--json"]);
    let a = json(
        dir.path(),
        &[
            "--json",
            "--database-url",
            &url,
            "org",
            "create",
            "--name",
            "First Org",
        ],
    );
    let b = json(
        dir.path(),
        &[
            "org",
            "create",
            "--name",
            "Second Org",
            "--database-url",
            &url,
            "--json",
        ],
    );
    assert_eq!(
        (a["slug"].as_str(), b["slug"].as_str()),
        (Some("first-org"), Some("second-org"))
    );
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["org", "list", "--json"])
        .env("GATEHOUSE_DATABASE_URL", &url)
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !dir.path().join("gatehouse.db").exists(),
        "nothing was written to the default database"
    );
}

#[test]
fn admin_mistakes_get_clear_messages_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (
            &["user", "create", "--org", "nope", "--email", "a@b.test"],
            "organization `nope` not found",
        ),
        (
            &[
                "user",
                "create",
                "--org",
                "acme-studio",
                "--email",
                "x@b.test",
                "--role",
                "wizard",
            ],
            "not a role",
        ),
        (
            &[
                "user",
                "create",
                "--org",
                "acme-studio",
                "--email",
                "dev@acme.test",
            ],
            "user `dev@acme.test` already exists",
        ),
        (
            &[
                "user",
                "create",
                "--org",
                "acme-studio",
                "--email",
                "not-an-email",
            ],
            "email",
        ),
        (
            &["org", "create", "--name", "Acme Studio"],
            "organization `acme-studio` already exists",
        ),
        (
            &[
                "app",
                "register",
                "--org",
                "acme-studio",
                "--name",
                "X",
                "--grant",
                "client_credentials",
                "--scopes",
                "cfgateway",
            ],
            "on_behalf_of",
        ),
        (
            &[
                "app",
                "register",
                "--org",
                "acme-studio",
                "--name",
                "X",
                "--grant",
                "client_credentials",
                "--on-behalf-of",
                "dev@acme.test",
                "--scopes",
                "nosuch",
            ],
            "not defined",
        ),
        (
            &[
                "app",
                "register",
                "--org",
                "acme-studio",
                "--name",
                "X",
                "--grant",
                "client_credentials",
                "--on-behalf-of",
                "ghost@acme.test",
                "--scopes",
                "cfgateway",
            ],
            "not found",
        ),
        (&["app", "rotate-secret", "no-such-client"], "not found"),
        (
            &[
                "api",
                "create",
                "--org",
                "acme-studio",
                "--name",
                "G",
                "--audience",
                "https://gateway.acme.test",
                "--scopes",
                "x",
            ],
            "API `https://gateway.acme.test` already exists",
        ),
        (
            &["--database-url", "mysql://x", "org", "list"],
            "unsupported",
        ),
    ];
    for (args, expected) in cases {
        let out = gatehouse(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let apps = json(
        dir.path(),
        &["app", "list", "--org", "acme-studio", "--json"],
    );
    assert_eq!(
        apps.as_array().unwrap().len(),
        1,
        "failed registrations saved nothing"
    );
}

#[test]
fn deactivating_the_on_behalf_user_stops_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let (id, secret) = (s(&f.app["client_id"]), s(&f.app["client_secret"]));
    assert_eq!(seed_token(&server, id, secret).0, 200);
    assert!(
        gatehouse(dir.path(), &["user", "deactivate", "dev@acme.test"])
            .status
            .success()
    );
    eventually("token requests to fail", || {
        let (status, body) = seed_token(&server, id, secret);
        status == 400 && body["error"] == "invalid_grant"
    });
}

#[test]
fn passwords_come_from_stdin_and_are_checked() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    register(dir.path());
    let run = |email: &str, password: &str| {
        let mut child = Command::new(BIN)
            .current_dir(dir.path())
            .args([
                "user",
                "create",
                "--org",
                "acme-studio",
                "--email",
                email,
                "--password-stdin",
                "--json",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("short@acme.test", "abc");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least"));
    let out = run("long@acme.test", "correct horse battery staple");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn key_rotation_is_picked_up_by_the_running_server_and_old_tokens_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let (id, secret) = (s(&f.app["client_id"]), s(&f.app["client_secret"]));
    let old = s(&seed_token(&server, id, secret).1["access_token"]).to_owned();
    let kid_of = |t: &str| {
        let header = t.split('.').next().unwrap();
        let v: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        v["kid"].as_str().unwrap().to_owned()
    };
    let rotated = json(dir.path(), &["keys", "rotate", "--alg", "ES256", "--json"]);
    let new_kid = s(&rotated["kid"]).to_owned();
    assert_ne!(new_kid, kid_of(&old));
    eventually("new tokens to use the new key", || {
        kid_of(s(&seed_token(&server, id, secret).1["access_token"])) == new_kid
    });
    let jwks: Value = reqwest::blocking::get(server.url("/.well-known/jwks.json"))
        .unwrap()
        .json()
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&new_kid.as_str()) && kids.contains(&kid_of(&old).as_str()),
        "{kids:?}"
    );
    assert_eq!(
        introspect(&server, &f.api, &old)["active"],
        true,
        "tokens signed before the rotation still verify"
    );
    let listed = json(dir.path(), &["keys", "list", "--json"]);
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "ES256")
        .map(|k| (s(&k["kid"]), s(&k["state"])))
        .collect();
    assert!(states.contains(&(new_kid.as_str(), "active")), "{states:?}");
    assert!(
        states.contains(&(kid_of(&old).as_str(), "retired")),
        "{states:?}"
    );
    // Without the server's key file nothing is rotated.
    let out = common::gatehouse(
        dir.path(),
        &[
            "keys",
            "rotate",
            "--alg",
            "ES256",
            "--key-file",
            "missing.key",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn disable_enable_update_set_role_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let (id, secret) = (s(&f.app["client_id"]), s(&f.app["client_secret"]));
    let (status, body) = seed_token(&server, id, secret);
    assert_eq!(status, 200);
    let before = body["access_token"].as_str().unwrap().to_owned();

    // Disabled: no new tokens, and the one it held has ended.
    let shown = json(dir.path(), &["app", "disable", id, "--json"]);
    assert_eq!(shown["status"], "disabled");
    eventually("the disabled app to be refused", || {
        let (status, body) = seed_token(&server, id, secret);
        status == 401 && body["error"] == "invalid_client"
    });
    assert_eq!(introspect(&server, &f.api, &before)["active"], false);
    // Enabled again: new tokens work, the old one stays ended.
    json(dir.path(), &["app", "enable", id, "--json"]);
    eventually("the enabled app to get tokens", || {
        seed_token(&server, id, secret).0 == 200
    });
    assert_eq!(introspect(&server, &f.api, &before)["active"], false);

    let edited = json(
        dir.path(),
        &[
            "app",
            "update",
            id,
            "--name",
            "Nightly sync v2",
            "--description",
            "",
            "--json",
        ],
    );
    assert_eq!(edited["name"], "Nightly sync v2");
    assert_eq!(edited["description"], Value::Null);
    assert!(edited["last_used_at"].is_null() || edited["last_used_at"].is_i64());
    let out = gatehouse(dir.path(), &["app", "update", id, "--scopes", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope` is not defined"));

    let user = json(
        dir.path(),
        &[
            "user",
            "set-role",
            "dev@acme.test",
            "--role",
            "admin",
            "--groups",
            "leads,ops",
            "--json",
        ],
    );
    assert_eq!(
        (user["role"].as_str(), user["groups"].clone()),
        (Some("admin"), serde_json::json!(["leads", "ops"]))
    );
    let out = gatehouse(
        dir.path(),
        &["user", "set-role", "dev@acme.test", "--role", "emperor"],
    );
    assert_eq!(out.status.code(), Some(1));

    let log = json(dir.path(), &["audit", "--org", "acme-studio", "--json"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["action"]))
        .collect();
    assert_eq!(
        actions,
        [
            "user.set_access",
            "app.update",
            "app.enable",
            "app.disable",
            "app.register",
            "api.create",
            "user.create",
            "org.create"
        ]
    );
    for e in log.as_array().unwrap() {
        assert_eq!(
            (s(&e["actor"]["kind"]), s(&e["address"])),
            ("operator", "cli")
        );
        assert!(
            !e.to_string().contains(secret),
            "no secret in the audit log"
        );
    }
    let page = json(
        dir.path(),
        &[
            "audit",
            "--org",
            "acme-studio",
            "--limit",
            "2",
            "--before",
            &log[1]["seq"].to_string(),
            "--json",
        ],
    );
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["action"], "app.enable");
}

/// Issue 10 item 6: `keys revoke KID` withdraws a key at once. The running
/// server stops publishing it and refuses the tokens it signed; as it was the
/// active key, a new one signs from now on; an unknown kid is a clear error.
#[test]
fn keys_revoke_withdraws_a_key_and_its_tokens_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path());
    let (id, secret) = (s(&f.app["client_id"]), s(&f.app["client_secret"]));
    let old = s(&seed_token(&server, id, secret).1["access_token"]).to_owned();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(old.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = s(&header["kid"]).to_owned();
    assert_eq!(introspect(&server, &f.api, &old)["active"], true);

    let revoked = json(dir.path(), &["keys", "revoke", &kid, "--json"]);
    assert_eq!(revoked["state"], "revoked");
    let replacement = s(&revoked["replaced_by"]).to_owned();
    assert_ne!(replacement, kid);
    eventually("the revoked key's token to be refused", || {
        introspect(&server, &f.api, &old)["active"] == false
    });
    let jwks: Value = reqwest::blocking::get(server.url("/.well-known/jwks.json"))
        .unwrap()
        .json()
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| s(&k["kid"]))
        .collect();
    assert!(
        !kids.contains(&kid.as_str()) && kids.contains(&replacement.as_str()),
        "{kids:?}"
    );
    let fresh = s(&seed_token(&server, id, secret).1["access_token"]).to_owned();
    assert_eq!(introspect(&server, &f.api, &fresh)["active"], true);
    // Both steps are security events in the keys' audit log.
    let log = json(dir.path(), &["keys", "log", "--json"]);
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (s(&e["action"]), s(&e["target"])))
        .collect();
    assert!(
        actions.contains(&("key.revoked", kid.as_str()))
            && actions.contains(&("key.rotated", replacement.as_str())),
        "{actions:?}"
    );

    let out = gatehouse(dir.path(), &["keys", "revoke", "no-such-kid"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no signing key `no-such-kid`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 10 item 9: emails are unique per organization, so the operator names
/// the organization when an address is in several; one organization's user is
/// changed, the other's is not.
#[test]
fn user_commands_need_the_organization_when_an_email_is_in_several() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path());
    json(
        dir.path(),
        &["org", "create", "--name", "Bolt Works", "--json"],
    );
    let twin = json(
        dir.path(),
        &[
            "user",
            "create",
            "--org",
            "bolt-works",
            "--email",
            "dev@acme.test",
            "--role",
            "developer",
            "--json",
        ],
    );
    assert_eq!(twin["email"], "dev@acme.test");
    let out = gatehouse(dir.path(), &["user", "deactivate", "dev@acme.test"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("several organizations") && err.contains("--org"),
        "{err}"
    );
    let done = json(
        dir.path(),
        &[
            "user",
            "deactivate",
            "dev@acme.test",
            "--org",
            "bolt-works",
            "--json",
        ],
    );
    assert_eq!(done["status"], "deactivated");
    let acme = json(
        dir.path(),
        &["user", "list", "--org", "acme-studio", "--json"],
    );
    assert_eq!(acme[0]["status"], "active", "{acme}");
    let bolt = json(
        dir.path(),
        &["user", "list", "--org", "bolt-works", "--json"],
    );
    assert_eq!(bolt[0]["status"], "deactivated", "{bolt}");
    json(
        dir.path(),
        &[
            "user",
            "activate",
            "dev@acme.test",
            "--org",
            "bolt-works",
            "--json",
        ],
    );
    json(
        dir.path(),
        &[
            "user",
            "set-role",
            "dev@acme.test",
            "--org",
            "acme-studio",
            "--role",
            "admin",
            "--json",
        ],
    );
}

#[test]
fn the_first_steps_banner_shows_only_while_no_app_is_registered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains("Register a first app")),
        "{:?}",
        server.banner
    );
    drop(server);
    // An organization and an API are not yet an app: the steps still apply.
    common::acme_api(dir.path(), "cfgateway");
    let server = Server::start(dir.path(), &[]);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains("Register a first app"))
    );
    drop(server);
    json(
        dir.path(),
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Nightly sync",
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let server = Server::start(dir.path(), &[]);
    assert!(
        !server
            .banner
            .iter()
            .any(|l| l.contains("Register a first app")),
        "{:?}",
        server.banner
    );
    assert!(
        server
            .banner
            .iter()
            .any(|l| l == &format!("Console: {}/console", server.base)),
        "{:?}",
        server.banner
    );
    // Logs redirected to a file carry no colour codes.
    assert!(!server.log().contains('\u{1b}'), "{}", server.log());
}

/// Signs `email` in over HTTP as a browser would (the pages' forms, cookies
/// kept), allows the app, and returns the code the redirect to `redirect_uri` carries.
fn sign_in_over_http(
    authorize: &str,
    base: &str,
    redirect_uri: &str,
    email: &str,
    password: &str,
) -> String {
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let hidden = |html: &str| -> (String, Vec<(String, String)>) {
        let html = &html[html.find("<form method=\"post\"").expect("a form")..];
        let html = &html[..html.find("</form>").unwrap()];
        let attr = |tag: &str, name: &str| -> String {
            let key = format!("{name}=\"");
            let start = tag.find(&key).unwrap() + key.len();
            let len = tag[start..].find('"').unwrap();
            unescape_html(&tag[start..start + len])
        };
        let fields = html
            .split("<input")
            .skip(1)
            .filter(|i| i.contains("type=\"hidden\""))
            .map(|i| (attr(i, "name"), attr(i, "value")))
            .collect();
        (attr(html, "action"), fields)
    };
    // Follows the server's redirects; stops at the app's (its `Location`).
    let follow = |mut r: reqwest::blocking::Response| -> Result<String, String> {
        loop {
            if !r.status().is_redirection() {
                assert!(r.status().is_success(), "{}: {}", r.status(), r.url());
                return Ok(r.text().unwrap());
            }
            let to = r.headers()["location"].to_str().unwrap().to_owned();
            if to.starts_with(redirect_uri) {
                return Err(to);
            }
            let to = if to.starts_with("http") {
                to
            } else {
                format!("{base}{to}")
            };
            r = client.get(to).send().unwrap();
        }
    };
    let login = follow(client.get(authorize).send().unwrap()).expect("the sign-in page");
    let (action, mut fields) = hidden(&login);
    fields.push(("email".into(), email.into()));
    fields.push(("password".into(), password.into()));
    let consent = follow(
        client
            .post(format!("{base}{action}"))
            .form(&fields)
            .send()
            .unwrap(),
    )
    .expect("the consent page");
    assert!(consent.contains("Yes, Allow"), "{consent}");
    let (action, mut fields) = hidden(&consent);
    fields.push(("decision".into(), "allow".into()));
    let to = follow(
        client
            .post(format!("{base}{action}"))
            .form(&fields)
            .send()
            .unwrap(),
    )
    .expect_err("a redirect to the app");
    reqwest::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

#[test]
fn a_profile_set_by_the_cli_is_what_userinfo_and_the_id_token_answer() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, &[]);
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    let mut child = Command::new(BIN)
        .current_dir(d)
        .args([
            "user",
            "create",
            "--org",
            "acme-studio",
            "--email",
            "zoe@acme.test",
            "--role",
            "developer",
            "--name",
            "Zoë Martin",
            "--given-name",
            "Zoë",
            "--family-name",
            "Martin",
            "--locale",
            "fr-CA",
            "--zoneinfo",
            "America/Toronto",
            "--email-verified",
            "--password-stdin",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "correct horse battery").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["given_name"], "Zoë");
    assert_eq!(created["family_name"], "Martin");
    assert_eq!(created["locale"], "fr-CA");
    assert_eq!(created["zoneinfo"], "America/Toronto");
    assert_eq!(created["email_verified"], true);
    assert_eq!(created["updated_at"], created["created_at"]);

    // `user update` (alias of `set-profile`): an empty value clears, the rest stays.
    let updated = json(
        d,
        &[
            "user",
            "update",
            "zoe@acme.test",
            "--family-name",
            "",
            "--zoneinfo",
            "Europe/Paris",
            "--json",
        ],
    );
    assert_eq!(updated["family_name"], Value::Null);
    assert_eq!(updated["zoneinfo"], "Europe/Paris");
    assert_eq!(updated["given_name"], "Zoë");
    let refused = gatehouse(
        d,
        &["user", "set-profile", "zoe@acme.test", "--locale", "fr_CA"],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("locale") && err.contains("BCP 47"), "{err}");
    let refused = gatehouse(
        d,
        &[
            "user",
            "set-profile",
            "zoe@acme.test",
            "--zoneinfo",
            "Paris",
        ],
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("IANA"));
    let shown = json(d, &["user", "list", "--org", "acme-studio", "--json"]);
    assert_eq!(shown[0]["zoneinfo"], "Europe/Paris");

    // The app signs Zoë in with `profile email` and asks for her given name in the ID token.
    json(
        d,
        &[
            "api",
            "create",
            "--org",
            "acme-studio",
            "--name",
            "Gateway",
            "--audience",
            "https://gateway.acme.test",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let redirect_uri = "http://127.0.0.1:9/callback";
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
            redirect_uri,
            "--dev",
            "--require-pkce",
            "false",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let client_id = s(&app["client_id"]);
    let secret = s(&app["client_secret"]);
    let mut authorize = reqwest::Url::parse(&server.url("/connect/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile email"),
        ("response_type", "code"),
        ("state", "s-1"),
        (
            "claims",
            r#"{"id_token":{"given_name":null,"zoneinfo":null}}"#,
        ),
    ]);
    let code = sign_in_over_http(
        authorize.as_str(),
        &server.base,
        redirect_uri,
        "zoe@acme.test",
        "correct horse battery",
    );
    let tokens: Value = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = payload(s(&tokens["id_token"]));
    assert_eq!(
        (&id["given_name"], &id["zoneinfo"]),
        (&json_str("Zoë"), &json_str("Europe/Paris"))
    );
    assert_eq!(id["amr"][0], "pwd");
    let info: Value = reqwest::blocking::Client::new()
        .get(server.url("/connect/userinfo"))
        .bearer_auth(s(&tokens["access_token"]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["name"], "Zoë Martin");
    assert_eq!(info["given_name"], "Zoë");
    assert_eq!(info["locale"], "fr-CA");
    assert_eq!(info["zoneinfo"], "Europe/Paris");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["updated_at"], updated["updated_at"]);
    // No value, no claim (not `null`).
    assert!(info.get("family_name").is_none(), "{info}");
}

fn json_str(s: &str) -> Value {
    Value::String(s.to_owned())
}

#[test]
fn require_par_is_set_at_registration_changed_by_update_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = register(d);
    let out = register_web(
        d,
        &[
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
            "--dev",
            "--require-par",
            "true",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(app["require_par"], true, "{app}");
    let id = s(&app["client_id"]).to_owned();
    assert_eq!(
        json(d, &["app", "show", &id, "--json"])["require_par"],
        true
    );
    let updated = json(
        d,
        &["app", "update", &id, "--require-par", "false", "--json"],
    );
    assert_eq!(updated["require_par"], false);
    assert_eq!(
        json(d, &["app", "show", &id, "--json"])["require_par"],
        false
    );
    // A machine app makes no authorization requests: refused, and unchanged.
    let machine = s(&fixture.app["client_id"]).to_owned();
    let out = gatehouse(d, &["app", "update", &machine, "--require-par", "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("require_par"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(d, &["app", "show", &machine, "--json"])["require_par"],
        false
    );
}

#[test]
fn require_dpop_is_set_at_registration_changed_by_update_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    register(d);
    let out = register_web(
        d,
        &[
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
            "--dev",
            "--require-dpop",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(app["require_dpop"], true, "{app}");
    let id = s(&app["client_id"]).to_owned();
    let updated = json(
        d,
        &["app", "update", &id, "--require-dpop", "false", "--json"],
    );
    assert_eq!(updated["require_dpop"], false);
    assert_eq!(
        json(d, &["app", "show", &id, "--json"])["require_dpop"],
        false
    );
    let updated = json(d, &["app", "update", &id, "--require-dpop", "--json"]);
    assert_eq!(updated["require_dpop"], true);
}

#[test]
fn a_second_secret_rotates_with_a_grace_period_on_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let f = register(dir.path());
    // Two instances over one database, as behind a load balancer.
    let one = Server::start(dir.path(), &[]);
    let two = Server::start(dir.path(), &[]);
    let (id, old) = (s(&f.app["client_id"]), s(&f.app["client_secret"]));
    let (_, body) = seed_token(&one, id, old);
    let old_token = s(&body["access_token"]).to_owned();

    let added = json(dir.path(), &["app", "add-secret", id, "--json"]);
    let new = s(&added["client_secret"]).to_owned();
    let new_id = s(&added["secret_id"]).to_owned();
    assert!(new.len() >= 43 && new != old);
    // Both secrets authenticate on both instances; every token stays valid.
    for server in [&one, &two] {
        for secret in [old, new.as_str()] {
            eventually("both secrets to work", || {
                seed_token(server, id, secret).0 == 200
            });
        }
        assert_eq!(introspect(server, &f.api, &old_token)["active"], true);
    }
    let (_, body) = seed_token(&two, id, &new);
    let new_token = s(&body["access_token"]).to_owned();
    assert_eq!(payload(&new_token)["csid"], new_id.as_str());

    // `app show` lists both by id and last use; never a value.
    let shown = json(dir.path(), &["app", "show", id, "--json"]);
    let secrets = shown["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{shown}");
    let old_id = s(&secrets[0]["id"]).to_owned();
    assert_eq!(secrets[1]["id"], new_id.as_str());
    assert_eq!(payload(&old_token)["csid"], old_id.as_str());
    for x in secrets {
        assert!(x["created_at"].as_i64().unwrap() > 0);
        assert!(x.get("last_used_at").is_some() && x.get("expires_at").is_some());
    }
    let doc = shown.to_string();
    assert!(!doc.contains(old) && !doc.contains(&new), "{doc}");

    // A third is refused; so is retiring what is not there; nothing changes.
    for (args, says) in [
        (
            vec!["app", "add-secret", id],
            "already has 2 active secrets",
        ),
        (
            vec!["app", "retire-secret", id, "nope"],
            "active secret `nope`",
        ),
        (
            vec!["app", "add-secret", id, "--expires-in", "7w"],
            "unit must be s, m, h or d",
        ),
        (
            vec!["app", "add-secret", id, "--expires-in", "0s"],
            "between 1 second and 90 days",
        ),
    ] {
        let out = gatehouse(dir.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        json(dir.path(), &["app", "show", id, "--json"])["secrets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Retiring the old one ends it and its tokens on both instances within a
    // second; the new secret's tokens live on.
    let retired = json(dir.path(), &["app", "retire-secret", id, &old_id, "--json"]);
    assert_eq!(retired["retired"], old_id.as_str());
    let t0 = Instant::now();
    for server in [&one, &two] {
        eventually("the retired secret to stop working", || {
            seed_token(server, id, old).0 == 401
        });
        eventually("its token to end", || {
            introspect(server, &f.api, &old_token)["active"] == false
        });
        assert_eq!(introspect(server, &f.api, &new_token)["active"], true);
        assert_eq!(seed_token(server, id, &new).0, 200);
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    let out = gatehouse(dir.path(), &["app", "retire-secret", id, &new_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last active secret"));
    // One secret again: `show` lists none (the app's own last use is its).
    let shown = json(dir.path(), &["app", "show", id, "--json"]);
    assert!(shown.get("secrets").is_none(), "{shown}");

    // The human output prints the value once; the log never does.
    let out = gatehouse(dir.path(), &["app", "add-secret", id, "--expires-in", "1h"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("client_secret:") && text.contains("3600 s"),
        "{text}"
    );
    let log = format!("{}{}", one.log(), two.log());
    for needle in [old, new.as_str(), old_token.as_str()] {
        assert!(!log.contains(needle), "a secret reached the log");
    }
}

#[test]
fn a_device_app_is_registered_with_the_grant_by_name_or_urn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    register(d);
    for (name, grant) in [
        ("TV", "device_code"),
        ("CLI", "urn:ietf:params:oauth:grant-type:device_code"),
    ] {
        let app = json(
            d,
            &[
                "app",
                "register",
                "--org",
                "acme-studio",
                "--name",
                name,
                "--grant",
                grant,
                "--scopes",
                "cfgateway",
                "--json",
            ],
        );
        assert_eq!(
            app["grant_type"], "urn:ietf:params:oauth:grant-type:device_code",
            "{app}"
        );
    }
}

#[test]
fn a_token_exchange_app_gets_its_exchange_audiences_at_registration_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = register(d);
    let gw = "https://gateway.acme.test";
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Storefront",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--scopes",
            "",
            "--exchange-audience",
            gw,
            "--json",
        ],
    );
    assert_eq!(
        app["grant_type"], "urn:ietf:params:oauth:grant-type:token-exchange",
        "{app}"
    );
    assert_eq!(app["exchange_audiences"], serde_json::json!([gw]));
    let id = s(&app["client_id"]).to_owned();
    let shown = json(d, &["app", "show", &id, "--json"]);
    assert_eq!(shown["exchange_audiences"], serde_json::json!([gw]));
    let cleared = json(
        d,
        &["app", "update", &id, "--clear-exchange-audiences", "--json"],
    );
    assert_eq!(cleared["exchange_audiences"], serde_json::json!([]));
    let set = json(
        d,
        &["app", "update", &id, "--exchange-audience", gw, "--json"],
    );
    assert_eq!(set["exchange_audiences"], serde_json::json!([gw]));
    // Not an API of the organization: refused, and unchanged.
    let out = gatehouse(
        d,
        &[
            "app",
            "update",
            &id,
            "--exchange-audience",
            "https://elsewhere.test",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exchange_audiences"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A machine app exchanges nothing.
    let machine = s(&fixture.app["client_id"]).to_owned();
    let out = gatehouse(d, &["app", "update", &machine, "--exchange-audience", gw]);
    assert!(!out.status.success());
    assert_eq!(
        json(d, &["app", "show", &machine, "--json"])["exchange_audiences"],
        serde_json::json!([])
    );
}

#[test]
fn org_update_requires_a_second_factor_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    register(d);
    let shown = json(d, &["org", "update", "acme-studio", "--json"]);
    assert_eq!(shown["require_mfa"], false, "{shown}");
    let on = json(
        d,
        &["org", "update", "acme-studio", "--require-mfa", "--json"],
    );
    assert_eq!(on["require_mfa"], true, "{on}");
    assert_eq!(on["slug"], "acme-studio");
    let audit = json(d, &["audit", "--org", "acme-studio", "--json"]);
    assert!(audit.to_string().contains("org.require_mfa"), "{audit}");
    let off = json(
        d,
        &["org", "update", "acme-studio", "--no-require-mfa", "--json"],
    );
    assert_eq!(off["require_mfa"], false, "{off}");
    // Per role: the holders of `admin` must use one; a role that does not exist is refused.
    let roles = json(
        d,
        &[
            "org",
            "update",
            "acme-studio",
            "--require-mfa-roles",
            "admin",
            "--json",
        ],
    );
    assert_eq!(
        roles["require_mfa_roles"],
        serde_json::json!(["admin"]),
        "{roles}"
    );
    let wrong = gatehouse(
        d,
        &[
            "org",
            "update",
            "acme-studio",
            "--require-mfa-roles",
            "wizard",
        ],
    );
    assert!(!wrong.status.success());
    let none = json(
        d,
        &[
            "org",
            "update",
            "acme-studio",
            "--require-mfa-roles",
            "",
            "--json",
        ],
    );
    assert_eq!(none["require_mfa_roles"], serde_json::json!([]), "{none}");
}

/// The README's `private_key_jwt` section, as written: an RSA key and its JWKS
/// made with openssl, the app registered with `--jwks-file` (no secret), an
/// assertion signed with openssl, a token; the same assertion again refused.
/// Then `app show`, key changes with `app update`, and what is refused.
#[test]
fn a_private_key_jwt_app_from_the_readme_gets_a_token_with_an_openssl_assertion() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path());
    let server = Server::start(dir.path(), &[]);
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("openssl genpkey -algorithm RSA")
        .expect("the README's private_key_jwt commands");
    let block = &readme[start..];
    let block = &block[..block.find("```").unwrap()];
    let script = format!(
        "set -euo pipefail\ngatehouse() {{ {BIN:?} \"$@\"; }}\n{}\nprintf '\\n%s\\n' \"$KEY_ID\"\n",
        block.replace("http://127.0.0.1:8080", &server.base)
    );
    // The README's commands twice over: the second curl replays nothing (a new
    // jti), so run the token request once more with the first assertion.
    let script = script.replace(
        "# The same assertion again:",
        "echo; curl -s http://X/connect/token -d grant_type=client_credentials \\\n    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \\\n    -d \"client_assertion=$HEADER.$CLAIMS.$SIG\" #",
    )
    .replace("http://X", &server.base);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let key_id = lines.last().unwrap().trim().to_owned();
    // `app show` as printed by the script, then the token, then the replay.
    let shown: Value = serde_json::from_str(&lines[..lines.len() - 3].join("\n")).unwrap();
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(shown["jwks"]["keys"][0]["kid"], "key-1");
    let got: Value = serde_json::from_str(lines[lines.len() - 3]).unwrap();
    assert_eq!(got["token_type"], "Bearer", "{got}");
    let replay: Value = serde_json::from_str(lines[lines.len() - 2]).unwrap();
    assert_eq!(replay["error"], "invalid_client", "{replay}");
    assert!(s(&replay["error_description"]).contains("used before"));

    // No secret to rotate; a URL on loopback is refused without --dev.
    let out = gatehouse(dir.path(), &["app", "rotate-secret", &key_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no client secret"));
    let out = gatehouse(
        dir.path(),
        &[
            "app",
            "update",
            &key_id,
            "--jwks-uri",
            "http://127.0.0.1:9/jwks.json",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwks_uri"));
    // A private key is refused; the keys change with --jwks-file.
    std::fs::write(
        dir.path().join("mine.json"),
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}]}"#,
    )
    .unwrap();
    let out = gatehouse(
        dir.path(),
        &["app", "update", &key_id, "--jwks-file", "mine.json"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("private key material"));
    let updated = json(
        dir.path(),
        &[
            "app",
            "update",
            &key_id,
            "--jwks-uri",
            "https://sync.acme.test/jwks.json",
            "--dns-server",
            &dns_server(),
            "--json",
        ],
    );
    assert_eq!(updated["jwks_uri"], "https://sync.acme.test/jwks.json");
    assert!(updated.get("jwks").is_none());
    drop(server);
}

/// `user invite` makes a person without a password and prints a link that the
/// running server's page accepts, once; `--resend` replaces it with a new one
/// until they have accepted.
#[test]
fn user_invite_prints_a_link_that_sets_the_first_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let d = dir.path();
    json(d, &["org", "create", "--name", "Acme Studio", "--json"]);
    let made = json(
        d,
        &[
            "user",
            "invite",
            "--org",
            "acme-studio",
            "--email",
            "new@acme.test",
            "--role",
            "developer",
            "--issuer",
            &server.base,
            "--json",
        ],
    );
    assert_eq!(made["user"]["can_sign_in"], false);
    let first = s(&made["link"]).to_owned();
    let resend = [
        "user",
        "invite",
        "--resend",
        "--org",
        "acme-studio",
        "--email",
        "new@acme.test",
        "--issuer",
        &server.base,
        "--json",
    ];
    let again = json(d, &resend);
    assert_eq!(again["user"]["id"], made["user"]["id"]);
    let link = s(&again["link"]).to_owned();
    assert_ne!(link, first);
    assert_eq!(
        reqwest::blocking::get(&first).unwrap().status(),
        404,
        "the earlier link no longer works"
    );
    assert!(
        link.starts_with(&server.url("/password/set?token=")),
        "{link}"
    );
    let http = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = http.get(&link).send().unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let at = page.find(marker).unwrap() + marker.len();
    let csrf = &page[at..at + page[at..].find('"').unwrap()];
    let token = link.split("token=").nth(1).unwrap();
    let set = |pw: &str| {
        http.post(server.url("/password/set"))
            .form(&[
                ("csrf_token", csrf),
                ("token", token),
                ("password", pw),
                ("confirm", pw),
            ])
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(set("a long first password"), 200);
    assert_eq!(set("another long password"), 404);
    let users = json(d, &["user", "list", "--org", "acme-studio", "--json"]);
    assert_eq!(users[0]["can_sign_in"], true, "{users}");
    // Accepted: nothing to resend.
    let out = gatehouse(d, &resend[..resend.len() - 1]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has already accepted"), "{err}");
}
