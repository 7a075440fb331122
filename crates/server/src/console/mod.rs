//! The organization admin's web console at `/console`: Settings → Integrations →
//! Registered apps, users, roles and the audit log, as plain HTML forms.
//!
//! Handlers parse a form and call `gatehouse_core::admin`; the rules (what is
//! valid, who may see what) live there, not here. Every page is confined to the
//! signed-in admin's organization: another organization's id is a 404, whatever
//! it is. Every POST is CSRF-checked; successful changes redirect (Post/Redirect/
//! Get), the one-time secret pages too: the POST seals the secret for one display
//! ([`once`]) and redirects to a page that shows it once, so a reload neither
//! registers again nor shows the secret again.

mod apps;
mod assets;
mod audit;
mod auth;
mod forms;
mod home;
mod identity_provider;
mod once;
mod usage;
mod users;
pub(crate) mod view;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use gatehouse_core::admin::AdminError;

use crate::pages;
use crate::state::AppState;

/// Console pages may load their own script (the copy button) and stylesheet,
/// nothing else, and post only to this origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(auth::home))
        .route("/console/login", post(auth::login))
        .route(auth::PASSKEY_SIGNIN, post(auth::passkey_login))
        .route("/console/logout", post(auth::logout))
        .route("/console/assets/console.js", get(assets::script))
        .route("/console/assets/console.css", get(assets::style))
        .merge(apps::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(identity_provider::router())
}

/// A step that may end early with the finished response.
type Step<T> = Result<T, Response>;

fn render(status: StatusCode, page: &impl askama::Template) -> Response {
    pages::render_with_csp(status, page, CSP)
}

/// Post/Redirect/Get: 303 to a console page.
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn not_found() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in your organization.",
        Some(("/console".into(), "Back to the console".into())),
    )
}

/// Errors that no form field explains: 404, 409, 503 or 500.
fn admin_failure(e: AdminError) -> Response {
    match e {
        AdminError::NotFound(_) => not_found(),
        AdminError::Invalid { field, message } => pages::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the form",
            &format!("{field}: {message}"),
            None,
        ),
        AdminError::Conflict(what) => pages::message(
            StatusCode::CONFLICT,
            "Already exists",
            &what,
            Some(("/console".into(), "Back to the console".into())),
        ),
        AdminError::Store(s) => pages::store_failure(s),
    }
}
