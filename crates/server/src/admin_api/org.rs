//! `GET /api/v1/org`, `/roles` (each with its permissions) and `/groups`: the
//! caller's own organization only.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::dto::{GroupList, OrgSecurity, OrgView, RoleList};
use super::json::ApiJson;
use super::problem::{ApiError, Problem};
use crate::state::AppState;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_USERS_MANAGE;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_org))
        .routes(routes!(show_security, set_security))
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

/// The organization's sign-in policy.
#[utoipa::path(get, path = "/api/v1/org/security", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 200, body = OrgSecurity),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem),
    ))]
async fn show_security(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<OrgSecurity>, ApiError> {
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let require_mfa = admin::requires_mfa(store, &caller.actor, &org).await?;
    let roles = admin::mfa_roles(store, &caller.actor, &org).await?;
    Ok(Json(OrgSecurity {
        require_mfa,
        require_mfa_roles: Some(roles),
    }))
}

/// Sets the organization's sign-in policy (needs `users:manage`): with
/// `require_mfa`, everyone signs in with a second factor from their next sign-in;
/// with `require_mfa_roles`, everyone holding one of those roles does.
#[utoipa::path(put, path = "/api/v1/org/security", tag = "organization", security(("bearer" = [])),
    request_body = OrgSecurity,
    responses(
        (status = 200, body = OrgSecurity),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn set_security(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<OrgSecurity>,
) -> Result<Json<OrgSecurity>, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    // The roles first: a role that does not exist refuses the whole request
    // before anything changed.
    let roles = match body.require_mfa_roles {
        Some(roles) => {
            admin::set_mfa_roles(store, state.clock.now(), &caller.actor, &org, &roles).await?
        }
        None => admin::mfa_roles(store, &caller.actor, &org).await?,
    };
    let require_mfa = admin::set_requires_mfa(
        store,
        state.clock.now(),
        &caller.actor,
        &org,
        body.require_mfa,
    )
    .await?;
    Ok(Json(OrgSecurity {
        require_mfa,
        require_mfa_roles: Some(roles),
    }))
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
