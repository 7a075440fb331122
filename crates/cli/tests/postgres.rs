//! Several `gatehouse serve` processes on one PostgreSQL database act as one.
//! Each test makes its own database on the machine's PostgreSQL
//! (`TEST_PG_ADMIN_URL`, default postgres://postgres@127.0.0.1:5432/test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, acme_api, json};
use serde_json::Value;

fn admin_url() -> String {
    std::env::var("TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database; dropped (best effort) when the guard goes.
struct Db {
    name: String,
    url: String,
}

impl Db {
    fn new() -> Db {
        let mut buf = [0u8; 6];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut buf)
            .unwrap();
        let name = format!(
            "gh_it_{}",
            buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        psql(&format!("CREATE DATABASE {name}"));
        let base = admin_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Db { name, url }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // An empty name borrows a database this guard did not create.
        if !self.name.is_empty() {
            psql(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([&admin_url(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cli(dir: &Path, db: &Db, args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--database-url", &db.url, "--json"]);
    json(dir, &all)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

struct Setup {
    api: Value,
    machine: Value,
    web: Value,
}

fn setup(dir: &Path, db: &Db) -> Setup {
    cli(dir, db, &["org", "create", "--name", "Acme Studio"]);
    let mut child = Command::new(common::BIN)
        .current_dir(dir)
        .args([
            "user",
            "create",
            "--org",
            "acme-studio",
            "--email",
            "dev@acme.test",
            "--role",
            "developer",
            "--password-stdin",
            "--database-url",
            &db.url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "correct horse battery").unwrap();
    assert!(child.wait().unwrap().success());
    let api = cli(
        dir,
        db,
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
        ],
    );
    let machine = cli(
        dir,
        db,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Nightly",
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "cfgateway",
        ],
    );
    let web = cli(
        dir,
        db,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Web",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://sync.acme.test/callback",
            "--scopes",
            "cfgateway",
            "--require-pkce",
            "false",
            "--dns-server",
            &common::dns_server(),
        ],
    );
    Setup { api, machine, web }
}

fn token(server: &Server, app: &Value) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(s(&app["client_id"]), Some(s(&app["client_secret"])))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap()
}

fn introspect(server: &Server, api: &Value, t: &str) -> Value {
    reqwest::blocking::Client::new()
        .post(server.url("/connect/introspect"))
        .basic_auth(s(&api["client_id"]), Some(s(&api["client_secret"])))
        .form(&[("token", t)])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&amp;", "&")
        .replace("&#x3D;", "=")
        .replace("&#61;", "=")
        .replace("&quot;", "\"")
}

/// Signs in and allows once on `server`, then mints codes with the session.
struct Browser {
    http: reqwest::blocking::Client,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn code(&self, server: &Server, web: &Value, scope: &str) -> String {
        let q = format!(
            "client_id={}&redirect_uri=https%3A%2F%2Fsync.acme.test%2Fcallback&scope={}&response_type=code&state=st",
            s(&web["client_id"]),
            scope.replace(' ', "%20")
        );
        let mut r = self
            .http
            .get(server.url(&format!("/connect/authorize?{q}")))
            .send()
            .unwrap();
        if r.status() == 200 {
            let page = r.text().unwrap();
            let csrf = hidden(&page, "csrf_token");
            r = self
                .http
                .post(server.url("/login"))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("request", q.as_str()),
                    ("email", "dev@acme.test"),
                    ("password", "correct horse battery"),
                ])
                .send()
                .unwrap();
            if r.status() == 200 {
                let page = r.text().unwrap();
                let csrf = hidden(&page, "csrf_token");
                r = self
                    .http
                    .post(server.url("/consent"))
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("request", q.as_str()),
                        ("decision", "allow"),
                    ])
                    .send()
                    .unwrap();
            }
        }
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        let url = reqwest::Url::parse(&loc).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("no code in {loc}"))
            .1
            .into_owned()
    }
}

fn exchange(server: &Server, web: &Value, code: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .basic_auth(s(&web["client_id"]), Some(s(&web["client_secret"])))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://sync.acme.test/callback"),
        ])
        .send()
        .unwrap()
}

