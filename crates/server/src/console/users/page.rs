//! The users page (`GET /console/users`): every user with their role-and-groups
//! form, and the form to create one; re-rendered with errors by those forms.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::model::{PERM_USERS_MANAGE, UserStatus};
use serde::Deserialize;

use crate::client_addr::ClientAddr;
use crate::console::apps::{Choice, org_roles, org_users};
use crate::console::auth::{self, Admin};
use crate::console::forms::Errors;
use crate::console::view::{Nav, when};
use crate::console::{Step, render};
use crate::state::AppState;

struct UserRow {
    id: String,
    email: String,
    name: String,
    status: &'static str,
    active: bool,
    created: String,
    /// The role-and-groups form of this row.
    access: AccessForm,
}

/// A row's role-and-groups form: the user's values, or what the admin typed
/// with the reason it was refused.
struct AccessForm {
    roles: Vec<Choice>,
    groups: String,
    error: Option<String>,
}

/// A refused role-and-groups change, to show again on its row.
pub(super) struct Refused {
    pub(super) user_id: String,
    pub(super) role: String,
    pub(super) groups: String,
    pub(super) error: String,
}

#[derive(Default)]
pub(super) struct UserForm {
    pub(super) email: String,
    pub(super) name: String,
    pub(super) role: String,
    pub(super) groups: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    notice: Option<&'static str>,
    users: Vec<UserRow>,
    form: UserForm,
    errors: Errors,
    roles: Vec<Choice>,
    /// The organization requires a second factor of everyone.
    require_mfa: bool,
}

#[derive(Deserialize)]
pub(super) struct Done {
    done: Option<String>,
}

fn role_choices(roles: &[String], chosen: &str) -> Vec<Choice> {
    roles
        .iter()
        .map(|r| Choice {
            selected: r == chosen,
            label: r.clone(),
            value: r.clone(),
        })
        .collect()
}

pub(super) async fn users_page(
    state: &AppState,
    admin: Admin,
    notice: Option<&'static str>,
    (form, errors): (UserForm, Errors),
    refused: Option<Refused>,
    status: StatusCode,
) -> Step<Response> {
    let users = org_users(state, &admin).await?;
    let role_names = org_roles(state, &admin).await?;
    let chosen = if form.role.is_empty() {
        "member"
    } else {
        form.role.as_str()
    };
    let roles = role_choices(&role_names, chosen);
    let users = users
        .into_iter()
        .map(|u| {
            let access = match &refused {
                Some(r) if r.user_id == u.id => AccessForm {
                    roles: role_choices(&role_names, &r.role),
                    groups: r.groups.clone(),
                    error: Some(r.error.clone()),
                },
                _ => AccessForm {
                    roles: role_choices(&role_names, &u.role),
                    groups: u.groups.join(", "),
                    error: None,
                },
            };
            UserRow {
                id: u.id,
                email: u.email,
                name: u.name.unwrap_or_default(),
                status: u.status.as_str(),
                active: u.status == UserStatus::Active,
                created: when(u.created_at),
                access,
            }
        })
        .collect();
    let require_mfa = state
        .store
        .org_requires_mfa(&admin.org.id)
        .await
        .map_err(crate::pages::store_failure)?;
    let page = UsersPage {
        require_mfa,
        nav: admin.nav("users"),
        notice,
        users,
        form,
        errors,
        roles,
    };
    Ok(admin.respond(render(status, &page)))
}

pub(super) async fn list(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let notice = match done.done.as_deref() {
            Some("created") => Some("User created."),
            Some("invited") => Some(
                "Invitation sent: the link in it sets their password, works once, and expires in 72 hours.",
            ),
            Some("status") => Some("User status changed."),
            Some("access") => Some("Role and groups changed; the user's new tokens carry them."),
            Some("mfa") => {
                Some("Sign-in policy changed: it applies from each person's next sign-in.")
            }
            _ => None,
        };
        users_page(
            &state,
            admin,
            notice,
            (UserForm::default(), Errors::default()),
            None,
            StatusCode::OK,
        )
        .await
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
