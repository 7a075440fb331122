//! The person's own account page, `/account`: their name and profile claims,
//! a password change, a link to two-step verification and passkeys
//! (`/account/security`, [`crate::account`]), the apps they authorized with a
//! button to revoke each, and their sessions with "sign out everywhere".
//!
//! Only a signed-in person reaches it (someone past the password but not yet
//! past a required second factor is sent to enrol instead). Every form is
//! CSRF-checked like the sign-in forms ([`signin::page_form`]) and answers
//! with a redirect to the page and a notice (`?done=`), or the page again with
//! what to fix. The rules live in `gatehouse_core::account`; this module maps.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod apps;
mod password;
mod profile;
mod sessions;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::account::MAX_SESSIONS_SHOWN;
use gatehouse_core::form::Form;
use gatehouse_core::model::{Session, User, UserStatus};
use gatehouse_core::ports::StoreError;
use serde::Deserialize;

use crate::console::view::when;
use crate::pages;
use crate::session;
use crate::signin;
use crate::state::AppState;

pub const PATH: &str = "/account";
const PROFILE: &str = "/account/profile";
const PASSWORD: &str = "/account/password";
const REVOKE_APP: &str = "/account/apps/revoke";
const END_SESSIONS: &str = "/account/sessions/end";
const END_SESSION: &str = "/account/sessions/end-one";

/// Audit actions of a person changing their own account.
pub const PROFILE_UPDATED: &str = "account.profile_updated";
pub const PASSWORD_CHANGED: &str = "account.password_changed";
pub const APP_REVOKED: &str = "account.app_revoked";
pub const SIGNED_OUT_EVERYWHERE: &str = "account.signed_out_everywhere";
pub const SESSION_ENDED: &str = "account.session_ended";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show))
        .route(PROFILE, post(profile::submit))
        .route(PASSWORD, post(password::submit))
        .route(REVOKE_APP, post(apps::revoke))
        .route(END_SESSIONS, post(sessions::end_all))
        .route(END_SESSION, post(sessions::end_one))
}

type Step<T> = Result<T, Response>;

/// The signed-in person and their session.
struct Me {
    user: User,
    session: Session,
}

async fn me(state: &AppState, jar: &CookieJar) -> Step<Me> {
    let signed_out = || {
        pages::message(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "Sign in to see your account.",
            Some(("/console".to_owned(), "Sign in".to_owned())),
        )
    };
    let Some(session) = session::current(state, jar)
        .await
        .map_err(pages::store_failure)?
    else {
        return Err(signed_out());
    };
    match state.store.user_by_id(&session.user_id).await {
        Ok(user) if user.status == UserStatus::Active => Ok(Me { user, session }),
        Ok(_) | Err(StoreError::NotFound) => Err(signed_out()),
        Err(e) => Err(pages::store_failure(e)),
    }
}

