//! WebAuthn passkeys over webauthn-rs: the relying party (the issuer's host and
//! origin), the challenge endpoint the page's script calls, and the checks of
//! what the browser sends back: a new passkey (account page), a sign-in with a
//! passkey alone (discoverable credentials), a passkey as the second step.
//!
//! A ceremony's state (its challenge) is kept in the store under the digest of
//! a random value held in an HttpOnly cookie: it belongs to this browser, the
//! finishing request takes (deletes) it, so it works once, and it expires after
//! [`passkey::CHALLENGE_TTL`]. Attestation is `none`; user verification is
//! required (webauthn-rs's passkeys), so a passkey alone is multi-factor (see
//! `gatehouse_core::passkey`). A counter that did not go up is refused (by
//! webauthn-rs, and again by the store's conditional update). Failed assertions
//! are throttled like passwords: per (account, address) and per address, and
//! only slowed per account, never locked.

use std::net::IpAddr;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::model::{User, UserStatus};
use gatehouse_core::passkey::{self, Challenge, Purpose};
use gatehouse_core::ports::StoreError;
use gatehouse_core::secret;
use serde_json::{Value, json};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
};

use crate::client_addr::ClientAddr;
use crate::second_factor;
use crate::security_events;
use crate::session;
use crate::signin;
use crate::state::AppState;

/// Where the page's script asks for a challenge.
pub const CHALLENGE_PATH: &str = "/passkey/challenge";
/// The script (served from this origin, so pages' CSP stays `script-src 'self'`).
pub const SCRIPT_PATH: &str = "/assets/passkey.js";
const SCRIPT: &str = include_str!("../assets/passkey.js");
/// The cookie naming this browser's ceremony.
const COOKIE: &str = "gatehouse_passkey";

/// Pages with a passkey button: the page CSP plus this origin's script and
/// fetch. No `form-action`: a sign-in form's answer redirects to the app, and
/// browsers apply `form-action` to redirects too.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(CHALLENGE_PATH, post(challenge))
        .route(SCRIPT_PATH, get(script))
}

/// The relying party of `issuer`: its host is the RP id, its origin the only
/// one accepted. `None` for an IP-address host, which browsers refuse as an RP id.
pub fn relying_party(issuer: &str) -> Option<Webauthn> {
    let url = Url::parse(issuer).ok()?;
    let host = url.domain()?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    let built = webauthn_rs::WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name("Gatehouse").build());
    match built {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, issuer, "passkeys are off: the issuer's host cannot be a WebAuthn relying party");
            None
        }
    }
}

async fn script() -> Response {
    let mut r = SCRIPT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// Why a passkey was not accepted (said to the person without detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Passkeys are off on this server (its issuer host is an IP address).
    Off,
    /// No live challenge for this browser: it expired, was used, or never was.
    Expired,
    /// The passkey or its signature was not accepted.
    Wrong,
    /// Too many failures: wait this many seconds.
    Throttled(u64),
    /// The person has as many passkeys as allowed.
    TooMany,
    /// The name is not acceptable.
    Name(passkey::NameError),
    /// This passkey is registered already.
    Duplicate,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Off => StatusCode::NOT_FOUND,
            Refusal::Expired => StatusCode::BAD_REQUEST,
            Refusal::Wrong => StatusCode::UNAUTHORIZED,
            Refusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::TooMany | Refusal::Duplicate => StatusCode::CONFLICT,
            Refusal::Name(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::Off => "Passkeys are not available on this server.".to_owned(),
            Refusal::Expired => {
                "That passkey request expired or was used already: try again.".to_owned()
            }
            Refusal::Wrong => {
                "That passkey was not accepted. Try again, or use another way to sign in."
                    .to_owned()
            }
            Refusal::Throttled(secs) => {
                format!("Too many failed attempts. Try again in {secs} seconds.")
            }
            Refusal::TooMany => format!(
                "You have {} passkeys, the most allowed: remove one to add another.",
                passkey::MAX_PER_USER
            ),
            Refusal::Name(e) => e.message().to_owned(),
            Refusal::Duplicate => "This passkey is registered already.".to_owned(),
        }
    }

    pub fn retry_after(self) -> Option<u64> {
        match self {
            Refusal::Throttled(s) => Some(s),
            _ => None,
        }
    }
}

