//! `gatehouse gateway` end to end, as real processes on loopback: `gatehouse
//! serve`, one or more `gatehouse gateway`s, and an in-test axum upstream that
//! echoes what it received. Tokens come from the real token endpoint; admin
//! changes are made with the real CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

mod common;

use common::{BIN, Server, json};

const AUD: &str = "https://gateway.acme.test";

struct Fixture {
    api: Value,
    /// A second API, `https://reports.acme.test`, with reference tokens.
    reports: Value,
    app: Value,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// The README's set-up: an org, a developer and an ops user, the API, the app.
fn register(dir: &Path, ttl: &str) -> Fixture {
    json(dir, &["org", "create", "--name", "Acme Studio", "--json"]);
    for email in ["dev@acme.test", "ops@acme.test"] {
        json(
            dir,
            &[
                "user",
                "create",
                "--org",
                "acme-studio",
                "--email",
                email,
                "--role",
                "developer",
                "--groups",
                "ops,night",
                "--json",
            ],
        );
    }
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
            AUD,
            "--scopes",
            "cfgateway products:read",
            "--access-token-ttl",
            ttl,
            "--json",
        ],
    );
    let reports = json(
        dir,
        &[
            "api",
            "create",
            "--org",
            "acme-studio",
            "--name",
            "Reports",
            "--audience",
            "https://reports.acme.test",
            "--scopes",
            "reports",
            "--token-format",
            "reference",
            "--json",
        ],
    );
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
            "cfgateway products:read reports",
            "--default-scopes",
            "cfgateway",
            "--json",
        ],
    );
    Fixture { api, reports, app }
}

/// The seed's token request (credentials in the body), with `scope`.
fn token(server: &Server, app: &Value, scope: &str) -> String {
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s(&app["client_id"])),
            ("client_secret", s(&app["client_secret"])),
            ("scope", scope),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    s(&body["access_token"]).to_owned()
}

/// `serve` with the README's set-up, an upstream, and a gateway in front of it.
/// Fields drop in order: the gateway first, the working directory last.
struct Stack {
    gw: Gateway,
    server: Server,
    f: Fixture,
    dir: tempfile::TempDir,
}

impl Stack {
    /// `ttl`: the API's token lifetime; `flags` follow `--audience` and `--upstream`.
    fn start(ttl: &str, flags: &[&str]) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &[]);
        let f = register(dir.path(), ttl);
        let up = upstream();
        let mut args = vec!["--audience", AUD, "--upstream", up.as_str()];
        args.extend_from_slice(flags);
        let gw = Gateway::start(dir.path(), &server, &f.api, &args);
        Stack { gw, server, f, dir }
    }
}