fn eventually(what: &str, bound: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < bound,
            "{what} did not happen within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

#[test]
fn two_instances_on_one_database_act_as_one() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    // Both start at once on an empty database: they must agree on the keys.
    let a_dir = dir.path();
    let (a, b) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| Server::start(a_dir, &["--database-url", &db.url]));
        let hb = sc.spawn(|| Server::start(a_dir, &["--database-url", &db.url]));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let jwks = |srv: &Server| -> Value {
        reqwest::blocking::get(srv.url("/.well-known/jwks.json"))
            .unwrap()
            .json()
            .unwrap()
    };
    eventually(
        "both instances to publish the same JWKS",
        Duration::from_secs(5),
        || jwks(&a) == jwks(&b),
    );
    let setup = setup(dir.path(), &db);

    // A token issued by A introspects on B.
    let r = token(&a, &setup.machine);
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    let at = s(&t["access_token"]).to_owned();
    assert_eq!(introspect(&b, &setup.api, &at)["active"], true);

    // A code issued by A is redeemed at B, once.
    let browser = Browser::new();
    let code = browser.code(&a, &setup.web, "cfgateway offline_access");
    assert_eq!(exchange(&b, &setup.web, &code).status(), 200);
    let again = exchange(&a, &setup.web, &code);
    assert_eq!(again.status(), 400);
    assert_eq!(again.json::<Value>().unwrap()["error"], "invalid_grant");

    // Many concurrent redemptions of one code across both instances: exactly one wins.
    let code = browser.code(&a, &setup.web, "cfgateway offline_access");
    let statuses: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let (srv, web, code) = (if i % 2 == 0 { &a } else { &b }, &setup.web, &code);
                sc.spawn(move || exchange(srv, web, code).status().as_u16())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );

    // Concurrent refreshes of one refresh token: one wins, and reuse revokes the family.
    let tokens: Value = exchange(
        &a,
        &setup.web,
        &browser.code(&b, &setup.web, "cfgateway offline_access"),
    )
    .json()
    .unwrap();
    let rt = s(&tokens["refresh_token"]).to_owned();
    let results: Vec<(u16, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (srv, web, rt) = (if i % 2 == 0 { &a } else { &b }, &setup.web, &rt);
                sc.spawn(move || {
                    let r = reqwest::blocking::Client::new()
                        .post(srv.url("/connect/token"))
                        .basic_auth(s(&web["client_id"]), Some(s(&web["client_secret"])))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt.as_str()),
                        ])
                        .send()
                        .unwrap();
                    (r.status().as_u16(), r.json::<Value>().unwrap())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == 200)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(st, v)| *st == 200 || v["error"] == "invalid_grant"),
        "{results:?}"
    );
    // The losers were reuse: the whole family, the winner's successor included, is revoked.
    let successor = s(&winners[0]["refresh_token"]).to_owned();
    let r = reqwest::blocking::Client::new()
        .post(b.url("/connect/token"))
        .basic_auth(
            s(&setup.web["client_id"]),
            Some(s(&setup.web["client_secret"])),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", successor.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400, "the family was revoked by the reuse");

    // A secret rotated by the CLI stops working on both instances at once.
    assert_eq!(token(&a, &setup.machine).status(), 200);
    assert_eq!(token(&b, &setup.machine).status(), 200);
    let rotated = cli(
        dir.path(),
        &db,
        &["app", "rotate-secret", s(&setup.machine["client_id"])],
    );
    let took_a = eventually(
        "the old secret to fail on A",
        Duration::from_millis(500),
        || token(&a, &setup.machine).status() == 401,
    );
    let took_b = eventually(
        "the old secret to fail on B",
        Duration::from_millis(500),
        || token(&b, &setup.machine).status() == 401,
    );
    eprintln!("old secret refused after {took_a:?} on A and {took_b:?} on B");
    let fresh = serde_json::json!({"client_id": setup.machine["client_id"], "client_secret": rotated["client_secret"]});
    assert_eq!(token(&a, &fresh).status(), 200);
    assert_eq!(introspect(&a, &setup.api, &at)["active"], false);

    // Key rotation: both instances publish the same new JWKS.
    let before = jwks(&a);
    cli(dir.path(), &db, &["keys", "rotate", "--alg", "ES256"]);
    eventually("A to publish the new key", Duration::from_secs(2), || {
        jwks(&a) != before
    });
    eventually("B to publish the same keys", Duration::from_secs(2), || {
        jwks(&a) == jwks(&b)
    });
}

