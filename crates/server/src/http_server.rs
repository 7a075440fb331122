//! The accept loop: HTTP/1.1 and HTTP/2 on hyper with the limits a server on
//! the internet needs, which `axum::serve` does not set:
//! - a request's head must arrive within `header_read_timeout` of its first byte
//!   (a new connection's first head: of the accept);
//! - a keep-alive connection idle between requests stays open for `idle_timeout`,
//!   longer than load balancers and client pools keep theirs (60–90 s), so they
//!   never reuse a connection this server is closing. hyper's one timer covers
//!   both (it starts when the previous response is sent), so the connection's
//!   task keeps them apart ([`ConnState::deadline`], [`Watched`]);
//! - its body within `body_read_timeout` of the head ([`DeadlineBody`]);
//! - at most `max_connections` at once, and never more than the file-descriptor
//!   limit leaves room for ([`fd_budget`]). When all are taken and another client
//!   connects, the connection idle the longest (no request in flight: a keep-alive
//!   client between requests, or a head still arriving) is closed to make room,
//!   as nginx reuses idle keep-alive connections: holding connections open costs
//!   an attacker sockets but cannot lock well-behaved clients out ([`Tracker`]).
//!   Only when every connection has a request in flight does a new one wait;
//! - running out of descriptors anyway (`EMFILE`/`ENFILE` from `accept`) closes
//!   the longest-idle connection too, and pauses briefly instead of spinning;
//! - at shutdown: stop accepting, tell long polls ([`AppState::stopping`]), let
//!   in-flight requests finish, and drop what is still open after `shutdown_grace`.
//!
//! [`serve_router`] runs any router with these limits (`gatehouse gateway` too);
//! [`with_body_deadline`] adds the body deadline to one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn of(cfg: &ServerConfig) -> Self {
        Self {
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
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
    let served = serve_router(listener, limits, router, shutdown, move || {
        stopping.send_replace(true);
    })
    .await;
    // What the housekeeping has not written yet would be lost with the process.
    state.flush_usage().await;
    served
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
        // Enforced per connection instead (see the module docs).
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(cfg.header_read_timeout);
    let max = cfg
        .max_connections
        .clamp(1, fd_budget().unwrap_or(usize::MAX).max(1));
    if max < cfg.max_connections {
        tracing::warn!(
            configured = cfg.max_connections,
            serving = max,
            "max_connections is above what the open-files limit (ulimit -n) leaves room for; lowered"
        );
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    let tracker = Arc::new(Tracker::default());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e, &tracker).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Full: make room by closing the longest-idle connection; if
                // every one has a request in flight, wait for one to end.
                tracker.evict_longest_idle();
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let conn_state = tracker.add();
        let in_flight = conn_state.clone();
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            })
            .map_future(move |fut| {
                let busy = Busy::new(in_flight.clone());
                async move {
                    let resp: Result<axum::response::Response, _> = fut.await;
                    // Busy until the response body has been sent, too.
                    resp.map(|r| {
                        r.map(|b| {
                            Body::new(HeldBody {
                                inner: b,
                                _busy: busy,
                            })
                        })
                    })
                }
            });
        let watched = Watched {
            inner: stream,
            conn: conn_state.clone(),
            first_read: true,
        };
        let conn = builder
            .serve_connection(TokioIo::new(watched), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        let tracker = tracker.clone();
        tokio::spawn(async move {
            let mut conn = Box::pin(conn);
            // Woken at least every `look` to look again (a head that started
            // since, or an idle spell that began, is then timed from its start):
            // no wake-up per request.
            let look = limits.header_read_timeout.min(limits.idle_timeout);
            let timer = tokio::time::sleep(look);
            tokio::pin!(timer);
            loop {
                tokio::select! {
                    r = &mut conn => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = conn_state.evict.notified() => {
                        if conn_state.in_flight.load(Ordering::Acquire) == 0 {
                            tracing::debug!(%peer, "idle connection closed to make room");
                            break;
                        }
                    }
                    () = &mut timer => {
                        let now = Instant::now();
                        match conn_state.deadline(&limits) {
                            Some((at, why)) if at <= now => {
                                tracing::debug!(%peer, why, "connection closed");
                                break;
                            }
                            next => {
                                let look = now + look;
                                let at = next.map_or(look, |(at, _)| at.min(look));
                                timer.as_mut().reset(at.into());
                            }
                        }
                    }
                }
            }
            // The socket is closed before its place is given back.
            drop(conn);
            tracker.remove(conn_state.id);
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

/// Per-connection errors (the client went away) are no reason to pause. Out of
/// file descriptors, the longest-idle connection is closed to free one and the
/// loop pauses briefly (the descriptor is released when that connection's task
/// runs), so it neither spins nor stops answering for long.
async fn accept_failed(e: std::io::Error, tracker: &Tracker) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    let out_of_fds = matches!(e.raw_os_error(), Some(EMFILE | ENFILE));
    let pause = if out_of_fds && tracker.evict_longest_idle() {
        tracing::warn!(error = %e, "accept failed: out of file descriptors; closed the longest-idle connection");
        Duration::from_millis(5)
    } else {
        tracing::error!(error = %e, "accept failed");
        Duration::from_millis(100)
    };
    tokio::time::sleep(pause).await;
}

/// Linux/BSD `errno` values for "too many open files" (process, system).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// Descriptors left for connections: the soft open-files limit less a reserve
/// for the database, DNS, logs and the runtime (an eighth, at least 32).
/// `None` when there is no limit or it cannot be read.
pub fn fd_budget() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    let limit = usize::try_from(limit).ok()?;
    Some(limit.saturating_sub((limit / 8).max(32)))
}

/// The open connections, and which of them are idle since when: what lets the
/// accept loop close the longest-idle one when it is full (see the module docs).
#[derive(Default)]
struct Tracker {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
}

struct ConnState {
    id: u64,
    /// Requests being handled or whose response body is being sent.
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` when it last became idle (accept or a response sent).
    idle_since: AtomicU64,
    /// Milliseconds since `epoch` of the first byte read while idle: a request
    /// head is arriving ([`NONE`] when none is).
    head_since: AtomicU64,
    /// Whether a request has been served (before that, the head timeout runs
    /// from the accept: a client that connects and says nothing is not idle
    /// between requests).
    served: AtomicBool,
    /// HTTP/2 (its preface was read): frames between requests (pings, window
    /// updates) are not a request head.
    h2: AtomicBool,
    epoch: Instant,
    /// Tells the connection's task to close it (if it is still idle then).
    evict: tokio::sync::Notify,
}

/// `head_since` when no head is arriving.
const NONE: u64 = u64::MAX;

impl ConnState {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// When this connection is to be closed, and why: `None` while a request is
    /// in flight (the body deadline and the handlers bound those).
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle = self.at(self.idle_since.load(Ordering::Acquire));
        if !self.served.load(Ordering::Acquire) && !self.h2.load(Ordering::Relaxed) {
            // `idle_since` is the accept.
            return Some((idle + limits.header_read_timeout, "no request in time"));
        }
        let head = self.head_since.load(Ordering::Acquire);
        if head != NONE {
            return Some((
                self.at(head) + limits.header_read_timeout,
                "request head not received in time",
            ));
        }
        Some((idle + limits.idle_timeout, "idle keep-alive timeout"))
    }

    /// Bytes arrived: while idle on HTTP/1, a request head has started.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.h2.load(Ordering::Relaxed)
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(self.now(), Ordering::Release);
        }
    }
}

impl Tracker {
    fn add(&self) -> Arc<ConnState> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(ConnState {
            id,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            epoch: *EPOCH.get_or_init(Instant::now),
            evict: tokio::sync::Notify::new(),
        });
        c.idle_since.store(c.now(), Ordering::Release);
        self.lock().insert(id, c.clone());
        c
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Tells the connection idle the longest to close, and forgets it (so the
    /// next call picks another); `false` when none is idle.
    fn evict_longest_idle(&self) -> bool {
        let mut conns = self.lock();
        let victim = conns
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
            .map(|c| c.id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        // Nothing panics while holding it; a poisoned map is still a valid map.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// A request in flight on a connection, from its head to the end of its
/// response body.
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(c: Arc<ConnState>) -> Self {
        c.in_flight.fetch_add(1, Ordering::AcqRel);
        c.head_since.store(NONE, Ordering::Release);
        c.served.store(true, Ordering::Release);
        Busy(c)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The accepted socket, telling its [`ConnState`] when bytes arrive (the start
/// of a request head, for the head timeout) and whether it speaks HTTP/2.
struct Watched {
    inner: tokio::net::TcpStream,
    conn: Arc<ConnState>,
    first_read: bool,
}

/// How every HTTP/2 connection starts (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let got = &buf.filled()[before..];
        if !got.is_empty() {
            if this.first_read {
                this.first_read = false;
                let n = got.len().min(H2_PREFACE.len());
                if got[..n] == H2_PREFACE[..n] {
                    this.conn.h2.store(true, Ordering::Relaxed);
                }
            }
            this.conn.bytes_read();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A response body that keeps its connection [`Busy`] until it is dropped.
struct HeldBody {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
