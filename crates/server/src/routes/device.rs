//! The device authorization grant's HTTP face (RFC 8628):
//! - `POST /connect/deviceauthorization` (§3.1): an authenticated client gets
//!   its device code and user code (client authentication, its throttling and
//!   the error format are the token endpoint's: [`AuthenticatedClient`]);
//! - `/device` (§3.3): the person signs in (the sign-in of the authorization
//!   endpoint, any organization: a password, their organization's identity
//!   provider found from the address's domain, or a passkey alone), enters or
//!   confirms the code, sees the app's consent page (only for an app of their
//!   own organization) and allows or denies. A prefilled code is never
//!   approved without the person submitting it (§5.4, remote phishing).
//!
//! Wrong codes are throttled per person and per address before any lookup
//! (a user code has ~34 bits: guessing must stay slow). Core decides
//! everything else ([`device_code`]); this module renders and maps.

// A step's early exit is the finished response (a page); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::authorize::next_step::may_consent;
use gatehouse_core::context::{ActingUser, ClientContext, ContextSource, acting_user};
use gatehouse_core::discovery::{DEVICE_AUTHORIZATION_PATH, DEVICE_VERIFICATION_PATH};
use gatehouse_core::grant::device_code::{
    self, Decision, DeviceAuthorizationRequest, normalize_user_code, user_digest,
};
use gatehouse_core::model::{Actor, ActorKind, DeviceAuthorization, Session};
use gatehouse_core::ports::StoreError;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::upstream::Continuation;

use crate::client_addr::ClientAddr;
use crate::client_auth::AuthenticatedClient;
use crate::continuation::{self, How};
use crate::error::HttpError;
use crate::pages::{self, ConsentPage, DevicePage, LoginPage};
use crate::session;
use crate::signin::{self, Attempt};
use crate::state::AppState;
use crate::upstream::NotChosen;

/// Wrong user codes one person may enter before waiting (per [`WINDOW`]).
pub const WRONG_CODES_PER_PERSON: u32 = 5;
/// Wrong user codes one address may enter before waiting (several people
/// may share it).
pub const WRONG_CODES_PER_ADDRESS: u32 = 20;
/// The throttle's window: a full bucket drains in this time.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The client endpoint (merged with the token endpoint's group).
pub fn client_router() -> Router<AppState> {
    Router::new().route(DEVICE_AUTHORIZATION_PATH, post(device_authorization))
}

/// The person's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(DEVICE_VERIFICATION_PATH, get(device_get).post(device_post))
        .route("/device/login", post(login))
        .route(PASSKEY_SIGNIN, post(passkey_login))
        .route("/device/consent", post(consent))
}

/// RFC 8628 §3.2's answer.
#[derive(serde::Serialize)]
struct Answer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

async fn device_authorization(
    State(state): State<AppState>,
    AuthenticatedClient {
        client, request, ..
    }: AuthenticatedClient<DeviceAuthorizationRequest>,
) -> Result<Response, HttpError> {
    let now = state.clock.now();
    let started = device_code::start(state.store.as_ref(), &request, &client, now).await?;
    let verification_uri = format!(
        "{}{DEVICE_VERIFICATION_PATH}",
        state.config.issuer.trim_end_matches('/')
    );
    let body = Answer {
        verification_uri_complete: format!("{verification_uri}?user_code={}", started.user_code),
        verification_uri,
        device_code: started.device_code,
        user_code: started.user_code,
        expires_in: started.expires_in,
        interval: started.interval,
    };
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

type Step<T> = Result<T, Response>;

/// `GET /device[?user_code=…]`: the sign-in, or the code form (prefilled).
async fn device_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let typed = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    // Only a code of ours is carried on; anything else is dropped.
    let prefill = normalize_user_code(&typed)
        .map(|c| device_code::display(&c))
        .unwrap_or_default();
    let step = async {
        match signed_in(&state, &jar).await? {
            Some((_, user)) => Ok(code_page(
                &state,
                jar,
                &user,
                &prefill,
                None,
                StatusCode::OK,
            )),
            None => Ok(login_page(
                &state,
                jar,
                &prefill,
                StatusCode::OK,
                None,
                "",
                None,
            )),
        }
    };
    step.await.unwrap_or_else(|r| r)
}

