//! `GET/POST /password/set?token=…`: the page an invitation or reset link
//! opens. Opening it changes nothing (mail scanners open links); the form sets
//! the password, under the same rules as everywhere else, and uses the link up.
//! It signs no one in: this browser's session ends with every other one of the
//! person's, and they sign in afresh (second factor included).
//!
//! The token reaches the server in the query and the form body, never in a
//! path (the request log records paths) and never in a log line.

// A step's early exit is the finished response (page); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::mail_link::{self, LinkPurpose, MailLink};
use gatehouse_core::model::{User, UserStatus};
use gatehouse_core::password;
use gatehouse_core::ports::StoreError;
use serde::Deserialize;

use super::links;
use crate::client_addr::ClientAddr;
use crate::pages::{self, SetPasswordPage};
use crate::security_events;
use crate::session;
use crate::signin;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// A live link and its person.
struct Live {
    digest: String,
    link: MailLink,
    user: User,
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<TokenQuery>,
) -> Response {
    match live(&state, q.token.as_deref().unwrap_or("")).await {
        Ok(Some(l)) => form(
            &state,
            jar,
            &l,
            q.token.as_deref().unwrap_or(""),
            StatusCode::OK,
            None,
        )
        .await
        .unwrap_or_else(|r| r),
        Ok(None) => dead_link(),
        Err(e) => pages::store_failure(e),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    signin::PageForm { form: form_in, jar }: signin::PageForm,
) -> Response {
    if let Some(wait) = state.reset_limiter.address_blocked(ip) {
        return throttled(wait.0);
    }
    let token = form_in.get("token").unwrap_or("");
    let live = match live(&state, token).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            // Tokens cannot be guessed; still, an address that keeps trying slows down.
            state
                .reset_limiter
                .record_failure(ip, "password-link")
                .await;
            return dead_link();
        }
        Err(e) => return pages::store_failure(e),
    };
    let given = form_in.get("password").unwrap_or("");
    if given != form_in.get("confirm").unwrap_or("") {
        let why = "The two passwords are not the same. Type the new password twice.";
        return refill(&state, jar, &live, token, why).await;
    }
    let hash = match hash_off_thread(&state, given).await {
        Ok(h) => h,
        Err(why) => return refill(&state, jar, &live, token, &why).await,
    };
    match use_link(&state, &live, &hash, ip).await {
        Ok(true) => done(&state, jar, live.link.purpose).await,
        Ok(false) => dead_link(),
        Err(e) => pages::store_failure(e),
    }
}

/// The link and person behind `token`, if the link is unused, unexpired and
/// its person active.
async fn live(state: &AppState, token: &str) -> Result<Option<Live>, StoreError> {
    let Some(digest) = mail_link::digest_of(token) else {
        return Ok(None);
    };
    let link = match state.store.mail_link(&digest, state.clock.now()).await {
        Ok(l) => l,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    match state.store.user_by_id(&link.user_id).await {
        Ok(user) if user.status == UserStatus::Active => Ok(Some(Live { digest, link, user })),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn form(
    state: &AppState,
    jar: CookieJar,
    live: &Live,
    token: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, Response> {
    let need = crate::second_factor::need(state, &live.user)
        .await
        .map_err(pages::store_failure)?;
    let (csrf, jar) = session::csrf_token(state, jar);
    let heading = match live.link.purpose {
        LinkPurpose::Invite => "Choose your password",
        LinkPurpose::Reset => "Choose a new password",
    };
    let page = SetPasswordPage {
        heading,
        email: &live.user.email,
        token,
        csrf: &csrf,
        error,
        has_second_factor: need.enrolled,
    };
    Ok((jar, pages::render(status, &page)).into_response())
}

async fn refill(state: &AppState, jar: CookieJar, live: &Live, token: &str, why: &str) -> Response {
    form(
        state,
        jar,
        live,
        token,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(why),
    )
    .await
    .unwrap_or_else(|r| r)
}

/// Argon2 off the async workers, bounded like sign-in checks.
async fn hash_off_thread(state: &AppState, given: &str) -> Result<String, String> {
    let Ok(_permit) = state.password_checks.acquire().await else {
        return Err("The server is shutting down. Try again in a moment.".into());
    };
    let given = given.to_owned();
    match tokio::task::spawn_blocking(move || password::hash(&given)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(password::PasswordError::Hash)) | Err(_) => {
            Err("The password could not be set. Try again.".into())
        }
        Ok(Err(e)) => Err(format!("The password is not accepted: {e}.")),
    }
}

/// Sets the password; `false` when the link was used (or expired) meanwhile.
async fn use_link(
    state: &AppState,
    live: &Live,
    hash: &str,
    ip: IpAddr,
) -> Result<bool, StoreError> {
    let (action, detail) = match live.link.purpose {
        LinkPurpose::Invite => (
            links::INVITATION_USED,
            "set their first password with an invitation link",
        ),
        LinkPurpose::Reset => (
            links::RESET_USED,
            "set a new password with a reset link; their sessions and app authorizations ended",
        ),
    };
    let audit = security_events::event(state, &live.user, ip, action, detail);
    let now = state.clock.now();
    match state
        .store
        .use_mail_link(&live.digest, hash, now, &audit)
        .await
    {
        Ok(ended) => {
            tracing::info!(user_id = %live.user.id, sessions = ended.sessions_ended, grants = ended.grants_revoked, "password set with a link");
            // Their apps hear of the ended sessions now (back-channel logout).
            state.backchannel_wake.notify_one();
            Ok(true)
        }
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn done(state: &AppState, jar: CookieJar, purpose: LinkPurpose) -> Response {
    // This browser's session (if any) ended with the others: drop its cookie.
    let jar = match session::end(state, jar).await {
        Ok(j) => j,
        Err(e) => return pages::store_failure(e),
    };
    let message = match purpose {
        LinkPurpose::Invite => "Your password is set. Sign in with your email address and it.",
        LinkPurpose::Reset => {
            "Your password is changed, and every sign-in made with the old one has ended. Sign in with the new password."
        }
    };
    let page = pages::message(
        StatusCode::OK,
        "Password set",
        message,
        Some(("/console".into(), "Sign in".into())),
    );
    (jar, page).into_response()
}

fn dead_link() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "This link does not work any more",
        "Links work once, for a limited time (reset links 30 minutes, invitations 72 hours). Ask for a new reset link, or ask your administrator to invite you again.",
        Some((super::FORGOT_PATH.into(), "Ask for a new link".into())),
    )
}

fn throttled(secs: u64) -> Response {
    let mut r = pages::message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!("Try again in {secs} seconds."),
        None,
    );
    r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    r
}
