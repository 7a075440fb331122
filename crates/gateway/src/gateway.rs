//! `gatehouse gateway` assembled: the route table decides which scopes a request
//! needs, the validator decides whether its token is good, and the request goes
//! to the upstream (or the built-in demo API) with the caller's identity.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tower::ServiceExt;

use crate::health::health;
use crate::proxy::{Proxy, failure};
use crate::routes::{Routes, is_plain_path};
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
    /// The gateway's router; serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(self) -> Router {
        let validator = self.validator.clone();
        Router::new()
            .route("/health", get(health).with_state(validator))
            .fallback(handle)
            .with_state(Arc::new(self))
    }
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    if !is_plain_path(req.uri().path()) {
        return failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the path has dot segments or encoded separators",
        );
    }
    let Some(route) = gw.routes.find(req.method(), req.uri().path()) else {
        return failure(
            StatusCode::NOT_FOUND,
            "not_found",
            "no route for this method and path",
        );
    };
    let principal = match gw.validator.authorize(req.headers(), &route.scopes).await {
        Ok(p) => p,
        Err(r) => return r.into_response_for(gw.validator.realm()),
    };
    match &gw.backend {
        Backend::Upstream(proxy) => proxy.forward(req, Some(&principal), peer).await,
        Backend::Demo(router) => {
            req.extensions_mut().insert(principal);
            match router.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    }
}
