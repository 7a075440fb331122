//! The admin REST API under `/api/v1`: JSON in and out, RFC 9457 problems for
//! errors, Gatehouse's own `gatehouse:admin` bearer tokens for authentication
//! ([`auth`]), and an OpenAPI document generated from the same route table.
//! Handlers parse and map; the rules (and the confinement of every read and write
//! to the caller's organization) are `gatehouse_core::admin`'s.

pub mod apps;
pub mod audit;
pub mod auth;
pub mod dto;
pub mod id;
pub mod invitations;
pub mod json;
pub mod openapi;
pub mod org;
pub mod problem;
pub mod upstream;
pub mod users;

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::{Extension, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The routes and the document describing them, built together.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(openapi::Base::openapi())
        .merge(org::router())
        .merge(apps::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(invitations::router())
        .merge(upstream::router())
        .routes(routes!(openapi::document));
    let (router, mut doc) = router.split_for_parts();
    openapi::describe_responses(&mut doc);
    (router, doc)
}

/// The admin API, ready to merge into the application.
pub fn router() -> Router<AppState> {
    let (router, doc) = routes();
    let json = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!(r#"{{"error":"the document could not be serialized: {e}"}}"#));
    router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(openapi::Document(Arc::new(json))))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// 405 as a problem document, like every other admin API error.
async fn method_not_allowed() -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    problem::problem_response(
        status,
        problem::problem(status, "this method is not allowed here".into(), None),
    )
}
