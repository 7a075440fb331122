//! What a validator needs to know, parsed and bounded once at start.

use std::time::Duration;

use crate::verify::Alg;

/// The API's own client secret: never printed, never logged.
#[derive(Clone)]
pub struct ApiSecret(String);

impl ApiSecret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSecret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The issuer URL: `iss` must equal it, and discovery is read from it.
    pub issuer: String,
    /// This API's audience identifier: `aud` must contain it.
    pub audience: String,
    /// The API's credentials (introspection and the revocation feed).
    pub api_client_id: String,
    pub api_client_secret: ApiSecret,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Accepted signature algorithms.
    pub algorithms: Vec<Alg>,
    /// How long the feed may be lost before tokens issued after the last sync are
    /// refused (fail closed) and `/health` says `stale`.
    pub max_feed_staleness: Duration,
    /// How long an introspection answer for a reference token is reused.
    pub introspection_cache: Duration,
    /// At most one JWKS fetch per this interval for tokens with an unknown `kid`.
    pub unknown_kid_refetch: Duration,
    /// The JWKS is refetched this often regardless.
    pub jwks_refresh: Duration,
    /// How long one long poll of the feed waits (the server caps it at 30 s).
    pub feed_wait: Duration,
    /// Timeout for any request to the issuer, on top of the long poll's wait.
    pub http_timeout: Duration,
    /// The `realm` of `WWW-Authenticate` challenges.
    pub realm: String,
    /// The gateway's URL as its callers address it (scheme, host, port; e.g.
    /// `https://api.example.com`), which DPoP proofs name in `htu`. Behind a
    /// load balancer that terminates TLS, set it; without it the URL is
    /// `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// DPoP: a proof's `iat` must be within this of now.
    pub dpop_window: Duration,
    /// DPoP: proofs remembered for replay detection (per gateway instance).
    pub dpop_replay_capacity: usize,
}

impl ValidatorConfig {
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        api_client_id: impl Into<String>,
        api_client_secret: ApiSecret,
    ) -> Self {
        let audience = audience.into();
        Self {
            issuer: issuer.into(),
            realm: audience.clone(),
            audience,
            api_client_id: api_client_id.into(),
            api_client_secret,
            leeway: Duration::from_secs(5),
            algorithms: Alg::ALL.to_vec(),
            max_feed_staleness: Duration::from_secs(30),
            introspection_cache: Duration::from_secs(30),
            unknown_kid_refetch: Duration::from_secs(1),
            jwks_refresh: Duration::from_secs(300),
            feed_wait: Duration::from_secs(20),
            http_timeout: Duration::from_secs(5),
            public_url: None,
            dpop_window: Duration::from_secs(gatehouse_core::dpop::DEFAULT_WINDOW_SECS as u64),
            dpop_replay_capacity: gatehouse_core::dpop::DEFAULT_REPLAY_CAPACITY,
        }
    }
}
