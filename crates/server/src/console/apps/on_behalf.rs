//! Changing the user a client credentials app acts on behalf of
//! (`POST /console/apps/{client_id}/on-behalf`); the app's tokens end.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_APPS_MANAGE;

use super::page::app_page;
use super::{on_form, owned_app};
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::forms::{self, Errors};
use crate::console::see_other;
use crate::state::AppState;

pub(super) async fn on_behalf(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        if form.get("confirm") != Some("yes") {
            let errors = Errors::default().field(
                "confirm",
                "Tick the box to confirm: the app's current tokens end now.",
            );
            return app_page(
                &state,
                admin,
                &app,
                None,
                (errors, None),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        let email = forms::text(&form, "on_behalf_of");
        let changed = admin::set_on_behalf_of(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
            &email,
        )
        .await;
        match changed {
            Ok(_) => Ok(admin.respond(see_other(&format!(
                "/console/apps/{}?done=on-behalf",
                app.client_id
            )))),
            Err(e) => {
                let (errors, status) = on_form(e, "", &["on_behalf_of"])?;
                app_page(&state, admin, &app, None, (errors, None), status).await
            }
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
