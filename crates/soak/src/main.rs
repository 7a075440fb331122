//! The load generator of `bench/soak.sh`: N workers in a closed loop, each
//! picking a kind of request by weight (client credentials by Basic and by body,
//! introspection, gateway calls with valid, expired, ended and forged tokens,
//! sign-in with consent, refreshes and their reuse, revocations, admin API
//! changes, garbage) and judging every answer: any 5xx, any hang over 5 s, any
//! wrong answer (an ended token accepted, a valid one refused) is an error.
//! While the script holds a fault (the file `fault_file` names it), 503s with
//! `Retry-After` (database down) and lost connections to the killed instance
//! are counted apart; when the fault ends the watcher times the recovery and
//! checks that every write acknowledged before the fault is still there.
//!
//! Usage: `gatehouse-soak CONFIG.json OUT.json` (the script writes CONFIG; see
//! `Config`). Exits non-zero only when it cannot run; the script judges goals.

mod flows;
mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::stats::{Outcome, Stats};

/// Client credentials of an app or an API.
#[derive(Debug, Clone, Deserialize)]
pub struct Creds {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Deserialize)]
pub struct Config {
    /// The Gatehouse instances (one on SQLite, two on PostgreSQL).
    pub servers: Vec<String>,
    pub gateway: String,
    /// Path and query of a gateway route needing `gateway_scope`.
    pub gateway_path: String,
    /// The API behind the gateway (JWT, short access-token lifetime).
    pub api: Creds,
    /// An API with reference tokens (what the write ledger checks).
    pub ref_api: Creds,
    /// A client credentials app for `api`.
    pub machine: Creds,
    /// A client credentials app for `ref_api`.
    pub ref_app: Creds,
    /// Client credentials apps whose secret and on-behalf user the admin API changes.
    pub victims: Vec<Creds>,
    /// Users an app may act on behalf of (the admin kind switches between them).
    pub users: Vec<String>,
    /// An app with `gatehouse:admin`.
    pub admin: Creds,
    /// An authorization code app (PKCE), its redirect URI and scope.
    pub web: Creds,
    pub redirect_uri: String,
    pub web_scope: String,
    pub email: String,
    pub password: String,
    pub gateway_scope: String,
    pub ref_scope: String,
    /// The gateway's leeway on `exp`, seconds.
    pub leeway_secs: u64,
    pub fault_file: String,
    pub duration_secs: u64,
    pub connections: usize,
}

/// A fault the script announced, and what happened while it lasted.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub name: String,
    pub started_s: f64,
    pub lasted_ms: u64,
    /// From the end of the fault until a token request succeeded on every instance.
    pub recovery_ms: Option<u64>,
    pub unavailable_503: u64,
    pub other_5xx: u64,
    pub down_conn: u64,
    /// Acknowledged before the fault, checked after it, missing.
    pub ledger_checked: u64,
    pub ledger_lost: u64,
}

#[derive(Debug, Default)]
pub struct FaultState {
    /// The fault the script holds now.
    pub active: Option<String>,
    /// 503s and lost connections stay explained until then (recovery allowance).
    pub tolerate_until: Option<Instant>,
    /// The instance a `kill N` fault stopped.
    pub killed: Option<usize>,
    pub pg_down: bool,
}

pub struct Ctx {
    pub cfg: Config,
    pub http: reqwest::Client,
    pub started: Instant,
    pub deadline: Instant,
    pub stats: Mutex<Stats>,
    pub fault: Mutex<FaultState>,
    pub fault_503: AtomicU64,
    pub fault_5xx: AtomicU64,
    pub fault_down: AtomicU64,
    pub faults: Mutex<Vec<FaultReport>>,
    pub pools: Mutex<flows::Pools>,
    pub victims: Vec<tokio::sync::Mutex<flows::Victim>>,
    pub admin_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    pub logins: tokio::sync::Semaphore,
}

/// A lock that survives a panicked holder (the data are counters).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An answer read whole.
pub struct Resp {
    pub status: u16,
    pub retry_after: bool,
    pub location: Option<String>,
    pub cookies: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Seconds since the Unix epoch: the tokens' `exp` is on that clock.
#[allow(clippy::disallowed_methods)] // a load generator, not the server: no Clock port here
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const HANG: Duration = Duration::from_secs(5);

impl Ctx {
    pub fn minute(&self) -> usize {
        (self.started.elapsed().as_secs() / 60) as usize
    }

