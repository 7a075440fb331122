//! The validator: one per API audience. Holds the issuer's keys, the revocation
//! state and the introspection cache, and decides for one bearer token whether it
//! is good and whom it speaks for. Cheap to clone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri, header};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::dpop::{self, ProofError};

use crate::config::ValidatorConfig;
use crate::feed::{FeedState, spawn_follower};
use crate::introspection::{Asker, Introspection};
use crate::jwks::{FetchError, Jwks, discover};
use crate::layer::Rejection;
use crate::principal::{Claims, Principal};
use crate::revoked::{GrantRef, Revoked, Subject};
use crate::verify::{self, Expect, TokenError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the issuer's discovery document: {0}")]
    Discovery(FetchError),
    #[error("cannot fetch the issuer's signing keys: {0}")]
    Keys(FetchError),
    #[error("the issuer publishes no {0}")]
    Missing(&'static str),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(
        "the issuer refused the API credentials (401): check --api-client-id `{0}` and the secret in GATEHOUSE_GATEWAY_API_CLIENT_SECRET (or --api-client-secret); `gatehouse api rotate-secret` makes a new one"
    )]
    Credentials(String),
    #[error(
        "--audience `{configured}` is not this API's: API client `{client_id}` has the audience `{actual}`"
    )]
    Audience {
        configured: String,
        client_id: String,
        actual: String,
    },
    #[error("cannot read the revocation feed: {0}")]
    Feed(FetchError),
}

/// Tokens whose signature has been checked, so that a client reusing its token
/// (the usual case: one token for an hour) costs a map lookup instead of an ECDSA
/// or RSA verification per request. The key is the whole token, compared in
/// full; every other check (`exp`, revocation, the feed) still runs per request,
/// and an entry whose key has left the JWKS is not used (and is dropped when the
/// JWKS is refetched). Only tokens for this API are entered (`iss`, `aud`, `exp`
/// checked first), so another tenant's tokens cannot churn the cache.
const MAX_VERIFIED: usize = 10_000;

struct Verified {
    kid: String,
    claims: Arc<Claims>,
}

#[derive(Clone)]
pub struct Validator(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: ValidatorConfig,
    pub clock: Arc<dyn Clock>,
    pub http: reqwest::Client,
    pub jwks: Jwks,
    pub revoked: RwLock<Revoked>,
    pub feed: FeedState,
    pub synced: tokio::sync::watch::Sender<bool>,
    pub(crate) introspection: Option<Introspection>,
    expect: Expect,
    verified: RwLock<HashMap<Box<str>, Verified>>,
    /// DPoP proofs seen (RFC 9449 §11.1), per gateway instance.
    pub(crate) dpop_seen: gatehouse_core::dpop::ReplayCache,
    pub metrics: crate::metrics::GatewayMetrics,
}

/// What `/health` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    pub feed: &'static str,
    pub last_sync_age_secs: Option<f64>,
    pub keys: usize,
    pub cursor: String,
    pub revoked_clients: usize,
    pub inactive_users: usize,
    pub revoked_grants: usize,
    pub revoked_tokens: usize,
}

impl Validator {
    /// Reads discovery and the JWKS, then follows the revocation feed; waits up to
    /// `initial_sync` for the feed's first full read so that the first requests
    /// are not refused for want of it.
    pub async fn start(
        config: ValidatorConfig,
        initial_sync: Duration,
    ) -> Result<Self, StartError> {
        Self::start_with_clock(config, Arc::new(SystemClock), initial_sync).await
    }