fn webauthn(state: &AppState) -> Result<&Webauthn, Refusal> {
    state.webauthn.as_deref().ok_or(Refusal::Off)
}

/// base64url of a credential id, as stored.
fn cred_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// The person's passkeys as webauthn-rs reads them (unreadable rows skipped).
fn parsed(rows: &[passkey::Passkey]) -> Vec<Passkey> {
    rows.iter()
        .filter_map(|r| serde_json::from_str(&r.credential).ok())
        .collect()
}

/// `POST /passkey/challenge` (the page's script; CSRF-checked form with
/// `purpose`): the options for `navigator.credentials`, and the cookie naming
/// this ceremony.
async fn challenge(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    signin::PageForm { form, jar }: signin::PageForm,
) -> Response {
    if let Some(wait) = state.login_limiter.address_blocked(peer) {
        return refusal_json(Refusal::Throttled(wait.0));
    }
    let Some(purpose) = form.get("purpose").and_then(Purpose::parse) else {
        return refusal_json(Refusal::Expired);
    };
    match begin(&state, &jar, purpose).await {
        Ok(Ok((options, ch, token))) => match state
            .store
            .put_passkey_challenge(&ch, state.clock.now())
            .await
        {
            Ok(()) => (set_cookie(&state, jar, token), Json(options)).into_response(),
            Err(e) => crate::pages::store_failure(e),
        },
        Ok(Err(why)) => refusal_json(why),
        Err(e) => crate::pages::store_failure(e),
    }
}

fn refusal_json(why: Refusal) -> Response {
    let mut r = (why.status(), Json(json!({ "error": why.message() }))).into_response();
    if let Some(secs) = why.retry_after() {
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    r
}

type Begun = Result<(Value, Challenge, String), Refusal>;

async fn begin(state: &AppState, jar: &CookieJar, purpose: Purpose) -> Result<Begun, StoreError> {
    let w = match webauthn(state) {
        Ok(w) => w,
        Err(why) => return Ok(Err(why)),
    };
    let (options, user_id, ceremony) = match purpose {
        Purpose::Register => {
            let Some(user) = registering_user(state, jar).await? else {
                return Ok(Err(Refusal::Expired));
            };
            let mine = state.store.passkeys(&user.id).await?;
            if mine.len() >= passkey::MAX_PER_USER as usize {
                return Ok(Err(Refusal::TooMany));
            }
            let handle = mine
                .first()
                .and_then(|p| Uuid::parse_str(&p.user_handle).ok())
                .unwrap_or_else(new_handle);
            let exclude = parsed(&mine).iter().map(|p| p.cred_id().clone()).collect();
            let display = user.name.as_deref().unwrap_or(&user.email);
            let Ok((ccr, reg)) =
                w.start_passkey_registration(handle, &user.email, display, Some(exclude))
            else {
                return Ok(Err(Refusal::Wrong));
            };
            let mut options = serde_json::to_value(ccr).unwrap_or_default();
            // A passkey must be discoverable to sign in without an email:
            // ask for a resident key (webauthn-rs leaves it "discouraged").
            if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
                sel["residentKey"] = json!("required");
                sel["requireResidentKey"] = json!(true);
            }
            let ceremony = serde_json::to_string(&Registration {
                reg,
                handle: handle.to_string(),
            });
            (options, Some(user.id), ceremony)
        }
        Purpose::SignIn => {
            let Ok((rcr, auth)) = w.start_discoverable_authentication() else {
                return Ok(Err(Refusal::Wrong));
            };
            let mut options = serde_json::to_value(rcr).unwrap_or_default();
            // webauthn-rs asks for conditional mediation; the page uses a button.
            if let Some(o) = options.as_object_mut() {
                o.remove("mediation");
            }
            (options, None, serde_json::to_string(&auth))
        }
        Purpose::SecondFactor => {
            let Some(user) = second_factor::pending(state, jar).await? else {
                return Ok(Err(Refusal::Expired));
            };
            let keys = parsed(&state.store.passkeys(&user.id).await?);
            if keys.is_empty() {
                return Ok(Err(Refusal::Wrong));
            }
            let Ok((rcr, auth)) = w.start_passkey_authentication(&keys) else {
                return Ok(Err(Refusal::Wrong));
            };
            let options = serde_json::to_value(rcr).unwrap_or_default();
            (options, Some(user.id), serde_json::to_string(&auth))
        }
    };
    let Ok(ceremony) = ceremony else {
        return Err(StoreError::Internal(
            "ceremony state did not serialize".into(),
        ));
    };
    let token = secret::random_token();
    let ch = Challenge {
        id_digest: secret::digest(&token),
        purpose,
        user_id,
        state: ceremony,
        expires_at: state.clock.now() + passkey::CHALLENGE_TTL,
    };
    Ok(Ok((options, ch, token)))
}

