//! `GET/POST /password/forgot`: the form that asks for a reset link. Every
//! well-formed request gets the same page, at once, whether or not the address
//! has an account ([`super::links::request_reset`] does the rest afterwards).
//! Requests are throttled per address typed and per client address (leaky
//! buckets that drain: a stranger can slow an account's resets for minutes,
//! never stop them for good).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::limits::MAX_EMAIL;

use super::links;
use crate::client_addr::ClientAddr;
use crate::pages::{self, ForgotPasswordPage};
use crate::session;
use crate::signin;
use crate::state::AppState;

/// Reset requests per address typed, and per client address, within [`WINDOW`].
pub const PER_EMAIL: u32 = 5;
pub const PER_ADDRESS: u32 = 20;
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Response {
    page(&state, jar, StatusCode::OK, None)
}

fn page(state: &AppState, jar: CookieJar, status: StatusCode, error: Option<&str>) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let page = ForgotPasswordPage { csrf: &csrf, error };
    (jar, pages::render(status, &page)).into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    signin::PageForm { form, jar }: signin::PageForm,
) -> Response {
    let email = signin::normalized_email(&form);
    if email.is_empty() || email.len() > MAX_EMAIL || !email.contains('@') {
        let why = "Enter the email address you sign in with.";
        return page(&state, jar, StatusCode::UNPROCESSABLE_ENTITY, Some(why));
    }
    let limiter = &state.reset_limiter;
    let blocked = limiter
        .flooded(ip)
        .or(limiter.address_blocked(ip))
        .or(limiter.key_blocked_anywhere(&email).await);
    if let Some(wait) = blocked {
        let why = format!(
            "Too many reset requests. Try again in {} seconds; a link sent earlier still works.",
            wait.0
        );
        let mut r = page(&state, jar, StatusCode::TOO_MANY_REQUESTS, Some(&why));
        r.headers_mut().insert(header::RETRY_AFTER, wait.0.into());
        return r;
    }
    // Every request counts, found or not, so the limits say nothing either.
    limiter.record_failure(ip, &email).await;
    links::request_reset(&state, email.clone(), ip);
    let message = format!(
        "If {email} belongs to an account, a link to choose a new password is on its way. It works once, for 30 minutes. Nothing after a few minutes? Look in your spam folder, or ask again."
    );
    (
        jar,
        pages::message(
            StatusCode::OK,
            "Check your email",
            &message,
            Some(("/console".into(), "Back to sign-in".into())),
        ),
    )
        .into_response()
}
