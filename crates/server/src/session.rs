//! Login sessions and CSRF protection for the HTML forms.
//!
//! The session cookie holds a random value; the store keeps only its digest. The
//! CSRF cookie holds another random value; a form's token is an HMAC of the session
//! cookie under it, so a token is good only for this browser's cookie *and* this
//! session: a planted CSRF cookie (with its token) is useless against someone else's
//! session, and signing in (which also replaces the CSRF cookie) ends every token
//! handed out before. Both are compared in constant time. A cross-site or opaque
//! (`null`) `Origin`, or `Sec-Fetch-Site: cross-site`, is refused.
//! Cookies are `HttpOnly`, `SameSite=Lax`, and `Secure` when the issuer is HTTPS;
//! then the CSRF cookie is also `__Host-` prefixed (Path=/, no Domain), so no
//! sibling host or plain-HTTP response can set it. Browsers refuse `Secure` cookies
//! on plain HTTP (localhost aside), so a plain-HTTP issuer keeps the bare name.

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::account::LAST_SEEN_EVERY;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Session;
use gatehouse_core::ports::StoreError;
use gatehouse_core::secret;
use subtle::ConstantTimeEq;

use crate::state::AppState;

pub const SESSION_COOKIE: &str = "gatehouse_session";
/// The CSRF cookie on a plain-HTTP issuer (development, tests).
pub const CSRF_COOKIE: &str = "gatehouse_csrf";
/// The CSRF cookie on an HTTPS issuer (RFC 6265bis §4.1.3.2).
pub const CSRF_COOKIE_HOST: &str = "__Host-gatehouse_csrf";

/// Length of a random token (32 bytes, base64url).
const TOKEN_LEN: usize = 43;

fn cookie(state: &AppState, name: &'static str, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time_duration(max_age))
        .build()
}

/// The CSRF cookie's name for this issuer.
pub fn csrf_cookie_name(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        CSRF_COOKIE_HOST
    } else {
        CSRF_COOKIE
    }
}

