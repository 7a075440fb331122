//! Signing in with email and password, shared by the authorization endpoint's
//! login page and the console: the CSRF-checked form, throttling, the Argon2
//! check off the async workers (against a dummy hash for unknown accounts), and
//! the session. It decides nothing about what the caller shows next; each caller
//! renders its own page from the [`Attempt`].
//!
//! Throttling must not let a stranger lock a person out. Failures are counted
//! per (account, address) and per address, and only those block (429, before
//! the password is checked): the address that guessed is refused, while the
//! account's owner, from an address that never failed, always gets in with the
//! right password. Failures against the account from everywhere only hold the
//! wrong-password answer back, by a delay capped at a few seconds.
//!
//! Emails are unique per organization. At the authorization endpoint the account
//! is looked up in the app's organization only (a person authorizes only their
//! own organization's apps). The console has no app: the password is checked
//! against each account with the email (at most [`MAX_CANDIDATES`], oldest
//! first, every one of them, so the time does not depend on which matched, and
//! an unknown email costs one check like a single account); one match signs in,
//! several ask for the organization.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::form::Form;
use gatehouse_core::limits::MAX_EMAIL;
use gatehouse_core::model::{Session, User, UserStatus};
use gatehouse_core::password;
use gatehouse_core::ports::StoreError;

use crate::pages;
use crate::second_factor;
use crate::security_events;
use crate::session;
use crate::state::AppState;

/// How a sign-in ended.
pub enum Attempt {
    SignedIn {
        user: Box<User>,
        session: Session,
        jar: CookieJar,
    },
    Refused {
        why: Refusal,
        jar: CookieJar,
    },
    /// The password is right, and a second factor is needed before any session
    /// (`need.enrolled`: ask for a code; otherwise the person must enrol one).
    /// The jar holds the pending cookie of [`second_factor`].
    SecondFactor {
        user: Box<User>,
        need: second_factor::Need,
        jar: CookieJar,
    },
}

/// Where the account is looked for.
#[derive(Debug, Clone, Copy)]
pub enum Within<'a> {
    /// The organization (id) of the app being authorized.
    Org(&'a str),
    /// Any organization (the console); `org_slug` picks one when the email
    /// belongs to several.
    AnyOrg { org_slug: Option<&'a str> },
}

/// Accounts of one email checked at a console sign-in, at most.
pub const MAX_CANDIDATES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong email or password, or a deactivated account (not told apart).
    WrongCredentials,
    /// The password is right for accounts of several organizations: the person
    /// must say which (only ever told after a correct password).
    ChooseOrganization,
    /// Too many failures for this account or address: wait this many seconds.
    Throttled(u64),
    /// The email is longer than any address can be.
    EmailTooLong,
    /// The person's organization signs this address in through its own
    /// identity provider and turned passwords off for it (only ever told after
    /// a correct password).
    PasswordsOff,
}

impl Refusal {
    /// The metrics' `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::WrongCredentials => "wrong_credentials",
            Refusal::ChooseOrganization => "choose_organization",
            Refusal::Throttled(_) => "throttled",
            Refusal::EmailTooLong => "email_too_long",
            Refusal::PasswordsOff => "passwords_off",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Refusal::WrongCredentials => StatusCode::UNAUTHORIZED,
            Refusal::ChooseOrganization => StatusCode::OK,
            Refusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::EmailTooLong => StatusCode::BAD_REQUEST,
            Refusal::PasswordsOff => StatusCode::FORBIDDEN,
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::WrongCredentials => "Wrong email or password.".to_owned(),
            Refusal::ChooseOrganization => {
                "This email belongs to several organizations: enter yours.".to_owned()
            }
            Refusal::Throttled(secs) => {
                format!("Too many failed sign-ins. Try again in {secs} seconds.")
            }
            Refusal::EmailTooLong => "That email address is too long.".to_owned(),
            Refusal::PasswordsOff => "Your organization signs you in through its own identity \
                 provider and has turned passwords off for your address: choose \
                 \u{201c}Sign in with your organization\u{201d} (or use a passkey)."
                .to_owned(),
        }
    }

    /// The `Retry-After` seconds, when throttled.
    pub fn retry_after(self) -> Option<u64> {
        match self {
            Refusal::WrongCredentials
            | Refusal::ChooseOrganization
            | Refusal::EmailTooLong
            | Refusal::PasswordsOff => None,
            Refusal::Throttled(secs) => Some(secs),
        }
    }
}

/// The organization field of a sign-in form (console, device page), bounded.
pub fn org_slug(form: &Form) -> Option<&str> {
    form.get("organization")
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 100)
}

/// The email as sign-in compares it.
pub fn normalized_email(form: &Form) -> String {
    form.get("email").unwrap_or("").trim().to_lowercase()
}

