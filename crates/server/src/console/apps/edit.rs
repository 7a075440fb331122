//! Editing an app's details (`POST /console/apps/{client_id}/edit`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, AppEdit, BackchannelEdit};
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
        // The logout URI is checked before anything is saved.
        let off = !state.config.backchannel.enabled && code_app;
        let checked = match input.backchannel_logout_uri.as_str() {
            uri if off => match admin::backchannel_logout(
                state.store.as_ref(),
                &admin.actor(),
                &app.client_id,
            )
            .await
            {
                Ok(current) => admin::refuse_backchannel_when_off(
                    false,
                    current.as_ref(),
                    &BackchannelEdit {
                        uri: Some(uri.to_owned()),
                        session_required: None,
                    },
                ),
                Err(e) => Err(e),
            },
            "" => Ok(()),
            uri if code_app => state
                .redirect_policy
                .check(admin::BACKCHANNEL_FIELD, vec![uri.to_owned()])
                .await
                .map(drop),
            _ => Ok(()),
        };
        if let Err(e) = checked {
            let (errors, status) = on_form(e, "", EDIT_FIELDS)?;
            return app_page(&state, admin, &app, None, (errors, Some(input)), status).await;
        }
        let mut edited = admin::update_app(
            state.store.as_ref(),
            state.clock.now(),
            &state.redirect_policy,
            &admin.actor(),
            &app.client_id,
            change,
        )
        .await;
        if edited.is_ok() && code_app {
            // An empty box removes the back-channel logout URI.
            let backchannel = BackchannelEdit {
                uri: Some(input.backchannel_logout_uri.clone()),
                session_required: None,
            };
            if let Err(e) = admin::set_backchannel_logout(
                state.store.as_ref(),
                state.clock.now(),
                &state.redirect_policy,
                &admin.actor(),
                &app.client_id,
                backchannel,
            )
            .await
            {
                edited = Err(e);
            }
        }
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