fn time_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// The live session of this browser, if any. Its last-seen time is written
/// when stale ([`LAST_SEEN_EVERY`]); a session whose lifetime ran out is
/// expired here (its apps told over the back channel, once) and signs no one in.
pub async fn current(state: &AppState, jar: &CookieJar) -> Result<Option<Session>, StoreError> {
    let Some(c) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    if c.value().len() > 128 {
        return Ok(None);
    }
    let digest = secret::digest(c.value());
    let now = state.clock.now();
    match state.store.session(&digest, now).await {
        Ok(s) => {
            if s.last_seen_at.is_none_or(|at| at <= now - LAST_SEEN_EVERY) {
                // Only a hint for the person: a failed write is not the request's.
                if let Err(e) = state.store.touch_session(&digest, now).await {
                    tracing::warn!(error = %e, "could not record a session's last use");
                }
            }
            Ok(Some(s))
        }
        Err(StoreError::NotFound) => {
            if state.store.expire_session(&digest, now).await? > 0 {
                state.backchannel_wake.notify_one();
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Starts a password session for `user_id` and sets its cookie.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    user_id: &str,
    now: UnixTime,
) -> Result<(Session, CookieJar), StoreError> {
    start_with(
        state,
        jar,
        user_id,
        now,
        gatehouse_core::mfa::amr_password(),
    )
    .await
}

/// Starts a session for `user_id` signed in by the methods `amr` (RFC 8176).
pub async fn start_with(
    state: &AppState,
    jar: CookieJar,
    user_id: &str,
    now: UnixTime,
    amr: Vec<String>,
) -> Result<(Session, CookieJar), StoreError> {
    let value = secret::random_token();
    let ttl = state.config.session_ttl;
    let device = crate::device::current();
    let session = Session {
        id_digest: secret::digest(&value),
        sid: secret::random_id(),
        user_id: user_id.to_owned(),
        auth_time: now,
        expires_at: now + ttl,
        amr,
        user_agent: device.as_ref().and_then(|d| d.user_agent()),
        address: device.map(|d| d.address.to_string()),
        last_seen_at: Some(now),
    };
    state.store.insert_session(&session).await?;
    let jar = jar.add(cookie(state, SESSION_COOKIE, value, ttl));
    // A new session gets a new CSRF cookie: nothing issued before sign-in carries over.
    Ok((session, new_csrf_cookie(state, jar)))
}

/// Ends this browser's session (if any) and clears its cookie.
pub async fn end(state: &AppState, jar: CookieJar) -> Result<CookieJar, StoreError> {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        match state
            .store
            .end_session(&secret::digest(c.value()), state.clock.now())
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(jar.remove(Cookie::build(SESSION_COOKIE).path("/")))
}

/// The CSRF token for a form in this browser's current session: from the CSRF
/// cookie (set now, when there is none) and the session cookie as `jar` has them.
pub fn csrf_token(state: &AppState, jar: CookieJar) -> (String, CookieJar) {
    let jar = match csrf_cookie(state, &jar) {
        Some(_) => jar,
        None => new_csrf_cookie(state, jar),
    };
    let token = csrf_cookie(state, &jar)
        .map(|key| bound_token(&key, &jar))
        .unwrap_or_default();
    (token, jar)
}

fn new_csrf_cookie(state: &AppState, jar: CookieJar) -> CookieJar {
    let ttl = state.config.session_ttl;
    jar.add(cookie(
        state,
        csrf_cookie_name(state),
        secret::random_token(),
        ttl,
    ))
}

/// The CSRF cookie's value, when well formed.
fn csrf_cookie(state: &AppState, jar: &CookieJar) -> Option<String> {
    jar.get(csrf_cookie_name(state))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == TOKEN_LEN)
}

/// HMAC-SHA256 of the session cookie under the CSRF cookie: the form token.
fn bound_token(csrf_key: &str, jar: &CookieJar) -> String {
    let session = jar
        .get(SESSION_COOKIE)
        .map(|c| c.value())
        .filter(|v| v.len() <= 128)
        .unwrap_or("");
    let key = hmac::Key::new(hmac::HMAC_SHA256, csrf_key.as_bytes());
    let mut msg = b"gatehouse-csrf-v2:".to_vec();
    msg.extend_from_slice(session.as_bytes());
    URL_SAFE_NO_PAD.encode(hmac::sign(&key, &msg).as_ref())
}

/// Did this form come from our own page, in this browser's current session?
pub fn csrf_ok(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    presented: Option<&str>,
) -> bool {
    if !same_origin(state, headers) {
        return false;
    }
    match (csrf_cookie(state, jar), presented) {
        (Some(key), Some(p)) => bool::from(bound_token(&key, jar).as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}

/// `Origin`, when sent, must be the issuer's. `null` (a sandboxed frame, a `data:`
/// page) is refused unless the browser itself vouches `Sec-Fetch-Site:
/// same-origin` (a header pages cannot set; opaque origins are `cross-site`).
/// Browsers that send no `Origin` still say `Sec-Fetch-Site` when cross-site.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    match headers.get(header::ORIGIN).map(|v| v.as_bytes()) {
        Some(b"null") => fetch_site == Some(b"same-origin"),
        Some(origin) => origin == issuer_origin(&state.config.issuer).as_bytes(),
        None => fetch_site != Some(b"cross-site"),
    }
}

/// `scheme://host[:port]` of a URL.
fn issuer_origin(issuer: &str) -> &str {
    match issuer.find("://") {
        Some(i) => match issuer[i + 3..].find('/') {
            Some(j) => &issuer[..i + 3 + j],
            None => issuer,
        },
        None => issuer,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins() {
        assert_eq!(
            super::issuer_origin("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            super::issuer_origin("https://id.acme.test/tenant"),
            "https://id.acme.test"
        );
    }
}
