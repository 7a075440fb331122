//! The built `gatehouse serve` at its network edge, as an operator runs it: what
//! reaches its text log, how it stops while gateways hold long polls, and who
//! may read the files it creates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{Server, acme_api};

/// An organization, a user and an API; the API's credentials.
fn api(dir: &Path) -> (String, String) {
    let api = acme_api(dir, "cfgateway");
    let s = |k: &str| api[k].as_str().unwrap().to_owned();
    (s("client_id"), s("client_secret"))
}

/// Polls `f` every 20 ms until it holds, for at most `limit`.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_newline_in_a_client_id_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=a%0Ab%20INFO%20forged&client_secret=x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    wait_for("the failure in the log", Duration::from_secs(5), || {
        server.log().contains("client authentication failed")
    });
    let log = server.log();
    let forged: Vec<&str> = log.lines().filter(|l| l.starts_with("b INFO")).collect();
    assert!(forged.is_empty(), "a forged line: {forged:?}");
    assert!(
        log.contains(r"client_id=a\nb INFO forged"),
        "the id is logged escaped (and without colour codes in a file): {log}"
    );
}

#[test]
fn serve_stops_at_once_on_sigterm_while_a_gateway_long_polls_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = api(dir.path());
    let mut server = Server::start(dir.path(), &[]);
    let now: Value = reqwest::blocking::Client::new()
        .get(server.url("/connect/revocations"))
        .basic_auth(&id, Some(&secret))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let cursor = now["cursor"].as_str().unwrap().to_owned();
    let url = server.url(&format!("/connect/revocations?since={cursor}&wait=30"));
    let poll = std::thread::spawn(move || {
        let r = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
            .get(url)
            .basic_auth(id, Some(secret))
            .send()
            .unwrap();
        (r.status(), r.json::<Value>().unwrap())
    });
    // The long poll is parked once the server has taken the request: the second
    // request to the feed in the log (the log names paths, never queries).
    wait_for("the long poll to arrive", Duration::from_secs(10), || {
        server
            .log()
            .lines()
            .filter(|l| {
                l.contains(r#"path="/connect/revocations""#)
                    && l.contains("started processing request")
            })
            .count()
            >= 2
    });
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut status = None;
    wait_for("serve to exit", Duration::from_secs(5), || {
        status = server.child.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    // The gateway got its (empty) page and may reconnect elsewhere.
    let (code, page) = poll.join().unwrap();
    assert_eq!(code, 200);
    assert!(page["events"].as_array().unwrap().is_empty(), "{page}");
    assert_eq!(page["cursor"], cursor.as_str());
}

#[cfg(unix)]
#[test]
fn the_database_and_its_key_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // A write while serving: the WAL, shared-memory and change mark files
    // exist now.
    api(dir.path());
    for file in [
        "gatehouse.db",
        "gatehouse.db-wal",
        "gatehouse.db-shm",
        "gatehouse.db-changes",
        "gatehouse.key",
    ] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
    drop(server);
}
