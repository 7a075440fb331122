//! The reverse proxy: forwards a request to the upstream with bodies streamed both
//! ways, hop-by-hop headers removed (RFC 9110 §7.6.1), caller-sent
//! `X-Gatehouse-*` headers stripped and replaced by the validated principal's, and
//! `X-Forwarded-For/-Proto/-Host` set. Upstream failures become 502 (unreachable)
//! or 504 (no answer in time) with a JSON body.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::uri::{PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::principal::Principal;

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream URL must be http://host[:port][/base]")]
    Url,
}

#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    scheme: Scheme,
    authority: axum::http::uri::Authority,
    base_path: String,
    timeout: Duration,
}

impl Proxy {
    /// `upstream`: `http://host:port` with an optional base path.
    pub fn new(upstream: &str, timeout: Duration) -> Result<Proxy, UpstreamError> {
        let uri: Uri = upstream.parse().map_err(|_| UpstreamError::Url)?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(UpstreamError::Url);
        };
        if scheme != Scheme::HTTP || uri.query().is_some() {
            return Err(UpstreamError::Url);
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Proxy {
            client,
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// Forwards `req` from `peer`, telling the upstream who is calling.
    pub async fn forward(
        &self,
        mut req: Request<Body>,
        principal: Option<&Principal>,
        peer: SocketAddr,
    ) -> Response {
        let path = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
        let target = format!("{}{}", self.base_path, path);
        let Ok(uri) = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(target)
            .build()
        else {
            return failure(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request target cannot be forwarded",
            );
        };
        *req.uri_mut() = uri;
        *req.version_mut() = axum::http::Version::HTTP_11;
        prepare_headers(req.headers_mut(), principal, peer);
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream request failed");
                failure(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "the upstream could not be reached",
                )
            }
            Err(_) => failure(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                "the upstream did not answer in time",
            ),
        }
    }
}

fn prepare_headers(h: &mut HeaderMap, principal: Option<&Principal>, peer: SocketAddr) {
    strip_hop_by_hop(h);
    let caller_sent: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("x-gatehouse-"))
        .cloned()
        .collect();
    for k in caller_sent {
        h.remove(k);
    }
    let host = h.remove(header::HOST);
    let mut xff = h
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| format!("{v}, "))
        .unwrap_or_default();
    xff.push_str(&peer.ip().to_string());
    set(h, "x-forwarded-for", &xff);
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host {
        h.insert("x-forwarded-host", host);
    }
    if let Some(p) = principal {
        set(h, "x-gatehouse-client-id", &p.client_id);
        set(h, "x-gatehouse-subject", &p.subject);
        set(h, "x-gatehouse-org", &p.org);
        set(h, "x-gatehouse-scopes", &p.scopes.join(" "));
        set(h, "x-gatehouse-permissions", &p.permissions.join(","));
        set(h, "x-gatehouse-role", &p.role);
        set(h, "x-gatehouse-groups", &p.groups.join(","));
    }
}

/// Sets a header; a value no header can carry (control characters) is left out.
fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        h.insert(name, v);
    }
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(n);
    }
}

pub fn failure(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_sent_gatehouse_headers_and_hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("x-gatehouse-subject", HeaderValue::from_static("admin"));
        h.insert("X-Gatehouse-Anything", HeaderValue::from_static("x"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("s"));
        h.insert(header::HOST, HeaderValue::from_static("gw.test"));
        prepare_headers(&mut h, None, "10.0.0.1:5".parse().unwrap());
        assert!(h.get("x-gatehouse-subject").is_none());
        assert!(h.get("x-gatehouse-anything").is_none());
        assert!(h.get("x-secret").is_none() && h.get(header::CONNECTION).is_none());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-forwarded-host"], "gw.test");
        assert!(h.get(header::HOST).is_none());
    }
}