fn new_handle() -> Uuid {
    Uuid::parse_str(&secret::random_id()).unwrap_or_default()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Registration {
    reg: PasskeyRegistration,
    handle: String,
}

/// Who may register a passkey now: the signed-in person, or one past the
/// password who must give a second factor and has none yet.
async fn registering_user(state: &AppState, jar: &CookieJar) -> Result<Option<User>, StoreError> {
    if let Some(s) = session::current(state, jar).await? {
        return match state.store.user_by_id(&s.user_id).await {
            Ok(u) if u.status == UserStatus::Active => Ok(Some(u)),
            Ok(_) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        };
    }
    // Past the password only: just someone with no factor yet (who must enrol).
    match second_factor::pending(state, jar).await? {
        Some(u) => {
            let need = second_factor::need(state, &u).await?;
            Ok((!need.has_factor()).then_some(u))
        }
        None => Ok(None),
    }
}

fn set_cookie(state: &AppState, jar: CookieJar, token: String) -> CookieJar {
    jar.add(
        Cookie::build((COOKIE, token))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.config.secure_cookies())
            .max_age(cookie::time::Duration::seconds(passkey::CHALLENGE_TTL))
            .build(),
    )
}

/// Takes this browser's live challenge of `purpose` (and clears the cookie).
async fn take(
    state: &AppState,
    jar: CookieJar,
    purpose: Purpose,
) -> Result<(Result<Challenge, Refusal>, CookieJar), StoreError> {
    let token = jar
        .get(COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() <= 128);
    let jar = jar.remove(Cookie::build(COOKIE).path("/"));
    let Some(token) = token else {
        return Ok((Err(Refusal::Expired), jar));
    };
    match state
        .store
        .take_passkey_challenge(&secret::digest(&token), purpose, state.clock.now())
        .await
    {
        Ok(c) => Ok((Ok(c), jar)),
        Err(StoreError::NotFound) => Ok((Err(Refusal::Expired), jar)),
        Err(e) => Err(e),
    }
}

/// A new passkey for `user` from the browser's `credential` JSON, named `name`.
pub async fn register(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    user: &User,
    name: &str,
    credential: &str,
) -> Result<(Result<(), Refusal>, CookieJar), StoreError> {
    let (ch, jar) = take(state, jar, Purpose::Register).await?;
    let outcome = (|| -> Result<(String, String, Passkey), Refusal> {
        let w = webauthn(state)?;
        let name = passkey::name(name).map_err(Refusal::Name)?;
        let ch = ch?;
        if ch.user_id.as_deref() != Some(user.id.as_str()) {
            return Err(Refusal::Expired);
        }
        let r: Registration = serde_json::from_str(&ch.state).map_err(|_| Refusal::Expired)?;
        let reg: RegisterPublicKeyCredential = bounded_json(credential).ok_or(Refusal::Wrong)?;
        let key = w.finish_passkey_registration(&reg, &r.reg).map_err(|e| {
            tracing::info!(user_id = %user.id, error = %e, "passkey registration refused");
            Refusal::Wrong
        })?;
        Ok((name, r.handle, key))
    })();
    let (name, handle, key) = match outcome {
        Ok(v) => v,
        Err(why) => return Ok((Err(why), jar)),
    };
    let Ok(credential) = serde_json::to_string(&key) else {
        return Err(StoreError::Internal("passkey did not serialize".into()));
    };
    let row = passkey::Passkey {
        id: secret::random_id(),
        user_id: user.id.clone(),
        user_handle: handle,
        credential_id: cred_id(key.cred_id()),
        name: name.clone(),
        credential,
        counter: 0,
        created_at: state.clock.now(),
        last_used_at: None,
    };
    let audit = security_events::event(
        state,
        user,
        ip,
        security_events::PASSKEY_REGISTERED,
        &format!("registered the passkey `{name}`"),
    );
    match state
        .store
        .add_passkey(&row, passkey::MAX_PER_USER, &audit)
        .await
    {
        Ok(()) => Ok((Ok(()), jar)),
        Err(StoreError::Conflict(why)) if why.contains("at most") => {
            Ok((Err(Refusal::TooMany), jar))
        }
        Err(StoreError::Conflict(_)) => Ok((Err(Refusal::Duplicate), jar)),
        Err(e) => Err(e),
    }
}

