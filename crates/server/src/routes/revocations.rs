//! `GET /connect/revocations?since=CURSOR&wait=SECONDS`: the revocation feed that
//! gateways follow to refuse ended JWTs within a second. Only APIs may read it,
//! with their own credentials over HTTP Basic (the introspection code path, with
//! its failure throttling); apps are refused. Each change is resolved to the
//! current state of its subject by [`gatehouse_core::feed::resolve`].
//!
//! A long poll (`wait` > 0, at most 30 s) parks on the change watcher's sequence
//! number, so it answers as soon as the watcher (every 10 ms, or at once on a
//! NOTIFY / WAL hint) has seen a newer change, or the server is shutting down.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::OAuthError;
use gatehouse_core::discovery::REVOCATION_FEED_PATH;
use gatehouse_core::feed::{FeedPage, MAX_WAIT_SECS, PAGE, resolve};
use gatehouse_core::form::Form;
use gatehouse_core::introspect::Introspector;

use crate::client_addr::ClientAddr;
use crate::error::HttpError;
use crate::extract::ClientCredentials;
use crate::routes::introspect::authenticate;
use crate::state::AppState;

/// Names the reading API's audience (`gatehouse-gateway` checks it at start-up).
const AUDIENCE_HEADER: &str = "gatehouse-api-audience";

pub fn router() -> Router<AppState> {
    Router::new().route(REVOCATION_FEED_PATH, get(revocations))
}

struct FeedQuery {
    since: i64,
    wait: Duration,
}

impl FeedQuery {
    fn parse(raw: Option<&str>) -> Result<Self, OAuthError> {
        let form = Form::parse(raw.unwrap_or_default().as_bytes())?;
        let num = |name: &'static str| -> Result<u64, OAuthError> {
            match form.get(name) {
                None | Some("") => Ok(0),
                Some(v) if v.len() <= 19 => v.parse().map_err(|_| bad(name)),
                Some(_) => Err(bad(name)),
            }
        };
        let since = i64::try_from(num("since")?).map_err(|_| bad("since"))?;
        Ok(Self {
            since,
            wait: Duration::from_secs(num("wait")?.min(MAX_WAIT_SECS)),
        })
    }
}

fn bad(name: &'static str) -> OAuthError {
    OAuthError::invalid_request(format!("`{name}` must be a non-negative integer"))
}

async fn revocations(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let q = FeedQuery::parse(query.as_deref())?;
    // Credentials only from the header: a secret never belongs in a URL.
    let creds = ClientCredentials::from_request(&headers, &Form::default())?;
    let Introspector::Api(api) = authenticate(&state, &creds, ip).await? else {
        return Err(
            OAuthError::invalid_client("only an API's own credentials may read this feed").into(),
        );
    };
    let mut changes = state.store.changes_since(q.since, PAGE).await?;
    if changes.is_empty() && !q.wait.is_zero() {
        let mut seq = state.clients.watch_seq();
        let mut stopping = state.stopping.subscribe();
        // Shutdown ends the wait: the gateway gets what there is and reconnects
        // to another instance, and this one can exit.
        tokio::select! {
            _ = tokio::time::timeout(q.wait, seq.wait_for(|s| *s > q.since)) => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
        changes = state.store.changes_since(q.since, PAGE).await?;
    }
    let cursor = changes.last().map_or(q.since, |c| c.seq);
    let events = resolve(
        state.store.as_ref(),
        &api.org_id,
        api.access_token_ttl,
        &changes,
    )
    .await?;
    let page = FeedPage {
        cursor: cursor.to_string(),
        events,
        more: changes.len() >= PAGE as usize,
    };
    let mut resp = Json(page).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The API's own audience, so a gateway started with another one can say so
    // at start-up (the API reads only what it already knows).
    if let Ok(v) = HeaderValue::from_str(&api.audience) {
        resp.headers_mut().insert(AUDIENCE_HEADER, v);
    }
    Ok(resp)
}
