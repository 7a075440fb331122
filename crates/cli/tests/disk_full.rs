//! SQLite on a full disk, as an operator meets it (issue 12 §3, found by
//! `bench/soak.sh`): the database's directory is a small tmpfs that fills up.
//! Writes must answer 503 with `Retry-After` (not 500: nothing is broken, space
//! is missing), reads keep working, writes come back by themselves when space
//! returns, and the database is intact. Mounting needs root, as the soak does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{Server, json};

/// Unmounts the tmpfs when the test ends, whatever happens.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// Fills the file system holding `path` to the last byte.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for block in [1 << 20, 4096, 1] {
        let buf = vec![0u8; block];
        while f.write_all(&buf).and_then(|()| f.flush()).is_ok() {}
    }
}

#[test]
fn a_full_disk_is_503_for_writes_reads_keep_working_and_writes_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mnt = d.join("db");
    let _mount = Mount::tmpfs(&mnt, "24m");
    let db = format!("sqlite://{}/gh.db", mnt.display());
    let server = Server::start(d, &["--database-url", &db]);
    let cli = |args: &[&str]| {
        let mut all = vec!["--database-url", db.as_str()];
        all.extend_from_slice(args);
        all.push("--json");
        json(d, &all)
    };
    cli(&["org", "create", "--name", "Acme Studio"]);
    cli(&[
        "user",
        "create",
        "--org",
        "acme-studio",
        "--email",
        "dev@acme.test",
        "--role",
        "developer",
    ]);
    let api = cli(&[
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
    ]);
    let app = cli(&[
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
        "refscope",
    ]);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // A reference token is a row written: the write this test makes.
    let write = || {
        http.post(server.url("/connect/token"))
            .basic_auth(s(&app["client_id"]), Some(s(&app["client_secret"])))
            .form(&[("grant_type", "client_credentials"), ("scope", "refscope")])
            .send()
            .unwrap()
    };
    let introspect = |token: &str| -> Value {
        let r = http
            .post(server.url("/connect/introspect"))
            .basic_auth(s(&api["client_id"]), Some(s(&api["client_secret"])))
            .form(&[("token", token)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "introspection is a read");
        r.json().unwrap()
    };
    let r = write();
    assert_eq!(r.status(), 200);
    let before: Value = r.json().unwrap();
    let before = s(&before["access_token"]).to_owned();

    let filler = mnt.join("filler");
    fill(&filler);
    // SQLite reuses the space its write-ahead log already holds for a while:
    // write until a write fails, then judge that failure and a few more.
    let mut failures = Vec::new();
    for _ in 0..5000 {
        let r = write();
        if r.status() != 200 {
            failures.push((r.status().as_u16(), r.headers().contains_key("retry-after")));
            if failures.len() == 5 {
                break;
            }
        }
    }
    assert!(!failures.is_empty(), "no write failed on a full disk");
    assert!(
        failures.iter().all(|f| *f == (503, true)),
        "a write on a full disk answers 503 with Retry-After: {failures:?}"
    );
    assert_eq!(
        introspect(&before)["active"],
        true,
        "reads keep working on a full disk"
    );
    assert_eq!(
        http.get(server.url("/.well-known/jwks.json"))
            .send()
            .unwrap()
            .status(),
        200
    );

    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    let after = loop {
        let r = write();
        if r.status() == 200 {
            break r.json::<Value>().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "writes did not come back within 5 s of space returning"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(introspect(s(&after["access_token"]))["active"], true);
    assert_eq!(introspect(&before)["active"], true);

    assert!(server.interrupt().success());
    let check: String = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(check, "ok");
}