/// The signed-in person (session and user), if any and still there.
async fn signed_in(state: &AppState, jar: &CookieJar) -> Step<Option<(Session, ActingUser)>> {
    let Some(s) = session::current(state, jar)
        .await
        .map_err(pages::store_failure)?
    else {
        return Ok(None);
    };
    match state.store.user_by_id(&s.user_id).await {
        Ok(u) => {
            let user = acting_user(state.store.as_ref(), u)
                .await
                .map_err(pages::store_failure)?;
            Ok(Some((s, user)))
        }
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(pages::store_failure(e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn login_page(
    state: &AppState,
    jar: CookieJar,
    user_code: &str,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    organization: Option<&str>,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let request = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_code", user_code)
        .finish();
    let page = LoginPage {
        app_name: None,
        error,
        csrf: &csrf,
        request: &request,
        email,
        action: "/device/login",
        organization,
        passkey: state.webauthn.is_some().then_some(PASSKEY_SIGNIN),
        // The code (and so the organization) is not known yet: the provider
        // is found from the address's domain, as at the console.
        sso: true,
    };
    (
        jar,
        pages::render_with_csp(status, &page, crate::passkey::PAGE_CSP),
    )
        .into_response()
}

/// Where the device page's "Sign in with a passkey" posts.
const PASSKEY_SIGNIN: &str = "/device/login/passkey";

/// The user code a sign-in form carried in its `request` (ours, displayed), or "".
fn carried_code(form: &gatehouse_core::form::Form) -> String {
    form.get("request")
        .and_then(|r| {
            form_urlencoded::parse(r.as_bytes())
                .find(|(k, _)| k == "user_code")
                .map(|(_, v)| v.into_owned())
        })
        .and_then(|c| normalize_user_code(&c))
        .map(|c| device_code::display(&c))
        .unwrap_or_default()
}

/// `POST /device/login/passkey`: a passkey alone (any organization: the
/// passkey names its person), then the code form with the code carried on.
async fn passkey_login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    signin::PageForm { form, jar }: signin::PageForm,
) -> Response {
    let carried = carried_code(&form);
    let credential = form.get("credential").unwrap_or("");
    match crate::passkey::sign_in(&state, peer, jar, credential, None).await {
        Ok((Ok(found), jar)) => {
            let then = Continuation::Device { user_code: carried };
            continuation::signed_in(&state, peer, jar, &found.user, How::Passkey, &then).await
        }
        Ok((Err(why), jar)) => {
            let message = why.message();
            let r = login_page(
                &state,
                jar,
                &carried,
                why.status(),
                Some(&message),
                "",
                None,
            );
            continuation::with_retry_after(r, why.retry_after())
        }
        Err(e) => pages::store_failure(e),
    }
}

fn code_page(
    state: &AppState,
    jar: CookieJar,
    user: &ActingUser,
    user_code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let page = DevicePage {
        user_email: &user.user.email,
        error,
        csrf: &csrf,
        user_code,
    };
    (jar, pages::render(status, &page)).into_response()
}

/// `POST /device/login`: the sign-in (any organization: the code is not known
/// yet), then the code form with the code carried through.
async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    login_step(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn login_step(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let carried = carried_code(&form);
    let email = signin::normalized_email(&form);
    let org_slug = signin::org_slug(&form);
    if form.get("sso").is_some() {
        return Ok(
            match crate::upstream::provider_for(state, &email, org_slug)
                .await
                .map_err(pages::store_failure)?
            {
                Ok(p) => {
                    let then = Continuation::Device { user_code: carried };
                    crate::upstream::begin(state, peer, jar, &p, &email, then).await
                }
                Err(why) => {
                    let ask = (why == NotChosen::ChooseOrganization || org_slug.is_some())
                        .then(|| org_slug.unwrap_or(""));
                    let (status, message) = (why.status(), Some(why.message()));
                    login_page(state, jar, &carried, status, message, &email, ask)
                }
            },
        );
    }
    let password = form.get("password").unwrap_or("");
    let within = signin::Within::AnyOrg { org_slug };
    match signin::attempt(state, peer, jar, &email, password, within)
        .await
        .map_err(pages::store_failure)?
    {
        Attempt::SignedIn { user, jar, .. } => {
            let user = acting_user(state.store.as_ref(), *user)
                .await
                .map_err(pages::store_failure)?;
            Ok(code_page(state, jar, &user, &carried, None, StatusCode::OK))
        }
        Attempt::SecondFactor { user, need, jar } => {
            let next = if carried.is_empty() {
                "/device".to_owned()
            } else {
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_code", &carried)
                    .finish();
                format!("/device?{q}")
            };
            Ok(crate::second_factor::lead_on(
                state,
                jar,
                &user,
                need,
                &next,
                crate::second_factor::First::Password,
            ))
        }
        Attempt::Refused { why, jar } => {
            let ask = (why == signin::Refusal::ChooseOrganization || org_slug.is_some())
                .then(|| org_slug.unwrap_or(""));
            let message = why.message();
            let mut r = login_page(
                state,
                jar,
                &carried,
                why.status(),
                Some(&message),
                &email,
                ask,
            );
            if let Some(secs) = why.retry_after() {
                r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(r)
        }
    }
}

/// `POST /device`: the code the person entered (or confirmed); its app's
/// consent page when it is a live code they may approve.
async fn device_post(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry_step(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn entry_step(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let typed = form.get("user_code").unwrap_or("");
    let Some((s, user)) = signed_in(state, &jar).await? else {
        let prefill = normalize_user_code(typed)
            .map(|c| device_code::display(&c))
            .unwrap_or_default();
        return Ok(login_page(
            state,
            jar,
            &prefill,
            StatusCode::OK,
            Some("Please sign in first."),
            "",
            None,
        ));
    };
    let limiter = &state.device_limiter;
    let person = person_key(&s.user_id);
    if let Some(wait) = limiter
        .address_blocked(peer)
        .or(limiter.key_blocked_anywhere(&person).await)
    {
        return Ok(throttled(state, jar, &user, wait.0));
    }
    let found = match normalize_user_code(typed) {
        Some(code) => pending(state, &code).await?,
        None => None,
    };
    // A code of another organization's app is refused like a wrong one (and
    // counted), so it tells a guesser nothing more.
    let Some((record, ctx)) = found.filter(|(_, ctx)| may_consent(&ctx.app, &user).is_ok()) else {
        tracing::info!(%peer, "wrong device user code");
        if let Some(wait) = limiter.record_failure(peer, &person).await {
            return Ok(throttled(state, jar, &user, wait.0));
        }
        return Ok(code_page(
            state,
            jar,
            &user,
            "",
            Some(WRONG_CODE),
            StatusCode::BAD_REQUEST,
        ));
    };
    let (csrf, jar) = session::csrf_token(state, jar);
    let scope = ScopeSet::from(record.scopes.as_slice());
    let code = normalize_user_code(typed).unwrap_or_default();
    let page = ConsentPage {
        app_name: &ctx.app.name,
        app_description: ctx.app.description.as_deref(),
        user_email: &user.user.email,
        scopes: pages::scope_lines(&ctx.apis, &scope),
        csrf: &csrf,
        request: &code,
        action: "/device/consent",
    };
    Ok((jar, pages::render(StatusCode::OK, &page)).into_response())
}

const WRONG_CODE: &str =
    "That code is not valid or has expired. Check the code your device shows and try again.";

fn person_key(user_id: &str) -> String {
    format!("person:{user_id}")
}

fn throttled(state: &AppState, jar: CookieJar, user: &ActingUser, secs: u64) -> Response {
    let msg = format!("Too many wrong codes. Try again in {secs} seconds.");
    let mut r = code_page(
        state,
        jar,
        user,
        "",
        Some(&msg),
        StatusCode::TOO_MANY_REQUESTS,
    );
    r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    r
}

/// The live, pending authorization of the (normalised) `code`, with its app.
async fn pending(
    state: &AppState,
    code: &str,
) -> Step<Option<(DeviceAuthorization, std::sync::Arc<ClientContext>)>> {
    let now = state.clock.now();
    let record = match state
        .store
        .pending_device_authorization(&user_digest(code), now)
        .await
    {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(pages::store_failure(e)),
    };
    match state.clients.client_context(&record.client_id).await {
        Ok(ctx) => Ok(Some((record, ctx))),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(pages::store_failure(e)),
    }
}

/// `POST /device/consent`: "Yes, Allow" or "No".
async fn consent(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    consent_step(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn consent_step(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let Some((s, user)) = signed_in(state, &jar).await? else {
        return Ok(login_page(
            state,
            jar,
            "",
            StatusCode::OK,
            Some("Please sign in again."),
            "",
            None,
        ));
    };
    // The code travels in the form: a forged post is a guess like any other.
    let limiter = &state.device_limiter;
    let person = person_key(&s.user_id);
    if let Some(wait) = limiter
        .address_blocked(peer)
        .or(limiter.key_blocked_anywhere(&person).await)
    {
        return Ok(throttled(state, jar, &user, wait.0));
    }
    let found = match form.get("request").and_then(normalize_user_code) {
        Some(code) => pending(state, &code).await?,
        None => None,
    };
    let Some((record, ctx)) = found.filter(|(_, ctx)| may_consent(&ctx.app, &user).is_ok()) else {
        tracing::info!(%peer, "wrong device user code at consent");
        limiter.record_failure(peer, &person).await;
        return Ok(gone());
    };
    let decision = match form.get("decision") {
        Some("allow") => Decision::Allow,
        _ => Decision::Deny,
    };
    let actor = Actor {
        kind: ActorKind::User,
        id: user.user.id.clone(),
        name: user.user.email.clone(),
        org_id: Some(user.user.org_id.clone()),
        address: peer.to_string(),
    };
    let now = state.clock.now();
    match device_code::decide(
        state.store.as_ref(),
        &record,
        &ctx.app,
        &s,
        &actor,
        decision,
        now,
    )
    .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Ok(gone()),
        Err(e) => return Err(pages::store_failure(e)),
    }
    Ok(match decision {
        Decision::Allow => pages::message(
            StatusCode::OK,
            "Device connected",
            &format!(
                "{} can now access your account from your device. You can close this page and return to it.",
                ctx.app.name
            ),
            None,
        ),
        Decision::Deny => pages::message(
            StatusCode::OK,
            "Access denied",
            &format!(
                "{} was not given access. You can close this page.",
                ctx.app.name
            ),
            None,
        ),
    })
}

fn gone() -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This code can no longer be used",
        "The code has expired or was already used. Start again on your device.",
        Some((
            DEVICE_VERIFICATION_PATH.to_owned(),
            "Enter another code".to_owned(),
        )),
    )
}
