//! The parsed public keys of `private_key_jwt` apps, cached per app so that
//! verifying an assertion is one signature check: an inline JWKS is parsed once,
//! a `jwks_uri` is fetched once and then again only after [`REFRESH_AFTER`], or
//! when an assertion names a `kid` it does not hold — at most once per
//! [`UNKNOWN_KID_REFETCH`] per app, so junk kids cannot make us hammer anyone.
//!
//! An entry is dropped when the change feed reports a change to its app (any
//! instance, any surface: a key change takes effect at once), and is only used
//! while it was made from the app's current keys.
//!
//! Fetches follow the redirect-URI policy's rules (SSRF): the host must resolve
//! to public addresses only, and the connection goes to those addresses (no
//! second lookup a DNS rebinding could change); `localhost`/`127.0.0.1` only in
//! development mode; no redirects, no proxy, a short timeout and a bounded body.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gatehouse_core::client_assertion::{ClientKeySet, MAX_JWKS_BYTES};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{App, ChangeKind, ClientKeys};
use gatehouse_core::redirect_uri::RedirectPolicy;

use crate::cache::FeedListener;

/// A fetched JWKS is fetched again after this long (seconds), on next use.
pub const REFRESH_AFTER: i64 = 600;
/// An unknown `kid` refetches a `jwks_uri` at most this often per app (seconds).
pub const UNKNOWN_KID_REFETCH: i64 = 60;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

/// Why an app's keys are not at hand (told to the client as `invalid_client`).
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the app's registered JWKS cannot be used")]
    Registered,
    #[error("the app's jwks_uri could not be fetched: {0}")]
    Fetch(String),
}

struct Entry {
    /// The app's keys this entry was made from.
    source: ClientKeys,
    keys: Arc<ClientKeySet>,
    fetched_at: UnixTime,
}

#[derive(Clone)]
pub struct ClientKeyCache(Arc<Inner>);

struct Inner {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// When each app's `jwks_uri` was last fetched (kept across invalidations,
    /// so the refetch limit holds whatever happens to the entry).
    fetched: Mutex<HashMap<String, UnixTime>>,
    /// One fetch at a time per process: they are rare.
    fetching: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    dev: bool,
}

impl ClientKeyCache {
    pub fn new(policy: &RedirectPolicy) -> Self {
        let http = crate::outbound::client(policy, FETCH_TIMEOUT);
        Self(Arc::new(Inner {
            entries: RwLock::new(HashMap::new()),
            fetched: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
            http,
            dev: policy.dev,
        }))
    }

    /// Follows the change feed: an app's change drops its entry.
    pub fn listener(&self) -> Arc<dyn FeedListener> {
        Arc::new(Listener(self.0.clone()))
    }

    /// The app's keys: cached, else parsed (inline) or fetched (`jwks_uri`).
    pub async fn keys(&self, app: &App, now: UnixTime) -> Result<Arc<ClientKeySet>, KeysError> {
        let source = app.client_keys.as_deref().ok_or(KeysError::Registered)?;
        if let Some(e) = self.cached(&app.client_id, source)
            && (matches!(source, ClientKeys::Jwks(_)) || now - e.fetched_at < REFRESH_AFTER)
        {
            return Ok(e.keys.clone());
        }
        match source {
            ClientKeys::Jwks(text) => {
                let keys = Arc::new(
                    ClientKeySet::parse_registered(text).map_err(|_| KeysError::Registered)?,
                );
                self.remember(&app.client_id, source, keys.clone(), now);
                Ok(keys)
            }
            ClientKeys::JwksUri(uri) => {
                let stale = self.cached(&app.client_id, source);
                match self.fetch(&app.client_id, source, uri, now).await {
                    Ok(keys) => Ok(keys),
                    // The publisher is down: the keys we had keep working.
                    Err(e) => match stale {
                        Some(s) => {
                            tracing::warn!(client_id = %app.client_id, error = %e, "jwks_uri refresh failed; using the keys fetched before");
                            Ok(s.keys.clone())
                        }
                        None => Err(e),
                    },
                }
            }
        }
    }

