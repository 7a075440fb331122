//! Prometheus metrics of `gatehouse serve` (prometheus-client): the counters and
//! histograms the request path bumps, and the registry `/metrics` encodes on
//! the separate `--metrics-listen` address ([`router`]).
//!
//! Cost on the hot path: one hash lookup under a read lock per family touched
//! (labels are `&'static str`s from fixed lists ([`route_label`]); never
//! the raw path, so cardinality stays bounded by the route table). Gauges that
//! can be read when scraped (process, signing keys, pool) are read then, by
//! collectors, not kept up to date on every request.
//!
//! Owns no state of the protocol and must not decide anything: handlers call
//! `record_*` after the decision was made.

pub mod process;

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_core::context::ClientContext;
use gatehouse_core::model::{KeyState, TokenFormat};
use gatehouse_core::request::TokenRequest;
use gatehouse_core::scope::ScopeSet;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::{AppState, Inner};

/// The route template a path belongs to: the protocol endpoints by name, the
/// console and admin API as one series each, anything else `unmatched`, so a
/// scan of random paths adds no series (a fixed `&'static str`: no allocation).
pub fn route_label(path: &str) -> &'static str {
    use gatehouse_core::discovery as d;
    const EXACT: [&str; 16] = [
        d::TOKEN_PATH,
        crate::routes::OAUTH_TOKEN_PATH,
        d::AUTHORIZE_PATH,
        d::PAR_PATH,
        d::INTROSPECT_PATH,
        d::REVOCATION_PATH,
        d::REVOCATION_FEED_PATH,
        d::USERINFO_PATH,
        d::ENDSESSION_PATH,
        d::JWKS_PATH,
        d::OPENID_CONFIGURATION_PATH,
        d::OAUTH_METADATA_PATH,
        "/health",
        "/login",
        "/consent",
        crate::upstream::CALLBACK_PATH,
    ];
    if let Some(p) = EXACT.iter().find(|p| **p == path) {
        return p;
    }
    if path.starts_with("/api/v1/") || path == "/api/v1" {
        return "/api/v1/*";
    }
    if path.starts_with("/console/") || path == "/console" {
        return "/console/*";
    }
    "unmatched"
}

type RouteName = &'static str;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: RouteName,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: &'static str,
    route: RouteName,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant: &'static str,
    /// The API's audience (bounded by the APIs registered), or `none`.
    api: String,
    /// The signing algorithm, or `reference` for opaque tokens.
    alg: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThrottleLabels {
    route: RouteName,
}

/// Why a client failed to authenticate (the `reason` label).
#[derive(Clone, Copy, Debug)]
pub enum ClientAuthFailure {
    /// No secret was presented.
    NoSecret,
    /// The client id is unknown or the secret is wrong (not told apart, as on the wire).
    WrongSecret,
    /// The app is disabled.
    Disabled,
    /// A `private_key_jwt` assertion was refused (or a secret presented for
    /// such an app).
    BadAssertion,
}

impl ClientAuthFailure {
    fn label(self) -> &'static str {
        match self {
            ClientAuthFailure::NoSecret => "no_secret",
            ClientAuthFailure::WrongSecret => "unknown_client_or_wrong_secret",
            ClientAuthFailure::Disabled => "app_disabled",
            ClientAuthFailure::BadAssertion => "bad_client_assertion",
        }
    }
}