struct Gateway {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Gateway {
    fn start(dir: &Path, server: &Server, api: &Value, args: &[&str]) -> Gateway {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = dir.join(format!("gateway-{n}.log"));
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args([
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--issuer",
                &server.base,
            ])
            .args(["--api-client-id", s(&api["client_id"])])
            .args(args)
            // The secret from the environment, as the README recommends.
            .env(
                "GATEHOUSE_GATEWAY_API_CLIENT_SECRET",
                s(&api["client_secret"]),
            )
            .env("GATEHOUSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut file = std::fs::File::create(&log).unwrap();
        let base = loop {
            let line = lines
                .next()
                .expect("gateway exited before listening")
                .unwrap();
            writeln!(file, "{line}").unwrap();
            if line.contains("gateway listening on") {
                break line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .unwrap()
                    .to_owned();
            }
        };
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        Gateway { child, base, log }
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
        let mut req = reqwest::blocking::Client::new().get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream that echoes method, path and headers as JSON; `/slow/…` answers
/// after 3 s.
fn upstream() -> String {
    use axum::extract::Request;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let echo = |req: Request| async move {
                if req.uri().path().starts_with("/slow/") {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                    .collect();
                let method = req.method().to_string();
                let uri = req.uri().to_string();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                axum::Json(json!({"method": method, "uri": uri, "headers": headers, "body": String::from_utf8_lossy(&body)}))
            };
            axum::serve(l, axum::Router::new().fallback(echo)).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn challenge(resp: &reqwest::blocking::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Asserts a 401 `invalid_token` whose description contains `why`.
fn assert_invalid(resp: reqwest::blocking::Response, why: &str) {
    assert_eq!(resp.status(), 401, "{why}");
    let c = challenge(&resp);
    assert!(
        c.starts_with(&format!(
            r#"Bearer realm="{AUD}", error="invalid_token", error_description=""#
        )) && c.contains(why),
        "{c} (expected {why})"
    );
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"], "invalid_token");
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// `token` with its header replaced (signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let mut parts = token.splitn(2, '.');
    parts.next();
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        parts.next().unwrap()
    )
}

/// Waits (up to 5 s) for `f` to hold; returns how long it took.
fn until(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

#[test]
fn claims_arrive_upstream_and_bad_tokens_get_rfc_6750_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path(), "3600");
    let up = upstream();
    let gw = Gateway::start(
        dir.path(),
        &server,
        &f.api,
        &[
            "--audience",
            AUD,
            "--upstream",
            &up,
            "--upstream-timeout-secs",
            "1",
            "--route",
            "GET /v1/products/*=cfgateway",
            "--route",
            "GET /v1/reports/*=cfgateway products:read",
            "--route",
            "* /slow/*",
        ],
    );
    let good = token(&server, &f.app, "cfgateway");

    // The principal arrives as headers; what the caller claimed about itself does not.
    let resp = reqwest::blocking::Client::new()
        .get(gw.url("/v1/products/get-status?productCode=gcs1"))
        .bearer_auth(&good)
        .header("X-Gatehouse-Subject", "someone-else")
        .header("X-Gatehouse-Admin", "yes")
        .header("Connection", "close, X-Private")
        .header("X-Private", "hop")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().unwrap();
    let h = &echo["headers"];
    let user = json(
        dir.path(),
        &["user", "list", "--org", "acme-studio", "--json"],
    );
    let dev = user
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "dev@acme.test")
        .unwrap();
    assert_eq!(echo["uri"], "/v1/products/get-status?productCode=gcs1");
    assert_eq!(h["x-gatehouse-client-id"], f.app["client_id"]);
    assert_eq!(h["x-gatehouse-subject"], dev["id"]);
    let orgs = json(dir.path(), &["org", "list", "--json"]);
    assert_eq!(h["x-gatehouse-org"], orgs[0]["id"]);
    assert_eq!(h["x-gatehouse-scopes"], "cfgateway");
    assert_eq!(h["x-gatehouse-role"], "developer");
    assert_eq!(h["x-gatehouse-groups"], "ops,night");
    assert!(
        s(&h["x-gatehouse-permissions"]).contains("developer_api"),
        "{h}"
    );
    assert!(h.get("x-gatehouse-admin").is_none(), "{h}");
    assert!(h.get("x-private").is_none(), "{h}");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gw.base.trim_start_matches("http://"));

    // A body streams through.
    let posted = reqwest::blocking::Client::new()
        .post(gw.url("/slow/x"))
        .bearer_auth(&good)
        .body("")
        .send()
        .unwrap();
    assert_eq!(posted.status(), 504, "slow upstream");
    assert_eq!(posted.json::<Value>().unwrap()["error"], "gateway_timeout");

    // Missing (RFC 6750 §3.1: no error code then), malformed, tampered, alg none,
    // unknown kid, wrong typ.
    let missing = gw.get("/v1/products/get-status", None);
    assert_eq!(missing.status(), 401);
    assert_eq!(challenge(&missing), format!(r#"Bearer realm="{AUD}""#));
    let basic = reqwest::blocking::Client::new()
        .get(gw.url("/v1/products/x"))
        .basic_auth("a", Some("b"))
        .send()
        .unwrap();
    assert_invalid(basic, "Authorization header");
    assert_invalid(gw.get("/v1/products/x", Some("a.b.c")), "malformed");
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_invalid(
        gw.get("/v1/products/x", Some(&tampered)),
        "signature is invalid",
    );
    let mut claims_tampered: Vec<&str> = good.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&B64.decode(claims_tampered[1]).unwrap()).unwrap();
    payload["scope"] = json!("cfgateway products:read");
    let forged_payload = B64.encode(payload.to_string());
    claims_tampered[1] = &forged_payload;
    assert_invalid(
        gw.get("/v1/reports/x", Some(&claims_tampered.join("."))),
        "signature is invalid",
    );
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        good.split('.').nth(1).unwrap()
    );
    assert_invalid(
        gw.get("/v1/products/x", Some(&none)),
        "algorithm is not accepted",
    );
    let mut h0 = header_of(&good);
    h0["alg"] = json!("HS256");
    assert_invalid(
        gw.get("/v1/products/x", Some(&with_header(&good, &h0))),
        "algorithm is not accepted",
    );
    let mut h1 = header_of(&good);
    h1["typ"] = json!("JWT");
    assert_invalid(
        gw.get("/v1/products/x", Some(&with_header(&good, &h1))),
        "typ must be at+jwt",
    );

    // Unknown kids: refused, and a flood of them cannot make the gateway hammer
    // the issuer (an unknown kid waits for the next refetch the once-a-second
    // limit allows, so that a key made a moment ago is found; the flood shares it).
    let jwks_fetches = || {
        server
            .log()
            .lines()
            .filter(|l| l.contains("/.well-known/jwks.json") && l.contains("started processing"))
            .count()
    };
    // Time must pass here: the gateway refetches for unknown kids at most once a
    // second, and its last fetch (at start) may be less than a second ago.
    std::thread::sleep(Duration::from_millis(1100));
    let before = jwks_fetches();
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..30 {
            let mut h = header_of(&good);
            h["kid"] = json!(format!("junk-{i}"));
            let forged = with_header(&good, &h);
            let gw = &gw;
            scope.spawn(move || {
                assert_invalid(gw.get("/v1/products/x", Some(&forged)), "unknown key");
            });
        }
    });
    let took = t0.elapsed();
    println!("30 concurrent unknown kids refused within {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    until(
        "the server to log the refetch the first junk kid caused",
        || jwks_fetches() > before,
    );
    let fetched = jwks_fetches() - before;
    println!("30 unknown kids caused {fetched} JWKS fetch(es)");
    // At most one fetch per second of the flood, plus the one it starts with.
    let bound = 1 + took.as_secs_f64().ceil() as usize;
    assert!(
        (1..=bound).contains(&fetched),
        "{fetched} JWKS fetches for 30 junk kids in {took:?}"
    );

