//! One id per request (`x-request-id`, tower-http's request-id layers), used as
//! the correlation id everywhere: on the request's tracing span, so every log
//! line of the request carries it; in every error body (OAuth JSON errors and
//! admin API problems as `correlation_id`, HTML error pages as text); and echoed
//! in the response's `x-request-id` header.
//!
//! A client-supplied id is kept only if it is 1–64 characters of
//! `[A-Za-z0-9._-]`; anything else is dropped before tower-http's layer mints a
//! fresh one, so attacker bytes never reach a log line or a page.
//!
//! A valid W3C `traceparent` (Trace Context §3.2) wins over both: its trace id
//! becomes the request's id, so the logs of every hop of a trace share it.
//!
//! Error bodies are built far from the request (in `IntoResponse` impls), so the
//! id travels to them in a task-local set for the duration of the request: it
//! is scoped to one request's task, not global state.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header the id travels in, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-supplied id kept.
pub const MAX_LEN: usize = 64;

tokio::task_local! {
    static CURRENT: String;
}

/// The current request's id; `None` outside a request (e.g. in unit tests).
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The current request's id, or a fresh random one where there is no request,
/// so an error can always be quoted and found in the log.
pub fn current_or_new() -> String {
    current().unwrap_or_else(gatehouse_core::secret::random_id)
}

/// Runs `fut` with `id` as the current request's id: for work moved to another
/// task (which does not inherit task-locals).
pub async fn scope<F: Future>(id: Option<String>, fut: F) -> F::Output {
    match id {
        Some(id) => CURRENT.scope(id, fut).await,
        None => fut.await,
    }
}

/// Is `v` an id this server keeps as given?
pub fn acceptable(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a client-supplied `x-request-id` unless it is exactly one acceptable
/// value; [`MakeId`] then mints one. Runs before tower-http's `SetRequestId`.
/// A valid `traceparent`'s trace id replaces it.
pub fn drop_unacceptable(mut req: Request) -> Request {
    if let Some(trace_id) = trace_id(req.headers()) {
        req.headers_mut().insert(&HEADER, trace_id);
        return req;
    }
    let mut values = req.headers().get_all(&HEADER).iter();
    let keep = matches!(
        (values.next(), values.next()),
        (Some(v), None) if acceptable(v.as_bytes())
    );
    if !keep {
        req.headers_mut().remove(&HEADER);
    }
    req
}

/// The trace id of exactly one valid `traceparent` header
/// ([`gatehouse_core::trace_context::trace_id`]); anything else: `None`.
pub fn trace_id(headers: &axum::http::HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all("traceparent").iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return None;
    };
    gatehouse_core::trace_context::trace_id(v.as_bytes())
        .and_then(|id| HeaderValue::from_bytes(id).ok())
}

/// Fresh ids: random, URL-safe, in the accepted alphabet.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&gatehouse_core::secret::random_id())
            .ok()
            .map(RequestId::new)
    }
}

/// The id of a request that went through the layers (its header is then set).
pub fn of<B>(req: &axum::http::Request<B>) -> Option<String> {
    req.headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The request's span: its id (already checked or minted), method and path
/// (not the query, which may hold values that do not belong in logs).
pub fn span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = of(req).as_deref().unwrap_or_default(),
        method = %req.method(),
        path = req.uri().path(),
    )
}

/// Middleware: makes the request's id current for everything it runs.
pub async fn make_current(req: Request, next: Next) -> Response {
    let id = of(&req);
    scope(id, next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(acceptable(b"abc-DEF_1.2"));
        assert!(acceptable(&[b'a'; 64]));
        assert!(!acceptable(&[b'a'; 65]));
        assert!(!acceptable(b""));
        for bad in ["a b", "a\nb", "a/b", "a\"b", "\u{e9}"] {
            assert!(!acceptable(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn several_ids_are_all_dropped() {
        let mut req = Request::new(axum::body::Body::empty());
        req.headers_mut()
            .append(&HEADER, HeaderValue::from_static("one"));
        req.headers_mut()
            .append(&HEADER, HeaderValue::from_static("two"));
        assert!(drop_unacceptable(req).headers().get(&HEADER).is_none());
    }

    #[test]
    fn a_valid_traceparent_gives_the_id() {
        let with = |tp: &'static str| {
            let mut req = Request::new(axum::body::Body::empty());
            req.headers_mut()
                .insert(&HEADER, HeaderValue::from_static("client-id"));
            req.headers_mut()
                .insert("traceparent", HeaderValue::from_static(tp));
            of(&drop_unacceptable(req))
        };
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            with(good).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            with("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(with(bad).as_deref(), Some("client-id"), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_id_is_current_within_its_scope_only() {
        assert_eq!(current(), None);
        let inside = scope(Some("r1".into()), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("r1"));
        assert_eq!(current(), None);
    }
}
