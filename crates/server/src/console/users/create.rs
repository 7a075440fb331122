//! Creating a user (`POST /console/users`), and inviting them by e-mail
//! (the form's second button): the invitation link sets their password.

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
use axum::http::StatusCode;
use gatehouse_core::model::User;

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
        let invite = form.get("invite") == Some("1");
        if invite && form.get("password").is_some_and(|p| !p.is_empty()) {
            let errors = crate::console::forms::Errors::default().field(
                "password",
                "leave it empty when inviting: the person chooses it through the link",
            );
            return users_page(
                &state,
                admin,
                None,
                (input, errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
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
                password: if invite { None } else { form.get("password") },
                profile: Default::default(),
            },
        )
        .await;
        match made {
            Ok(user) if invite => invited(&state, admin, &user).await,
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

/// Sends the invitation (or, without SMTP, shows its link once) and goes on.
async fn invited(
    state: &AppState,
    mut admin: auth::Admin,
    user: &User,
) -> Result<Response, Response> {
    let made = crate::password::links::invite(state, &admin.actor(), &admin.org, user)
        .await
        .map_err(crate::pages::store_failure)?;
    match made.link {
        None => Ok(admin.respond(see_other("/console/users?done=invited"))),
        Some(link) => {
            let jar = super::invitation::hold(
                state,
                admin.jar.clone(),
                &admin.sid,
                &user.id,
                &link,
                made.expires_at,
            );
            admin.jar = jar;
            Ok(admin.respond(see_other(&super::invitation::page_path(&user.id))))
        }
    }
}
