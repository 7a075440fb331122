//! A just-made secret, held for one display (Post/Redirect/Get). The POST that
//! made it seals it (AES-256-GCM under the key-encryption key, bound to the
//! signed-in session's `sid`, the app and a deadline [`TTL`] seconds away) into a
//! cookie scoped to that app's secret page, and redirects there; the page opens
//! it, shows it, and clears the cookie. A reload finds no cookie; another session
//! cannot open it; any instance can (no sticky sessions), and nothing is stored.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::jose::KeyEncryptionKey;
use gatehouse_core::secret::ClientSecret;
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// How long a secret waits for its page.
pub const TTL: UnixTime = 300;
const COOKIE: &str = "gatehouse_once";

/// What the page's heading says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Made {
    Registered,
    Regenerated,
    /// A second secret beside the current one.
    Added,
}

impl Made {
    pub fn heading(self) -> &'static str {
        match self {
            Made::Registered => "App registered",
            Made::Regenerated => "New secret key",
            Made::Added => "Second secret key",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    made: Made,
    secret: String,
    exp: UnixTime,
}

/// The page that shows `client_id`'s new secret.
pub fn page_path(client_id: &str) -> String {
    format!("/console/apps/{client_id}/secret")
}

fn aad(sid: &str, client_id: &str) -> String {
    format!("gatehouse-console-secret:{sid}:{client_id}")
}

fn seal(
    kek: &KeyEncryptionKey,
    sid: &str,
    client_id: &str,
    made: Made,
    secret: &ClientSecret,
    now: UnixTime,
) -> Option<String> {
    let plain = serde_json::to_vec(&Sealed {
        made,
        secret: secret.expose().to_owned(),
        exp: now + TTL,
    })
    .ok()?;
    kek.seal(&aad(sid, client_id), &plain).ok()
}

fn open(
    kek: &KeyEncryptionKey,
    sealed: &str,
    sid: &str,
    client_id: &str,
    now: UnixTime,
) -> Option<(Made, String)> {
    let plain = kek.open(&aad(sid, client_id), sealed).ok()?;
    let s: Sealed = serde_json::from_slice(&plain).ok()?;
    (s.exp > now).then_some((s.made, s.secret))
}

/// Leaves `secret` for this session's next view of the app's secret page.
pub fn hold(
    state: &AppState,
    jar: CookieJar,
    sid: &str,
    client_id: &str,
    made: Made,
    secret: &ClientSecret,
) -> CookieJar {
    let Some(value) = seal(state.kek(), sid, client_id, made, secret, state.clock.now()) else {
        return jar;
    };
    jar.add(
        Cookie::build((COOKIE, value))
            .path(page_path(client_id))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(state.config.secure_cookies())
            .max_age(cookie::time::Duration::seconds(TTL))
            .build(),
    )
}

/// The waiting secret, if this session has one for the app; the cookie goes.
pub fn take(
    state: &AppState,
    jar: CookieJar,
    sid: &str,
    client_id: &str,
) -> (Option<(Made, String)>, CookieJar) {
    let found = jar
        .get(COOKIE)
        .filter(|c| c.value().len() <= 1024)
        .and_then(|c| open(state.kek(), c.value(), sid, client_id, state.clock.now()));
    let jar = jar.remove(Cookie::build(COOKIE).path(page_path(client_id)));
    (found, jar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_session_app_and_time() {
        let kek = KeyEncryptionKey::from_bytes(&[7; 32]).unwrap();
        let secret = ClientSecret::generate();
        let sealed = seal(&kek, "s1", "app", Made::Registered, &secret, 100).unwrap();
        assert!(!sealed.contains(secret.expose()));
        assert_eq!(
            open(&kek, &sealed, "s1", "app", 101),
            Some((Made::Registered, secret.expose().to_owned()))
        );
        assert!(open(&kek, &sealed, "s2", "app", 101).is_none());
        assert!(open(&kek, &sealed, "s1", "other", 101).is_none());
        assert!(open(&kek, &sealed, "s1", "app", 100 + TTL).is_none());
    }
}