/// A store error that reached an answer, by kind (response extension set by
/// [`crate::error::HttpError`], counted by [`track`]).
#[derive(Clone, Copy, Debug)]
pub struct StoreFailure(pub &'static str);

/// The counters and histograms; a cheap clone (every family is `Arc`-backed).
#[derive(Clone, Debug)]
pub struct Metrics {
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<LatencyLabels, Histogram>,
    tokens_issued: Family<TokenLabels, Counter>,
    client_auth_failures: Family<ReasonLabels, Counter>,
    signin_failures: Family<ReasonLabels, Counter>,
    throttled: Family<ThrottleLabels, Counter>,
    store_errors: Family<KindLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s: a token answer is ~1 ms, a long poll up to 30 s is off the end.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            tokens_issued: Family::default(),
            client_auth_failures: Family::default(),
            signin_failures: Family::default(),
            throttled: Family::default(),
            store_errors: Family::default(),
        };
        // The failure series exist at 0 from the start: the text format leaves
        // out a family with no series, and `rate()` or an alert only sees an
        // increase from a series that was already there.
        for why in [
            ClientAuthFailure::NoSecret,
            ClientAuthFailure::WrongSecret,
            ClientAuthFailure::Disabled,
            ClientAuthFailure::BadAssertion,
        ] {
            m.client_auth_failures
                .get_or_create(&ReasonLabels {
                    reason: why.label(),
                })
                .inc_by(0);
        }
        for why in [
            crate::signin::Refusal::WrongCredentials,
            crate::signin::Refusal::Throttled(0),
        ] {
            m.signin_failures
                .get_or_create(&ReasonLabels {
                    reason: why.label(),
                })
                .inc_by(0);
        }
        for kind in [STORE_UNAVAILABLE, STORE_INTERNAL] {
            m.store_errors.get_or_create(&KindLabels { kind }).inc_by(0);
        }
        for route in [gatehouse_core::discovery::TOKEN_PATH, "/login"] {
            m.throttled
                .get_or_create(&ThrottleLabels { route })
                .inc_by(0);
        }
        m
    }
}

/// The `kind` of a store failure: the store could not answer (503), or it
/// answered with something unexpected (500).
pub const STORE_UNAVAILABLE: &str = "unavailable";
pub const STORE_INTERNAL: &str = "internal";

impl Metrics {
    /// A token was issued at the token endpoint.
    pub fn record_token(&self, request: &TokenRequest, client: &ClientContext, scope: &ScopeSet) {
        let grant = match request {
            TokenRequest::ClientCredentials(_) => "client_credentials",
            TokenRequest::AuthorizationCode(_) => "authorization_code",
            TokenRequest::RefreshToken(_) => "refresh_token",
            TokenRequest::TokenExchange(_) => "token_exchange",
            TokenRequest::DeviceCode(_) => "device_code",
        };
        // The API named by `audience`/`resource`, else the one whose scopes the
        // token carries (a token is for one API).
        let named = match request {
            TokenRequest::ClientCredentials(r) => r.target.as_deref(),
            TokenRequest::TokenExchange(r) => {
                r.target
                    .as_deref()
                    .or(client.app.exchange_audiences.first().map(String::as_str))
            }
            TokenRequest::AuthorizationCode(_)
            | TokenRequest::RefreshToken(_)
            | TokenRequest::DeviceCode(_) => None,
        };
        let api = named
            .and_then(|aud| client.api_by_audience(aud))
            .or_else(|| {
                client
                    .apis
                    .iter()
                    .find(|api| api.scopes.iter().any(|s| scope.contains(s)))
            });
        let labels = TokenLabels {
            grant,
            api: api.map_or_else(|| "none".to_owned(), |a| a.audience.clone()),
            alg: match api {
                Some(a) if a.token_format == TokenFormat::Reference => "reference",
                Some(a) => a.signing_alg.as_str(),
                None => "none",
            },
        };
        self.tokens_issued.get_or_create(&labels).inc();
    }

    pub fn record_client_auth_failure(&self, why: ClientAuthFailure) {
        let labels = ReasonLabels {
            reason: why.label(),
        };
        self.client_auth_failures.get_or_create(&labels).inc();
    }

