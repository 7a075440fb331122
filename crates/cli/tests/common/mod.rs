//! Shared by the CLI and browser tests: the built binary, run as an operator would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod browser;
pub mod web;

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A DNS server on a loopback port, shared by the tests of one binary, where the
/// web app's host `sync.acme.test` resolves to a public address (the redirect-URI
/// policy only looks it up); pass it as `--dns-server`.
pub fn dns_server() -> String {
    static DNS: std::sync::OnceLock<gatehouse_testdns::TestDns> = std::sync::OnceLock::new();
    DNS.get_or_init(|| {
        gatehouse_testdns::TestDns::start_blocking(&[(
            "sync.acme.test",
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(93, 184, 215, 14)),
        )])
    })
    .addr()
    .to_string()
}

pub fn gatehouse(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("GATEHOUSE_DATABASE_URL")
        .output()
        .unwrap()
}

/// The tours' set-up: the organization `acme-studio`, the developer
/// `dev@acme.test` and the API `https://gateway.acme.test` with `scopes`;
/// returns `api create`'s JSON (its client id and secret).
pub fn acme_api(dir: &Path, scopes: &str) -> Value {
    // Only `serve` and `migrate` create a database; the admin commands refuse a missing one.
    json(dir, &["migrate", "--json"]);
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
            "--role",
            "developer",
            "--json",
        ],
    );
    json(
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
            scopes,
            "--json",
        ],
    )
}

/// Runs a command that must succeed with `--json`; returns its JSON document.
pub fn json(dir: &Path, args: &[&str]) -> Value {
    let out = gatehouse(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not only JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `json`, with `line` written to the command's standard input (a password
/// or secret read with `--…-stdin`, never on the command line).
pub fn json_with_stdin(dir: &Path, args: &[&str], line: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("GATEHOUSE_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    /// What `serve` printed after its address line, up to its banner.
    pub banner: Vec<String>,
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Self::start_on(dir, "127.0.0.1:0", extra)
    }

    /// [`Server::start`] listening on `listen` (e.g. a port picked beforehand,
    /// for an issuer that names it).
    pub fn start_on(dir: &Path, listen: &str, extra: &[&str]) -> Server {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = dir.join(format!("serve-{n}.log"));
        // A test may choose the address itself (to name it in `--issuer`):
        // `start_on`'s, or a `--listen` among `extra`.
        let listen: &[&str] = if extra.contains(&"--listen") {
            &["serve"]
        } else {
            &["serve", "--listen", listen]
        };
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(listen)
            .args(extra)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env("GATEHOUSE_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("serve printed nothing").unwrap();
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_owned();
        // The first steps on a database with no app yet, the console's URL after.
        let banner = |l: &str| l.contains("Register a first app") || l.contains("Console: http");
        let mut rest: Vec<String> = Vec::new();
        for line in lines.by_ref().take(3) {
            let line = line.unwrap();
            let done = banner(&line);
            rest.push(line);
            if done {
                break;
            }
        }
        assert!(rest.iter().any(|l| banner(l)), "{rest:?}");
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            log,
            banner: rest,
        }
    }

    pub fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    /// Ctrl-C, then the exit status.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "serve did not stop after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// The log once it contains `needle`; panics if it does not within 10 s.
    pub fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "never logged `{needle}`: {log}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTML character references: the named ones a template escapes, and `&#NN;` / `&#xHH;`.
pub fn unescape_html(s: &str) -> String {
    html_escape::decode_html_entities(s).into_owned()
}

/// RFC 6238 (HMAC-SHA-1, 30-second steps, 6 digits), written here apart from the
/// server's implementation, for the code an authenticator app would show.
pub fn totp_at(key: &[u8], t: u64) -> String {
    use aws_lc_rs::hmac;
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mac = hmac::sign(&k, &(t / 30).to_be_bytes());
    let h = mac.as_ref();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub fn base32(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim().bytes() {
        let v = alphabet.iter().position(|a| *a == c).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_secs()
}