    // Missing scope: 403 with the scope needed.
    let resp = gw.get("/v1/reports/daily", Some(&good));
    assert_eq!(resp.status(), 403);
    assert_eq!(
        challenge(&resp),
        format!(
            r#"Bearer realm="{AUD}", error="insufficient_scope", error_description="the `products:read` scope is required", scope="products:read""#
        )
    );
    let both = token(&server, &f.app, "cfgateway products:read");
    assert_eq!(gw.get("/v1/reports/daily", Some(&both)).status(), 200);

    // No route, or a path that tries to climb out of one.
    let resp = gw.get("/v2/other", Some(&good));
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().unwrap()["error"], "not_found");
    // (Raw HTTP: client libraries would resolve the dot segments themselves.)
    for path in [
        "/v1/products/%2e%2e/reports/daily",
        "/v1/products/../reports/daily",
    ] {
        let status = raw_get(&gw.base, path, &good);
        assert!(status.starts_with("HTTP/1.1 400"), "{path}: {status}");
    }

    // A token for another API; and that API's reference tokens, introspected.
    let reports = &f.reports;
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmethod = \"GET\"\npath = \"/r/*\"\nscopes = [\"reports\"]\n",
    )
    .unwrap();
    let gw2 = Gateway::start(
        dir.path(),
        &server,
        reports,
        &[
            "--audience",
            "https://reports.acme.test",
            "--upstream",
            &up,
            "--routes",
            routes.to_str().unwrap(),
        ],
    );
    let foreign = gw2.get("/r/1", Some(&good));
    assert_eq!(foreign.status(), 401);
    assert!(
        challenge(&foreign).contains("another audience"),
        "{}",
        challenge(&foreign)
    );
    let reference = token(&server, &f.app, "reports");
    assert_eq!(reference.matches('.').count(), 0, "a reference token");
    let resp = gw2.get("/r/1", Some(&reference));
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().unwrap()["headers"]["x-gatehouse-scopes"],
        "reports"
    );
    assert_invalid_for(
        gw2.get("/r/1", Some("not-a-real-reference-token")),
        "https://reports.acme.test",
        "not active",
    );

    // An upstream that is not there: 502 with JSON.
    let gw3 = Gateway::start(
        dir.path(),
        &server,
        &f.api,
        &[
            "--audience",
            AUD,
            "--upstream",
            "http://127.0.0.1:9",
            "--route",
            "* /*",
        ],
    );
    let resp = gw3.get("/anything", Some(&good));
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.json::<Value>().unwrap()["error"], "bad_gateway");
    assert!(
        !gw.log().contains(s(&f.api["client_secret"])),
        "the API secret reached the log"
    );
}

/// The status line of a GET sent byte for byte as written.
fn raw_get(base: &str, path: &str, token: &str) -> String {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_owned()
}

