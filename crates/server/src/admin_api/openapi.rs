//! The OpenAPI 3.1 document: the base (info, the bearer scheme, the problem
//! schema) here; paths and schemas come from the handlers' `#[utoipa::path]`
//! through the router itself, so no route can be served undocumented.

use std::sync::Arc;

use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse admin API",
        description = "Manage an organization's apps, users, roles and groups, and read its audit log. \
            Authenticate with a Gatehouse access token carrying the `gatehouse:admin` scope: a client \
            credentials app whose on-behalf user has `apps:manage`. Errors are RFC 9457 problem documents.",
    ),
    components(schemas(Problem)),
    modifiers(&BearerScheme),
    tags(
        (name = "organization"), (name = "apps"), (name = "users"), (name = "audit"), (name = "meta"),
    ),
)]
pub struct Base;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A Gatehouse access token with the `gatehouse:admin` scope (audience `{issuer}/api/v1`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The finished document, serialized once.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

/// This document (no token needed).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn document(Extension(doc): Extension<Document>) -> Response {
    let mut r = doc.0.as_str().to_owned().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// OpenAPI 3.1 §4.8.17.1: every response object needs a `description`. Handlers
/// describe their success responses; errors (all problem documents) get the
/// meaning of their status here, so none is ever left empty. An error's body is
/// declared as `application/problem+json`, the type it is sent with (`body =
/// Problem` alone would say `application/json`, and a client checking the type
/// against the document would find every error wrong).
pub fn describe_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ];
        for op in ops.into_iter().flatten() {
            for (status, resp) in op.responses.responses.iter_mut() {
                let utoipa::openapi::RefOr::T(r) = resp else {
                    continue;
                };
                if r.description.trim().is_empty() {
                    r.description = meaning(status).to_owned();
                }
                if status.starts_with(['4', '5']) {
                    r.content = std::mem::take(&mut r.content)
                        .into_iter()
                        .map(|(kind, c)| match kind.as_str() {
                            "application/json" => (PROBLEM_JSON.to_owned(), c),
                            _ => (kind, c),
                        })
                        .collect();
                }
            }
        }
    }
}

const PROBLEM_JSON: &str = "application/problem+json";

fn meaning(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "204" => "Done; no content",
        "400" => "Malformed request (a problem document names what is wrong)",
        "401" => "No valid access token (a problem document, with a Bearer challenge)",
        "403" => "The token or its user lacks the scope or permission needed",
        "404" => "No such resource in the caller's organization",
        "409" => "Conflicts with an existing resource",
        "413" => "The request body is too large",
        "415" => "The body must be application/json",
        "422" => "Well-formed but invalid (the problem document names the field)",
        "500" => "Unexpected error (quote the correlation id)",
        "503" => "Storage unavailable; retry after the Retry-After seconds",
        _ => "See the problem document",
    }
}