    /// After an assertion named a `kid` the cached keys lack: the `jwks_uri`
    /// fetched again, if the app's last fetch is [`UNKNOWN_KID_REFETCH`] old.
    /// `None` when nothing new can be had (inline keys, or too soon).
    pub async fn refetch_for_unknown_kid(
        &self,
        app: &App,
        now: UnixTime,
    ) -> Option<Result<Arc<ClientKeySet>, KeysError>> {
        let Some(source @ ClientKeys::JwksUri(uri)) = app.client_keys.as_deref() else {
            return None;
        };
        if !self.may_fetch(&app.client_id, now) {
            return None;
        }
        Some(self.fetch(&app.client_id, source, uri, now).await)
    }

    fn may_fetch(&self, client_id: &str, now: UnixTime) -> bool {
        self.0
            .fetched
            .lock()
            .map(|f| {
                f.get(client_id)
                    .is_none_or(|t| now - t >= UNKNOWN_KID_REFETCH)
            })
            .unwrap_or(false)
    }

    fn cached(&self, client_id: &str, source: &ClientKeys) -> Option<Arc<Entry>> {
        let entries = self.0.entries.read().ok()?;
        entries
            .get(client_id)
            .filter(|e| &e.source == source)
            .cloned()
    }

    fn remember(
        &self,
        client_id: &str,
        source: &ClientKeys,
        keys: Arc<ClientKeySet>,
        now: UnixTime,
    ) {
        if let Ok(mut entries) = self.0.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                client_id.to_owned(),
                Arc::new(Entry {
                    source: source.clone(),
                    keys,
                    fetched_at: now,
                }),
            );
        }
    }

    async fn fetch(
        &self,
        client_id: &str,
        source: &ClientKeys,
        uri: &str,
        now: UnixTime,
    ) -> Result<Arc<ClientKeySet>, KeysError> {
        let _one = self.0.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(e) = self.cached(client_id, source)
            && e.fetched_at >= now
        {
            return Ok(e.keys.clone());
        }
        if let Ok(mut f) = self.0.fetched.lock() {
            if f.len() >= MAX_ENTRIES {
                f.retain(|_, t| now - *t < UNKNOWN_KID_REFETCH);
            }
            f.insert(client_id.to_owned(), now);
        }
        let text = self.get(uri).await.map_err(KeysError::Fetch)?;
        let keys = ClientKeySet::parse_fetched(&text).map_err(KeysError::Fetch)?;
        if keys.is_empty() {
            return Err(KeysError::Fetch(
                "the document holds no usable public key".into(),
            ));
        }
        let keys = Arc::new(keys);
        self.remember(client_id, source, keys.clone(), now);
        Ok(keys)
    }

    async fn get(&self, uri: &str) -> Result<String, String> {
        let url = url::Url::parse(uri).map_err(|_| "not a URL".to_owned())?;
        // The registration's rules, again: the server may have been restarted
        // without development mode since.
        match url.host() {
            Some(url::Host::Domain(_)) if url.scheme() == "https" => {}
            Some(url::Host::Domain("localhost")) if self.0.dev => {}
            Some(url::Host::Ipv4(ip)) if self.0.dev && ip == Ipv4Addr::LOCALHOST => {}
            _ => return Err("the URL is not allowed (https on a public DNS name)".into()),
        }
        let mut resp = self
            .0
            .http
            .get(url)
            .header("accept", "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("it answered {}", resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err("the document is too large".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err("the document is too large".into());
            }
        }
        String::from_utf8(body).map_err(|_| "the document is not UTF-8".into())
    }
}

struct Listener(Arc<Inner>);

impl FeedListener for Listener {
    fn changed(&self, kind: ChangeKind, key: &str) {
        if kind == ChangeKind::App
            && let Ok(mut e) = self.0.entries.write()
        {
            e.remove(key);
        }
    }

    fn cleared(&self) {
        if let Ok(mut e) = self.0.entries.write() {
            e.clear();
        }
    }
}
