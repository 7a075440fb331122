//! The person's own security page, `/account/security`: set up an
//! authenticator app (TOTP, RFC 6238) with the QR code drawn here as SVG, confirm
//! it with a code before it counts, get ten recovery codes (shown once, stored
//! as digests), and remove it again (password or a current code required).
//!
//! Reached with a session, or right after the password when the organization
//! requires a second factor and the person has none yet: then the pending cookie
//! of [`second_factor`] lets them enrol (and nothing else), and confirming signs
//! them in with both factors. Every form is CSRF-checked like the sign-in forms.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::form::Form;
use gatehouse_core::mfa;
use gatehouse_core::model::{User, UserStatus};
use gatehouse_core::ports::StoreError;
use serde::Deserialize;

use crate::client_addr::ClientAddr;
use crate::pages::{self, AccountSecurityPage};
use crate::second_factor::{self, CodeRefusal};
use crate::security_events;
use crate::session;
use crate::signin;
use crate::state::AppState;

pub const PATH: &str = "/account/security";
const BEGIN: &str = "/account/security/totp";
const CONFIRM: &str = "/account/security/totp/confirm";
const REMOVE: &str = "/account/security/totp/remove";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show))
        .route(BEGIN, post(begin))
        .route(CONFIRM, post(confirm))
        .route(REMOVE, post(remove))
}

pub(crate) type Step<T> = Result<T, Response>;

/// Who is at the page: signed in, or only past the password and obliged to enrol.
pub(crate) struct Who {
    pub(crate) user: User,
    /// Past the password only (no session yet).
    pub(crate) pending: bool,
    /// The session's sign-in had a second factor.
    pub(crate) mfa: bool,
}