/// Checks `email` and `password` and, when they match an active user, starts a
/// session (one cookie for the console and the authorization endpoint).
pub async fn attempt(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    email: &str,
    password_given: &str,
    within: Within<'_>,
) -> Result<Attempt, StoreError> {
    if email.len() > MAX_EMAIL {
        return Ok(refused(state, Refusal::EmailTooLong, jar));
    }
    let limiter = &state.login_limiter;
    let here = pair_key(email, ip);
    if let Some(wait) = limiter
        .address_blocked(ip)
        .or(limiter.key_blocked_anywhere(&here).await)
    {
        return Ok(refused(state, Refusal::Throttled(wait.0), jar));
    }
    let candidates = candidates(state, email, within).await?;
    let mut matched: Vec<User> = Vec::new();
    // Known accounts that refused this sign-in, and why (security events).
    let mut refusals: Vec<(User, &str)> = Vec::new();
    if candidates.is_empty() {
        verify_off_thread(state, password_given, None).await;
    }
    for u in candidates {
        let ok = verify_off_thread(state, password_given, u.password_hash.clone()).await;
        match (ok, u.status == UserStatus::Active) {
            (true, true) => matched.push(u),
            (true, false) => refusals.push((u, "account deactivated")),
            (false, _) => refusals.push((u, "wrong password")),
        }
    }
    if matched.len() > 1 {
        return Ok(refused(state, Refusal::ChooseOrganization, jar));
    }
    match matched.pop() {
        // Every surface (console, device page, authorization endpoint) obeys
        // the organization's "no passwords for our domains": checked after the
        // password, so it tells nothing to someone who does not know it.
        Some(u) if passwords_off(state, &u).await? => {
            security_events::signin(state, &u, ip, Some("passwords are off for this address"))
                .await?;
            Ok(refused(state, Refusal::PasswordsOff, jar))
        }
        Some(u) => {
            let need = second_factor::need(state, &u).await?;
            if need.asks() {
                tracing::info!(user_id = %u.id, "password accepted; second step");
                let jar = second_factor::set_pending(state, jar, &u.id);
                return Ok(Attempt::SecondFactor {
                    user: Box::new(u),
                    need,
                    jar,
                });
            }
            let (session, jar) = session::start(state, jar, &u.id, state.clock.now()).await?;
            tracing::info!(user_id = %u.id, "signed in");
            security_events::signin(state, &u, ip, None).await?;
            Ok(Attempt::SignedIn {
                user: Box::new(u),
                session,
                jar,
            })
        }
        _ => {
            tracing::info!(%ip, "sign-in failed");
            for (u, why) in &refusals {
                security_events::signin(state, u, ip, Some(why)).await?;
            }
            let delay = limiter.slow_down(email);
            let why = match limiter.record_failure(ip, &here).await {
                Some(wait) => Refusal::Throttled(wait.0),
                None => Refusal::WrongCredentials,
            };
            tokio::time::sleep(delay).await;
            Ok(refused(state, why, jar))
        }
    }
}

/// Whether `u`'s organization sends their address to its identity provider
/// and allows no password for it ([`crate::upstream`]).
async fn passwords_off(state: &AppState, u: &User) -> Result<bool, StoreError> {
    match state.store.upstream_provider(&u.org_id).await {
        Ok(p) => Ok(p.owns(&u.email) && !p.allow_passwords),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The throttle key of one address trying one account (addresses as the
/// limiter counts them: IPv6 per /64).
fn pair_key(email: &str, ip: IpAddr) -> String {
    format!("{email}\n{}", crate::client_addr::bucket_key(ip))
}

/// The accounts the password is checked against (see the module docs).
async fn candidates(
    state: &AppState,
    email: &str,
    within: Within<'_>,
) -> Result<Vec<User>, StoreError> {
    let org_id = match within {
        Within::Org(id) => Some(id.to_owned()),
        Within::AnyOrg { org_slug: None } => None,
        Within::AnyOrg {
            org_slug: Some(slug),
        } => match state.store.org_by_slug(slug).await {
            Ok(o) => Some(o.id),
            Err(StoreError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        },
    };
    match org_id {
        Some(id) => match state.store.user_by_email(&id, email).await {
            Ok(u) => Ok(vec![u]),
            Err(StoreError::NotFound) => Ok(Vec::new()),
            Err(e) => Err(e),
        },
        None => state.store.users_by_email(email, MAX_CANDIDATES).await,
    }
}

fn refused(state: &AppState, why: Refusal, jar: CookieJar) -> Attempt {
    state.metrics.record_signin_failure(why.label());
    Attempt::Refused { why, jar }
}

/// Argon2 takes tens of milliseconds; keep it off the async workers. Unknown
/// accounts are checked against a dummy hash so timing does not reveal them.
pub(crate) async fn verify_off_thread(
    state: &AppState,
    password_given: &str,
    hash: Option<String>,
) -> bool {
    // Each check holds 19 MiB: bound how many run at once, and let the rest queue,
    // so a burst of sign-ins (or of guesses) cannot balloon memory.
    let Ok(_permit) = state.password_checks.acquire().await else {
        return false;
    };
    let pw = password_given.to_owned();
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&pw, &h),
        None => {
            let _ = password::verify(&pw, DUMMY_HASH);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// An Argon2id hash of a random value, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5m0hXfXOYQv4sT2vb1gqS9hWz0V7v7F0a1pQJ5s3aJ0";

/// A posted page form as a handler's last extractor: [`page_form`]'s checks
/// done before the handler runs, the body read only up to the configured
/// bound; a refusal is the page it answers with.
pub struct PageForm {
    pub form: Form,
    pub jar: CookieJar,
}

impl axum::extract::FromRequest<AppState> for PageForm {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let jar = CookieJar::from_headers(&parts.headers);
        // Nothing past the bound is read: `to_bytes` stops there.
        let body = axum::body::to_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(|_| too_large())?;
        let form = page_form(state, &jar, &parts.headers, &body)?;
        Ok(Self { form, jar })
    }
}

/// A posted page form, bounded and CSRF-checked (synchronizer token + Origin).
pub fn page_form(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Form, Response> {
    if body.len() > state.config.max_body_bytes {
        return Err(too_large());
    }
    let form = Form::parse(body).map_err(|e| {
        pages::message(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            &e.description,
            None,
        )
    })?;
    if !session::csrf_ok(state, jar, headers, form.get("csrf_token")) {
        return Err(pages::message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from this site or has expired. Go back to the app and start again.",
            None,
        ));
    }
    Ok(form)
}

/// A form over the configured bound (or one whose body could not be read to it).
fn too_large() -> Response {
    pages::message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request too large",
        "The form was too large.",
        None,
    )
}
