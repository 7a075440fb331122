//! Hostile connections against the built `gatehouse serve` (issue 12 §4):
//! slowloris (heads and bodies sent a byte at a time), many idle keep-alive
//! connections, and a flood of connections beyond the process's open-files limit.
//! Throughout, a well-behaved probe client opening a new connection per request
//! gets its answer quickly (p99 under 100 ms), the attackers' connections are
//! closed by the server (timeouts, or to make room), and the server never exits.
//! Counts are bounded so the tests stay quick; the figures are printed
//! (`--nocapture`) for docs/reliability.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

/// The probe's answer-time goal.
const P99_GOAL: Duration = Duration::from_millis(100);

struct Serve {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Serve {
    /// `gatehouse serve` on a free port, with at most `nofile` open files when given.
    fn start(dir: &Path, nofile: Option<u32>, extra: &[&str]) -> Serve {
        let log = dir.join("serve.log");
        let script = match nofile {
            Some(n) => format!("ulimit -n {n} && exec \"$0\" \"$@\""),
            None => "exec \"$0\" \"$@\"".to_owned(),
        };
        let mut child = Command::new("sh")
            .current_dir(dir)
            .args(["-c", &script, BIN, "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("serve printed nothing").unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        std::thread::spawn(move || for _ in lines {});
        Serve { child, addr, log }
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(status.is_none(), "serve exited: {status:?}\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a new connection; the time until the status line arrived.
fn probe_once(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head)
        .unwrap_or_else(|e| panic!("the probe got no answer: {e}"));
    let took = start.elapsed();
    assert!(head.starts_with(b"HTTP/1.1 "), "{head:?}");
    took
}

/// Probes one after another until `until` (and at least 100); how many, and
/// their p50 and p99.
fn probe(addr: SocketAddr, until: Instant) -> (usize, Duration, Duration) {
    let mut times = Vec::new();
    while Instant::now() < until || times.len() < 100 {
        times.push(probe_once(addr));
    }
    times.sort();
    let n = times.len();
    let at = |q: f64| times[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    (n, at(0.5), at(0.99))
}

/// Whether the server has closed `s` by now (without waiting).
fn closed_now(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Opens `n` connections and writes `first` on each (what they send before
/// stalling); connections the server refuses outright are not kept.
fn open(addr: SocketAddr, n: usize, first: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
            s.write_all(first).ok()?;
            Some(s)
        })
        .collect()
}

/// Whether the server has closed `s` (EOF or reset), waiting at most `limit`;
/// answers it may have sent first (a 408) are read past.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Sends one more byte on every connection every `every` until `stop`: a
/// slowloris that never finishes. Connections the server closed are dropped.
fn trickle(mut conns: Vec<TcpStream>, every: Duration, stop: Instant) -> usize {
    let mut writes = 0;
    while Instant::now() < stop && !conns.is_empty() {
        conns.retain_mut(|s| s.write_all(b"a").is_ok());
        writes += conns.len();
        std::thread::sleep(every);
    }
    writes
}

#[test]
fn slowloris_heads_and_bodies_do_not_lock_out_a_probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(
        dir.path(),
        None,
        &[
            "--max-connections",
            "64",
            "--header-read-timeout-ms",
            "1500",
            "--body-read-timeout-ms",
            "1500",
        ],
    );
    let addr = serve.addr;
    // 150 heads that never end (more than the 64 connections served at once),
    // and 20 bodies that never arrive (requests in flight, not idle).
    let heads = open(addr, 150, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let bodies = open(
        addr,
        20,
        b"POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type",
    );
    let stop = Instant::now() + Duration::from_secs(3);
    let slow = std::thread::spawn(move || trickle(heads, Duration::from_millis(100), stop));
    let (n, p50, p99) = probe(addr, stop);
    let writes = slow.join().unwrap();
    println!(
        "slowloris: 150 trickled heads + 20 stalled bodies, 64 connections served: {n} probes, p50 {p50:?} p99 {p99:?} ({writes} attacker writes)"
    );
    assert!(p99 < P99_GOAL, "probe p99 {p99:?} (p50 {p50:?})");
    // Each stalled body is answered or closed once its deadline passes.
    for mut b in bodies {
        assert!(
            closed_within(&mut b, Duration::from_secs(5)),
            "a stalled body was never shed"
        );
    }
    serve.assert_running();
    probe_once(addr);
}

#[test]
fn idle_keep_alive_connections_do_not_lock_out_a_probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(
        dir.path(),
        None,
        &["--max-connections", "64", "--idle-timeout-ms", "2000"],
    );
    let addr = serve.addr;
    // 300 clients that each make one request and keep their connection.
    let mut idle = open(
        addr,
        300,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    );
    let (n, p50, p99) = probe(addr, Instant::now() + Duration::from_secs(1));
    println!(
        "idle keep-alive: 300 idle connections, 64 served: {n} probes, p50 {p50:?} p99 {p99:?}"
    );
    assert!(p99 < P99_GOAL, "probe p99 {p99:?} (p50 {p50:?})");
    // Every idle connection is closed: to make room, or after the idle timeout.
    let closed = idle
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(4)))
        .filter(|closed| *closed)
        .count();
    assert_eq!(closed, idle.len(), "idle connections still open");
    serve.assert_running();
    probe_once(addr);
}

#[test]
fn a_flood_beyond_the_open_files_limit_does_not_lock_out_a_probe() {
    let dir = tempfile::tempdir().unwrap();
    // 128 descriptors: the server serves at most 96 connections (the rest is
    // its reserve), and is flooded with 400 that send nothing.
    let mut serve = Serve::start(dir.path(), Some(128), &["--header-read-timeout-ms", "2000"]);
    let addr = serve.addr;
    let stop = Instant::now() + Duration::from_secs(3);
    let flood = std::thread::spawn(move || {
        let mut opened = 0;
        let mut held = Vec::new();
        while Instant::now() < stop {
            held.extend(open(addr, 50, b""));
            opened += 50;
            held.retain_mut(|s| !closed_now(s));
            if held.len() > 400 {
                held.drain(..50);
            }
        }
        opened
    });
    let (n, p50, p99) = probe(addr, stop);
    let opened = flood.join().unwrap();
    println!(
        "fd flood: {opened} connections against a 128-descriptor server: {n} probes, p50 {p50:?} p99 {p99:?}"
    );
    assert!(p99 < P99_GOAL, "probe p99 {p99:?} (p50 {p50:?})");
    assert!(opened > 400, "{opened}");
    serve.assert_running();
    probe_once(addr);
    let log = serve.log();
    assert!(
        log.contains("max_connections is above what the open-files limit"),
        "{log}"
    );
}
