//! The passkeys part of `/account/security`: register one (the page's script
//! asks `/passkey/challenge` for the options, the browser makes the credential,
//! the form posts it here with its name), rename one, remove one. Every form is
//! CSRF-checked like the rest of the page, every change audited. A person past
//! the password whose organization requires a second factor may register one
//! too; that completes their sign-in with both factors.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::passkey;
use gatehouse_core::ports::StoreError;

use crate::account::{Step, posted, status_page_with};
use crate::client_addr::ClientAddr;
use crate::console::view::when;
use crate::pages::{self, PasskeyLine};
use crate::passkey::Refusal;
use crate::second_factor;
use crate::security_events;
use crate::state::AppState;

const REGISTER: &str = "/account/security/passkeys";
const RENAME: &str = "/account/security/passkeys/rename";
const REMOVE: &str = "/account/security/passkeys/remove";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(REGISTER, post(register))
        .route(RENAME, post(rename))
        .route(REMOVE, post(remove))
}

/// The person's passkeys as the page lists them.
pub async fn lines(state: &AppState, user_id: &str) -> Result<Vec<PasskeyLine>, StoreError> {
    Ok(state
        .store
        .passkeys(user_id)
        .await?
        .into_iter()
        .map(|p| PasskeyLine {
            id: p.id,
            name: p.name,
            created: when(p.created_at),
            last_used: p.last_used_at.map(when).unwrap_or_default(),
        })
        .collect())
}

/// `POST /account/security/passkeys`: name + the browser's new credential.
async fn register(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match register_step(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn register_step(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, who, next) = posted(state, &jar, headers, body).await?;
    let user = &who.user;
    let (outcome, jar) = crate::passkey::register(
        state,
        ip,
        jar,
        user,
        form.get("name").unwrap_or(""),
        form.get("credential").unwrap_or(""),
    )
    .await
    .map_err(pages::store_failure)?;
    if let Err(why) = outcome {
        return refused(state, jar, &next, why).await;
    }
    if who.pending {
        // Past the first step, and now a passkey: both factors, signed in.
        let first = second_factor::pending_first(state, &jar);
        let detail = format!("signed in with {} and a new passkey", first.words());
        let (_, jar) =
            second_factor::complete_with(state, jar, user, ip, first.then_passkey(), &detail)
                .await
                .map_err(pages::store_failure)?;
        if !next.is_empty() {
            return Ok((jar, Redirect::to(&next)).into_response());
        }
        return status_page_with(state, jar, "", StatusCode::OK, None, Some(ADDED)).await;
    }
    status_page_with(state, jar, &next, StatusCode::OK, None, Some(ADDED)).await
}

const ADDED: &str = "Passkey added: you can sign in with it from now on.";

async fn refused(state: &AppState, jar: CookieJar, next: &str, why: Refusal) -> Step<Response> {
    let msg = why.message();
    let mut r = status_page_with(state, jar, next, why.status(), Some(&msg), None).await?;
    if let Some(secs) = why.retry_after() {
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    Ok(r)
}

/// `POST /account/security/passkeys/rename`: `id`, `name`.
async fn rename(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match rename_step(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn rename_step(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, who, next) = posted(state, &jar, headers, body).await?;
    if who.pending {
        return signed_in_first(state, jar, &next).await;
    }
    let name = match passkey::name(form.get("name").unwrap_or("")) {
        Ok(n) => n,
        Err(e) => return refused(state, jar, &next, Refusal::Name(e)).await,
    };
    let id = form.get("id").unwrap_or("");
    let audit = security_events::event(
        state,
        &who.user,
        ip,
        security_events::PASSKEY_RENAMED,
        &format!("renamed a passkey to `{name}`"),
    );
    match state
        .store
        .rename_passkey(&who.user.id, id, &name, &audit)
        .await
    {
        Ok(()) => {
            status_page_with(
                state,
                jar,
                &next,
                StatusCode::OK,
                None,
                Some("Passkey renamed."),
            )
            .await
        }
        Err(StoreError::NotFound) => gone(state, jar, &next).await,
        Err(e) => Err(pages::store_failure(e)),
    }
}

/// `POST /account/security/passkeys/remove`: `id`.
async fn remove(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match remove_step(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn remove_step(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, who, next) = posted(state, &jar, headers, body).await?;
    if who.pending {
        return signed_in_first(state, jar, &next).await;
    }
    let id = form.get("id").unwrap_or("");
    let name = state
        .store
        .passkeys(&who.user.id)
        .await
        .map_err(pages::store_failure)?
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name);
    let Some(name) = name else {
        return gone(state, jar, &next).await;
    };
    let audit = security_events::event(
        state,
        &who.user,
        ip,
        security_events::PASSKEY_REMOVED,
        &format!("removed the passkey `{name}`"),
    );
    match state.store.remove_passkey(&who.user.id, id, &audit).await {
        Ok(()) => {
            status_page_with(
                state,
                jar,
                &next,
                StatusCode::OK,
                None,
                Some("Passkey removed."),
            )
            .await
        }
        Err(StoreError::NotFound) => gone(state, jar, &next).await,
        Err(e) => Err(pages::store_failure(e)),
    }
}

async fn gone(state: &AppState, jar: CookieJar, next: &str) -> Step<Response> {
    status_page_with(
        state,
        jar,
        next,
        StatusCode::NOT_FOUND,
        Some("That passkey is not on your account (any more): reload the page."),
        None,
    )
    .await
}

async fn signed_in_first(state: &AppState, jar: CookieJar, next: &str) -> Step<Response> {
    status_page_with(
        state,
        jar,
        next,
        StatusCode::FORBIDDEN,
        Some("Sign in first."),
        None,
    )
    .await
}
