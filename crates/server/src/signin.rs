//! Signing in with email and password, shared by the authorization endpoint's
//! login page and the console: the CSRF-checked form, throttling, the Argon2
//! check off the async workers (against a dummy hash for unknown accounts), and
//! the session. It decides nothing about what the caller shows next; each caller
//! renders its own page from the [`Attempt`].
//!
//! Throttling must not let a stranger lock a person out. Failures are counted
//! per (account, address) and per address, and only those block (429, before
//! the password is checked): the address that guessed is refused, while the
//! account's owner, from an address that never failed, always gets in with the
//! right password. Failures against the account from everywhere only hold the
//! wrong-password answer back, by a delay capped at a few seconds.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::form::Form;
use gatehouse_core::limits::MAX_EMAIL;
use gatehouse_core::model::{Session, User, UserStatus};
use gatehouse_core::password;
use gatehouse_core::ports::StoreError;

use crate::pages;
use crate::security_events;
use crate::session;
use crate::state::AppState;

/// How a sign-in ended.
pub enum Attempt {
    SignedIn {
        user: Box<User>,
        session: Session,
        jar: CookieJar,
    },
    Refused {
        why: Refusal,
        jar: CookieJar,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong email or password, or a deactivated account (not told apart).
    WrongCredentials,
    /// Too many failures for this account or address: wait this many seconds.
    Throttled(u64),
    /// The email is longer than any address can be.
    EmailTooLong,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::WrongCredentials => StatusCode::UNAUTHORIZED,
            Refusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::EmailTooLong => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::WrongCredentials => "Wrong email or password.".to_owned(),
            Refusal::Throttled(secs) => {
                format!("Too many failed sign-ins. Try again in {secs} seconds.")
            }
            Refusal::EmailTooLong => "That email address is too long.".to_owned(),
        }
    }

    /// The `Retry-After` seconds, when throttled.
    pub fn retry_after(self) -> Option<u64> {
        match self {
            Refusal::WrongCredentials | Refusal::EmailTooLong => None,
            Refusal::Throttled(secs) => Some(secs),
        }
    }
}

/// The email as sign-in compares it.
pub fn normalized_email(form: &Form) -> String {
    form.get("email").unwrap_or("").trim().to_lowercase()
}

/// Checks `email` and `password` and, when they match an active user, starts a
/// session (one cookie for the console and the authorization endpoint).
pub async fn attempt(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    email: &str,
    password_given: &str,
) -> Result<Attempt, StoreError> {
    if email.len() > MAX_EMAIL {
        return Ok(refused(Refusal::EmailTooLong, jar));
    }
    let limiter = &state.login_limiter;
    let here = pair_key(email, ip);
    if let Some(wait) = limiter
        .address_blocked(ip)
        .or(limiter.key_blocked_anywhere(&here).await)
    {
        return Ok(refused(Refusal::Throttled(wait.0), jar));
    }
    let user = match state.store.user_by_email(email).await {
        Ok(u) => Some(u),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = verify_off_thread(state, password_given, hash).await;
    match user {
        Some(u) if ok && u.status == UserStatus::Active => {
            let (session, jar) = session::start(state, jar, &u.id, state.clock.now()).await?;
            tracing::info!(user_id = %u.id, "signed in");
            security_events::signin(state, &u, ip, None).await?;
            Ok(Attempt::SignedIn {
                user: Box::new(u),
                session,
                jar,
            })
        }
        _ => {
            tracing::info!(%ip, "sign-in failed");
            if let Some(u) = &user {
                let why = if ok {
                    "account deactivated"
                } else {
                    "wrong password"
                };
                security_events::signin(state, u, ip, Some(why)).await?;
            }
            let delay = limiter.slow_down(email);
            let why = match limiter.record_failure(ip, &here).await {
                Some(wait) => Refusal::Throttled(wait.0),
                None => Refusal::WrongCredentials,
            };
            tokio::time::sleep(delay).await;
            Ok(refused(why, jar))
        }
    }
}

/// The throttle key of one address trying one account (addresses as the
/// limiter counts them: IPv6 per /64).
fn pair_key(email: &str, ip: IpAddr) -> String {
    format!("{email}\n{}", crate::client_addr::bucket_key(ip))
}

fn refused(why: Refusal, jar: CookieJar) -> Attempt {
    Attempt::Refused { why, jar }
}

/// Argon2 takes tens of milliseconds; keep it off the async workers. Unknown
/// accounts are checked against a dummy hash so timing does not reveal them.
async fn verify_off_thread(state: &AppState, password_given: &str, hash: Option<String>) -> bool {
    // Each check holds 19 MiB: bound how many run at once, and let the rest queue,
    // so a burst of sign-ins (or of guesses) cannot balloon memory.
    let Ok(_permit) = state.password_checks.acquire().await else {
        return false;
    };
    let pw = password_given.to_owned();
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&pw, &h),
        None => {
            let _ = password::verify(&pw, DUMMY_HASH);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// An Argon2id hash of a random value, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5m0hXfXOYQv4sT2vb1gqS9hWz0V7v7F0a1pQJ5s3aJ0";

/// A posted page form, bounded and CSRF-checked (synchronizer token + Origin).
pub fn page_form(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Form, Response> {
    if body.len() > state.config.max_body_bytes {
        return Err(pages::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request too large",
            "The form was too large.",
            None,
        ));
    }
    let form = Form::parse(body).map_err(|e| {
        pages::message(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            &e.description,
            None,
        )
    })?;
    if !session::csrf_ok(state, jar, headers, form.get("csrf_token")) {
        return Err(pages::message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from this site or has expired. Go back to the app and start again.",
            None,
        ));
    }
    Ok(form)
}
