//! `gatehouse gateway` assembled: the route table decides which scopes a request
//! needs, the validator decides whether its token is good, and the request goes
//! to the upstream (or the built-in demo API) with the caller's identity.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use tower::ServiceExt;

use crate::health::health;
use crate::proxy::{Forward, Proxy, failure};
use crate::routes::{Refusal, Route, Routes};
use crate::validator::Validator;

/// Where validated requests go.
#[derive(Clone)]
pub enum Backend {
    Upstream(Box<Proxy>),
    /// The built-in products API ([`crate::demo`]).
    Demo(Router),
}

pub struct Gateway {
    pub validator: Validator,
    pub routes: Routes,
    pub backend: Backend,
}

impl Gateway {
    /// The gateway's router; serve it so that handlers get
    /// `ConnectInfo<SocketAddr>` (`gatehouse gateway` uses the server's accept
    /// loop, `gatehouse_server::http_server::serve_router`).
    pub fn router(self) -> Router {
        let validator = self.validator.clone();
        Router::new()
            .route("/health", get(health).with_state(validator))
            .fallback(handle)
            .with_state(Arc::new(self))
            .layer(axum::middleware::from_fn(crate::request_id::assign))
    }
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    // RFC 9112 §6.1: both framings at once is how requests are smuggled past a
    // proxy that reads one and an upstream that reads the other. hyper already
    // frames such a request by Transfer-Encoding alone, drops Content-Length and
    // closes the connection; this holds for any other server the router runs on.
    if req.headers().contains_key(header::CONTENT_LENGTH)
        && req.headers().contains_key(header::TRANSFER_ENCODING)
    {
        gw.validator.metrics().record_decision("bad_request");
        return bad_request("the request has both Content-Length and Transfer-Encoding");
    }
    let metrics = gw.validator.metrics();
    // DPoP proofs name the path as the caller sent it, before canonicalisation.
    let sent = req.uri().clone();
    let route = match route_for(&gw.routes, &mut req) {
        Ok(r) => r,
        Err(resp) => {
            metrics.record_decision(if resp.status() == StatusCode::NOT_FOUND {
                "no_route"
            } else {
                "bad_request"
            });
            return *resp;
        }
    };
    let principal = match gw
        .validator
        .authorize(req.method(), &sent, req.headers(), &route.scopes)
        .await
    {
        Ok(p) => p,
        Err(r) => {
            metrics.record_decision(r.reason());
            return r.into_response_for(gw.validator.realm());
        }
    };
    metrics.record_decision("allowed");
    let start = std::time::Instant::now();
    let resp = forward(&gw, req, peer, principal, route).await;
    metrics.record_upstream(start.elapsed());
    resp
}

async fn forward(
    gw: &Gateway,
    mut req: Request,
    peer: SocketAddr,
    principal: crate::principal::Principal,
    route: &Route,
) -> Response {
    match &gw.backend {
        Backend::Upstream(proxy) => {
            let forward = Forward {
                principal: Some(&principal),
                peer,
                authorization: route.forward_authorization,
            };
            proxy.forward(req, &forward).await
        }
        Backend::Demo(router) => {
            req.extensions_mut().insert(principal);
            match router.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    }
}

/// Makes the request's path canonical (the upstream gets exactly the path that
/// was matched; the query goes as sent) and finds its route.
fn route_for<'a>(routes: &'a Routes, req: &mut Request) -> Result<&'a Route, Box<Response>> {
    let (route, path) = match routes.resolve(req.method(), req.uri().path()) {
        Ok(found) => found,
        Err(Refusal::NoRoute) => {
            return Err(Box::new(failure(
                StatusCode::NOT_FOUND,
                "not_found",
                "no route for this method and path",
            )));
        }
        Err(e) => return Err(Box::new(bad_request(&e.to_string()))),
    };
    if let Cow::Owned(path) = path {
        let target = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let unforwardable = || Box::new(bad_request("the request target cannot be forwarded"));
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(
            target
                .parse::<PathAndQuery>()
                .map_err(|_| unforwardable())?,
        );
        *req.uri_mut() = Uri::from_parts(parts).map_err(|_| unforwardable())?;
    }
    Ok(route)
}

fn bad_request(description: &str) -> Response {
    failure(StatusCode::BAD_REQUEST, "invalid_request", description)
}