    pub async fn start_with_clock(
        config: ValidatorConfig,
        clock: Arc<dyn Clock>,
        initial_sync: Duration,
    ) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.http_timeout)
            .build()
            .map_err(|e| StartError::Client(e.to_string()))?;
        let ep = discover(&http, &config.issuer, config.http_timeout)
            .await
            .map_err(StartError::Discovery)?;
        let jwks = Jwks::new(
            http.clone(),
            ep.jwks_uri,
            config.http_timeout,
            config.unknown_kid_refetch,
        );
        jwks.refresh().await.map_err(StartError::Keys)?;
        let feed_url = ep
            .gatehouse_revocation_feed_endpoint
            .ok_or(StartError::Missing("gatehouse_revocation_feed_endpoint"))?;
        crate::feed::check_api(&http, &feed_url, &config).await?;
        let inner = Arc::new(Inner {
            expect: Expect {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                leeway_secs: config.leeway.as_secs() as i64,
            },
            introspection: ep
                .introspection_endpoint
                .map(|e| Introspection::new(e, config.introspection_cache)),
            feed: FeedState::new(config.max_feed_staleness),
            synced: tokio::sync::watch::Sender::new(false),
            revoked: RwLock::new(Revoked::default()),
            verified: RwLock::new(HashMap::new()),
            dpop_seen: gatehouse_core::dpop::ReplayCache::new(config.dpop_replay_capacity),
            metrics: Default::default(),
            config,
            clock,
            http,
            jwks,
        });
        let mut synced = inner.synced.subscribe();
        spawn_follower(&inner, feed_url);
        spawn_housekeeping(&inner);
        if tokio::time::timeout(initial_sync, synced.wait_for(|s| *s))
            .await
            .is_err()
        {
            tracing::warn!(
                "the revocation feed has not answered yet; tokens are refused (503) until it does"
            );
        }
        Ok(Validator(inner))
    }

    /// What the gateway's `/metrics` reports.
    pub fn metrics(&self) -> &crate::metrics::GatewayMetrics {
        &self.0.metrics
    }

    pub fn realm(&self) -> &str {
        &self.0.config.realm
    }

    /// Validates a bearer token for this API.
    pub async fn validate(&self, token: &str) -> Result<Principal, Rejection> {
        let inner = &self.0;
        if token.is_empty() || token.len() > verify::MAX_TOKEN_LEN {
            return Err(Rejection::Invalid(TokenError::Malformed));
        }
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return self.introspect(token).await;
        }
        let claims = match self.cached(token) {
            Some(c) => {
                inner
                    .expect
                    .check(&c, inner.clock.now())
                    .map_err(Rejection::Invalid)?;
                c
            }
            None => self.verify(token).await?,
        };
        if let Ok(r) = inner.revoked.read()
            && let Some(why) = r.check(&claims).or_else(|| {
                r.secret_ended(&claims.client_id, claims.csid.as_deref(), inner.clock.now())
            })
        {
            return Err(Rejection::Invalid(TokenError::Revoked(why)));
        }
        if !inner.feed.vouches_for(claims.iat) {
            return Err(Rejection::Unavailable(
                "the revocation feed is unavailable; tokens issued since it was lost cannot be checked",
            ));
        }
        Ok(claims.principal())
    }

    /// RFC 9449 §7.1 (§4.3): one proof, for this method and URL, fresh, never
    /// seen before, naming this token (`ath`), by the token's key `jkt`.
    pub(crate) fn check_proof(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        token: &str,
        jkt: &str,
    ) -> Result<(), Rejection> {
        let inner = &self.0;
        let mut proofs = headers.get_all("dpop").iter();
        let proof = proofs.next().ok_or(Rejection::Dpop(ProofError::Missing))?;
        if proofs.next().is_some() {
            return Err(Rejection::Dpop(ProofError::Several));
        }
        let proof = proof
            .to_str()
            .map_err(|_| Rejection::Dpop(ProofError::Malformed))?;
        let url = self.request_url(uri, headers);
        let now = inner.clock.now();
        let window = inner.config.dpop_window.as_secs() as i64;
        let expected = dpop::Expected {
            method: method.as_str(),
            url: &url,
            now,
            window,
            access_token: Some(token),
        };
        let proof = dpop::verify(proof, &expected).map_err(Rejection::Dpop)?;
        if proof.jkt != jkt {
            return Err(Rejection::Dpop(ProofError::WrongKey));
        }
        inner
            .dpop_seen
            .check(&proof, now, window)
            .map_err(Rejection::Dpop)
    }

    /// The URL the caller addressed (`htu`): the configured public URL, else
    /// `http://` and the request's authority or `Host`, and the path as sent.
    fn request_url(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let path = uri.path();
        if let Some(base) = &self.0.config.public_url {
            return format!("{}{path}", base.trim_end_matches('/'));
        }
        let host = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
            .unwrap_or_default();
        format!("{}://{host}{path}", uri.scheme_str().unwrap_or("http"))
    }

    fn cached(&self, token: &str) -> Option<Arc<Claims>> {
        let inner = &self.0;
        let map = inner.verified.read().ok()?;
        let hit = map.get(token)?;
        inner.jwks.get(&hit.kid).map(|_| hit.claims.clone())
    }

    /// Signature, then claims; only a token that passes both is cached.
    async fn verify(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        let inner = &self.0;
        let unverified =
            verify::parse(token, &inner.config.algorithms).map_err(Rejection::Invalid)?;
        let Some(key) = inner.jwks.find(&unverified.kid).await else {
            return Err(if inner.jwks.is_empty() {
                Rejection::Unavailable("the issuer's signing keys are not available")
            } else {
                Rejection::Invalid(TokenError::UnknownKey)
            });
        };
        let claims = Arc::new(unverified.verify(&key).map_err(Rejection::Invalid)?);
        let now = inner.clock.now();
        inner
            .expect
            .check(&claims, now)
            .map_err(Rejection::Invalid)?;
        if let Ok(mut m) = inner.verified.write() {
            if m.len() >= MAX_VERIFIED {
                m.retain(|_, v| v.claims.exp > now);
                if m.len() >= MAX_VERIFIED {
                    m.clear();
                }
            }
            m.insert(
                token.into(),
                Verified {
                    kid: unverified.kid.clone(),
                    claims: claims.clone(),
                },
            );
        }
        Ok(claims)
    }

    /// A reference token: the issuer's answer (perhaps cached), then what the
    /// revocation feed has ended since.
    async fn introspect(&self, token: &str) -> Result<Principal, Rejection> {
        let inner = &self.0;
        let Some(intro) = &inner.introspection else {
            return Err(Rejection::Invalid(TokenError::Malformed));
        };
        let c = &inner.config;
        let asker = Asker {
            http: &inner.http,
            creds: (&c.api_client_id, c.api_client_secret.expose()),
            audience: &c.audience,
            timeout: c.http_timeout,
        };
        let answer = intro
            .lookup(&asker, token, inner.clock.now(), !inner.feed.is_stale())
            .await;
        let found = match answer {
            Ok(Some(found)) => found,
            Ok(None) => return Err(Rejection::Invalid(TokenError::Inactive)),
            Err(e) => {
                tracing::warn!(error = %e, "introspection failed");
                return Err(Rejection::Unavailable(
                    "the token could not be introspected",
                ));
            }
        };
        let p = &found.principal;
        let subject = Subject {
            client_id: &p.client_id,
            generation: found.cgen,
            jti: &p.token_id,
            sub: &p.subject,
            iat: found.iat,
            grant: match (&found.gid, found.cgen) {
                (Some(g), _) => GrantRef::Grant(g),
                // An issuer that tells `cgen` tells `gid` for grants: none means a machine token.
                (None, Some(_)) => GrantRef::Machine,
                (None, None) => GrantRef::Unknown,
            },
        };
        if let Ok(r) = inner.revoked.read()
            && let Some(why) = r
                .check_subject(&subject)
                .or_else(|| r.secret_ended(&p.client_id, found.csid.as_deref(), inner.clock.now()))
        {
            return Err(Rejection::Invalid(TokenError::Revoked(why)));
        }
        Ok(found.principal.clone())
    }

    /// After the JWKS changed: forget verified signatures of keys it no longer
    /// publishes.
    pub(crate) fn forget_unpublished_keys(inner: &Inner) {
        if let Ok(mut m) = inner.verified.write() {
            m.retain(|_, v| inner.jwks.get(&v.kid).is_some());
        }
    }

    /// How many verified signatures are cached.
    pub fn cached_signatures(&self) -> usize {
        self.0.verified.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn health(&self) -> Health {
        let inner = &self.0;
        let (c, u, g, t) = inner.revoked.read().map(|r| r.counts()).unwrap_or_default();
        Health {
            feed: if inner.feed.is_stale() {
                "stale"
            } else {
                "fresh"
            },
            last_sync_age_secs: inner.feed.age().map(|a| a.as_secs_f64()),
            keys: inner.jwks.len(),
            cursor: inner.feed.cursor(),
            revoked_clients: c,
            inactive_users: u,
            revoked_grants: g,
            revoked_tokens: t,
        }
    }
}

/// Refreshes the JWKS periodically and prunes expired revoked tokens.
fn spawn_housekeeping(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let every = inner.config.jwks_refresh;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            match inner.jwks.refresh().await {
                Ok(_) => Validator::forget_unpublished_keys(&inner),
                Err(e) => {
                    tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping the cached keys");
                }
            }
            let now = inner.clock.now();
            if let Ok(mut r) = inner.revoked.write() {
                r.prune(now);
            }
        }
    });
}