pub(crate) async fn who(state: &AppState, jar: &CookieJar) -> Step<Who> {
    let s = session::current(state, jar)
        .await
        .map_err(pages::store_failure)?;
    if let Some(s) = s {
        match state.store.user_by_id(&s.user_id).await {
            Ok(user) if user.status == UserStatus::Active => {
                return Ok(Who {
                    user,
                    pending: false,
                    mfa: mfa::is_mfa(&s.amr),
                });
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(pages::store_failure(e)),
        }
    }
    match second_factor::pending(state, jar).await {
        // Past the password only: enrolling is for someone with no factor yet
        // (someone with a passkey or an app must use it instead, not add another).
        Ok(Some(user)) if must_enrol(state, &user).await? => Ok(Who {
            user,
            pending: true,
            mfa: false,
        }),
        Ok(Some(_)) => Err(pages::message(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "Finish signing in with your second factor first.",
            Some(("/console".to_owned(), "Sign in".to_owned())),
        )),
        Ok(None) => Err(pages::message(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "Sign in to manage your account's security.",
            Some(("/console".to_owned(), "Sign in".to_owned())),
        )),
        Err(e) => Err(pages::store_failure(e)),
    }
}

/// The person has no second factor yet (so one past the password may enrol).
async fn must_enrol(state: &AppState, user: &User) -> Step<bool> {
    let need = second_factor::need(state, user)
        .await
        .map_err(pages::store_failure)?;
    Ok(!need.has_factor())
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `GET /account/security`
async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = q
        .next
        .as_deref()
        .map(|n| second_factor::local_next(Some(n)));
    match status_page(&state, jar, next.unwrap_or(""), StatusCode::OK, None).await {
        Ok(r) | Err(r) => r,
    }
}

async fn status_page(
    state: &AppState,
    jar: CookieJar,
    next: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Step<Response> {
    status_page_with(state, jar, next, status, error, None).await
}

/// The status page, with what just happened to a passkey (`notice`).
pub(crate) async fn status_page_with(
    state: &AppState,
    jar: CookieJar,
    next: &str,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Step<Response> {
    let who = who(state, &jar).await?;
    let need = second_factor::need(state, &who.user)
        .await
        .map_err(pages::store_failure)?;
    let left = if need.enrolled {
        state
            .store
            .recovery_codes_left(&who.user.id)
            .await
            .map_err(pages::store_failure)?
    } else {
        0
    };
    let passkeys = crate::account_passkeys::lines(state, &who.user.id)
        .await
        .map_err(pages::store_failure)?;
    Ok(render(
        state,
        jar,
        status,
        AccountSecurityPage {
            email: &who.user.email,
            mode: "status",
            enrolled: need.enrolled,
            must_enrol: need.required && !need.has_factor(),
            pending: who.pending,
            recovery_left: left,
            error,
            passkeys_on: state.webauthn.is_some(),
            passkey_room: passkeys.len() < gatehouse_core::passkey::MAX_PER_USER as usize,
            passkeys,
            notice,
            ..AccountSecurityPage::blank(next)
        },
    ))
}

fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    mut page: AccountSecurityPage<'_>,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    page.csrf = csrf;
    (
        jar,
        pages::render_with_csp(status, &page, crate::passkey::PAGE_CSP),
    )
        .into_response()
}

/// A posted form of this page and who posted it.
pub(crate) async fn posted(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<(Form, Who, String)> {
    let form = signin::page_form(state, jar, headers, body)?;
    let who = who(state, jar).await?;
    let next = match form.get("next") {
        Some(n) if !n.is_empty() => second_factor::local_next(Some(n)).to_owned(),
        _ => String::new(),
    };
    Ok((form, who, next))
}

/// `POST /account/security/totp`: a new secret, shown once, to be confirmed.
async fn begin(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match begin_step(&state, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn begin_step(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (_, who, next) = posted(state, &jar, headers, body).await?;
    let secret = mfa::new_secret();
    let sealed = second_factor::seal_secret(state, &who.user.id, &secret)
        .ok_or_else(|| pages::store_failure(StoreError::Internal("sealing failed".into())))?;
    match state
        .store
        .begin_totp(&who.user.id, &sealed, state.clock.now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return status_page(
                state,
                jar,
                &next,
                StatusCode::CONFLICT,
                Some("An authenticator app is set up already: remove it first to set up another."),
            )
            .await;
        }
        Err(e) => return Err(pages::store_failure(e)),
    }
    Ok(setup_page(
        state,
        jar,
        &who.user,
        &secret,
        &next,
        StatusCode::OK,
        None,
    ))
}

fn setup_page(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    secret: &[u8],
    next: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let uri = mfa::otpauth_uri(secret, "Gatehouse", &user.email).unwrap_or_default();
    let qr = qr_data_uri(&uri).unwrap_or_default();
    let b32 = mfa::secret_base32(secret);
    render(
        state,
        jar,
        status,
        AccountSecurityPage {
            email: &user.email,
            mode: "setup",
            qr: &qr,
            secret: &b32,
            error,
            ..AccountSecurityPage::blank(next)
        },
    )
}

/// The QR code of `text` as an SVG `data:` URI (drawn here, no outside service).
fn qr_data_uri(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg)
    ))
}

/// `POST /account/security/totp/confirm`: the first code; then the factor
/// counts, the recovery codes are shown once, and the session has both factors.
async fn confirm(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match confirm_step(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn confirm_step(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, who, next) = posted(state, &jar, headers, body).await?;
    let user = &who.user;
    let factor = match state.store.totp_factor(&user.id).await {
        Ok(f) if f.confirmed_at.is_none() => f,
        Ok(_) | Err(StoreError::NotFound) => {
            return status_page(
                state,
                jar,
                &next,
                StatusCode::CONFLICT,
                Some("There is no authenticator app waiting to be confirmed: start again."),
            )
            .await;
        }
        Err(e) => return Err(pages::store_failure(e)),
    };
    let secret =
        second_factor::open_secret(state, &user.id, &factor.sealed_secret).ok_or_else(|| {
            pages::store_failure(StoreError::Internal("the TOTP secret does not open".into()))
        })?;
    let limiter = &state.login_limiter;
    let key = format!("second-factor\n{}", user.id);
    if let Some(wait) = limiter
        .address_blocked(ip)
        .or(limiter.key_blocked_anywhere(&key).await)
    {
        let why = CodeRefusal::Throttled(wait.0);
        return Ok(setup_page(
            state,
            jar,
            user,
            &secret,
            &next,
            why.status(),
            Some(&why.message()),
        ));
    }
    let code = form.get("code").unwrap_or("");
    let Some(step) = mfa::check(&secret, code, state.clock.now()) else {
        let why = match limiter.record_failure(ip, &key).await {
            Some(wait) => CodeRefusal::Throttled(wait.0),
            None => CodeRefusal::Wrong,
        };
        let msg = match why {
            CodeRefusal::Throttled(_) => why.message(),
            _ => "That code is not right: enter the 6-digit code the app shows now.".to_owned(),
        };
        return Ok(setup_page(
            state,
            jar,
            user,
            &secret,
            &next,
            why.status(),
            Some(&msg),
        ));
    };
    let codes = mfa::new_recovery_codes();
    let digests: Vec<String> = codes
        .iter()
        .map(|c| mfa::recovery_digest(&user.id, c))
        .collect();
    let audit = security_events::event(
        state,
        user,
        ip,
        security_events::TOTP_ENROLLED,
        "set up an authenticator app (TOTP) and 10 recovery codes",
    );
    match state
        .store
        .confirm_totp(&user.id, step, &digests, state.clock.now(), &audit)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return status_page(
                state,
                jar,
                &next,
                StatusCode::CONFLICT,
                Some("There is no authenticator app waiting to be confirmed: start again."),
            )
            .await;
        }
        Err(e) => return Err(pages::store_failure(e)),
    }
    // The person just proved both factors (the password for this session or
    // the pending sign-in, and the code): the session says so from now on.
    let jar = if who.mfa {
        jar
    } else {
        second_factor::complete(state, jar, user, ip)
            .await
            .map_err(pages::store_failure)?
            .1
    };
    Ok(render(
        state,
        jar,
        StatusCode::OK,
        AccountSecurityPage {
            email: &user.email,
            mode: "codes",
            recovery_codes: codes,
            ..AccountSecurityPage::blank(&next)
        },
    ))
}

