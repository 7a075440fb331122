//! A just-made secret, held for one display (Post/Redirect/Get): the POST that
//! made it leaves it here under the signed-in session's `sid` and the app, and
//! redirects; the secret page takes it out, so a reload (or anyone without that
//! session) finds nothing. Held in this instance's memory only, for at most
//! [`TTL`] seconds, never written to disk or the database.

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::clock::UnixTime;
use gatehouse_core::secret::ClientSecret;

/// How long a secret waits for its page.
pub const TTL: UnixTime = 300;
/// At most this many waiting at once (each admin's registrations are few).
const MAX_WAITING: usize = 1024;

struct Waiting {
    heading: &'static str,
    secret: ClientSecret,
    expires_at: UnixTime,
}

#[derive(Default)]
pub struct OneTimeSecrets {
    waiting: Mutex<HashMap<(String, String), Waiting>>,
}

impl OneTimeSecrets {
    /// Leaves `secret` for session `sid`'s next view of `client_id`'s secret page.
    pub fn put(
        &self,
        sid: &str,
        client_id: &str,
        heading: &'static str,
        secret: ClientSecret,
        now: UnixTime,
    ) {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|_, v| v.expires_at > now);
        if w.len() >= MAX_WAITING {
            // Never grow without bound: the oldest waiting secret goes (its admin
            // is told to regenerate it).
            if let Some(k) = w
                .iter()
                .min_by_key(|(_, v)| v.expires_at)
                .map(|(k, _)| k.clone())
            {
                w.remove(&k);
            }
        }
        w.insert(
            (sid.to_owned(), client_id.to_owned()),
            Waiting {
                heading,
                secret,
                expires_at: now + TTL,
            },
        );
    }

    /// The secret waiting for this session and app, removed: shown once.
    pub fn take(
        &self,
        sid: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Option<(&'static str, ClientSecret)> {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        w.remove(&(sid.to_owned(), client_id.to_owned()))
            .filter(|v| v.expires_at > now)
            .map(|v| (v.heading, v.secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_taken_once_by_its_session_before_it_expires() {
        let once = OneTimeSecrets::default();
        once.put("s1", "app", "h", ClientSecret::generate(), 100);
        assert!(once.take("s2", "app", 101).is_none());
        assert!(once.take("s1", "app", 101).is_some());
        assert!(once.take("s1", "app", 102).is_none());
        once.put("s1", "app", "h", ClientSecret::generate(), 100);
        assert!(once.take("s1", "app", 100 + TTL).is_none());
    }
}
