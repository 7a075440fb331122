//! Client authentication (RFC 6749 §2.3.1) for the endpoints a client calls with
//! its secret, as one extractor: [`AuthenticatedClient<T>`] reads the form, parses
//! the endpoint's request `T` and the presented credentials, and verifies the
//! secret against the cached client context, throttling repeated failures.
//!
//! The rules (see [`authenticate_app`]): the right secret is never refused
//! because of failures; a wrong one fills the failure buckets and answers 429
//! instead of 401 once one is full; only an address far past its burst is
//! refused before its secret is checked; a disabled app is refused whatever it
//! presents. Nothing here decides what the client may do next.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use gatehouse_core::OAuthError;
use gatehouse_core::context::{ClientContext, ContextSource};
use gatehouse_core::form::Form;
use gatehouse_core::grant::device_code::DeviceAuthorizationRequest;
use gatehouse_core::limits::logged;
use gatehouse_core::model::AppStatus;
use gatehouse_core::par::PushRequest;
use gatehouse_core::ports::StoreError;
use gatehouse_core::request::TokenRequest;
use gatehouse_core::revocation::RevocationRequest;

use crate::client_addr::ClientAddr;
use crate::error::HttpError;
use crate::extract::{AuthMethod, ClientCredentials, OAuthForm};
use crate::metrics::ClientAuthFailure;
use crate::state::AppState;

/// An endpoint's request, parsed from the same form as the client's credentials.
pub trait ClientForm: Sized {
    /// Whether a malformed request is refused before malformed credentials
    /// (the token endpoint answers a bad `grant_type` first).
    const PARSED_FIRST: bool;

    fn parse(form: &Form) -> Result<Self, OAuthError>;
}

impl ClientForm for TokenRequest {
    const PARSED_FIRST: bool = true;

    fn parse(form: &Form) -> Result<Self, OAuthError> {
        TokenRequest::parse(form)
    }
}

impl ClientForm for RevocationRequest {
    const PARSED_FIRST: bool = false;

    fn parse(form: &Form) -> Result<Self, OAuthError> {
        RevocationRequest::parse(form)
    }
}

impl ClientForm for DeviceAuthorizationRequest {
    const PARSED_FIRST: bool = false;

    fn parse(form: &Form) -> Result<Self, OAuthError> {
        DeviceAuthorizationRequest::parse(form)
    }
}

impl ClientForm for PushRequest {
    const PARSED_FIRST: bool = false;

    fn parse(form: &Form) -> Result<Self, OAuthError> {
        PushRequest::parse(form)
    }
}

/// An app that proved its secret, with the request it sent.
pub struct AuthenticatedClient<T> {
    pub client: Arc<ClientContext>,
    pub request: T,
    /// The id of the secret it presented (tokens issued now name it); `None`
    /// for an app that authenticated with `private_key_jwt`.
    pub secret_id: Option<String>,
}

impl<T: ClientForm + Send> FromRequest<AppState> for AuthenticatedClient<T> {
    type Rejection = HttpError;

    #[tracing::instrument(level = "debug", skip_all)]
    async fn from_request(req: Request, state: &AppState) -> Result<Self, HttpError> {
        let (mut parts, body) = req.into_parts();
        let Ok(ClientAddr(ip)) = ClientAddr::from_request_parts(&mut parts, state).await;
        // Only the Authorization header outlives the body read (a cheap clone).
        let authorization = parts.headers.get(header::AUTHORIZATION).cloned();
        let OAuthForm(form) =
            OAuthForm::from_request(Request::from_parts(parts, body), state).await?;
        let (creds, request) = if T::PARSED_FIRST {
            let request = T::parse(&form)?;
            (
                ClientCredentials::from_parts(authorization.as_ref(), &form)?,
                request,
            )
        } else {
            let creds = ClientCredentials::from_parts(authorization.as_ref(), &form)?;
            (creds, T::parse(&form)?)
        };
        let (client, secret_id) = authenticate_app(state, &creds, ip).await?;
        Ok(Self {
            client,
            request,
            secret_id,
        })
    }
}

