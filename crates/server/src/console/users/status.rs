//! Deactivating and activating a user (`POST /console/users/{id}/status`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::{PERM_USERS_MANAGE, UserStatus};

use super::owned_user;
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::{admin_failure, see_other};
use crate::pages;
use crate::state::AppState;

/// `POST /console/users/{id}/status`: deactivate (ending the user's sessions and
/// tokens) or activate.
pub(super) async fn set_status(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let user = owned_user(&state, &admin, &user_id).await?;
        let Some(status) = form.get("status").and_then(UserStatus::parse) else {
            return Err(pages::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Please check the form",
                "status: must be active or deactivated",
                None,
            ));
        };
        admin::set_user_status(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &user.id,
            status,
        )
        .await
        .map_err(admin_failure)?;
        // A deactivation ended their sessions: the apps hear of it.
        state.backchannel_wake.notify_one();
        Ok(admin.respond(see_other("/console/users?done=status")))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

/// `POST /console/users/mfa`: require (or stop requiring) a second factor of
/// everyone in the organization.
pub(super) async fn set_mfa_policy(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let required = match form.get("require_mfa") {
            Some("true") => true,
            Some("false") => false,
            _ => {
                return Err(pages::message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Please check the form",
                    "require_mfa: must be true or false",
                    None,
                ));
            }
        };
        admin::set_requires_mfa(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &admin.org,
            required,
        )
        .await
        .map_err(admin_failure)?;
        Ok(admin.respond(see_other("/console/users?done=mfa")))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