    pub fn server(&self, i: usize) -> &str {
        &self.cfg.servers[i % self.cfg.servers.len()]
    }

    pub fn any_server(&self) -> usize {
        fastrand::usize(..self.cfg.servers.len())
    }

    /// Sends a request (to instance `server`, or the gateway when `None`) and
    /// reads the answer. Hangs, 5xx and connection errors are recorded here
    /// (and `None` returned); the caller judges everything else with `ok`/`wrong`.
    pub async fn send(
        &self,
        kind: &'static str,
        server: Option<usize>,
        req: reqwest::RequestBuilder,
    ) -> Option<(Resp, Duration)> {
        let t0 = Instant::now();
        let res = tokio::time::timeout(HANG, async {
            let r = req.send().await?;
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let cookies = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|c| {
                    let pair = c.split(';').next()?;
                    let (n, v) = pair.split_once('=')?;
                    Some((n.trim().to_owned(), v.trim().to_owned()))
                })
                .collect();
            let body = r.text().await?;
            Ok::<_, reqwest::Error>(Resp {
                status,
                retry_after,
                location,
                cookies,
                body,
            })
        })
        .await;
        let lat = t0.elapsed();
        let minute = self.minute();
        let (tolerate_503, killed) = self.tolerance();
        match res {
            Err(_) => {
                self.fail(
                    kind,
                    minute,
                    Outcome::Hang,
                    format!("{kind}: no answer within 5 s"),
                );
                None
            }
            Ok(Err(e)) => {
                if server.is_some() && killed == server {
                    self.fault_down.fetch_add(1, Ordering::Relaxed);
                    lock(&self.stats).record(kind, minute, Outcome::DownInFault, None);
                } else {
                    let to = server.map_or("gateway".to_owned(), |s| format!("server {s}"));
                    self.fail(
                        kind,
                        minute,
                        Outcome::ConnError,
                        format!("{kind}: {to}: {}", chain(&e)),
                    );
                }
                None
            }
            Ok(Ok(r)) if r.status >= 500 => {
                if r.status == 503 && r.retry_after && tolerate_503 {
                    self.fault_503.fetch_add(1, Ordering::Relaxed);
                    lock(&self.stats).record(kind, minute, Outcome::UnavailableInFault, Some(lat));
                } else {
                    if tolerate_503 || killed.is_some() {
                        self.fault_5xx.fetch_add(1, Ordering::Relaxed);
                    }
                    let body: String = r.body.chars().take(200).collect();
                    self.fail(
                        kind,
                        minute,
                        Outcome::ServerError,
                        format!(
                            "{kind}: {} (retry-after: {}) {body}",
                            r.status, r.retry_after
                        ),
                    );
                }
                None
            }
            Ok(Ok(r)) => Some((r, lat)),
        }
    }

    /// Whether a 503 is explained by a fault now, and which instance is down.
    fn tolerance(&self) -> (bool, Option<usize>) {
        let f = lock(&self.fault);
        let window = f.active.is_some() || f.tolerate_until.is_some_and(|t| Instant::now() < t);
        (window && f.pg_down, if window { f.killed } else { None })
    }

    pub fn ok(&self, kind: &'static str, lat: Duration) {
        let m = self.minute();
        lock(&self.stats).record(kind, m, Outcome::Ok, Some(lat));
    }

    pub fn wrong(&self, kind: &'static str, lat: Duration, why: String) {
        let m = self.minute();
        let mut s = lock(&self.stats);
        s.record(kind, m, Outcome::Wrong, Some(lat));
        s.sample(format!("WRONG {kind}: {why}"));
    }

    fn fail(&self, kind: &'static str, minute: usize, outcome: Outcome, why: String) {
        let mut s = lock(&self.stats);
        s.record(kind, minute, outcome, None);
        s.sample(why);
    }

