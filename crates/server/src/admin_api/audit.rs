//! `GET /api/v1/audit?before=SEQ&limit=N`: the organization's audit log, newest
//! first, a page at a time.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use gatehouse_core::admin;

use super::dto::{AuditEventView, AuditPage};
use super::problem::{ApiError, Problem};
use crate::state::AppState;

/// Largest page.
pub const MAX_LIMIT: u32 = 200;
const DEFAULT_LIMIT: u32 = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events older than this sequence number (the previous page's `next_before`).
    before: Option<i64>,
    /// Events per page, 1 to 200 (default 50).
    limit: Option<u32>,
}

/// Every admin change in the organization: who, what, when, from where.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn audit_log(
    State(state): State<AppState>,
    caller: AdminCaller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let events = admin::audit_log(store, &caller.actor, &org, q.before, limit).await?;
    // A full page may have more behind it; a short one is the last.
    let next_before = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        events: events.into_iter().map(AuditEventView::from).collect(),
        next_before,
    }))
}
