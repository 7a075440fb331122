//! Who is using the console: sign-in (the same page and steps as the authorization
//! endpoint's: a password through [`crate::signin`], the organization's identity
//! provider through [`crate::upstream`], a passkey alone through
//! [`crate::passkey`]), sign-out, and the permission check each page makes. A
//! page needs `apps:manage` or `users:manage`; without it, 403.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::form::Form;
use gatehouse_core::model::{Org, PERM_APPS_MANAGE, PERM_USERS_MANAGE, User, UserStatus};
use gatehouse_core::ports::StoreError;
use gatehouse_core::upstream::Continuation;

use super::{Step, see_other, view::Nav};
use crate::client_addr::ClientAddr;
use crate::continuation::{self, How};
use crate::pages::{self, LoginPage};
use crate::session;
use crate::signin::{self, Attempt};
use crate::state::AppState;
use crate::upstream::NotChosen;

/// The signed-in admin, with what their role allows.
pub struct Admin {
    /// The session's public id (what one-time secrets are held under).
    pub sid: String,
    pub user: User,
    pub org: Org,
    pub permissions: Vec<String>,
    /// The client's address, for the audit log.
    pub address: String,
    pub csrf: String,
    /// Carries a freshly set CSRF cookie, when there was none.
    pub jar: CookieJar,
}

impl Admin {
    /// Who the audit log says made a change: this user, from this address,
    /// confined to their organization.
    pub fn actor(&self) -> gatehouse_core::model::Actor {
        gatehouse_core::model::Actor {
            kind: gatehouse_core::model::ActorKind::User,
            id: self.user.id.clone(),
            name: self.user.email.clone(),
            org_id: Some(self.org.id.clone()),
            address: self.address.clone(),
        }
    }

    pub fn may(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    pub fn nav(&self, section: &'static str) -> Nav {
        Nav {
            org: self.org.name.clone(),
            email: self.user.email.clone(),
            csrf: self.csrf.clone(),
            section,
            can_apps: self.may(PERM_APPS_MANAGE),
            can_users: self.may(PERM_USERS_MANAGE),
        }
    }

    /// `response` with the cookies this request set.
    pub fn respond(self, response: Response) -> Response {
        (self.jar, response).into_response()
    }
}

/// The signed-in user if their role carries `permission`; otherwise the sign-in
/// page's redirect, or a 403 page.
pub async fn require(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    permission: &'static str,
) -> Step<Admin> {
    let fail = pages::store_failure;
    let Some(s) = session::current(state, &jar).await.map_err(fail)? else {
        return Err(see_other("/console"));
    };
    let user = match state.store.user_by_id(&s.user_id).await {
        Ok(u) if u.status == UserStatus::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            let jar = session::end(state, jar).await.map_err(fail)?;
            return Err((jar, see_other("/console")).into_response());
        }
        Err(e) => return Err(fail(e)),
    };
    let org = state.store.org_by_id(&user.org_id).await.map_err(fail)?;
    let permissions = match state.store.role(&user.org_id, &user.role).await {
        Ok(r) => r.permissions,
        Err(StoreError::NotFound) => Vec::new(),
        Err(e) => return Err(fail(e)),
    };
    let (csrf, jar) = session::csrf_token(state, jar);
    let admin = Admin {
        sid: s.sid,
        user,
        org,
        permissions,
        address: peer.to_string(),
        csrf,
        jar,
    };
    if !admin.may(permission) {
        return Err(forbidden(admin, permission));
    }
    Ok(admin)
}

/// [`require`] for a posted form: signed in, permitted, and CSRF-checked.
pub async fn require_form(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
    permission: &'static str,
) -> Step<(Admin, Form)> {
    let admin = require(state, peer, jar, permission).await?;
    let form = signin::page_form(state, &admin.jar, headers, body)?;
    Ok((admin, form))
}

fn forbidden(admin: Admin, permission: &str) -> Response {
    let page = pages::message(
        StatusCode::FORBIDDEN,
        "You can't use this page",
        &format!(
            "Your account ({}) has the role `{}`, which does not carry the `{permission}` permission. Ask an administrator of {}.",
            admin.user.email, admin.user.role, admin.org.name
        ),
        None,
    );
    admin.respond(page)
}

