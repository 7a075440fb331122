//! Creating a user (`POST /console/users`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, NewUser};
use gatehouse_core::model::PERM_USERS_MANAGE;

use super::page::{UserForm, users_page};
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::forms::{self, Shown};
use crate::console::{admin_failure, see_other};
use crate::state::AppState;

const USER_FIELDS: &[&str] = &["email", "name", "role", "groups", "password"];

pub(super) async fn create(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let input = UserForm {
            email: forms::text(&form, "email"),
            name: forms::text(&form, "name"),
            role: forms::text(&form, "role"),
            groups: forms::text(&form, "groups"),
        };
        let made = admin::create_user(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            NewUser {
                org: &admin.org,
                email: &input.email,
                name: Some(input.name.as_str()).filter(|n| !n.is_empty()),
                role: &input.role,
                groups: forms::names(&input.groups),
                password: form.get("password"),
                profile: Default::default(),
            },
        )
        .await;
        match made {
            Ok(_) => Ok(admin.respond(see_other("/console/users?done=created"))),
            Err(e) => match forms::show(e, "") {
                Shown::OnForm(errors, status) => {
                    let errors = errors.known_only(USER_FIELDS);
                    users_page(&state, admin, None, (input, errors), None, status).await
                }
                Shown::Elsewhere(e) => Err(admin_failure(e)),
            },
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
