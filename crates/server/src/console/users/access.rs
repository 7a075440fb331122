//! Changing a user's role and groups (`POST /console/users/{id}/access`); a
//! refused change is shown again on the user's row.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_USERS_MANAGE;

use super::owned_user;
use super::page::{Refused, UserForm, users_page};
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::forms::{self, Errors, Shown};
use crate::console::{admin_failure, see_other};
use crate::state::AppState;

/// `POST /console/users/{id}/access`: a new role and groups (comma-separated).
/// Tokens already issued keep the old ones until they expire.
pub(super) async fn set_access(
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
        let role = forms::text(&form, "role");
        let groups = forms::text(&form, "groups");
        let changed = admin::set_user_access(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &user.id,
            &role,
            forms::names(&groups),
        )
        .await;
        match changed {
            Ok(_) => Ok(admin.respond(see_other("/console/users?done=access"))),
            Err(e) => match forms::show(e, "") {
                Shown::OnForm(errors, status) => {
                    let error = errors
                        .get("role")
                        .map(|m| format!("role: {m}"))
                        .or_else(|| errors.get("groups").map(|m| format!("groups: {m}")))
                        .or(errors.general)
                        .unwrap_or_else(|| "This change was refused.".to_owned());
                    let refused = Refused {
                        user_id: user.id,
                        role,
                        groups,
                        error,
                    };
                    let blank = (UserForm::default(), Errors::default());
                    users_page(&state, admin, None, blank, Some(refused), status).await
                }
                Shown::Elsewhere(e) => Err(admin_failure(e)),
            },
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
