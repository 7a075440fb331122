//! `--metrics-listen` end to end, as an operator runs it: real `gatehouse serve`
//! and `gatehouse gateway` processes, real requests, `/metrics` scraped over
//! HTTP and parsed with a Prometheus text-format parser (`prometheus-parse`).
//! Also: W3C `traceparent` as the request id, and the dashboard and alert rules
//! under `deploy/` naming only metrics a real scrape has.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{BIN, Server, json};

const AUD: &str = "https://gateway.acme.test";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// The org, developer, API and a client-credentials app.
fn register(dir: &Path) -> (Value, Value) {
    let api = common::acme_api(dir, "cfgateway");
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
            "cfgateway",
            "--json",
        ],
    );
    (api, app)
}

/// One scrape, parsed.
struct Scrape(prometheus_parse::Scrape, String);

impl Scrape {
    fn of(metrics_base: &str) -> Scrape {
        let resp = reqwest::blocking::get(format!("{metrics_base}/metrics")).unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = resp.text().unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        Scrape(prometheus_parse::Scrape::parse(lines).unwrap(), text)
    }

    /// The value of the sample `name` whose labels include `labels` (0 if none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|x| x.metric == name)
            .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
            .map(|x| match &x.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => panic!("no summaries here"),
            })
            .sum()
    }

    /// Every series name the scrape declares (`# TYPE`, so a family with no
    /// samples yet counts: a query on it is valid) or has samples of; a counter
    /// `x` is the series `x_total`, a histogram `x` is `x_bucket`, `x_sum`, `x_count`.
    fn names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.0.samples.iter().map(|x| x.metric.clone()).collect();
        for line in self.1.lines() {
            let Some(decl) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let mut words = decl.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                panic!("malformed TYPE line {line:?}");
            };
            match kind {
                "counter" if !name.ends_with("_total") => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        }
        names
    }
}

/// The metrics address `serve` logged.
fn serve_metrics_base(server: &Server) -> String {
    let log = server.log_with("metrics listening");
    let line = log
        .lines()
        .find(|l| l.contains("metrics listening"))
        .unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .unwrap_or_else(|| panic!("no addr= in {line:?}"));
    format!("http://{addr}")
}

fn token_request(
    server: &Server,
    path: &str,
    secret: &str,
    app: &Value,
) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(server.url(path))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s(&app["client_id"])),
            ("client_secret", secret),
            ("scope", "cfgateway"),
        ])
        .send()
        .unwrap()
}

