//! One user's page (`GET /console/users/{id}`): who they are and the form that
//! changes their profile, the OpenID Connect claims apps may read
//! (`POST /console/users/{id}/profile`). A refused change is shown again with
//! what the admin typed and the reason beside the field.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, ProfileEdit};
use gatehouse_core::form::Form;
use gatehouse_core::model::{PERM_USERS_MANAGE, User};

use super::owned_user;
use crate::client_addr::ClientAddr;
use crate::console::auth::{self, Admin};
use crate::console::forms::{self, Errors, Shown};
use crate::console::view::{Nav, when};
use crate::console::{Step, admin_failure, render, see_other};
use crate::state::AppState;

/// The profile form's values: the user's, or what the admin typed.
struct ProfileForm {
    name: String,
    given_name: String,
    family_name: String,
    locale: String,
    zoneinfo: String,
    email_verified: bool,
}

impl ProfileForm {
    fn of(u: &User) -> Self {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            name: s(&u.name),
            given_name: s(&u.profile.given_name),
            family_name: s(&u.profile.family_name),
            locale: s(&u.profile.locale),
            zoneinfo: s(&u.profile.zoneinfo),
            email_verified: u.profile.email_verified,
        }
    }

    fn posted(form: &Form) -> Self {
        Self {
            name: forms::text(form, "name"),
            given_name: forms::text(form, "given_name"),
            family_name: forms::text(form, "family_name"),
            locale: forms::text(form, "locale"),
            zoneinfo: forms::text(form, "zoneinfo"),
            email_verified: form.get("email_verified").is_some(),
        }
    }

    /// Every field is on the form: a blank one clears the claim.
    fn edit(&self) -> ProfileEdit {
        ProfileEdit {
            name: Some(Some(self.name.clone())),
            given_name: Some(Some(self.given_name.clone())),
            family_name: Some(Some(self.family_name.clone())),
            locale: Some(Some(self.locale.clone())),
            zoneinfo: Some(Some(self.zoneinfo.clone())),
            email_verified: Some(self.email_verified),
        }
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    nav: Nav,
    notice: Option<&'static str>,
    id: String,
    email: String,
    role: String,
    status: &'static str,
    created: String,
    updated: String,
    form: ProfileForm,
    errors: Errors,
    /// Invited but not accepted yet: the page offers to resend.
    awaiting_invitation: bool,
}

const FIELDS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "locale",
    "zoneinfo",
    "email_verified",
];

fn page(
    admin: Admin,
    user: &User,
    notice: Option<&'static str>,
    form: ProfileForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let page = UserPage {
        nav: admin.nav("users"),
        notice,
        id: user.id.clone(),
        email: user.email.clone(),
        role: user.role.clone(),
        status: user.status.as_str(),
        created: when(user.created_at),
        updated: when(user.profile.updated_at),
        form,
        errors,
        awaiting_invitation: gatehouse_core::admin::refuse_resend(user).is_none(),
    };
    admin.respond(render(status, &page))
}

#[derive(serde::Deserialize)]
pub(super) struct Done {
    done: Option<String>,
}

/// `GET /console/users/{id}`.
pub(super) async fn show(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(user_id): Path<String>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let user = owned_user(&state, &admin, &user_id).await?;
        let notice = match done.done.as_deref() {
            Some("profile") => Some("Profile saved."),
            Some("reinvited") => Some("Invitation sent again; the earlier link no longer works."),
            _ => None,
        };
        let form = ProfileForm::of(&user);
        Step::Ok(page(
            admin,
            &user,
            notice,
            form,
            Errors::default(),
            StatusCode::OK,
        ))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

/// `POST /console/users/{id}/profile`: every profile field (blank clears).
pub(super) async fn set_profile(
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
        let posted = ProfileForm::posted(&form);
        let changed = admin::update_user_profile(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &user.id,
            &posted.edit(),
        )
        .await;
        match changed {
            Ok(u) => Ok(admin.respond(see_other(&format!("/console/users/{}?done=profile", u.id)))),
            Err(e) => match forms::show(e, "") {
                Shown::OnForm(errors, status) => Ok(page(
                    admin,
                    &user,
                    None,
                    posted,
                    errors.known_only(FIELDS),
                    status,
                )),
                Shown::Elsewhere(e) => Err(admin_failure(e)),
            },
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