/// Issue 10: two instances redeeming one code at once used to leave no winner
/// now and then (the loser's replay revocation committed before the winner's
/// checks). Thirty races of eight redemptions each, across both instances:
/// exactly one 200 every time, the others `invalid_grant`.
#[test]
fn thirty_code_races_across_two_instances_each_have_exactly_one_winner() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &["--database-url", &db.url]);
    let b = Server::start(dir.path(), &["--database-url", &db.url]);
    let setup = setup(dir.path(), &db);
    let browser = Browser::new();
    for race in 0..30 {
        let code = browser.code(&a, &setup.web, "cfgateway offline_access");
        let replies: Vec<(u16, Value)> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (srv, web, code) = (if i % 2 == 0 { &a } else { &b }, &setup.web, &code);
                    sc.spawn(move || {
                        let r = exchange(srv, web, code);
                        (r.status().as_u16(), r.json::<Value>().unwrap())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = replies.iter().filter(|(st, _)| *st == 200).count();
        assert_eq!(winners, 1, "race {race}: {replies:?}");
        assert!(
            replies
                .iter()
                .all(|(st, v)| *st == 200 || v["error"] == "invalid_grant"),
            "race {race}: {replies:?}"
        );
    }
}

#[test]
fn an_sqlite_installation_moves_to_postgres_with_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sqlite = Server::start(d, &[]);
    let api = acme_api(d, "cfgateway");
    let app = json(
        d,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Nightly",
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    let t: Value = token(&sqlite, &app).json().unwrap();
    let at = s(&t["access_token"]).to_owned();
    assert!(sqlite.interrupt().success());

    let db = Db::new();
    let out = common::gatehouse(
        d,
        &["copy", "--from", "sqlite://gatehouse.db", "--to", &db.url],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("copied"));
    // Copying twice would merge two installations: refused.
    let again = common::gatehouse(
        d,
        &["copy", "--from", "sqlite://gatehouse.db", "--to", &db.url],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let pg = Server::start(d, &["--database-url", &db.url]);
    assert_eq!(
        introspect(&pg, &api, &at)["active"],
        true,
        "tokens issued on SQLite stay valid"
    );
    assert_eq!(token(&pg, &app).status(), 200, "the same secret works");
    // The change feed continues: a rotation on PostgreSQL ends the old token.
    cli(d, &db, &["app", "rotate-secret", s(&app["client_id"])]);
    eventually("the token to end", Duration::from_secs(1), || {
        introspect(&pg, &api, &at)["active"] == false
    });
}

/// A PostgreSQL cluster of its own in a temporary directory, so stopping it does
/// not disturb other tests.
struct Cluster {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .max()
            .unwrap();
        let bin = Path::new("/usr/lib/postgresql").join(version).join("bin");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        run(Command::new("chmod").args(["755", dir.path().to_str().unwrap()]));
        run(Command::new("chown").args(["-R", "postgres:postgres", dir.path().to_str().unwrap()]));
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Cluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        c.up();
        c
    }

    fn pg_ctl(&self, args: &[&str]) {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args));
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.display()
        );
        self.pg_ctl(&[
            "-o",
            &opts,
            "-l",
            self.data.join("log").to_str().unwrap(),
            "-w",
            "start",
        ]);
    }

    fn down(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_database_going_away_is_503_then_recovers_and_nothing_acknowledged_is_lost() {
    let cluster = Cluster::start();
    let db = Db {
        name: String::new(),
        url: cluster.url(),
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(
        dir.path(),
        &[
            "--database-url",
            &db.url,
            "--db-acquire-timeout-ms",
            "1000",
            "--db-statement-timeout-ms",
            "2000",
        ],
    );
    let setup = setup(dir.path(), &db);
    let reference_api = cli(
        dir.path(),
        &db,
        &[
            "api",
            "create",
            "--org",
            "acme-studio",
            "--name",
            "Ref",
            "--audience",
            "https://ref.acme.test",
            "--scopes",
            "refscope",
            "--token-format",
            "reference",
        ],
    );
    let ref_app = cli(
        dir.path(),
        &db,
        &[
            "app",
            "register",
            "--org",
            "acme-studio",
            "--name",
            "Ref",
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "refscope",
        ],
    );
    let jwt: Value = token(&a, &setup.machine).json().unwrap();
    let jwt = s(&jwt["access_token"]).to_owned();
    let reference: Value = token(&a, &ref_app).json().unwrap();
    let reference = s(&reference["access_token"]).to_owned();

    cluster.down();
    // Requests that need the database: 503 with Retry-After, promptly.
    for _ in 0..3 {
        let started = Instant::now();
        let r = reqwest::blocking::Client::new()
            .post(a.url("/connect/introspect"))
            .basic_auth(
                s(&reference_api["client_id"]),
                Some(s(&reference_api["client_secret"])),
            )
            .form(&[("token", reference.as_str())])
            .send()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered in {:?}",
            started.elapsed()
        );
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
    }
    let r = reqwest::blocking::get(a.url("/ready")).unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        reqwest::blocking::get(a.url("/health")).unwrap().status(),
        200,
        "the process itself is alive"
    );

    cluster.up();
    eventually("service to recover", Duration::from_secs(15), || {
        let r = token(&a, &setup.machine);
        r.status() == 200
    });
    let after = introspect(&a, &setup.api, &jwt);
    assert_eq!(after["active"], true, "{after}");
    let after = introspect(&a, &reference_api, &reference);
    assert_eq!(
        after["active"], true,
        "the reference token acknowledged before the outage is kept: {after}"
    );

    // kill -9 loses nothing acknowledged: a reference token issued just before is
    // there for a new instance.
    let last: Value = token(&a, &ref_app).json().unwrap();
    let last = s(&last["access_token"]).to_owned();
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let b = Server::start(dir.path(), &["--database-url", &db.url]);
    assert_eq!(introspect(&b, &reference_api, &last)["active"], true);
}

