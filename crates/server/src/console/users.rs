//! Users, roles and groups of the organization: list, create, deactivate and
//! activate, change a user's role and groups; the permissions each role carries.
//! Needs `users:manage`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, NewUser};
use gatehouse_core::model::{PERM_USERS_MANAGE, UserStatus};
use serde::Deserialize;

use super::apps::{Choice, org_roles, org_users};
use super::auth::{self, Admin};
use super::forms::{self, Errors, Shown};
use super::view::{Nav, when};
use super::{Step, admin_failure, not_found, render, see_other};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(list).post(create))
        .route("/console/users/{user_id}/status", post(set_status))
        .route("/console/users/{user_id}/access", post(set_access))
        .route("/console/roles", get(roles))
}

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
struct Refused {
    user_id: String,
    role: String,
    groups: String,
    error: String,
}

#[derive(Default)]
struct UserForm {
    email: String,
    name: String,
    role: String,
    groups: String,
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
}

#[derive(Deserialize)]
struct Done {
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

async fn users_page(
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
    let page = UsersPage {
        nav: admin.nav("users"),
        notice,
        users,
        form,
        errors,
        roles,
    };
    Ok(admin.respond(render(status, &page)))
}

async fn list(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let notice = match done.done.as_deref() {
            Some("created") => Some("User created."),
            Some("status") => Some("User status changed."),
            Some("access") => Some("Role and groups changed; the user's new tokens carry them."),
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

const USER_FIELDS: &[&str] = &["email", "name", "role", "groups", "password"];

async fn create(
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

/// `POST /console/users/{id}/status`: deactivate (ending the user's sessions and
/// tokens) or activate.
async fn set_status(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let user = owned_user(&state, &admin, &user_id).await?;
        let Some(status) = form.get("status").and_then(UserStatus::parse) else {
            return Err(pages::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Please check the form",
                "status: must be active or deactivated",
                None,
            ));
        };
        admin::set_user_status(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &user.id,
            status,
        )
        .await
        .map_err(admin_failure)?;
        Ok(admin.respond(see_other("/console/users?done=status")))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

/// The user named in the path, if they are in this organization; otherwise 404.
async fn owned_user(
    state: &AppState,
    admin: &Admin,
    user_id: &str,
) -> Step<gatehouse_core::model::User> {
    if user_id.len() > 128 {
        return Err(not_found());
    }
    match admin::user(state.store.as_ref(), &admin.actor(), user_id).await {
        Ok(u) if u.org_id == admin.org.id => Ok(u),
        Ok(_) => Err(not_found()),
        Err(e) => Err(admin_failure(e)),
    }
}

/// `POST /console/users/{id}/access`: a new role and groups (comma-separated).
/// Tokens already issued keep the old ones until they expire.
async fn set_access(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let user = owned_user(&state, &admin, &user_id).await?;
        let role = forms::text(&form, "role");
        let groups = forms::text(&form, "groups");
        let changed = admin::set_user_access(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &user.id,
            &role,
            forms::names(&groups),
        )
        .await;
        match changed {
            Ok(_) => Ok(admin.respond(see_other("/console/users?done=access"))),
            Err(e) => match forms::show(e, "") {
                Shown::OnForm(errors, status) => {
                    let error = errors
                        .get("role")
                        .map(|m| format!("role: {m}"))
                        .or_else(|| errors.get("groups").map(|m| format!("groups: {m}")))
                        .or(errors.general)
                        .unwrap_or_else(|| "This change was refused.".to_owned());
                    let refused = Refused {
                        user_id: user.id,
                        role,
                        groups,
                        error,
                    };
                    let blank = (UserForm::default(), Errors::default());
                    users_page(&state, admin, None, blank, Some(refused), status).await
                }
                Shown::Elsewhere(e) => Err(admin_failure(e)),
            },
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage {
    nav: Nav,
    /// (role, its permissions)
    roles: Vec<(String, String)>,
    groups: Vec<String>,
}

async fn roles(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let roles = admin::roles(state.store.as_ref(), &admin.actor(), &admin.org)
            .await
            .map_err(admin_failure)?
            .into_iter()
            .map(|r| {
                let perms = if r.permissions.is_empty() {
                    "(none)".to_owned()
                } else {
                    r.permissions.join(", ")
                };
                (r.name, perms)
            })
            .collect();
        let groups = admin::groups(state.store.as_ref(), &admin.actor(), &admin.org)
            .await
            .map_err(admin_failure)?;
        let page = RolesPage {
            nav: admin.nav("roles"),
            roles,
            groups,
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
