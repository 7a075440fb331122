//! `POST /connect/revocation` (RFC 7009): the authenticated client's token goes to
//! [`revocation::revoke`], which decides what it is and what revoking it ends.
//! Unknown tokens get 200 too (§2.2): the answer reveals nothing.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gatehouse_core::discovery::REVOCATION_PATH;
use gatehouse_core::revocation::{self, RevocationError, RevocationRequest};

use crate::client_auth::AuthenticatedClient;
use crate::error::HttpError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(REVOCATION_PATH, post(revoke))
}

async fn revoke(
    State(state): State<AppState>,
    AuthenticatedClient {
        client, request, ..
    }: AuthenticatedClient<RevocationRequest>,
) -> Result<Response, HttpError> {
    let keys = state.keys();
    revocation::revoke(
        &request,
        &client.app,
        keys.as_ref(),
        state.store.as_ref(),
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        RevocationError::OAuth(o) => HttpError::OAuth(o),
        RevocationError::Store(s) => s.into(),
    })?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
