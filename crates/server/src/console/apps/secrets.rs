//! A second secret key beside the current one, and retiring one
//! (`POST /console/apps/{client_id}/secrets`, `POST …/secrets/{secret_id}/retire`):
//! the rotation with a grace period. Adding shows the new key once; the current
//! one keeps working until it is retired or its grace period (`expires_in`)
//! ends. Retiring ends the tokens issued with that key, and only those.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::{AppSecret, PERM_APPS_MANAGE};

use super::owned_app;
use super::secret::hold_secret;
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::once::Made;
use crate::console::view::when;
use crate::console::{admin_failure, see_other};
use crate::pages;
use crate::state::AppState;

/// The grace periods the form offers (the value is what `expires_in` posts).
pub(super) const GRACE_CHOICES: &[(&str, &str)] = &[
    ("", "until I retire it"),
    ("1d", "for 1 more day"),
    ("7d", "for 7 more days"),
    ("30d", "for 30 more days"),
];

/// One active secret as the app's page lists it (never its value).
pub(super) struct SecretRow {
    pub(super) id: String,
    pub(super) created: String,
    pub(super) expires: String,
    pub(super) last_used: String,
}

impl SecretRow {
    pub(super) fn of(s: &AppSecret) -> Self {
        Self {
            id: s.id.clone(),
            created: when(s.created_at),
            expires: s.expires_at.map_or_else(|| "—".to_owned(), when),
            last_used: s.last_used_at.map_or_else(|| "never".to_owned(), when),
        }
    }
}

/// `POST …/secrets` with `expires_in` (empty, or a grace period such as `7d`):
/// a second secret, then 303 to the page that shows it once.
pub(super) async fn add(
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
        let grace = match form.get("expires_in").unwrap_or("").trim() {
            "" => None,
            text => Some(admin::parse_grace(text).map_err(|e| {
                pages::message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Please check the form",
                    &format!("expires_in: {e}"),
                    None,
                )
            })?),
        };
        let (added, value) = admin::add_secret(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
            grace,
        )
        .await
        .map_err(admin_failure)?;
        tracing::info!(client_id = %app.client_id, secret_id = %added.id, by = %admin.user.id, from = %admin.address, "second secret added in the console");
        Ok(hold_secret(&state, admin, &app, &value, Made::Added))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

/// `POST …/secrets/{secret_id}/retire`: the secret stops working and the tokens
/// issued with it end; back to the app's page.
pub(super) async fn retire(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path((client_id, secret_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    async {
        let (admin, _) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        admin::retire_secret(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
            &secret_id,
        )
        .await
        .map_err(admin_failure)?;
        tracing::info!(client_id = %app.client_id, %secret_id, by = %admin.user.id, from = %admin.address, "secret retired in the console");
        Ok(admin.respond(see_other(&format!(
            "/console/apps/{}?done=retired",
            app.client_id
        ))))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
