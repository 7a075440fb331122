//! `POST /account/password`: a new password, with the current one. The check
//! is throttled like sign-in (per account and per address, never a lock-out:
//! the buckets drain); the new password follows the rules of every other place
//! a password is set. Every other session of the person ends (their apps are
//! told over the back channel); this browser stays signed in.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::account;

use super::{Me, Problem, Step, done, page, posted};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::security_events;
use crate::signin;
use crate::state::AppState;

pub(super) async fn submit(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match step(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

fn problem(status: StatusCode, message: impl Into<String>) -> Problem {
    Problem {
        status,
        form: "password",
        message: message.into(),
        typed: None,
    }
}

async fn step(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, me) = posted(state, &jar, headers, body).await?;
    let current = form.get("current_password").unwrap_or("");
    if let Err((p, retry)) = check_current(state, ip, &me, current).await {
        let mut r = page(state, jar, &me, None, Some(p)).await?;
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return Ok(r);
    }
    let new = form.get("new_password").unwrap_or("");
    let repeated = form.get("repeat_password").unwrap_or("");
    let checked = {
        let (c, n, r) = (current.to_owned(), new.to_owned(), repeated.to_owned());
        // Argon2 off the async workers, as sign-in does.
        tokio::task::spawn_blocking(move || account::new_password_hash(&c, &n, &r)).await
    };
    let hash = match checked {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let p = problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
            return page(state, jar, &me, None, Some(p)).await;
        }
        Err(_) => {
            return Err(pages::store_failure(internal(
                "password hashing task failed",
            )));
        }
    };
    let audit = security_events::event(
        state,
        &me.user,
        ip,
        super::PASSWORD_CHANGED,
        "changed their password; their other sessions were signed out",
    );
    state
        .store
        .change_password(
            &me.user.id,
            &hash,
            Some(&me.session.id_digest),
            state.clock.now(),
            &audit,
        )
        .await
        .map_err(pages::store_failure)?;
    tracing::info!(user_id = %me.user.id, "password changed");
    state.backchannel_wake.notify_one();
    Ok(done(jar, "password"))
}

fn internal(why: &str) -> gatehouse_core::ports::StoreError {
    gatehouse_core::ports::StoreError::Internal(why.to_owned())
}

/// The current password, throttled like sign-in: `Err` with the problem and,
/// when throttled, the seconds to wait.
async fn check_current(
    state: &AppState,
    ip: IpAddr,
    me: &Me,
    given: &str,
) -> Result<(), (Problem, Option<u64>)> {
    let throttled = |secs: u64| {
        (
            problem(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many wrong passwords. Try again in {secs} seconds."),
            ),
            Some(secs),
        )
    };
    let limiter = &state.login_limiter;
    let key = format!("account-password\n{}", me.user.id);
    if let Some(wait) = limiter
        .address_blocked(ip)
        .or(limiter.key_blocked_anywhere(&key).await)
    {
        return Err(throttled(wait.0));
    }
    let Some(hash) = me.user.password_hash.clone() else {
        return Err((
            problem(
                StatusCode::CONFLICT,
                "Your account has no password to change here: ask your organization's admin.",
            ),
            None,
        ));
    };
    if signin::verify_off_thread(state, given, Some(hash)).await {
        return Ok(());
    }
    let _ = security_events::record(
        state,
        &me.user,
        ip,
        security_events::SIGNIN_FAILED,
        "password change refused: wrong current password",
    )
    .await;
    let delay = limiter.slow_down(&key);
    let wait = limiter.record_failure(ip, &key).await;
    tokio::time::sleep(delay).await;
    match wait {
        Some(w) => Err(throttled(w.0)),
        None => Err((
            problem(
                StatusCode::UNAUTHORIZED,
                "Your current password is not right: nothing was changed. Type it again.",
            ),
            None,
        )),
    }
}