/// `GET /console`: the sign-in page, the organization's home for app admins,
/// or on to the user pages.
pub async fn home(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
) -> Response {
    let signed_in = match session::current(&state, &jar).await {
        Ok(s) => s.is_some(),
        Err(e) => return pages::store_failure(e),
    };
    if !signed_in {
        return login_page(&state, jar, StatusCode::OK, None, "", None);
    }
    match require(&state, peer, jar, PERM_APPS_MANAGE).await {
        Ok(admin) => super::home::page(&state, admin).await.unwrap_or_else(|r| r),
        Err(r) if r.status() == StatusCode::FORBIDDEN => {
            // No app rights: the user pages, if those are allowed.
            see_other("/console/users")
        }
        Err(r) => r,
    }
}

/// Where the console's "Sign in with a passkey" posts.
pub const PASSKEY_SIGNIN: &str = "/console/login/passkey";

fn login_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    organization: Option<&str>,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let page = LoginPage {
        app_name: Some("the Gatehouse console"),
        error,
        csrf: &csrf,
        request: "",
        email,
        action: "/console/login",
        organization,
        passkey: state.webauthn.is_some().then_some(PASSKEY_SIGNIN),
        // No app names the organization here: its provider is found from the
        // address's domain (and the organization field when several claim it).
        sso: true,
    };
    (
        jar,
        pages::render_with_csp(status, &page, crate::passkey::PAGE_CSP),
    )
        .into_response()
}

/// `POST /console/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    signin::PageForm { form, jar }: signin::PageForm,
) -> Response {
    let email = signin::normalized_email(&form);
    let password = form.get("password").unwrap_or("");
    // Emails are unique per organization: the field is shown once the password
    // matched accounts of several (see `signin`), or several organizations'
    // identity providers claim the address's domain.
    let org_slug = signin::org_slug(&form);
    if form.get("sso").is_some() {
        return match crate::upstream::provider_for(&state, &email, org_slug).await {
            Ok(Ok(p)) => {
                let then = Continuation::Console;
                crate::upstream::begin(&state, peer, jar, &p, &email, then).await
            }
            Ok(Err(why)) => {
                let ask = (why == NotChosen::ChooseOrganization || org_slug.is_some())
                    .then(|| org_slug.unwrap_or(""));
                login_page(&state, jar, why.status(), Some(why.message()), &email, ask)
            }
            Err(e) => pages::store_failure(e),
        };
    }
    let within = signin::Within::AnyOrg { org_slug };
    match signin::attempt(&state, peer, jar, &email, password, within).await {
        Ok(Attempt::SignedIn { jar, .. }) => (jar, see_other("/console")).into_response(),
        Ok(Attempt::SecondFactor { user, need, jar }) => {
            let first = crate::second_factor::First::Password;
            crate::second_factor::lead_on(&state, jar, &user, need, "/console", first)
        }
        Ok(Attempt::Refused { why, jar }) => {
            let ask = (why == signin::Refusal::ChooseOrganization || org_slug.is_some())
                .then(|| org_slug.unwrap_or(""));
            let mut r = login_page(&state, jar, why.status(), Some(&why.message()), &email, ask);
            if let Some(secs) = why.retry_after() {
                r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            r
        }
        Err(e) => pages::store_failure(e),
    }
}

/// `POST /console/login/passkey`: a passkey alone (any organization: the
/// passkey names its person), then the console.
pub async fn passkey_login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    signin::PageForm { form, jar }: signin::PageForm,
) -> Response {
    let credential = form.get("credential").unwrap_or("");
    match crate::passkey::sign_in(&state, peer, jar, credential, None).await {
        Ok((Ok(found), jar)) => {
            let then = Continuation::Console;
            continuation::signed_in(&state, peer, jar, &found.user, How::Passkey, &then).await
        }
        Ok((Err(why), jar)) => {
            let r = login_page(&state, jar, why.status(), Some(&why.message()), "", None);
            continuation::with_retry_after(r, why.retry_after())
        }
        Err(e) => pages::store_failure(e),
    }
}

/// `POST /console/logout`: ends the session (for the authorization endpoint too).
pub async fn logout(
    State(state): State<AppState>,
    signin::PageForm { jar, .. }: signin::PageForm,
) -> Response {
    match session::end(&state, jar).await {
        Ok(jar) => (jar, see_other("/console")).into_response(),
        Err(e) => pages::store_failure(e),
    }
}