#[test]
fn serve_counts_tokens_failures_and_routes_on_its_own_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = serve_metrics_base(&server);
    let (api, app) = register(dir.path());
    let alg = s(&api["signing_alg"]).to_owned();

    // Each address serves only its own: no API on the metrics address, no
    // metrics on the API address.
    let r = reqwest::blocking::get(server.url("/metrics")).unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::blocking::get(format!("{metrics}/.well-known/openid-configuration")).unwrap();
    assert_eq!(r.status(), 404);

    let before = Scrape::of(&metrics);
    let token_labels = [
        ("grant", "client_credentials"),
        ("api", AUD),
        ("alg", alg.as_str()),
    ];
    assert_eq!(
        before.value("gatehouse_tokens_issued_total", &token_labels),
        0.0
    );

    // Two tokens (one at each path), one wrong secret, one unknown path.
    assert_eq!(
        token_request(&server, "/connect/token", s(&app["client_secret"]), &app).status(),
        200
    );
    assert_eq!(
        token_request(&server, "/oauth/token", s(&app["client_secret"]), &app).status(),
        200
    );
    assert_eq!(
        token_request(&server, "/connect/token", "wrong", &app).status(),
        401
    );
    let r = reqwest::blocking::get(server.url("/no/such/path/42")).unwrap();
    assert_eq!(r.status(), 404);

    let after = Scrape::of(&metrics);
    assert_eq!(
        after.value("gatehouse_tokens_issued_total", &token_labels),
        2.0
    );
    let failures = [("reason", "unknown_client_or_wrong_secret")];
    assert_eq!(
        after.value("gatehouse_client_auth_failures_total", &failures)
            - before.value("gatehouse_client_auth_failures_total", &failures),
        1.0
    );
    let ok = |route| [("method", "POST"), ("route", route), ("status", "200")];
    assert_eq!(
        after.value("gatehouse_http_requests_total", &ok("/connect/token")),
        1.0
    );
    assert_eq!(
        after.value("gatehouse_http_requests_total", &ok("/oauth/token")),
        1.0
    );
    let refused = [("route", "/connect/token"), ("status", "401")];
    assert_eq!(after.value("gatehouse_http_requests_total", &refused), 1.0);
    // The raw path never becomes a label: unknown paths share one series
    // (`/metrics` asked of the API address above, and `/no/such/path/42`).
    assert_eq!(
        after.value(
            "gatehouse_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        2.0
    );
    assert!(
        after
            .0
            .samples
            .iter()
            .all(|x| x.labels.get("route") != Some("/no/such/path/42")),
        "a raw path became a label"
    );
    // The latency histogram counted both calls at /connect/token.
    let latency = [("method", "POST"), ("route", "/connect/token")];
    assert_eq!(
        after.value("gatehouse_http_request_duration_seconds", &latency),
        2.0
    );

    // Scrape-time gauges: the signing key's age, the pool, the process.
    assert!(
        after.value(
            "gatehouse_signing_key_age_seconds",
            &[("alg", alg.as_str())]
        ) >= 0.0
    );
    assert!(after.names().contains("gatehouse_signing_key_age_seconds"));
    assert!(after.value("gatehouse_db_pool_max_connections", &[]) >= 1.0);
    assert!(after.value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(after.value("process_open_fds", &[]) > 3.0);
    assert!(after.value("process_start_time_seconds", &[]) > 1.7e9);
    assert!(after.names().contains("process_cpu_seconds_total"));
}

#[test]
fn serve_takes_the_trace_id_of_a_traceparent_as_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (_, app) = register(dir.path());
    let r = reqwest::blocking::Client::new()
        .post(server.url("/connect/token"))
        .header("traceparent", TRACEPARENT)
        .header("x-request-id", "overridden")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s(&app["client_id"])),
            ("client_secret", "wrong"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], TRACE_ID);
    let body: Value = r.json().unwrap();
    assert_eq!(body["correlation_id"], TRACE_ID);
    // And the log lines of that request carry it.
    let log = server.log_with("client authentication failed");
    let line = log
        .lines()
        .find(|l| l.contains("client authentication failed"))
        .unwrap();
    assert!(line.contains(TRACE_ID), "{line}");
}

struct Gateway {
    child: Child,
    base: String,
    metrics: String,
}

impl Gateway {
    fn start(dir: &Path, server: &Server, api: &Value, upstream: &str) -> Gateway {
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
            .args(["--audience", AUD, "--upstream", upstream])
            .args(["--route", "GET /v1/products/*=cfgateway"])
            .args(["--metrics-listen", "127.0.0.1:0"])
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
        let url_in = |line: &str| {
            line.split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap()
                .trim_end_matches("/metrics")
                .to_owned()
        };
        let mut metrics = None;
        let base = loop {
            let line = lines
                .next()
                .expect("gateway exited before listening")
                .unwrap();
            if line.contains("gateway metrics on") {
                metrics = Some(url_in(&line));
            }
            if line.contains("gateway listening on") {
                break url_in(&line);
            }
        };
        let log = dir.join("gateway.log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        Gateway {
            child,
            base,
            metrics: metrics.expect("no metrics address printed before listening"),
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
        let mut req = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.base))
            .header("traceparent", TRACEPARENT);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream that echoes the request's headers as JSON.
fn upstream() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let echo = |req: axum::extract::Request| async move {
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                    .collect();
                axum::Json(json!({ "headers": headers }))
            };
            axum::serve(l, axum::Router::new().fallback(echo))
                .await
                .unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

/// Waits (up to 5 s) for `f` to hold.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn gateway_counts_decisions_by_outcome_and_passes_the_trace_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let (api, app) = register(dir.path());
    let up = upstream();
    let gw = Gateway::start(dir.path(), &server, &api, &up);
    let r = token_request(&server, "/connect/token", s(&app["client_secret"]), &app);
    let token = s(&r.json::<Value>().unwrap()["access_token"]).to_owned();