#[test]
fn failed_authentications_are_throttled_across_instances() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--database-url",
        db.url.as_str(),
        "--failures-per-client",
        "3",
    ];
    let a = Server::start(dir.path(), &args);
    let b = Server::start(dir.path(), &args);
    let setup = setup(dir.path(), &db);
    let wrong =
        serde_json::json!({"client_id": setup.machine["client_id"], "client_secret": "guess"});
    // Three failures allowed in all, wherever they land; the fourth is 429 on either.
    assert_eq!(token(&a, &wrong).status(), 401);
    assert_eq!(token(&b, &wrong).status(), 401);
    assert_eq!(token(&a, &wrong).status(), 401);
    let r = token(&b, &wrong);
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The right secret is never slowed by someone else's guessing.
    assert_eq!(token(&a, &setup.machine).status(), 200);
    assert_eq!(token(&b, &setup.machine).status(), 200);
}

/// RFC 9126 on several instances: a request pushed to A is claimed once,
/// whichever instance the browsers reach first; the winner goes on at B (its
/// forms carry the claimed request) and the code redeems at A.
#[test]
fn a_pushed_request_is_claimed_once_across_two_instances() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &["--database-url", &db.url]);
    let b = Server::start(dir.path(), &["--database-url", &db.url]);
    let setup = setup(dir.path(), &db);
    let web = &setup.web;
    let resp = reqwest::blocking::Client::new()
        .post(a.url("/connect/par"))
        .basic_auth(s(&web["client_id"]), Some(s(&web["client_secret"])))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", "https://sync.acme.test/callback"),
            ("scope", "cfgateway"),
            ("state", "st-par"),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let pushed: Value = resp.json().unwrap();
    let q = format!(
        "client_id={}&request_uri={}",
        s(&web["client_id"]),
        s(&pushed["request_uri"]).replace(':', "%3A")
    );
    let browsers: Vec<Browser> = (0..6).map(|_| Browser::new()).collect();
    let pages: Vec<(u16, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = browsers
            .iter()
            .enumerate()
            .map(|(i, br)| {
                let (srv, q) = (if i % 2 == 0 { &a } else { &b }, &q);
                sc.spawn(move || {
                    let r = br
                        .http
                        .get(srv.url(&format!("/connect/authorize?{q}")))
                        .send()
                        .unwrap();
                    (r.status().as_u16(), r.text().unwrap())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..pages.len()).filter(|i| pages[*i].0 == 200).collect();
    assert_eq!(winners.len(), 1, "{pages:?}");
    assert!(pages.iter().all(|(st, _)| *st == 200 || *st == 400));
    let (br, page) = (&browsers[winners[0]], &pages[winners[0]].1);
    let login = br
        .http
        .post(b.url("/login"))
        .form(&[
            ("csrf_token", hidden(page, "csrf_token").as_str()),
            (
                "request",
                common::unescape_html(&hidden(page, "request")).as_str(),
            ),
            ("email", "dev@acme.test"),
            ("password", "correct horse battery"),
        ])
        .send()
        .unwrap();
    // The consent page, unless the setup's sign-in already allowed these scopes.
    let consent = if login.status() == 200 {
        let page = login.text().unwrap();
        br.http
            .post(b.url("/consent"))
            .form(&[
                ("csrf_token", hidden(&page, "csrf_token").as_str()),
                (
                    "request",
                    common::unescape_html(&hidden(&page, "request")).as_str(),
                ),
                ("decision", "allow"),
            ])
            .send()
            .unwrap()
    } else {
        login
    };
    assert_eq!(consent.status(), 303);
    let back = reqwest::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let param = |k: &str| {
        back.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("st-par"), "{back}");
    let code = param("code").expect("a code");
    assert_eq!(exchange(&a, web, &code).status(), 200);
}

/// Issue 13 §1 on several instances: a second secret works on both at once;
/// retiring the old one (the CLI, on the shared database) ends it and the
/// tokens issued with it on both within a second, and only those.
#[test]
fn a_retired_secret_ends_on_every_instance_within_a_second() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--database-url", db.url.as_str()];
    let a = Server::start(dir.path(), &args);
    let b = Server::start(dir.path(), &args);
    let setup = setup(dir.path(), &db);
    let id = s(&setup.machine["client_id"]).to_owned();
    let t: Value = token(&a, &setup.machine).json().unwrap();
    let old_token = s(&t["access_token"]).to_owned();

    let added = cli(dir.path(), &db, &["app", "add-secret", &id]);
    let second = serde_json::json!({"client_id": id, "client_secret": added["client_secret"]});
    for server in [&a, &b] {
        eventually("the second secret to work", Duration::from_secs(1), || {
            token(server, &second).status() == 200
        });
        assert_eq!(token(server, &setup.machine).status(), 200);
    }
    let t: Value = token(&b, &second).json().unwrap();
    let new_token = s(&t["access_token"]).to_owned();

    let shown = cli(dir.path(), &db, &["app", "show", &id]);
    let old_id = s(&shown["secrets"][0]["id"]).to_owned();
    cli(dir.path(), &db, &["app", "retire-secret", &id, &old_id]);
    for (name, server) in [("A", &a), ("B", &b)] {
        let took = eventually("the retired secret to fail", Duration::from_secs(1), || {
            token(server, &setup.machine).status() == 401
        });
        eprintln!("retired secret refused after {took:?} on {name}");
        eventually("its token to end", Duration::from_secs(1), || {
            introspect(server, &setup.api, &old_token)["active"] == false
        });
        assert_eq!(introspect(server, &setup.api, &new_token)["active"], true);
        assert_eq!(token(server, &second).status(), 200);
    }
}

/// Tables the round trip below must find rows in: every table the copy did
/// not know before issue 15 (second factors, passkeys, mail links, identity
/// providers, back-channel logout, usage and the short-lived ones).
const NEWER_TABLES: &[&str] = &[
    "app_usage",
    "user_totp",
    "recovery_codes",
    "passkeys",
    "mail_links",
    "upstream_providers",
    "app_backchannel_logout",
    "logout_deliveries",
    "pushed_requests",
    "device_authorizations",
    "client_assertion_jtis",
    "passkey_challenges",
    "upstream_logins",
];

/// Rows the CLI cannot make without a browser, written straight into SQLite.
const SEED: &str = r#"
INSERT INTO app_usage VALUES ('app-1', 20000, 7, 1);
INSERT INTO user_totp SELECT id, 'sealed-totp', 10, 11, 12345 FROM users WHERE email = 'dev@acme.test';
INSERT INTO recovery_codes SELECT id, 'digest-' || n, NULL FROM users, (SELECT 1 AS n UNION SELECT 2) WHERE email = 'dev@acme.test';
UPDATE recovery_codes SET used_at = 99 WHERE digest = 'digest-2';
INSERT INTO passkeys SELECT 'pk-1', id, 'handle', 'cred-1', 'Laptop', '{"cred":{}}', 5, 10, NULL FROM users WHERE email = 'dev@acme.test';
INSERT INTO mail_links SELECT 'link-digest', id, 'invite', 10, 4000000000, NULL FROM users WHERE email = 'dev@acme.test';
INSERT INTO app_backchannel_logout VALUES ('app-1', 'https://app.acme.test/logout', 1);
INSERT INTO logout_deliveries (seq, client_id, org_id, uri, sub, sid, status, attempts, next_attempt_at, created_at)
  SELECT 41, 'app-1', id, 'https://app.acme.test/logout', 'u', 'sid-1', 'pending', 2, 50, 40 FROM orgs;
INSERT INTO pushed_requests VALUES ('par-digest', 'app-1', 'scope=openid', 4000000000, NULL);
INSERT INTO device_authorizations VALUES ('dev-digest', 'user-digest', 'app-1', '["openid"]', NULL, 'pending', NULL, 5, NULL, 0, 4000000000, NULL);
INSERT INTO client_assertion_jtis VALUES ('app-1', 'jti-1', 4000000000);
INSERT INTO passkey_challenges SELECT 'ch-digest', 'register', id, '{}', 4000000000 FROM users WHERE email = 'dev@acme.test';
INSERT INTO upstream_logins SELECT 'state-digest', id, 'nonce', 'verifier', 'client_id=x', 4000000000 FROM orgs;
"#;

/// Every row of every table (but the throttle's), as text: `table: [values…]`.
async fn contents(pool: &sqlx::SqlitePool) -> Vec<String> {
    use sqlx::Row;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT IN ('throttle', '_sqlx_migrations', 'sqlite_sequence') ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({t})")))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        let sql = format!("SELECT json_array({}) FROM {t} ORDER BY 1", cols.join(", "));
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap();
        out.extend(rows.into_iter().map(|r| format!("{t}: {r}")));
    }
    out
}

async fn open(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// Issue 15: every table, the newer ones included, goes SQLite → PostgreSQL →
/// SQLite unchanged, and a server on the final copy serves what it held.
#[test]
fn every_table_round_trips_sqlite_to_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `serve` makes the key file the identity provider's secret is sealed with.
    drop(Server::start(d, &[]));
    acme_api(d, "cfgateway");
    json(
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
    let mut child = Command::new(common::BIN)
        .current_dir(d)
        .args([
            "--dev",
            "org",
            "identity-provider",
            "set",
            "acme-studio",
            "--issuer",
            "https://idp.acme.test",
            "--client-id",
            "gatehouse",
            "--client-secret-stdin",
            "--domains",
            "corp.acme.test",
            "--trust-upstream-mfa",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "upstream secret").unwrap();
    assert!(child.wait().unwrap().success());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = rt.block_on(async {
        let pool = open(&d.join("gatehouse.db")).await;
        sqlx::raw_sql(SEED).execute(&pool).await.unwrap();
        let c = contents(&pool).await;
        pool.close().await;
        c
    });
    for t in NEWER_TABLES {
        assert!(
            before.iter().any(|r| r.starts_with(&format!("{t}: "))),
            "the seed leaves {t} empty"
        );
    }
    assert!(
        before
            .iter()
            .any(|r| r.starts_with("roles: ") && r.contains("\"admin\""))
    );

    let db = Db::new();
    let out = common::gatehouse(
        d,
        &["copy", "--from", "sqlite://gatehouse.db", "--to", &db.url],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::gatehouse(d, &["copy", "--from", &db.url, "--to", "sqlite://back.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Into a database that holds data: refused.
    let again = common::gatehouse(d, &["copy", "--from", &db.url, "--to", "sqlite://back.db"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let after = rt.block_on(async {
        let pool = open(&d.join("back.db")).await;
        let c = contents(&pool).await;
        pool.close().await;
        c
    });
    let missing: Vec<&String> = before.iter().filter(|r| !after.contains(r)).collect();
    let extra: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "lost: {missing:#?}\nnew: {extra:#?}"
    );

    // The copy serves: the provider's settings read back through the CLI.
    let idp = json(
        d,
        &[
            "org",
            "identity-provider",
            "show",
            "acme-studio",
            "--database-url",
            "sqlite://back.db",
            "--json",
        ],
    );
    assert_eq!(idp["trust_upstream_mfa"], true);
    assert_eq!(idp["domains"], serde_json::json!(["corp.acme.test"]));
}
