//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core
//! §9) for every endpoint that authenticates apps ([`crate::client_auth`]): the
//! assertion is checked against the app's cached keys
//! ([`crate::client_keys`]), then its `jti` is recorded in the store, so each
//! assertion authenticates once on any instance.
//!
//! Every refusal is `invalid_client` (401), counted by the same failure throttle
//! as a wrong secret, with a description of the rule that failed (never key
//! material, never the assertion).

use std::net::IpAddr;
use std::sync::Arc;

use gatehouse_core::OAuthError;
use gatehouse_core::client_assertion::{self, AssertionError, Expected};
use gatehouse_core::context::{ClientContext, ContextSource};
use gatehouse_core::discovery::TOKEN_PATH;
use gatehouse_core::model::{AppStatus, ClientKeys};
use gatehouse_core::ports::StoreError;

use crate::client_auth::failed_because;
use crate::error::HttpError;
use crate::extract::ClientCredentials;
use crate::metrics::ClientAuthFailure;
use crate::state::AppState;

/// The app the assertion proves, or the refusal.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<Arc<ClientContext>, HttpError> {
    let now = state.clock.now();
    let refuse =
        |why: String| failed_because(state, creds, ip, ClientAuthFailure::BadAssertion, why);
    let assertion = creds.assertion.as_deref().unwrap_or_default();
    let unverified = match client_assertion::parse(assertion) {
        Ok(u) => u,
        Err(e) => return refuse(e.to_string()).await,
    };
    let mut ctx = match state.clients.client_context(&creds.client_id).await {
        Ok(ctx) => ctx,
        Err(StoreError::NotFound) => return refuse("unknown client".into()).await,
        Err(e) => return Err(e.into()),
    };
    if !ctx.app.uses_private_key_jwt() {
        state.usage.failed(&ctx.app.client_id, now);
        return refuse(
            "this app authenticates with its client secret, not with private_key_jwt".into(),
        )
        .await;
    }
    let issuer = state.config.issuer.trim_end_matches('/');
    let token_endpoint = format!("{issuer}{TOKEN_PATH}");
    let audiences = [issuer, token_endpoint.as_str()];
    let client_id = ctx.app.client_id.clone();
    let expected = Expected {
        client_id: &client_id,
        audiences: &audiences,
        now,
    };
    let keys = match state.client_keys.keys(&ctx.app, now).await {
        Ok(k) => k,
        Err(e) => return refuse(e.to_string()).await,
    };
    let mut result = unverified.verify(&keys, &expected);
    if result == Err(AssertionError::UnknownKey) {
        // New keys: registered a moment ago (this instance may not have heard
        // yet), or published at the jwks_uri since the last fetch.
        let again = match ctx.app.client_keys.as_deref() {
            Some(ClientKeys::Jwks(_)) => match state.clients.reload(&ctx.app.client_id).await {
                Ok(fresh) => {
                    ctx = fresh;
                    Some(state.client_keys.keys(&ctx.app, now).await)
                }
                Err(e) => return Err(e.into()),
            },
            _ => {
                state
                    .client_keys
                    .refetch_for_unknown_kid(&ctx.app, now)
                    .await
            }
        };
        match again {
            Some(Ok(keys)) => result = unverified.verify(&keys, &expected),
            Some(Err(e)) => return refuse(e.to_string()).await,
            None => {}
        }
    }
    let verified = match result {
        Ok(v) => v,
        Err(e) => {
            state.usage.failed(&ctx.app.client_id, now);
            return refuse(e.to_string()).await;
        }
    };
    // As with a secret: the proof held, so this is no guessing failure.
    if ctx.app.status != AppStatus::Active {
        state.usage.failed(&ctx.app.client_id, now);
        state
            .metrics
            .record_client_auth_failure(ClientAuthFailure::Disabled);
        return Err(OAuthError::invalid_client("this app is disabled").into());
    }
    // RFC 7523 §3 item 7: single use, on every instance, until it expires.
    if !state
        .store
        .use_assertion_jti(&ctx.app.client_id, &verified.jti, verified.exp, now)
        .await?
    {
        state.usage.failed(&ctx.app.client_id, now);
        return refuse(
            "the client assertion was used before: each request needs a new assertion (`jti`)"
                .into(),
        )
        .await;
    }
    Ok(ctx)
}
