//! `POST /account/apps/revoke`: the person takes back what they allowed an
//! app. The consent is forgotten and every live grant of theirs to the app is
//! revoked, so its refresh tokens stop working at once and its access tokens
//! are refused (JWTs at the gateways through the change feed within a second,
//! reference tokens at introspection). Only the person's own grants are
//! touched: the store looks them up by the person's id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::limits::MAX_CLIENT_ID;
use gatehouse_core::ports::StoreError;

use super::{Problem, Step, done, page, posted};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::security_events;
use crate::state::AppState;

pub(super) async fn revoke(
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
    let (form, me) = posted(state, &jar, headers, body).await?;
    let client_id = form.get("client_id").unwrap_or("");
    let gone = Problem {
        status: StatusCode::NOT_FOUND,
        form: "apps",
        message: "That app has no access to revoke (it may have been revoked already).".into(),
        typed: None,
    };
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
        return page(state, jar, &me, None, Some(gone)).await;
    }
    let name = state
        .store
        .app_by_client_id(client_id)
        .await
        .map(|a| a.name)
        .unwrap_or_else(|_| "(deleted app)".to_owned());
    let audit = security_events::event(
        state,
        &me.user,
        ip,
        super::APP_REVOKED,
        &format!("revoked the access of the app `{name}` ({client_id})"),
    );
    match state
        .store
        .revoke_authorized_app(&me.user.id, client_id, state.clock.now(), &audit)
        .await
    {
        Ok(grants) => {
            tracing::info!(user_id = %me.user.id, client_id, grants, "app access revoked by the person");
            Ok(done(jar, "revoked"))
        }
        Err(StoreError::NotFound) => page(state, jar, &me, None, Some(gone)).await,
        Err(e) => Err(pages::store_failure(e)),
    }
}
