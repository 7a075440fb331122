//! `POST /api/v1/invitations`: makes a user without a password and invites
//! them by e-mail; the link in it sets their password (once, within 72 hours).
//! Without an SMTP server the answer carries the link, for the caller to pass
//! on; with one, the link exists only in the e-mail.
//! `POST /api/v1/invitations/{id}/resend` invites the user again: a new link
//! in place of the old (one live link per person), only while they have not
//! accepted (409 once they have a password, or when deactivated).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::admin::{self, NewUser, ProfileEdit};
use gatehouse_core::model::PERM_USERS_MANAGE;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::dto::UserView;
use super::id::Id;
use super::json::ApiJson;
use super::problem::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite_user))
        .routes(routes!(resend_invitation))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitationRequest {
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// The invited user (`can_sign_in` turns true once they set a password).
    pub user: UserView,
    /// Unix seconds: the link stops working then.
    pub expires_at: i64,
    /// Whether the invitation went out by e-mail.
    pub sent: bool,
    /// The invitation link, only when this server sends no e-mail: pass it on
    /// to the person. It is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Invites a person by e-mail (needs `users:manage`).
#[utoipa::path(post, path = "/api/v1/invitations", tag = "users", security(("bearer" = [])),
    request_body = NewInvitationRequest,
    responses(
        (status = 201, body = InvitationView, headers(("Location" = String, description = "The user's URL"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn invite_user(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<NewInvitationRequest>,
) -> Result<Response, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let new = NewUser {
        org: &org,
        email: &body.email,
        name: body.name.as_deref(),
        role: &body.role,
        groups: body.groups,
        password: None,
        profile: ProfileEdit::default(),
    };
    let user = admin::create_user(store, state.clock.now(), &caller.actor, new).await?;
    let made = crate::password::links::invite(&state, &caller.actor, &org, &user).await?;
    let location = format!("/api/v1/users/{}", user.id);
    let view = InvitationView {
        user: UserView::from(user),
        expires_at: made.expires_at,
        sent: made.link.is_none(),
        link: made.link,
    };
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Invites the user again, in place of their earlier link, while they have
/// not accepted (needs `users:manage`).
#[utoipa::path(post, path = "/api/v1/invitations/{id}/resend", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The invited user's id")),
    responses(
        (status = 200, body = InvitationView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The user has accepted (has a password) or is deactivated"),
        (status = 503, body = Problem),
    ))]
async fn resend_invitation(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(id): Id,
) -> Result<Json<InvitationView>, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let (user, made) = crate::password::links::resend(&state, &caller.actor, &id).await?;
    Ok(Json(InvitationView {
        user: UserView::from(user),
        expires_at: made.expires_at,
        sent: made.link.is_none(),
        link: made.link,
    }))
}