fn bounded_json<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > passkey::MAX_CREDENTIAL_JSON {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// What a sign-in with a passkey found.
pub struct SignedIn {
    pub user: User,
}

type Outcome<T> = Result<Result<T, Refusal>, StoreError>;

/// A sign-in with a passkey alone: the person whose discoverable passkey signed
/// this browser's challenge (in organization `org_id` when given: people
/// authorize only their own organization's apps).
pub async fn sign_in(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    credential: &str,
    org_id: Option<&str>,
) -> Result<(Result<SignedIn, Refusal>, CookieJar), StoreError> {
    let (ch, jar) = take(state, jar, Purpose::SignIn).await?;
    let outcome = match ch {
        Ok(ch) => discoverable(state, ip, &ch, credential, org_id).await?,
        Err(why) => Err(why),
    };
    Ok((outcome, jar))
}

async fn discoverable(
    state: &AppState,
    ip: IpAddr,
    ch: &Challenge,
    credential: &str,
    org_id: Option<&str>,
) -> Outcome<SignedIn> {
    let w = match webauthn(state) {
        Ok(w) => w,
        Err(why) => return Ok(Err(why)),
    };
    let Ok(auth) = serde_json::from_str::<DiscoverableAuthentication>(&ch.state) else {
        return Ok(Err(Refusal::Expired));
    };
    let Some(cred) = bounded_json::<PublicKeyCredential>(credential) else {
        return Ok(Err(
            failed(state, ip, None, "malformed passkey response").await?
        ));
    };
    let Ok((handle, raw)) = w.identify_discoverable_authentication(&cred) else {
        return Ok(Err(failed(state, ip, None, "no user handle").await?));
    };
    let row = match state.store.passkey_by_credential(&cred_id(raw)).await {
        Ok(r) if Uuid::parse_str(&r.user_handle).ok() == Some(handle) => r,
        Ok(_) | Err(StoreError::NotFound) => {
            return Ok(Err(failed(state, ip, None, "unknown passkey").await?));
        }
        Err(e) => return Err(e),
    };
    let Some(user) = active_user(state, &row.user_id, org_id).await? else {
        return Ok(Err(
            failed(state, ip, Some(&row), "no active account here").await?
        ));
    };
    if let Some(why) = blocked(state, ip, &user.id).await {
        return Ok(Err(why));
    }
    let Some(mut key) = parsed(std::slice::from_ref(&row)).pop() else {
        return Err(StoreError::Internal(
            "a stored passkey does not parse".into(),
        ));
    };
    let ok = match w.finish_discoverable_authentication_v2(&cred, auth, &key) {
        Ok(res) => accept(state, &row, &mut key, &res).await?,
        Err(e) => {
            tracing::info!(user_id = %user.id, error = %e, "passkey assertion refused");
            false
        }
    };
    if !ok {
        return Ok(Err(failed_user(state, ip, &user, "passkey refused").await?));
    }
    Ok(Ok(SignedIn { user }))
}

/// The passkey as the second step for `user` (past the password).
pub async fn second_step(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    user: &User,
    credential: &str,
) -> Result<(Result<(), Refusal>, CookieJar), StoreError> {
    let (ch, jar) = take(state, jar, Purpose::SecondFactor).await?;
    if let Some(why) = blocked(state, ip, &user.id).await {
        return Ok((Err(why), jar));
    }
    let checked =
        (|| -> Result<(&Webauthn, PasskeyAuthentication, PublicKeyCredential), Refusal> {
            let w = webauthn(state)?;
            let ch = ch?;
            if ch.user_id.as_deref() != Some(user.id.as_str()) {
                return Err(Refusal::Expired);
            }
            let auth: PasskeyAuthentication =
                serde_json::from_str(&ch.state).map_err(|_| Refusal::Expired)?;
            let cred: PublicKeyCredential = bounded_json(credential).ok_or(Refusal::Wrong)?;
            Ok((w, auth, cred))
        })();
    let (w, auth, cred) = match checked {
        Ok(v) => v,
        Err(why @ (Refusal::Expired | Refusal::Off)) => return Ok((Err(why), jar)),
        Err(_) => {
            let why = failed_user(state, ip, user, "passkey refused").await?;
            return Ok((Err(why), jar));
        }
    };
    let row = match state
        .store
        .passkey_by_credential(&cred_id(cred.get_credential_id()))
        .await
    {
        Ok(r) if r.user_id == user.id => Some(r),
        Ok(_) | Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let ok = match (row, w.finish_passkey_authentication(&cred, &auth)) {
        (Some(row), Ok(res)) => match parsed(std::slice::from_ref(&row)).pop() {
            Some(mut key) => accept(state, &row, &mut key, &res).await?,
            None => false,
        },
        (_, Err(e)) => {
            tracing::info!(user_id = %user.id, error = %e, "passkey assertion refused");
            false
        }
        (None, Ok(_)) => false,
    };
    if !ok {
        let why = failed_user(state, ip, user, "passkey refused").await?;
        return Ok((Err(why), jar));
    }
    Ok((Ok(()), jar))
}

/// Records the use; `false` when the store refuses the counter (a clone, or a
/// concurrent use of the same assertion).
async fn accept(
    state: &AppState,
    row: &passkey::Passkey,
    key: &mut Passkey,
    res: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<bool, StoreError> {
    if !res.user_verified() || !passkey::counter_ok(row.counter, res.counter()) {
        return Ok(false);
    }
    let _ = key.update_credential(res);
    let Ok(json) = serde_json::to_string(key) else {
        return Err(StoreError::Internal("passkey did not serialize".into()));
    };
    state
        .store
        .use_passkey(&row.id, res.counter(), &json, state.clock.now())
        .await
}

async fn active_user(
    state: &AppState,
    user_id: &str,
    org_id: Option<&str>,
) -> Result<Option<User>, StoreError> {
    match state.store.user_by_id(user_id).await {
        Ok(u) if u.status == UserStatus::Active && org_id.is_none_or(|o| o == u.org_id) => {
            Ok(Some(u))
        }
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

fn throttle_key(user_id: &str, ip: IpAddr) -> String {
    format!("passkey\n{user_id}\n{}", crate::client_addr::bucket_key(ip))
}

async fn blocked(state: &AppState, ip: IpAddr, user_id: &str) -> Option<Refusal> {
    let limiter = &state.login_limiter;
    limiter
        .address_blocked(ip)
        .or(limiter
            .key_blocked_anywhere(&throttle_key(user_id, ip))
            .await)
        .map(|w| Refusal::Throttled(w.0))
}

/// A failed assertion for a known person: audited, counted, slowed.
async fn failed_user(
    state: &AppState,
    ip: IpAddr,
    user: &User,
    why: &str,
) -> Result<Refusal, StoreError> {
    security_events::record(state, user, ip, security_events::PASSKEY_FAILED, why).await?;
    let limiter = &state.login_limiter;
    let delay = limiter.slow_down(&format!("passkey\n{}", user.id));
    let refusal = match limiter
        .record_failure(ip, &throttle_key(&user.id, ip))
        .await
    {
        Some(wait) => Refusal::Throttled(wait.0),
        None => Refusal::Wrong,
    };
    tokio::time::sleep(delay).await;
    Ok(refusal)
}

/// A failed assertion whose person is not known (or not here): counted per address.
async fn failed(
    state: &AppState,
    ip: IpAddr,
    row: Option<&passkey::Passkey>,
    why: &str,
) -> Result<Refusal, StoreError> {
    if let Some(row) = row
        && let Ok(user) = state.store.user_by_id(&row.user_id).await
    {
        return failed_user(state, ip, &user, why).await;
    }
    tracing::info!(%ip, why, "passkey sign-in failed");
    Ok(
        match state
            .login_limiter
            .record_failure(ip, &throttle_key("?", ip))
            .await
        {
            Some(wait) => Refusal::Throttled(wait.0),
            None => Refusal::Wrong,
        },
    )
}
