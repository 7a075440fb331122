//! The issuer's discovery document and signing keys. Keys are fetched at start,
//! every `jwks_refresh`, at once when the feed says keys changed, and when a token
//! names an unknown `kid` — at most once per `unknown_kid_refetch`, so junk kids
//! cannot make us hammer the issuer. Fetches never follow redirects (SSRF), and
//! answers are size-bounded. When the issuer is down the cached keys stay in use.
//!
//! Each fetch replaces the key set wholesale: a key the issuer no longer publishes
//! (retired, or withdrawn with `gatehouse keys revoke`) stops verifying at once.
//! The set is bounded at [`MAX_KEYS`] keys taken in the document's order (the
//! issuer lists its active keys first), far above what an issuer publishes, so a
//! listed key is never dropped for want of room.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::verify::PublicKey;

const MAX_DOC_BYTES: usize = 256 * 1024;
/// A JWKS of [`MAX_KEYS`] RSA-4096 keys is about 800 KB.
const MAX_JWKS_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_KEYS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request to the issuer failed: {0}")]
    Http(String),
    #[error("the issuer answered {0}")]
    Status(u16),
    #[error("the issuer's answer is not valid: {0}")]
    Invalid(&'static str),
}

/// The endpoints a gateway uses, from discovery.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub gatehouse_revocation_feed_endpoint: Option<String>,
}

/// GET a JSON document, size-bounded.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<Value, FetchError> {
    get_json_bounded(http, url, auth, timeout, MAX_DOC_BYTES).await
}

async fn get_json_bounded(
    http: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    timeout: Duration,
    limit: usize,
) -> Result<Value, FetchError> {
    let mut req = http.get(url).timeout(timeout);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| FetchError::Http(e.without_url().to_string()))?;
    read_json_bounded(resp, limit).await
}

pub(crate) async fn read_json(resp: reqwest::Response) -> Result<Value, FetchError> {
    read_json_bounded(resp, MAX_DOC_BYTES).await
}

async fn read_json_bounded(resp: reqwest::Response, limit: usize) -> Result<Value, FetchError> {
    if !resp.status().is_success() {
        return Err(FetchError::Status(resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(FetchError::Invalid("too large"));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| FetchError::Http(e.without_url().to_string()))?;
    if body.len() > limit {
        return Err(FetchError::Invalid("too large"));
    }
    serde_json::from_slice(&body).map_err(|_| FetchError::Invalid("not JSON"))
}

pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    timeout: Duration,
) -> Result<Endpoints, FetchError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(http, &url, None, timeout).await?;
    let ep: Endpoints =
        serde_json::from_value(doc).map_err(|_| FetchError::Invalid("discovery document"))?;
    // OIDC Discovery §4.3: the document's issuer must be the one we asked.
    if ep.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(FetchError::Invalid("discovery names another issuer"));
    }
    Ok(ep)
}

type KeyMap = HashMap<String, Arc<PublicKey>>;

/// The usable keys among the first [`MAX_KEYS`] of `list`, in the document's
/// order; for a repeated `kid` the first listed wins.
fn key_map(list: &[Value]) -> KeyMap {
    let mut map = KeyMap::with_capacity(list.len().min(MAX_KEYS));
    for k in list.iter().take(MAX_KEYS).filter_map(PublicKey::from_jwk) {
        map.entry(k.kid.clone()).or_insert_with(|| Arc::new(k));
    }
    map
}

pub struct Jwks {
    http: reqwest::Client,
    uri: String,
    timeout: Duration,
    keys: RwLock<Arc<KeyMap>>,
    last_fetch: Mutex<Option<Instant>>,
    min_interval: Duration,
    /// One fetch at a time; concurrent askers wait for it and reuse its result.
    fetching: tokio::sync::Mutex<()>,
    /// Fetches finished (either way): an asker that waited for another's fetch
    /// takes its answer instead of fetching (or waiting) once more.
    fetches_done: AtomicU64,
    /// The kids the last document that dropped keys dropped: refused at once.
    withdrawn: RwLock<HashSet<String>>,
    /// Fetches by result, for the metrics.
    fetches: crate::metrics::FetchCounts,
}

impl Jwks {
    pub fn new(
        http: reqwest::Client,
        uri: String,
        timeout: Duration,
        min_interval: Duration,
    ) -> Self {
        Self {
            http,
            uri,
            timeout,
            keys: RwLock::new(Arc::new(HashMap::new())),
            last_fetch: Mutex::new(None),
            min_interval,
            fetching: tokio::sync::Mutex::new(()),
            fetches_done: AtomicU64::new(0),
            withdrawn: RwLock::new(HashSet::new()),
            fetches: Default::default(),
        }
    }

    pub fn get(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.keys.read().ok().and_then(|k| k.get(kid).cloned())
    }

    pub fn len(&self) -> usize {
        self.keys.read().map(|k| k.len()).unwrap_or(0)
    }

