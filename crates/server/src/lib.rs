//! Gatehouse's HTTP face: the OAuth 2.0 / OpenID Connect endpoints on axum.
//! Extractors parse HTTP, `gatehouse-core` decides, and [`error::HttpError`] maps
//! the outcome; handlers hold no protocol rules of their own.

pub mod account;
pub mod account_page;
pub mod account_passkeys;
pub mod admin_api;
pub mod backchannel;
pub mod bearer;
pub mod cache;
pub mod client_addr;
pub mod client_assertion;
pub mod client_auth;
pub mod client_keys;
pub mod config;
pub mod console;
pub mod continuation;
pub mod device;
pub mod dns;
pub mod dpop;
pub mod error;
pub mod extract;
pub mod http_server;
pub mod introspection_cache;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod pages;
pub mod passkey;
pub mod password;
pub mod ratelimit;
pub mod request_id;
pub mod routes;
pub mod sealed_request;
pub mod second_factor;
pub mod security_events;
pub mod session;
pub mod signin;
pub mod state;
pub mod upstream;
pub mod usage;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

pub use config::ServerConfig;
pub use state::AppState;

/// Headers every answer carries unless its handler set them.
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    // Not `no-referrer`: with it browsers send `Origin: null` on our own form
    // posts (Fetch §3.1), which the CSRF check refuses. `same-origin` still
    // keeps every URL (codes, `state`) from other sites.
    (header::REFERRER_POLICY, "same-origin"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// The whole application, with its middleware.
pub fn app(state: AppState) -> Router {
    let body_timeout = state.config.body_read_timeout;
    let http_metrics = state.metrics.clone();
    // The endpoints a client posts a form to answer a wrong method with an
    // OAuth JSON error and `Allow`, like every other answer they give.
    let client_endpoints = Router::new()
        .merge(routes::token::router())
        // Auth0's path, which vendor documents (the Switch seed) post to; same
        // handler, same answers. Discovery advertises only `/connect/token`.
        .route(
            routes::OAUTH_TOKEN_PATH,
            axum::routing::post(routes::token::token),
        )
        .merge(routes::introspect::router())
        .merge(routes::revocation::router())
        .merge(routes::par::router())
        .merge(routes::device::client_router())
        .method_not_allowed_fallback(routes::method_not_allowed);
    // The pages people sign in on: the browser's agent and address are made
    // current for a session started there (not on the token, introspection,
    // userinfo or admin API paths, where no session starts).
    let pages = Router::new()
        .merge(routes::authorize::router())
        .merge(routes::device::router())
        .merge(routes::endsession::router())
        .merge(second_factor::router())
        .merge(account::router())
        .merge(account_page::router())
        .merge(account_passkeys::router())
        .merge(passkey::router())
        .merge(password::router())
        .merge(upstream::router())
        .merge(console::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            device::make_current,
        ));
    let routes = Router::new()
        .merge(routes::well_known::router())
        .merge(client_endpoints)
        .merge(routes::health::router())
        .merge(routes::userinfo::router())
        .merge(routes::revocations::router())
        .merge(admin_api::router())
        .merge(pages)
        .fallback(routes::not_found)
        .with_state(state)
        // Counts every answer by route template (see `metrics::route_label`).
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            metrics::track,
        ));
    // Around the whole router, once, outermost first: `Router::layer` wraps
    // every route in each layer, boxed, and each request cloned its route's
    // stack box by box (profiled: a twentieth of a client credentials
    // request's instructions, and the allocations with it).
    let stack = tower::ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            HeaderName::from_static("x-api-key"),
        ]))
        .map_request(request_id::drop_unacceptable)
        .layer(SetRequestIdLayer::new(
            request_id::HEADER,
            request_id::MakeId,
        ))
        .layer(PropagateRequestIdLayer::new(request_id::HEADER))
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        // The id is current (for error bodies) and on the span (for log lines)
        // for everything inside; outside, tower-http sets and echoes it.
        .layer(axum::middleware::from_fn(request_id::make_current))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .map_request(http_server::body_deadline(body_timeout))
        .layer(axum::middleware::from_fn(run_to_completion))
        .layer(axum::middleware::map_response(security_headers))
        .service(routes);
    Router::new().fallback_service(stack)
}

/// Sets each of [`SECURITY_HEADERS`] the handler did not.
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    for (name, value) in SECURITY_HEADERS {
        res.headers_mut()
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    res
}

/// Runs each request in a task of its own, so a client hanging up cannot cancel a
/// handler half way through a database transaction (sqlx 0.9.0 then returns the
/// connection to the pool still inside the transaction: transact-rs/sqlx#4393).
/// What was started is finished; the answer is simply not delivered.
async fn run_to_completion(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // A new task inherits neither the request id's task-local nor the request's
    // tracing span: carry both over, so the handler's log lines name the request.
    let id = request_id::current();
    let task = request_id::scope(id, next.run(req)).instrument(tracing::Span::current());
    match tokio::spawn(task).await {
        Ok(resp) => resp,
        Err(e) => error::panic_response(Box::new(format!("request task failed: {e}"))),
    }
}

/// Serves until `shutdown` resolves, then drains in-flight requests (long polls
/// answer at once); see [`http_server`] for the connection limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state.clone());
    http_server::run(listener, state, router, shutdown).await
}