    /// A sign-in refused; `reason` is a fixed word (see `signin::Refusal`).
    pub fn record_signin_failure(&self, reason: &'static str) {
        self.signin_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Registers the families and the scrape-time collectors in a new registry.
    pub fn registry(&self, state: &AppState, pool: Option<PoolProbe>) -> Registry {
        // No registry prefix: it would apply to the collectors' `process_*` too.
        let mut r = Registry::default();
        r.register(
            "gatehouse_http_requests",
            "HTTP requests answered, by method, route template and status",
            self.http_requests.clone(),
        );
        r.register(
            "gatehouse_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            self.http_duration.clone(),
        );
        r.register(
            "gatehouse_tokens_issued",
            "Access tokens issued at the token endpoint, by grant, API (audience) and algorithm",
            self.tokens_issued.clone(),
        );
        r.register(
            "gatehouse_client_auth_failures",
            "Failed client authentications, by reason",
            self.client_auth_failures.clone(),
        );
        r.register(
            "gatehouse_signin_failures",
            "Refused sign-ins, by reason",
            self.signin_failures.clone(),
        );
        r.register(
            "gatehouse_throttled_requests",
            "Requests refused by a failure limiter (429), by route template",
            self.throttled.clone(),
        );
        r.register(
            "gatehouse_store_errors",
            "Database errors that reached an answer, by kind (unavailable, internal)",
            self.store_errors.clone(),
        );
        r.register_collector(Box::new(Scraped {
            state: Arc::downgrade(state.inner()),
            pool,
        }));
        r.register_collector(Box::new(process::ProcessCollector::new(state.clock.now())));
        r
    }
}

/// The database pool's size and idle connections, read when scraped.
pub type PoolProbe = Arc<dyn Fn() -> PoolUse + Send + Sync>;

#[derive(Clone, Copy, Debug)]
pub struct PoolUse {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Gauges read at scrape time from the running state.
struct Scraped {
    state: Weak<Inner>,
    pool: Option<PoolProbe>,
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraped").finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    alg: &'static str,
    kid: String,
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(inner) = self.state.upgrade() {
            let now = inner.clock.now();
            let keys = inner.keys();
            let gauge = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(
                "gatehouse_signing_key_age_seconds",
                "Age of each active signing key (rotate before it grows old)",
                None,
                gauge.metric_type(),
            )?;
            for k in keys.keys().iter().filter(|k| k.state == KeyState::Active) {
                let labels = KeyLabels {
                    alg: k.alg.as_str(),
                    kid: k.kid.clone(),
                };
                ConstGauge::new(now - k.created_at).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(probe) = &self.pool {
            let used = probe();
            for (name, help, v) in [
                (
                    "gatehouse_db_pool_connections",
                    "Open database connections",
                    used.size,
                ),
                (
                    "gatehouse_db_pool_idle_connections",
                    "Idle database connections",
                    used.idle,
                ),
                (
                    "gatehouse_db_pool_max_connections",
                    "Database connections this instance may open (its pool and its hot-path connections)",
                    used.max,
                ),
            ] {
                let g = ConstGauge::new(i64::from(v));
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// A fixed label for the method (no allocation; unusual methods share `other`).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (route layer): counts the answer by route template and status,
/// times it, and counts throttling and store errors seen in the answer.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if status == 429 {
        metrics
            .throttled
            .get_or_create(&ThrottleLabels { route })
            .inc();
    }
    if let Some(StoreFailure(kind)) = resp.extensions().get::<StoreFailure>() {
        metrics
            .store_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    }
    metrics
        .http_duration
        .get_or_create(&LatencyLabels { method, route })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status,
        })
        .inc();
    resp
}

/// `GET /metrics` in the Prometheus text format (0.0.4), and nothing else: this
/// router is served on its own address only.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(registry))
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Cow::Borrowed("cannot encode the metrics"),
        )
            .into_response(),
    }
}

/// Serves [`router`] on `listener` until the process ends (a scrape is short;
/// nothing to drain).
pub fn spawn(listener: tokio::net::TcpListener, registry: Registry) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(registry)).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
}