    pub fn fetches(&self) -> &crate::metrics::FetchCounts {
        &self.fetches
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key for `kid`, refetching the JWKS if it is unknown: at once, or when
    /// the rate limit next allows. A key made a moment ago (`keys rotate`, seen
    /// by a token before the feed told of it) is thus found within the interval
    /// instead of its valid tokens being refused (the soak found seven such 401s
    /// after a rotation). Askers that arrive during a fetch, or during the wait
    /// for one, take its answer: a flood of unknown kids costs one fetch per
    /// interval and keeps no one waiting longer than that.
    pub async fn find(&self, kid: &str) -> Option<Arc<PublicKey>> {
        if let Some(k) = self.get(kid) {
            return Some(k);
        }
        if self.withdrawn.read().is_ok_and(|w| w.contains(kid)) {
            return None;
        }
        let done_before = self.fetches_done.load(Ordering::Acquire);
        let _one = self.fetching.lock().await;
        if let Some(k) = self.get(kid) {
            return Some(k);
        }
        if self.fetches_done.load(Ordering::Acquire) != done_before {
            return None;
        }
        let since_last = self
            .last_fetch
            .lock()
            .ok()
            .and_then(|l| *l)
            .map(|t| t.elapsed());
        if let Some(since) = since_last
            && since < self.min_interval
        {
            tokio::time::sleep(self.min_interval - since).await;
        }
        if let Err(e) = self.fetch_locked().await {
            tracing::warn!(error = %e, "JWKS refetch for an unknown kid failed; keeping the cached keys");
        }
        self.get(kid)
    }

    /// Fetches now (feed said keys changed, or the periodic refresh).
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        let _one = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, FetchError> {
        let result = self.fetch_unrecorded().await;
        self.fetches.record(result.is_ok());
        self.fetches_done.fetch_add(1, Ordering::AcqRel);
        result
    }

    async fn fetch_unrecorded(&self) -> Result<usize, FetchError> {
        if let Ok(mut l) = self.last_fetch.lock() {
            *l = Some(Instant::now());
        }
        let doc =
            get_json_bounded(&self.http, &self.uri, None, self.timeout, MAX_JWKS_BYTES).await?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(FetchError::Invalid("no `keys` array"))?;
        if list.len() > MAX_KEYS {
            tracing::warn!(
                published = list.len(),
                kept = MAX_KEYS,
                "the JWKS lists more keys than a gateway keeps; the first ones (the issuer's active keys) are used"
            );
        }
        let map = key_map(list);
        let n = map.len();
        if let Ok(mut w) = self.keys.write() {
            // Keys the issuer stopped publishing are refused at once from now
            // on, never waited for (a withdrawn key must stop verifying within
            // the second). Bounded: at most the keys of the previous document.
            let gone: HashSet<String> = w
                .keys()
                .filter(|kid| !map.contains_key(*kid))
                .cloned()
                .collect();
            if let Ok(mut g) = self.withdrawn.write() {
                if !gone.is_empty() {
                    *g = gone;
                }
                g.retain(|kid| !map.contains_key(kid));
            }
            *w = Arc::new(map);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;

    fn jwk(kid: &str) -> Value {
        let pair = Ed25519KeyPair::generate().expect("a key pair");
        json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": kid,
               "x": B64.encode(pair.public_key().as_ref())})
    }

    /// An issuer whose JWKS the test changes as it goes.
    async fn issuer(doc: Arc<RwLock<Value>>) -> String {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let d = doc.read().map(|d| d.clone()).unwrap_or_default();
                async move { axum::Json(d) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/jwks")
    }

    /// The soak's race, made certain: the gateway fetched the JWKS just before
    /// the issuer published a new key, and the key's first token arrives within
    /// the interval unknown-kid refetches are limited to. It used to be refused
    /// (seven valid tokens after `keys rotate`); it is now found at the next
    /// fetch the limit allows.
    #[tokio::test]
    async fn a_key_published_just_after_a_fetch_is_found_within_the_interval() {
        let doc = Arc::new(RwLock::new(json!({"keys": [jwk("old")]})));
        let interval = Duration::from_millis(500);
        let jwks = Jwks::new(
            reqwest::Client::new(),
            issuer(doc.clone()).await,
            Duration::from_secs(2),
            interval,
        );
        jwks.refresh().await.expect("the first fetch");
        *doc.write().expect("the document") = json!({"keys": [jwk("old"), jwk("new")]});
        let asked = Instant::now();
        assert!(
            jwks.find("new").await.is_some(),
            "the new key's first token was refused"
        );
        let waited = asked.elapsed();
        assert!(
            waited >= interval - Duration::from_millis(100) && waited < 2 * interval,
            "found after {waited:?}: at the next fetch the limit allows"
        );

        // A kid nobody publishes still costs at most that one fetch per interval,
        // and one the issuer withdrew is refused at once.
        *doc.write().expect("the document") = json!({"keys": [jwk("new")]});
        jwks.refresh().await.expect("a fetch");
        let asked = Instant::now();
        assert!(jwks.find("old").await.is_none());
        assert!(
            asked.elapsed() < Duration::from_millis(100),
            "a withdrawn kid is refused at once"
        );
        let before = jwks.fetches_done.load(Ordering::Acquire);
        let (a, b) = tokio::join!(jwks.find("junk-1"), jwks.find("junk-2"));
        assert!(a.is_none() && b.is_none());
        assert_eq!(
            jwks.fetches_done.load(Ordering::Acquire) - before,
            1,
            "one fetch for both"
        );
    }
}
