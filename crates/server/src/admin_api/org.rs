//! `GET /api/v1/org`, `/roles` (each with its permissions) and `/groups`: the
//! caller's own organization only.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::dto::{GroupList, OrgView, RoleList};
use super::problem::{ApiError, Problem};
use crate::state::AppState;
use gatehouse_core::admin;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_org))
        .routes(routes!(list_roles))
        .routes(routes!(list_groups))
}

/// The organization the token belongs to.
#[utoipa::path(get, path = "/api/v1/org", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 200, body = OrgView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem),
    ))]
async fn show_org(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<OrgView>, ApiError> {
    let org = caller.org(state.store.as_ref()).await?;
    Ok(Json(org.into()))
}

/// The organization's roles and the permissions each carries.
#[utoipa::path(get, path = "/api/v1/roles", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 200, body = RoleList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem),
    ))]
async fn list_roles(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<RoleList>, ApiError> {
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let roles = admin::roles(store, &caller.actor, &org).await?;
    Ok(Json(RoleList {
        roles: roles.into_iter().map(Into::into).collect(),
    }))
}

/// The groups the organization's users belong to (distinct, sorted).
#[utoipa::path(get, path = "/api/v1/groups", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 200, body = GroupList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem),
    ))]
async fn list_groups(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<GroupList>, ApiError> {
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let groups = admin::groups(store, &caller.actor, &org).await?;
    Ok(Json(GroupList { groups }))
}
