//! `/connect/endsession` (OpenID Connect RP-Initiated Logout 1.0): ends the
//! browser's login session (issued tokens stay valid) and returns to a registered
//! post-logout URI. It signs out at once only with an `id_token_hint` that is an ID
//! token of this issuer naming the signed-in user (and session, when it carries
//! `sid`); otherwise it asks first, since anyone could link here (§2, §6: a
//! hint for someone else must not sign this browser out).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::context::ContextSource;
use gatehouse_core::discovery::ENDSESSION_PATH;
use gatehouse_core::form::Form;
use gatehouse_core::id_token::{IdTokenHint, hint_from_claims};
use gatehouse_core::jose::{peek_kid, peek_typ};
use gatehouse_core::model::Session;
use gatehouse_core::token::Signer;

use crate::pages::{self, LogoutPage};
use crate::session;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(ENDSESSION_PATH, get(start).post(confirm))
}

async fn start(State(state): State<AppState>, jar: CookieJar, RawQuery(q): RawQuery) -> Response {
    let Ok(form) = Form::parse(q.unwrap_or_default().as_bytes()) else {
        return bad("The sign-out request is malformed.");
    };
    let return_to = form.get("post_logout_redirect_uri");
    let st = form.get("state");
    let Some(hint) = form.get("id_token_hint") else {
        return ask(&state, jar, form.get("client_id"), return_to, st);
    };
    let Some(hint) = parse_hint(&state, hint) else {
        return bad("The id_token_hint is not an ID token: not issued by this server as one.");
    };
    if form.get("client_id").is_some_and(|c| c != hint.client_id) {
        return bad("client_id does not match the id_token_hint.");
    }
    let current = match session::current(&state, &jar).await {
        Ok(s) => s,
        Err(e) => return pages::store_failure(e),
    };
    match current {
        // Nothing to end: straight back to the app.
        None => finish(&state, jar, &hint.client_id, return_to, st).await,
        Some(s) if names(&hint, &s) => finish(&state, jar, &hint.client_id, return_to, st).await,
        Some(_) => ask(&state, jar, Some(&hint.client_id), return_to, st),
    }
}

/// Does the hint name this session's user (and this session, when it says which)?
fn names(hint: &IdTokenHint, s: &Session) -> bool {
    hint.sub == s.user_id && hint.sid.as_ref().is_none_or(|sid| *sid == s.sid)
}

/// The confirmation page: the user presses the button (CSRF-checked) to sign out.
fn ask(
    state: &AppState,
    jar: CookieJar,
    client_id: Option<&str>,
    return_to: Option<&str>,
    st: Option<&str>,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let page = LogoutPage {
        csrf: &csrf,
        post_logout_redirect_uri: return_to,
        client_id,
        state: st,
    };
    (jar, pages::render(StatusCode::OK, &page)).into_response()
}

async fn confirm(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return bad("The sign-out form is malformed.");
    };
    if !session::csrf_ok(&state, &jar, &headers, form.get("csrf_token")) {
        return pages::message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Sign-out was not confirmed from this site.",
            None,
        );
    }
    match form.get("client_id") {
        Some(c) => {
            finish(
                &state,
                jar,
                c,
                form.get("post_logout_redirect_uri"),
                form.get("state"),
            )
            .await
        }
        None => finish(&state, jar, "", None, None).await,
    }
}

/// Ends the session; redirects only to a URI registered for `client_id`.
async fn finish(
    state: &AppState,
    jar: CookieJar,
    client_id: &str,
    return_to: Option<&str>,
    st: Option<&str>,
) -> Response {
    let target = match return_to {
        None => None,
        Some(uri) => match state.clients.client_context(client_id).await {
            Ok(ctx) if ctx.app.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                Some(uri.to_owned())
            }
            _ => return bad("The post_logout_redirect_uri is not registered for this app."),
        },
    };
    let jar = match session::end(state, jar).await {
        Ok(j) => {
            // The apps this session signed into hear of it (back-channel logout).
            state.backchannel_wake.notify_one();
            j
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not end the session");
            return pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.",
                None,
            );
        }
    };
    match target {
        Some(uri) => {
            let url = url_with_state(&uri, st).unwrap_or(uri);
            (jar, Redirect::to(&url)).into_response()
        }
        None => (
            jar,
            pages::message(
                StatusCode::OK,
                "Signed out",
                "You are signed out of Gatehouse.",
                None,
            ),
        )
            .into_response(),
    }
}

fn url_with_state(uri: &str, st: Option<&str>) -> Option<String> {
    let st = st?;
    let sep = if uri.contains('?') { '&' } else { '?' };
    let mut encoded = String::new();
    for b in st.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Some(format!("{uri}{sep}state={encoded}"))
}

/// An ID token this server signed, as a hint (expired hints are fine: §2).
fn parse_hint(state: &AppState, hint: &str) -> Option<IdTokenHint> {
    let key = state.keys().by_kid(&peek_kid(hint)?)?;
    let claims: serde_json::Value = serde_json::from_slice(&key.verify(hint)?).ok()?;
    hint_from_claims(peek_typ(hint).as_deref(), &claims, &state.config.issuer)
}

fn bad(msg: &str) -> Response {
    pages::message(StatusCode::BAD_REQUEST, "Cannot sign out", msg, None)
}