/// Verifies the app's secret against its cached context (any of its active
/// secrets; the id of the one presented is returned), before any throttle:
/// the right secret is never refused because of failures (its own or anyone
/// else's). A wrong one fills the limiter's buckets, and answers 429 instead of
/// 401 once one is full. Only an address far past its burst
/// ([`crate::ratelimit::FailureLimiter::flooded`]) is refused before checking.
#[tracing::instrument(level = "debug", skip_all, fields(client_id = %logged(&creds.client_id)))]
pub async fn authenticate_app(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<(Arc<ClientContext>, Option<String>), HttpError> {
    if let Some(wait) = state.limiter.flooded(ip) {
        return Err(HttpError::Throttled(wait));
    }
    if creds.method == AuthMethod::PrivateKeyJwt {
        let ctx = crate::client_assertion::authenticate(state, creds, ip).await?;
        return Ok((ctx, None));
    }
    let Some(presented) = creds.secret.as_deref() else {
        state
            .metrics
            .record_client_auth_failure(ClientAuthFailure::NoSecret);
        return Err(OAuthError::invalid_client(
            "this client must authenticate with its client secret",
        )
        .into());
    };
    // A disabled app is refused whatever it asks (its tokens ended when it was
    // disabled); the secret was right, so this is no guessing failure.
    let now = state.clock.now();
    let used = |ctx: Arc<ClientContext>, secret_id: String| {
        if ctx.app.status != AppStatus::Active {
            state.usage.failed(&ctx.app.client_id, now);
            state
                .metrics
                .record_client_auth_failure(ClientAuthFailure::Disabled);
            return Err(OAuthError::invalid_client("this app is disabled").into());
        }
        state
            .usage
            .record_secret(&ctx.app.client_id, &secret_id, now);
        Ok((ctx, Some(secret_id)))
    };
    let matching = |ctx: &ClientContext| ctx.secret_matching(presented, now).map(|s| s.id.clone());
    let known = match state.clients.client_context(&creds.client_id).await {
        Ok(ctx) => match matching(&ctx) {
            Some(id) => return used(ctx, id),
            // The cached secrets may be older than one added or rotated a moment
            // ago elsewhere: check the store before calling it a failure.
            None => match state.clients.reload(&creds.client_id).await {
                Ok(ctx) => match matching(&ctx) {
                    Some(id) => return used(ctx, id),
                    None => Some(ctx),
                },
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
        },
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // Counted on the app's page; only for apps that exist, so guessed client
    // ids cannot grow the counters.
    if let Some(ctx) = known {
        state.usage.failed(&ctx.app.client_id, state.clock.now());
        if ctx.app.uses_private_key_jwt() {
            return failed_because(
                state,
                creds,
                ip,
                ClientAuthFailure::BadAssertion,
                "this app has no client secret: it authenticates with private_key_jwt (client_assertion_type and client_assertion)".into(),
            )
            .await;
        }
    }
    failed(state, creds, ip).await
}

/// A failed client authentication: logged (bounded, escaped), counted, and
/// answered 401, or 429 once the client id's or the address's bucket is full.
pub async fn failed<T>(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
) -> Result<T, HttpError> {
    failed_because(
        state,
        creds,
        ip,
        ClientAuthFailure::WrongSecret,
        "unknown client or wrong client secret".into(),
    )
    .await
}

/// [`failed`], saying why (never with a secret or key material in it).
pub async fn failed_because<T>(
    state: &AppState,
    creds: &ClientCredentials,
    ip: IpAddr,
    why: ClientAuthFailure,
    description: String,
) -> Result<T, HttpError> {
    tracing::info!(client_id = %logged(&creds.client_id), %ip, reason = %description, "client authentication failed");
    state.metrics.record_client_auth_failure(why);
    match state.limiter.record_failure(ip, &creds.client_id).await {
        Some(wait) => Err(HttpError::Throttled(wait)),
        None => Err(OAuthError::invalid_client(description).into()),
    }
}
