//! The second step of signing in: a TOTP code (RFC 6238), a recovery code or
//! a passkey (the page offers only those the person has), after a correct
//! password or a sign-in through the organization's identity provider, before
//! any session exists. Shared by the
//! authorization endpoint (which carries its request in the form), the console
//! and the device page (which come back to a local `next` path).
//!
//! Between the two steps the browser holds a short-lived HttpOnly cookie with
//! the user id sealed under the key-encryption key (AES-256-GCM, [`PENDING_TTL`]
//! seconds): any instance can open it, nothing is stored, and it proves only that
//! the password was right a moment ago. It never signs anyone in by itself.
//!
//! Codes are throttled as passwords are (`signin`): failures count per account
//! and per address, and a full bucket answers 429 before the code is checked;
//! nothing locks the person out for good. A code is accepted only for a step
//! later than the last one accepted (kept in the store), so it works once.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::mfa;
use gatehouse_core::model::{Session, User, UserStatus};
use gatehouse_core::ports::StoreError;
use serde::{Deserialize, Serialize};

use crate::client_addr::ClientAddr;
use crate::pages::{self, SecondFactorPage};
use crate::security_events;
use crate::session;
use crate::signin;
use crate::state::AppState;

/// The cookie between the password and the second step.
pub const PENDING_COOKIE: &str = "gatehouse_mfa_pending";
/// How long a person has for the second step (or for enrolling, when they must).
pub const PENDING_TTL: UnixTime = 10 * 60;
/// The generic second-step page (console, device page).
pub const PATH: &str = "/signin/second-factor";

#[derive(Serialize, Deserialize)]
struct Pending {
    uid: String,
    exp: UnixTime,
    /// How the first step was made (absent in cookies set before it was kept).
    #[serde(default)]
    first: First,
}

/// The first factor of a sign-in that waits for its second: what the
/// session's `amr` (RFC 8176) starts with once both are given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum First {
    /// The password (`pwd`).
    #[default]
    #[serde(rename = "pwd")]
    Password,
    /// The organization's identity provider (`fed`, [`crate::upstream`]).
    #[serde(rename = "fed")]
    Federated,
}

impl First {
    fn amr(self) -> &'static str {
        match self {
            First::Password => mfa::AMR_PASSWORD,
            First::Federated => gatehouse_core::upstream::AMR_FEDERATED,
        }
    }

    /// The methods of this first factor followed by a one-time code.
    pub fn then_code(self) -> Vec<String> {
        Vec::from([self.amr(), mfa::AMR_OTP, mfa::AMR_MFA].map(str::to_owned))
    }

    /// The methods of this first factor followed by a passkey.
    pub fn then_passkey(self) -> Vec<String> {
        Vec::from([self.amr(), gatehouse_core::passkey::AMR_HWK, mfa::AMR_MFA].map(str::to_owned))
    }

    /// The audit log's words for it.
    pub fn words(self) -> &'static str {
        match self {
            First::Password => "a password",
            First::Federated => "the organization's identity provider",
        }
    }
}

const PENDING_AAD: &str = "gatehouse-mfa-pending";

/// Remembers that `user_id` got the password right (for [`PENDING_TTL`]).
pub fn set_pending(state: &AppState, jar: CookieJar, user_id: &str) -> CookieJar {
    set_pending_after(state, jar, user_id, First::Password)
}

/// Remembers that `user_id` gave the first factor `first` (for [`PENDING_TTL`]).
pub fn set_pending_after(
    state: &AppState,
    jar: CookieJar,
    user_id: &str,
    first: First,
) -> CookieJar {
    let Ok(plain) = serde_json::to_vec(&Pending {
        uid: user_id.to_owned(),
        exp: state.clock.now() + PENDING_TTL,
        first,
    }) else {
        return jar;
    };
    let Ok(sealed) = state.kek().seal(PENDING_AAD, &plain) else {
        return jar;
    };
    jar.add(
        Cookie::build((PENDING_COOKIE, sealed))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.config.secure_cookies())
            .max_age(cookie::time::Duration::seconds(PENDING_TTL))
            .build(),
    )
}

/// The user whose password was right a moment ago in this browser, if any.
pub fn pending_user(state: &AppState, jar: &CookieJar) -> Option<String> {
    opened(state, jar).map(|p| p.uid)
}

