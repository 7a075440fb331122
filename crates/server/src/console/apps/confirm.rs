//! The confirmation page of a step that ends tokens (regenerating the secret,
//! deleting the app): what, why, and where the button posts.

use std::net::IpAddr;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::model::PERM_APPS_MANAGE;

use super::owned_app;
use crate::console::auth;
use crate::console::render;
use crate::console::view::Nav;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct ConfirmPage<'a> {
    nav: Nav,
    subject: &'a str,
    back: String,
    heading: &'a str,
    warning: &'a str,
    action: String,
    button: &'a str,
}

/// A step that ends tokens asks first: what, why, and where the button posts.
pub(super) struct Confirm {
    pub(super) heading: &'static str,
    pub(super) warning: &'static str,
    /// The action's path segment under `/console/apps/{client_id}/`.
    pub(super) action: &'static str,
    pub(super) button: &'static str,
}

pub(super) async fn confirm(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    client_id: &str,
    what: &Confirm,
) -> Response {
    async {
        let admin = auth::require(state, peer, jar, PERM_APPS_MANAGE).await?;
        let app = owned_app(state, &admin, client_id).await?;
        let page = ConfirmPage {
            nav: admin.nav("apps"),
            subject: &app.name,
            back: format!("/console/apps/{}", app.client_id),
            heading: what.heading,
            warning: what.warning,
            action: format!("/console/apps/{}/{}", app.client_id, what.action),
            button: what.button,
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
