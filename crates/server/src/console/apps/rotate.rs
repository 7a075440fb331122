//! Regenerating the secret (`GET`/`POST /console/apps/{client_id}/rotate`): asks
//! first, then a new secret shown once; the app's tokens end.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_APPS_MANAGE;

use super::confirm::{Confirm, confirm};
use super::owned_app;
use super::secret::hold_secret;
use crate::client_addr::ClientAddr;
use crate::console::admin_failure;
use crate::console::auth;
use crate::console::once::Made;
use crate::state::AppState;

const ROTATE: Confirm = Confirm {
    heading: "Regenerate the secret key?",
    warning: "Tokens issued so far end now, and the app can get new ones only with the new secret key. The new key is shown once, on the next page.",
    action: "rotate",
    button: "Regenerate secret key",
};

pub(super) async fn rotate_confirm(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    confirm(&state, peer, jar, &client_id, &ROTATE).await
}

/// `POST …/rotate`: a new secret, then 303 to the page that shows it once.
pub(super) async fn rotate(
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
        let secret = admin::rotate_secret(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
        )
            .await
            .map_err(admin_failure)?;
        tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "secret regenerated in the console");
        Ok(hold_secret(&state, admin, &app, &secret, Made::Regenerated))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