/// How the pending sign-in's first step was made (a password when none is pending).
pub fn pending_first(state: &AppState, jar: &CookieJar) -> First {
    opened(state, jar).map(|p| p.first).unwrap_or_default()
}

fn opened(state: &AppState, jar: &CookieJar) -> Option<Pending> {
    let c = jar.get(PENDING_COOKIE)?;
    if c.value().len() > 1024 {
        return None;
    }
    let plain = state.kek().open(PENDING_AAD, c.value()).ok()?;
    let p: Pending = serde_json::from_slice(&plain).ok()?;
    (p.exp > state.clock.now()).then_some(p)
}

pub fn clear_pending(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(PENDING_COOKIE).path("/"))
}

/// The pending user, loaded (and still active).
pub async fn pending(state: &AppState, jar: &CookieJar) -> Result<Option<User>, StoreError> {
    let Some(uid) = pending_user(state, jar) else {
        return Ok(None);
    };
    match state.store.user_by_id(&uid).await {
        Ok(u) if u.status == UserStatus::Active => Ok(Some(u)),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a person's sign-in needs beyond the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// They have a confirmed authenticator app.
    pub enrolled: bool,
    /// They have at least one passkey.
    pub passkey: bool,
    /// Their organization requires a second factor (of everyone, or of their role).
    pub required: bool,
}

impl Need {
    /// Whether the password alone does not sign them in.
    pub fn asks(self) -> bool {
        self.has_factor() || self.required
    }

    /// Whether they have a second factor to give (app or passkey).
    pub fn has_factor(self) -> bool {
        self.enrolled || self.passkey
    }
}

pub async fn need(state: &AppState, user: &User) -> Result<Need, StoreError> {
    let enrolled = match state.store.totp_factor(&user.id).await {
        Ok(f) => f.confirmed_at.is_some(),
        Err(StoreError::NotFound) => false,
        Err(e) => return Err(e),
    };
    // The organization's rule, or one for the person's role.
    let org_wide = state.store.org_requires_mfa(&user.org_id).await?;
    let roles = state.store.mfa_roles(&user.org_id).await?;
    let required = gatehouse_core::mfa_policy::required_for(org_wide, &roles, &user.role);
    let passkey = !state.store.passkeys(&user.id).await?.is_empty();
    Ok(Need {
        enrolled,
        passkey,
        required,
    })
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    Wrong,
    /// The code's step was accepted before (a replay).
    Used,
    Throttled(u64),
}

impl CodeRefusal {
    pub fn status(self) -> StatusCode {
        match self {
            CodeRefusal::Wrong | CodeRefusal::Used => StatusCode::UNAUTHORIZED,
            CodeRefusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn message(self) -> String {
        match self {
            CodeRefusal::Wrong => "That code is not right. Enter the 6-digit code your authenticator app shows now, or a recovery code.".to_owned(),
            CodeRefusal::Used => "That code was used already. Wait for the next one and enter it.".to_owned(),
            CodeRefusal::Throttled(secs) => format!("Too many wrong codes. Try again in {secs} seconds."),
        }
    }

    pub fn retry_after(self) -> Option<u64> {
        match self {
            CodeRefusal::Throttled(s) => Some(s),
            CodeRefusal::Wrong | CodeRefusal::Used => None,
        }
    }
}

/// The TOTP secret of `factor`, opened.
pub fn open_secret(state: &AppState, user_id: &str, sealed: &str) -> Option<Vec<u8>> {
    state.kek().open(&mfa::seal_aad(user_id), sealed).ok()
}

pub fn seal_secret(state: &AppState, user_id: &str, secret: &[u8]) -> Option<String> {
    state.kek().seal(&mfa::seal_aad(user_id), secret).ok()
}

fn throttle_key(user_id: &str) -> String {
    format!("second-factor\n{user_id}")
}

/// Checks `code` (TOTP or recovery) for `user`'s confirmed factor, throttled.
/// `Ok(Ok(()))` when it is accepted (and now used).
pub async fn check_code(
    state: &AppState,
    ip: IpAddr,
    user: &User,
    code: &str,
) -> Result<Result<(), CodeRefusal>, StoreError> {
    let limiter = &state.login_limiter;
    let key = throttle_key(&user.id);
    if let Some(wait) = limiter
        .address_blocked(ip)
        .or(limiter.key_blocked_anywhere(&key).await)
    {
        return Ok(Err(CodeRefusal::Throttled(wait.0)));
    }
    let why = match accept(state, ip, user, code).await? {
        Ok(()) => return Ok(Ok(())),
        Err(why) => why,
    };
    let detail = match why {
        CodeRefusal::Used => "second step refused: code used already",
        _ => "second step refused: wrong code",
    };
    security_events::record(
        state,
        user,
        ip,
        security_events::SECOND_FACTOR_FAILED,
        detail,
    )
    .await?;
    let delay = limiter.slow_down(&key);
    let why = match limiter.record_failure(ip, &key).await {
        Some(wait) => CodeRefusal::Throttled(wait.0),
        None => why,
    };
    tokio::time::sleep(delay).await;
    Ok(Err(why))
}

async fn accept(
    state: &AppState,
    ip: IpAddr,
    user: &User,
    code: &str,
) -> Result<Result<(), CodeRefusal>, StoreError> {
    let code = code.trim();
    if code.is_empty() || code.len() > mfa::MAX_CODE {
        return Ok(Err(CodeRefusal::Wrong));
    }
    let factor = match state.store.totp_factor(&user.id).await {
        Ok(f) if f.confirmed_at.is_some() => f,
        Ok(_) | Err(StoreError::NotFound) => return Ok(Err(CodeRefusal::Wrong)),
        Err(e) => return Err(e),
    };
    if mfa::is_totp_shaped(code) {
        let Some(secret) = open_secret(state, &user.id, &factor.sealed_secret) else {
            return Err(StoreError::Internal("the TOTP secret does not open".into()));
        };
        return Ok(match mfa::check(&secret, code, state.clock.now()) {
            None => Err(CodeRefusal::Wrong),
            Some(step) if state.store.accept_totp_step(&user.id, step).await? => Ok(()),
            Some(_) => Err(CodeRefusal::Used),
        });
    }
    let digest = mfa::recovery_digest(&user.id, code);
    if !state
        .store
        .use_recovery_code(&user.id, &digest, state.clock.now())
        .await?
    {
        return Ok(Err(CodeRefusal::Wrong));
    }
    let left = state.store.recovery_codes_left(&user.id).await?;
    security_events::record(
        state,
        user,
        ip,
        security_events::RECOVERY_CODE_USED,
        &format!("signed in with a recovery code ({left} left)"),
    )
    .await?;
    Ok(Ok(()))
}

/// Starts the session of a sign-in with both factors (replacing this browser's
/// session, if any: a step-up gets a new session id) and ends the pending state.
pub async fn complete(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    ip: IpAddr,
) -> Result<(Session, CookieJar), StoreError> {
    let first = pending_first(state, &jar);
    let detail = format!("signed in with {} and a one-time code", first.words());
    complete_with(state, jar, user, ip, first.then_code(), &detail).await
}

/// [`complete`] for a sign-in by the methods `amr` (a passkey: with or
/// without the password), audited as `detail`.
pub async fn complete_with(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    ip: IpAddr,
    amr: Vec<String>,
    detail: &str,
) -> Result<(Session, CookieJar), StoreError> {
    let jar = session::end(state, jar).await?;
    let (s, jar) = session::start_with(state, jar, &user.id, state.clock.now(), amr).await?;
    tracing::info!(user_id = %user.id, "signed in with a second factor");
    security_events::record(state, user, ip, security_events::SIGNIN_SUCCEEDED, detail).await?;
    Ok((s, clear_pending(jar)))
}

/// The passkey as the second step, then the session (password + passkey).
pub async fn complete_with_passkey(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    user: &User,
    credential: &str,
) -> Result<(Result<Session, crate::passkey::Refusal>, CookieJar), StoreError> {
    let (outcome, jar) = crate::passkey::second_step(state, ip, jar, user, credential).await?;
    if let Err(why) = outcome {
        return Ok((Err(why), jar));
    }
    let first = pending_first(state, &jar);
    let detail = format!("signed in with {} and a passkey", first.words());
    let (s, jar) = complete_with(state, jar, user, ip, first.then_passkey(), &detail).await?;
    Ok((Ok(s), jar))
}

/// The second-step page, offering only the factors the person has
/// (`factors`). `request` (authorization endpoint) or `next` (the generic
/// page) says where the person goes on to.
#[allow(clippy::too_many_arguments)]
pub fn page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    error: Option<&str>,
    request: &str,
    next: &str,
    action: &str,
    factors: Need,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let passkey = factors.passkey && state.webauthn.is_some();
    let page = SecondFactorPage {
        error,
        csrf: &csrf,
        request,
        next,
        action,
        passkey,
        // Someone with only passkeys gets no code field (they have no code);
        // with passkeys off on this server, the code field is all there is.
        code: factors.enrolled || !passkey,
    };
    (
        jar,
        pages::render_with_csp(status, &page, crate::passkey::PAGE_CSP),
    )
        .into_response()
}

/// A refusal as the page again, with `Retry-After` when throttled.
#[allow(clippy::too_many_arguments)]
pub fn refused_page(
    state: &AppState,
    jar: CookieJar,
    why: CodeRefusal,
    request: &str,
    next: &str,
    action: &str,
    factors: Need,
) -> Response {
    let msg = why.message();
    let mut r = page(
        state,
        jar,
        why.status(),
        Some(&msg),
        request,
        next,
        action,
        factors,
    );
    if let Some(secs) = why.retry_after() {
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    r
}

/// A refused passkey as the page again, with `Retry-After` when throttled.
#[allow(clippy::too_many_arguments)]
pub fn passkey_refused_page(
    state: &AppState,
    jar: CookieJar,
    why: crate::passkey::Refusal,
    request: &str,
    next: &str,
    action: &str,
    factors: Need,
) -> Response {
    let msg = why.message();
    let mut r = page(
        state,
        jar,
        why.status(),
        Some(&msg),
        request,
        next,
        action,
        factors,
    );
    if let Some(secs) = why.retry_after() {
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    r
}

/// Where the person goes after the first step (`first`) when a second factor
/// is needed: the code page, or (without an authenticator yet) the enrolment page.
pub fn lead_on(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    need: Need,
    next: &str,
    first: First,
) -> Response {
    let jar = set_pending_after(state, jar, &user.id, first);
    let to = if need.has_factor() {
        with_next(PATH, next)
    } else {
        with_next(crate::account::PATH, next)
    };
    (jar, Redirect::to(&to)).into_response()
}

fn with_next(path: &str, next: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    format!("{path}?{q}")
}

/// A `next` that stays on this server: a path, never `//host` or `/\host`.
pub fn local_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 4096
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/account/security",
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(show).post(submit))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = local_next(q.next.as_deref());
    let user = match pending(&state, &jar).await {
        Ok(Some(u)) => u,
        Ok(None) => return expired(),
        Err(e) => return pages::store_failure(e),
    };
    match need(&state, &user).await {
        Ok(factors) => page(&state, jar, StatusCode::OK, None, "", next, PATH, factors),
        Err(e) => pages::store_failure(e),
    }
}

async fn submit(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    signin::PageForm { form, jar }: signin::PageForm,
) -> Response {
    let next = local_next(form.get("next")).to_owned();
    let user = match pending(&state, &jar).await {
        Ok(Some(u)) => u,
        Ok(None) => return expired(),
        Err(e) => return pages::store_failure(e),
    };
    let factors = match need(&state, &user).await {
        Ok(f) => f,
        Err(e) => return pages::store_failure(e),
    };
    if let Some(credential) = form.get("credential") {
        return match complete_with_passkey(&state, peer, jar, &user, credential).await {
            Ok((Ok(_), jar)) => (jar, Redirect::to(&next)).into_response(),
            Ok((Err(why), jar)) => passkey_refused_page(&state, jar, why, "", &next, PATH, factors),
            Err(e) => pages::store_failure(e),
        };
    }
    let code = form.get("code").unwrap_or("");
    match check_code(&state, peer, &user, code).await {
        Ok(Ok(())) => match complete(&state, jar, &user, peer).await {
            Ok((_, jar)) => (jar, Redirect::to(&next)).into_response(),
            Err(e) => pages::store_failure(e),
        },
        Ok(Err(why)) => refused_page(&state, jar, why, "", &next, PATH, factors),
        Err(e) => pages::store_failure(e),
    }
}

pub fn expired() -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "Sign in again",
        "This sign-in took too long or was not started here. Go back and sign in again.",
        None,
    )
}
