//! Settings → Integrations → Registered apps: the list, "Register app", an app's
//! page, editing, disabling, secret regeneration, a second secret and
//! retiring one, the on-behalf user and deletion. Needs `apps:manage`. One file per page (or page and its action);
//! here the routes and what several pages share: the notices after a redirect,
//! the app named in the path, form errors, and the organization's reads.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod confirm;
mod delete;
mod edit;
mod getting_started;
mod keys;
mod list;
mod on_behalf;
mod page;
mod register;
mod rotate;
mod secret;
mod secrets;
mod status;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use gatehouse_core::admin;
use gatehouse_core::model::{App, GrantType, User};
use serde::Deserialize;

use super::auth::Admin;
use super::forms::{self, Errors, Shown};
use super::view::when;
use super::{Step, admin_failure, not_found};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/apps", get(list::list).post(register::create))
        .route("/console/apps/new", get(register::new_form))
        .route("/console/apps/{client_id}", get(page::show))
        .route(
            "/console/apps/{client_id}/rotate",
            get(rotate::rotate_confirm).post(rotate::rotate),
        )
        .route("/console/apps/{client_id}/secret", get(secret::show_secret))
        .route("/console/apps/{client_id}/secrets", post(secrets::add))
        .route(
            "/console/apps/{client_id}/secrets/{secret_id}/retire",
            post(secrets::retire),
        )
        .route(
            "/console/apps/{client_id}/on-behalf",
            post(on_behalf::on_behalf),
        )
        .route("/console/apps/{client_id}/keys", post(keys::set_keys))
        .route("/console/apps/{client_id}/edit", post(edit::edit))
        .route("/console/apps/{client_id}/status", post(status::set_status))
        .route(
            "/console/apps/{client_id}/delete",
            get(delete::delete_confirm).post(delete::delete),
        )
}

/// One `<option>` or checkbox.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub(super) fn choices(values: &[String], chosen: impl Fn(&str) -> bool) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: v.clone(),
            label: v.clone(),
            selected: chosen(v),
        })
        .collect()
}

/// Fixed notices after a redirect (never text taken from the URL).
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub(super) fn notice(done: &Done) -> Option<&'static str> {
    match done.done.as_deref() {
        Some("deleted") => Some("The app was deleted; everything it held has ended."),
        Some("saved") => Some("Changes saved."),
        Some("disabled") => {
            Some("The app is disabled: every token it held has ended, and it gets no new ones.")
        }
        Some("enabled") => Some("The app is enabled again; it must ask for new tokens."),
        Some("retired") => Some(
            "The secret key was retired: it no longer works, and the tokens issued with it have ended.",
        ),
        Some("keys") => Some(
            "The app's public keys were replaced: its next assertion must be signed with one of them.",
        ),
        Some("on-behalf") => {
            Some("The app now acts on behalf of the new user; tokens issued before have ended.")
        }
        _ => None,
    }
}

// ---- shared by several pages ------------------------------------------------------

pub(super) fn grant_label(app: &App) -> &'static str {
    if app.allows(GrantType::ClientCredentials) {
        "Client Credentials"
    } else if app.allows(GrantType::TokenExchange) {
        "Token Exchange"
    } else if app.allows(GrantType::DeviceCode) && !app.allows(GrantType::AuthorizationCode) {
        "Device Code"
    } else {
        "Authorization Code"
    }
}

/// When the app last got a token (recorded at most once a minute), or "never".
pub(super) fn last_used(app: &App) -> String {
    app.last_used_at.map_or_else(|| "never".to_owned(), when)
}

pub(super) fn email_of(users: &[User], id: Option<&str>) -> String {
    id.and_then(|id| users.iter().find(|u| u.id == id))
        .map_or_else(String::new, |u| u.email.clone())
}

/// An admin error as form errors, or the response when no field explains it.
pub(super) fn on_form(
    e: admin::AdminError,
    prefix: &str,
    known: &[&str],
) -> Step<(Errors, StatusCode)> {
    match forms::show(e, prefix) {
        Shown::OnForm(errors, status) => Ok((errors.known_only(known), status)),
        Shown::Elsewhere(e) => Err(admin_failure(e)),
    }
}

/// The app named in the path, if it is this organization's; otherwise 404.
pub(super) async fn owned_app(state: &AppState, admin: &Admin, client_id: &str) -> Step<App> {
    if client_id.len() > 128 {
        return Err(not_found());
    }
    match admin::app(state.store.as_ref(), &admin.actor(), client_id).await {
        Ok(app) if app.org_id == admin.org.id => Ok(app),
        Ok(_) => Err(not_found()),
        Err(e) => Err(admin_failure(e)),
    }
}

// ---- reads, confined to the admin's organization --------------------------------

pub(super) async fn org_apps(state: &AppState, admin: &Admin) -> Step<Vec<App>> {
    admin::apps(state.store.as_ref(), &admin.actor(), &admin.org)
        .await
        .map_err(admin_failure)
}

pub async fn org_users(state: &AppState, admin: &Admin) -> Step<Vec<User>> {
    admin::users(state.store.as_ref(), &admin.actor(), &admin.org)
        .await
        .map_err(admin_failure)
}

pub async fn org_roles(state: &AppState, admin: &Admin) -> Step<Vec<String>> {
    let roles = admin::roles(state.store.as_ref(), &admin.actor(), &admin.org)
        .await
        .map_err(admin_failure)?;
    Ok(roles.into_iter().map(|r| r.name).collect())
}
