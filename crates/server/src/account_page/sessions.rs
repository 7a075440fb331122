//! `POST /account/sessions/end`: "sign out everywhere". Every live session of
//! the person ends, this browser's included; the apps each session signed
//! into are told over the back channel (as at end session). Tokens the person
//! gave apps are left to the apps list: signing out ends sign-ins, not access.
//! `POST /account/sessions/end-one`: ends one of the person's other sessions
//! (a browser they no longer use or do not recognise), named by its `sid`;
//! the store looks it up by the person's id, so another's sid only misses.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use gatehouse_core::ports::StoreError;

use super::{Problem, Step, done, page, posted};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::security_events;
use crate::session;
use crate::state::AppState;

pub(super) async fn end_all(
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

async fn step(
    state: &AppState,
    ip: std::net::IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (_, me) = posted(state, &jar, headers, body).await?;
    let audit = security_events::event(
        state,
        &me.user,
        ip,
        super::SIGNED_OUT_EVERYWHERE,
        "signed out of every session",
    );
    let ended = state
        .store
        .end_user_sessions(&me.user.id, None, state.clock.now(), &audit)
        .await
        .map_err(pages::store_failure)?;
    tracing::info!(user_id = %me.user.id, ended, "signed out everywhere");
    state.backchannel_wake.notify_one();
    let jar = jar.remove(Cookie::build(session::SESSION_COOKIE).path("/"));
    let page = pages::message(
        StatusCode::OK,
        "Signed out everywhere",
        &format!(
            "{ended} session{} ended, this one included. The apps you signed into were told.",
            if ended == 1 { "" } else { "s" }
        ),
        Some(("/console".to_owned(), "Sign in again".to_owned())),
    );
    Ok((jar, page).into_response())
}

pub(super) async fn end_one(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match step_one(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

/// A session id as the server makes them ([`gatehouse_core::secret::random_id`]).
const MAX_SID: usize = 64;

async fn step_one(
    state: &AppState,
    ip: std::net::IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, me) = posted(state, &jar, headers, body).await?;
    let sid = form.get("sid").unwrap_or("");
    let problem = |status, message: &str| Problem {
        status,
        form: "sessions",
        message: message.into(),
        typed: None,
    };
    if sid == me.session.sid {
        let p = problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That is this browser's session: use sign out (or sign out everywhere) instead.",
        );
        return page(state, jar, &me, None, Some(p)).await;
    }
    let gone = problem(StatusCode::NOT_FOUND, "That session has already ended.");
    if sid.is_empty() || sid.len() > MAX_SID {
        return page(state, jar, &me, None, Some(gone)).await;
    }
    let audit = security_events::event(
        state,
        &me.user,
        ip,
        super::SESSION_ENDED,
        &format!("signed out one other session ({sid})"),
    );
    match state
        .store
        .end_user_session(&me.user.id, sid, state.clock.now(), &audit)
        .await
    {
        Ok(()) => {
            tracing::info!(user_id = %me.user.id, "one other session ended by the person");
            state.backchannel_wake.notify_one();
            Ok(done(jar, "session_ended"))
        }
        Err(StoreError::NotFound) => page(state, jar, &me, None, Some(gone)).await,
        Err(e) => Err(pages::store_failure(e)),
    }
}
