//! Reference (opaque) tokens, validated by asking the issuer's introspection
//! endpoint (RFC 7662) with the API's credentials. Answers, active or not, are
//! reused for a short while (default 30 s), keyed by the token's SHA-256 so the
//! cache never holds a usable token.
//!
//! A reused answer must not outlive what ended the token: the validator applies
//! the revocation set to it on every use, and every feed event about an app, a
//! user, a grant or a token drops the answers it may concern ([`Introspection::forget`]).
//! An answer fetched while such an event arrived is used once and not kept (it
//! may predate the change).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_core::feed::FeedEvent;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::jwks::{FetchError, read_json};
use crate::principal::{Audience, Principal};

const MAX_ENTRIES: usize = 10_000;
/// Longer identifiers in an answer are not kept (the issuer's are far shorter).
const MAX_ID_LEN: usize = 256;

#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    jti: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    /// Gatehouse's own: the token's grant and the app's credential generation,
    /// when the issuer says (then the revocation set decides exactly).
    #[serde(default)]
    gid: Option<String>,
    /// RFC 9449 §6.2: the key a bound token needs a proof of.
    #[serde(default)]
    cnf: Option<gatehouse_core::dpop::Cnf>,
    #[serde(default)]
    cgen: Option<i64>,
    #[serde(default)]
    csid: Option<String>,
}

/// An active token's answer.
#[derive(Debug, Clone)]
pub struct Introspected {
    pub principal: Principal,
    pub gid: Option<String>,
    pub cgen: Option<i64>,
    /// The client secret the token was issued with, when the issuer says.
    pub csid: Option<String>,
    /// `iat` as the issuer said (the principal's `issued_at` falls back to now).
    pub iat: Option<i64>,
}

/// Who asks the issuer, and how.
#[derive(Clone, Copy)]
pub struct Asker<'a> {
    pub http: &'a reqwest::Client,
    /// The API's client id and secret.
    pub creds: (&'a str, &'a str),
    /// This API's audience: an answer for another is not active here.
    pub audience: &'a str,
    pub timeout: Duration,
}

/// Token digest → (when asked, the answer: `None` = not active).
type Cache = HashMap<[u8; 32], (Instant, Option<Arc<Introspected>>)>;

pub struct Introspection {
    endpoint: String,
    ttl: Duration,
    cache: Mutex<Cache>,
    /// Bumped (under the cache lock) by every [`Introspection::forget`].
    epoch: AtomicU64,
}

impl Introspection {
    pub fn new(endpoint: String, ttl: Duration) -> Self {
        Self {
            endpoint,
            ttl,
            cache: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// The answer for an active token for `audience`, `None` if not active.
    /// `reuse`: a cached answer may be used (not while the feed is lost: the
    /// events that would drop it are not arriving).
    pub async fn lookup(
        &self,
        asker: &Asker<'_>,
        token: &str,
        now: i64,
        reuse: bool,
    ) -> Result<Option<Arc<Introspected>>, FetchError> {
        let Asker {
            http,
            creds,
            audience,
            timeout,
        } = *asker;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if reuse && let Some(hit) = self.cached(&key) {
            return Ok(hit.filter(|i| i.principal.expires_at > now));
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let resp = http
            .post(&self.endpoint)
            .basic_auth(creds.0, Some(creds.1))
            .form(&[("token", token)])
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| FetchError::Http(e.without_url().to_string()))?;
        let answer: Answer = serde_json::from_value(read_json(resp).await?)
            .map_err(|_| FetchError::Invalid("introspection answer"))?;
        let principal = (answer.active
            && answer.aud.as_ref().is_some_and(|a| a.contains(audience))
            && answer.exp.is_some_and(|e| e > now))
        .then(|| Principal {
            scopes: answer.scope.split_whitespace().map(str::to_owned).collect(),
            client_id: answer.client_id,
            subject: answer.sub,
            org: answer.org,
            role: answer.role,
            permissions: answer.permissions,
            groups: answer.groups,
            token_id: answer.jti,
            issued_at: answer.iat.unwrap_or(now),
            expires_at: answer.exp.unwrap_or(now),
            dpop_jkt: answer.cnf.map(|c| c.jkt),
        })
        .map(|principal| {
            Arc::new(Introspected {
                principal,
                gid: answer.gid.filter(|g| g.len() <= MAX_ID_LEN),
                cgen: answer.cgen,
                csid: answer.csid.filter(|s| s.len() <= MAX_ID_LEN),
                iat: answer.iat,
            })
        });
        if let Ok(mut c) = self.cache.lock() {
            if self.epoch.load(Ordering::Acquire) != epoch {
                return Ok(principal);
            }
            if c.len() >= MAX_ENTRIES {
                c.retain(|_, (at, _)| at.elapsed() < self.ttl);
                if c.len() >= MAX_ENTRIES {
                    c.clear();
                }
            }
            c.insert(key, (Instant::now(), principal.clone()));
        }
        Ok(principal)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Option<Arc<Introspected>>> {
        let c = self.cache.lock().ok()?;
        let (at, p) = c.get(key)?;
        (at.elapsed() < self.ttl).then(|| p.clone())
    }

    /// Drops the cached answers `events` may have ended, in one pass (inactive
    /// answers stay: no event makes a token active again).
    pub fn forget(&self, events: &[FeedEvent]) {
        let mut clients = HashSet::new();
        let mut users = HashSet::new();
        let mut grants = HashSet::new();
        let mut jtis = HashSet::new();
        for e in events {
            match e {
                FeedEvent::Client { client_id, .. } => clients.insert(client_id.as_str()),
                FeedEvent::User { user_id, .. } => users.insert(user_id.as_str()),
                FeedEvent::Grant { grant_id } => grants.insert(grant_id.as_str()),
                FeedEvent::Token { jti, .. } => jtis.insert(jti.as_str()),
                FeedEvent::Keys => false,
            };
        }
        if clients.is_empty() && users.is_empty() && grants.is_empty() && jtis.is_empty() {
            return;
        }
        let concerned = |i: &Introspected| {
            let p = &i.principal;
            clients.contains(p.client_id.as_str())
                || users.contains(p.subject.as_str())
                || jtis.contains(p.token_id.as_str())
                // Without the answer's grant id, any revoked grant may be its own.
                || !grants.is_empty() && i.gid.as_deref().is_none_or(|g| grants.contains(g))
        };
        let Ok(mut c) = self.cache.lock() else { return };
        self.epoch.fetch_add(1, Ordering::AcqRel);
        c.retain(|_, (_, answer)| answer.as_deref().is_none_or(|i| !concerned(i)));
    }

    pub fn len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
