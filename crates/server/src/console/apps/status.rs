//! Disabling and enabling an app (`POST /console/apps/{client_id}/status`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::{AppStatus, PERM_APPS_MANAGE};

use super::owned_app;
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::{admin_failure, see_other};
use crate::pages;
use crate::state::AppState;

/// `POST …/status` with `status=disabled|active`. Disabling ends every token
/// the app holds; enabling does not bring them back.
pub(super) async fn set_status(
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
        let Some(status) = form.get("status").and_then(AppStatus::parse) else {
            return Err(pages::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Please check the form",
                "status: must be active or disabled",
                None,
            ));
        };
        admin::set_app_status(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
            status,
        )
        .await
        .map_err(admin_failure)?;
        tracing::info!(client_id = %app.client_id, status = status.as_str(), by = %admin.user.id, from = %admin.address, "app status changed in the console");
        let done = match status {
            AppStatus::Active => "enabled",
            AppStatus::Disabled => "disabled",
        };
        Ok(admin.respond(see_other(&format!(
            "/console/apps/{}?done={done}",
            app.client_id
        ))))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