fn assert_invalid_for(resp: reqwest::blocking::Response, realm: &str, why: &str) {
    assert_eq!(resp.status(), 401);
    let c = challenge(&resp);
    assert!(
        c.contains(&format!(r#"realm="{realm}""#)) && c.contains(why),
        "{c}"
    );
}

#[test]
fn rotate_secret_and_set_on_behalf_of_end_jwts_at_the_gateway_within_a_second() {
    let st = Stack::start("3600", &["--route", "GET /v1/products/*=cfgateway"]);
    let (dir, server, f, gw) = (&st.dir, &st.server, &st.f, &st.gw);
    let path = "/v1/products/get-status?productCode=gcs1";
    let id = s(&f.app["client_id"]).to_owned();

    let before = token(server, &f.app, "cfgateway");
    assert_eq!(gw.get(path, Some(&before)).status(), 200);
    let rotated = json(dir.path(), &["app", "rotate-secret", &id, "--json"]);
    let took = until("a rotated app's JWT to be refused", || {
        gw.get(path, Some(&before)).status() == 401
    });
    println!("rotate-secret: the old JWT was refused {took:?} after the CLI returned");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_invalid(gw.get(path, Some(&before)), "secret was rotated");

    let app = json!({"client_id": id, "client_secret": rotated["client_secret"]});
    let second = token(server, &app, "cfgateway");
    assert_eq!(
        gw.get(path, Some(&second)).status(),
        200,
        "a token after the rotation works"
    );
    json(
        dir.path(),
        &[
            "app",
            "set-on-behalf-of",
            &id,
            "--user",
            "ops@acme.test",
            "--json",
        ],
    );
    let took = until("a JWT of the previous on-behalf user to be refused", || {
        gw.get(path, Some(&second)).status() == 401
    });
    println!("set-on-behalf-of: the old JWT was refused {took:?} after the CLI returned");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let third = token(server, &app, "cfgateway");
    assert_eq!(gw.get(path, Some(&third)).status(), 200);

    // Deactivating the acting user ends its tokens too; deleting the app, all.
    json(
        dir.path(),
        &["user", "deactivate", "ops@acme.test", "--json"],
    );
    let took = until("a deactivated user's JWT to be refused", || {
        gw.get(path, Some(&third)).status() == 401
    });
    println!("user deactivate: refused after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_invalid(gw.get(path, Some(&third)), "deactivated");
}

#[test]
fn retiring_or_expiring_a_secret_ends_its_jwts_at_the_gateway_within_a_second_and_only_those() {
    let st = Stack::start("3600", &["--route", "GET /v1/products/*=cfgateway"]);
    let (dir, server, f, gw) = (&st.dir, &st.server, &st.f, &st.gw);
    let path = "/v1/products/get-status?productCode=gcs1";
    let id = s(&f.app["client_id"]).to_owned();

    let old = token(server, &f.app, "cfgateway");
    let added = json(dir.path(), &["app", "add-secret", &id, "--json"]);
    let second = json!({"client_id": id, "client_secret": added["client_secret"]});
    let new = token(server, &second, "cfgateway");
    // Both secrets' tokens pass, for longer than the feed takes to tell.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1200) {
        assert_eq!(gw.get(path, Some(&old)).status(), 200);
        assert_eq!(gw.get(path, Some(&new)).status(), 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = json(dir.path(), &["app", "show", &id, "--json"]);
    let old_id = s(&shown["secrets"][0]["id"]).to_owned();
    json(
        dir.path(),
        &["app", "retire-secret", &id, &old_id, "--json"],
    );
    let took = until("a retired secret's JWT to be refused", || {
        gw.get(path, Some(&old)).status() == 401
    });
    println!("retire-secret: its JWT was refused {took:?} after the CLI returned");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_invalid(gw.get(path, Some(&old)), "client secret it was issued with");
    assert_eq!(
        gw.get(path, Some(&new)).status(),
        200,
        "the other secret's token lives"
    );

    // A grace period: the current secret expires in 2 s, without anyone acting.
    let third = json(
        dir.path(),
        &["app", "add-secret", &id, "--expires-in", "2s", "--json"],
    );
    let added_at = Instant::now();
    let third = json!({"client_id": id, "client_secret": third["client_secret"]});
    let newest = token(server, &third, "cfgateway");
    assert_eq!(
        gw.get(path, Some(&new)).status(),
        200,
        "still in its grace period"
    );
    let took = until("an expired secret's JWT to be refused", || {
        gw.get(path, Some(&new)).status() == 401
    });
    let since = added_at.elapsed();
    println!("--expires-in 2s: its JWT was refused {since:?} after add-secret returned");
    assert!(since > Duration::from_millis(900), "{since:?}");
    assert!(since < Duration::from_secs(3), "{since:?} ({took:?})");
    assert_eq!(gw.get(path, Some(&newest)).status(), 200);
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", s(&second["client_secret"])),
        ])
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the expired secret no longer authenticates"
    );

    // Regenerating still ends every secret's tokens at once.
    json(dir.path(), &["app", "rotate-secret", &id, "--json"]);
    let took = until("every JWT to be refused after a regeneration", || {
        gw.get(path, Some(&newest)).status() == 401
    });
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn re_activating_a_user_does_not_revive_their_old_tokens_at_the_gateway() {
    let st = Stack::start("3600", &["--route", "GET /v1/products/*=cfgateway"]);
    let (dir, server, f, gw) = (&st.dir, &st.server, &st.f, &st.gw);
    let path = "/v1/products/get-status?productCode=gcs1";
    // The app acts for dev@acme.test.
    let old = token(server, &f.app, "cfgateway");
    assert_eq!(gw.get(path, Some(&old)).status(), 200);

    json(
        dir.path(),
        &["user", "deactivate", "dev@acme.test", "--json"],
    );
    let took = until("a deactivated user's JWT to be refused", || {
        gw.get(path, Some(&old)).status() == 401
    });
    assert!(took < Duration::from_secs(1), "{took:?}");

    // The attacker holding the old token waits for the person to be re-activated.
    json(dir.path(), &["user", "activate", "dev@acme.test", "--json"]);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        let resp = gw.get(path, Some(&old));
        assert_ne!(
            resp.status(),
            200,
            "the old token came back {:?} after re-activation",
            t0.elapsed()
        );
        assert_invalid(resp, "issued before its user was deactivated");
        std::thread::sleep(Duration::from_millis(50));
    }
    let new = token(server, &f.app, "cfgateway");
    assert_eq!(
        gw.get(path, Some(&new)).status(),
        200,
        "a token issued after re-activation works"
    );
    assert_invalid(gw.get(path, Some(&old)), "issued before");
}

#[test]
fn key_rotation_on_the_server_is_picked_up_without_a_gateway_restart() {
    let st = Stack::start("3600", &["--route", "GET /v1/*=cfgateway"]);
    let (dir, server, f, gw) = (&st.dir, &st.server, &st.f, &st.gw);
    let old = token(server, &f.app, "cfgateway");
    assert_eq!(gw.get("/v1/x", Some(&old)).status(), 200);
    let rotated = json(dir.path(), &["keys", "rotate", "--alg", "ES256", "--json"]);
    let new_kid = s(&rotated["kid"]).to_owned();
    let mut fresh = String::new();
    until("the server to sign with the new key", || {
        fresh = token(server, &f.app, "cfgateway");
        header_of(&fresh)["kid"] == new_kid.as_str()
    });
    let took = until("the gateway to accept the new key", || {
        gw.get("/v1/x", Some(&fresh)).status() == 200
    });
    println!("new key accepted {took:?} after the server used it");
    assert_eq!(
        gw.get("/v1/x", Some(&old)).status(),
        200,
        "the retired key still verifies"
    );
}

/// The first token the server signs with a key it has just made is accepted at
/// once: not refused while the gateway's last JWKS fetch, made as the feed told
/// of the rotation, is less than a second old and predates the key (the soak
/// found seven such 401s after `keys rotate`).
#[test]
fn the_first_token_of_a_new_key_is_accepted_at_once() {
    let st = Stack::start("3600", &["--route", "GET /v1/*=cfgateway"]);
    let (dir, server, f, gw) = (&st.dir, &st.server, &st.f, &st.gw);
    for round in 0..3 {
        let rotated = json(dir.path(), &["keys", "rotate", "--alg", "ES256", "--json"]);
        let new_kid = s(&rotated["kid"]).to_owned();
        let mut fresh = String::new();
        until("the server to sign with the new key", || {
            fresh = token(server, &f.app, "cfgateway");
            header_of(&fresh)["kid"] == new_kid.as_str()
        });
        let r = gw.get("/v1/x", Some(&fresh));
        assert_eq!(
            r.status(),
            200,
            "round {round}: the new key's first token: {}",
            r.text().unwrap_or_default()
        );
    }
}

#[test]
fn expired_tokens_are_refused() {
    // The shortest lifetime an API may have.
    let st = Stack::start(
        "30",
        &["--route", "GET /v1/*=cfgateway", "--leeway-secs", "0"],
    );
    let (server, f, gw) = (&st.server, &st.f, &st.gw);
    let t = token(server, &f.app, "cfgateway");
    assert_eq!(gw.get("/v1/x", Some(&t)).status(), 200);
    let exp = serde_json::from_slice::<Value>(&B64.decode(t.split('.').nth(1).unwrap()).unwrap())
        .unwrap()["exp"]
        .as_i64()
        .unwrap();
    let now = || gatehouse_core::clock::Clock::now(&gatehouse_core::clock::SystemClock);
    // Time must pass: with no leeway a token is expired from the second `exp` on,
    // so wait for that second, not a margin past it.
    while now() < exp {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_invalid(gw.get("/v1/x", Some(&t)), "expired");
}

#[test]
fn demo_mode_answers_the_seed_request_and_a_rotated_secret_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path(), "3600");
    let gw = Gateway::start(dir.path(), &server, &f.api, &["--audience", AUD, "--demo"]);
    let t = token(&server, &f.app, "cfgateway");
    // The seed's request, as its curl command sends it.
    let seed = |token: &str| {
        reqwest::blocking::Client::new()
            .get(gw.url("/v1/products/get-status?productCode=gcs1"))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .unwrap()
    };
    let resp = seed(&t);
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["productCode"], "gcs1");
    assert_eq!(body["status"], "active");
    assert_eq!(body["calledBy"]["clientId"], f.app["client_id"]);
    let unknown = gw.get("/v1/products/get-status?productCode=nope", Some(&t));
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().unwrap()["error"], "not_found");
    let health: Value = gw.get("/health", None).json().unwrap();
    assert_eq!(health["feed"], "fresh");
    assert!(health["keys"].as_u64().unwrap() >= 3, "{health}");

    json(
        dir.path(),
        &["app", "rotate-secret", s(&f.app["client_id"]), "--json"],
    );
    until("the seed request to get 401 after rotate-secret", || {
        seed(&t).status() == 401
    });
    assert_invalid(seed(&t), "secret was rotated");
}

