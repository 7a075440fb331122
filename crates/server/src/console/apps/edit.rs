//! Editing an app's details (`POST /console/apps/{client_id}/edit`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, AppEdit};
use gatehouse_core::model::{GrantType, PERM_APPS_MANAGE};

use super::page::{EDIT_FIELDS, EditForm, app_page};
use super::{on_form, owned_app};
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::forms;
use crate::console::see_other;
use crate::state::AppState;

/// `POST …/edit`: name and description; redirect URIs for authorization code
/// apps, checked by the redirect-URI policy, and whether they must push their
/// authorization requests (RFC 9126); for token exchange apps, the APIs they
/// may exchange tokens for (RFC 8693).
pub(super) async fn edit(
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
        let input = EditForm::read(&form);
        let code_app = app.allows(GrantType::AuthorizationCode);
        let change = AppEdit {
            name: Some(&input.name),
            description: Some(Some(input.description.as_str()).filter(|d| !d.is_empty())),
            redirect_uris: code_app.then(|| forms::lines(&input.redirect_uris)),
            post_logout_redirect_uris: code_app
                .then(|| forms::lines(&input.post_logout_redirect_uris)),
            // Only a change is recorded (the box is always sent, checked or not).
            require_par: (code_app && input.require_par != app.require_par)
                .then_some(input.require_par),
            require_dpop: (input.require_dpop != app.require_dpop).then_some(input.require_dpop),
            exchange_audiences: app
                .allows(GrantType::TokenExchange)
                .then(|| forms::lines(&input.exchange_audiences)),
            ..AppEdit::default()
        };
        let edited = admin::update_app(
            state.store.as_ref(),
            state.clock.now(),
            &state.redirect_policy,
            &admin.actor(),
            &app.client_id,
            change,
        )
        .await;
        match edited {
            Ok(_) => Ok(admin.respond(see_other(&format!(
                "/console/apps/{}?done=saved",
                app.client_id
            )))),
            Err(e) => {
                let (errors, status) = on_form(e, "", EDIT_FIELDS)?;
                app_page(&state, admin, &app, None, (errors, Some(input)), status).await
            }
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
