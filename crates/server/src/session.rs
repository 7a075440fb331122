//! Login sessions and CSRF protection for the HTML forms.
//!
//! The session cookie holds a random value; the store keeps only its digest. Forms
//! carry a synchronizer token that must equal the `gatehouse_csrf` cookie (both
//! random, compared in constant time), and a cross-site `Origin` is refused.
//! Cookies are `HttpOnly`, `SameSite=Lax`, and `Secure` when the issuer is HTTPS.

use axum::http::{HeaderMap, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Session;
use gatehouse_core::ports::StoreError;
use gatehouse_core::secret;
use subtle::ConstantTimeEq;

use crate::state::AppState;

pub const SESSION_COOKIE: &str = "gatehouse_session";
pub const CSRF_COOKIE: &str = "gatehouse_csrf";

fn cookie(state: &AppState, name: &'static str, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time_duration(max_age))
        .build()
}

fn time_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// The live session of this browser, if any.
pub async fn current(state: &AppState, jar: &CookieJar) -> Result<Option<Session>, StoreError> {
    let Some(c) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    if c.value().len() > 128 {
        return Ok(None);
    }
    match state
        .store
        .session(&secret::digest(c.value()), state.clock.now())
        .await
    {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Starts a session for `user_id` and sets its cookie.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    user_id: &str,
    now: UnixTime,
) -> Result<(Session, CookieJar), StoreError> {
    let value = secret::random_token();
    let ttl = state.config.session_ttl;
    let session = Session {
        id_digest: secret::digest(&value),
        sid: secret::random_id(),
        user_id: user_id.to_owned(),
        auth_time: now,
        expires_at: now + ttl,
    };
    state.store.insert_session(&session).await?;
    Ok((session, jar.add(cookie(state, SESSION_COOKIE, value, ttl))))
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

/// The CSRF token for a form: the cookie's, or a new one set now.
pub fn csrf_token(state: &AppState, jar: CookieJar) -> (String, CookieJar) {
    if let Some(c) = jar.get(CSRF_COOKIE).filter(|c| c.value().len() == 43) {
        return (c.value().to_owned(), jar);
    }
    let token = secret::random_token();
    let jar = jar.add(cookie(
        state,
        CSRF_COOKIE,
        token.clone(),
        state.config.session_ttl,
    ));
    (token, jar)
}

/// Did this form come from our own page?
pub fn csrf_ok(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    presented: Option<&str>,
) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != "null"
        && origin != issuer_origin(&state.config.issuer)
    {
        return false;
    }
    match (jar.get(CSRF_COOKIE), presented) {
        (Some(c), Some(p)) => {
            c.value().len() == 43 && bool::from(c.value().as_bytes().ct_eq(p.as_bytes()))
        }
        _ => false,
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
