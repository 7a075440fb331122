//! The reverse proxy: forwards a request to the upstream with bodies streamed both
//! ways, hop-by-hop headers removed both ways (RFC 9110 §7.6.1, plus
//! `Proxy-Connection`), caller-sent `X-Gatehouse-*` headers stripped and replaced
//! by the validated principal's, method-override headers stripped (the route was
//! chosen for the request's real method), the caller's `Authorization` kept only
//! where the route asks for it, and `X-Forwarded-For/-Proto/-Host` set from what
//! the gateway itself saw (caller-sent `Forwarded`/`X-Forwarded-*` are dropped).
//! Upstream failures become 502 (unreachable) or 504 (no answer in time) with a
//! JSON body.

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

const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers that make frameworks treat a POST as another method.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// What the upstream is told about the request beyond the request itself.
pub struct Forward<'a> {
    /// The validated caller (as `X-Gatehouse-*` headers).
    pub principal: Option<&'a Principal>,
    /// The TCP peer (as `X-Forwarded-For`).
    pub peer: SocketAddr,
    /// Keep the caller's `Authorization` header.
    pub authorization: bool,
}

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

    /// Forwards `req`, telling the upstream who is calling.
    pub async fn forward(&self, mut req: Request<Body>, how: &Forward<'_>) -> Response {
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
        prepare_headers(req.headers_mut(), how);
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

fn prepare_headers(h: &mut HeaderMap, how: &Forward<'_>) {
    strip_hop_by_hop(h);
    if !how.authorization {
        h.remove(header::AUTHORIZATION);
        // The DPoP proof (RFC 9449) goes with the token it proves.
        h.remove("dpop");
    }
    let dropped: Vec<HeaderName> = h
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k.starts_with("x-gatehouse-")
                || k.starts_with("x-forwarded-")
                || k == "forwarded"
                || METHOD_OVERRIDES.contains(&k)
        })
        .cloned()
        .collect();
    for k in dropped {
        h.remove(k);
    }
    let host = h.remove(header::HOST);
    set(h, "x-forwarded-for", &how.peer.ip().to_string());
    // The gateway listens on plain HTTP: that is what the caller used to reach it.
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host {
        h.insert("x-forwarded-host", host);
    }
    if let Some(p) = how.principal {
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
        axum::Json(crate::request_id::with_correlation_id(
            json!({"error": error, "error_description": description}),
        )),
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
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert("x-http-method-override", HeaderValue::from_static("DELETE"));
        h.insert("x-http-method", HeaderValue::from_static("DELETE"));
        h.insert("x-method-override", HeaderValue::from_static("DELETE"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-prefix", HeaderValue::from_static("/admin"));
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=6.6.6.6;proto=https"),
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let how = Forward {
            principal: None,
            peer: "10.0.0.1:5".parse().unwrap(),
            authorization: false,
        };
        prepare_headers(&mut h, &how);
        assert!(h.get("x-gatehouse-subject").is_none());
        assert!(h.get("x-gatehouse-anything").is_none());
        assert!(h.get("x-secret").is_none() && h.get(header::CONNECTION).is_none());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-forwarded-host"], "gw.test");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(h.get(header::HOST).is_none());
        for gone in [
            "proxy-connection",
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
            "x-forwarded-prefix",
            "forwarded",
            "authorization",
        ] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
    }

    #[test]
    fn authorization_is_forwarded_only_when_the_route_asks() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let how = Forward {
            principal: None,
            peer: "10.0.0.1:5".parse().unwrap(),
            authorization: true,
        };
        prepare_headers(&mut h, &how);
        assert_eq!(h[header::AUTHORIZATION], "Bearer t");
    }
}