    /// Judges a response: `expect` says what it must be.
    pub fn judge(
        &self,
        kind: &'static str,
        r: &Resp,
        lat: Duration,
        expect: u16,
        what: &str,
    ) -> bool {
        if r.status == expect {
            self.ok(kind, lat);
            true
        } else {
            let body: String = r.body.chars().take(200).collect();
            self.wrong(
                kind,
                lat,
                format!("{what}: {} (expected {expect}) {body}", r.status),
            );
            false
        }
    }
}

#[derive(Serialize)]
struct Output<'a> {
    duration_s: f64,
    connections: usize,
    kinds: std::collections::BTreeMap<&'static str, stats::KindSummary>,
    minutes: &'a [(u64, u64)],
    ended: EndedSummary,
    faults: Vec<FaultReport>,
    samples: &'a [String],
}

#[derive(Serialize)]
struct EndedSummary {
    count: usize,
    p50_ms: u64,
    p99_ms: u64,
    max_ms: u64,
    over_1s: usize,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, out] = args.as_slice() else {
        anyhow::bail!("usage: gatehouse-soak CONFIG.json OUT.json");
    };
    let cfg: Config = serde_json::from_str(
        &std::fs::read_to_string(config).with_context(|| format!("reading {config}"))?,
    )
    .context("the config")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(cfg, out))
}

async fn run(cfg: Config, out: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(cfg.connections)
        // reqwest's own idle timeout (90 s), as any client would keep it: the
        // servers keep idle connections longer (120 s), so a reused one is never
        // one they are closing.
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(cfg.duration_secs);
    let victims = cfg
        .victims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::sync::Mutex::new(flows::Victim {
                creds: c.clone(),
                user: i % cfg.users.len().max(1),
                lost: false,
                changed: None,
            })
        })
        .collect();
    let ctx = Arc::new(Ctx {
        http,
        started,
        deadline,
        stats: Mutex::default(),
        fault: Mutex::default(),
        fault_503: AtomicU64::new(0),
        fault_5xx: AtomicU64::new(0),
        fault_down: AtomicU64::new(0),
        faults: Mutex::default(),
        pools: Mutex::default(),
        victims,
        admin_token: tokio::sync::Mutex::new(None),
        // Argon2id takes 19 MiB and a core's worth of time per sign-in: two at a time.
        logins: tokio::sync::Semaphore::new(2),
        cfg,
    });
    let watcher = tokio::spawn(flows::watch_faults(ctx.clone()));
    let progress = tokio::spawn(progress(ctx.clone()));
    let workers: Vec<_> = (0..ctx.cfg.connections)
        .map(|_| tokio::spawn(flows::worker(ctx.clone())))
        .collect();
    for w in workers {
        w.await?;
    }
    progress.abort();
    // A fault still being checked finishes (bounded by its own timeouts).
    let _ = tokio::time::timeout(Duration::from_secs(30), watcher).await;
    flows::drain_checks(&ctx).await;

    let mut stats = std::mem::take(&mut *lock(&ctx.stats));
    let mut lags = stats.ended_lag_ms.clone();
    lags.sort_unstable();
    let q = |p: f64| -> u64 {
        if lags.is_empty() {
            0
        } else {
            lags[((lags.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    let output = Output {
        duration_s: ctx.started.elapsed().as_secs_f64(),
        connections: ctx.cfg.connections,
        kinds: stats.summaries(),
        minutes: &stats.minutes,
        ended: EndedSummary {
            count: lags.len(),
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            max_ms: q(1.0),
            over_1s: lags.iter().filter(|l| **l > 1000).count(),
        },
        faults: lock(&ctx.faults).clone(),
        samples: &stats.samples,
    };
    std::fs::write(out, serde_json::to_string_pretty(&output)?)?;
    Ok(())
}

/// One line a minute on stderr: requests and errors so far.
async fn progress(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = lock(&ctx.stats);
        let (req, err) = s.minutes.iter().fold((0, 0), |a, m| (a.0 + m.0, a.1 + m.1));
        eprintln!(
            "[soak] {:>4.0} s: {req} requests, {err} errors",
            ctx.started.elapsed().as_secs_f64()
        );
    }
}

/// An error with its causes (reqwest's own message hides whether the peer
/// reset, closed or refused the connection).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
