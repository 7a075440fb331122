//! Reference (opaque) tokens, validated by asking the issuer's introspection
//! endpoint (RFC 7662) with the API's credentials. Answers, active or not, are
//! reused for a short while (default 30 s), keyed by the token's SHA-256 so the
//! cache never holds a usable token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::jwks::{FetchError, read_json};
use crate::principal::{Audience, Principal};

const MAX_ENTRIES: usize = 10_000;

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
}

/// Token digest → (when asked, the answer: `None` = not active).
type Cache = HashMap<[u8; 32], (Instant, Option<Principal>)>;

pub struct Introspection {
    endpoint: String,
    ttl: Duration,
    cache: Mutex<Cache>,
}

impl Introspection {
    pub fn new(endpoint: String, ttl: Duration) -> Self {
        Self {
            endpoint,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of an active token for `audience`, `None` if not active.
    pub async fn principal(
        &self,
        http: &reqwest::Client,
        creds: (&str, &str),
        audience: &str,
        token: &str,
        now: i64,
        timeout: Duration,
    ) -> Result<Option<Principal>, FetchError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&key) {
            return Ok(hit.filter(|p| p.expires_at > now));
        }
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
        });
        if let Ok(mut c) = self.cache.lock() {
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

    fn cached(&self, key: &[u8; 32]) -> Option<Option<Principal>> {
        let c = self.cache.lock().ok()?;
        let (at, p) = c.get(key)?;
        (at.elapsed() < self.ttl).then(|| p.clone())
    }
}