/// A posted form of this page (bounded, CSRF-checked) and who posted it.
async fn posted(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<(Form, Me)> {
    let form = signin::page_form(state, jar, headers, body)?;
    let me = me(state, jar).await?;
    Ok((form, me))
}

/// One authorized app as the page lists it.
pub struct AppLine {
    pub client_id: String,
    pub name: String,
    pub scopes: String,
    pub since: String,
}

/// One session as the page lists it.
pub struct SessionLine {
    /// The public session id (the form that ends it names it).
    pub sid: String,
    /// "Chrome on Linux", or the stored agent, or "Unknown browser".
    pub browser: String,
    /// The stored (bounded) `User-Agent`, for the title.
    pub user_agent: String,
    pub address: String,
    pub started: String,
    pub last_seen: String,
    pub expires: String,
    pub methods: String,
    pub this_browser: bool,
}

impl SessionLine {
    fn of(s: Session, mine: &Session) -> Self {
        let user_agent = s.user_agent.unwrap_or_default();
        let browser = gatehouse_core::account::describe_user_agent(&user_agent)
            .or_else(|| Some(user_agent.clone()).filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "Unknown browser".to_owned());
        SessionLine {
            this_browser: s.id_digest == mine.id_digest,
            sid: s.sid,
            browser,
            user_agent,
            address: s.address.unwrap_or_else(|| "unknown address".to_owned()),
            started: when(s.auth_time),
            last_seen: when(s.last_seen_at.unwrap_or(s.auth_time)),
            expires: when(s.expires_at),
            methods: methods(&s.amr),
        }
    }
}

/// The profile form's values (as stored, or as typed when refused).
#[derive(Default)]
pub struct ProfileFields {
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub locale: String,
    pub zoneinfo: String,
}

impl ProfileFields {
    fn of(user: &User) -> Self {
        let v = |o: &Option<String>| o.clone().unwrap_or_default();
        ProfileFields {
            name: v(&user.name),
            given_name: v(&user.profile.given_name),
            family_name: v(&user.profile.family_name),
            locale: v(&user.profile.locale),
            zoneinfo: v(&user.profile.zoneinfo),
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub email: String,
    pub email_verified: bool,
    pub csrf: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// Which form the error is about: "profile", "password", "apps", "sessions".
    pub error_in: &'static str,
    pub profile: ProfileFields,
    pub apps: Vec<AppLine>,
    pub sessions: Vec<SessionLine>,
    pub max_name: usize,
    pub max_locale: usize,
    pub max_zoneinfo: usize,
}

/// What went wrong in one form, shown beside it.
struct Problem {
    status: StatusCode,
    form: &'static str,
    message: String,
    /// The profile as typed (the profile form only).
    typed: Option<ProfileFields>,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "profile" => "Your profile is saved.",
        "password" => {
            "Your password is changed. Your other sessions are signed out; this one stays."
        }
        "revoked" => "The app's access is revoked: it must ask you again to use your account.",
        "session_ended" => "That session is signed out, and the apps it signed into were told.",
        _ => return None,
    })
}

/// `GET /account`
async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<DoneQuery>,
) -> Response {
    let shown = async {
        let me = me(&state, &jar).await?;
        page(&state, jar, &me, notice(q.done.as_deref()), None).await
    };
    match shown.await {
        Ok(r) | Err(r) => r,
    }
}

async fn page(
    state: &AppState,
    jar: CookieJar,
    me: &Me,
    notice: Option<&'static str>,
    problem: Option<Problem>,
) -> Step<Response> {
    let now = state.clock.now();
    let apps = state
        .store
        .authorized_apps(&me.user.id, now)
        .await
        .map_err(pages::store_failure)?
        .into_iter()
        .map(|a| AppLine {
            client_id: a.client_id,
            name: a.name,
            scopes: a.scopes.join(" "),
            since: when(a.since),
        })
        .collect();
    let sessions = state
        .store
        .user_sessions(&me.user.id, now, MAX_SESSIONS_SHOWN)
        .await
        .map_err(pages::store_failure)?
        .into_iter()
        .map(|s| SessionLine::of(s, &me.session))
        .collect();
    let (csrf, jar) = session::csrf_token(state, jar);
    let (status, error, error_in, typed) = match problem {
        Some(p) => (p.status, Some(p.message), p.form, p.typed),
        None => (StatusCode::OK, None, "", None),
    };
    let page = AccountPage {
        email: me.user.email.clone(),
        email_verified: me.user.profile.email_verified,
        csrf,
        notice,
        error,
        error_in,
        profile: typed.unwrap_or_else(|| ProfileFields::of(&me.user)),
        apps,
        sessions,
        max_name: gatehouse_core::admin::MAX_NAME,
        max_locale: gatehouse_core::admin::MAX_LOCALE,
        max_zoneinfo: gatehouse_core::admin::MAX_ZONEINFO,
    };
    Ok((jar, pages::render(status, &page)).into_response())
}

/// RFC 8176 methods in words.
fn methods(amr: &[String]) -> String {
    let words: Vec<&str> = amr
        .iter()
        .filter_map(|m| match m.as_str() {
            "pwd" => Some("password"),
            "otp" => Some("one-time code"),
            "hwk" | "swk" => Some("passkey"),
            _ => None,
        })
        .collect();
    if words.is_empty() {
        "password".to_owned()
    } else {
        words.join(" + ")
    }
}

/// After a change: back to the page with a notice (post/redirect/get).
fn done(jar: CookieJar, what: &str) -> Response {
    (jar, Redirect::to(&format!("{PATH}?done={what}"))).into_response()
}
