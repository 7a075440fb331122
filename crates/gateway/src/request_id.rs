//! One id per request through the gateway (`x-request-id`), as the server does
//! it: a caller's id is kept only if it is 1–64 characters of `[A-Za-z0-9._-]`,
//! otherwise a fresh one is made (attacker bytes never reach a log line). The id
//! is on the request's tracing span, forwarded to the upstream (so its logs can
//! name the same request) and echoed in the response.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header the id travels in, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied id kept.
pub const MAX_LEN: usize = 64;

/// Is `v` an id the gateway keeps as given?
pub fn acceptable(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The request's id: exactly one acceptable value sent by the caller, or a new one.
fn id_for(req: &Request) -> HeaderValue {
    let mut values = req.headers().get_all(&HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if acceptable(v.as_bytes()) => v.clone(),
        _ => HeaderValue::from_str(&gatehouse_core::secret::random_id())
            .unwrap_or(HeaderValue::from_static("unknown")),
    }
}

/// Middleware: sets the id on the request (replacing what the caller sent), runs
/// the rest inside a span that carries it, and puts it on the response.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = id_for(&req);
    req.headers_mut().insert(&HEADER, id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %req.method(),
        path = req.uri().path(),
    );
    let mut resp = next.run(req).instrument(span).await;
    resp.headers_mut().insert(&HEADER, id);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ids: &[&'static str]) -> Request {
        let mut req = Request::new(axum::body::Body::empty());
        for id in ids {
            req.headers_mut()
                .append(&HEADER, HeaderValue::from_static(id));
        }
        req
    }

    #[test]
    fn a_plain_id_is_kept_and_anything_else_replaced() {
        assert_eq!(id_for(&request(&["trace-1.a_b"])), "trace-1.a_b");
        for bad in [&["a b"][..], &["a/b"], &["one", "two"], &[]] {
            let id = id_for(&request(bad));
            assert!(acceptable(id.as_bytes()), "{id:?}");
            assert!(!bad.contains(&id.to_str().unwrap()));
        }
        assert!(!acceptable(&[b'a'; 65]));
    }
}
