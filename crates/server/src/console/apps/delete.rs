//! Deleting an app (`GET`/`POST /console/apps/{client_id}/delete`): asks first;
//! everything the app holds ends.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_APPS_MANAGE;

use super::confirm::{Confirm, confirm};
use super::owned_app;
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::{admin_failure, see_other};
use crate::state::AppState;

const DELETE: Confirm = Confirm {
    heading: "Delete this app?",
    warning: "Everything the app holds ends now: its tokens, refresh tokens and users' authorizations. This cannot be undone.",
    action: "delete",
    button: "Delete app",
};

pub(super) async fn delete_confirm(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    confirm(&state, peer, jar, &client_id, &DELETE).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, _) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        admin::delete_app(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
        )
            .await
            .map_err(admin_failure)?;
        tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "app deleted in the console");
        Ok(admin.respond(see_other("/console/apps?done=deleted")))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