#[test]
fn with_the_server_down_cached_keys_keep_validating_and_health_says_stale() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path(), "3600");
    let up = upstream();
    let gw = Gateway::start(
        dir.path(),
        &server,
        &f.api,
        &[
            "--audience",
            AUD,
            "--upstream",
            &up,
            "--route",
            "GET /v1/*=cfgateway",
            "--max-feed-staleness-secs",
            "1",
        ],
    );
    let t = token(&server, &f.app, "cfgateway");
    // A stale gateway vouches only for tokens issued no later than its feed's last
    // answer, and a parked long poll answers only on a change: make one (another
    // token revoked by the app, RFC 7009) after `t`, and wait for the gateway to
    // have read it, so its last answer is certainly no earlier than `t`'s `iat`.
    let cursor = |gw: &Gateway| gw.get("/health", None).json::<Value>().unwrap()["cursor"].clone();
    let before = cursor(&gw);
    let other = token(&server, &f.app, "cfgateway");
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/revocation"))
        .basic_auth(s(&f.app["client_id"]), Some(s(&f.app["client_secret"])))
        .form(&[("token", other.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    until("the gateway to read the revocation", || {
        cursor(&gw) != before
    });
    let ok = gw.get("/health", None);
    assert_eq!(ok.status(), 200);
    drop(server);
    until("health to say stale", || {
        let r = gw.get("/health", None);
        r.status() == 503 && r.json::<Value>().unwrap()["feed"] == "stale"
    });
    assert_eq!(
        gw.get("/v1/x", Some(&t)).status(),
        200,
        "a cached JWT still validates"
    );
    let mut h = header_of(&t);
    h["kid"] = json!("unknown-while-down");
    assert_invalid(gw.get("/v1/x", Some(&with_header(&t, &h))), "unknown key");
}

/// The whole response to `request`, sent byte for byte as written.
fn raw(base: &str, request: &str) -> String {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out
}

/// Sends `request` (deliberately incomplete) and reads until the gateway closes
/// the connection or 10 s pass; returns what came back and when it closed.
fn half_sent(base: &str, request: &[u8]) -> (String, Duration) {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    conn.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
}

#[test]
fn half_sent_requests_are_closed_within_the_read_timeouts_and_bodies_still_proxy() {
    let st = Stack::start(
        "3600",
        &[
            "--route",
            "* /v1/*=cfgateway",
            "--header-read-timeout-ms",
            "300",
            "--body-read-timeout-ms",
            "600",
            "--max-connections",
            "64",
        ],
    );
    let gw = &st.gw;
    let t = token(&st.server, &st.f.app, "cfgateway");

    // A POST with a body streams through whole (the body deadline is per request).
    let body = "a".repeat(256 * 1024);
    let resp = reqwest::blocking::Client::new()
        .post(gw.url("/v1/upload"))
        .bearer_auth(&t)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["headers"]["content-length"], "262144");
    assert_eq!(echo["body"], body.as_str());

    // Headers that never finish (slowloris): closed after the header timeout.
    let (out, took) = half_sent(
        &gw.base,
        format!("GET /v1/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\n").as_bytes(),
    );
    println!("half-sent head closed after {took:?}: {out:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!out.contains(" 200 "), "{out}");

    // A body that stops half way: the request fails after the body timeout
    // (instead of holding the gateway and the upstream until the upstream timeout).
    let (out, took) = half_sent(
        &gw.base,
        format!(
            "POST /v1/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        .as_bytes(),
    );
    println!("half-sent body closed after {took:?}: {out:?}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!out.contains(" 200 "), "{out}");
}

/// An upstream that routes as lenient servers do: `;parameters` stripped per
/// segment (servlet containers), then everything percent-decoded, `//` merged,
/// dot segments resolved and case folded. Its admin route answers
/// `{"admin": true}`; anything else echoes the path it routed on.
fn lenient_upstream() -> String {
    use axum::extract::Request;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let route = |req: Request| async move {
                let raw = req.uri().path().to_owned();
                let stripped: Vec<&str> = raw
                    .split('/')
                    .map(|seg| seg.split_once(';').map_or(seg, |(b, _)| b))
                    .collect();
                let decoded = percent_decode(&stripped.join("/"));
                let mut stack: Vec<&str> = Vec::new();
                for seg in decoded.split('/') {
                    match seg {
                        "" | "." => {}
                        ".." => {
                            stack.pop();
                        }
                        s => stack.push(s),
                    }
                }
                let routed = format!("/{}", stack.join("/")).to_lowercase();
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                    .collect();
                axum::Json(json!({
                    "admin": routed.starts_with("/v1/admin"),
                    "raw": raw,
                    "routed": routed,
                    "method": req.method().to_string(),
                    "headers": headers,
                }))
            };
            axum::serve(l, axum::Router::new().fallback(route))
                .await
                .unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn path_tricks_never_reach_an_admin_route_the_token_may_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path(), "3600");
    let up = lenient_upstream();
    // The upstream ignores case, so the gateway is told to as well.
    let gw = Gateway::start(
        dir.path(),
        &server,
        &f.api,
        &[
            "--audience",
            AUD,
            "--upstream",
            &up,
            "--case-insensitive-routes",
            "--route",
            "* /v1/*=cfgateway",
            "--route",
            "* /v1/admin/*=products:read",
            "--route",
            "GET /v1/echo-auth forward_authorization=cfgateway",
        ],
    );
    let t = token(&server, &f.app, "cfgateway");
    let get = |path: &str| {
        raw(
            &gw.base,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let ok = get("/v1/products/x");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains(r#""admin":false"#), "{ok}");
    for path in [
        "/v1/admin/users",
        "/v1/%61dmin/users",
        "/v1/admin;x=1/users",
        "/v1/Admin/users",
        "/v1/ADMIN/users/",
        "/v1//admin/users",
        "/v1/products/..;/admin",
        "/v1/products/%2e%2e;/admin",
        "/v1/products/../admin",
        "/v1/products/%2E%2E/admin",
        "/v1/products/.%2e/admin",
        "/v1/admin",
        "/v1/admin/",
        "/v1/%41dmin",
        "/v1/x/..%2fadmin",
        "/v1/x%2f..%2fadmin",
        "/v1/x/..%5cadmin",
        "/v1/x\\..\\admin",
        "/v1/;x/admin",
        "/v1/%3bx/admin",
        "/v1/%2561dmin/users",
        "/v1/adm%00in",
    ] {
        let resp = get(path);
        let status = resp.lines().next().unwrap_or_default().to_owned();
        assert!(
            ["400", "403", "404"]
                .iter()
                .any(|c| status.starts_with(&format!("HTTP/1.1 {c}"))),
            "{path}: {resp}"
        );
        assert!(
            !resp.contains(r#""admin":true"#),
            "{path} reached the admin route: {resp}"
        );
    }
    // The admin scope does get in, on the canonical path.
    let admin = token(&server, &f.app, "cfgateway products:read");
    let resp = reqwest::blocking::Client::new()
        .get(gw.url("/v1/%61dmin/users?x=%2F"))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().unwrap();
    assert_eq!(echo["admin"], true);
    assert_eq!(echo["raw"], "/v1/admin/users");

    // Method overrides, hop-by-hop and forwarding headers, the caller's token.
    let resp = reqwest::blocking::Client::new()
        .post(gw.url("/v1/products/x"))
        .bearer_auth(&t)
        .header("X-HTTP-Method-Override", "DELETE")
        .header("X-HTTP-Method", "DELETE")
        .header("X-Method-Override", "DELETE")
        .header("Proxy-Connection", "keep-alive")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "admin.internal")
        .header("Forwarded", "for=6.6.6.6;proto=https")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().unwrap();
    let h = &echo["headers"];
    for gone in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "proxy-connection",
        "forwarded",
        "authorization",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gw.base.trim_start_matches("http://"));
    // A route that asks for the caller's Authorization header gets it.
    let echo: Value = gw.get("/v1/echo-auth", Some(&t)).json().unwrap();
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {t}"));

    // Both framings at once, hiding a second request after the chunked body (a
    // CL.TE smuggling attempt): hyper frames by Transfer-Encoding alone, drops
    // Content-Length (RFC 9112 §6.3) and closes the connection after one answer,
    // so the hidden request is never read; what remains is never forwarded with
    // both headers (and the gateway answers 400 if it ever sees both).
    for (first, second) in [
        ("Content-Length: 4", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 4"),
    ] {
        let resp = raw(
            &gw.base,
            &format!(
                "POST /v1/products/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\n{first}\r\n{second}\r\n\r\n0\r\n\r\nGET /v1/admin/users HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\n\r\n"
            ),
        );
        assert_eq!(resp.matches("HTTP/1.1 ").count(), 1, "{resp}");
        assert!(!resp.contains(r#""admin":true"#), "{resp}");
        if resp.starts_with("HTTP/1.1 200") {
            assert!(!resp.contains("content-length\":"), "{resp}");
            assert!(resp.contains("connection: close"), "{resp}");
        } else {
            assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        }
    }
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `gatehouse serve` on a fixed address, for a restart on the same port.
fn serve_on(dir: &Path, addr: &str) -> Child {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--listen", addr])
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env("GATEHOUSE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("serve printed nothing").unwrap();
    assert!(first.contains(addr), "{first}");
    std::thread::spawn(move || for _ in lines {});
    child
}

/// A server a test can kill and start again on the same address and files
/// (`serve`), with a gateway in front of it routing `GET /v1/*` to an upstream.
struct Restartable {
    dir: tempfile::TempDir,
    f: Fixture,
    addr: String,
    serve: Child,
    /// The address only: its child is a stand-in, `serve` is the real one.
    server: Server,
    gw: Gateway,
}

impl Restartable {
    fn start(gateway_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let first = Server::start(dir.path(), &[]);
        let f = register(dir.path(), "3600");
        drop(first);
        let addr = format!("127.0.0.1:{}", free_port());
        let serve = serve_on(dir.path(), &addr);
        let server = Server {
            child: Command::new("true").spawn().unwrap(),
            base: format!("http://{addr}"),
            log: dir.path().join("unused.log"),
            banner: Vec::new(),
        };
        let up = upstream();
        let mut args = vec![
            "--audience",
            AUD,
            "--upstream",
            &up,
            "--route",
            "GET /v1/*=cfgateway",
        ];
        args.extend_from_slice(gateway_args);
        let gw = Gateway::start(dir.path(), &server, &f.api, &args);
        Self {
            dir,
            f,
            addr,
            serve,
            server,
            gw,
        }
    }
}

#[test]
fn the_feed_is_fresh_within_seconds_of_a_server_restart() {
    let Restartable {
        dir,
        f,
        addr,
        mut serve,
        server,
        gw,
    } = Restartable::start(&["--max-feed-staleness-secs", "1"]);
    assert_eq!(gw.get("/health", None).status(), 200);
    serve.kill().unwrap();
    serve.wait().unwrap();
    until("health to say stale", || {
        gw.get("/health", None).status() == 503
    });
    serve = serve_on(dir.path(), &addr);
    let t0 = Instant::now();
    while gw.get("/health", None).status() != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the gateway's feed was not fresh 3 s after the server came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "feed fresh {:?} after the restarted server listened",
        t0.elapsed()
    );
    let fresh = token(&server, &f.app, "cfgateway");
    assert_eq!(gw.get("/v1/x", Some(&fresh)).status(), 200);
    serve.kill().unwrap();
    serve.wait().unwrap();
}

/// An ending acknowledged the moment the issuer is back from an outage is
/// refused within the second: the gateway, retrying the feed meanwhile, must
/// not be asleep in a long backoff (it was: up to 2 s, found by the soak's
/// PostgreSQL restart as ended tokens accepted 1.0-1.2 s after the ending).
#[test]
fn an_ending_right_after_an_issuer_outage_is_refused_within_a_second() {
    let Restartable {
        dir,
        f,
        addr,
        mut serve,
        server,
        gw,
    } = Restartable::start(&[]);
    let before = token(&server, &f.app, "cfgateway");
    assert_eq!(gw.get("/v1/x", Some(&before)).status(), 200);

    serve.kill().unwrap();
    serve.wait().unwrap();
    // The outage lasts long enough for the feed's retries to back off (it takes
    // the time itself: there is no condition to wait for).
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        gw.get("/v1/x", Some(&before)).status(),
        200,
        "while the issuer is down, a fresh-enough feed keeps tokens valid"
    );
    serve = serve_on(dir.path(), &addr);
    let id = s(&f.app["client_id"]).to_owned();
    json(dir.path(), &["app", "rotate-secret", &id, "--json"]);
    let took = until("the rotated app's JWT to be refused", || {
        gw.get("/v1/x", Some(&before)).status() == 401
    });
    println!("refused {took:?} after the ending, right after the outage");
    assert!(took < Duration::from_secs(1), "{took:?}");
    serve.kill().unwrap();
    serve.wait().unwrap();
}

#[test]
fn reference_tokens_end_at_the_gateway_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path(), "3600");
    let up = upstream();
    let gw = Gateway::start(
        dir.path(),
        &server,
        &f.reports,
        &[
            "--audience",
            "https://reports.acme.test",
            "--upstream",
            &up,
            "--route",
            "GET /r/*=reports",
        ],
    );
    let id = s(&f.app["client_id"]).to_owned();
    // Revoked by the app (RFC 7009): a `token` event.
    let revoked = token(&server, &f.app, "reports");
    assert_eq!(gw.get("/r/1", Some(&revoked)).status(), 200);
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/revocation"))
        .basic_auth(&id, Some(s(&f.app["client_secret"])))
        .form(&[("token", revoked.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = until("a revoked reference token to be refused", || {
        gw.get("/r/1", Some(&revoked)).status() == 401
    });
    println!("revoked reference token refused after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Ended by a rotation: a `client` event.
    let rotated = token(&server, &f.app, "reports");
    assert_eq!(gw.get("/r/1", Some(&rotated)).status(), 200);
    json(dir.path(), &["app", "rotate-secret", &id, "--json"]);
    let took = until("a rotated app's reference token to be refused", || {
        gw.get("/r/1", Some(&rotated)).status() == 401
    });
    println!("rotate-secret: reference token refused after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn the_active_key_verifies_after_more_rotations_than_the_old_key_bound() {
    let st = Stack::start("3600", &["--route", "GET /v1/*=cfgateway"]);
    let (dir, server, f, gw) = (&st.dir, &st.server, &st.f, &st.gw);
    let mut kid = String::new();
    for _ in 0..105 {
        let rotated = json(dir.path(), &["keys", "rotate", "--alg", "ES256", "--json"]);
        kid = s(&rotated["kid"]).to_owned();
    }
    let mut fresh = String::new();
    until("the server to sign with the newest key", || {
        fresh = token(server, &f.app, "cfgateway");
        header_of(&fresh)["kid"] == kid.as_str()
    });
    until("the gateway to accept the newest key", || {
        gw.get("/v1/x", Some(&fresh)).status() == 200
    });
    // Every key the server publishes is kept (the old bound kept 100).
    let published = || {
        reqwest::blocking::get(server.url("/.well-known/jwks.json"))
            .unwrap()
            .json::<Value>()
            .unwrap()["keys"]
            .as_array()
            .unwrap()
            .len()
    };
    let kept = || {
        gw.get("/health", None).json::<Value>().unwrap()["keys"]
            .as_u64()
            .unwrap() as usize
    };
    until("the gateway to hold more keys than the old bound", || {
        kept() > 100
    });
    println!(
        "the JWKS lists {} keys; the gateway holds {}",
        published(),
        kept()
    );
}

/// Runs `gatehouse gateway` expecting it to refuse to start; returns its stderr.
fn gateway_refusing_to_start(
    dir: &Path,
    server: &Server,
    api: &Value,
    secret: &str,
    audience: &str,
) -> String {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            &server.base,
        ])
        .args([
            "--api-client-id",
            s(&api["client_id"]),
            "--audience",
            audience,
            "--demo",
        ])
        .env("GATEHOUSE_GATEWAY_API_CLIENT_SECRET", secret)
        .env("GATEHOUSE_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("listening on"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a redirected log: {err}"
    );
    err
}

#[test]
fn a_wrong_api_secret_or_audience_stops_the_gateway_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let f = register(dir.path(), "3600");
    let err = gateway_refusing_to_start(dir.path(), &server, &f.api, "not-the-secret", AUD);
    assert!(
        err.contains("refused the API credentials (401)")
            && err.contains(&format!("--api-client-id `{}`", s(&f.api["client_id"])))
            && err.contains("GATEHOUSE_GATEWAY_API_CLIENT_SECRET"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-secret"),
        "the secret was echoed: {err}"
    );
    let err = gateway_refusing_to_start(
        dir.path(),
        &server,
        &f.api,
        s(&f.api["client_secret"]),
        "https://nope.acme.test",
    );
    assert!(
        err.contains(&format!(
            "--audience `https://nope.acme.test` is not this API's: API client `{}` has the audience `{AUD}`",
            s(&f.api["client_id"])
        )),
        "{err}"
    );
}
