//! `POST /console/roles/mfa`: require (or stop requiring) a second factor of
//! everyone holding one role, from the roles page. The organization-wide rule
//! stays on the users page; either one leads a person without a factor to
//! enrol at their next sign-in.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_USERS_MANAGE;

use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::{admin_failure, see_other};
use crate::pages;
use crate::state::AppState;

pub(super) async fn set_role_mfa(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let refuse = |why: &str| {
            pages::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Please check the form",
                why,
                Some(("/console/roles".to_owned(), "Back to roles".to_owned())),
            )
        };
        let required = match form.get("require_mfa") {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(refuse("require_mfa: must be true or false")),
        };
        let role = form.get("role").unwrap_or("");
        let store = state.store.as_ref();
        let mut roles = admin::mfa_roles(store, &admin.actor(), &admin.org)
            .await
            .map_err(admin_failure)?;
        roles.retain(|r| r != role);
        if required {
            roles.push(role.to_owned());
        }
        admin::set_mfa_roles(store, state.clock.now(), &admin.actor(), &admin.org, &roles)
            .await
            .map_err(admin_failure)?;
        Ok(admin.respond(see_other("/console/roles?done=mfa")))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
