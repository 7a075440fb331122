//! Users, roles and groups of the organization: list, create, deactivate and
//! activate, change a user's role and groups and, on the user's own page, their
//! profile; invite someone by e-mail; the permissions each role carries.
//! Needs `users:manage`. The users page and the forms posted from it (each in a
//! file of its own), and the roles page.

mod access;
mod create;
mod invitation;
mod page;
mod profile;
mod role_mfa;
mod roles;
mod status;

use axum::Router;
use axum::routing::{get, post};
use gatehouse_core::admin;
use gatehouse_core::model::User;

use super::auth::Admin;
use super::{Step, admin_failure, not_found};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(page::list).post(create::create))
        .route("/console/users/mfa", post(status::set_mfa_policy))
        .route("/console/users/{user_id}", get(profile::show))
        .route(
            "/console/users/{user_id}/profile",
            post(profile::set_profile),
        )
        .route("/console/users/{user_id}/status", post(status::set_status))
        .route("/console/users/{user_id}/access", post(access::set_access))
        .route(
            "/console/users/{user_id}/invitation",
            get(invitation::show).post(invitation::resend),
        )
        .route("/console/roles", get(roles::roles))
        .route("/console/roles/mfa", post(role_mfa::set_role_mfa))
}

/// The user named in the path, if they are in this organization; otherwise 404.
pub(super) async fn owned_user(state: &AppState, admin: &Admin, user_id: &str) -> Step<User> {
    if user_id.len() > 128 {
        return Err(not_found());
    }
    match admin::user(state.store.as_ref(), &admin.actor(), user_id).await {
        Ok(u) if u.org_id == admin.org.id => Ok(u),
        Ok(_) => Err(not_found()),
        Err(e) => Err(admin_failure(e)),
    }
}
