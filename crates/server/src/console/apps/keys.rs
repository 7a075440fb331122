//! Replacing a `private_key_jwt` app's public keys
//! (`POST /console/apps/{client_id}/keys`): a new JWKS pasted in, or the URL
//! it is fetched from. Every instance uses them from its next request; tokens
//! issued so far stay (they were issued to the same app).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::client_assertion::PRIVATE_KEY_JWT;
use gatehouse_core::model::PERM_APPS_MANAGE;

use super::page::app_page;
use super::{on_form, owned_app};
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::forms;
use crate::console::see_other;
use crate::state::AppState;

pub(super) async fn set_keys(
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
        let jwks = form.get("jwks").filter(|j| !j.trim().is_empty());
        let jwks_uri = Some(forms::text(&form, "jwks_uri")).filter(|u| !u.is_empty());
        let changed = match admin::requested_keys(
            Some(PRIVATE_KEY_JWT),
            jwks.map(str::to_owned),
            jwks_uri,
        ) {
            Ok(Some(keys)) => {
                admin::set_client_keys(
                    state.store.as_ref(),
                    state.clock.now(),
                    &state.redirect_policy,
                    &admin.actor(),
                    &app.client_id,
                    keys,
                )
                .await
            }
            Ok(None) => Err(admin::AdminError::Invalid {
                field: "jwks",
                message: "give the app's public keys or their URL".into(),
            }),
            Err(e) => Err(e),
        };
        match changed {
            Ok(_) => {
                tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "an app's public keys were replaced in the console");
                Ok(admin.respond(see_other(&format!(
                    "/console/apps/{}?done=keys",
                    app.client_id
                ))))
            }
            Err(e) => {
                // A secret app's page has no key fields: say it above the form.
                let known: &[&str] = if app.client_keys.is_some() {
                    &["jwks", "jwks_uri"]
                } else {
                    &[]
                };
                let (errors, status) = on_form(e, "", known)?;
                app_page(&state, admin, &app, None, (errors, None), status).await
            }
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
