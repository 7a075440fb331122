//! The accept loop: HTTP/1.1 and HTTP/2 on hyper with the limits a server on
//! the internet needs, which `axum::serve` does not set:
//! - a request's head must arrive within `header_read_timeout` (hyper also applies
//!   it to an idle keep-alive connection waiting for its next request);
//! - its body within `body_read_timeout` of the head ([`DeadlineBody`]);
//! - at most `max_connections` at once (more wait in the kernel's backlog);
//! - at shutdown: stop accepting, tell long polls ([`AppState::stopping`]), let
//!   in-flight requests finish, and drop what is still open after `shutdown_grace`.
//!
//! [`serve_router`] runs any router with these limits (`gatehouse gateway` too);
//! [`with_body_deadline`] adds the body deadline to one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::state::AppState;

/// What the accept loop enforces (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn of(cfg: &ServerConfig) -> Self {
        Self {
            header_read_timeout: cfg.header_read_timeout,
            max_connections: cfg.max_connections,
            shutdown_grace: cfg.shutdown_grace,
        }
    }
}

/// Serves the authorization server's `router` on `listener` until `shutdown`
/// resolves (see the module docs).
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Limits::of(&state.config);
    let stopping = state.stopping.clone();
    serve_router(listener, limits, router, shutdown, move || {
        stopping.send_replace(true);
    })
    .await
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves; then
/// calls `stopping` (to end long polls) and drains. Handlers get the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    limits: Limits,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: impl FnOnce() + Send,
) -> std::io::Result<()> {
    let cfg = &limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(cfg.header_read_timeout);
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                });
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping();
    let grace = limits.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the shutdown grace period were dropped"
        );
    }
    Ok(())
}

/// Per-connection errors (the client went away) are no reason to pause; running
/// out of file descriptors is, briefly, so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Gives each request's body a deadline: the whole body must have arrived
/// within `limit` of the head, or reading it fails (a slow sender cannot hold
/// a connection and a handler by trickling bytes).
pub fn body_deadline(limit: Duration) -> impl Fn(Request) -> Request + Clone {
    move |req: Request| req.map(|b| Body::new(DeadlineBody::new(b, limit)))
}

/// `router` with [`body_deadline`] on every request. The body stays a stream
/// (a proxy forwards it as it arrives, with its length).
pub fn with_body_deadline(router: Router, limit: Duration) -> Router {
    router.layer(tower::util::MapRequestLayer::new(body_deadline(limit)))
}

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

/// The error a body past its deadline fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
