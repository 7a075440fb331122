//! An operator's chores with the built binary: backups taken while a server
//! issues tokens and restored into another installation, the configuration
//! file (`serve --config`, `config check`), and admin commands that refuse a
//! database that does not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BIN, Server, gatehouse, json};

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// An organization, a user, a reference-token API (its tokens live in the
/// database, so only a faithful restore keeps them valid) and a machine app.
fn register(dir: &Path) -> (Value, Value) {
    json(dir, &["org", "create", "--name", "Acme Studio", "--json"]);
    json(
        dir,
        &[
            "user",
            "create",
            "--org",
            "acme-studio",
            "--email",
            "dev@acme.test",
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
            "cfgateway",
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
            "Sync",
            "--grant",
            "client_credentials",
            "--on-behalf-of",
            "dev@acme.test",
            "--scopes",
            "cfgateway",
            "--json",
        ],
    );
    (api, app)
}

fn active(base: &str, api: &Value, token: &str) -> bool {
    let r: Value = reqwest::blocking::Client::new()
        .post(format!("{base}/connect/introspect"))
        .basic_auth(s(&api["client_id"]), Some(s(&api["client_secret"])))
        .form(&[("token", token)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    r["active"] == true
}

/// Issue 14 §4: `backup` while two clients keep getting tokens, then `restore`
/// into another directory with the key file: every token acknowledged before
/// the backup started is still active on the restored server.
#[test]
fn a_backup_taken_under_load_restores_every_token_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (api, app) = register(dir.path());
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (acked, stop) = (acked.clone(), stop.clone());
            let url = server.url("/connect/token");
            let (id, secret) = (
                s(&app["client_id"]).to_owned(),
                s(&app["client_secret"]).to_owned(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .post(&url)
                        .basic_auth(&id, Some(&secret))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let body: Value = r.json().unwrap();
                    let token = body["access_token"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push((Instant::now(), token));
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the load never reached {n} tokens"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(100);
    let started = Instant::now();
    let backup = dir.path().join("backup.db");
    let out = gatehouse(dir.path(), &["backup", "--to", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("gatehouse.key"), "the key file note: {note}");
    let during = acked.lock().unwrap().len();
    wait_for(during + 50); // the server kept issuing after the backup
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    drop(server);
    let before: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at < started)
        .map(|(_, t)| t.clone())
        .collect();
    assert!(before.len() >= 100);

    // Another installation: the backup and the key file, nothing else.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("gatehouse.key"),
        other.path().join("gatehouse.key"),
    )
    .unwrap();
    let restored = json(
        other.path(),
        &["restore", "--from", backup.to_str().unwrap(), "--json"],
    );
    assert!(
        restored["database"]
            .as_str()
            .unwrap()
            .contains("gatehouse.db")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(other.path().join("gatehouse.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the restored database is private");
    }
    let server = Server::start(other.path(), &[]);
    let base = server.url("");
    let inactive: Vec<&String> = before.iter().filter(|t| !active(&base, &api, t)).collect();
    assert!(
        inactive.is_empty(),
        "{} of {} tokens acknowledged before the backup are not active after the restore",
        inactive.len(),
        before.len()
    );

    // A restore over a database that holds data needs --force.
    drop(server);
    let out = gatehouse(
        other.path(),
        &["restore", "--from", backup.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = gatehouse(
        other.path(),
        &["restore", "--from", backup.to_str().unwrap(), "--force"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A backup never overwrites a file.
    let out = gatehouse(dir.path(), &["backup", "--to", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn restore_refuses_a_newer_schema_and_what_is_not_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    json(dir.path(), &["migrate", "--json"]);
    let newer = dir.path().join("newer.db");
    json(
        dir.path(),
        &["backup", "--to", newer.to_str().unwrap(), "--json"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", newer.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99991231000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    });
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        "not a database, just text that is long enough to look at",
    )
    .unwrap();
    let target = dir.path().join("restored.db");
    let url = format!("sqlite://{}", target.display());
    for (from, expected) in [
        (&newer, "newer Gatehouse"),
        (&junk, "not a Gatehouse backup"),
        (&dir.path().join("missing.db"), "no backup file"),
    ] {
        let out = gatehouse(
            dir.path(),
            &[
                "restore",
                "--from",
                from.to_str().unwrap(),
                "--database-url",
                &url,
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(expected), "{from:?}: {err}");
        assert!(!target.exists(), "a refused restore created nothing");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staged files left behind: {leftovers:?}"
    );
    let out = gatehouse(
        dir.path(),
        &[
            "backup",
            "--to",
            "x.db",
            "--database-url",
            "postgres://gatehouse:hunter2@127.0.0.1:5432/gatehouse",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump") && !err.contains("hunter2"), "{err}");
}

/// Issue 14 §8: an admin command run where there is no database says so and
/// creates nothing; errors name the database (without its password).
#[test]
fn admin_commands_refuse_a_missing_database_and_errors_name_it() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["org", "list"][..],
        &["org", "create", "--name", "Acme"],
        &["keys", "list"],
        &["audit", "--org", "acme"],
        &["backup", "--to", "b.db"],
    ] {
        let out = gatehouse(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("no database at")
                && err.contains("gatehouse.db")
                && err.contains("gatehouse migrate"),
            "{args:?}: {err}"
        );
    }
    let out = gatehouse(
        dir.path(),
        &[
            "copy",
            "--from",
            "sqlite://nowhere.db",
            "--to",
            "postgres://u@127.0.0.1/x",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.db"));
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(made.is_empty(), "nothing was created: {made:?}");
    // `migrate` makes one; then the same command works.
    json(dir.path(), &["migrate", "--json"]);
    json(dir.path(), &["org", "list", "--json"]);

    let out = gatehouse(
        dir.path(),
        &[
            "org",
            "list",
            "--database-url",
            "postgres://postgres:hunter2@127.0.0.1:5432/gatehouse_no_such_database",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("postgres://postgres:***@127.0.0.1:5432/gatehouse_no_such_database")
            && !err.contains("hunter2"),
        "{err}"
    );
}

/// `serve --config`: the file's settings apply, an environment variable beats
/// the file and an option beats both.
#[test]
fn serve_reads_its_config_file_under_the_environment_and_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gatehouse.toml");
    std::fs::write(
        &conf,
        "# a test\nlisten = \"127.0.0.1:0\"\nissuer = \"https://from-file.example\"\n\
         database_url = \"sqlite://configured.db\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let issuer_of = |env: Option<&str>, extra: &[&str]| -> String {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path())
            .args(["serve", "--config", conf.to_str().unwrap()])
            .args(extra)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env_remove("GATEHOUSE_ISSUER")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(issuer) = env {
            cmd.env("GATEHOUSE_ISSUER", issuer);
        }
        let mut child = cmd.spawn().unwrap();
        let first = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(first.contains("configured.db"), "{first}");
        first
            .split("issuer ")
            .nth(1)
            .unwrap()
            .split([',', ')'])
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(issuer_of(None, &[]), "https://from-file.example");
    assert_eq!(
        issuer_of(Some("https://from-env.example"), &[]),
        "https://from-env.example"
    );
    assert_eq!(
        issuer_of(
            Some("https://from-env.example"),
            &["--issuer", "https://from-flag.example"]
        ),
        "https://from-flag.example"
    );
    assert!(dir.path().join("configured.db").exists());
}

#[test]
fn config_check_passes_the_example_and_names_a_wrong_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/gatehouse.toml");
    let out = gatehouse(dir.path(), &["config", "check", example]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid for `gatehouse serve`"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"127.0.0.1:8080\"\n\n# typo below\nisuer = \"https://x\"\n",
    )
    .unwrap();
    let out = gatehouse(dir.path(), &["config", "check", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("unknown key `isuer`") && err.contains("line 4"),
        "{err}"
    );
    // `serve` refuses it the same way, before opening anything.
    let out = gatehouse(dir.path(), &["serve", "--config", bad.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `isuer`"));
    assert!(!dir.path().join("gatehouse.db").exists());

    // A gateway file without the required audience (none in the environment either).
    let gw = dir.path().join("gateway.toml");
    std::fs::write(&gw, "issuer = \"http://127.0.0.1:8080\"\napi_client_id = \"a\"\napi_client_secret = \"b\"\ndemo = true\n").unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["config", "check", "--for", "gateway", gw.to_str().unwrap()])
        .env_remove("GATEHOUSE_GATEWAY_AUDIENCE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("--audience"), "{err}");
}
