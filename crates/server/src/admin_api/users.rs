//! `/api/v1/users…`: list, create (with a password: one who can sign in), show,
//! change role, groups or status. Changes need `users:manage` on the caller's
//! on-behalf user as well as `apps:manage`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::admin::{self, NewUser};
use gatehouse_core::model::PERM_USERS_MANAGE;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::dto::{NewUserRequest, UserList, UserPatch, UserView};
use super::id::Id;
use super::json::ApiJson;
use super::problem::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(show_user, edit_user))
}

/// The organization's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = UserList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem),
    ))]
async fn list_users(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<UserList>, ApiError> {
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let users = admin::users(store, &caller.actor, &org).await?;
    Ok(Json(UserList {
        users: users.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a user (needs `users:manage`).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    request_body = NewUserRequest,
    responses(
        (status = 201, body = UserView, headers(("Location" = String, description = "The user's URL"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn create_user(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<NewUserRequest>,
) -> Result<Response, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let profile = body.profile();
    let new = NewUser {
        org: &org,
        email: &body.email,
        name: body.name.as_deref(),
        role: &body.role,
        groups: body.groups,
        password: body.password.as_deref(),
        profile,
    };
    let user = admin::create_user(store, state.clock.now(), &caller.actor, new).await?;
    let location = format!("/api/v1/users/{}", user.id);
    let mut resp = (StatusCode::CREATED, Json(UserView::from(user))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, body = UserView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn show_user(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(id): Id,
) -> Result<Json<UserView>, ApiError> {
    let user = admin::user(state.store.as_ref(), &caller.actor, &id).await?;
    Ok(Json(user.into()))
}

/// Changes a user's profile (name, given and family name, locale, zoneinfo,
/// email_verified), role and groups, or status (`active`/`deactivated`; a
/// deactivated user's tokens end). Status goes in a request of its own, so each
/// request is one change (needs `users:manage`).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    request_body = UserPatch,
    responses(
        (status = 200, body = UserView),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn edit_user(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(id): Id,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let store = state.store.as_ref();
    let now = state.clock.now();
    let mut user = admin::user(store, &caller.actor, &id).await?;
    let profile = patch.profile();
    let access = patch.role.is_some() || patch.groups.is_some();
    if let Some(status) = patch.status {
        if access || !profile.is_empty() {
            return Err(ApiError::invalid(
                "status",
                "change the status in a request of its own",
            ));
        }
        let user =
            admin::set_user_status(store, now, &caller.actor, &user.id, status.into()).await?;
        // A deactivation ended their sessions: the apps hear of it.
        state.backchannel_wake.notify_one();
        return Ok(Json(user.into()));
    }
    // Both parts are checked before either is written.
    profile.apply(user.name.clone(), &user.profile, now)?;
    if access {
        let role = patch.role.as_deref().unwrap_or(&user.role).to_owned();
        let groups = patch.groups.unwrap_or_else(|| user.groups.clone());
        user = admin::set_user_access(store, now, &caller.actor, &user.id, &role, groups).await?;
    }
    if !profile.is_empty() {
        user = admin::update_user_profile(store, now, &caller.actor, &user.id, &profile).await?;
    }
    Ok(Json(user.into()))
}