    // Allowed: the upstream gets the trace, and the trace id as the request id.
    let r = gw.get("/v1/products/get-status?productCode=gcs1", Some(&token));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], TRACE_ID);
    let seen: Value = r.json().unwrap();
    assert_eq!(seen["headers"]["traceparent"], TRACEPARENT);
    assert_eq!(seen["headers"]["x-request-id"], TRACE_ID);
    // Refused three ways; the gateway's own error bodies carry the id.
    let r = gw.get("/v1/products/get-status", None);
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["correlation_id"], TRACE_ID);
    assert_eq!(
        gw.get("/v1/products/get-status", Some("not-a-jwt"))
            .status(),
        401
    );
    assert_eq!(gw.get("/v1/orders", Some(&token)).status(), 404);

    let m = Scrape::of(&gw.metrics);
    let decided = |outcome| m.value("gatehouse_gateway_decisions_total", &[("outcome", outcome)]);
    assert_eq!(decided("allowed"), 1.0);
    assert_eq!(decided("missing_token"), 1.0);
    assert_eq!(decided("no_route"), 1.0);
    // An opaque token goes to introspection, which finds it inactive.
    assert_eq!(decided("inactive") + decided("malformed_token"), 1.0);
    assert_eq!(
        m.value("gatehouse_gateway_upstream_duration_seconds", &[]),
        1.0
    );
    assert!(
        m.value(
            "gatehouse_gateway_jwks_refreshes_total",
            &[("result", "ok")]
        ) >= 1.0
    );
    assert_eq!(m.value("gatehouse_gateway_feed_stale", &[]), 0.0);
    assert!(m.value("gatehouse_gateway_jwks_keys", &[]) >= 1.0);
    assert!(m.value("process_resident_memory_bytes", &[]) > 1e6);
    // The gateway's metrics address is not a way round the gateway.
    let r = reqwest::blocking::get(format!("{}/v1/products/get-status", gw.metrics)).unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::blocking::get(format!("{}/metrics", gw.base)).unwrap();
    assert_ne!(r.status(), 200);

    // deploy/: every metric a dashboard query or an alert names exists in a
    // real scrape of `serve` or of `gateway`.
    let serve = Scrape::of(&serve_metrics_base(&server));
    let mut known = serve.names();
    known.extend(m.names());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let dashboard = std::fs::read_to_string(root.join("grafana-dashboard.json")).unwrap();
    let doc: Value = serde_json::from_str(&dashboard).unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for panel in doc["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(s(&target["expr"]).to_owned());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let alerts = std::fs::read_to_string(root.join("prometheus-alerts.yml")).unwrap();
    let alert_exprs: Vec<&str> = alerts
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let used: BTreeSet<String> = exprs
        .iter()
        .map(String::as_str)
        .chain(alert_exprs)
        .flat_map(metric_names)
        .collect();
    for needed in [
        "gatehouse_gateway_feed_stale",
        "gatehouse_http_requests_total",
        "gatehouse_store_errors_total",
        "gatehouse_signing_key_age_seconds",
    ] {
        assert!(used.contains(needed), "no alert or panel uses {needed}");
    }
    let missing: Vec<&String> = used.iter().filter(|n| !known.contains(*n)).collect();
    assert!(missing.is_empty(), "not in a real scrape: {missing:?}");
    until("the scrape to stay parseable", || {
        Scrape::of(&gw.metrics).names().len() > 5
    });
}

/// The metric names in a PromQL expression: identifiers starting `gatehouse_`
/// or `process_` (label names and functions never do).
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_word && (text[i..].starts_with("gatehouse_") || text[i..].starts_with("process_"))
        {
            let end = text[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(text.len(), |n| i + n);
            out.push(text[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}
