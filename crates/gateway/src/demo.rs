//! A small products API for `gatehouse gateway --demo`, so that the seed's
//! `GET /v1/products/get-status?productCode=gcs1` works out of the box. It sits
//! behind the same validation as any upstream and sees the same principal.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::json;

use crate::principal::Principal;

const PRODUCTS: [(&str, &str, &str); 4] = [
    ("gcs1", "Gateway Cloud Service", "active"),
    ("gcs2", "Gateway Cloud Service (EU)", "active"),
    ("sts1", "Studio Sync", "maintenance"),
    ("arc1", "Archive", "retired"),
];

pub fn router() -> Router {
    Router::new()
        .route("/v1/products/get-status", get(get_status))
        .route("/v1/products", get(list))
        .fallback(not_found)
}

#[derive(Deserialize)]
struct StatusQuery {
    #[serde(rename = "productCode")]
    product_code: Option<String>,
}

async fn get_status(
    principal: Option<Extension<Principal>>,
    Query(q): Query<StatusQuery>,
) -> Response {
    let Some(code) = q.product_code.filter(|c| !c.is_empty() && c.len() <= 64) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request", "error_description": "`productCode` is required"})),
        )
            .into_response();
    };
    match PRODUCTS.iter().find(|(c, _, _)| *c == code) {
        Some((c, name, status)) => axum::Json(json!({
            "productCode": c,
            "name": name,
            "status": status,
            "calledBy": principal.map(|Extension(p)| json!({"clientId": p.client_id, "subject": p.subject, "org": p.org})),
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not_found", "error_description": format!("no product with code `{code}`")})),
        )
            .into_response(),
    }
}

async fn list() -> Response {
    let items: Vec<_> = PRODUCTS
        .iter()
        .map(|(c, n, s)| json!({"productCode": c, "name": n, "status": s}))
        .collect();
    axum::Json(json!({"products": items})).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found", "error_description": "no such endpoint"})),
    )
        .into_response()
}
