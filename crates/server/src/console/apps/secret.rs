//! The one-time secret page (`GET /console/apps/{client_id}/secret`): a secret
//! made by registering or regenerating, shown once.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::model::{App, PERM_APPS_MANAGE};
use gatehouse_core::secret::ClientSecret;

use super::owned_app;
use crate::client_addr::ClientAddr;
use crate::console::auth::{self, Admin};
use crate::console::once::{self, Made};
use crate::console::view::Nav;
use crate::console::{render, see_other};
use crate::pages;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/secret.html")]
struct SecretPage<'a> {
    nav: Nav,
    heading: &'a str,
    app_name: &'a str,
    client_id: &'a str,
    secret: &'a str,
}

/// Post/Redirect/Get: the secret waits for one display, and the browser is sent
/// to the page that shows it (a reload of that page re-posts nothing).
pub(super) fn hold_secret(
    state: &AppState,
    mut admin: Admin,
    app: &App,
    secret: &ClientSecret,
    made: Made,
) -> Response {
    admin.jar = once::hold(
        state,
        admin.jar.clone(),
        &admin.sid,
        &app.client_id,
        made,
        secret,
    );
    admin.respond(see_other(&once::page_path(&app.client_id)))
}

/// `GET …/secret`: the waiting secret, once (pages are `no-store`); afterwards a
/// page saying it is no longer shown.
pub(super) async fn show_secret(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    async {
        let mut admin = auth::require(&state, peer, jar, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        let (waiting, jar) = once::take(&state, admin.jar.clone(), &admin.sid, &app.client_id);
        admin.jar = jar;
        let Some((made, secret)) = waiting else {
            let page = pages::message(
                StatusCode::GONE,
                "The secret key is no longer shown",
                "A secret key is shown once, right after it is made; Gatehouse keeps only a hash of it. If it was not copied, regenerate it on the app's page.",
                Some((format!("/console/apps/{}", app.client_id), format!("Back to {}", app.name))),
            );
            return Ok(admin.respond(page));
        };
        let page = SecretPage {
            nav: admin.nav("apps"),
            heading: made.heading(),
            app_name: &app.name,
            client_id: &app.client_id,
            secret: &secret,
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