/// `POST /account/security/totp/remove`: with the password or a current code.
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
        return status_page(
            state,
            jar,
            &next,
            StatusCode::FORBIDDEN,
            Some("Sign in first."),
        )
        .await;
    }
    let user = &who.user;
    let code = form.get("code").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let proven = if !code.is_empty() {
        match second_factor::check_code(state, ip, user, code)
            .await
            .map_err(pages::store_failure)?
        {
            Ok(()) => Ok(()),
            Err(why) => Err(why),
        }
    } else {
        password_ok(state, ip, user, password).await
    };
    if let Err(why) = proven {
        let msg = match why {
            CodeRefusal::Throttled(_) => why.message(),
            _ => "That password or code is not right: the authenticator app was not removed."
                .to_owned(),
        };
        let mut r = status_page(state, jar, &next, why.status(), Some(&msg)).await?;
        if let Some(secs) = why.retry_after() {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        return Ok(r);
    }
    let audit = security_events::event(
        state,
        user,
        ip,
        security_events::TOTP_REMOVED,
        "removed the authenticator app (TOTP) and its recovery codes",
    );
    match state.store.remove_totp(&user.id, &audit).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(pages::store_failure(e)),
    }
    status_page(state, jar, &next, StatusCode::OK, None).await
}

/// The password check for removal, throttled like sign-in.
async fn password_ok(
    state: &AppState,
    ip: IpAddr,
    user: &User,
    password: &str,
) -> Result<(), CodeRefusal> {
    let limiter = &state.login_limiter;
    let key = format!("second-factor\n{}", user.id);
    if let Some(wait) = limiter
        .address_blocked(ip)
        .or(limiter.key_blocked_anywhere(&key).await)
    {
        return Err(CodeRefusal::Throttled(wait.0));
    }
    if signin::verify_off_thread(state, password, user.password_hash.clone()).await {
        return Ok(());
    }
    match limiter.record_failure(ip, &key).await {
        Some(wait) => Err(CodeRefusal::Throttled(wait.0)),
        None => Err(CodeRefusal::Wrong),
    }
}
